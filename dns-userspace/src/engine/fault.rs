//! Fault injection for the tests, compiled only with the `test-support` feature: a query whose
//! first label is `xdpdns-test-panic` panics the engine, wherever it comes from (UDP, TCP, the
//! XDP compiler). The tests use it to show that a panic while answering is contained, counted
//! and logged, and that serving goes on. Production builds have no such name.

/// The first label that makes the engine panic.
pub const PANIC_LABEL: &[u8] = b"xdpdns-test-panic";

/// Panics when the question (wire form, as sent) starts with [`PANIC_LABEL`].
pub fn check(question: &[u8]) {
    let n = PANIC_LABEL.len();
    if question.len() > n
        && question[0] as usize == n
        && question[1..=n].eq_ignore_ascii_case(PANIC_LABEL)
    {
        panic!("fault injected for the tests: a query for {PANIC_LABEL:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_label_triggers() {
        let mut q = vec![PANIC_LABEL.len() as u8];
        q.extend_from_slice(b"XDPDNS-test-PANIC");
        q.extend_from_slice(b"\x03bad\x00\x00\x01\x00\x01");
        assert!(std::panic::catch_unwind(|| check(&q)).is_err());
        check(b"\x03www\x11xdpdns-test-panic\x00\x00\x01\x00\x01");
        check(b"\x00\x00\x01\x00\x01");
    }
}
