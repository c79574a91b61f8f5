//! The trust-provider parsers of untrusted input: SPIFFE bundles, join
//! tokens, binding-rule matches and claim flattening.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mandate_attest::spiffe::parse_bundle(data);
    let _ = mandate_attest::join_token::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(m) = mandate_attest::binding::ClaimMatch::parse(s) {
            let _ = mandate_attest::binding::glob(&m.value, s);
        }
    }
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(data) {
        let _ = mandate_attest::oidc::flatten(&m);
    }
});
