//! The Debian package (issue 14): `cargo xtask package --debug` builds it (the binary without
//! test-support); its control fields, contents and conffiles are what an installation needs;
//! unpacked into a clean root (`dpkg-deb -x`, never the machine's own /etc or systemd), the
//! installed binary prints its help, checks the default configuration, its unit verifies with
//! systemd-analyze, and it starts from that configuration in the server's namespace and
//! answers the example zone, with `xdpdns health` saying ok.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::ops::{verify_unit, Daemon};
use xdpdns_tests::{sh, target_bin, workspace_root, TestNet, SERVER_V4};

/// Builds the package into `out` with the xtask binary built beside the tests.
fn build_package(out: &Path) -> PathBuf {
    let xtask = target_bin("xtask");
    assert!(
        xtask.exists(),
        "{} missing: `cargo build --bins` first (cargo xtask test does)",
        xtask.display()
    );
    sh(Command::new(&xtask)
        .args(["package", "--debug", "--out"])
        .arg(out)
        .current_dir(workspace_root()))
    .unwrap();
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

#[test]
fn the_package_unpacks_into_a_clean_root_checks_its_configuration_and_serves() {
    let net = TestNet::new().unwrap();
    let deb = build_package(&net.dir.join("pkg"));
    let field = |f: &str| {
        sh(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), "xdpdns");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert!(
        field("Depends").starts_with("libc6 (>= 2."),
        "{}",
        field("Depends")
    );
    let contents = sh(Command::new("dpkg-deb").arg("-c").arg(&deb)).unwrap();
    for path in [
        "./usr/sbin/xdpdns",
        "./lib/systemd/system/xdpdns.service",
        "./etc/xdpdns/xdpdns.toml",
        "./etc/xdpdns/zones/example.zone",
        "./usr/share/man/man8/xdpdns.8.gz",
        "./usr/share/doc/xdpdns/README.md",
        "./usr/share/doc/xdpdns/help.txt",
        "./usr/share/doc/xdpdns/grafana/xdpdns.json",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{contents}"
        );
    }
    let control = net.dir.join("control");
    sh(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control)).unwrap();
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(
        conffiles,
        "/etc/xdpdns/xdpdns.toml\n/etc/xdpdns/zones/example.zone\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        sh(Command::new("sh").arg("-n").arg(control.join(script))).unwrap();
    }

    let root = net.dir.join("root");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root)).unwrap();
    let bin = root.join("usr/sbin/xdpdns");
    let bytes = std::fs::read(&bin).unwrap();
    let mark = b"XDPDNS_TEST_CLOCK_FILE";
    assert!(
        !bytes.windows(mark.len()).any(|w| w == mark),
        "the packaged binary has test-support"
    );
    let help = sh(Command::new(&bin).arg("--help")).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("health"),
        "{help}"
    );
    let config = root.join("etc/xdpdns/xdpdns.toml");
    let checked = sh(Command::new(&bin).arg("check").arg("--config").arg(&config)).unwrap();
    assert!(checked.contains(": OK, 1 zone files"), "{checked}");
    assert!(checked.contains("zone example.: OK"), "{checked}");
    let man = sh(Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man8/xdpdns.8.gz")))
    .unwrap();
    assert!(man.starts_with(".TH XDPDNS 8") && man.contains(".SH xdpdns health"));
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/xdpdns.service")).unwrap();
    verify_unit(&net.dir, &unit, &bin).unwrap();

    // Installed, it starts from its own configuration (plus the test's interface and control
    // socket) and answers, from XDP.
    let log = net.dir.join("installed.log");
    let control = net.control().display().to_string();
    #[rustfmt::skip]
    let args = [
        "serve", "--config", &config.display().to_string(), "--iface", &net.server_if,
        "--control", &control,
    ];
    let mut daemon = Daemon::spawn(&net, &bin, &args, &log).unwrap();
    daemon.wait_ready(&net, &log).unwrap();
    let q = Q::new("www.example.", 1).wire();
    let reply = net
        .in_client(move || client::udp(SocketAddr::new(IpAddr::V4(SERVER_V4), 53), &q).unwrap())
        .unwrap();
    assert_eq!(client::parse(&reply).unwrap().answers.len(), 2);
    let health = sh(Command::new(&bin).args(["health", "--control", &control])).unwrap();
    assert!(
        health.starts_with("ok 1 zones served, xdp attached"),
        "{health}"
    );
    assert_eq!(net.counter("xdp.answered_exact").unwrap(), 1);
}
