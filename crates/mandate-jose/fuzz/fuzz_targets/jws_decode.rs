//! Compact JWS parsing over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mandate_jose::jws::fuzz_decode(data);
});
