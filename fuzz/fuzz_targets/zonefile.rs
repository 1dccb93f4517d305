//! libFuzzer target `zonefile`: the body is `xdpdns::fuzz_support::zonefile` (see that module).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xdpdns::fuzz_support::zonefile(data);
});
