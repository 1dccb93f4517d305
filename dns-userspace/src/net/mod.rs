//! The userspace server: the engine it serves, binding the service addresses, and the
//! counters of the userspace path. UDP (worker threads) is in `udp`, TCP in `tcp`.

pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;

use crate::engine::Engine;

pub use tcp::{serve_tcp, TcpLimits};

/// The engine being served; replaced as a whole on reload.
pub type SharedEngine = Arc<RwLock<Arc<Engine>>>;

/// Counters of the userspace path.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub udp_queries: AtomicU64,
    pub udp_responses: AtomicU64,
    pub tcp_connections: AtomicU64,
    pub tcp_queries: AtomicU64,
    pub tcp_refused_connections: AtomicU64,
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
