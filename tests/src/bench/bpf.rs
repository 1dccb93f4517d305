//! A minimal loader for the self-contained XDP programs of the embedded object
//! (`xdp_reflect`, `xdp_pass`): finds the function in the ELF object, loads it with
//! `BPF_PROG_LOAD`, attaches it with a `BPF_LINK_CREATE` link (closing the link detaches) and
//! runs it with `BPF_PROG_TEST_RUN`.
//!
//! It exists because this crate cannot use aya directly (aya is not among its dependencies).
//! It does no relocations: it refuses programs that reference maps or call other functions.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, bail, ensure, Context as _, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// A loaded program.
pub struct Prog {
    fd: OwnedFd,
    pub name: String,
}

/// An attached program; dropping it detaches.
pub struct Link {
    _fd: OwnedFd,
    pub iface: String,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(
        b.get(at..at + 2)
            .ok_or_else(|| anyhow!("ELF truncated"))?
            .try_into()?,
    ))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(
        b.get(at..at + 4)
            .ok_or_else(|| anyhow!("ELF truncated"))?
            .try_into()?,
    ))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(
        b.get(at..at + 8)
            .ok_or_else(|| anyhow!("ELF truncated"))?
            .try_into()?,
    ))
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
    info: u32,
}

fn cstr(b: &[u8], at: usize) -> &[u8] {
    let tail = b.get(at..).unwrap_or_default();
    &tail[..tail.iter().position(|c| *c == 0).unwrap_or(tail.len())]
}

