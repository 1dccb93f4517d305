//! Reading the answer records of an AXFR response (RFC 5936 §2.2), message by message: the
//! first record is the zone's SOA, the response ends with the same SOA, and in between come the
//! zone's other records, all of class IN. The same reader takes an AXFR-style reply to an IXFR
//! request (RFC 1995 §4), whose first SOA the IXFR reader has already consumed.

use super::error::Kind;
use crate::wire::name::Name;
use crate::wire::record::{class, rtype, Record};

/// Bounds on what one transfer may bring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Records in the response (an IXFR's removals and additions counted).
    pub max_records: usize,
    /// Octets of owner names and RDATA, roughly the memory the records take.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// Room for a large TLD (tens of millions of records) on a machine of tens of GiB.
    fn default() -> Limits {
        Limits {
            max_records: 50_000_000,
            max_bytes: 8 << 30,
        }
    }
}

/// Counts what a transfer brought against its `Limits`.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: Limits,
    records: usize,
    bytes: u64,
}

impl Budget {
    pub(crate) fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            records: 0,
            bytes: 0,
        }
    }

    /// Counts `r`; checks it is class IN and may be stored in a zone.
    pub(crate) fn take(&mut self, r: &Record) -> Result<(), Kind> {
        if r.class != class::IN {
            return Err(Kind::Protocol(format!(
                "{} {} has class {}, not IN",
                r.owner,
                rtype::to_string(r.rtype),
                r.class
            )));
        }
        if rtype::is_meta(r.rtype) {
            return Err(Kind::Protocol(format!(
                "{} has the meta type {}",
                r.owner,
                rtype::to_string(r.rtype)
            )));
        }
        self.records += 1;
        self.bytes += (r.owner.wire().len() + r.rdata.len() + 16) as u64;
        if self.records > self.limits.max_records {
            return Err(Kind::Limit(format!(
                "more than {} records",
                self.limits.max_records
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(Kind::Limit(format!(
                "more than {} octets of records",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}

/// Whether `r` is an SOA owned by `apex`.
pub(crate) fn is_apex_soa(r: &Record, apex: &Name) -> bool {
    r.rtype == rtype::SOA && r.owner == *apex
}

/// The records of an AXFR response as they arrive.
#[derive(Debug)]
pub struct AxfrReader {
    apex: Name,
    budget: Budget,
    /// The opening SOA.
    soa: Option<Record>,
    records: Vec<Record>,
    done: bool,
}

impl AxfrReader {
    pub fn new(apex: Name, limits: Limits) -> AxfrReader {
        AxfrReader {
            apex,
            budget: Budget::new(limits),
            soa: None,
            records: Vec::new(),
            done: false,
        }
    }

    /// A reader whose opening SOA (and budget) the IXFR reader has already taken.
    pub(crate) fn after_soa(apex: Name, budget: Budget, soa: Record) -> AxfrReader {
        AxfrReader {
            apex,
            budget,
            records: vec![soa.clone()],
            soa: Some(soa),
            done: false,
        }
    }

    /// Takes the answer records of the next message. Returns `true` when the closing SOA has
    /// been read (it must be the message's last record).
    pub fn push(&mut self, answers: Vec<Record>) -> Result<bool, Kind> {
        let n = answers.len();
        for (i, r) in answers.into_iter().enumerate() {
            self.record(r)?;
            if self.done && i + 1 != n {
                return Err(Kind::Protocol(format!(
                    "{} records after the closing SOA",
                    n - i - 1
                )));
            }
        }
        Ok(self.done)
    }

    /// Whether the closing SOA has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes one record.
    pub(crate) fn record(&mut self, r: Record) -> Result<(), Kind> {
        if self.done {
            return Err(Kind::Protocol("records after the closing SOA".into()));
        }
        self.budget.take(&r)?;
        let Some(first) = &self.soa else {
            if !is_apex_soa(&r, &self.apex) {
                return Err(Kind::Protocol(format!(
                    "the first record is {} {}, not the SOA of {}",
                    r.owner,
                    rtype::to_string(r.rtype),
                    self.apex
                )));
            }
            self.soa = Some(r.clone());
            self.records.push(r);
            return Ok(());
        };
        if r.rtype == rtype::SOA && r.owner == self.apex {
            if r.rdata != first.rdata {
                return Err(Kind::Protocol(
                    "the closing SOA differs from the opening SOA (the zone changed during the transfer?)"
                        .into(),
                ));
            }
            self.done = true;
            return Ok(());
        }
        self.records.push(r);
        Ok(())
    }

    /// The zone's records (its SOA first), once the closing SOA was read.
    pub fn finish(self) -> Result<Vec<Record>, Kind> {
        if !self.done {
            return Err(Kind::Protocol(match self.soa {
                None => "the response holds no records".into(),
                Some(_) => format!(
                    "the response ended after {} records without the closing SOA",
                    self.records.len()
                ),
            }));
        }
        Ok(self.records)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rec(text: &str) -> Record {
        let origin = Name::parse("example.", None).unwrap();
        let z = crate::zonefile::parse_str(&format!("$TTL 60\n{text}\n"), &origin, "t").unwrap();
        z.records.into_iter().next().unwrap()
    }

    pub(crate) fn soa(serial: u32) -> Record {
        rec(&format!("@ SOA ns h {serial} 3600 600 86400 60"))
    }

    fn apex() -> Name {
        Name::parse("example.", None).unwrap()
    }

    #[test]
    fn reads_a_transfer_split_over_messages() {
        let mut r = AxfrReader::new(apex(), Limits::default());
        assert!(!r.push(vec![soa(5), rec("@ NS ns")]).unwrap());
        assert!(!r.push(vec![]).unwrap());
        assert!(r.push(vec![rec("ns A 198.18.0.1"), soa(5)]).unwrap());
        let recs = r.finish().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0], soa(5));
    }

    #[test]
    fn rejects_bad_openings_endings_classes_and_sizes() {
        let mut r = AxfrReader::new(apex(), Limits::default());
        let e = r.push(vec![rec("@ NS ns")]).unwrap_err().to_string();
        assert!(e.contains("not the SOA of example."), "{e}");

        let mut r = AxfrReader::new(apex(), Limits::default());
        let e = r.push(vec![soa(5), soa(6)]).unwrap_err().to_string();
        assert!(e.contains("closing SOA differs"), "{e}");

        let mut r = AxfrReader::new(apex(), Limits::default());
        let e = r.push(vec![soa(5), soa(5), rec("@ NS ns")]).unwrap_err();
        assert!(e.to_string().contains("after the closing SOA"), "{e}");

        let mut r = AxfrReader::new(apex(), Limits::default());
        r.push(vec![soa(5), rec("@ NS ns")]).unwrap();
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("without the closing SOA"), "{e}");

        let mut r = AxfrReader::new(apex(), Limits::default());
        let mut ch = rec("@ NS ns");
        ch.class = class::CH;
        assert!(r
            .push(vec![soa(5), ch])
            .unwrap_err()
            .to_string()
            .contains("class 3"));

        let limits = Limits {
            max_records: 2,
            max_bytes: 1 << 20,
        };
        let mut r = AxfrReader::new(apex(), limits);
        let e = r.push(vec![soa(5), rec("@ NS ns"), rec("ns A 198.18.0.1")]);
        assert!(matches!(e, Err(Kind::Limit(_))));
    }
}
