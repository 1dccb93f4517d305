//! Routing what the engine does not answer by itself: a NOTIFY request (RFC 1996) goes to the
//! handler the daemon registers (`daemon::notify_in`), which checks who sent it and answers; a
//! zone transfer request (AXFR, IXFR) and a TSIG-signed query (RFC 8945, such as a downstream
//! secondary's SOA check) go to the transfer handler (`daemon::transfers`), which checks the
//! TSIG and the zone's ACL. Without handlers the engine answers them as before. The handlers
//! run contained, like the engine: a panic in one is counted and the message goes unanswered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::engine::{query, Engine, Transport};
use crate::net::{contain, ServerStats, SharedEngine};
use crate::wire::name::Name;
use crate::wire::record::rtype;
use crate::xfr::message::OPTION_EXPIRE;
use crate::xfr::outbound;

/// The NOTIFY opcode.
const OPCODE_NOTIFY: u8 = 4;

/// What takes the NOTIFY requests.
pub trait Notifications: Send + Sync {
    /// The answer to the NOTIFY request `msg` from `peer`, if any.
    fn notify(&self, msg: &[u8], peer: SocketAddr, transport: Transport) -> Option<Vec<u8>>;
}

/// The messages of a zone transfer, made one at a time as the connection takes them.
pub type TransferMessages = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// What takes zone transfer requests and signed queries.
pub trait Transfers: Send + Sync {
    /// The messages answering the AXFR or IXFR request `msg` from `peer` (none: no answer).
    fn transfer(&self, msg: &[u8], peer: SocketAddr, transport: Transport) -> TransferMessages;
    /// Seconds until zone `apex` expires here, for EDNS EXPIRE in answers to its SOA (RFC
    /// 7314 §4); `None` when it is no secondary zone of ours or is not served.
    fn expire_left(&self, apex: &Name) -> Option<u32>;
    /// The answer to the TSIG-signed query `msg`, the query itself answered by `engine`.
    fn signed(
        &self,
        msg: &[u8],
        transport: Transport,
        engine: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>>;
}

/// What answers on the service addresses: the engine, and the NOTIFY and transfer handlers
/// when there are some.
#[derive(Clone, Default)]
pub struct Service {
    pub engine: SharedEngine,
    pub notify: Option<Arc<dyn Notifications>>,
    pub transfers: Option<Arc<dyn Transfers>>,
}

/// Whether `msg` is a NOTIFY request (QR clear, opcode 4).
pub fn is_notify(msg: &[u8]) -> bool {
    msg.len() >= 12 && msg[2] & 0x80 == 0 && (msg[2] >> 3) & 0x0f == OPCODE_NOTIFY
}

/// An address as the peer sent from: IPv4 also when it arrived on a dual-stack socket.
pub fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::to_canonical(&peer.ip()), peer.port())
}

impl Service {
    /// The answer to `msg` from `peer` (`None` when the sender is not known: NOTIFY is then
    /// not answered), using `engine` for everything but NOTIFY.
    pub(crate) fn answer(
        &self,
        engine: &Engine,
        msg: &[u8],
        peer: Option<SocketAddr>,
        transport: Transport,
        stats: &ServerStats,
    ) -> Option<Vec<u8>> {
        let Some(handler) = self.notify.as_ref().filter(|_| is_notify(msg)) else {
            let r = self.query(engine, msg, peer, transport, stats);
            r.iter().for_each(|r| stats.count_rcode(transport, r));
            return r;
        };
        let peer = canonical(peer?);
        contained_or_none(
            stats,
            || handler.notify(msg, peer, transport),
            || format!("handling a NOTIFY from {peer} over {transport:?}, not answered"),
        )
    }

    /// A message that is no NOTIFY: a transfer request (over UDP: one message), a signed
    /// query (verified, answered signed), or a query for the engine.
    fn query(
        &self,
        engine: &Engine,
        msg: &[u8],
        peer: Option<SocketAddr>,
        transport: Transport,
        stats: &ServerStats,
    ) -> Option<Vec<u8>> {
        let client = peer.map(|p| p.ip().to_canonical());
        let Some(t) = &self.transfers else {
            return contain::answer(engine, msg, transport, client, stats);
        };
        let answer = |q: &[u8]| {
            let r = contain::answer(engine, q, transport, client, stats)?;
            Some(with_expire(t.as_ref(), q, r, transport))
        };
        if outbound::is_transfer(msg) {
            return self
                .transfer(msg, peer, transport, stats)
                .and_then(|mut m| contained_next(&mut m, stats));
        }
        if !query::is_signed(msg) {
            return answer(msg);
        }
        contained_or_none(
            stats,
            || t.signed(msg, transport, &answer),
            || format!("answering a signed query over {transport:?}"),
        )
    }

    /// The messages answering `msg` when it is a zone transfer request and there is a transfer
    /// handler (`None` otherwise: the message is for `answer`). Take each message with
    /// [`contained_next`].
    pub(crate) fn transfer(
        &self,
        msg: &[u8],
        peer: Option<SocketAddr>,
        transport: Transport,
        stats: &ServerStats,
    ) -> Option<TransferMessages> {
        let t = self
            .transfers
            .as_ref()
            .filter(|_| outbound::is_transfer(msg))?;
        let peer = canonical(peer?);
        contain::contained(|| t.transfer(msg, peer, transport))
            .map_err(|why| {
                contain::note_panic(
                    stats,
                    format_args!("a transfer request from {peer} over {transport:?}"),
                    &why,
                )
            })
            .ok()
    }
}

