//! End to end over a real veth between two namespaces: `xdpdns serve` with XDP in native mode on
//! one side; a Rust client socket, dig and kdig on the other.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RData;
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::stats::{delta, moved, try_delta};
use xdpdns_tests::{sh, TestNet, SERVER_V4, SERVER_V6};

fn example_zone() -> String {
    format!(
        "{}/zones/example.zone",
        xdpdns_tests::workspace_root().display()
    )
}

fn started() -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    net.start_server(
        &[&example_zone()],
        &["--listen", "[::]:53", "--identity", "test-node"],
    )
    .expect("server starts");
    net
}

fn addr(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 53)
}

#[test]
fn xdp_answers_a_and_aaaa_to_a_client_socket_over_v4_and_v6() {
    let net = started();
    let before = net.stats().unwrap();
    let replies = net
        .in_client(|| {
            let mut out = Vec::new();
            for (server, qtype) in [(IpAddr::V4(SERVER_V4), 1u16), (IpAddr::V6(SERVER_V6), 28)] {
                let q = Q::new("WWW.example.", qtype);
                out.push(client::udp(addr(server), &q.wire()).unwrap());
            }
            out
        })
        .unwrap();
    let after = net.stats().unwrap();
    assert_eq!(
        delta(&before, &after, "xdp.answered_exact"),
        2,
        "both answered in XDP"
    );
    assert_eq!(
        delta(&before, &after, "udp.queries"),
        0,
        "userspace saw nothing"
    );
    // A counter name the server does not report is an error naming it, not a 0.
    let bogus = try_delta(&before, &after, "xdp.answered_bogus").unwrap_err();
    assert!(bogus.to_string().contains("xdp.answered_bogus"), "{bogus}");
    let v4 = client::parse(&replies[0]).unwrap();
    assert!(v4.metadata.authoritative);
    let mut got: Vec<String> = v4
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(got, ["198.18.0.80", "198.18.0.81"]);
    assert_eq!(v4.queries[0].name().to_string(), "WWW.example.");
    let v6 = client::parse(&replies[1]).unwrap();
    assert!(matches!(&v6.answers[0].data, RData::AAAA(a) if a.to_string() == "fd00:53::80"));
}

/// Runs dig in the client namespace; returns its output.
fn dig(net: &TestNet, args: &[&str]) -> String {
    sh(net
        .client_cmd("dig")
        .args(["+norec", "+nocookie", "+time=2", "+tries=1", "-p", "53"])
        .args(args))
    .unwrap()
}

#[test]
fn dig_and_kdig_get_xdp_answers() {
    let net = started();
    let before = net.stats().unwrap();
    let out = dig(&net, &["@198.18.0.1", "www.example.", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("flags: qr aa"), "{out}");
    assert!(out.contains("198.18.0.80"), "{out}");
    let out = dig(&net, &["@fd00::1", "www.example.", "AAAA", "+dnssec"]);
    assert!(out.contains("fd00:53::80"), "{out}");
    assert!(out.contains("flags: do"), "{out}");
    let out = sh(net.client_cmd("kdig").args([
        "@198.18.0.1",
        "+norec",
        "+timeout=2",
        "+retry=0",
        "ns1.nic.example.",
        "AAAA",
    ]))
    .unwrap();
    assert!(out.contains("fd00:53::11"), "{out}");
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "xdp.answered_exact"), 3);
    assert_eq!(delta(&before, &after, "udp.queries"), 0);
}

