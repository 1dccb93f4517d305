//! The record of what a pinned XDP instance's maps hold (`STORAGE/xdp-pin/NAME.json`), which
//! the next start reads to decide whether it may adopt the pinned program and maps
//! (`adopt`) and whether they may go on answering until it has published:
//! - `fingerprint`: SHA-256 of the eBPF object the program was loaded from; `program` and
//!   `maps`: the kernel ids of the program and of its maps, so that a record never vouches
//!   for pins it was not written for;
//! - `generation`, `nsec3_half`: what the program answers from;
//! - `clean`, `zones`, `settings`, `digest`: `clean` is cleared (and the file synced) before
//!   any publication changes the maps and set again once it is done, with the SOA serial of
//!   every zone the maps then answer for, the engine settings they were compiled with and,
//!   after a full publication, a keyed digest of
//!   every entry it wrote (`digest`, order-independent; the key is kept here, so a zone's
//!   author cannot aim at a collision). An incremental publication leaves no digest;
//! - `carried`: the counts of the programs this one took over from.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use super::compile::Entries;
use super::xdp::PROGRAM_OBJECT;
use crate::engine::Engine;

/// The record's format.
const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    pub version: u32,
    pub fingerprint: String,
    pub program: u32,
    pub maps: BTreeMap<String, u32>,
    pub generation: u16,
    pub nsec3_half: u32,
    pub clean: bool,
    /// SOA serial by apex; `None`: the zone is configured but not answerable (SERVFAIL).
    pub zones: BTreeMap<String, Option<u32>>,
    /// The engine settings the answers depend on (`settings`).
    pub settings: String,
    pub digest: Option<String>,
    pub key: [u64; 2],
    pub carried: Vec<u64>,
}

/// SHA-256 of the embedded eBPF object, hex.
pub fn fingerprint() -> &'static str {
    static F: OnceLock<String> = OnceLock::new();
    F.get_or_init(|| {
        use sha2::Digest as _;
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(PROGRAM_OBJECT))
    })
}

/// The record of instance `name` under `storage`.
pub fn path(storage: &Path, name: &str) -> PathBuf {
    storage.join("xdp-pin").join(format!("{name}.json"))
}

/// The SOA serial of every zone `engine` serves, by apex (`None`: not answerable).
pub fn serials(engine: &Engine) -> BTreeMap<String, Option<u32>> {
    engine
        .catalog
        .zones()
        .map(|z| {
            let serial = engine
                .catalog
                .is_available(z.apex())
                .then(|| crate::daemon::record::serial(z).ok())
                .flatten();
            (z.apex().to_string(), serial)
        })
        .collect()
}

/// The engine settings the maps' answers depend on, as text: payload size, NSID, CHAOS
/// answers, whether cookies are required, rate limiting (not the cookie secrets, random when
/// none is configured: the adopted program gets the new ones when it is adopted).
pub fn settings(engine: &Engine) -> String {
    let c = &engine.config;
    format!(
        "{} {:?} {:?} {:?} {:?} {:?}",
        c.server_payload,
        c.nsid,
        c.identity,
        c.version,
        c.cookies.as_ref().map(|k| k.require),
        c.rrl.as_ref().map(|l| &l.settings)
    )
}

impl PinState {
    /// A record for a program of this binary, nothing published yet.
    pub fn new() -> PinState {
        let mut key = [0u8; 16];
        if let Err(e) = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        {
            log::warn!("reading /dev/urandom for the XDP pin record's key: {e}");
        }
        let word = |i: usize| u64::from_ne_bytes(key[i * 8..i * 8 + 8].try_into().unwrap());
        PinState {
            version: VERSION,
            fingerprint: fingerprint().to_owned(),
            program: 0,
            maps: BTreeMap::new(),
            generation: 0,
            nsec3_half: 1,
            clean: false,
            zones: BTreeMap::new(),
            settings: String::new(),
            digest: None,
            key: [word(0), word(1)],
            carried: Vec::new(),
        }
    }

