//! The Prometheus metrics of a running server (`[server] metrics`, `--metrics ADDR`; served by
//! `metrics_http`): what `xdpdns stats` and `status` say, read at each scrape and encoded with
//! the Prometheus project's `prometheus-client`. Names follow the Prometheus conventions and
//! the DNS exporters (CoreDNS's `coredns_dns_requests_total`, knot-exporter's
//! `knot_zone_serial` and `knot_zone_status_expiration`):
//! - `xdpdns_requests_total{path="xdp|udp|tcp"}`: queries answered in XDP, and queries the
//!   userspace server took (those XDP passed, and all of them without XDP);
//! - `xdpdns_responses_total{path="udp|tcp",rcode}`: userspace answers by header RCODE (XDP's
//!   answers are counted by kind instead: `xdpdns_xdp_answers_total{kind}`);
//! - `xdpdns_xdp_passed_total{reason}`, the fast path's fill and promotions;
//! - per zone: served, serial; per secondary zone: expiry (negative once expired), last
//!   refresh, failures in a row, transfer state;
//! - the userspace and transfer counters of `xdpdns stats`, and `xdpdns_build_info{version}`.
//!
//! Reading one fails the scrape (HTTP 500) rather than leaving a metric out.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use dns_common::counter;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::xdp_probe::{self, XdpState};
use super::{held, State};
use crate::xfr::soa::Soa;
use crate::xfr::timers::{Status, TimerState, Timers};

/// Names of the header RCODEs (RFC 6895 §2.3); the rest by number.
const RCODES: [&str; 16] = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "DSOTYPENI",
    "RCODE12",
    "RCODE13",
    "RCODE14",
    "RCODE15",
];

