//! Link, network and transport layers: which packets are queries to us, and the rewrite of a
//! query packet into its response (MACs, addresses and ports swapped, lengths and checksums set).

use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use dns_common::{
    counter, rrl::KIND_SLIPPED, AnswerKind, Config, Scratch, ANSWER_MAX, CONFIG_ALL_SIGNED,
    CONFIG_NO_DNSSEC, FRAME_PREFIX_MAX, KEY_FLAG_DO, NAME_BUF, NAME_MAX, OPT_BUF, OPT_LEN,
    SERVICE_INLINE,
};

use crate::{
    body::Body, checksum, edns, lookup, nsec3, question, rewrite, rrl, CONFIG, SCRATCH,
    SERVICE_ADDRS,
};

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const DNS_HEADER: usize = 12;
const UDP_HEADER: usize = 8;
/// Header bits copied from the query: RD and CD.
const COPIED_FLAGS: u16 = 0x0100 | 0x0010;
/// Header bit TC.
const FLAG_TC: u16 = 0x0200;

#[inline(always)]
pub(crate) fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, u32> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(counter::PASS_MALFORMED);
    }
    Ok((start + offset) as *mut T)
}

#[inline(always)]
fn be16(ctx: &XdpContext, offset: usize) -> Result<u16, u32> {
    let p: *const [u8; 2] = ptr_at(ctx, offset)?;
    // SAFETY: bounds checked by ptr_at.
    Ok(u16::from_be_bytes(unsafe { p.read_unaligned() }))
}

impl Flow {
    /// The flow in one word, for the programs `xdp_dns` tail-calls (`Nsec3Scratch::flow`).
    #[inline(always)]
    fn pack(&self) -> u64 {
        (self.l3 as u64 & 0xff)
            | (self.l4 as u64 & 0xff) << 8
            | (self.v6 as u64) << 16
            | (self.dns_len as u64 & 0xffff) << 32
    }

    #[inline(always)]
    fn unpack(w: u64) -> Flow {
        Flow {
            l3: (w & 0xff) as usize,
            l4: ((w >> 8) & 0xff) as usize,
            v6: (w >> 16) & 1 != 0,
            dns_len: ((w >> 32) & 0xffff) as usize,
        }
    }
}

fn not_dns(_: u32) -> u32 {
    counter::PASS_NOT_DNS
}

/// The addressing of a query, kept to build the response.
struct Flow {
    l3: usize,
    v6: bool,
    /// Offset of the UDP header.
    l4: usize,
    /// Number of DNS octets in the query.
    dns_len: usize,
}

