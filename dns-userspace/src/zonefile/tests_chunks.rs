//! Differential tests of parallel parsing (`chunks`): zones generated with the syntax that
//! makes cutting a file hard — parentheses over several lines with comments inside, quoted
//! strings holding `;`, `(` and newlines escaped, escapes, relative and absolute owners, `@`,
//! blank owners, blank and comment lines, `$ORIGIN` and `$TTL` changes, `$INCLUDE`, TTL units,
//! class in either place, and errors anywhere — each parsed sequentially and in 2 to 9
//! chunks, which must give the same records, locations, warnings and error. Also the
//! repository's zone files.

use super::chunks::difference;
use super::tests::origin;
use crate::wire::name::Name;

/// SplitMix64, seeded: the same zones on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// One entry (possibly several lines) of a generated zone.
fn entry(rng: &mut Rng, i: usize, errors: bool) -> String {
    let owner = match rng.below(8) {
        0 => "@".to_owned(),
        1 => format!("n{i}.example."),
        2 => " ".to_owned(),
        3 => "\t".to_owned(),
        4 => format!("a\\.b{i}"),
        5 => format!("x{i}.sub"),
        _ => format!("n{i}"),
    };
    let ttl = rng.pick(&["", "300 ", "1h30m ", "2D ", "IN ", "600 IN ", "IN 60 "]);
    let rr = match rng.below(12) {
        0 => format!("A 198.18.{}.{}", i % 256, rng.below(256)),
        1 => "AAAA fd00::1".to_owned(),
        2 => format!("TXT \"semi;colon (paren\" \"esc\\\"aped\" w\\059rd{i}"),
        3 => "TXT ( \"one\" ; a comment ( inside\n    \"two\" )".to_owned(),
        4 => format!("MX ( 10\n ; only a comment\n\n mail{i} )"),
        5 => "NS ns1.example.".to_owned(),
        6 => "TXT \"line\\\ncontinued\"".to_owned(),
        7 => format!("CNAME target{i}.example."),
        8 => "TXT \\# 3 026869".to_owned(),
        9 => "SRV 1 2 3 srv.example.".to_owned(),
        10 => "CAA 0 issue \"ca.example; policy\"".to_owned(),
        _ => "TXT plain\\ word \\(x\\)".to_owned(),
    };
    let mut s = match rng.below(40) {
        0 => "$ORIGIN sub.example.\n".to_owned(),
        1 => "$ORIGIN example.\n".to_owned(),
        2 => format!("$TTL {}\n", 60 + rng.below(1000)),
        3 => "; a comment line ( with \" quotes\n".to_owned(),
        4 => "\n   \n".to_owned(),
        5 => "  ; indented comment\n".to_owned(),
        _ => String::new(),
    };
    if errors && rng.below(400) == 0 {
        s.push_str(rng.pick(&[
            "bad BOGUS 1\n",
            "bad 99999999999 A 198.18.0.1\n",
            "bad TXT ( unclosed\n",
            "bad TXT )\n",
            "bad TXT \"open\n",
            "$GENERATE 1-2 x A 1.2.3.4\n",
            "bad CH A 198.18.0.1\n",
            "other.test. A 198.18.0.1\n",
        ]));
    }
    if owner.trim().is_empty() && i == 0 {
        s.push('@');
    } else {
        s.push_str(&owner);
    }
    s.push(' ');
    s.push_str(ttl);
    s.push_str(&rr);
    s.push_str(rng.pick(&["\n", " ; trailing comment\n", "\r\n", "\t\n"]));
    s
}

/// A zone of `n` entries after the SOA and NS.
fn zone(seed: u64, n: usize, errors: bool, ttl_first: bool) -> String {
    let mut rng = Rng(seed);
    let mut z = String::new();
    if ttl_first {
        z.push_str("$TTL 3600\n");
    }
    z.push_str(
        "@ 3600 SOA ns1 host ( 1 2 3\n  4 5 ) ; soa\n@ 3600 NS ns1\nns1 3600 A 198.18.0.1\n",
    );
    for i in 0..n {
        z.push_str(&entry(&mut rng, i, errors));
    }
    z
}

fn check(text: &str, label: &str, origin: &Name) {
    for n in 2..=9 {
        if let Some(d) = difference(text.as_bytes(), origin, label, n) {
            panic!("{d}\n--- zone ---\n{text}");
        }
    }
}

#[test]
fn chunked_parsing_equals_sequential_on_generated_zones() {
    for seed in 0..60u64 {
        let text = zone(
            seed,
            50 + (seed as usize * 7) % 300,
            seed % 3 == 0,
            seed % 5 != 4,
        );
        check(&text, "test.zone", &origin());
    }
}

#[test]
fn chunked_parsing_cuts_the_file_and_keeps_line_numbers() {
    // Without a cut the test above would compare the sequential parser with itself.
    let text = zone(7, 400, false, true);
    let one = super::parse_in_chunks(text.as_bytes(), &origin(), "test.zone", 1).unwrap();
    let many = super::parse_in_chunks(text.as_bytes(), &origin(), "test.zone", 4).unwrap();
    assert!(one.records.len() > 400);
    assert_eq!(one.records, many.records);
    assert_eq!(one.locations, many.locations);
    let starts = super::chunks::plan_len(text.as_bytes(), &origin(), "test.zone", 4);
    assert_eq!(starts, Some(4), "the zone is cut in 4");
    // An error in a late chunk names its line in the whole file.
    let bad = format!("{text}bad BOGUS 1\n");
    let line = bad.lines().count();
    let e = super::parse_in_chunks(bad.as_bytes(), &origin(), "test.zone", 4).unwrap_err();
    assert_eq!((e.line, e.file.as_str()), (line, "test.zone"), "{e}");
    assert!(e.message.contains("unknown type 'BOGUS'"), "{e}");
}

#[test]
fn chunked_parsing_keeps_includes_sequential_and_equal() {
    let d = std::env::temp_dir().join(format!("xdpdns-chunks-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("inc.zone"), "$TTL 77\ninc A 198.18.0.9\n").unwrap();
    let body = zone(11, 200, false, true);
    for text in [
        format!("{body}$INCLUDE inc.zone\n{}", zone(12, 100, false, true)),
        format!("$INCLUDE inc.zone sub.example.\n{body}"),
    ] {
        let main = d.join("main.zone");
        std::fs::write(&main, &text).unwrap();
        check(&text, &main.display().to_string(), &origin());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn chunked_parsing_equals_sequential_on_the_repository_zones() {
    // Every `NAME.zone` of the repository's zone directories, with its origin NAME.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seen = 0;
    for dir in ["zones", "zones/signed", "tests/zones"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = e.unwrap().path();
            let Some(stem) = path.to_str().and_then(|p| p.strip_suffix(".zone")) else {
                continue;
            };
            let file = std::path::Path::new(stem)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            let origin = format!("{file}.");
            let text = std::fs::read_to_string(&path).unwrap();
            check(
                &text,
                &path.display().to_string(),
                &Name::parse(&origin, None).unwrap(),
            );
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen} zone files");
}
