//! Claim sets, JWKs and JWKS documents over arbitrary bytes.
#![no_main]

use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jwk::{Jwk, JwkSet};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = Claims::from_json(data) {
        let _ =
            Validation::new("https://issuer.example.com", "aud").validate(&claims, 1_700_000_000);
    }
    let _ = Jwk::from_json(data);
    let _ = JwkSet::from_json(data);
});