/// Handles one packet. `Ok(kind)`: the packet now holds a response of that `AnswerKind`.
/// `Err(reason)`: the packet is unchanged and goes up the stack; `reason` is a counter index
/// (`RRL_DROPPED`: it is dropped). `Ok(KIND_SLIPPED)`: a rate-limited response, truncated.
/// `MODE`: `LOOKUP` (`xdp_dns`) reads the query, builds the answer's OPT record and finds the
/// template, then tail-calls `RESPOND` (`xdp_dns_respond`), which writes the answer, or
/// `DENIAL` (`xdp_dns_nsec3`) for an NSEC3 denial template, both from what it left in scratch.
/// Kept apart, each program stays within the verifier's limits.
#[inline(always)]
pub fn handle<const MODE: u8>(ctx: &XdpContext) -> Result<u16, u32> {
    let resumed = MODE != LOOKUP;
    let cfg: &Config = match CONFIG.get(0) {
        Some(c) if c.port != 0 => c,
        _ => return Err(counter::PASS_NOT_DNS),
    };
    let scratch = match SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch, used by this CPU only for the duration of this program.
        Some(s) => unsafe { &mut *s },
        None => return Err(counter::PASS_ERROR),
    };
    let flow = if resumed {
        // SAFETY: a plain read of per-CPU memory the answering program wrote (`Flow::pack`).
        Flow::unpack(unsafe { core::ptr::read_volatile(&scratch.nsec3.flow) })
    } else {
        let flow = classify(ctx, cfg)?;
        // SAFETY: a plain write of per-CPU memory, read by the programs tail-called.
        unsafe { core::ptr::write_volatile(&mut scratch.nsec3.flow, flow.pack()) };
        flow
    };
    // Join the verifier's paths for each VLAN depth and IP version (see question::opaque); a
    // flow read back from scratch is one path already.
    let flow = if resumed {
        Flow {
            l3: flow.l3 & 0x1f,
            v6: flow.v6,
            l4: flow.l4 & 0x7f,
            dns_len: flow.dns_len,
        }
    } else {
        Flow {
            l3: question::opaque(&mut scratch.opaque, flow.l3) & 0x1f,
            v6: question::opaque(&mut scratch.opaque, flow.v6 as usize) != 0,
            l4: question::opaque(&mut scratch.opaque, flow.l4) & 0x7f,
            dns_len: question::opaque(&mut scratch.opaque, flow.dns_len) & 0xffff,
        }
    };
    let dns = flow.l4 + UDP_HEADER;
    if flow.dns_len < DNS_HEADER {
        return Err(counter::PASS_MALFORMED);
    }
    let id: [u8; 2] = unsafe { ptr_at::<[u8; 2]>(ctx, dns)?.read_unaligned() };
    let flags = be16(ctx, dns + 2)?;
    let qdcount = be16(ctx, dns + 4)?;
    let ancount = be16(ctx, dns + 6)?;
    let nscount = be16(ctx, dns + 8)?;
    let arcount = be16(ctx, dns + 10)?;
    // QR=1, opcode other than QUERY, TC set, or anything but one question: userspace decides.
    if flags & 0xfa00 != 0 || qdcount != 1 || ancount != 0 || nscount != 0 {
        return Err(counter::PASS_NOT_QUERY);
    }

    let q = if resumed {
        resumed_query(scratch)?
    } else {
        question::read(
            ctx,
            scratch,
            dns + DNS_HEADER,
            flow.dns_len - DNS_HEADER,
            arcount,
            cfg.server_payload,
        )?
    };
    scratch.key.generation = cfg.generation;
    if cfg.flags & CONFIG_NO_DNSSEC != 0 {
        scratch.key.flags &= !KEY_FLAG_DO;
    }
    if !resumed {
        // The answer's OPT record does not depend on the answer: built before the lookup, so
        // that the verifier walks it once per question shape instead of once per lookup
        // outcome, and left in scratch (with its length, whether the query's server cookie
        // was valid, and the error its options decide) for the rest of this program and for
        // the denial program.
        let validate = question::opaque(&mut scratch.opaque, rrl::enabled() as usize) != 0;
        let packed = if q.edns {
            let args = edns::OptArgs {
                options: q.options,
                dnssec_ok: q.dnssec_ok,
                server_payload: cfg.server_payload,
                l3: flow.l3,
                v6: flow.v6,
                validate,
            };
            edns::answer_opt_call(ctx, scratch, &args)
        } else {
            0
        };
        let packed = question::opaque(&mut scratch.opaque, packed as usize) as u32;
        if packed & edns::OPT_ERROR != 0 {
            return Err(packed & 0xff);
        }
        // SAFETY: a plain write of per-CPU memory, read back after the lookup.
        unsafe { core::ptr::write_volatile(&mut scratch.nsec3.opt_len, packed) };
        // An error the OPT record decides (FORMERR, BADCOOKIE, BADVERS) is the engine's answer whatever
        // the name: no lookup, the respond program writes it with an empty body.
        let kind = if edns::Built::unpack(packed).rcode != 0 {
            AnswerKind::Exact as u16
        } else {
            lookup::find(scratch, q.name_len, cfg.flags & CONFIG_ALL_SIGNED != 0)?
        };
        let query = q.name_len as u64
            | (q.limit as u64) << 16
            | (q.edns as u64) << 32
            | (q.dnssec_ok as u64) << 33
            | q.options
                .rdata_sum
                .map_or(0, |s| 1 << 34 | (s as u64) << 40);
        let denial = kind & 0xff == AnswerKind::Nsec3Negative as u16;
        return Err(nsec3::jump(ctx, scratch, query, denial));
    }
    // SAFETY: a plain read of per-CPU memory, written before the lookup (see above).
    let opt = edns::Built::unpack(unsafe { core::ptr::read_volatile(&scratch.nsec3.opt_len) });
    let denial = MODE == DENIAL;
    // The template is looked up here, in the program that writes it, not before the jump;
    // an error the options decided has none (`error_body`).
    let found = match opt.rcode {
        0 => Some(lookup::resume(scratch, denial)?),
        _ if denial => return Err(counter::PASS_ERROR),
        _ => None,
    };
    let mut body = match &found {
        Some(f) => Body::of(f.answer),
        None => Body::error(opt.rcode),
    };
    if body.len > ANSWER_MAX {
        return Err(counter::PASS_ERROR);
    }
    // An empty body (REFUSED, an error the options decided) has nothing to copy or patch.
    let tpl_csum = match &found {
        Some(_) if body.len == 0 => 0,
        Some(f) => match f.shift {
            Some(shift) if denial => {
                let d = nsec3::deny(scratch, f.answer, shift, q.name_len)?;
                body.len = d.len;
                body.nscount = d.nscount;
                // Not copied: `nsec3::store` writes the head and the records (below).
                d.csum
            }
            // Written from the map value as it is; its pointers are shifted in the packet
            // last.
            Some(shift) => lookup::shifted_csum(f.answer, shift),
            None => f.answer.csum,
        },
        None => 0,
    };
    let len = body.len;
    let opt_len = question::opaque(&mut scratch.opaque, opt.len);
    if opt_len > OPT_BUF {
        return Err(counter::PASS_ERROR);
    }
    let cookie_valid = opt.cookie_valid;
    // An answer too big for the client is userspace's (a TC answer there, rate limited
    // there): it takes no token here.
    if DNS_HEADER + q.name_len + 4 + len + opt_len > q.limit {
        return Err(counter::PASS_TOO_BIG);
    }
    // Rate limiting: a slipped answer is the header and question (and OPT) with TC=1. The
    // verdict goes through memory and is applied without branches, so that the verifier
    // walks the rest once, not once for each verdict.
    let cookie_valid = question::opaque(&mut scratch.opaque, cookie_valid as usize) != 0;
    let referral = body.kind & 0xff == AnswerKind::Referral as u16;
    let class = dns_common::rrl::class(body.header_flags, referral);
    let verdict = rrl::check(ctx, flow.l3, flow.v6, class, cookie_valid);
    if verdict > rrl::SLIP {
        return Err(verdict);
    }
    let slip = question::opaque(&mut scratch.opaque, verdict as usize) & 1;
    // All ones to keep the answer, zero for a slip.
    let keep = slip.wrapping_sub(1);
    let len = len & keep;
    let tpl_csum = tpl_csum & keep as u16;
    let (ancount, nscount) = (body.ancount & keep as u16, body.nscount & keep as u16);
    let arcount = body.arcount & keep as u16;
    let extra_flags = FLAG_TC & !(keep as u16);
    let opt_len = question::opaque(&mut scratch.opaque, opt_len);
    if opt_len > OPT_BUF {
        return Err(counter::PASS_ERROR);
    }
    let resp_len = DNS_HEADER + q.name_len + 4 + len + opt_len;
    if resp_len > q.limit {
        return Err(counter::PASS_TOO_BIG);
    }

    // The UDP checksum's sum of what the response keeps from the query (see `rewrite`), taken
    // before the packet changes: from the query's checksum, or summed (the question, rounded
    // up to whole words: the buffer is zero padded after it).
    let kept = rewrite::kept_sum(
        ctx,
        (flow.l3, flow.l4, flow.v6),
        q.name_len,
        flow.dns_len,
        (q.edns, q.options.rdata_sum),
        // The query's ARCOUNT: 1 with an OPT record, else 0 (`question::read`).
        (flags, q.edns as u16),
    )?;
    let mut sum = match kept {
        Some(s) => s,
        None => {
            let qsum = checksum::words(
                scratch.question.as_mut_ptr(),
                q.name_len + 4,
                (NAME_BUF + 8) as u32,
            )?;
            rewrite::full_sum(ctx, (flow.l3, flow.l4, flow.v6), qsum, id)?
        }
    };
    let resp_flags = body.header_flags | (flags & COPIED_FLAGS) | extra_flags;
    let arcount_out = arcount + q.edns as u16;
    sum += checksum::field(resp_flags)
        + checksum::field(ancount)
        + checksum::field(nscount)
        + checksum::field(arcount_out);
    let tpl_odd = q.name_len & 1 == 1;
    sum += checksum::at_parity(tpl_csum, tpl_odd);
    // The OPT record's sum, as `edns::answer_opt` summed its parts. One without options is
    // the fixed 11 octets (`opt_record`), in the first two words of the buffer: written here
    // directly.
    let opt_words = if opt_len == OPT_LEN {
        let w = scratch.opt.as_ptr() as *const u64;
        // SAFETY: `opt` is 8-byte aligned in Scratch (an assertion in dns_common) and holds
        // OPT_BUF ≥ 16 octets.
        unsafe { [w.read(), w.add(1).read()] }
    } else {
        [0, 0]
    };
    if q.edns {
        sum += checksum::at_parity(opt.sum, (q.name_len + len) & 1 == 1);
    }

    // Resize the packet to the response (this also drops any Ethernet padding).
    let l7 = dns + DNS_HEADER + q.name_len + 4;
    let new_frame = dns + resp_len;
    // The programs are not loaded as frags-aware (BPF_F_XDP_HAS_FRAGS), so the kernel hands
    // them linear frames only: the frame is `data..data_end`, and direct access (the shifted
    // pointers of a suffix template) reaches all of it.
    let frame_len = ctx.data_end() - ctx.data();
    let delta = new_frame as i64 - frame_len as i64;
    let at_head = delta > 0 && grow_at_head_only(cfg);
    // SAFETY: plain helper call on our own context.
    if at_head || unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        grow_at_head(ctx, scratch, l7, delta)?;
    }
    // A denial's body is written last (below): its parts' branches then end the program.
    if let (false, true, Some(f)) = (denial, len > 0, &found) {
        let tpl = f.answer.data.as_ptr();
        // SAFETY: the helper checks the offsets against the (new) packet; len ≤ ANSWER_MAX.
        let r = unsafe { bpf_xdp_store_bytes(ctx.ctx, l7 as u32, tpl as *mut _, len as u32) };
        if r != 0 {
            return Err(counter::PASS_ERROR);
        }
    }
    if q.edns && opt_len == OPT_LEN {
        let p: *mut [u8; OPT_LEN] = ptr_at(ctx, l7 + len).map_err(|_| counter::PASS_ERROR)?;
        let [a, b] = opt_words.map(u64::to_ne_bytes);
        let o = [
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1], b[2],
        ];
        // SAFETY: bounds checked by ptr_at.
        unsafe { p.write_unaligned(o) };
    } else if q.edns {
        let opt_len = question::opaque(&mut scratch.opaque, opt_len);
        if opt_len == 0 || opt_len > OPT_BUF {
            return Err(counter::PASS_ERROR);
        }
        // SAFETY: as above, from the scratch OPT buffer, opt_len ≤ OPT_BUF.
        let r = unsafe {
            bpf_xdp_store_bytes(
                ctx.ctx,
                (l7 + len) as u32,
                scratch.opt.as_mut_ptr() as *mut _,
                opt_len as u32,
            )
        };
        if r != 0 {
            return Err(counter::PASS_ERROR);
        }
    }

    // DNS header: ID and question stay as sent.
    let hdr: *mut [u8; 10] = ptr_at(ctx, dns + 2)?;
    let f = resp_flags.to_be_bytes();
    let an = ancount.to_be_bytes();
    let ns = nscount.to_be_bytes();
    let ar = arcount_out.to_be_bytes();
    // SAFETY: bounds checked by ptr_at.
    unsafe {
        hdr.write_unaligned([f[0], f[1], 0, 1, an[0], an[1], ns[0], ns[1], ar[0], ar[1]]);
    }

    let udp_len = (UDP_HEADER + resp_len) as u16;
    sum += checksum::field(udp_len) + checksum::field(udp_len);
    rewrite::swap_link(ctx)?;
    if flow.v6 {
        rewrite::swap_ipv6(ctx, flow.l3, udp_len)?;
    } else {
        rewrite::swap_ipv4(ctx, flow.l3, udp_len)?;
    }
    rewrite::swap_udp(ctx, flow.l4, udp_len, sum)?;
    if slip != 0 {
        return Ok(KIND_SLIPPED);
    }
    match found {
        Some(f) if denial => nsec3::store(ctx, scratch, f.answer, l7)?,
        Some(lookup::Found {
            answer,
            shift: Some(shift),
        }) => {
            let l7 = question::opaque(&mut scratch.opaque, l7);
            lookup::shift_ptrs(ctx, answer, l7, shift)?;
        }
        _ => {}
    }
    Ok(body.kind)
}

