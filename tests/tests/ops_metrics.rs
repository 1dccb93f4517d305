//! The Prometheus endpoint end to end (issue 14): `xdpdns serve --metrics 127.0.0.1:9153` in
//! the server's namespace, known queries from the client's — answered by XDP (no EDNS
//! options), passed to userspace (a COOKIE option) and over TCP — and the scraped counters
//! moved by exactly as many on the right paths, kinds, reasons and RCODEs. A seeded secondary
//! zone (its primary unreachable, the test clock moved past EXPIRE under serve-stale) shows
//! serial, expiry going negative, refresh failures and the transfer state. Every metric the
//! Grafana dashboard (dist/grafana/xdpdns.json) uses must be exported.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use xdpdns::zone::load::{load_zone, ZoneSpec};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::scrape::{http_get, Samples};
use xdpdns_tests::seeded::Seeded;
use xdpdns_tests::{example_zone, workspace_root, TestNet, SERVER_V4, SERVER_V6};

const METRICS: &str = "127.0.0.1:9153";
const T0: u64 = 1_900_000_000;

fn metrics_addr() -> SocketAddr {
    METRICS.parse().unwrap()
}

/// `q` asking for EDNS EXPIRE (RFC 7314), which XDP passes to userspace (`pass_edns_option`).
fn with_expire(q: &Q) -> Vec<u8> {
    let mut q = q.clone();
    q.options = vec![(9, Vec::new())];
    q.wire()
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

/// Polls the endpoint until `ok` holds for a scrape (at most 15 s).
fn wait_for(net: &TestNet, what: &str, ok: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = Samples::scrape(&net.server_ns, metrics_addr()).unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {what}:\n{s:?}\n{}",
            net.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every `xdpdns_...` metric name in the dashboard's queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = workspace_root().join("dist/grafana/xdpdns.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("xdpdns_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn scraped_counters_move_by_the_queries_sent_on_each_path_and_the_dashboard_is_covered() {
    let mut net = TestNet::new().unwrap();
    let seeded = Seeded::new(&net, T0, "serve-stale").unwrap();
    seeded
        .start(&mut net, &["--listen", "[::]:53", "--metrics", METRICS])
        .unwrap();
    // The seeded zone's first refresh (due at once) has failed.
    let before = wait_for(&net, "tld.'s first failed refresh", |s| {
        s.get("xdpdns_zone_refresh_failures", &[("zone", "tld.")])
            .is_ok_and(|f| f >= 1.0)
    });

    const XDP_EXACT: usize = 5;
    const XDP_NXDOMAIN: usize = 3;
    const XDP_REFUSED: usize = 2;
    const COOKIE_NOERROR: usize = 4;
    const COOKIE_REFUSED: usize = 1;
    const TCP: usize = 3;
    let rcodes = net
        .in_client(|| {
            let v4 = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
            let v6 = SocketAddr::new(IpAddr::V6(SERVER_V6), 53);
            let mut got = Vec::new();
            let mut ask =
                |to: SocketAddr, m: Vec<u8>| got.push(rcode(&client::udp(to, &m).unwrap()));
            for i in 0..XDP_EXACT {
                ask(
                    if i % 2 == 0 { v4 } else { v6 },
                    Q::new("www.example.", 1).wire(),
                );
            }
            for i in 0..XDP_NXDOMAIN {
                ask(v4, Q::new(&format!("nope{i}.example."), 1).wire());
            }
            for _ in 0..XDP_REFUSED {
                ask(v6, Q::new("www.other.test.", 1).wire());
            }
            for _ in 0..COOKIE_NOERROR {
                ask(v4, with_expire(&Q::new("www.example.", 1)));
            }
            for _ in 0..COOKIE_REFUSED {
                ask(v4, with_expire(&Q::new("www.other.test.", 1)));
            }
            let msgs: Vec<Vec<u8>> = (0..TCP)
                .map(|_| Q::new("www.example.", 28).wire())
                .collect();
            for r in client::tcp(v4, &msgs).unwrap() {
                got.push(rcode(&r));
            }
            got
        })
        .unwrap();
    let want: Vec<u8> = [
        (XDP_EXACT, 0),
        (XDP_NXDOMAIN, 3),
        (XDP_REFUSED, 5),
        (COOKIE_NOERROR, 0),
        (COOKIE_REFUSED, 5),
        (TCP, 0),
    ]
    .iter()
    .flat_map(|&(n, r)| std::iter::repeat_n(r, n))
    .collect();
    assert_eq!(rcodes, want, "the RCODEs of the answers");
    let after = Samples::scrape(&net.server_ns, metrics_addr()).unwrap();
    let d = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels).unwrap();
    let xdp = XDP_EXACT + XDP_NXDOMAIN + XDP_REFUSED;
    let udp = COOKIE_NOERROR + COOKIE_REFUSED;
    assert_eq!(d("xdpdns_requests_total", &[("path", "xdp")]), xdp as f64);
    assert_eq!(d("xdpdns_requests_total", &[("path", "udp")]), udp as f64);
    assert_eq!(d("xdpdns_requests_total", &[("path", "tcp")]), TCP as f64);
    let kind = |k| d("xdpdns_xdp_answers_total", &[("kind", k)]);
    assert_eq!(kind("exact"), XDP_EXACT as f64);
    assert_eq!(kind("negative"), XDP_NXDOMAIN as f64);
    assert_eq!(kind("refused"), XDP_REFUSED as f64);
    assert_eq!(kind("referral") + kind("chaos"), 0.0);
    let passed = |r| d("xdpdns_xdp_passed_total", &[("reason", r)]);
    assert_eq!(passed("edns_option"), udp as f64);
    assert!(passed("tcp") >= 1.0, "XDP passed the TCP segments");
    let resp = |path, rcode| {
        d(
            "xdpdns_responses_total",
            &[("path", path), ("rcode", rcode)],
        )
    };
    assert_eq!(resp("udp", "NOERROR"), COOKIE_NOERROR as f64);
    assert_eq!(resp("udp", "REFUSED"), COOKIE_REFUSED as f64);
    assert_eq!(resp("udp", "NXDOMAIN") + resp("udp", "SERVFAIL"), 0.0);
    assert_eq!(resp("tcp", "NOERROR"), TCP as f64);
    assert_eq!(d("xdpdns_tcp_connections_total", &[]), 1.0);

    // Gauges: the build, the fast path, the zones.
    let g = |name: &str, labels: &[(&str, &str)]| after.get(name, labels).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(g("xdpdns_build_info", &[("version", version)]), 1.0);
    assert_eq!(g("xdpdns_xdp_attached", &[("iface", &net.server_if)]), 1.0);
    assert!(g("xdpdns_xdp_index_entries", &[]) > 0.0);
    assert!(g("xdpdns_xdp_templates", &[]) > 0.0);
    assert!(g("xdpdns_xdp_template_cache_capacity", &[]) >= g("xdpdns_xdp_templates", &[]));
    // The default cache holds every template.
    assert_eq!(
        g("xdpdns_xdp_templates_cached", &[]),
        g("xdpdns_xdp_templates", &[])
    );
    let (zone, _) = load_zone(&example_zone().parse::<ZoneSpec>().unwrap()).unwrap();
    let serial = xdpdns::xfr::soa::Soa::from_rdata(&zone.soa().rdatas[0])
        .unwrap()
        .serial;
    assert_eq!(
        g("xdpdns_zone_serial", &[("zone", "example.")]),
        f64::from(serial)
    );
    assert_eq!(g("xdpdns_zone_served", &[("zone", "example.")]), 1.0);
    assert_eq!(g("xdpdns_zone_serial", &[("zone", "tld.")]), 7.0);
    assert_eq!(
        g("xdpdns_zone_expiry_seconds", &[("zone", "tld.")]),
        86400.0
    );
    let stamp = g(
        "xdpdns_zone_last_refresh_timestamp_seconds",
        &[("zone", "tld.")],
    );
    assert_eq!(stamp, T0 as f64, "seeded at the test clock's time");
    let state = |s: &Samples, st| {
        s.get(
            "xdpdns_zone_transfer_state",
            &[("zone", "tld."), ("state", st)],
        )
        .unwrap()
    };
    assert_eq!(state(&after, "refreshing"), 1.0);
    // Feeding downstreams and the XDP publications of secondary zones are exported (their
    // values are checked through `xdpdns stats` in feed_downstream.rs); none happened here.
    for (name, label, value) in [
        ("xdpdns_xfr_outbound_transfers_total", "result", "axfr"),
        ("xdpdns_xfr_outbound_transfers_total", "result", "refused"),
        ("xdpdns_xfr_signed_queries_total", "result", "answered"),
        ("xdpdns_xfr_notifies_sent_total", "result", "answered"),
        ("xdpdns_xfr_publications_total", "update", "incremental"),
        ("xdpdns_xfr_publications_total", "update", "full"),
    ] {
        assert_eq!(g(name, &[(label, value)]), 0.0, "{name}{{{label}={value}}}");
    }
    assert_eq!(
        state(&after, "fresh") + state(&after, "expired") + state(&after, "empty"),
        0.0
    );

    // Past EXPIRE with no primary: still served (serve-stale), the expiry negative.
    seeded.advance_to(86400 + 100).unwrap();
    let stale = wait_for(&net, "tld. expired", |s| state(s, "expired") == 1.0);
    assert_eq!(
        stale
            .get("xdpdns_zone_expiry_seconds", &[("zone", "tld.")])
            .unwrap(),
        -100.0
    );
    assert_eq!(
        stale
            .get("xdpdns_zone_served", &[("zone", "tld.")])
            .unwrap(),
        1.0
    );

    // The dashboard queries only what is exported.
    let exported = after.names();
    let used = dashboard_metrics();
    assert!(used.len() >= 10, "the dashboard uses {used:?}");
    for m in &used {
        assert!(
            exported.contains(m.as_str()),
            "the dashboard uses {m}, which the server does not export ({exported:?})"
        );
    }

    // OpenMetrics when asked for; only /metrics is served.
    let accept = "Accept: application/openmetrics-text; version=1.0.0\r\n";
    let (status, headers, body) =
        http_get(&net.server_ns, metrics_addr(), "/metrics", accept).unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("application/openmetrics-text"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (status, _, _) = http_get(&net.server_ns, metrics_addr(), "/", "").unwrap();
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
