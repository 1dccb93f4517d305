//! Routing NOTIFY (RFC 1996): the engine answers queries only (NOTIMP for any other opcode),
//! so a NOTIFY request arriving over UDP or TCP goes to the handler the daemon registers
//! (`daemon::notify_in`), which checks who sent it and answers. Without a handler the engine
//! answers it as before. The handler runs contained, like the engine: a panic in it is counted
//! and the message goes unanswered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::engine::{Engine, Transport};
use crate::net::{contain, ServerStats, SharedEngine};

/// The NOTIFY opcode.
const OPCODE_NOTIFY: u8 = 4;

/// What takes the NOTIFY requests.
pub trait Notifications: Send + Sync {
    /// The answer to the NOTIFY request `msg` from `peer`, if any.
    fn notify(&self, msg: &[u8], peer: SocketAddr, transport: Transport) -> Option<Vec<u8>>;
}

/// What answers on the service addresses: the engine, and the NOTIFY handler when there is one.
#[derive(Clone, Default)]
pub struct Service {
    pub engine: SharedEngine,
    pub notify: Option<Arc<dyn Notifications>>,
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
            let r = contain::answer(engine, msg, transport, stats);
            r.iter().for_each(|r| stats.count_rcode(transport, r));
            return r;
        };
        let peer = canonical(peer?);
        contain::contained(|| handler.notify(msg, peer, transport)).unwrap_or_else(|why| {
            contain::note_panic(
                stats,
                format_args!("handling a NOTIFY from {peer} over {transport:?}, not answered"),
                &why,
            );
            None
        })
    }
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
