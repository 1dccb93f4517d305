//! The `xdpdns stats` counters, parsed from the command's output and read by name. A name the
//! server does not report is an error that names it, never a 0: a renamed or misspelt counter
//! must fail the test that reads it.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};

/// Counter values by name (`xdp.answered_exact`, `udp.queries`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(BTreeMap<String, u64>);

impl Counters {
    /// Parses `name value` lines; any other line is an error.
    pub fn parse(text: &str) -> Result<Counters> {
        let mut map = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, value) = line
                .split_once(' ')
                .ok_or_else(|| anyhow!("stats line without a value: {line:?}"))?;
            let value = value
                .trim()
                .parse()
                .with_context(|| format!("stats line {line:?}"))?;
            if map.insert(name.to_owned(), value).is_some() {
                bail!("counter {name} reported twice");
            }
        }
        Ok(Counters(map))
    }

    /// The value of `name`; an error when the server reports no such counter.
    pub fn get(&self, name: &str) -> Result<u64> {
        self.0.get(name).copied().ok_or_else(|| {
            anyhow!(
                "no counter named {name:?} (the server reports: {})",
                self.0.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The value of `name`; panics, naming it, when there is no such counter.
    pub fn value(&self, name: &str) -> u64 {
        self.get(name).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Counter names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How far counter `name` moved from `before` to `after`: an error when either snapshot lacks
/// it or it went backwards.
pub fn try_delta(before: &Counters, after: &Counters, name: &str) -> Result<u64> {
    let (b, a) = (before.get(name)?, after.get(name)?);
    a.checked_sub(b)
        .ok_or_else(|| anyhow!("counter {name} went backwards: {b} -> {a}"))
}

/// Like `try_delta`; panics with the error.
pub fn delta(before: &Counters, after: &Counters, name: &str) -> u64 {
    try_delta(before, after, name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The counters that moved, as `name+delta`, for assertion messages.
pub fn moved(before: &Counters, after: &Counters) -> Vec<String> {
    after
        .names()
        .filter(|k| delta(before, after, k) > 0)
        .map(|k| format!("{k}+{}", delta(before, after, k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "xdp.answered 3\nxdp.answered_exact 2\nudp.queries 7\n";

    #[test]
    fn reads_counters_by_name() {
        let before = Counters::parse(TEXT).unwrap();
        let after =
            Counters::parse("xdp.answered 5\nxdp.answered_exact 2\nudp.queries 9\n").unwrap();
        assert_eq!(before.value("udp.queries"), 7);
        assert_eq!(delta(&before, &after, "xdp.answered"), 2);
        assert_eq!(delta(&before, &after, "xdp.answered_exact"), 0);
        assert_eq!(
            before.names().collect::<Vec<_>>(),
            ["udp.queries", "xdp.answered", "xdp.answered_exact"]
        );
    }

    #[test]
    fn a_counter_that_does_not_exist_is_an_error_naming_it() {
        let c = Counters::parse(TEXT).unwrap();
        let e = c.get("xdp.answered_bogus").unwrap_err().to_string();
        assert!(e.contains("xdp.answered_bogus"), "{e}");
        let e = try_delta(&c, &c, "xdp.answerd_exact")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xdp.answerd_exact"), "{e}");
    }

    #[test]
    #[should_panic(expected = "no counter named \"udp.querys\"")]
    fn delta_panics_on_a_counter_that_does_not_exist() {
        let c = Counters::parse(TEXT).unwrap();
        delta(&c, &c, "udp.querys");
    }

    #[test]
    fn counters_that_go_backwards_or_lines_without_values_are_errors() {
        let before = Counters::parse(TEXT).unwrap();
        let after = Counters::parse("xdp.answered 1\n").unwrap();
        assert!(try_delta(&before, &after, "xdp.answered").is_err());
        assert!(Counters::parse("xdp.answered\n").is_err());
        assert!(Counters::parse("xdp.answered x\n").is_err());
        assert!(Counters::parse("a 1\na 2\n").is_err());
    }
}
