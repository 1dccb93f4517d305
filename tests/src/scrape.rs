//! Scraping the server's Prometheus endpoint from inside a namespace, and reading the samples
//! by name and labels. As with `stats`, a sample the server does not export is an error naming
//! it, never a 0: a renamed metric or label must fail the test that reads it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

/// An HTTP GET of `path` on `addr` from namespace `ns`, with extra header lines; the status
/// line, the header block and the body.
pub fn http_get(
    ns: &str,
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> Result<(String, String, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
    let raw = crate::in_netns(ns, move || -> Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(request.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out).context("reading the reply")?;
        Ok(out)
    })??;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header block in {raw:?}"))?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Ok((status.to_owned(), headers.to_owned(), body.to_owned()))
}

/// Samples of one scrape: `name{k="v",...}` (labels sorted) to value.
#[derive(Clone, Debug, Default)]
pub struct Samples(BTreeMap<String, f64>);

/// The key of a sample: the name and the labels, sorted by label name.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<_> = labels.to_vec();
    l.sort();
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

impl Samples {
    /// Scrapes `http://addr/metrics` from namespace `ns` (Prometheus text format).
    pub fn scrape(ns: &str, addr: SocketAddr) -> Result<Samples> {
        let (status, _, body) = http_get(ns, addr, "/metrics", "")?;
        if status != "HTTP/1.1 200 OK" {
            bail!("scrape: {status}\n{body}");
        }
        Samples::parse(&body)
    }

    /// Parses the Prometheus text format (comments skipped, escapes in label values kept).
    pub fn parse(text: &str) -> Result<Samples> {
        let mut map = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| anyhow!("sample without a value: {line:?}"))?;
            let value: f64 = value
                .parse()
                .with_context(|| format!("sample value in {line:?}"))?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (
                    n,
                    rest.strip_suffix('}')
                        .ok_or_else(|| anyhow!("unclosed labels in {line:?}"))?,
                ),
                None => (series, ""),
            };
            let mut pairs = Vec::new();
            for pair in split_labels(labels) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow!("label without a value in {line:?}"))?;
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| anyhow!("unquoted label value in {line:?}"))?;
                pairs.push((k, v));
            }
            if map.insert(key(name, &pairs), value).is_some() {
                bail!("sample {series} exported twice");
            }
        }
        Ok(Samples(map))
    }

    /// The sample `name` with exactly these labels; an error naming it when there is none.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let k = key(name, labels);
        self.0.get(&k).copied().ok_or_else(|| {
            let same: Vec<&str> = self
                .0
                .keys()
                .filter(|s| s.starts_with(&format!("{name}{{")))
                .map(String::as_str)
                .collect();
            anyhow!("no sample {k} (of {name}: {})", same.join(" "))
        })
    }

    /// How far sample `name{labels}` moved from `before` to `self`.
    pub fn delta(&self, before: &Samples, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        Ok(self.get(name, labels)? - before.get(name, labels)?)
    }

    /// The metric names exported (sample names, `_total` and all).
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.0
            .keys()
            .map(|k| k.split('{').next().unwrap_or(k))
            .collect()
    }
}

/// `a="x",b="y,z"` into `a="x"` and `b="y,z"` (commas inside quotes kept).
fn split_labels(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_by_name_and_labels_and_a_missing_one_is_an_error() {
        let text =
            "# HELP a_total x\n# TYPE a_total counter\na_total{path=\"udp\",rcode=\"NOERROR\"} 4\n\
                    a_total{rcode=\"REFUSED\",path=\"udp\"} 1\nb -3\nc{zone=\"x,y.\"} 7\n";
        let s = Samples::parse(text).unwrap();
        assert_eq!(
            s.get("a_total", &[("rcode", "NOERROR"), ("path", "udp")])
                .unwrap(),
            4.0
        );
        assert_eq!(
            s.get("a_total", &[("path", "udp"), ("rcode", "REFUSED")])
                .unwrap(),
            1.0
        );
        assert_eq!(s.get("b", &[]).unwrap(), -3.0);
        assert_eq!(s.get("c", &[("zone", "x,y.")]).unwrap(), 7.0);
        let e = s
            .get("a_total", &[("path", "tcp")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("path=\"tcp\"") && e.contains("NOERROR"), "{e}");
        assert!(s.get("missing", &[]).is_err());
        assert_eq!(
            s.names().into_iter().collect::<Vec<_>>(),
            ["a_total", "b", "c"]
        );
        assert!(Samples::parse("a 1\na 2\n").is_err());
        assert!(Samples::parse("a{x=1} 2\n").is_err());
    }
}
