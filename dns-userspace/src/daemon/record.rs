//! Live record changes (`xdpdns record add|del ZONE NAME TTL TYPE RDATA`): parsing one record
//! in zone-file syntax, checking that the change may be made, and making the zone's next
//! version — the record added or removed and the SOA serial incremented (RFC 1982, as knotc's
//! `zone-set` with `serial-policy: increment`). Pure: serving it on both paths and writing it to
//! the journal is `changes`' job.
//!
//! A change is refused, with the reason, when the zone is signed (no online signing here), when
//! the record is outside the zone, an SOA (the serial policy owns it), already there (add) or
//! not there (del), or when the zone it would make fails the zone checks (CNAME beside other
//! data, RDATA malformed for its type, no NS left at the apex, ...).
//!
//! A live change makes the next version in place (`Zone::apply`, the checks of a zone load run
//! again for the names it touches); a journal replayed at load builds the zone from its
//! records once (`next_version`).

use std::fmt;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::wire::name::Name;
use crate::wire::rdata;
use crate::wire::record::{class, rtype, Record};
use crate::xfr::soa::Soa;
use crate::zone::{Zone, ZoneSource};
use crate::zonefile;
use crate::zonefile::present::rdata_to_text;

/// Adding or removing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

impl Op {
    pub fn parse(word: &str) -> Result<Op> {
        match word {
            "add" => Ok(Op::Add),
            "del" | "delete" => Ok(Op::Del),
            other => bail!("record {other:?}: expected add or del"),
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Del => "del",
        }
    }
}

/// One record change, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordChange {
    pub op: Op,
    pub record: Record,
}

impl fmt::Display for RecordChange {
    /// `add OWNER TTL TYPE RDATA`, in zone-file syntax (the journal's line, which
    /// `RecordChange::parse` reads back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.word(), present(&self.record))
    }
}

/// A record in zone-file syntax without the class (IN), its owner absolute.
pub fn present(r: &Record) -> String {
    format!(
        "{} {} {} {}",
        r.owner,
        r.ttl,
        rtype::to_string(r.rtype),
        rdata_to_text(r.rtype, &r.rdata)
    )
}

impl RecordChange {
    /// Parses `NAME TTL TYPE RDATA` (NAME relative to `apex` unless it ends in a dot, `@` for
    /// the apex; RDATA as in a zone file) for operation `op`.
    pub fn parse(op: Op, apex: &Name, text: &str) -> Result<RecordChange> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() < 4 {
            bail!("expected NAME TTL TYPE RDATA, got {text:?}");
        }
        if words[0].starts_with('$') || text.contains('\n') {
            bail!("one record expected, not a directive: {text:?}");
        }
        words[1]
            .parse::<u32>()
            .map_err(|_| anyhow!("TTL {:?} is not a number of seconds", words[1]))?;
        let t = rtype::from_str(&words[2].to_ascii_uppercase())
            .ok_or_else(|| anyhow!("unknown record type {:?}", words[2]))?;
        // NAME TTL IN TYPE RDATA: the class is written by us, so that it is never read as a
        // type or the RDATA's first word.
        let rest = text.trim_start();
        let after_type = skip_words(rest, 3);
        let line = format!("{} {} IN {} {}\n", words[0], words[1], words[2], after_type);
        let parsed = zonefile::parse_str(&line, apex, "record")
            .map_err(|e| anyhow!("{}", e.message))
            .with_context(|| format!("parsing {text:?}"))?;
        let [record] = <[Record; 1]>::try_from(parsed.records)
            .map_err(|v| anyhow!("expected one record, {text:?} makes {}", v.len()))?;
        if record.rtype != t || record.class != class::IN {
            bail!("{text:?} does not read as one {} record", words[2]);
        }
        rdata::check(record.rtype, &record.rdata)
            .map_err(|e| anyhow!("bad {} RDATA: {e}", words[2]))?;
        Ok(RecordChange { op, record })
    }
}

