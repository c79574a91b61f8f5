//! The AWS PKCS#7 reader, SignedData walk and document parser over arbitrary
//! bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mandate_attest::aws_iid::fuzz_parse(data);
});
