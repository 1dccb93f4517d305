//! DNS Cookies and NSID end to end over a veth pair, with the clients resolvers and operators
//! use: `dig` (which sends a cookie by default) and `kdig +cookie +nsid` are answered in XDP;
//! the server cookie they get validates when sent back (under `--require-cookie`, where an
//! invalid one would get BADCOOKIE); a cookie made with the previous secret is accepted
//! (rollover); under `--require-cookie` a client cookie alone gets BADCOOKIE in XDP, counted
//! `answered_badcookie` (nothing reaches userspace), and dig's automatic retry with the server
//! cookie it got is answered normally, in XDP too;
//! the cookies' timestamps in XDP follow the daemon's clock (the test clock file) when it
//! moves.

use std::net::IpAddr;

use xdpdns::engine::cookie;
use xdpdns_tests::stats::{delta, Counters};
use xdpdns_tests::{sh, TestNet, CLIENT_V4, CLIENT_V6};

const SECRET: &str = "445536bcd2513298075a5d379663c962";
const PREVIOUS: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

fn started(require: bool) -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let mut args = vec![
        "--listen",
        "[::]:53",
        "--nsid",
        "edge-7",
        "--cookie-secret",
        SECRET,
        "--cookie-secret-previous",
        PREVIOUS,
    ];
    if require {
        args.push("--require-cookie");
    }
    net.start_server(&[&xdpdns_tests::example_zone()], &args)
        .expect("server starts");
    net
}

fn dig(net: &TestNet, args: &[&str]) -> String {
    sh(net
        .client_cmd("dig")
        .args(["+norec", "+time=2", "+tries=1", "+nobadcookie"])
        .args(args))
    .unwrap()
}

