//! NSEC denials end to end over a real veth: `xdpdns serve` with XDP in native mode serving an
//! NSEC-signed TLD (ldns-signzone); kdig +dnssec and a client socket on the other side. The
//! NXDOMAIN answers (below the apex and below a name with children, IPv4 and IPv6) equal the
//! engine's byte for byte (loaded here from the same file), and the counters say which path
//! gave them.

use xdpdns_tests::{denial, tld, TestNet};

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
    // Covered by a delegation's NSEC, by the apex's (sorting first: the one covering the
    // wildcard too), and below a name with children.
    denial::nxdomain_over_veth(&mut net, &spec, "q-kdig.tld.", "NSEC", 30, |i| {
        match i % 3 {
            0 => format!("q-{i}.tld."),
            1 => format!("{i}a.b.tld."),
            _ => format!("q-{i}.Nic.tld."),
        }
    });
}
