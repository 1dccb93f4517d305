//! NSEC denials end to end over a real veth: `xdpdns serve` with XDP in native mode serving an
//! NSEC-signed TLD (ldns-signzone); kdig +dnssec and a client socket on the other side. The
//! NXDOMAIN answers (below the apex and below a name with children, IPv4 and IPv6) equal the
//! engine's byte for byte (loaded here from the same file), and the counters say which path
//! gave them.

use std::net::{IpAddr, SocketAddr};

use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::stats::{delta, moved};
use xdpdns_tests::{sh, tld, TestNet, SERVER_V4, SERVER_V6};

#[test]
fn nsec_nxdomain_with_do_comes_from_xdp_and_equals_the_engine() {
    let mut net = TestNet::new().expect("test namespaces");
    let dir = net.dir.join("zone");
    std::fs::create_dir_all(&dir).unwrap();
    let unsigned = dir.join("tld.zone");
    std::fs::write(&unsigned, tld::zone_text("tld.", 100)).unwrap();
    let zone = dir.join("tld.signed");
    tld::sign_ldns(&dir, "tld.", &unsigned, &zone, &[]).unwrap();
    let spec = format!("tld.={}", zone.display());
    net.start_server(&[&spec], &["--listen", "[::]:53"])
        .expect("server starts");
    let (catalog, _) = load_catalog(&[spec.parse::<ZoneSpec>().unwrap()]).unwrap();
    let engine = Engine::new(catalog, EngineConfig::default());

    let out = sh(net
        .client_cmd("kdig")
        .args(["+norec", "+timeout=2", "+retry=0", "+dnssec"])
        .args(["@198.18.0.1", "q-kdig.tld.", "A"]))
    .unwrap();
    assert!(
        out.contains("NXDOMAIN") && out.contains("NSEC") && out.contains("RRSIG"),
        "{out}"
    );

    let before = net.stats().unwrap();
    let n = 30;
    let replies = net
        .in_client(move || {
            let mut out = Vec::new();
            for i in 0..n {
                let server = if i % 2 == 0 {
                    IpAddr::V4(SERVER_V4)
                } else {
                    IpAddr::V6(SERVER_V6)
                };
                // Covered by a delegation's NSEC, by the apex's (sorting first: the one
                // covering the wildcard too), and below a name with children.
                let name = match i % 3 {
                    0 => format!("q-{i}.tld."),
                    1 => format!("{i}a.b.tld."),
                    _ => format!("q-{i}.Nic.tld."),
                };
                let mut q = Q::new(&name, 1);
                q.edns = Some(1232);
                q.dnssec_ok = true;
                q.id = i as u16;
                let dns = q.wire();
                out.push((
                    dns.clone(),
                    client::udp(SocketAddr::new(server, 53), &dns).unwrap(),
                ));
            }
            out
        })
        .unwrap();
    let after = net.stats().unwrap();
    for (q, a) in &replies {
        assert_eq!(a[3] & 0xf, 3, "NXDOMAIN");
        let expected = engine.answer(q, Transport::Udp).unwrap();
        assert_eq!(a, &expected, "the answer's bytes are the engine's");
    }
    let moved = moved(&before, &after);
    println!("counters moved: {moved:?}");
    let xdp = delta(&before, &after, "xdp.answered_negative");
    // Where the veth's buffer cannot grow by the answer's size, the program passes the query
    // (pass_error) and userspace answers it: never anything else.
    let fallback = delta(&before, &after, "xdp.pass_error");
    assert_eq!(xdp + fallback, n, "{moved:?}");
    assert_eq!(delta(&before, &after, "udp.queries"), fallback, "{moved:?}");
    assert!(xdp > 0, "NSEC NXDOMAIN answered in XDP: {moved:?}");
}