/// `resp`, the engine's answer to `query`, with EDNS EXPIRE (RFC 7314) added when the query is
/// an SOA query that asked for it, for a secondary zone of ours with time left, and the option
/// fits: the option goes at the end of the answer's OPT record, its last record.
fn with_expire(
    t: &dyn Transfers,
    query: &[u8],
    mut resp: Vec<u8>,
    transport: Transport,
) -> Vec<u8> {
    if query::qtype(query) != Some(rtype::SOA) {
        return resp;
    }
    let query::Parsed::Query(q) = query::parse(query) else {
        return resp;
    };
    let Some(edns) = q
        .edns
        .as_ref()
        .filter(|e| e.options.contains(&OPTION_EXPIRE))
    else {
        return resp;
    };
    let limit = match transport {
        Transport::Udp => usize::from(edns.payload.max(512)),
        Transport::Tcp => usize::from(u16::MAX),
    };
    let Some((rtype::OPT, rdlen_at)) = query::last_record(&resp) else {
        return resp;
    };
    let Some(left) = t.expire_left(&q.qname) else {
        return resp;
    };
    if resp.len() + 8 > limit {
        return resp;
    }
    let rdlen = u16::from_be_bytes([resp[rdlen_at], resp[rdlen_at + 1]]) + 8;
    resp[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    resp.extend_from_slice(&OPTION_EXPIRE.to_be_bytes());
    resp.extend_from_slice(&4u16.to_be_bytes());
    resp.extend_from_slice(&left.to_be_bytes());
    resp
}

/// `f`'s answer; a panic in it is counted and logged with `what`, and gives no answer.
fn contained_or_none<T>(
    stats: &ServerStats,
    f: impl FnOnce() -> Option<T>,
    what: impl FnOnce() -> String,
) -> Option<T> {
    contain::contained(f).unwrap_or_else(|why| {
        contain::note_panic(stats, format_args!("{}", what()), &why);
        None
    })
}

/// The next message of a transfer; a panic while making it is counted and ends it.
pub(crate) fn contained_next(m: &mut TransferMessages, stats: &ServerStats) -> Option<Vec<u8>> {
    contain::contained(|| m.next()).unwrap_or_else(|why| {
        contain::note_panic(stats, format_args!("making a transfer message"), &why);
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Seen(AtomicUsize);

    impl Notifications for Seen {
        fn notify(&self, msg: &[u8], peer: SocketAddr, _: Transport) -> Option<Vec<u8>> {
            if msg[12] == 0xff {
                panic!("handler bug");
            }
            self.0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(peer, "198.18.0.9:5300".parse().unwrap());
            Some(vec![7])
        }
    }

    #[test]
    fn notify_goes_to_the_handler_and_queries_to_the_engine() {
        contain::install_hook();
        let seen = Arc::new(Seen(AtomicUsize::new(0)));
        let svc = Service {
            transfers: None,
            engine: Default::default(),
            notify: Some(seen.clone()),
        };
        let stats = ServerStats::default();
        let eng = Engine::default();
        // A NOTIFY (opcode 4, AA) for "." SOA IN, from a v4-mapped address.
        let notify = [0, 1, 0x24, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1];
        let peer: SocketAddr = "[::ffff:198.18.0.9]:5300".parse().unwrap();
        let r = svc.answer(&eng, &notify, Some(peer), Transport::Udp, &stats);
        assert_eq!(r, Some(vec![7]));
        assert_eq!(seen.0.load(Ordering::SeqCst), 1);
        // Unknown sender: no answer.
        assert_eq!(
            svc.answer(&eng, &notify, None, Transport::Tcp, &stats),
            None
        );
        // A NOTIFY response (QR set) and a query go to the engine.
        let mut response = notify;
        response[2] |= 0x80;
        assert_eq!(
            svc.answer(&eng, &response, Some(peer), Transport::Udp, &stats),
            None
        );
        let query = [0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1];
        let r = svc
            .answer(&eng, &query, Some(peer), Transport::Udp, &stats)
            .unwrap();
        assert_eq!(r[3] & 0x0f, 5, "REFUSED from the engine: no zones");
        assert_eq!(seen.0.load(Ordering::SeqCst), 1);
        // A panicking handler: counted, not answered.
        let mut bad = notify;
        bad[12] = 0xff;
        assert_eq!(
            svc.answer(&eng, &bad, Some(peer), Transport::Udp, &stats),
            None
        );
        assert_eq!(stats.panics.load(Ordering::Relaxed), 1);
        // Without a handler the engine answers NOTIFY (NOTIMP).
        let plain = Service::default();
        let r = plain
            .answer(&eng, &notify, Some(peer), Transport::Udp, &stats)
            .unwrap();
        assert_eq!(r[3] & 0x0f, 4);
    }
}
