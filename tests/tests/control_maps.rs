//! `xdpdns map check` end to end: after record changes (published incrementally) the maps equal
//! what the engine answers, and an entry deleted behind the daemon's back (`bpftool map
//! delete`) is reported as missing, with exit status 1; so are a changed NSEC label and a
//! changed service address.

use std::process::Command;

use xdpdns_tests::ctl::{cli, run, server_xdp_prog, xdpdns};
use xdpdns_tests::{sh, zone_file, TestNet};

fn bpftool(args: &[&str]) -> serde_json::Value {
    let out = sh(Command::new("bpftool").arg("-j").args(args)).unwrap();
    serde_json::from_str(&out).unwrap()
}

/// A key or value of bpftool's JSON dump ("0x2a" strings) as hex octets, as bpftool takes them.
fn hex(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("bytes")
        .iter()
        .map(|b| b.as_str().unwrap().trim_start_matches("0x").to_owned())
        .collect()
}

/// The id of map `name` of the XDP program on the server's interface.
fn map_of_server(net: &TestNet, name: &str) -> u64 {
    map_of(server_xdp_prog(net).expect("XDP attached"), name)
}

/// The id of map `name` of the denial program the server's XDP program tail-calls (JUMP 0).
fn map_of_denial(net: &TestNet, name: &str) -> u64 {
    let jump = map_of_server(net, "JUMP").to_string();
    let dump = bpftool(&["map", "dump", "id", &jump]);
    let entry = dump
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["key"][0] == "0x00")
        .unwrap_or_else(|| panic!("no denial program in {dump}"));
    let id: Vec<u8> = hex(&entry["value"])
        .iter()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    map_of(
        u32::from_le_bytes([id[0], id[1], id[2], id[3]]) as u64,
        name,
    )
}

/// The id of map `name` of program `prog`.
fn map_of(prog: u64, name: &str) -> u64 {
    let prog = bpftool(&["prog", "show", "id", &prog.to_string()]);
    let ids = prog["map_ids"].as_array().expect("map ids");
    ids.iter()
        .map(|id| id.as_u64().unwrap())
        .find(|id| bpftool(&["map", "show", "id", &id.to_string()])["name"] == name)
        .unwrap_or_else(|| panic!("no map {name} in {prog}"))
}

