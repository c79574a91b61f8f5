//! The PKCS#7 SignedData AWS serves at `/latest/dynamic/instance-identity/rsa2048`
//! (and, with DSA/SHA-1, at `.../pkcs7`), walked with the `der` crate.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType OID (signedData), content [0] EXPLICIT SignedData }
//! SignedData  ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
//!                            certificates [0] OPTIONAL, crls [1] OPTIONAL, signerInfos SET }
//! encapContentInfo ::= SEQUENCE { eContentType OID (data), eContent [0] EXPLICIT OCTET STRING }
//! SignerInfo  ::= SEQUENCE { version, sid IssuerAndSerialNumber, digestAlgorithm,
//!                            signedAttrs [0] IMPLICIT SET OF Attribute, signatureAlgorithm,
//!                            signature OCTET STRING, unsignedAttrs [1] OPTIONAL }
//! ```
//!
//! Certificates carried in the message are ignored: the signer is found
//! among the pinned regional certificates by issuer and serial number.

use der::asn1::{Any, ObjectIdentifier as Oid, UtcTime};
use der::{Tag, Tagged as _};

use super::AwsIidError;
use crate::asn1::{self, Asn1Error};

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const DSA: Oid = Oid::new_unwrap("1.2.840.10040.4.1");
const DSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");
const ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const ATTR_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");

/// What verification needs from a SignedData, nothing yet trusted.
#[derive(Debug, Clone)]
pub(crate) struct SignedDocument {
    /// The embedded document bytes (eContent).
    pub(crate) content: Vec<u8>,
    /// The signer's issuer name (whole element).
    pub(crate) issuer: Any,
    /// The signer's certificate serial number (INTEGER contents).
    pub(crate) serial: Vec<u8>,
    /// DER of the signed attributes as a SET: the bytes the signature covers.
    pub(crate) signed_attrs: Vec<u8>,
    /// The messageDigest attribute.
    pub(crate) message_digest: Vec<u8>,
    /// The signingTime attribute, unix seconds.
    pub(crate) signing_time: Option<i64>,
    /// The RSA signature.
    pub(crate) signature: Vec<u8>,
}

fn malformed(what: impl Into<String>) -> AwsIidError {
    AwsIidError::Malformed(what.into())
}

impl From<Asn1Error> for AwsIidError {
    fn from(e: Asn1Error) -> Self {
        Self::Malformed(e.0)
    }
}

fn oid_of(any: &Any) -> Result<Oid, AwsIidError> {
    asn1::expect(any, Tag::ObjectIdentifier, "object identifier")?;
    Oid::from_bytes(any.value()).map_err(|e| malformed(e.to_string()))
}

/// The OID of an AlgorithmIdentifier SEQUENCE.
fn algorithm(any: &Any) -> Result<Oid, AwsIidError> {
    let parts = asn1::children(any, Tag::Sequence, "algorithm identifier")?;
    oid_of(
        parts
            .first()
            .ok_or_else(|| malformed("empty algorithm identifier"))?,
    )
}

const DSA_SHA1: &str = "dsa with sha-1 (the legacy pkcs7 form)";
const NOT_RSA_SHA256: &str = "algorithm other than rsa with sha-256";

/// SignedData and SignerInfo with issuer-and-serial signers are version 1.
fn expect_version_1(any: &Any) -> Result<(), AwsIidError> {
    asn1::expect(any, Tag::Integer, "version")?;
    if any.value() == [1] {
        Ok(())
    } else {
        Err(malformed("version is not 1"))
    }
}

fn take<I: Iterator<Item = Any>>(it: &mut I, what: &str) -> Result<Any, AwsIidError> {
    it.next()
        .ok_or_else(|| malformed(format!("missing {what}")))
}

/// Parses a DER/BER PKCS#7 SignedData with one RSA/SHA-256 signer.
pub(crate) fn parse(der: &[u8]) -> Result<SignedDocument, AwsIidError> {
    let top = asn1::children(&asn1::single(der)?, Tag::Sequence, "ContentInfo")?;
    let [content_type, content] =
        <[Any; 2]>::try_from(top).map_err(|_| malformed("ContentInfo must have two elements"))?;
    if oid_of(&content_type)? != SIGNED_DATA {
        return Err(malformed("content type is not signedData"));
    }
    if !asn1::is_context(content.tag(), 0) {
        return Err(malformed("content is not [0]"));
    }
    let signed_data = asn1::single(content.value())?;
    let mut fields = asn1::children(&signed_data, Tag::Sequence, "SignedData")?.into_iter();

    expect_version_1(&take(&mut fields, "version")?)?;
    let digest_algorithms = take(&mut fields, "digestAlgorithms")?;
    for alg in asn1::children(&digest_algorithms, Tag::Set, "digestAlgorithms")? {
        match algorithm(&alg)? {
            SHA256 => {}
            SHA1 => return Err(AwsIidError::Unsupported(DSA_SHA1)),
            _ => return Err(AwsIidError::Unsupported(NOT_RSA_SHA256)),
        }
    }
    let content = encapsulated_content(&take(&mut fields, "encapContentInfo")?)?;

    // Skip certificates [0] and crls [1]; the last element is signerInfos.
    let mut signer_infos = None;
    for field in fields {
        if field.tag() == Tag::Set {
            signer_infos = Some(field);
        } else if !asn1::is_context(field.tag(), 0) && !asn1::is_context(field.tag(), 1) {
            return Err(malformed("unexpected SignedData element"));
        }
    }
    let signer_infos = signer_infos.ok_or_else(|| malformed("missing signerInfos"))?;
    let [signer] = <[Any; 1]>::try_from(asn1::elements(signer_infos.value())?)
        .map_err(|_| malformed("expected exactly one signer"))?;
    signer_info(&signer, content)
}