/// `s` without its first `n` words (and the blanks after them).
fn skip_words(s: &str, n: usize) -> &str {
    let mut rest = s;
    for _ in 0..n {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    rest.trim_start()
}

/// Why `zone` takes no live changes, if it does not: it is signed.
pub fn refusal(zone: &Zone) -> Option<String> {
    let signed = zone.is_signed()
        || zone.apex_node().get(rtype::DNSKEY).is_some()
        || zone.nodes().any(|(_, n)| {
            n.rrsets.iter().any(|s| {
                !s.sigs.is_empty() || matches!(s.rtype, rtype::NSEC | rtype::NSEC3 | rtype::RRSIG)
            })
        });
    signed.then(|| {
        format!(
            "zone {} is signed (DNSKEY/RRSIG/NSEC present) and xdpdns does not sign online: \
             change the unsigned zone, sign it again and reload it",
            zone.apex()
        )
    })
}

/// Every record of `zone`, the SOA first (its RRSIGs too, as RRSIG records).
pub fn records(zone: &Zone) -> Vec<Record> {
    let mut out = Vec::with_capacity(zone.len() * 2);
    let apex = zone.apex();
    let mut push = |owner: &Name, set: &crate::zone::RRset| {
        for rd in &set.rdatas {
            out.push(record(owner, set.rtype, set.ttl, rd.clone()));
        }
        for sig in &set.sigs {
            out.push(record(owner, rtype::RRSIG, set.sig_ttl, sig.clone()));
        }
    };
    let soa = zone.soa();
    push(apex, soa);
    for (owner, node) in zone.nodes() {
        for set in &node.rrsets {
            if !(owner == apex && set.rtype == rtype::SOA) {
                push(owner, set);
            }
        }
    }
    out
}

fn record(owner: &Name, rtype: u16, ttl: u32, rdata: Vec<u8>) -> Record {
    Record {
        owner: owner.clone(),
        rtype,
        class: class::IN,
        ttl,
        rdata,
    }
}

/// The serial of `zone`'s SOA.
pub fn serial(zone: &Zone) -> Result<u32> {
    Soa::from_rdata(&zone.soa().rdatas[0])
        .map(|s| s.serial)
        .ok_or_else(|| anyhow!("zone {}: the SOA RDATA cannot be read", zone.apex()))
}

/// What a change made: the records it removed and added (the two SOAs included), and the
/// serials.
#[derive(Clone, Debug)]
pub struct Applied {
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
    pub from: u32,
    pub to: u32,
}

/// Makes `change` to `records` (a zone's, its SOA first) with the SOA serial incremented;
/// an error saying why when the change cannot be made (nothing is changed then).
pub fn apply(records: &mut Vec<Record>, apex: &Name, change: &RecordChange) -> Result<Applied> {
    let r = &change.record;
    if !r.owner.is_subdomain_of(apex) {
        bail!("{} is outside the zone {apex}", r.owner);
    }
    if r.rtype == rtype::SOA {
        bail!(
            "the SOA is not changed by record add/del (its serial is incremented with every \
             change): edit the zone file and reload"
        );
    }
    let old_soa = match records.first() {
        Some(soa) if soa.rtype == rtype::SOA => soa.clone(),
        _ => bail!("zone {apex}: no SOA first in its records"),
    };
    let from = Soa::from_record(&old_soa)
        .ok_or_else(|| anyhow!("zone {apex}: the SOA RDATA cannot be read"))?
        .serial;
    let to = from.wrapping_add(1);
    let same = |x: &Record| x.owner == r.owner && x.rtype == r.rtype && x.rdata == r.rdata;
    let mut removed = vec![old_soa.clone()];
    let mut added = Vec::new();
    match change.op {
        Op::Add => {
            if records.iter().any(|x| same(x) && x.ttl == r.ttl) {
                bail!("{} is in the zone already", present(r));
            }
            // The TTL given is the RRset's from now on (RFC 2181 §5.2: one TTL per RRset).
            for x in records.iter_mut() {
                if x.owner == r.owner && x.rtype == r.rtype && x.ttl != r.ttl {
                    removed.push(x.clone());
                    x.ttl = r.ttl;
                    if x.rdata != r.rdata {
                        added.push(x.clone());
                    }
                }
            }
            records.retain(|x| !same(x));
            records.push(r.clone());
            added.push(r.clone());
        }
        Op::Del => {
            let Some(at) = records.iter().position(same) else {
                bail!(
                    "{} {} {} is not in the zone: nothing to delete",
                    r.owner,
                    rtype::to_string(r.rtype),
                    rdata_to_text(r.rtype, &r.rdata)
                );
            };
            removed.push(records.remove(at));
        }
    }
    let mut new_soa = old_soa;
    let n = new_soa.rdata.len();
    new_soa.rdata[n - 20..n - 16].copy_from_slice(&to.to_be_bytes());
    records[0] = new_soa.clone();
    added.push(new_soa);
    Ok(Applied {
        removed,
        added,
        from,
        to,
    })
}

/// The zone made of `records`, with the checks of a zone file load (`source` names it in
/// messages). The one place a changed zone is built; it rebuilds the whole zone today.
pub fn next_version(
    apex: &Name,
    records: Vec<Record>,
    source: &str,
) -> Result<(Zone, Vec<String>)> {
    let src = ZoneSource {
        name: source,
        locations: None,
    };
    Zone::build(apex.clone(), records, &src).map_err(|e| anyhow!("{}", e.message))
}

/// `apply`, then `Zone::apply` of what it changed: the zone after `change`, what changed, and
/// the warnings.
pub fn changed(zone: &Zone, change: &RecordChange) -> Result<(Zone, Applied, Vec<String>)> {
    if let Some(why) = refusal(zone) {
        bail!("{why}");
    }
    let mut records = records(zone);
    let applied = apply(&mut records, zone.apex(), change)?;
    let step = crate::zone::Change {
        removed: applied.removed.iter().collect(),
        added: applied.added.iter().collect(),
    };
    let (next, warnings) = zone
        .apply(&[step], &zone.source)
        .map_err(|e| anyhow!("{}", e.message))
        .with_context(|| format!("{change} would make zone {} invalid", zone.apex()))?;
    Ok((next, applied, warnings))
}

/// A zone for the tests of this module and `changes`: `example.`, serial 10.
#[cfg(test)]
pub(crate) const TEST_ZONE: &str = "$TTL 300
@ IN SOA ns1 hostmaster 10 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.10
alias IN CNAME www
";

/// `text` (a variant of `TEST_ZONE`) as zone `example.`.
#[cfg(test)]
pub(crate) fn test_zone(text: &str) -> Zone {
    let apex = Name::parse("example.", None).unwrap();
    let parsed = zonefile::parse_str(text, &apex, "example.zone").unwrap();
    next_version(&apex, parsed.records, "example.zone")
        .unwrap()
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = TEST_ZONE;

    fn zone() -> Zone {
        test_zone(TEST_ZONE)
    }

    fn change(op: Op, text: &str) -> RecordChange {
        RecordChange::parse(op, zone().apex(), text).unwrap()
    }

    #[test]
    fn an_added_record_is_served_and_the_serial_incremented() {
        let z = zone();
        let c = change(Op::Add, "www 300 A 192.0.2.11");
        let (next, applied, _) = changed(&z, &c).unwrap();
        assert_eq!((applied.from, applied.to), (10, 11));
        assert_eq!(serial(&next).unwrap(), 11);
        let www = Name::parse("www.example.", None).unwrap();
        assert_eq!(
            next.node(&www)
                .unwrap()
                .1
                .get(rtype::A)
                .unwrap()
                .rdatas
                .len(),
            2
        );
        // And deleted again.
        let (back, applied, _) = changed(&next, &RecordChange { op: Op::Del, ..c }).unwrap();
        assert_eq!((applied.from, applied.to), (11, 12));
        assert_eq!(
            back.node(&www)
                .unwrap()
                .1
                .get(rtype::A)
                .unwrap()
                .rdatas
                .len(),
            1
        );
    }

    #[test]
    fn the_serial_wraps_as_rfc_1982_counts() {
        let z = test_zone(&ZONE.replace(" 10 3600", " 4294967295 3600"));
        let (next, ..) = changed(&z, &change(Op::Add, "new 60 TXT \"x y\"")).unwrap();
        assert_eq!(serial(&next).unwrap(), 0);
    }

    #[test]
    fn bad_changes_are_refused_with_the_reason() {
        let z = zone();
        let apex = z.apex().clone();
        let err = |op, text: &str| -> String {
            match RecordChange::parse(op, &apex, text) {
                Err(e) => format!("{e:#}"),
                Ok(c) => format!("{:#}", changed(&z, &c).expect_err("refused")),
            }
        };
        assert!(err(Op::Add, "www 300 A 192.0.2.999").contains("parsing"));
        assert!(err(Op::Add, "www 300 BOGUS x").contains("unknown record type"));
        assert!(err(Op::Add, "www x A 192.0.2.1").contains("TTL"));
        let e = err(Op::Add, "www.other. 300 A 192.0.2.1");
        assert!(e.contains("not in the zone example."), "{e}");
        assert!(err(Op::Add, "www 300 A 192.0.2.10").contains("already"));
        assert!(err(Op::Del, "www 300 A 192.0.2.99").contains("not in the zone"));
        assert!(
            err(Op::Add, "alias 300 A 192.0.2.1").contains("CNAME"),
            "{}",
            err(Op::Add, "alias 300 A 192.0.2.1")
        );
        assert!(err(Op::Add, "@ 300 SOA a b 1 2 3 4 5").contains("SOA"));
        assert!(err(Op::Del, "@ 300 NS ns1").contains("invalid"));
        assert!(err(Op::Add, "$INCLUDE 1 A /etc/passwd").contains("directive"));
    }

    #[test]
    fn a_new_ttl_is_the_whole_rrsets() {
        let z = zone();
        let (next, applied, _) = changed(&z, &change(Op::Add, "www 60 A 192.0.2.11")).unwrap();
        let www = Name::parse("www.example.", None).unwrap();
        assert_eq!(next.node(&www).unwrap().1.get(rtype::A).unwrap().ttl, 60);
        assert!(applied
            .removed
            .iter()
            .any(|r| r.owner == www && r.ttl == 300));
    }

    #[test]
    fn the_journal_line_reads_back_to_the_same_change() {
        let z = zone();
        let c = change(Op::Add, "txt 300 TXT \"hello world\" \"a;b\"");
        let line = c.to_string();
        let (op, rest) = line.split_once(' ').unwrap();
        let again = RecordChange::parse(Op::parse(op).unwrap(), z.apex(), rest).unwrap();
        assert_eq!(again, c);
    }
}