/// The instructions of function `name` in a little-endian ELF64 BPF object.
pub fn function_code(elf: &[u8], name: &str) -> Result<Vec<u8>> {
    ensure!(elf.get(..4) == Some(b"\x7fELF"), "not an ELF object");
    ensure!(
        elf.get(4) == Some(&2) && elf.get(5) == Some(&1),
        "not ELF64 little-endian"
    );
    let shoff = u64_at(elf, 0x28)? as usize;
    let shentsize = u16_at(elf, 0x3a)? as usize;
    let shnum = u16_at(elf, 0x3c)? as usize;
    let mut sections = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        sections.push(Section {
            kind: u32_at(elf, h + 4)?,
            offset: u64_at(elf, h + 24)? as usize,
            size: u64_at(elf, h + 32)? as usize,
            link: u32_at(elf, h + 40)?,
            info: u32_at(elf, h + 44)?,
        });
    }
    let data = |s: &Section| -> Result<&[u8]> {
        elf.get(s.offset..s.offset + s.size)
            .ok_or_else(|| anyhow!("ELF section out of bounds"))
    };
    let symtab = sections
        .iter()
        .find(|s| s.kind == 2)
        .ok_or_else(|| anyhow!("no symbol table"))?;
    let strtab = data(&sections[symtab.link as usize])?;
    let syms = data(symtab)?;
    for sym in syms.chunks_exact(24) {
        let info = sym[4];
        if info & 0xf != 2 || cstr(strtab, u32_at(sym, 0)? as usize) != name.as_bytes() {
            continue;
        }
        let shndx = u16_at(sym, 6)? as usize;
        let value = u64_at(sym, 8)? as usize;
        let size = u64_at(sym, 16)? as usize;
        let sec = sections
            .get(shndx)
            .ok_or_else(|| anyhow!("bad section index"))?;
        let code = data(sec)?
            .get(value..value + size)
            .ok_or_else(|| anyhow!("function {name} out of its section"))?;
        // Relocations into this range would need a real loader.
        for rel in sections
            .iter()
            .filter(|s| s.kind == 9 && s.info as usize == shndx)
        {
            for r in data(rel)?.chunks_exact(16) {
                let off = u64_at(r, 0)? as usize;
                if (value..value + size).contains(&off) {
                    bail!("{name} has relocations (maps or calls); this loader cannot load it");
                }
            }
        }
        for insn in code.chunks_exact(8) {
            if insn[0] == 0x85 && insn[1] >> 4 == 1 {
                bail!("{name} calls another BPF function; this loader cannot load it");
            }
        }
        return Ok(code.to_vec());
    }
    bail!("function {name} not found in the object")
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 20]) -> std::io::Result<i64> {
    // SAFETY: attr is a zero-initialised bpf_attr-sized buffer laid out for `cmd`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr() as *mut libc::c_void,
            std::mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn put32(attr: &mut [u64; 20], byte_off: usize, v: u32) {
    let w = &mut attr[byte_off / 8];
    let shift = (byte_off % 8) * 8;
    *w = (*w & !(0xffff_ffffu64 << shift)) | ((v as u64) << shift);
}

fn get32(attr: &[u64; 20], byte_off: usize) -> u32 {
    (attr[byte_off / 8] >> ((byte_off % 8) * 8)) as u32
}

impl Prog {
    /// Loads function `name` of the embedded xdpdns object as an XDP program.
    pub fn load_xdp(name: &str) -> Result<Prog> {
        let code = function_code(xdpdns::fastpath::xdp::PROGRAM_OBJECT, name)
            .with_context(|| format!("extracting {name} from the XDP object"))?;
        let license = CString::new("GPL")?;
        let mut log = vec![0u8; 1 << 16];
        let mut attr = [0u64; 20];
        put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
        put32(&mut attr, 4, (code.len() / 8) as u32);
        attr[1] = code.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        put32(&mut attr, 24, 1);
        put32(&mut attr, 28, log.len() as u32);
        attr[4] = log.as_mut_ptr() as u64;
        let mut pname = [0u8; 16];
        for (d, s) in pname.iter_mut().zip(name.bytes().take(15)) {
            *d = s;
        }
        attr[6] = u64::from_le_bytes(pname[..8].try_into()?);
        attr[7] = u64::from_le_bytes(pname[8..].try_into()?);
        put32(&mut attr, 68, BPF_XDP);
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Prog {
                // SAFETY: a new fd returned by the kernel, owned by us from now on.
                fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
                name: name.to_owned(),
            }),
            Err(e) => {
                let text = String::from_utf8_lossy(cstr(&log, 0)).into_owned();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                bail!(
                    "the kernel rejected {name}: {e}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            }
        }
    }

    /// Attaches in native (driver) mode to `ifindex`; the link lives as long as the returned
    /// value.
    pub fn attach_native(&self, ifindex: u32, iface: &str) -> Result<Link> {
        let mut attr = [0u64; 20];
        put32(&mut attr, 0, self.fd.as_raw_fd() as u32);
        put32(&mut attr, 4, ifindex);
        put32(&mut attr, 8, BPF_XDP);
        put32(&mut attr, 12, XDP_FLAGS_DRV_MODE);
        let fd = bpf(BPF_LINK_CREATE, &mut attr)
            .with_context(|| format!("attaching {} to {iface} (native)", self.name))?;
        Ok(Link {
            // SAFETY: a new fd returned by the kernel.
            _fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            iface: iface.to_owned(),
        })
    }

    /// One BPF_PROG_TEST_RUN of `frame` with `repeat`; returns (action, duration ns per run).
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, u32)> {
        let mut attr = [0u64; 20];
        put32(&mut attr, 0, self.fd.as_raw_fd() as u32);
        put32(&mut attr, 8, frame.len() as u32);
        attr[2] = frame.as_ptr() as u64;
        put32(&mut attr, 32, repeat);
        bpf(BPF_PROG_TEST_RUN, &mut attr).context("BPF_PROG_TEST_RUN")?;
        Ok((get32(&attr, 4), get32(&attr, 36)))
    }
}

/// Loads `prog` and attaches it natively to `iface` inside network namespace `ns`.
pub fn attach_in_ns(ns: &str, iface: &str, prog: &str) -> Result<(Prog, Link)> {
    let (ns, iface, prog) = (ns.to_owned(), iface.to_owned(), prog.to_owned());
    super::net::in_netns(&ns, move || -> Result<(Prog, Link)> {
        let c = CString::new(iface.clone())?;
        // SAFETY: valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        ensure!(ifindex != 0, "no interface {iface}");
        let p = Prog::load_xdp(&prog)?;
        let l = p.attach_native(ifindex, &iface)?;
        Ok((p, l))
    })?
}