#[test]
fn negative_answers_and_referrals_in_xdp_and_the_rest_in_userspace() {
    let net = started();
    let before = net.stats().unwrap();
    // NXDOMAIN with the SOA in authority.
    let out = dig(&net, &["@198.18.0.1", "nope.example.", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    // NODATA.
    let out = dig(&net, &["@198.18.0.1", "www.example.", "MX"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 0"),
        "{out}"
    );
    // Referral with glue, not authoritative.
    let out = dig(&net, &["@198.18.0.1", "www.shop.example.", "A"]);
    assert!(
        out.contains("status: NOERROR") && !out.contains("flags: qr aa"),
        "{out}"
    );
    assert!(
        out.contains("ns1.shop.example.") && out.contains("198.18.1.1"),
        "{out}"
    );
    // Outside our zones.
    let out = dig(&net, &["@198.18.0.1", "example.org.", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    // CHAOS identity.
    let out = dig(&net, &["@198.18.0.1", "id.server.", "TXT", "CH"]);
    assert!(out.contains("test-node"), "{out}");
    // TCP, from dig and pipelined from the Rust client.
    let out = dig(&net, &["@198.18.0.1", "+tcp", "www.example.", "A"]);
    assert!(out.contains("198.18.0.81"), "{out}");
    let replies = net
        .in_client(|| {
            let msgs: Vec<Vec<u8>> = ["www.example.", "nic.example.", "nope.example."]
                .iter()
                .map(|n| Q::new(n, 1).wire())
                .collect();
            client::tcp(addr(IpAddr::V6(SERVER_V6)), &msgs).unwrap()
        })
        .unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(
        client::parse(&replies[2]).unwrap().metadata.response_code,
        ResponseCode::NXDomain
    );
    let after = net.stats().unwrap();
    // NXDOMAIN and NODATA, and the referral, come from XDP.
    assert_eq!(delta(&before, &after, "xdp.answered_negative"), 2);
    assert_eq!(delta(&before, &after, "xdp.answered_referral"), 1);
    // The configured identity (CHAOS) from XDP too.
    assert_eq!(delta(&before, &after, "xdp.answered_chaos"), 1);
    // REFUSED (outside our zones) from XDP too; TCP from userspace.
    assert_eq!(delta(&before, &after, "xdp.answered_refused"), 1);
    assert_eq!(delta(&before, &after, "xdp.pass_miss"), 0);
    assert!(delta(&before, &after, "xdp.pass_tcp") >= 2);
    assert_eq!(delta(&before, &after, "udp.queries"), 0);
    assert_eq!(delta(&before, &after, "tcp.queries"), 4);
}

#[test]
fn other_traffic_passes_and_shutdown_detaches() {
    let mut net = started();
    // A UDP service on another port in the server namespace still gets its packets.
    let mut echo = net
        .in_ns_cmd(&net.server_ns.clone(), std::path::Path::new("python3"))
        .args([
            "-c",
            "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('198.18.0.1',5353));d,a=s.recvfrom(512);s.sendto(d,a)",
        ])
        .spawn()
        .unwrap();
    // Wait until the echo socket is bound (bounded: 10 s).
    for _ in 0..200 {
        let ss = net
            .in_ns_cmd(&net.server_ns.clone(), std::path::Path::new("ss"))
            .args(["-H", "-uln", "sport = :5353"])
            .output()
            .unwrap();
        if !ss.stdout.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let q = Q::new("www.example.", 1).wire();
    let reply = net
        .in_client(move || client::udp("198.18.0.1:5353".parse().unwrap(), &q))
        .unwrap()
        .expect("echo on port 5353 reached");
    assert_eq!(reply, Q::new("www.example.", 1).wire(), "unchanged by XDP");
    let _ = echo.wait();
    assert!(net
        .xdp_attached(&net.server_ns.clone(), &net.server_if.clone())
        .unwrap());
    assert!(
        net.stop_server().unwrap(),
        "clean exit on SIGTERM:\n{}",
        net.server_log()
    );
    assert!(!net
        .xdp_attached(&net.server_ns.clone(), &net.server_if.clone())
        .unwrap());
}

#[test]
fn signed_answers_referrals_and_nxdomain_with_do_come_from_xdp() {
    let mut net = TestNet::new().expect("test namespaces");
    let nsec = format!(
        "nsec.example.={}/zones/signed/nsec.example.zone",
        xdpdns_tests::workspace_root().display()
    );
    let nsec3 = format!(
        "nsec3.example.={}/zones/signed/nsec3.example.zone",
        xdpdns_tests::workspace_root().display()
    );
    net.start_server(&[&nsec, &nsec3], &["--listen", "[::]:53"])
        .expect("server starts");
    let kdig = |args: &[&str]| {
        sh(net
            .client_cmd("kdig")
            .args(["+norec", "+timeout=2", "+retry=0", "+dnssec"])
            .args(args))
        .unwrap()
    };
    let before = net.stats().unwrap();
    // Signed exact answers: the RRset and its RRSIG, over IPv4 and IPv6.
    let out = kdig(&["@198.18.0.1", "www.nsec.example.", "A"]);
    assert!(out.contains("RRSIG") && out.contains("192.0.2.80"), "{out}");
    let out = kdig(&["@fd00::1", "www.nsec.example.", "AAAA"]);
    assert!(
        out.contains("RRSIG") && out.contains("2001:db8::80"),
        "{out}"
    );
    // NXDOMAIN below a leaf of an NSEC zone: SOA, NSEC and their RRSIGs. (Over IPv4: these
    // answers grow the packet by ~400 bytes, and a veth hands XDP an IPv6 socket buffer with
    // no tailroom and 256 bytes of headroom; such packets go to userspace, counted as
    // pass_no_room. NIC drivers give XDP page-sized buffers.)
    let out = kdig(&["@198.18.0.1", "x.mail.nsec.example.", "AAAA"]);
    assert!(out.contains("NXDOMAIN") && out.contains("NSEC"), "{out}");
    // A signed referral (DS + RRSIG) and an unsigned one (NSEC3 opt-out proof).
    let out = kdig(&["@198.18.0.1", "www.secure.nsec3.example.", "A"]);
    assert!(
        out.contains("DS") && out.contains("ns.secure.nsec3.example."),
        "{out}"
    );
    let out = kdig(&["@198.18.0.1", "www.insecure.nsec3.example.", "A"]);
    assert!(
        out.contains("NSEC3") && out.contains("ns.insecure.nsec3.example."),
        "{out}"
    );
    let after = net.stats().unwrap();
    let moved = moved(&before, &after);
    println!("counters moved: {moved:?}");
    assert_eq!(delta(&before, &after, "xdp.answered_exact"), 2, "{moved:?}");
    // The three large answers come from XDP, or, where the veth buffer cannot grow that much,
    // from userspace after a pass_no_room: never anything else.
    let big = delta(&before, &after, "xdp.answered_negative")
        + delta(&before, &after, "xdp.answered_referral");
    let fallback = delta(&before, &after, "xdp.pass_no_room");
    assert_eq!(big + fallback, 3, "{moved:?}");
    assert!(big >= 1, "{moved:?}");
    assert_eq!(delta(&before, &after, "udp.queries"), fallback, "{moved:?}");
}

#[test]
fn reload_replaces_zones_and_a_bad_zone_changes_nothing() {
    let mut net = TestNet::new().expect("test namespaces");
    let zone = net.dir.join("example.zone");
    let original = std::fs::read_to_string(example_zone()).unwrap();
    std::fs::write(&zone, &original).unwrap();
    net.start_server(&[zone.to_str().unwrap()], &["--listen", "[::]:53"])
        .expect("server starts");
    let ask = |net: &TestNet, tcp: bool| {
        let mut args = vec!["@198.18.0.1", "new.example.", "A"];
        if tcp {
            args.push("+tcp");
        }
        dig(net, &args)
    };
    assert!(ask(&net, false).contains("NXDOMAIN"));
    // A good change.
    std::fs::write(&zone, format!("{original}new IN A 198.18.0.77\n")).unwrap();
    let out = net.ctl("reload").unwrap();
    assert!(out.contains("reloaded 1 zones"), "{out}");
    let before = net.stats().unwrap();
    assert!(ask(&net, false).contains("198.18.0.77"));
    let after = net.stats().unwrap();
    assert_eq!(
        delta(&before, &after, "xdp.answered_exact"),
        1,
        "the new record is in XDP"
    );
    // A broken zone: the error names file and line, and the old data keeps being served.
    std::fs::write(
        &zone,
        format!("{original}new IN A 198.18.0.77\nbad IN A not-an-address\n"),
    )
    .unwrap();
    let err = net.ctl("reload").unwrap_err().to_string();
    let line = original.lines().count() + 2;
    assert!(err.contains(&format!("example.zone:{line}")), "{err}");
    assert!(ask(&net, false).contains("198.18.0.77"));
    assert!(ask(&net, true).contains("198.18.0.77"));
    // Removing the record takes it out of both paths.
    std::fs::write(&zone, &original).unwrap();
    net.ctl("reload").unwrap();
    assert!(ask(&net, false).contains("NXDOMAIN"));
    assert!(ask(&net, true).contains("NXDOMAIN"));
    // Reloading the same zone re-uses every template: nothing new goes into the cache.
    let out = net.ctl("reload").unwrap();
    let (templates, new) = template_counts(&out);
    assert!(templates > 10 && new == 0, "{out}");
    // One more record: only its own answers are new templates.
    std::fs::write(&zone, format!("{original}new2 IN TXT \"hello\"\n")).unwrap();
    let out = net.ctl("reload").unwrap();
    let (_, new) = template_counts(&out);
    assert!((1..=4).contains(&new), "{out}");
}

/// (templates, new templates) from reload's "xdp generation G with E entries, T templates
/// (N new, C cached)" line.
fn template_counts(out: &str) -> (usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("xdp generation"))
        .unwrap_or_else(|| panic!("no xdp line in {out}"));
    let number_before = |what: &str| -> usize {
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {line}"));
        line[..at]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("number before {what} in {line}"))
    };
    (number_before(" templates"), number_before(" new"))
}

#[test]
fn zones_and_settings_from_a_config_file() {
    let mut net = TestNet::new().expect("test namespaces");
    let root = xdpdns_tests::workspace_root();
    let config = net.dir.join("xdpdns.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"[::]:53\"]\nidentity = \"from-config\"\n\n\
             [[zone]]\ndomain = \"example.\"\nfile = \"{}/zones/example.zone\"\n\n\
             [[zone]]\ndomain = \"nsec.example\"\nfile = \"{}/zones/signed/nsec.example.zone\"\n",
            root.display(),
            root.display()
        ),
    )
    .unwrap();
    net.start_server(&[], &["--config", config.to_str().unwrap()])
        .expect("server starts");
    // The longest matching apex answers.
    let out = dig(&net, &["@198.18.0.1", "www.nsec.example.", "A"]);
    assert!(
        out.contains("192.0.2.80") && out.contains("flags: qr aa"),
        "{out}"
    );
    let out = dig(&net, &["@198.18.0.1", "www.example.", "A"]);
    assert!(out.contains("198.18.0.80"), "{out}");
    let out = dig(&net, &["@198.18.0.1", "id.server.", "TXT", "CH"]);
    assert!(out.contains("from-config"), "{out}");
    let status = net.ctl("status").unwrap();
    assert!(
        status.contains("zone example.") && status.contains("zone nsec.example."),
        "{status}"
    );
}

/// The answer sections of a kdig reply (everything from the header's flags on, without the
/// ID and timing lines), to compare two replies to the same query.
fn sections(out: &str) -> String {
    out.lines()
        .filter(|l| {
            !l.contains("id:") && !l.starts_with(";; Received") && !l.starts_with(";; From")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_small_xdp_cache_promotes_hot_referrals() {
    let mut net = TestNet::new().expect("test namespaces");
    let zone = xdpdns_tests::tld::write_zone(&net.dir.join("tld"), "tld.", 300, false).unwrap();
    let spec = format!("tld.={}", zone.display());
    net.start_server(
        &[&spec],
        &[
            "--listen",
            "[::]:53",
            "--xdp-capacity",
            "16",
            "--xdp-promote-after",
            "2",
        ],
    )
    .expect("server starts");
    let status = net.ctl("status").unwrap();
    assert!(status.contains("cache 16"), "{status}");
    let kdig = |name: &str| {
        sh(net.client_cmd("kdig").args([
            "@198.18.0.1",
            "+norec",
            "+timeout=2",
            "+retry=0",
            name,
            "A",
        ]))
        .unwrap()
    };
    // The cache holds the apex answers and a few delegations: the last ones are cold.
    let name = format!("www.{}.tld.", xdpdns_tests::tld::delegation(297));
    let before = net.stats().unwrap();
    let first = kdig(&name);
    let second = kdig(&name);
    let mid = net.stats().unwrap();
    assert!(
        first.contains("status: NOERROR") && first.contains("AUTHORITY SECTION"),
        "{first}"
    );
    assert_eq!(delta(&before, &mid, "xdp.pass_cold"), 2, "cold: passed");
    assert_eq!(delta(&before, &mid, "udp.queries"), 2, "userspace answered");
    // Every slot holds a template (the zone has more than 16).
    assert_eq!(mid.value("xdp.template_cache"), 16);
    assert_eq!(mid.value("xdp.templates_cached"), 16, "every slot filled");
    // The promoter saw the template twice and puts it into the cache.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while net.stats().unwrap().value("xdp.promoted") == 0 {
        assert!(std::time::Instant::now() < deadline, "not promoted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = net.stats().unwrap();
    let third = kdig(&name);
    let after = net.stats().unwrap();
    assert_eq!(
        delta(&before, &after, "xdp.answered_referral"),
        1,
        "from XDP now"
    );
    assert_eq!(delta(&before, &after, "udp.queries"), 0);
    assert_eq!(
        sections(&third),
        sections(&second),
        "same answer from both paths"
    );
    // Another name below the delegation uses the same promoted template.
    let out = kdig(&format!(
        "other.{}.tld.",
        xdpdns_tests::tld::delegation(297)
    ));
    assert!(out.contains("AUTHORITY SECTION"), "{out}");
    assert_eq!(
        delta(&after, &net.stats().unwrap(), "xdp.answered_referral"),
        1
    );
}

#[test]
fn userspace_udp_workers_answer_bursts_to_each_sender() {
    let mut net = TestNet::new().expect("test namespaces");
    net.start_server(
        &[&example_zone()],
        &[
            "--listen",
            "[::]:53",
            "--xdp-mode",
            "off",
            "--udp-workers",
            "2",
        ],
    )
    .expect("server starts");
    // 64 clients send at once (v4 and v6 mixed), so the workers read them in batches; each
    // must get the reply to its own query.
    let results = net
        .in_client(|| {
            let mut socks = Vec::new();
            for i in 0..64u16 {
                let v6 = i % 2 == 1;
                let (bind, server): (SocketAddr, SocketAddr) = if v6 {
                    ("[::]:0".parse().unwrap(), addr(IpAddr::V6(SERVER_V6)))
                } else {
                    ("0.0.0.0:0".parse().unwrap(), addr(IpAddr::V4(SERVER_V4)))
                };
                let s = std::net::UdpSocket::bind(bind).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
                    .unwrap();
                let name = if i % 3 == 0 {
                    "www.example.".to_string()
                } else {
                    format!("n{i}.example.")
                };
                let mut q = Q::new(&name, 1);
                q.id = 1000 + i;
                s.send_to(&q.wire(), server).unwrap();
                socks.push((s, q.id, name));
            }
            let mut out = Vec::new();
            for (s, id, name) in socks {
                let mut buf = [0u8; 2048];
                let n = s.recv(&mut buf).expect("a reply for every client");
                let m = client::parse(&buf[..n]).unwrap();
                out.push((id, name, m.metadata.id, m.queries[0].name().to_string()));
            }
            out
        })
        .unwrap();
    for (id, name, got_id, got_name) in results {
        assert_eq!((got_id, got_name.to_lowercase()), (id, name));
    }
    let stats = net.stats().unwrap();
    assert_eq!(stats.value("udp.responses"), 64);
}
