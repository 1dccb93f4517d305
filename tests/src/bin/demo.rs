//! `cargo xtask demo`: serves the example zone with XDP in a throwaway namespace pair, sends
//! real queries with dig from the other side, and shows which path answered each one.

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use xdpdns_tests::stats::try_delta;
use xdpdns_tests::{sh, TestNet};

fn main() -> Result<()> {
    let net = Arc::new(Mutex::new(None::<TestNet>));
    // Ctrl-C: tear everything down, then exit.
    let on_int = net.clone();
    ctrlc::set_handler(move || {
        eprintln!("\ninterrupted: cleaning up");
        if let Ok(mut g) = on_int.lock() {
            g.take();
        }
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let result = run(&net);
    // Always tear down, on success and on error alike.
    net.lock().expect("lock").take();
    if result.is_ok() {
        println!("\ncleaned up: server stopped, XDP detached, namespaces removed");
    }
    result
}

fn run(net: &Arc<Mutex<Option<TestNet>>>) -> Result<()> {
    let zone = format!(
        "{}/zones/example.zone",
        xdpdns_tests::workspace_root().display()
    );
    *net.lock().expect("lock") = Some(TestNet::new()?);
    let mut g = net.lock().expect("lock");
    let t = g.as_mut().expect("net");
    println!(
        "namespaces {} (server, {}) and {} (client, {}), veth {} <-> {}",
        t.server_ns,
        xdpdns_tests::SERVER_V4,
        t.client_ns,
        xdpdns_tests::CLIENT_V4,
        t.server_if,
        t.client_if
    );
    t.start_server(
        &[&zone],
        &[
            "--listen",
            "[::]:53",
            "--xdp-mode",
            "native",
            "--identity",
            "demo",
        ],
    )?;
    println!(
        "xdpdns serve: XDP attached to {} in native mode\n",
        t.server_if
    );
    print!("{}", t.ctl("status")?);
    drop(g);

    let queries: &[(&str, &[&str])] = &[
        ("A, answered in XDP", &["@198.18.0.1", "www.example.", "A"]),
        (
            "AAAA over IPv6, answered in XDP",
            &["@fd00::1", "WWW.Example.", "AAAA"],
        ),
        (
            "A with DO=1, answered in XDP",
            &["@198.18.0.1", "ns1.nic.example.", "A", "+dnssec"],
        ),
        (
            "NXDOMAIN, answered in XDP",
            &["@198.18.0.1", "nope.example.", "A"],
        ),
        (
            "a referral with glue, answered in XDP",
            &["@198.18.0.1", "www.shop.example.", "A"],
        ),
        (
            "a miss (wildcard): from userspace",
            &["@198.18.0.1", "foo.wild.example.", "A"],
        ),
        (
            "outside our zones: REFUSED from userspace",
            &["@198.18.0.1", "example.org.", "A"],
        ),
        (
            "over TCP, from userspace",
            &["@198.18.0.1", "+tcp", "www.example.", "A"],
        ),
    ];
    for (what, args) in queries {
        let g = net.lock().expect("lock");
        let t = g.as_ref().expect("net");
        let before = t.stats()?;
        let out = sh(t
            .client_cmd("dig")
            .args([
                "+norec",
                "+nocookie",
                "+time=2",
                "+tries=1",
                "+nocmd",
                "+nostats",
            ])
            .args(*args))?;
        let after = t.stats()?;
        let xdp: u64 = [
            "answered_exact",
            "answered_referral",
            "answered_negative",
            "answered_chaos",
            "answered_refused",
        ]
        .iter()
        .map(|k| try_delta(&before, &after, &format!("xdp.{k}")))
        .sum::<Result<u64>>()?;
        let user =
            try_delta(&before, &after, "udp.queries")? + try_delta(&before, &after, "tcp.queries")?;
        let path = match (xdp, user) {
            (1, 0) => "XDP",
            (0, 1) => "userspace",
            _ => "unclear",
        };
        println!("==> dig {}    # {what}", args.join(" "));
        for line in out
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(";; Got answer"))
        {
            println!("    {line}");
        }
        println!("    answered by: {path}\n");
    }
    let g = net.lock().expect("lock");
    let t = g.as_ref().expect("net");
    println!("counters (xdpdns stats):");
    for line in t.ctl("stats")?.lines().filter(|l| !l.ends_with(" 0")) {
        println!("    {line}");
    }
    Ok(())
}