#[test]
fn the_maps_equal_the_engine_after_changes_and_a_deleted_entry_is_found() {
    let mut net = TestNet::new().expect("test namespaces");
    let zone = net.dir.join("example.zone");
    std::fs::copy(zone_file("example.zone"), &zone).unwrap();
    let storage = net.dir.join("storage").display().to_string();
    net.start_server(
        &[zone.to_str().unwrap()],
        &["--listen", "[::]:53", "--storage", &storage],
    )
    .expect("server starts");
    let out = xdpdns(&net, &["map", "check"]).unwrap();
    println!("{out}");
    assert!(
        out.contains("0 missing, 0 unexpected, 0 different"),
        "{out}"
    );
    for change in [
        "record add example. new 300 A 198.18.0.77",
        "record add example. deep.new 300 TXT \"x\"",
        "record del example. www 3600 A 198.18.0.81",
    ] {
        run(&net, change).unwrap();
    }
    // A change the zone checks warn of is made, and the reply passes the warning on.
    let out = run(&net, "record add example. shop 3600 NS ns3.shop.example.").unwrap();
    assert!(out.contains("warning:") && out.contains("no glue"), "{out}");
    let out = xdpdns(&net, &["map", "check", "--json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["matching"].as_u64().unwrap() > 40, "{out}");
    assert_eq!(v["missing"], 0, "{out}");

    // One index entry deleted behind the daemon's back: its word in the directory zeroed.
    let dir = map_of_server(&net, "ANSWER_DIR").to_string();
    let dump = bpftool(&["map", "dump", "id", &dir]);
    let (key, mut value, word) = dump
        .as_array()
        .expect("entries")
        .iter()
        .find_map(|e| {
            let value = hex(&e["value"]);
            // The first used word of the bucket (7 words, then the overflow count).
            let word = (0..7).find(|w| value[w * 8..w * 8 + 8].iter().any(|b| b != "00"))?;
            Some((hex(&e["key"]), value, word))
        })
        .expect("a used directory word");
    for b in &mut value[word * 8..word * 8 + 8] {
        *b = "00".into();
    }
    let mut args = vec!["map", "update", "id", &dir, "key", "hex"];
    args.extend(key.iter().map(String::as_str));
    args.extend(["value", "hex"]);
    args.extend(value.iter().map(String::as_str));
    sh(Command::new("bpftool").args(&args)).unwrap();
    let (ok, _, err) = cli(&net, &["map", "check"]);
    assert!(!ok, "exit status nonzero");
    println!("{err}");
    assert!(
        err.contains("missing: exact") && err.contains("1 missing"),
        "{err}"
    );
}

/// A server on `zone` (a file of `zones/`) whose maps check clean.
fn clean_server(zone: &str) -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let path = net.dir.join(zone.rsplit('/').next().unwrap());
    std::fs::copy(zone_file(zone), &path).unwrap();
    net.start_server(&[path.to_str().unwrap()], &["--listen", "[::]:53"])
        .expect("server starts");
    let out = xdpdns(&net, &["map", "check", "--json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["different"], 0, "{out}");
    assert_eq!(v["missing"], 0, "{out}");
    net
}

/// Writes `value` under `key` into map `id` behind the daemon's back.
fn update(id: &str, key: &[String], value: &[String]) {
    let mut args = vec!["map", "update", "id", id, "key", "hex"];
    args.extend(key.iter().map(String::as_str));
    args.extend(["value", "hex"]);
    args.extend(value.iter().map(String::as_str));
    sh(Command::new("bpftool").args(&args)).unwrap();
}

/// `xdpdns map check`'s report, asserting it failed.
fn failed_check(net: &TestNet) -> String {
    let (ok, _, err) = cli(net, &["map", "check"]);
    assert!(!ok, "exit status nonzero");
    println!("{err}");
    err
}

/// The NSEC zone slot's data is checked too: an NSEC label entry changed behind the daemon's
/// back (the NSEC it names) is reported as different, with exit status 1.
#[test]
fn a_changed_nsec_label_is_found() {
    let net = clean_server("signed/nsec.example.zone");
    let labels = map_of_denial(&net, "NSEC_LABELS").to_string();
    let dump = bpftool(&["map", "dump", "id", &labels]);
    // An entry with a label (the apex's own has none): its NSEC's index changed.
    let entry = dump
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| hex(&e["value"])[64] != "00")
        .expect("an NSEC label in the map");
    let key = hex(&entry["key"]);
    let mut value = hex(&entry["value"]);
    let record = u8::from_str_radix(&value[68], 16).unwrap();
    value[68] = format!("{:02x}", record ^ 1);
    update(&labels, &key, &value);
    let err = failed_check(&net);
    assert!(
        err.contains("different: nsec.example. slot") && err.contains("NSEC label"),
        "{err}"
    );
}

/// The service addresses are checked in both places the program has them: one deleted from
/// `SERVICE_ADDRS` is reported missing, and the configuration's copy changed (its count) is
/// reported as different, with exit status 1.
#[test]
fn a_changed_service_address_is_found() {
    let net = clean_server("example.zone");
    let addrs = map_of_server(&net, "SERVICE_ADDRS").to_string();
    let dump = bpftool(&["map", "dump", "id", &addrs]);
    let key = hex(&dump[0]["key"]);
    let mut args = vec!["map", "delete", "id", &addrs, "key", "hex"];
    args.extend(key.iter().map(String::as_str));
    sh(Command::new("bpftool").args(&args)).unwrap();
    let err = failed_check(&net);
    assert!(
        err.contains("missing: service address")
            && err.contains("1 missing, 0 unexpected, 0 different"),
        "{err}"
    );

    // `Config::service_count` (octets 8..12) one more than the addresses.
    let config = map_of_server(&net, "CONFIG").to_string();
    let dump = bpftool(&["map", "dump", "id", &config]);
    let mut value = hex(&dump[0]["value"]);
    let count = u8::from_str_radix(&value[8], 16).unwrap();
    value[8] = format!("{:02x}", count + 1);
    update(&config, &hex(&dump[0]["key"]), &value);
    let err = failed_check(&net);
    assert!(
        err.contains("different: the configuration's service addresses"),
        "{err}"
    );
}