/// The COOKIE dig printed (`; COOKIE: HEX (good)`), checked as good.
fn dig_cookie(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("; COOKIE: "))
        .unwrap_or_else(|| panic!("no COOKIE in {out}"));
    assert!(line.ends_with("(good)"), "{line}");
    line["; COOKIE: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn unhex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .unwrap()
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

#[test]
fn dig_cookies_are_answered_in_xdp_and_validate_when_sent_back() {
    let net = started(true);
    for (server, client) in [
        ("@198.18.0.1", IpAddr::V4(CLIENT_V4)),
        ("@fd00::1", IpAddr::V6(CLIENT_V6)),
    ] {
        // A client cookie alone: BADCOOKIE (require-cookie), in XDP, with a cookie.
        let before = net.stats().unwrap();
        let out = dig(&net, &[server, "+cookie", "www.example.", "A"]);
        assert!(out.contains("status: BADCOOKIE"), "{out}");
        let first = dig_cookie(&out);
        let after = net.stats().unwrap();
        assert_eq!(delta(&before, &after, "xdp.answered_badcookie"), 1);
        assert_eq!(delta(&before, &after, "xdp.answered"), 1);
        assert_eq!(delta(&before, &after, "xdp.pass_cookie"), 0);
        assert_eq!(delta(&before, &after, "udp.queries"), 0);
        // Sent back: answered, in XDP, with a fresh good cookie.
        let before = net.stats().unwrap();
        let out = dig(
            &net,
            &[server, &format!("+cookie={first}"), "www.example.", "A"],
        );
        assert!(
            out.contains("status: NOERROR") && out.contains("198.18.0.80"),
            "{out}"
        );
        let second = dig_cookie(&out);
        assert_eq!(second[..16], first[..16], "the client cookie is echoed");
        let after = net.stats().unwrap();
        assert_eq!(delta(&before, &after, "xdp.answered_exact"), 1);
        assert_eq!(delta(&before, &after, "udp.queries"), 0);
        // The server cookie is RFC 9018's, made with the current secret for this client.
        let c = unhex(&second);
        let ts = u32::from_be_bytes(c[12..16].try_into().unwrap());
        assert!(ts.abs_diff(now()) <= 5, "timestamp {ts}");
        let cc: [u8; 8] = c[..8].try_into().unwrap();
        let secret = cookie::parse_secret(SECRET).unwrap();
        assert_eq!(cookie::make(&secret, &cc, client, ts).to_vec(), c);
        // Rollover: a cookie made an hour ago less a minute with the previous secret.
        let previous = cookie::parse_secret(PREVIOUS).unwrap();
        let old = cookie::make(&previous, &cc, client, now() - 3540);
        let old = data_encoding::HEXLOWER.encode(&old);
        let before = net.stats().unwrap();
        let out = dig(
            &net,
            &[server, &format!("+cookie={old}"), "www.example.", "A"],
        );
        assert!(out.contains("status: NOERROR"), "{out}");
        dig_cookie(&out);
        let after = net.stats().unwrap();
        assert_eq!(delta(&before, &after, "xdp.answered_exact"), 1);
        // Over TCP a client cookie alone is answered (BADCOOKIE is for UDP), with a cookie.
        let out = dig(&net, &[server, "+tcp", "+cookie", "www.example.", "A"]);
        assert!(out.contains("status: NOERROR"), "{out}");
        dig_cookie(&out);
        // Made with a secret never configured: BADCOOKIE, in XDP.
        let stranger = cookie::make(&[7; 16], &cc, client, now());
        let stranger = data_encoding::HEXLOWER.encode(&stranger);
        let before = net.stats().unwrap();
        let out = dig(
            &net,
            &[server, &format!("+cookie={stranger}"), "www.example.", "A"],
        );
        assert!(out.contains("status: BADCOOKIE"), "{out}");
        let after = net.stats().unwrap();
        assert_eq!(delta(&before, &after, "xdp.answered_badcookie"), 1);
        assert_eq!(delta(&before, &after, "udp.queries"), 0);
        // A malformed cookie (9 octets): FORMERR, in XDP.
        let before = net.stats().unwrap();
        let out = dig(
            &net,
            &[server, "+cookie=000102030405060708", "www.example.", "A"],
        );
        assert!(out.contains("status: FORMERR"), "{out}");
        let after = net.stats().unwrap();
        assert_eq!(delta(&before, &after, "xdp.answered_formerr"), 1);
        assert_eq!(delta(&before, &after, "udp.queries"), 0);
    }
}

/// dig with EDNS version 1 gets BADVERS and asks again with version 0 (RFC 6891 §6.1.3):
/// both answered in XDP.
#[test]
fn digs_edns_version_1_gets_badvers_in_xdp_and_its_retry_is_answered() {
    let net = started(false);
    let before = net.stats().unwrap();
    let out = dig(
        &net,
        &["@198.18.0.1", "+nocookie", "+edns=1", "www.example.", "A"],
    );
    retried_in_xdp(&net, &before, &out, "badvers", "edns_version");
}

/// Checks that dig's `out` is the answer to `www.example. A` after it asked again on an error,
/// and that since `before` XDP answered both (`answered_{error}`, then `answered_exact`),
/// passing nothing for `pass_{reason}` and leaving userspace nothing.
fn retried_in_xdp(net: &TestNet, before: &Counters, out: &str, error: &str, reason: &str) {
    assert!(
        out.contains("status: NOERROR") && out.contains("198.18.0.80"),
        "{out}"
    );
    let after = net.stats().unwrap();
    let d = |name: &str| delta(before, &after, name);
    assert_eq!(d(&format!("xdp.answered_{error}")), 1, "{out}");
    assert_eq!(d("xdp.answered_exact"), 1, "{out}");
    assert_eq!(d(&format!("xdp.pass_{reason}")), 0, "{out}");
    assert_eq!(d("udp.queries"), 0, "{out}");
}

/// dig as it runs by default: on BADCOOKIE it sends the query again with the server cookie
/// it got (RFC 7873 §5.3). Both are answered in XDP: BADCOOKIE, then the answer.
#[test]
fn digs_retry_after_badcookie_is_answered_in_xdp() {
    let net = started(true);
    for server in ["@198.18.0.1", "@fd00::1"] {
        let before = net.stats().unwrap();
        let out = sh(net.client_cmd("dig").args([
            "+norec",
            "+time=2",
            "+tries=1",
            server,
            "www.example.",
            "A",
        ]))
        .unwrap();
        dig_cookie(&out);
        retried_in_xdp(&net, &before, &out, "badcookie", "cookie");
    }
}

#[test]
fn dig_and_kdig_with_cookie_and_nsid_are_answered_in_xdp() {
    let net = started(false);
    let before = net.stats().unwrap();
    // dig's default: a cookie on every query.
    let out = dig(&net, &["@198.18.0.1", "www.example.", "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("198.18.0.80"),
        "{out}"
    );
    dig_cookie(&out);
    let out = dig(&net, &["@fd00::1", "+nsid", "nope.example.", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("(\"edge-7\")"), "{out}");
    dig_cookie(&out);
    let out = sh(net.client_cmd("kdig").args([
        "@198.18.0.1",
        "+norec",
        "+timeout=2",
        "+retry=0",
        "+cookie",
        "+nsid",
        "www.example.",
        "AAAA",
    ]))
    .unwrap();
    assert!(out.contains("fd00:53::80"), "{out}");
    assert!(out.contains("edge-7") && out.contains("COOKIE"), "{out}");
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "xdp.answered"), 3);
    assert_eq!(delta(&before, &after, "udp.queries"), 0);
}

/// The timestamp of the server cookie dig got.
fn cookie_time(out: &str) -> u32 {
    let c = unhex(&dig_cookie(out));
    u32::from_be_bytes(c[12..16].try_into().unwrap())
}

#[test]
fn xdp_cookie_timestamps_follow_the_daemons_clock() {
    let dir = std::env::temp_dir().join(format!("xdpdns-edns-clock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = dir.join("clock");
    let day_ahead = now() + 86_400;
    std::fs::write(&clock, day_ahead.to_string()).unwrap();
    let mut net = TestNet::new().expect("test namespaces");
    let env = [("XDPDNS_TEST_CLOCK_FILE", clock.to_str().unwrap())];
    let args = ["--listen", "[::]:53", "--cookie-secret", SECRET];
    net.start_server_with(&[&xdpdns_tests::example_zone()], &args, &env)
        .expect("server starts");
    let before = net.stats().unwrap();
    let out = dig(&net, &["@198.18.0.1", "www.example.", "A"]);
    assert!(cookie_time(&out).abs_diff(day_ahead) <= 2, "{out}");
    // The clock jumps a week: within a second or two XDP's cookies follow.
    let week_ahead = day_ahead + 7 * 86_400;
    std::fs::write(&clock, week_ahead.to_string()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = dig(&net, &["@198.18.0.1", "www.example.", "A"]);
        if cookie_time(&out).abs_diff(week_ahead) <= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "XDP's clock stayed behind: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "udp.queries"), 0, "all in XDP");
    let _ = std::fs::remove_dir_all(dir);
}
