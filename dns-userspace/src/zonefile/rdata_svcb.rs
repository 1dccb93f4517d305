//! RDATA presentation → wire for SVCB and HTTPS (RFC 9460 §2.1, Appendix A): priority, target
//! and SvcParams as `key=value` (value optionally quoted), written to the wire sorted by key.

use data_encoding::BASE64;

use super::lexer::Token;
use super::rdata::{ipv4, ipv6};
use super::text::{at, bad, parse_uint, unescape, FResult, Fields};
use super::types::{svc_key_from_str, svc_key_name};

/// `priority target key[=value]...`.
pub(crate) fn svcb(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.extend_from_slice(&f.u16("priority")?.to_be_bytes());
    f.push_name(out, "target name")?;
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut mandatory: Vec<u16> = Vec::new();
    for tok in f.rest() {
        let (key_raw, value_raw) = match tok.text.iter().position(|&c| c == b'=') {
            Some(i) => (&tok.text[..i], Some(&tok.text[i + 1..])),
            None => (tok.text, None),
        };
        let key = svc_key_from_str(key_raw).ok_or_else(|| {
            bad(
                tok,
                "SvcParamKey",
                "a key such as alpn, port, ipv4hint or keyNNNNN",
            )
        })?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(at(
                tok,
                format!("SvcParamKey {} given twice", svc_key_name(key)),
            ));
        }
        let value = match value_raw {
            None => None,
            Some(v) => {
                let v = match v {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => v,
                };
                Some(unescape(v).map_err(|e| at(tok, format!("bad SvcParamValue: {e}")))?)
            }
        };
        let wire = param_value(key, value.as_deref(), tok)?;
        if key == 0 {
            mandatory = wire
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        if wire.len() > 65535 {
            return Err(at(tok, "SvcParamValue longer than 65535 octets".into()));
        }
        params.push((key, wire));
    }
    for m in &mandatory {
        if !params.iter().any(|(k, _)| k == m) {
            return Err(f.missing(&format!(
                "SvcParam {} listed as mandatory",
                svc_key_name(*m)
            )));
        }
    }
    params.sort_unstable_by_key(|(k, _)| *k);
    for (k, v) in params {
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(())
}

/// Splits a comma-separated value-list (RFC 9460 Appendix A.1) whose character-string escapes
/// are already decoded: `\,` is a literal comma, `\\` a backslash.
fn value_list(v: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while let Some(&c) = v.get(i) {
        match (c, v.get(i + 1)) {
            (b'\\', Some(&next)) => {
                cur.push(next);
                i += 2;
            }
            (b',', _) => {
                items.push(std::mem::take(&mut cur));
                i += 1;
            }
            _ => {
                cur.push(c);
                i += 1;
            }
        }
    }
    items.push(cur);
    items
}

/// Wire form of one SvcParamValue.
fn param_value(key: u16, value: Option<&[u8]>, tok: &Token<'_>) -> FResult<Vec<u8>> {
    let name = svc_key_name(key);
    let need = |v: Option<&[u8]>| -> FResult<Vec<u8>> {
        match v {
            Some(v) if !v.is_empty() => Ok(v.to_vec()),
            _ => Err(at(tok, format!("SvcParam {name} needs a value"))),
        }
    };
    let mut out = Vec::new();
    match key {
        0 => {
            let mut keys = Vec::new();
            for item in value_list(&need(value)?) {
                let k = svc_key_from_str(&item)
                    .ok_or_else(|| bad(tok, "key in mandatory", "a SvcParamKey"))?;
                if k == 0 || keys.contains(&k) {
                    return Err(bad(tok, "mandatory", "distinct keys other than mandatory"));
                }
                keys.push(k);
            }
            keys.sort_unstable();
            keys.iter()
                .for_each(|k| out.extend_from_slice(&k.to_be_bytes()));
        }
        1 => {
            for id in value_list(&need(value)?) {
                if id.is_empty() || id.len() > 255 {
                    return Err(bad(tok, "alpn", "protocol ids of 1-255 octets"));
                }
                out.push(id.len() as u8);
                out.extend_from_slice(&id);
            }
        }
        2 | 8 => {
            if value.is_some_and(|v| !v.is_empty()) {
                return Err(at(tok, format!("SvcParam {name} takes no value")));
            }
        }
        3 => {
            let v = need(value)?;
            let port = parse_uint(&v, 65535).ok_or_else(|| bad(tok, "port", "0-65535"))?;
            out.extend_from_slice(&(port as u16).to_be_bytes());
        }
        4 | 6 => {
            for item in need(value)?.split(|&c| c == b',') {
                let t = Token {
                    text: item,
                    line: tok.line,
                    quoted: false,
                };
                if key == 4 {
                    out.extend_from_slice(&ipv4(&t)?.octets());
                } else {
                    out.extend_from_slice(&ipv6(&t)?.octets());
                }
            }
        }
        5 => {
            out = BASE64
                .decode(&need(value)?)
                .map_err(|_| bad(tok, "ech", "an ECHConfigList in base64"))?;
        }
        7 => {
            let v = need(value)?;
            if std::str::from_utf8(&v).is_err() {
                return Err(bad(tok, "dohpath", "a UTF-8 URI template"));
            }
            out = v;
        }
        _ => out = value.map(<[u8]>::to_vec).unwrap_or_default(),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::value_list;

    #[test]
    fn value_lists() {
        assert_eq!(value_list(b"h2,h3"), vec![b"h2".to_vec(), b"h3".to_vec()]);
        assert_eq!(
            value_list(b"f\\\\oo\\,bar,h2"),
            vec![b"f\\oo,bar".to_vec(), b"h2".to_vec()]
        );
        assert_eq!(value_list(b""), vec![Vec::<u8>::new()]);
    }
}
