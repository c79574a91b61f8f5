//! The untrusted-input parsers never panic.

use mandate_attest::aws_iid::{AwsIidVerifier, Evidence, Policy, fuzz_parse};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = fuzz_parse(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_base64_text(s in "[A-Za-z0-9+/=\n]{0,1500}") {
        let _ = fuzz_parse(s.as_bytes());
    }

    #[test]
    fn mutated_pkcs7_never_panics_and_never_yields_another_document(
        at in 0usize..1423, byte in any::<u8>()
    ) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/aws-iid/rsa2048");
        let mut p7 = std::fs::read(path).unwrap();
        let v = AwsIidVerifier::new(Policy::new(i64::MAX).allow_account("692406183521")).unwrap();
        let expected = v.verify(&Evidence::Pkcs7(&p7), 1_525_869_058).unwrap();
        let i = at % p7.len();
        p7[i] = byte;
        // Whatever the change, a document that verifies is the original one.
        if let Ok(ok) = v.verify(&Evidence::Pkcs7(&p7), 1_525_869_058) {
            prop_assert_eq!(ok.document(), expected.document());
        }
    }
}

/// A DER walk over the fixture with every prefix cut off never panics.
#[test]
fn truncated_pkcs7_never_panics() {
    use base64::Engine as _;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/aws-iid/rsa2048"
    );
    let text: Vec<u8> = std::fs::read(path)
        .unwrap()
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    for n in 0..der.len() {
        assert!(!fuzz_parse(&der[..n]), "prefix {n} parsed");
    }
    assert!(fuzz_parse(&der));
}
