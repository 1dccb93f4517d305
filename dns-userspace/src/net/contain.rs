//! Panic containment: a panic while answering one query (or running one control command) must
//! not take down the UDP worker, the TCP connection or the control task it happened in. The
//! engine call runs under `catch_unwind`; a panic is counted (`userspace.panics`), logged at
//! most once per interval, and the query gets SERVFAIL.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Once;

use crate::engine::query::{self, Parsed, FLAG_CD, FLAG_QR, FLAG_RD, RCODE_SERVFAIL};
use crate::engine::writer::Writer;
use crate::engine::{Engine, Transport};
use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
use crate::net::ServerStats;

thread_local! {
    /// How many `contained` calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last contained panic's message and location, left by the hook.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// One log line per interval for all contained panics together.
static PANIC_LOG: LogThrottle = LogThrottle::new(LOG_INTERVAL);

/// Installs a panic hook under which contained panics are not printed by the hook (their
/// containers log them, throttled, with the message and location the hook keeps). Panics
/// anywhere else print as before.
pub fn install_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                MESSAGE.with(|m| *m.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes `Err(what it said, and where when the hook is in)`.
pub fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    DEPTH.with(|d| d.set(d.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    r.map_err(|payload| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Counts and logs (throttled) a contained panic.
pub fn note_panic(stats: &ServerStats, context: std::fmt::Arguments<'_>, why: &str) {
    stats.panics.fetch_add(1, Ordering::Relaxed);
    PANIC_LOG.warn(format_args!("panic {context}: {why}"));
}

/// The engine's answer to `msg` from `client` (when known), or SERVFAIL if the engine panics.
pub fn answer(
    engine: &Engine,
    msg: &[u8],
    transport: Transport,
    client: Option<std::net::IpAddr>,
    stats: &ServerStats,
) -> Option<Vec<u8>> {
    answer_with(msg, transport, engine.config.server_payload, stats, || {
        engine
            .respond_to(msg, transport, client)
            .map(|r| r.message.into_bytes())
    })
}

/// `respond()`, or SERVFAIL (with an OPT of `payload` when the query had one) if it panics.
fn answer_with(
    msg: &[u8],
    transport: Transport,
    payload: u16,
    stats: &ServerStats,
    respond: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    match contained(respond) {
        Ok(r) => r,
        Err(why) => {
            let head = &msg[..msg.len().min(512)];
            let hex = data_encoding::HEXLOWER.encode(head);
            note_panic(
                stats,
                format_args!(
                    "answering a query over {transport:?}, answered SERVFAIL (query {hex})"
                ),
                &why,
            );
            contained(|| servfail(msg, payload)).ok().flatten()
        }
    }
}

/// SERVFAIL to `msg`: its ID, opcode, RD and CD, the question when it can be read, and an OPT
/// when the query had one. `None` for what gets no answer at all (responses, runts).
fn servfail(msg: &[u8], payload: u16) -> Option<Vec<u8>> {
    let (id, qflags, question, edns) = match query::parse(msg) {
        Parsed::Drop => return None,
        Parsed::Error {
            id,
            flags,
            question,
            edns,
            ..
        } => (id, flags, question, edns),
        Parsed::Query(q) => (q.id, q.flags, Some(q.question), q.edns),
    };
    let flags = FLAG_QR | (qflags & 0x7800) | (qflags & (FLAG_RD | FLAG_CD)) | RCODE_SERVFAIL;
    let mut w = Writer::new(id, flags, question, 65535);
    if let Some(e) = edns {
        w.push_opt(payload, 0, e.dnssec_ok, &[]);
    }
    Some(w.finish().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// www.example. A IN with an OPT record (payload 1232, DO), ID 0xbeef, RD.
    fn query() -> Vec<u8> {
        let mut m = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        m
    }

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_location() {
        install_hook();
        let r: Result<(), String> = contained(|| panic!("boom {}", 7));
        let why = r.unwrap_err();
        assert!(why.contains("boom 7"), "{why}");
        assert!(
            why.contains("contain.rs"),
            "location kept by the hook: {why}"
        );
        assert_eq!(contained(|| 5), Ok(5));
        // Outside `contained` the hook is out of the way again.
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn a_panicking_answer_is_counted_and_answered_with_servfail() {
        let stats = ServerStats::default();
        let q = query();
        let r = answer_with(&q, Transport::Udp, 1232, &stats, || {
            panic!("engine bug");
        })
        .expect("SERVFAIL");
        assert_eq!(stats.panics.load(Ordering::Relaxed), 1);
        let m = hickory_proto::op::Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::ServFail
        );
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries[0].name().to_string(), "www.example.");
        let edns = m.edns.as_ref().expect("OPT echoed");
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);
        // The next query is answered as usual, and a response (QR=1) still gets nothing.
        let ok = answer_with(&q, Transport::Tcp, 1232, &stats, || Some(vec![1, 2, 3]));
        assert_eq!(ok, Some(vec![1, 2, 3]));
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(
            answer_with(&response, Transport::Udp, 1232, &stats, || panic!("again")),
            None
        );
        assert_eq!(stats.panics.load(Ordering::Relaxed), 2);
    }
}