    /// The record at `path`; `None` when there is none or it cannot be read (logged).
    pub fn read(path: &Path) -> Option<PinState> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                log::warn!("reading {}: {e}", path.display());
                return None;
            }
        };
        match serde_json::from_str::<PinState>(&text) {
            Ok(s) if s.version == VERSION => Some(s),
            Ok(s) => {
                log::warn!("{}: format {} not known", path.display(), s.version);
                None
            }
            Err(e) => {
                log::warn!("{}: {e}", path.display());
                None
            }
        }
    }

    /// Writes the record to `path` durably (a temporary file synced, then renamed).
    pub fn write(&self, path: &Path) -> Result<()> {
        let dir = path.parent().context("no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Whether the maps answer for exactly the serials of `engine`'s zones, with its
    /// settings.
    pub fn fresh_for(&self, engine: &Engine) -> bool {
        self.clean && self.zones == serials(engine) && self.settings == settings(engine)
    }

    /// The digest of `entries` under this record's key.
    pub fn digest(&self, entries: &Entries) -> String {
        let one = |f: &dyn Fn(&mut SipHasher13)| {
            let mut h = SipHasher13::new_with_keys(self.key[0], self.key[1]);
            f(&mut h);
            h.finish128().as_u128()
        };
        let mut sum = 0u128;
        for (k, b) in &entries.exact {
            sum = sum.wrapping_add(one(&|h| (0u8, k, b).hash(h)));
        }
        for (k, b) in &entries.suffix {
            sum = sum.wrapping_add(one(&|h| (1u8, k, b).hash(h)));
        }
        for z in &entries.nsec3 {
            sum = sum.wrapping_add(one(&|h| {
                (2u8, &z.apex, z.slot, z.zone.count, z.zone.iterations).hash(h);
                (z.zone.salt_len, z.zone.apex_len, z.zone.iter_blocks).hash(h);
                (&z.zone.salt[..], &z.zone.iter_words[..]).hash(h);
                for x in &z.hashes {
                    x.0.hash(h);
                }
                for r in &z.records {
                    (r.len, r.rrs, r.nptrs, &r.ptrs[..], &r.data[..]).hash(h);
                }
                // An NSEC zone's sorted labels and the records they name.
                for l in z.nsec.iter().flat_map(|n| n.labels.iter()) {
                    (&l.label[..], l.len, l.record).hash(h);
                }
            }));
        }
        let n = entries.exact.len() + entries.suffix.len() + entries.nsec3.len();
        format!("{n}:{sum:032x}")
    }
}

impl Default for PinState {
    fn default() -> Self {
        PinState::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastpath::compile::SuffixKey;
    use crate::fastpath::templates::Body;
    use dns_common::{Answer, ANSWER_MAX, MAX_PTRS};

    fn body(b: u8) -> Body {
        Body::new(&Answer {
            header_flags: 0x8400,
            ancount: 1,
            nscount: 0,
            arcount: 0,
            len: 1,
            csum: 0,
            kind: 1,
            anchor_len: 0,
            nptrs: 0,
            ptrs: [0; MAX_PTRS],
            ptr_weight: 0,
            id: 0,
            data: [b; ANSWER_MAX],
            used: 0,
            _pad: [0; 3],
            _tail: [0; 16],
        })
    }

    fn suffix(n: u8) -> SuffixKey {
        SuffixKey {
            bits: 16,
            prefix: vec![0, n].into(),
        }
    }

    #[test]
    fn the_digest_ignores_order_and_sees_every_entry_and_the_key() {
        let s = PinState::new();
        let a = Entries {
            suffix: vec![(suffix(1), body(1)), (suffix(2), body(2))],
            ..Entries::default()
        };
        let mut b = Entries {
            suffix: vec![(suffix(2), body(2)), (suffix(1), body(1))],
            ..Entries::default()
        };
        assert_eq!(s.digest(&a), s.digest(&b));
        b.suffix[0].1 = body(3);
        assert_ne!(s.digest(&a), s.digest(&b), "another answer");
        b.suffix.pop();
        assert_ne!(s.digest(&a), s.digest(&b), "an entry fewer");
        let other = PinState {
            key: [s.key[0] ^ 1, s.key[1]],
            ..s.clone()
        };
        assert_ne!(s.digest(&a), other.digest(&a), "keyed");
    }

    #[test]
    fn a_record_round_trips_and_a_torn_one_is_none() {
        let dir = std::env::temp_dir().join(format!("xdpdns-pin-state-{}", std::process::id()));
        let at = path(&dir, "t");
        let s = PinState {
            clean: true,
            generation: 7,
            ..PinState::new()
        };
        s.write(&at).unwrap();
        assert_eq!(PinState::read(&at), Some(s));
        std::fs::write(&at, "{\"version\": 1").unwrap();
        assert_eq!(PinState::read(&at), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
