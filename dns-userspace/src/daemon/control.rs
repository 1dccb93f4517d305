//! The control socket: a Unix stream socket on which the running server takes one command line
//! (`stats`, `status`, ...) and answers with text, then closes. `xdpdns stats` and friends are
//! its clients. Clients are served at once, each on its own task; one that sends nothing, or
//! more than a line of `REQUEST_MAX` bytes, gets an error after at most `IO_TIMEOUT`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::net::backoff::AcceptErrors;
use crate::net::{contain, ServerStats};

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/xdpdns/xdpdns.sock";

/// First line of a reply: `ok` or `error`.
const OK: &str = "ok\n";

/// Longest command line taken, newline included.
pub const REQUEST_MAX: usize = 1024;
/// How long a client may take to send its command, and to take the reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; more are answered `busy`.
const CLIENTS_MAX: usize = 16;

/// Sends `command` to the server at `path`; returns its reply text.
pub async fn request(path: &Path, command: &str) -> Result<String> {
    let mut s = UnixStream::connect(path).await.with_context(|| {
        format!(
            "connecting to the server's control socket {} (is `xdpdns serve` running?)",
            path.display()
        )
    })?;
    s.write_all(command.as_bytes()).await?;
    s.write_all(b"\n").await?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).await?;
    match reply.strip_prefix(OK) {
        Some(body) => Ok(body.to_owned()),
        None => Err(anyhow!(
            "{}",
            reply.strip_prefix("error\n").unwrap_or(&reply).trim_end()
        )),
    }
}

/// A bound control socket; removes its file on drop.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    pub fn bind(path: &Path) -> Result<ControlSocket> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        if path.exists() {
            // A live server answers; a stale socket file is replaced.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(anyhow!(
                    "another server is running on control socket {}",
                    path.display()
                ));
            }
            std::fs::remove_file(path).ok();
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("binding control socket {}", path.display()))?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
        })
    }

    /// Serves commands with `handler` until the task is cancelled, each client on its own
    /// task (on the multi-thread runtime: handlers run with `block_in_place`). A failed accept
    /// is counted and waited out; it never ends the loop.
    pub async fn serve<F>(&self, handler: F, stats: Arc<ServerStats>) -> Result<()>
    where
        F: Fn(&str) -> Result<String> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let clients = Arc::new(Semaphore::new(CLIENTS_MAX));
        let mut errors = AcceptErrors::new("control socket");
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    errors.failed(&e, &stats.control_accept_errors).await;
                    continue;
                }
            };
            errors.accepted();
            if !super::privilege::peer_allowed(&stream) {
                continue;
            }
            let permit = clients.clone().try_acquire_owned();
            let (handler, stats) = (handler.clone(), stats.clone());
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let reply = match permit {
                    Ok(_permit) => reply(&mut r, handler.as_ref(), &stats).await,
                    Err(_) => format!("error\nbusy: {CLIENTS_MAX} control clients at once\n"),
                };
                let _ = tokio::time::timeout(IO_TIMEOUT, w.write_all(reply.as_bytes())).await;
                discard_unread(&r);
            });
        }
    }
}

/// Reads one command from a client and runs it; returns the reply text.
async fn reply<F>(r: &mut OwnedReadHalf, handler: &F, stats: &ServerStats) -> String
where
    F: Fn(&str) -> Result<String>,
{
    let command = match read_command(r).await {
        Ok(c) => c,
        Err(e) => return format!("error\n{e:#}\n"),
    };
    // Commands may take long (a reload compiles every zone): let the runtime move its other
    // tasks off this thread meanwhile. A panic in a command is contained: the client gets an
    // error, the server goes on.
    match tokio::task::block_in_place(|| contain::contained(|| handler(&command))) {
        Ok(Ok(body)) => format!("{OK}{body}"),
        Ok(Err(e)) => format!("error\n{e:#}\n"),
        Err(why) => {
            contain::note_panic(
                stats,
                format_args!("running control command {command:?}"),
                &why,
            );
            format!("error\ninternal error running {command:?} (see the server log)\n")
        }
    }
}

/// One command line, of at most REQUEST_MAX bytes, within IO_TIMEOUT.
async fn read_command(r: &mut OwnedReadHalf) -> Result<String> {
    let mut line = Vec::new();
    let mut r = BufReader::new(r.take(REQUEST_MAX as u64 + 1));
    tokio::time::timeout(IO_TIMEOUT, r.read_until(b'\n', &mut line))
        .await
        .map_err(|_| anyhow!("no command within {} s", IO_TIMEOUT.as_secs()))?
        .context("reading the command")?;
    if line.len() > REQUEST_MAX {
        bail!("command longer than {REQUEST_MAX} bytes");
    }
    let line = String::from_utf8(line).context("command is not UTF-8")?;
    Ok(line.trim().to_owned())
}

/// Reads and drops what the client sent beyond its command line and is already here (the
/// rest of an over-long request, say; at most 1 MiB, without waiting): closing a Unix socket
/// with unread data resets it, and the client would not see its reply.
fn discard_unread(r: &OwnedReadHalf) {
    let mut buf = [0u8; 4096];
    for _ in 0..256 {
        if !matches!(r.try_read(&mut buf), Ok(n) if n > 0) {
            break;
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
