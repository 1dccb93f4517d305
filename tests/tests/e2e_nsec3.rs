//! NSEC3 denials end to end over a real veth: `xdpdns serve` with XDP in native mode serving an
//! NSEC3-signed (opt-out) TLD; kdig +dnssec and a client socket on the other side. The
//! answers' bytes equal the engine's (loaded here from the same file), and the counters say
//! which path gave them.

use std::net::{IpAddr, SocketAddr};

use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::stats::{delta, moved};
use xdpdns_tests::{sh, tld, TestNet, SERVER_V4, SERVER_V6};

#[test]
fn nsec3_nxdomain_with_do_comes_from_xdp_and_equals_the_engine() {
    let mut net = TestNet::new().expect("test namespaces");
    let zone = tld::write_zone(&net.dir.join("zone"), "tld.", 100, true).unwrap();
    let spec = format!("tld.={}", zone.display());
    net.start_server(&[&spec], &["--listen", "[::]:53"])
        .expect("server starts");
    let (catalog, _) = load_catalog(&[spec.parse::<ZoneSpec>().unwrap()]).unwrap();
    let engine = Engine::new(catalog, EngineConfig::default());

    let out = sh(net
        .client_cmd("kdig")
        .args(["+norec", "+timeout=2", "+retry=0", "+dnssec"])
        .args(["@198.18.0.1", "q-kdig.nic.tld.", "A"]))
    .unwrap();
    assert!(
        out.contains("NXDOMAIN") && out.contains("NSEC3") && out.contains("RRSIG"),
        "{out}"
    );

    let before = net.stats().unwrap();
    let n = 20;
    let replies = net
        .in_client(move || {
            let mut out = Vec::new();
            for i in 0..n {
                let server = if i % 2 == 0 {
                    IpAddr::V4(SERVER_V4)
                } else {
                    IpAddr::V6(SERVER_V6)
                };
                let name = match i % 3 {
                    0 => format!("q-{i}.tld."),
                    1 => format!("a.q-{i}.Nic.tld."),
                    _ => format!("q-{i}.x.y.tld."),
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
    assert!(xdp > 0, "NSEC3 NXDOMAIN answered in XDP: {moved:?}");
}
