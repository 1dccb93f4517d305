//! NSEC3 denials end to end over a real veth: `xdpdns serve` with XDP in native mode serving an
//! NSEC3-signed (opt-out) TLD; kdig +dnssec and a client socket on the other side. The
//! answers' bytes equal the engine's (loaded here from the same file), and the counters say
//! which path gave them.

use xdpdns_tests::{denial, tld, TestNet};

#[test]
fn nsec3_nxdomain_with_do_comes_from_xdp_and_equals_the_engine() {
    let mut net = TestNet::new().expect("test namespaces");
    let zone = tld::write_zone(&net.dir.join("zone"), "tld.", 100, true).unwrap();
    let spec = format!("tld.={}", zone.display());
    denial::nxdomain_over_veth(
        &mut net,
        &spec,
        "q-kdig.nic.tld.",
        "NSEC3",
        20,
        |i| match i % 3 {
            0 => format!("q-{i}.tld."),
            1 => format!("a.q-{i}.Nic.tld."),
            _ => format!("q-{i}.x.y.tld."),
        },
    );
}
