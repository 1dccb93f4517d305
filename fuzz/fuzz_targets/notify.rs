//! libFuzzer target `notify`: the body is `xdpdns::fuzz_support::notify` (see that module).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xdpdns::fuzz_support::notify(data);
});