/// Whether growth goes to the head even where the tail has room: only in the test build, when
/// `CONFIG_TEST_GROW_AT_HEAD` asks for it.
#[inline(always)]
fn grow_at_head_only(cfg: &Config) -> bool {
    #[cfg(feature = "test-programs")]
    {
        cfg.flags & dns_common::CONFIG_TEST_GROW_AT_HEAD != 0
    }
    #[cfg(not(feature = "test-programs"))]
    {
        let _ = cfg;
        false
    }
}

/// Grows the packet by `delta` bytes at the head, for buffers without tailroom (veth hands
/// XDP the socket buffer itself when it has 256 bytes of headroom), and moves the first
/// `prefix` bytes (headers and question) to the new front.
#[inline(always)]
fn grow_at_head(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    prefix: usize,
    delta: i64,
) -> Result<(), u32> {
    // Through memory, so that the bound checked is the bound of the value the helpers get
    // (the compiler may otherwise hand them a copy made before the check).
    let prefix = question::opaque(&mut scratch.opaque, prefix);
    if delta <= 0 || prefix == 0 || prefix > FRAME_PREFIX_MAX {
        return Err(counter::PASS_ERROR);
    }
    // SAFETY: helpers check the packet bounds; the buffer holds FRAME_PREFIX_MAX bytes.
    unsafe {
        if bpf_xdp_load_bytes(
            ctx.ctx,
            0,
            scratch.frame.as_mut_ptr() as *mut _,
            prefix as u32,
        ) != 0
        {
            return Err(counter::PASS_ERROR);
        }
        if bpf_xdp_adjust_head(ctx.ctx, -(delta as i32)) != 0 {
            return Err(counter::PASS_NO_ROOM);
        }
        // From here the packet has changed: a failure must not let it through as it is.
        if bpf_xdp_store_bytes(
            ctx.ctx,
            0,
            scratch.frame.as_mut_ptr() as *mut _,
            prefix as u32,
        ) != 0
        {
            return Err(counter::PASS_ERROR);
        }
    }
    Ok(())
}

