//! The userspace DNS service over TCP with 2-byte length framing (RFC 1035 §4.2.2, RFC 7766):
//! pipelined queries, an idle timeout, a connection limit and graceful close.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::engine::Transport;
use crate::net::{current, ServerStats, SharedEngine};

/// TCP limits.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Accepts TCP connections until the task is cancelled.
pub async fn serve_tcp(
    listener: TcpListener,
    engine: SharedEngine,
    limits: TcpLimits,
    stats: Arc<ServerStats>,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::debug!("tcp accept: {e}");
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats
                .tcp_refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
        let engine = engine.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, engine, limits, &stats).await {
                log::debug!("tcp {peer}: {e:#}");
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    engine: SharedEngine,
    limits: TcpLimits,
    stats: &ServerStats,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let mut len = [0u8; 2];
    let mut msg = Vec::new();
    loop {
        match tokio::time::timeout(limits.idle_timeout, stream.read_exact(&mut len)).await {
            Err(_) => break, // idle
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) => {}
        }
        let n = u16::from_be_bytes(len) as usize;
        msg.resize(n, 0);
        tokio::time::timeout(limits.idle_timeout, stream.read_exact(&mut msg))
            .await
            .context("tcp read timeout")??;
        stats.tcp_queries.fetch_add(1, Ordering::Relaxed);
        let eng = current(&engine);
        if let Some(resp) = eng.answer(&msg, Transport::Tcp) {
            let mut out = Vec::with_capacity(resp.len() + 2);
            out.extend_from_slice(&(resp.len() as u16).to_be_bytes());
            out.extend_from_slice(&resp);
            stream.write_all(&out).await?;
        }
    }
    let _ = stream.shutdown().await;
    Ok(())
}
