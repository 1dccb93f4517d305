//! The control socket: a Unix stream socket on which the running server takes one command line
//! (`stats`, `status`, ...) and answers with text, then closes. `xdpdns stats` and friends are
//! its clients.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/xdpdns/xdpdns.sock";

/// First line of a reply: `ok` or `error`.
const OK: &str = "ok\n";

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

    /// Serves commands with `handler` until the task is cancelled (on the multi-thread
    /// runtime: handlers run with `block_in_place`).
    pub async fn serve<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(&str) -> Result<String>,
    {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            let mut r = BufReader::new(r);
            if r.read_line(&mut line).await.is_err() {
                continue;
            }
            // Commands may take long (a reload compiles every zone): let the runtime move its
            // other tasks off this thread meanwhile.
            let reply = match tokio::task::block_in_place(|| handler(line.trim())) {
                Ok(body) => format!("{OK}{body}"),
                Err(e) => format!("error\n{e:#}\n"),
            };
            let _ = w.write_all(reply.as_bytes()).await;
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
