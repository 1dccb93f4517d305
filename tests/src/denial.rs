//! Signed NXDOMAIN end to end over the veth (`e2e_nsec`, `e2e_nsec3`): a server started on a
//! signed zone answers kdig +dnssec with a denial, and `n` DO=1 queries from a client socket
//! (IPv4 and IPv6 in turn) get the engine's bytes, each either from XDP or, where the veth's
//! buffer cannot grow by the answer's size, passed (`pass_no_room`) and answered by userspace:
//! never anything else, and at least one from XDP.

use std::net::{IpAddr, SocketAddr};

use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::zone::load::{load_catalog, ZoneSpec};

use crate::client::{self, Q};
use crate::stats::{delta, moved};
use crate::{sh, TestNet, SERVER_V4, SERVER_V6};

/// Starts the server on `spec` (`ZONE=FILE`) and checks the answers to `kdig_name` and to
/// `name(i)` for i in 0..n; `record` is the denial record type kdig must show.
pub fn nxdomain_over_veth(
    net: &mut TestNet,
    spec: &str,
    kdig_name: &str,
    record: &str,
    n: u64,
    name: fn(u64) -> String,
) {
    net.start_server(&[spec], &["--listen", "[::]:53"])
        .expect("server starts");
    let (catalog, _) = load_catalog(&[spec.parse::<ZoneSpec>().unwrap()]).unwrap();
    let engine = Engine::new(catalog, EngineConfig::default());

    let out = sh(net
        .client_cmd("kdig")
        .args(["+norec", "+timeout=2", "+retry=0", "+dnssec"])
        .args(["@198.18.0.1", kdig_name, "A"]))
    .unwrap();
    assert!(
        out.contains("NXDOMAIN") && out.contains(record) && out.contains("RRSIG"),
        "{out}"
    );

    let before = net.stats().unwrap();
    let replies = net
        .in_client(move || {
            let mut out = Vec::new();
            for i in 0..n {
                let server = if i % 2 == 0 {
                    IpAddr::V4(SERVER_V4)
                } else {
                    IpAddr::V6(SERVER_V6)
                };
                let mut q = Q::new(&name(i), 1);
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
    let fallback = delta(&before, &after, "xdp.pass_no_room");
    assert_eq!(xdp + fallback, n, "{moved:?}");
    assert_eq!(delta(&before, &after, "udp.queries"), fallback, "{moved:?}");
    assert!(xdp > 0, "{record} NXDOMAIN answered in XDP: {moved:?}");
}
