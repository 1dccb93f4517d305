//! libFuzzer target `ixfr`: the body is `xdpdns::fuzz_support::ixfr` (see that module).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xdpdns::fuzz_support::ixfr(data);
});
