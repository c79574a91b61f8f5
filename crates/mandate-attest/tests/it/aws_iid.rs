//! AWS instance identity documents from a real instance (2018), verified with
//! the pinned regional certificates and a clock pinned near that time.

use mandate_attest::aws_iid::{
    AwsIidError, AwsIidVerifier, CertificateKind, Evidence, PinnedCertificates, Policy,
    SignatureForm,
};

pub const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

pub fn read(rel: &str) -> Vec<u8> {
    let path = format!("{TEST_DATA}/aws-iid/{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

const ACCOUNT: &str = "692406183521";
/// `pendingTime` of the fixture, 2018-05-09T12:30:58Z.
const PENDING: i64 = 1_525_869_058;
/// An hour after launch.
const NOW: i64 = PENDING + 3600;
const DAY: i64 = 86_400;

fn verifier(policy: Policy) -> AwsIidVerifier {
    AwsIidVerifier::new(policy).unwrap()
}

fn default_verifier() -> AwsIidVerifier {
    verifier(Policy::new(DAY).allow_account(ACCOUNT))
}

fn signature_evidence<'a>(document: &'a [u8], signature: &'a [u8]) -> Evidence<'a> {
    Evidence::Signature {
        document,
        signature,
    }
}

#[test]
fn every_embedded_certificate_parses() {
    let certs = PinnedCertificates::embedded().unwrap();
    assert_eq!(certs.regions().count(), 39);
    assert!(
        certs
            .get(CertificateKind::Rsa1024, "me-central-1")
            .is_some()
    );
    assert!(certs.get(CertificateKind::Rsa2048, "us-west-2").is_some());
    assert!(
        certs
            .get(CertificateKind::Rsa2048, "mars-north-1")
            .is_none()
    );
}

#[test]
fn rsa1024_signature_verifies() {
    let doc = read("document");
    let sig = read("signature");
    let ok = default_verifier()
        .verify(&signature_evidence(&doc, &sig), NOW)
        .unwrap();
    assert_eq!(ok.form(), SignatureForm::Rsa1024Signature);
    let d = ok.document();
    assert_eq!(d.account_id, ACCOUNT);
    assert_eq!(d.region, "us-west-2");
    assert_eq!(d.availability_zone, "us-west-2a");
    assert_eq!(d.instance_id, "i-0a30e04d85e6f8793");
    assert_eq!(d.image_id, "ami-6b8cef13");
    assert_eq!(d.instance_type, "t2.nano");
    assert_eq!(d.private_ip.as_deref(), Some("172.31.46.215"));
    assert_eq!(d.pending_time, "2018-05-09T12:30:58Z");
    assert_eq!(d.pending_time_unix(), PENDING);
    assert_eq!(d.billing_products, None);
}

#[test]
fn rsa2048_pkcs7_verifies_bare_and_armoured() {
    for file in ["rsa2048", "rsa2048-with-header"] {
        let p7 = read(file);
        let ok = default_verifier()
            .verify(&Evidence::Pkcs7(&p7), NOW)
            .unwrap();
        assert_eq!(ok.form(), SignatureForm::Rsa2048Pkcs7);
        assert_eq!(ok.document().instance_id, "i-0a30e04d85e6f8793");
        // signingTime 2018-05-09 12:31:03 UTC.
        assert_eq!(ok.signing_time(), Some(PENDING + 5));
    }
}

#[test]
fn one_changed_byte_fails() {
    let doc = read("document");
    let sig = read("signature");
    let changed = String::from_utf8(doc.clone())
        .unwrap()
        .replace("t2.nano", "t2.nanp")
        .into_bytes();
    assert_eq!(
        default_verifier()
            .verify(&signature_evidence(&changed, &sig), NOW)
            .unwrap_err(),
        AwsIidError::BadSignature
    );
    // Flip one byte anywhere in the document: never verifies.
    for i in [0, 10, 200, doc.len() - 1] {
        let mut d = doc.clone();
        d[i] ^= 0x01;
        assert!(
            default_verifier()
                .verify(&signature_evidence(&d, &sig), NOW)
                .is_err()
        );
    }
    // And one changed signature byte.
    let mut s = sig.clone();
    s[5] = if s[5] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        default_verifier()
            .verify(&signature_evidence(&doc, &s), NOW)
            .unwrap_err(),
        AwsIidError::BadSignature
    );
}

#[test]
fn pkcs7_with_changed_content_fails_the_digest() {
    // Change one character of the embedded document inside the PKCS#7
    // (`t2.nano` -> `t2.nanp`): the signature over the attributes still
    // holds, the message digest does not.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let text: Vec<u8> = read("rsa2048")
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut der = b64.decode(text).unwrap();
    let at = der.windows(7).position(|w| w == b"t2.nano").unwrap();
    der[at + 6] = b'p';
    let p7 = b64.encode(&der);
    assert_eq!(
        default_verifier()
            .verify(&Evidence::Pkcs7(p7.as_bytes()), NOW)
            .unwrap_err(),
        AwsIidError::DigestMismatch
    );
    // A changed signature byte fails the signature.
    let mut der = b64
        .decode(
            read("rsa2048")
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let last = der.len() - 10;
    der[last] ^= 0x40;
    let p7 = b64.encode(&der);
    let err = default_verifier()
        .verify(&Evidence::Pkcs7(p7.as_bytes()), NOW)
        .unwrap_err();
    assert!(
        matches!(err, AwsIidError::BadSignature | AwsIidError::Malformed(_)),
        "{err:?}"
    );
}

#[test]
fn wrong_region_certificate_fails() {
    let doc = read("document");
    let sig = read("signature");
    let certs = PinnedCertificates::embedded().unwrap();
    // af-south-1 has its own RSA-1024 key.
    let af = certs.get(CertificateKind::Rsa1024, "af-south-1").unwrap();
    let raw = {
        use base64::Engine as _;
        let compact: Vec<u8> = sig
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .unwrap()
    };
    assert_eq!(
        af.verify(&doc, &raw).unwrap_err(),
        AwsIidError::BadSignature
    );
    let us = certs.get(CertificateKind::Rsa1024, "us-west-2").unwrap();
    assert!(us.verify(&doc, &raw).is_ok());

    // Through the verifier: only af-south-1 allowed.
    let af_only = verifier(
        Policy::new(DAY)
            .allow_account(ACCOUNT)
            .allow_region("af-south-1"),
    );
    assert_eq!(
        af_only
            .verify(&signature_evidence(&doc, &sig), NOW)
            .unwrap_err(),
        AwsIidError::BadSignature
    );
    assert_eq!(
        af_only
            .verify(&Evidence::Pkcs7(&read("rsa2048")), NOW)
            .unwrap_err(),
        AwsIidError::UnknownSigner
    );
    // us-east-1 shares us-west-2's RSA-1024 key: the signature verifies,
    // but the document's region is not allowed.
    let east_only = verifier(
        Policy::new(DAY)
            .allow_account(ACCOUNT)
            .allow_region("us-east-1"),
    );
    assert_eq!(
        east_only
            .verify(&signature_evidence(&doc, &sig), NOW)
            .unwrap_err(),
        AwsIidError::RegionNotAllowed("us-west-2".into())
    );
    // Its RSA-2048 certificate is distinct: the signer is not found.
    assert_eq!(
        east_only
            .verify(&Evidence::Pkcs7(&read("rsa2048")), NOW)
            .unwrap_err(),
        AwsIidError::UnknownSigner
    );
}

#[test]
fn dsa_sha1_pkcs7_is_refused() {
    for file in ["pkcs7", "pkcs7-with-header"] {
        let err = default_verifier()
            .verify(&Evidence::Pkcs7(&read(file)), NOW)
            .unwrap_err();
        assert!(matches!(err, AwsIidError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("dsa with sha-1"), "{err}");
    }
}

#[test]
fn not_valid_datastructure_is_malformed() {
    let junk = read("not-valid-datastructure");
    assert!(matches!(
        default_verifier().verify(&Evidence::Pkcs7(&junk), NOW),
        Err(AwsIidError::Malformed(_))
    ));
    assert!(matches!(
        default_verifier().verify(&signature_evidence(&read("document"), &junk), NOW),
        Err(AwsIidError::Malformed(_))
    ));
    // Junk as the document with a real signature: the bytes fail before any
    // JSON is read.
    assert_eq!(
        default_verifier()
            .verify(&signature_evidence(&junk, &read("signature")), NOW)
            .unwrap_err(),
        AwsIidError::BadSignature
    );
    assert!(!mandate_attest::aws_iid::fuzz_parse(&junk));
    assert!(mandate_attest::aws_iid::fuzz_parse(&read("rsa2048")));
}

#[test]
fn document_age_is_checked_against_the_injected_clock() {
    let doc = read("document");
    let sig = read("signature");
    let p7 = read("rsa2048");
    let v = default_verifier();
    for ev in [signature_evidence(&doc, &sig), Evidence::Pkcs7(&p7)] {
        assert!(v.verify(&ev, PENDING + DAY).is_ok());
        assert_eq!(
            v.verify(&ev, PENDING + DAY + 1).unwrap_err(),
            AwsIidError::TooOld {
                age: DAY + 1,
                max: DAY
            }
        );
        assert!(v.verify(&ev, PENDING - 60).is_ok());
        assert_eq!(
            v.verify(&ev, PENDING - 61).unwrap_err(),
            AwsIidError::FromTheFuture {
                pending: PENDING,
                now: PENDING - 61
            }
        );
    }
    // At today's time the 2018 document is far too old.
    assert!(matches!(
        v.verify(&signature_evidence(&doc, &sig), 1_800_000_000),
        Err(AwsIidError::TooOld { .. })
    ));
}

#[test]
fn accounts_must_be_allowed() {
    let doc = read("document");
    let sig = read("signature");
    let nobody = verifier(Policy::new(DAY));
    assert_eq!(
        nobody
            .verify(&signature_evidence(&doc, &sig), NOW)
            .unwrap_err(),
        AwsIidError::AccountNotAllowed(ACCOUNT.into())
    );
    let other = verifier(Policy::new(DAY).allow_account("111122223333"));
    assert_eq!(
        other
            .verify(&Evidence::Pkcs7(&read("rsa2048")), NOW)
            .unwrap_err(),
        AwsIidError::AccountNotAllowed(ACCOUNT.into())
    );
}
