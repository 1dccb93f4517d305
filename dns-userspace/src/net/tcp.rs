//! The userspace DNS service over TCP with 2-byte length framing (RFC 1035 §4.2.2, RFC 7766):
//! pipelined queries, an idle timeout, a write timeout, a global and a per-source connection
//! limit, and graceful close. NOTIFY goes to the daemon's handler (`notify`). Failed accepts
//! (EMFILE: out of descriptors) are waited out with a backoff, not spun on.
//!
//! At the global limit a new connection closes the one idle longest (`idle`) and takes its
//! slot; it is refused only when no connection is idle (every one answering or writing).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::Transport;
use crate::net::backoff::AcceptErrors;
use crate::net::idle::Idle;
use crate::net::notify::contained_next;
use crate::net::sources::{SourceSlot, Sources};
use crate::net::{current, ServerStats, Service};

/// TCP limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// How long a connection may wait for (the rest of) a query.
    pub idle_timeout: Duration,
    /// How long the client may take to accept one answer before the connection is closed.
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// Most connections from one source (an IPv4 address or an IPv6 /64).
    pub max_per_source: usize,
}

impl TcpLimits {
    pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 10;
    pub const DEFAULT_WRITE_TIMEOUT_SECS: u64 = 5;
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    pub const DEFAULT_MAX_PER_SOURCE: usize = 64;
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            idle_timeout: Duration::from_secs(Self::DEFAULT_IDLE_TIMEOUT_SECS),
            write_timeout: Duration::from_secs(Self::DEFAULT_WRITE_TIMEOUT_SECS),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_per_source: Self::DEFAULT_MAX_PER_SOURCE,
        }
    }
}

/// Accepts TCP connections until the task is cancelled.
pub async fn serve_tcp(
    listener: TcpListener,
    service: Service,
    limits: TcpLimits,
    stats: Arc<ServerStats>,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let sources = Sources::new(limits.max_per_source);
    let idle = Idle::new();
    let mut errors = AcceptErrors::new("tcp");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                errors.failed(&e, &stats.tcp_accept_errors).await;
                continue;
            }
        };
        errors.accepted();
        let Some(source) = sources.take(peer.ip()) else {
            stats.tcp_refused_per_source.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match make_room(&slots, &idle, &stats).await {
                Some(p) => p,
                None => {
                    stats
                        .tcp_refused_connections
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
        };
        stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
        stats.tcp_open.fetch_add(1, Ordering::Relaxed);
        let held = Held {
            _permit: permit,
            _source: source,
            stats: stats.clone(),
        };
        let service = service.clone();
        let stats = stats.clone();
        let idle = idle.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, service, limits, &idle, &stats).await {
                log::debug!("tcp {peer}: {e:#}");
            }
            drop(held);
        });
    }
}

/// How long the accept loop waits for an evicted connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// A slot for a new connection at the limit: the connection idle longest is told to close and
/// its slot taken. `None` when no connection is idle.
async fn make_room(
    slots: &Arc<Semaphore>,
    idle: &Idle,
    stats: &ServerStats,
) -> Option<OwnedSemaphorePermit> {
    if !idle.evict_oldest() {
        return None;
    }
    stats.tcp_evicted_idle.fetch_add(1, Ordering::Relaxed);
    let freed = tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned()).await;
    freed.ok().and_then(Result::ok)
}

/// What an open connection holds: its global and per-source slots and its place in the
/// `tcp_open` gauge, all given back on drop (also if the task ends by a panic).
struct Held {
    _permit: OwnedSemaphorePermit,
    _source: SourceSlot,
    stats: Arc<ServerStats>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stats.tcp_open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    mut stream: TcpStream,
    service: Service,
    limits: TcpLimits,
    idle: &Arc<Idle>,
    stats: &ServerStats,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let mut msg = Vec::new();
    loop {
        let waiting = idle.wait();
        let query = tokio::select! {
            biased;
            () = waiting.evicted() => false,
            q = read_query(&mut stream, &mut msg, limits.idle_timeout) => q?,
        };
        drop(waiting);
        if !query {
            break;
        }
        stats.tcp_queries.fetch_add(1, Ordering::Relaxed);
        if let Some(mut messages) = service.transfer(&msg, peer, Transport::Tcp, stats) {
            // A zone transfer: each message made (off the runtime's other tasks) when the
            // connection has taken the one before.
            while let Some(m) = tokio::task::block_in_place(|| contained_next(&mut messages, stats))
            {
                if !write_framed(&mut stream, &m, limits, stats).await? {
                    return Ok(());
                }
            }
            continue;
        }
        let eng = current(&service.engine);
        if let Some(resp) = service.answer(&eng, &msg, peer, Transport::Tcp, stats) {
            if !write_framed(&mut stream, &resp, limits, stats).await? {
                return Ok(());
            }
        }
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// Reads one query with its length into `msg`; false at the end of the stream or when the
/// client sent nothing for the idle timeout.
async fn read_query(stream: &mut TcpStream, msg: &mut Vec<u8>, idle: Duration) -> Result<bool> {
    let mut len = [0u8; 2];
    match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
        Err(_) => return Ok(false),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    msg.resize(usize::from(u16::from_be_bytes(len)), 0);
    tokio::time::timeout(idle, stream.read_exact(msg))
        .await
        .context("tcp read timeout")??;
    Ok(true)
}

/// Writes one message with its length; false when the client took longer than the write
/// timeout (the connection is then to be dropped, which closes it with a reset).
async fn write_framed(
    stream: &mut TcpStream,
    msg: &[u8],
    limits: TcpLimits,
    stats: &ServerStats,
) -> Result<bool> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    match tokio::time::timeout(limits.write_timeout, stream.write_all(&out)).await {
        Ok(written) => {
            written?;
            Ok(true)
        }
        Err(_) => {
            stats.tcp_write_timeouts.fetch_add(1, Ordering::Relaxed);
            Ok(false)
        }
    }
}