/// Whether `addr` (a `SERVICE_ADDRS` key as `dns_common::service_words` gives it) is a
/// service address: compared with those in `Config::service` when they are all there, looked
/// up in the map otherwise.
#[inline(always)]
fn is_service(cfg: &Config, addr: [u64; 2]) -> bool {
    let n = cfg.service_count as usize;
    if n > SERVICE_INLINE {
        let mut key = core::mem::MaybeUninit::<crate::zero::Buf16>::uninit();
        let p = key.as_mut_ptr() as *mut u64;
        // SAFETY: Buf16 is two aligned words, both written here.
        let key = unsafe {
            p.write(addr[0]);
            p.add(1).write(addr[1]);
            &(*key.as_ptr()).0
        };
        return SERVICE_ADDRS.get_ptr(key).is_some();
    }
    // Early returns: the verifier then follows one path per outcome, not one per combination
    // of the comparisons.
    for (i, s) in cfg.service.iter().enumerate() {
        if i >= n {
            break;
        }
        if addr[0] == s[0] && addr[1] == s[1] {
            return true;
        }
    }
    false
}

/// Finds the UDP DNS query to a service address and port, or says why this is not one.
#[inline(always)]
fn classify(ctx: &XdpContext, cfg: &Config) -> Result<Flow, u32> {
    let mut l3 = 14usize;
    let mut ethertype = be16(ctx, 12).map_err(not_dns)?;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = be16(ctx, l3 + 2).map_err(not_dns)?;
        l3 += 4;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = be16(ctx, l3 + 2).map_err(not_dns)?;
            l3 += 4;
        }
    }
    let frame_len = ctx.data_end() - ctx.data();
    let (v6, l4, proto, ip_payload) = match ethertype {
        ETH_P_IPV4 => {
            let ip: *const [u8; 20] = ptr_at(ctx, l3).map_err(not_dns)?;
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { ip.read_unaligned() };
            if ip[0] >> 4 != 4 {
                return Err(counter::PASS_NOT_DNS);
            }
            // `::ffff:a.b.c.d`: its first word is zero.
            let d = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]) as u64;
            let mapped = u32::from_ne_bytes([0, 0, 0xff, 0xff]) as u64 | d << 32;
            if !is_service(cfg, [0, mapped]) {
                return Err(counter::PASS_NOT_DNS);
            }
            let proto = ip[9];
            if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
                return Err(counter::PASS_NOT_DNS);
            }
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return Err(counter::PASS_FRAGMENT);
            }
            if ip[0] != 0x45 {
                return Err(counter::PASS_IP_OPTIONS);
            }
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            if total < 20 || l3 + total > frame_len {
                return Err(counter::PASS_MALFORMED);
            }
            (false, l3 + 20, proto, total - 20)
        }
        ETH_P_IPV6 => {
            let ip: *const [u8; 40] = ptr_at(ctx, l3).map_err(not_dns)?;
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { ip.read_unaligned() };
            if ip[0] >> 4 != 6 {
                return Err(counter::PASS_NOT_DNS);
            }
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&ip[24..32]);
            b.copy_from_slice(&ip[32..40]);
            if !is_service(cfg, [u64::from_ne_bytes(a), u64::from_ne_bytes(b)]) {
                return Err(counter::PASS_NOT_DNS);
            }
            let proto = ip[6];
            if proto == IPPROTO_ICMPV6 {
                return Err(counter::PASS_NOT_DNS);
            }
            if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
                return Err(counter::PASS_IPV6_EXT);
            }
            let payload = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            if l3 + 40 + payload > frame_len {
                return Err(counter::PASS_MALFORMED);
            }
            (true, l3 + 40, proto, payload)
        }
        _ => return Err(counter::PASS_NOT_DNS),
    };
    let dport = be16(ctx, l4 + 2).map_err(not_dns)?;
    if dport != cfg.port {
        return Err(counter::PASS_NOT_DNS);
    }
    if proto == IPPROTO_TCP {
        return Err(counter::PASS_TCP);
    }
    let udp_len = be16(ctx, l4 + 4)? as usize;
    if udp_len != ip_payload || udp_len < UDP_HEADER || be16(ctx, l4)? == 0 {
        return Err(counter::PASS_MALFORMED);
    }
    Ok(Flow {
        l3,
        v6,
        l4,
        dns_len: udp_len - UDP_HEADER,
    })
}

/// `handle` modes: the program that looks the query up, and the two it tail-calls.
pub const LOOKUP: u8 = 0;
pub const RESPOND: u8 = 1;
pub const DENIAL: u8 = 2;

/// The question the answering program read for the denial program (`nsec3::jump`); its
/// name, key and label starts are still in scratch.
#[inline(always)]
fn resumed_query(scratch: &Scratch) -> Result<question::Query, u32> {
    // SAFETY: a plain read of per-CPU memory.
    let r = unsafe { core::ptr::read_volatile(&scratch.nsec3.query) };
    let name_len = (r & 0x1ff) as usize;
    if name_len == 0 || name_len > NAME_MAX {
        return Err(counter::PASS_ERROR);
    }
    Ok(question::Query {
        name_len,
        limit: ((r >> 16) & 0xffff) as usize,
        edns: (r >> 32) & 1 != 0,
        dnssec_ok: (r >> 33) & 1 != 0,
        // The answer's OPT record is already in `Scratch::opt`; the query's RDATA sum is
        // for the UDP checksum (`rewrite::kept_sum`).
        options: edns::Options {
            rdata_sum: ((r >> 34) & 1 != 0).then_some((r >> 40) as u16),
            ..edns::Options::NONE
        },
    })
}
