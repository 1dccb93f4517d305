//! The answer engine: `answer(query bytes, transport) → response bytes`, the one source of DNS
//! truth. The UDP/TCP server, the XDP compiler and the benchmarks all call it.
//!
//! It owns the message-level rules (header bits, EDNS, CHAOS, size limits and truncation);
//! lookups inside a zone are in `resolve`.

mod additional;
pub mod cookie;
mod denial;
#[cfg(feature = "test-support")]
pub mod fault;
pub mod message;
pub mod query;
mod referral;
pub mod resolve;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::name::Name;
use crate::wire::record::{class, rtype};
use crate::zone::Zone;
use cookie::{Cookies, Verdict};
use message::Message;
use query::{Edns, Parsed, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RD, FLAG_TC};
pub use resolve::Kind;
use writer::{OutSet, Section, Writer};

/// How the query arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Server-wide answering settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Largest UDP payload we send (RFC 6891 §6.2.5); 1232 by default (DNS Flag Day 2020).
    pub server_payload: u16,
    /// NSID payload (RFC 5001), sent when the client asks.
    pub nsid: Option<Vec<u8>>,
    /// Answer for CH TXT id.server and hostname.bind; `None` refuses them.
    pub identity: Option<String>,
    /// Answer for CH TXT version.bind and version.server; `None` refuses them.
    pub version: Option<String>,
    /// DNS Cookies (RFC 7873, RFC 9018); `None` ignores COOKIE options, as a server without
    /// cookie support does (RFC 7873 §5.2.1).
    pub cookies: Option<Cookies>,
    /// Response rate limiting (`[rrl]`): applied to UDP answers, by the XDP program and the
    /// UDP workers alike; `None` (the default) limits nothing. Shared across reloads.
    pub rrl: Option<Arc<crate::rrl::Limiter>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            server_payload: dns_common::DEFAULT_SERVER_PAYLOAD,
            nsid: None,
            identity: None,
            version: None,
            cookies: None,
            rrl: None,
        }
    }
}

/// The zones served, found by longest matching apex.
#[derive(Clone, Default)]
pub struct Catalog {
    zones: HashMap<Name, Arc<Zone>, rustc_hash::FxBuildHasher>,
    /// Zones configured here but not answerable now (a secondary zone before its first
    /// transfer, or expired): every name in them is answered SERVFAIL. Each holds a
    /// placeholder (an SOA and an NS, never answered from) in `zones`, so that the longest
    /// match still ends there and the XDP compiler, whose answers for it are all SERVFAIL,
    /// leaves a pass marker at its apex rather than letting names below fall through.
    unavailable: HashSet<Name, rustc_hash::FxBuildHasher>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds or replaces a zone.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        self.unavailable.remove(zone.apex());
        self.zones.insert(zone.apex().clone(), zone);
    }

    /// Adds or replaces the zone `apex` as one that is configured but cannot be answered from
    /// (SERVFAIL, as BIND, Knot and NSD answer for an expired zone).
    pub fn insert_unavailable(&mut self, apex: Name) {
        let zone = placeholder(&apex);
        self.zones.insert(apex.clone(), Arc::new(zone));
        self.unavailable.insert(apex);
    }

    /// Whether the zone at `apex` is answered from (false for an unavailable zone, and for a
    /// zone not in the catalog).
    pub fn is_available(&self, apex: &Name) -> bool {
        self.zones.contains_key(apex) && !self.unavailable.contains(apex)
    }

    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    pub fn get(&self, apex: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(apex)
    }

    /// The zone with the longest apex that `qname` is at or below.
    pub fn find(&self, qname: &Name) -> Option<&Arc<Zone>> {
        qname.ancestors().find_map(|n| self.zones.get(n))
    }
}

/// The placeholder of an unavailable zone: `apex SOA . . 0 0 0 0 0` and `apex NS .`.
fn placeholder(apex: &Name) -> Zone {
    let record = |rtype, rdata| crate::wire::record::Record {
        owner: apex.clone(),
        rtype,
        class: class::IN,
        ttl: 0,
        rdata,
    };
    // Root MNAME and RNAME, then serial, refresh, retry, expire and minimum, all 0.
    let mut soa = vec![0u8, 0];
    soa.extend_from_slice(&[0; 20]);
    let records = vec![record(rtype::SOA, soa), record(rtype::NS, vec![0])];
    let label = format!("{apex} (not served)");
    let source = crate::zone::ZoneSource {
        name: &label,
        locations: None,
    };
    Zone::build(apex.clone(), records, &source)
        .expect("an SOA and an NS at the apex make a zone")
        .0
}

/// The engine: zones plus settings.
#[derive(Clone, Default)]
pub struct Engine {
    pub catalog: Catalog,
    pub config: EngineConfig,
}

/// A response, in structured form, and what kind of answer it is.
#[derive(Debug)]
pub struct Response {
    pub message: Message,
    pub kind: Option<Kind>,
    /// What the query's COOKIE option was (`Verdict::is_valid`: the query had a valid server
    /// cookie, for rate limiting).
    pub cookie: Verdict,
}

