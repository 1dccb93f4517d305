//! Log lines on stderr (the journal, under systemd) in the format chosen with `--log-format`
//! or `[server] log-format`: `text` (env_logger's own), `json` (one JSON object a line with
//! `ts`, `level`, `target` and `msg`, for log shippers) or `kv` (logfmt: `ts=... level=...
//! target=... msg="..."`). `RUST_LOG` filters as usual (default `info`).

use std::io::Write as _;

use anyhow::{bail, Result};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    Kv,
}

impl std::str::FromStr for LogFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<LogFormat> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            "kv" => Ok(LogFormat::Kv),
            other => bail!("log-format {other:?}: expected text, json or kv"),
        }
    }
}

/// Installs the logger.
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => {}
        LogFormat::Json => {
            b.format(|buf, r| {
                let line = serde_json::json!({
                    "ts": buf.timestamp_micros().to_string(),
                    "level": r.level().as_str(),
                    "target": r.target(),
                    "msg": r.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
        LogFormat::Kv => {
            b.format(|buf, r| {
                writeln!(
                    buf,
                    "ts={} level={} target={} msg={}",
                    buf.timestamp_micros(),
                    r.level().as_str().to_ascii_lowercase(),
                    kv_value(r.target()),
                    kv_value(&r.args().to_string())
                )
            });
        }
    }
    b.init();
}

/// A logfmt value: bare when it has no space, quote, `=` or control character, else quoted
/// with `"` and `\` escaped and newlines as `\n`.
fn kv_value(v: &str) -> String {
    let plain = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_values_are_quoted_only_when_they_must_be() {
        assert_eq!(kv_value("xdpdns::daemon"), "xdpdns::daemon");
        assert_eq!(kv_value("serving on [::]:53"), "\"serving on [::]:53\"");
        assert_eq!(kv_value("a=\"b\"\nc\\"), "\"a=\\\"b\\\"\\nc\\\\\"");
        assert_eq!(kv_value(""), "\"\"");
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
