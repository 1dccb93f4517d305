//! The userspace server: the engine it serves, binding the service addresses, and the
//! counters of the userspace path. UDP (worker threads) is in `udp` (its batch buffers in
//! `batch`, the per-query destination address in `pktinfo`), TCP in `tcp` (per-source
//! connection counts in `sources`); `notify` routes NOTIFY requests to the daemon's handler
//! instead of the engine; `contain` keeps a panicking query from taking its thread down,
//! `backoff` keeps failing loops from spinning.

pub mod backoff;
mod batch;
pub mod contain;
pub mod idle;
pub mod notify;
pub mod pktinfo;
mod sources;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;

use crate::engine::{Engine, Transport};

pub use notify::{Notifications, Service, TransferMessages, Transfers};
pub use tcp::{serve_tcp, TcpLimits};

/// The engine being served; replaced as a whole on reload.
pub type SharedEngine = Arc<RwLock<Arc<Engine>>>;

/// Counters of the userspace path.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub udp_queries: AtomicU64,
    pub udp_responses: AtomicU64,
    pub tcp_connections: AtomicU64,
    /// Connections open now (a gauge).
    pub tcp_open: AtomicU64,
    pub tcp_queries: AtomicU64,
    /// Refused at the global connection limit.
    pub tcp_refused_connections: AtomicU64,
    /// Refused at the per-source connection limit.
    pub tcp_refused_per_source: AtomicU64,
    /// Idle connections closed at the global limit to make room for a new one.
    pub tcp_evicted_idle: AtomicU64,
    pub tcp_accept_errors: AtomicU64,
    /// Connections closed because the client did not take an answer within the write timeout.
    pub tcp_write_timeouts: AtomicU64,
    /// Failed recvmmsg calls (other than the read timeout).
    pub udp_recv_errors: AtomicU64,
    pub control_accept_errors: AtomicU64,
    /// Panics contained while answering a query or running a control command.
    pub panics: AtomicU64,
    /// Responses made, by the header RCODE (low 4 bits), over UDP ([0]) and TCP ([1]).
    pub rcodes: [[AtomicU64; 16]; 2],
    /// UDP answers over their rate limit (sent anyway under `dry-run`).
    pub rrl_limited: AtomicU64,
    /// Limited answers sent truncated (TC=1).
    pub rrl_slipped: AtomicU64,
    /// Limited answers not sent.
    pub rrl_dropped: AtomicU64,
}

impl ServerStats {
    /// Counts `response` by its header RCODE.
    pub fn count_rcode(&self, transport: Transport, response: &[u8]) {
        if let Some(&b) = response.get(3) {
            let t = usize::from(transport == Transport::Tcp);
            self.rcodes[t][usize::from(b & 0x0f)]
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(crate) fn current(engine: &SharedEngine) -> Arc<Engine> {
    engine.read().expect("engine lock").clone()
}

/// Binds UDP (with SO_REUSEPORT, for the workers) and TCP on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<(std::net::UdpSocket, TcpListener)> {
    let udp = udp::bind_reuseport(addr)?;
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding TCP {addr}"))?;
    Ok((udp, tcp))
}
