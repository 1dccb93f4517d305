//! Log formats and help (issue 14): with `--log-format json` every line the serving daemon
//! writes is a JSON object with ts, level, target and msg; `[server] log-format = "kv"` in the
//! configuration file gives logfmt lines; every command's --help shows an example.

use std::process::Command;

use xdpdns_tests::{example_zone, sh, xdpdns_bin, TestNet};

#[test]
fn json_log_lines_parse_and_kv_comes_from_the_configuration_file() {
    let mut net = TestNet::new().unwrap();
    net.start_server(
        &[&example_zone()],
        &["--listen", "[::]:53", "--log-format", "json"],
    )
    .unwrap();
    assert!(net.stop_server().unwrap());
    let log = net.server_log();
    let mut msgs = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line:?}"));
        for key in ["ts", "level", "target", "msg"] {
            assert!(v[key].is_string(), "{key} in {line}");
        }
        let ts = v["ts"].as_str().unwrap();
        assert!(
            ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        msgs.push(v["msg"].as_str().unwrap().to_owned());
    }
    for want in [
        "loaded zone example.",
        "XDP attached to",
        "serving on",
        "SIGTERM: stopping",
    ] {
        assert!(
            msgs.iter().any(|m| m.starts_with(want)),
            "no {want:?} in {msgs:?}"
        );
    }

    std::fs::remove_file(net.dir.join("server.log")).unwrap();
    let config = net.dir.join("kv.toml");
    let zone = example_zone();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"[::]:53\"]\nlog-format = \"kv\"\n\
             [[zone]]\ndomain = \"example.\"\nfile = \"{zone}\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    net.start_server(&[], &["--config", &config]).unwrap();
    assert!(net.stop_server().unwrap());
    let log = net.server_log();
    assert!(!log.is_empty());
    for line in log.lines() {
        let fields: Vec<&str> = ["ts=", " level=", " target=", " msg="]
            .iter()
            .filter(|f| line.contains(*f))
            .copied()
            .collect();
        assert_eq!(fields.len(), 4, "not logfmt: {line:?}");
        assert!(line.starts_with("ts="), "{line}");
    }
    assert!(
        log.contains("level=info target=xdpdns::daemon msg=\"serving on [::]:53\""),
        "{log}"
    );
}

#[test]
fn every_command_shows_an_example_in_its_help() {
    let top = sh(Command::new(xdpdns_bin()).arg("--help")).unwrap();
    assert!(top.contains("Examples:\n  xdpdns serve"), "{top}");
    for cmd in ["serve", "stats", "status", "reload", "health", "check"] {
        let help = sh(Command::new(xdpdns_bin()).args([cmd, "--help"])).unwrap();
        assert!(
            help.contains("Example") && help.contains(&format!("  xdpdns {cmd}")),
            "xdpdns {cmd} --help shows no example:\n{help}"
        );
    }
}