const OPT_FIXED: usize = 11;

/// The EDNS of a query that the answer's OPT record follows: the query's OPT, and the COOKIE
/// data of the answer when there is one.
#[derive(Clone, Copy)]
struct Opt<'a> {
    edns: &'a Edns,
    cookie: Option<cookie::Reply>,
}

impl Engine {
    pub fn new(catalog: Catalog, config: EngineConfig) -> Engine {
        Engine { catalog, config }
    }

    /// Answers one query message from a client whose address is not known (the XDP
    /// compiler, tests): COOKIE options are ignored. `None` means no response is sent.
    pub fn answer(&self, msg: &[u8], transport: Transport) -> Option<Vec<u8>> {
        self.respond(msg, transport).map(|r| r.message.into_bytes())
    }

    /// Answers one query message from `client` (its source address, which server cookies
    /// are bound to).
    pub fn answer_to(&self, msg: &[u8], transport: Transport, client: IpAddr) -> Option<Vec<u8>> {
        self.respond_to(msg, transport, Some(client))
            .map(|r| r.message.into_bytes())
    }

    /// Like `answer`, with the response in structured form, and says which kind of answer it
    /// gave.
    pub fn respond(&self, msg: &[u8], transport: Transport) -> Option<Response> {
        self.respond_to(msg, transport, None)
    }

