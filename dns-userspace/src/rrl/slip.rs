//! The truncated response a rate-limited query may get instead of nothing (the "slip", as
//! BIND and Knot send it): the response's header with TC=1, its question, no answer, authority
//! or additional records but the OPT record (with its options) when it has one. The XDP
//! program builds the same bytes.

const HEADER: usize = 12;
const TYPE_OPT: u16 = 41;
const FLAG_TC: u8 = 0x02;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The end of the (possibly compressed) name at `at`.
fn skip_name(m: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *m.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + l as usize,
            _ => return None,
        }
    }
}

/// `response` truncated, or `None` when it is not a response with one question that can be
/// read.
pub fn truncated(response: &[u8]) -> Option<Vec<u8>> {
    if be16(response, 4)? != 1 {
        return None;
    }
    let question_end = skip_name(response, HEADER)? + 4;
    if question_end > response.len() {
        return None;
    }
    let records: usize = (6..12)
        .step_by(2)
        .map(|at| be16(response, at).map(usize::from))
        .sum::<Option<usize>>()?;
    let mut at = question_end;
    let mut opt = None;
    for _ in 0..records {
        let start = at;
        at = skip_name(response, at)?;
        let rtype = be16(response, at)?;
        let rdlen = usize::from(be16(response, at + 8)?);
        at += 10 + rdlen;
        if at > response.len() {
            return None;
        }
        if rtype == TYPE_OPT {
            opt = Some(&response[start..at]);
        }
    }
    let mut out = Vec::with_capacity(question_end + opt.map_or(0, <[u8]>::len));
    out.extend_from_slice(&response[..HEADER]);
    out[2] |= FLAG_TC;
    out[6..12].copy_from_slice(&[0, 0, 0, 0, 0, opt.is_some() as u8]);
    out.extend_from_slice(&response[HEADER..question_end]);
    out.extend_from_slice(opt.unwrap_or_default());
    Some(out)
}