/// The states of `xdpdns_zone_transfer_state` (one series each, 1 for the zone's).
const TRANSFER_STATES: [(Status, &str); 4] = [
    (Status::Empty, "empty"),
    (Status::Fresh, "fresh"),
    (Status::Refreshing, "refreshing"),
    (Status::Expired, "expired"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Info,
}

type Labels = Vec<(&'static str, String)>;

/// One metric family and its samples, as read at a scrape.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Labels, i64)>,
}

/// Every family of one scrape.
#[derive(Debug, Default)]
struct Families(Vec<Family>);

impl Families {
    fn add(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Family {
        self.0.push(Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        self.0.last_mut().expect("just pushed")
    }

    /// A family of one unlabelled sample.
    fn one(&mut self, name: &'static str, help: &'static str, kind: Kind, v: i64) {
        self.add(name, help, kind).samples.push((Vec::new(), v));
    }
}

impl Family {
    fn sample(&mut self, labels: &[(&'static str, &str)], v: i64) -> &mut Family {
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.samples.push((labels, v));
        self
    }
}

fn n(a: &AtomicU64) -> i64 {
    a.load(Relaxed) as i64
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        // A family without samples (no secondary zones, say) is left out.
        for f in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let ty = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
            };
            let mut m = enc.encode_descriptor(f.name, f.help, None, ty)?;
            for (labels, v) in &f.samples {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                match f.kind {
                    Kind::Info => m.encode_info(&labels)?,
                    Kind::Counter => {
                        ConstCounter::new(*v as u64).encode(m.encode_family(&labels)?)?
                    }
                    Kind::Gauge => ConstGauge::new(*v).encode(m.encode_family(&labels)?)?,
                }
            }
        }
        Ok(())
    }
}

/// The exposition text of every metric, now: OpenMetrics 1.0 or the Prometheus text format
/// 0.0.4.
pub(super) fn render(state: &State, openmetrics: bool) -> Result<String> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(read(state)?));
    let mut out = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    encoded.map_err(|_| anyhow!("encoding the metrics"))?;
    Ok(out)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Reads every metric from the running server.
fn read(state: &State) -> Result<Families> {
    let mut f = Families::default();
    f.add("xdpdns_build", "The running xdpdns build.", Kind::Info)
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    f.one(
        "xdpdns_start_time_seconds",
        "When the server started, in seconds since the epoch.",
        Kind::Gauge,
        unix_now() - state.started.elapsed().as_secs() as i64,
    );
    let s = &state.stats;
    let xdp_counters = match state.served.xdp() {
        Some(x) => Some(held(x).server.counters()?),
        None => None,
    };
    let requests = f.add(
        "xdpdns_requests",
        "DNS queries: answered in XDP, or taken by the userspace server over UDP or TCP.",
        Kind::Counter,
    );
    if let Some(c) = &xdp_counters {
        let answered: u64 = (0..counter::COUNT)
            .filter(|&i| counter::is_answered(i))
            .map(|i| c[i as usize])
            .sum();
        requests.sample(&[("path", "xdp")], answered as i64);
    }
    requests
        .sample(&[("path", "udp")], n(&s.udp_queries))
        .sample(&[("path", "tcp")], n(&s.tcp_queries));
    let responses = f.add(
        "xdpdns_responses",
        "Answers of the userspace server by transport and header RCODE.",
        Kind::Counter,
    );
    for (path, by_rcode) in ["udp", "tcp"].iter().zip(&s.rcodes) {
        for (rcode, v) in RCODES.iter().zip(by_rcode) {
            responses.sample(&[("path", path), ("rcode", rcode)], n(v));
        }
    }
    if let Some(c) = &xdp_counters {
        xdp(state, c, &mut f)?;
    }
    userspace(state, &mut f);
    zones(state, &mut f);
    Ok(f)
}

/// The fast path: answers by kind, passes by reason, attachment, fill, promotions.
fn xdp(state: &State, c: &[u64], f: &mut Families) -> Result<()> {
    let answers = f.add(
        "xdpdns_xdp_answers",
        "Queries answered in XDP, by kind of answer.",
        Kind::Counter,
    );
    let passed_at = counter::PASS_NOT_DNS as usize;
    let all = || counter::NAMES.iter().zip(c).enumerate();
    for (_, (name, v)) in all().filter(|(i, _)| counter::is_answered(*i as u32)) {
        let kind = name.strip_prefix("answered_").unwrap_or(name);
        answers.sample(&[("kind", kind)], *v as i64);
    }
    let passed = f.add(
        "xdpdns_xdp_passed",
        "Packets the XDP program passed up the stack, by reason.",
        Kind::Counter,
    );
    let counted = || counter::NAMES.iter().zip(c).enumerate().skip(passed_at);
    for (_, (name, v)) in counted().filter(|(i, _)| counter::is_pass(*i as u32)) {
        let reason = name.strip_prefix("pass_").unwrap_or(name);
        passed.sample(&[("reason", reason)], *v as i64);
    }
    let rrl = f.add(
        "xdpdns_xdp_rrl",
        "XDP answers over their rate limit (limited), and of those sent truncated (slipped) or \
         dropped.",
        Kind::Counter,
    );
    for (_, (name, v)) in counted().filter(|(i, _)| counter::is_rrl(*i as u32)) {
        let what = name.strip_prefix("rrl_").unwrap_or(name);
        rrl.sample(&[("what", what)], *v as i64);
    }
    if let Some(iface) = &state.opts.iface {
        let attached = matches!(xdp_probe::check(iface)?, XdpState::Attached { .. });
        f.add(
            "xdpdns_xdp_attached",
            "Whether the kernel runs this server's XDP program on the interface (1) or not (0).",
            Kind::Gauge,
        )
        .sample(&[("iface", iface)], attached.into());
    }
    let Some(x) = state.served.xdp() else {
        return Ok(());
    };
    let (entries, (templates, capacity), cached) = {
        let x = held(x);
        (
            x.entries,
            x.server.template_counts(),
            x.server.templates_cached(),
        )
    };
    f.one(
        "xdpdns_xdp_index_entries",
        "Keys of the published zones in the XDP index maps.",
        Kind::Gauge,
        entries as i64,
    );
    f.one(
        "xdpdns_xdp_templates",
        "Distinct answer templates of the published zones.",
        Kind::Gauge,
        templates as i64,
    );
    f.one(
        "xdpdns_xdp_template_cache_capacity",
        "Templates the kernel's template cache holds at most.",
        Kind::Gauge,
        capacity.into(),
    );
    f.one(
        "xdpdns_xdp_templates_cached",
        "Templates in the kernel's template cache.",
        Kind::Gauge,
        cached as i64,
    );
    Ok(())
}

/// The userspace server's, the promoter's and the secondary zones' counters.
fn userspace(state: &State, f: &mut Families) {
    let (s, x, p) = (&state.stats, &state.xfr, &state.promote);
    let counters = [
        (
            "xdpdns_xdp_cold_misses",
            "Queries passed because their template was not cached, seen by the promoter.",
            &p.cold_seen,
        ),
        (
            "xdpdns_xdp_promotions",
            "Templates promoted into the kernel's cache.",
            &p.promoted,
        ),
        (
            "xdpdns_xdp_promotions_deferred",
            "Promotions put off by the per-second limit.",
            &p.deferred,
        ),
        (
            "xdpdns_udp_rrl_limited",
            "Userspace UDP answers over their rate limit.",
            &s.rrl_limited,
        ),
        (
            "xdpdns_udp_rrl_slipped",
            "Rate-limited userspace UDP answers sent truncated (TC=1).",
            &s.rrl_slipped,
        ),
        (
            "xdpdns_udp_rrl_dropped",
            "Rate-limited userspace UDP answers not sent.",
            &s.rrl_dropped,
        ),
        (
            "xdpdns_tcp_connections",
            "TCP connections accepted.",
            &s.tcp_connections,
        ),
        (
            "xdpdns_tcp_accept_errors",
            "Failed TCP accepts.",
            &s.tcp_accept_errors,
        ),
        (
            "xdpdns_tcp_write_timeouts",
            "TCP connections closed because the client did not take an answer in time.",
            &s.tcp_write_timeouts,
        ),
        (
            "xdpdns_tcp_evicted_idle",
            "Idle TCP connections closed at the connection limit to make room for a new one.",
            &s.tcp_evicted_idle,
        ),
        (
            "xdpdns_udp_recv_errors",
            "Failed UDP receive calls.",
            &s.udp_recv_errors,
        ),
        (
            "xdpdns_control_accept_errors",
            "Failed accepts on the control socket.",
            &s.control_accept_errors,
        ),
        (
            "xdpdns_panics",
            "Panics contained while answering a query or running a control command.",
            &s.panics,
        ),
        (
            "xdpdns_xfr_refreshes",
            "Refreshes of secondary zones.",
            &x.refreshes,
        ),
        (
            "xdpdns_xfr_up_to_date",
            "Refreshes that found the zone current.",
            &x.up_to_date,
        ),
        (
            "xdpdns_xfr_ixfr_fallbacks",
            "AXFRs after an IXFR that could not be used.",
            &x.ixfr_fallbacks,
        ),
        (
            "xdpdns_xfr_failures",
            "Refreshes that failed at every primary, or could not complete.",
            &x.failures,
        ),
        (
            "xdpdns_xfr_store_errors",
            "Received versions that could not be stored.",
            &x.store_errors,
        ),
        (
            "xdpdns_xfr_publish_errors",
            "Received versions that could not be served.",
            &x.publish_errors,
        ),
    ];
    for (name, help, v) in counters {
        f.one(name, help, Kind::Counter, n(v));
    }
    f.one(
        "xdpdns_tcp_open_connections",
        "TCP connections open now.",
        Kind::Gauge,
        n(&s.tcp_open),
    );
    type Labelled<'a> = (
        &'static str,
        &'static str,
        &'static str,
        Vec<(&'static str, &'a AtomicU64)>,
    );
    let labelled: [Labelled; 7] = [
        (
            "xdpdns_tcp_refused_connections",
            "TCP connections closed at once, by the limit they met.",
            "limit",
            vec![
                ("global", &s.tcp_refused_connections),
                ("per_source", &s.tcp_refused_per_source),
            ],
        ),
        (
            "xdpdns_xfr_transfers",
            "Zone transfers received, by kind.",
            "type",
            vec![
                ("axfr", &x.transfers_axfr),
                ("ixfr", &x.transfers_ixfr),
                ("ixfr_full", &x.transfers_ixfr_full),
            ],
        ),
        (
            "xdpdns_xfr_notifies",
            "NOTIFY messages received, by outcome.",
            "result",
            vec![
                ("accepted", &x.notify_accepted),
                ("refused", &x.notify_refused),
            ],
        ),
        (
            "xdpdns_xfr_outbound_transfers",
            "Zone transfer requests from downstream secondaries, by what they got.",
            "result",
            vec![
                ("axfr", &x.outbound_axfr),
                ("ixfr", &x.outbound_ixfr),
                ("up_to_date", &x.outbound_up_to_date),
                ("refused", &x.outbound_refused),
            ],
        ),
        (
            "xdpdns_xfr_signed_queries",
            "TSIG-signed queries (downstreams' SOA checks), by outcome.",
            "result",
            vec![
                ("answered", &x.signed_queries),
                ("refused", &x.signed_queries_refused),
            ],
        ),
        (
            "xdpdns_xfr_notifies_sent",
            "NOTIFY to downstream secondaries, by outcome.",
            "result",
            vec![("answered", &x.notify_sent), ("failed", &x.notify_failed)],
        ),
        (
            "xdpdns_xfr_publications",
            "New versions of secondary zones put into the XDP maps, by how.",
            "update",
            vec![
                ("incremental", &x.publish_incremental),
                ("full", &x.publish_full),
            ],
        ),
    ];
    for (name, help, label, values) in labelled {
        let fam = f.add(name, help, Kind::Counter);
        for (value, v) in values {
            fam.sample(&[(label, value)], n(v));
        }
    }
}