fn encapsulated_content(encap: &Any) -> Result<Vec<u8>, AwsIidError> {
    let mut parts = asn1::children(encap, Tag::Sequence, "encapContentInfo")?.into_iter();
    if oid_of(&take(&mut parts, "eContentType")?)? != DATA {
        return Err(malformed("encapsulated content is not data"));
    }
    let explicit = take(&mut parts, "eContent")?;
    if !asn1::is_context(explicit.tag(), 0) || parts.next().is_some() {
        return Err(malformed("eContent is not a single [0]"));
    }
    Ok(asn1::octet_string(explicit.value())?)
}

fn signer_info(signer: &Any, content: Vec<u8>) -> Result<SignedDocument, AwsIidError> {
    let mut parts = asn1::children(signer, Tag::Sequence, "SignerInfo")?.into_iter();
    expect_version_1(&take(&mut parts, "version")?)?;
    let sid = asn1::children(
        &take(&mut parts, "sid")?,
        Tag::Sequence,
        "IssuerAndSerialNumber",
    )?;
    let [issuer, serial] =
        <[Any; 2]>::try_from(sid).map_err(|_| malformed("sid is not issuer and serial"))?;
    asn1::expect(&issuer, Tag::Sequence, "issuer")?;
    asn1::expect(&serial, Tag::Integer, "serialNumber")?;

    let digest_alg = algorithm(&take(&mut parts, "digestAlgorithm")?)?;
    let attrs = take(&mut parts, "signedAttrs")?;
    if !asn1::is_context(attrs.tag(), 0) {
        return Err(malformed("signed attributes are required"));
    }
    let signature_alg = algorithm(&take(&mut parts, "signatureAlgorithm")?)?;
    if digest_alg == SHA1 || signature_alg == DSA || signature_alg == DSA_WITH_SHA1 {
        return Err(AwsIidError::Unsupported(DSA_SHA1));
    }
    if digest_alg != SHA256 || (signature_alg != RSA_ENCRYPTION && signature_alg != SHA256_WITH_RSA)
    {
        return Err(AwsIidError::Unsupported(NOT_RSA_SHA256));
    }
    let signature = take(&mut parts, "signature")?;
    asn1::expect(&signature, Tag::OctetString, "signature")?;

    let (message_digest, signing_time) = signed_attributes(&attrs)?;
    Ok(SignedDocument {
        content,
        issuer,
        serial: serial.value().to_vec(),
        signed_attrs: asn1::as_set(&attrs)?,
        message_digest,
        signing_time,
        signature: signature.value().to_vec(),
    })
}

/// Reads contentType (must be data), messageDigest and signingTime; each
/// attribute type at most once, with exactly one value.
fn signed_attributes(attrs: &Any) -> Result<(Vec<u8>, Option<i64>), AwsIidError> {
    let mut content_type = None;
    let mut digest = None;
    let mut signing_time = None;
    let mut seen = Vec::new();
    for attr in asn1::elements(attrs.value())? {
        let mut parts = asn1::children(&attr, Tag::Sequence, "Attribute")?.into_iter();
        let kind = oid_of(&take(&mut parts, "attribute type")?)?;
        if seen.contains(&kind) {
            return Err(malformed(format!("attribute {kind} appears twice")));
        }
        seen.push(kind);
        let values = asn1::children(&take(&mut parts, "attribute values")?, Tag::Set, "values")?;
        let [value] = <[Any; 1]>::try_from(values)
            .map_err(|_| malformed(format!("attribute {kind} needs exactly one value")))?;
        if kind == ATTR_CONTENT_TYPE {
            content_type = Some(oid_of(&value)?);
        } else if kind == ATTR_MESSAGE_DIGEST {
            asn1::expect(&value, Tag::OctetString, "messageDigest")?;
            digest = Some(value.value().to_vec());
        } else if kind == ATTR_SIGNING_TIME {
            let t = value
                .decode_as::<UtcTime>()
                .map_err(|e| malformed(e.to_string()))?;
            signing_time = i64::try_from(t.to_unix_duration().as_secs()).ok();
        }
    }
    if content_type != Some(DATA) {
        return Err(malformed("contentType attribute missing or not data"));
    }
    let digest = digest.ok_or_else(|| malformed("messageDigest attribute missing"))?;
    Ok((digest, signing_time))
}