    /// Like `answer_to` (`answer` without a client address), with the response in structured
    /// form, and says which kind of answer it gave and what its COOKIE was.
    pub fn respond_to(
        &self,
        msg: &[u8],
        transport: Transport,
        client: Option<IpAddr>,
    ) -> Option<Response> {
        let q = match query::parse(msg) {
            Parsed::Drop => return None,
            Parsed::Error {
                id,
                flags,
                rcode,
                question,
                edns,
            } => {
                let opt = edns.as_ref().map(|edns| Opt { edns, cookie: None });
                let message = self.error(id, flags, rcode, question, opt.as_ref());
                return Some(Response {
                    message,
                    kind: None,
                    cookie: Verdict::Absent,
                });
            }
            Parsed::Query(q) => q,
        };
        #[cfg(feature = "test-support")]
        fault::check(q.question);
        let (verdict, reply) = self.cookie(q.edns.as_ref(), client);
        let opt = q.edns.as_ref().map(|edns| Opt {
            edns,
            cookie: reply,
        });
        let refuse = |rcode| {
            let message = self.error(q.id, q.flags, rcode, Some(q.question), opt.as_ref());
            Some(Response {
                message,
                kind: None,
                cookie: verdict,
            })
        };
        if q.edns.as_ref().is_some_and(|e| e.version != 0) {
            return refuse(query::RCODE_BADVERS);
        }
        match verdict {
            Verdict::Malformed => return refuse(query::RCODE_FORMERR),
            Verdict::ClientOnly | Verdict::Invalid
                if transport == Transport::Udp
                    && self.config.cookies.as_ref().is_some_and(|c| c.require) =>
            {
                return refuse(cookie::RCODE_BADCOOKIE)
            }
            _ => {}
        }
        let limit = self.limit(q.edns.as_ref(), transport);
        match q.qclass {
            class::IN => {}
            class::CH => return Some(self.chaos(&q, opt.as_ref(), limit, verdict)),
            _ => return refuse(query::RCODE_REFUSED),
        }
        match q.qtype {
            rtype::AXFR | rtype::IXFR => return refuse(query::RCODE_REFUSED),
            rtype::OPT | rtype::TSIG => return refuse(query::RCODE_FORMERR),
            t if t != rtype::ANY && rtype::is_meta(t) => return refuse(query::RCODE_NOTIMP),
            _ => {}
        }
        let Some(mut zone) = self.catalog.find(&q.qname) else {
            return refuse(query::RCODE_REFUSED);
        };
        // DS lives on the parent side of a cut (RFC 4034 §5): at a child apex, answer from
        // the parent zone when we serve it too.
        if q.qtype == rtype::DS && *zone.apex() == q.qname {
            if let Some(parent) = q.qname.parent().and_then(|p| self.catalog.find(&p)) {
                zone = parent;
            }
        }
        if !self.catalog.is_available(zone.apex()) {
            return refuse(query::RCODE_SERVFAIL);
        }
        let dnssec_ok = q.edns.as_ref().is_some_and(|e| e.dnssec_ok);
        let res = resolve::resolve(
            zone,
            &q.qname,
            q.qtype,
            dnssec_ok,
            transport == Transport::Tcp,
        );
        let mut flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD)) | res.rcode;
        if res.aa {
            flags |= FLAG_AA;
        }
        let reserve = self.opt_size(opt.as_ref());
        let skip = res
            .anchor
            .as_ref()
            .map_or(0, |a| q.qname.label_count().saturating_sub(a.label_count()));
        let mut w = Writer::with_anchor(q.id, flags, Some(q.question), limit, skip);
        let mut truncated = false;
        'sections: for (section, sets) in [
            (Section::Answer, &res.answer),
            (Section::Authority, &res.authority),
        ] {
            for s in sets.iter() {
                if w.push(section, s, reserve).is_err() {
                    truncated = true;
                    break 'sections;
                }
            }
        }
        if !truncated {
            for (s, required) in &res.additional {
                if w.push(Section::Additional, s, reserve).is_err() && *required {
                    truncated = true;
                    break;
                }
            }
        }
        if truncated {
            w.set_flags(FLAG_TC);
        }
        self.finish_opt(&mut w, opt.as_ref(), 0);
        Some(Response {
            message: w.finish(),
            kind: Some(res.kind),
            cookie: verdict,
        })
    }

    /// The verdict on the query's COOKIE option, and the COOKIE data of the answer.
    fn cookie(
        &self,
        edns: Option<&Edns>,
        client: Option<IpAddr>,
    ) -> (Verdict, Option<cookie::Reply>) {
        match (
            &self.config.cookies,
            edns.and_then(|e| e.cookie.as_ref()),
            client,
        ) {
            (Some(c), Some(option), Some(addr)) => c.check(option, addr, c.now()),
            _ => (Verdict::Absent, None),
        }
    }

    /// Largest response for this query (RFC 6891 §6.2.3–5, RFC 1035 §4.2.1).
    fn limit(&self, edns: Option<&Edns>, transport: Transport) -> usize {
        match (transport, edns) {
            (Transport::Tcp, _) => 65535,
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => {
                (e.payload.max(512)).min(self.config.server_payload.max(512)) as usize
            }
        }
    }

    /// The options of the answer's OPT record, in the order the XDP program writes them too:
    /// NSID (when asked for and configured), then COOKIE.
    fn options(&self, opt: Option<&Opt>) -> Vec<u8> {
        let mut o = Vec::new();
        let Some(opt) = opt else {
            return o;
        };
        if let (Some(id), true) = (&self.config.nsid, opt.edns.nsid) {
            o.extend_from_slice(&query::OPTION_NSID.to_be_bytes());
            o.extend_from_slice(&(id.len() as u16).to_be_bytes());
            o.extend_from_slice(id);
        }
        if let Some(c) = &opt.cookie {
            o.extend_from_slice(&query::OPTION_COOKIE.to_be_bytes());
            o.extend_from_slice(&(c.len() as u16).to_be_bytes());
            o.extend_from_slice(c);
        }
        o
    }

    fn opt_size(&self, opt: Option<&Opt>) -> usize {
        match opt {
            Some(_) => OPT_FIXED + self.options(opt).len(),
            None => 0,
        }
    }

    fn finish_opt(&self, w: &mut Writer, opt: Option<&Opt>, ext_rcode: u8) {
        if let Some(o) = opt {
            let options = self.options(opt);
            w.push_opt(
                self.config.server_payload,
                ext_rcode,
                o.edns.dnssec_ok,
                &options,
            );
        }
    }

    /// An error response: header, the question when known, and OPT when the query had one.
    fn error(
        &self,
        id: u16,
        qflags: u16,
        rcode: u16,
        question: Option<&[u8]>,
        opt: Option<&Opt>,
    ) -> Message {
        let opcode = qflags & 0x7800;
        let flags = FLAG_QR | opcode | (qflags & (FLAG_RD | FLAG_CD)) | (rcode & 0xf);
        let mut w = Writer::new(id, flags, question, 65535);
        self.finish_opt(&mut w, opt, (rcode >> 4) as u8);
        w.finish()
    }

    /// CHAOS class: server identity and version (as BIND, Knot and NSD answer them).
    fn chaos(
        &self,
        q: &query::Query<'_>,
        opt: Option<&Opt>,
        limit: usize,
        cookie: Verdict,
    ) -> Response {
        let lower = q.qname.to_string().to_ascii_lowercase();
        let text = match lower.as_str() {
            "id.server." | "hostname.bind." => self.config.identity.as_deref(),
            "version.bind." | "version.server." => self.config.version.as_deref(),
            _ => None,
        };
        let Some(text) = text else {
            let message = self.error(q.id, q.flags, query::RCODE_REFUSED, Some(q.question), opt);
            return Response {
                message,
                kind: None,
                cookie,
            };
        };
        let flags = FLAG_QR | FLAG_AA | (q.flags & (FLAG_RD | FLAG_CD));
        let mut w = Writer::new(q.id, flags, Some(q.question), limit);
        if q.qtype == rtype::TXT || q.qtype == rtype::ANY {
            let mut rd = Vec::new();
            for chunk in text.as_bytes().chunks(255) {
                rd.push(chunk.len() as u8);
                rd.extend_from_slice(chunk);
            }
            if rd.is_empty() {
                rd.push(0);
            }
            let set = OutSet {
                owner: q.qname.clone(),
                rtype: rtype::TXT,
                class: class::CH,
                ttl: 0,
                rdatas: std::borrow::Cow::Owned(vec![rd]),
            };
            if w.push(Section::Answer, &set, self.opt_size(opt)).is_err() {
                w.set_flags(FLAG_TC);
            }
        }
        self.finish_opt(&mut w, opt, 0);
        Response {
            message: w.finish(),
            kind: Some(Kind::Chaos),
            cookie,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
