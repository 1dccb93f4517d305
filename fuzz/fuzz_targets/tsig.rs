//! libFuzzer target `tsig`: the body is `xdpdns::fuzz_support::tsig` (see that module).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xdpdns::fuzz_support::tsig(data);
});