/// Every zone's serial and whether it is served; each secondary zone's timers and state.
fn zones(state: &State, f: &mut Families) {
    let engine = state.served.engine.read().expect("engine lock").clone();
    let mut served = Vec::new();
    let mut serials = Vec::new();
    for z in engine.catalog.zones() {
        let apex = z.apex().to_string();
        let available = engine.catalog.is_available(z.apex());
        if available {
            if let Some(soa) = z.soa().rdatas.first().and_then(|r| Soa::from_rdata(r)) {
                serials.push((apex.clone(), soa.serial));
            }
        }
        served.push((apex, available));
    }
    let now = state.clock.now();
    let mut secondary = Vec::new();
    for h in &state.secondaries {
        let v = h.view();
        let apex = h.spec.zone.to_string();
        if !serials.iter().any(|(z, _)| *z == apex) {
            // Held but not served (expired under honour): still the copy on disk.
            if let Some(serial) = v.serial {
                serials.push((apex.clone(), serial));
            }
        }
        let status = Timers::restore(v.timers.clone(), h.spec.policy).status(now);
        secondary.push((apex, v.timers, status));
    }
    served.sort();
    serials.sort();
    secondary.sort_by(|a, b| a.0.cmp(&b.0));
    let fam = f.add(
        "xdpdns_zone_served",
        "Whether the zone is answered (1) or SERVFAIL (0: no copy yet, or expired under honour).",
        Kind::Gauge,
    );
    for (zone, available) in &served {
        fam.sample(&[("zone", zone)], (*available).into());
    }
    let fam = f.add(
        "xdpdns_zone_serial",
        "SOA serial of the zone's version served (or held, for a secondary zone not served).",
        Kind::Gauge,
    );
    for (zone, serial) in &serials {
        fam.sample(&[("zone", zone)], (*serial).into());
    }
    type PerZone = (
        &'static str,
        &'static str,
        fn(&TimerState, u64) -> Option<i64>,
    );
    let per_secondary: [PerZone; 4] = [
        (
            "xdpdns_zone_expiry_seconds",
            "Seconds until the secondary zone's copy expires; negative once expired.",
            |t, now| t.expires_at.map(|e| e as i64 - now as i64),
        ),
        (
            "xdpdns_zone_last_refresh_timestamp_seconds",
            "When a primary last answered a refresh of the secondary zone (seconds since the epoch).",
            |t, _| t.last_success.map(|l| l as i64),
        ),
        (
            "xdpdns_zone_next_refresh_timestamp_seconds",
            "When the secondary zone's next refresh is due (seconds since the epoch).",
            |t, _| Some(t.next_check as i64),
        ),
        (
            "xdpdns_zone_refresh_failures",
            "Failed refreshes of the secondary zone since its last success.",
            |t, _| Some(t.failures.into()),
        ),
    ];
    for (name, help, value) in per_secondary {
        let fam = f.add(name, help, Kind::Gauge);
        for (zone, t, _) in &secondary {
            if let Some(v) = value(t, now) {
                fam.sample(&[("zone", zone)], v);
            }
        }
    }
    let fam = f.add(
        "xdpdns_zone_transfer_state",
        "The secondary zone's state: empty (no copy yet), fresh, refreshing (overdue), expired.",
        Kind::Gauge,
    );
    for (zone, _, status) in &secondary {
        for (s, name) in TRANSFER_STATES {
            fam.sample(&[("zone", zone), ("state", name)], (*status == s).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_encode_with_conventional_suffixes_and_labels() {
        let mut f = Families::default();
        f.add("xdpdns_build", "Build.", Kind::Info)
            .sample(&[("version", "1.2.3")], 1);
        f.add("xdpdns_requests", "Queries.", Kind::Counter)
            .sample(&[("path", "xdp")], 7)
            .sample(&[("path", "udp")], 2);
        f.one("xdpdns_tcp_open_connections", "Open.", Kind::Gauge, 3);
        f.add("xdpdns_zone_expiry_seconds", "Expiry.", Kind::Gauge)
            .sample(&[("zone", "tld.")], -60);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(f));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for want in [
            "# TYPE xdpdns_requests_total counter\n",
            "xdpdns_requests_total{path=\"xdp\"} 7\n",
            "xdpdns_requests_total{path=\"udp\"} 2\n",
            "xdpdns_build_info{version=\"1.2.3\"} 1\n",
            "xdpdns_tcp_open_connections 3\n",
            "xdpdns_zone_expiry_seconds{zone=\"tld.\"} -60\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }
}
