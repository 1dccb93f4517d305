//! Open TCP connections per source, for the per-source connection limit beside the global
//! one. A source is an IPv4 address or an IPv6 /64 (what one host usually has, so that one
//! client cannot take every slot by walking through its addresses).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Connection counts by source.
#[derive(Debug)]
pub struct Sources {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's share of its source's count; given back on drop.
#[derive(Debug)]
pub struct SourceSlot {
    sources: Arc<Sources>,
    key: IpAddr,
}

/// The source an address belongs to.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

impl Sources {
    /// At most `max` connections per source.
    pub fn new(max: usize) -> Arc<Sources> {
        Arc::new(Sources {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, unless its source has `max` open.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let key = source(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: self.clone(),
            key,
        })
    }

    #[cfg(test)]
    fn sources(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.sources.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_source_gets_at_most_max_slots_and_gets_them_back() {
        let s = Sources::new(2);
        let a1 = s.take(ip("198.18.0.2")).unwrap();
        let _a2 = s.take(ip("::ffff:198.18.0.2")).unwrap();
        assert!(
            s.take(ip("198.18.0.2")).is_none(),
            "v4-mapped is the same source"
        );
        let _b = s.take(ip("198.18.0.3")).unwrap();
        // One /64 is one source.
        let _c1 = s.take(ip("fd00::2")).unwrap();
        let _c2 = s.take(ip("fd00::ffff:1:2:3")).unwrap();
        assert!(s.take(ip("fd00::9")).is_none());
        let _d = s.take(ip("fd00:0:0:1::2")).unwrap();
        drop(a1);
        assert!(s.take(ip("198.18.0.2")).is_some());
        assert_eq!(s.sources(), 4);
        drop((_a2, _b, _c1, _c2, _d));
        assert_eq!(s.sources(), 0, "no entry for sources without connections");
    }
}
