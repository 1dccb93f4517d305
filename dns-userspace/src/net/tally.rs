//! What userspace sees of the queries it gets (with XDP on, the ones XDP passed): how many
//! per zone (`zone.Z.queries` in `xdpdns stats`), and the names asked most often with the
//! reason XDP left them to userspace, as far as the query shows it (`xdpdns top`).
//!
//! Cheap and bounded: every query costs a question scan and one lookup per label of its name
//! (no allocation once its zone was counted); one in `SAMPLE` goes into a space-saving table
//! of `TOP` entries (Metwally et al., "Efficient computation of frequent and top-k elements in
//! data streams", 2005) with its weight, so `top`'s counts are estimates (never below the true
//! count minus the entry's error, which `top` prints). Threads count into their own shard;
//! readers add the shards up.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::engine::{query, Engine, Transport};
use crate::wire::name::{Name, NameRef};
use crate::wire::record::class;

/// Entries of each shard's top table.
pub const TOP: usize = 128;
/// One query in this many goes into the top table (weighted by it).
pub const SAMPLE: u64 = 4;
const SHARDS: usize = 8;

/// Why a query reached userspace, as far as userspace can tell from the query.
pub fn reason(msg: &[u8], transport: Transport, xdp: bool) -> &'static str {
    if transport == Transport::Tcp {
        return "tcp";
    }
    if !xdp {
        return "xdp_off";
    }
    match query::parse(msg) {
        query::Parsed::Query(q) => match &q.edns {
            _ if q.qclass != class::IN => "class",
            Some(e) if e.version != 0 => "edns_version",
            Some(e) if !e.options.is_empty() => "edns_option",
            // A miss (wildcards, DNAME, ANY, NSEC3 denial...), a cold template, or an answer
            // too big for the client: XDP knows which (`xdp.pass_*`), the query does not say.
            _ => "no_xdp_answer",
        },
        _ => "not_query",
    }
}

/// The question's name (wire, uncompressed) and type, if `msg` is a query with one question.
fn question(msg: &[u8]) -> Option<(&[u8], u16)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = *msg.get(at)? as usize;
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if at - 12 > 255 {
            return None;
        }
        if len == 0 {
            break;
        }
    }
    let t = msg.get(at..at + 2)?;
    Some((&msg[12..at], u16::from_be_bytes([t[0], t[1]])))
}

/// A name asked, lower-cased, with its type and reason.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub qname: Vec<u8>,
    pub qtype: u16,
    pub reason: &'static str,
}

/// A space-saving entry: its count and the most it may be over.
#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    count: u64,
    error: u64,
}

#[derive(Default)]
struct Shard {
    seen: u64,
    zones: HashMap<Name, u64, rustc_hash::FxBuildHasher>,
    top: Vec<Slot>,
}

impl Shard {
    fn add(&mut self, qname: &[u8], qtype: u16, reason: &'static str, weight: u64) {
        let same = |s: &Slot| {
            s.key.qtype == qtype
                && s.key.reason == reason
                && s.key.qname.eq_ignore_ascii_case(qname)
        };
        if let Some(s) = self.top.iter_mut().find(|s| same(s)) {
            s.count += weight;
            return;
        }
        let key = Key {
            qname: qname.to_ascii_lowercase(),
            qtype,
            reason,
        };
        if self.top.len() < TOP {
            self.top.push(Slot {
                key,
                count: weight,
                error: 0,
            });
            return;
        }
        let min = self
            .top
            .iter_mut()
            .min_by_key(|s| s.count)
            .expect("the table is full");
        *min = Slot {
            key,
            count: min.count + weight,
            error: min.count,
        };
    }
}

/// One line of `top`.
#[derive(Clone, Debug)]
pub struct Heavy {
    pub key: Key,
    /// Estimated queries (at most `error` over).
    pub count: u64,
    pub error: u64,
}

/// The userspace path's tally.
pub struct Tally {
    shards: Vec<Mutex<Shard>>,
    /// Whether the XDP path is attached (else every query is userspace's).
    pub xdp: AtomicBool,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            xdp: AtomicBool::new(false),
        }
    }
}

/// Locks a shard, also after a panic while it was held (counts are counts).
fn held(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

thread_local! {
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn my_shard() -> usize {
    SHARD.with(|s| {
        *s.get().get_or_insert_with(|| {
            let n = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(Some(n));
            n
        })
    })
}

impl Tally {
    /// Counts the query `msg` (anything else is not counted).
    pub fn note(&self, engine: &Engine, msg: &[u8], transport: Transport) {
        let Some((qname, qtype)) = question(msg) else {
            return;
        };
        let zone = engine.catalog.find_wire(NameRef::new(qname));
        let mut shard = held(&self.shards[my_shard()]);
        shard.seen += 1;
        if let Some(z) = zone {
            match shard.zones.get_mut(z.apex()) {
                Some(n) => *n += 1,
                None => {
                    shard.zones.insert(z.apex().clone(), 1);
                }
            }
        }
        if shard.seen.is_multiple_of(SAMPLE) {
            let why = reason(msg, transport, self.xdp.load(Ordering::Relaxed));
            shard.add(qname, qtype, why, SAMPLE);
        }
    }

    /// Queries counted for zone `apex`.
    pub fn zone_queries(&self, apex: &Name) -> u64 {
        self.shards
            .iter()
            .map(|s| held(s).zones.get(apex).copied().unwrap_or(0))
            .sum()
    }

    /// The `n` names asked most often, most first.
    pub fn top(&self, n: usize) -> Vec<Heavy> {
        let mut all: HashMap<Key, (u64, u64)> = HashMap::new();
        for s in &self.shards {
            for slot in &held(s).top {
                let e = all.entry(slot.key.clone()).or_default();
                e.0 += slot.count;
                e.1 += slot.error;
            }
        }
        let mut out: Vec<Heavy> = all
            .into_iter()
            .map(|(key, (count, error))| Heavy { key, count, error })
            .collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.key.qname.cmp(&b.key.qname))
        });
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_stay_in_a_full_table_and_counts_are_bounded() {
        let mut s = Shard::default();
        for i in 0..10_000u32 {
            // Name 0 is a quarter of the stream; the rest are all different.
            let name = if i % 4 == 0 { 0 } else { i };
            s.add(format!("\x01{name}\x00").as_bytes(), 1, "no_xdp_answer", 1);
        }
        assert_eq!(s.top.len(), TOP);
        let hot = s.top.iter().max_by_key(|s| s.count).unwrap();
        assert_eq!(hot.key.qname, b"\x010\x00");
        assert!(
            hot.count >= 2_500 && hot.count - hot.error <= 2_500,
            "{hot:?}"
        );
    }

    #[test]
    fn the_question_is_read_or_the_message_left_uncounted() {
        let mut q = vec![0u8, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03WWW\x07example\x00\x00\x01\x00\x01");
        let (name, t) = question(&q).unwrap();
        assert_eq!((name, t), (&b"\x03WWW\x07example\x00"[..], 1));
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(question(&response).is_none());
        assert!(question(&q[..20]).is_none());
    }
}
