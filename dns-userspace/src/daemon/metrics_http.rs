//! The HTTP endpoint Prometheus scrapes (`GET /metrics`): a small HTTP/1.x server on a tokio
//! TCP listener, one request per connection (`Connection: close`), as much as a scraper needs
//! and no more. The body is made by the daemon's `metrics::render`, in the OpenMetrics text
//! format when the scraper asks for it (`Accept: application/openmetrics-text`), else in the
//! Prometheus text format 0.0.4. Requests are bounded in size and time, and in number at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
use crate::net::contain;

/// Longest request head taken.
const HEAD_MAX: usize = 8192;
/// How long a client may take to send its request, and to take the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more are answered 503.
const CLIENTS_MAX: usize = 8;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the metrics listener (at start, so that a taken address stops the server).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint {addr}"))
}

/// Serves scrapes until the task is cancelled; `render(openmetrics)` makes the body.
pub async fn serve<F>(listener: TcpListener, render: F) -> Result<()>
where
    F: Fn(bool) -> Result<String> + Send + Sync + 'static,
{
    let render = Arc::new(render);
    let clients = Arc::new(Semaphore::new(CLIENTS_MAX));
    let errors = Arc::new(LogThrottle::new(LOG_INTERVAL));
    if let Ok(a) = listener.local_addr() {
        log::info!("metrics on http://{a}/metrics");
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                errors.warn(format_args!("metrics endpoint: accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = clients.clone().try_acquire_owned();
        let (render, errors) = (render.clone(), errors.clone());
        tokio::spawn(async move {
            let mut stream = stream;
            let reply = match permit {
                Ok(_permit) => respond(head(&mut stream).await, render.as_ref(), &errors),
                Err(_) => reply(503, "text/plain", "busy\n"),
            };
            let _ = tokio::time::timeout(IO_TIMEOUT, async {
                stream.write_all(&reply).await?;
                stream.shutdown().await
            })
            .await;
        });
    }
}

/// The request head (up to the blank line), read within the time and size limits.
async fn head(stream: &mut TcpStream) -> Result<String, u16> {
    let mut head = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > HEAD_MAX {
                return Err(431u16);
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(400u16),
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    };
    tokio::time::timeout(IO_TIMEOUT, read)
        .await
        .map_err(|_| 408u16)??;
    String::from_utf8(head).map_err(|_| 400)
}

/// The reply to a request head.
fn respond<F>(head: Result<String, u16>, render: &F, errors: &LogThrottle) -> Vec<u8>
where
    F: Fn(bool) -> Result<String>,
{
    let head = match head {
        Ok(h) => h,
        Err(code) => return reply(code, "text/plain", "bad request\n"),
    };
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return reply(405, "text/plain", "only GET\n");
    }
    if path != "/metrics" {
        return reply(
            404,
            "text/plain",
            "not found: the metrics are at /metrics\n",
        );
    }
    let openmetrics = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.contains("application/openmetrics-text")
        })
    });
    // Reading the metrics may wait for the fast path's lock while a reload compiles; a panic
    // is contained like any control command's.
    let body = tokio::task::block_in_place(|| contain::contained(|| render(openmetrics)));
    let mut r = match body {
        Ok(Ok(text)) => {
            let ty = if openmetrics {
                OPENMETRICS
            } else {
                PROMETHEUS_TEXT
            };
            reply(200, ty, &text)
        }
        Ok(Err(e)) => {
            errors.warn(format_args!("metrics: {e:#}"));
            reply(500, "text/plain", &format!("{e:#}\n"))
        }
        Err(_) => reply(500, "text/plain", "internal error (see the server log)\n"),
    };
    if method == "HEAD" {
        if let Some(end) = r.windows(4).position(|w| w == b"\r\n\r\n") {
            r.truncate(end + 4);
        }
    }
    r
}

fn reply(code: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: &[u8]) -> String {
        String::from_utf8_lossy(r)
            .lines()
            .next()
            .unwrap()
            .to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_get_metrics_in_either_format_and_refuses_the_rest() {
        let errors = LogThrottle::new(LOG_INTERVAL);
        let render = |om: bool| -> Result<String> {
            Ok(if om { "om\n# EOF\n" } else { "text\n" }.to_owned())
        };
        let get = |head: &str| respond(Ok(head.to_owned()), &render, &errors);
        let r = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status(&r), "HTTP/1.1 200 OK");
        let text = String::from_utf8(r).unwrap();
        assert!(text.contains(PROMETHEUS_TEXT) && text.ends_with("\r\n\r\ntext\n"));
        let r = get("GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text;version=1.0.0\r\n\r\n");
        assert!(String::from_utf8(r).unwrap().ends_with("om\n# EOF\n"));
        assert_eq!(
            status(&get("GET / HTTP/1.1\r\n\r\n")),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(&get("POST /metrics HTTP/1.1\r\n\r\n")),
            "HTTP/1.1 405 Method Not Allowed"
        );
        let head = get("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(String::from_utf8(head).unwrap().ends_with("\r\n\r\n"));
        let failing = |_: bool| -> Result<String> { Err(anyhow::anyhow!("reading counters")) };
        let r = respond(
            Ok("GET /metrics HTTP/1.0\r\n\r\n".into()),
            &failing,
            &errors,
        );
        assert_eq!(status(&r), "HTTP/1.1 500 Internal Server Error");
        assert!(String::from_utf8(r)
            .unwrap()
            .ends_with("reading counters\n"));
    }
}
