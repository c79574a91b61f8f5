//! AWS EC2 instance identity documents, verified with AWS's regional
//! certificates shipped inside this crate.
//!
//! Two signed forms are accepted:
//! - [`Evidence::Signature`]: the `document` and the base64 `signature`, an
//!   RSA-1024 PKCS#1 v1.5 SHA-256 signature over the exact document bytes.
//!   RSA-1024 is accepted for exactly this case (AWS still signs with it).
//! - [`Evidence::Pkcs7`]: the `rsa2048` PKCS#7 SignedData (base64, with or
//!   without PEM armour) embedding the document. The signer is found among
//!   the pinned RSA-2048 certificates by issuer and serial number; the
//!   signature covers the DER SET OF signed attributes; the messageDigest
//!   attribute must equal SHA-256 of the embedded document.
//!
//! The DSA/SHA-1 `pkcs7` form is refused. The bytes are verified before any
//! JSON is parsed: candidate certificates come from the policy's allowed
//! regions (all regions when none are listed), and once the document is read,
//! the certificate of the region it names must be the one that verified it.
//! Then the policy applies: allowed accounts and regions, and a maximum age
//! of the document measured from `pendingTime` at the time the caller passes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mandate_jose::digest::sha256;
use mandate_jose::secret::ct_eq;

mod certs;
mod document;
mod pinned;
mod pkcs7;

pub use document::InstanceIdentityDocument;
pub use pinned::{CertificateKind, PinnedCertificate, PinnedCertificates};

/// Largest evidence accepted, in bytes, for each of document, signature and
/// PKCS#7 (real ones are under 2 KiB).
pub const MAX_EVIDENCE_LEN: usize = 16 * 1024;

/// How far in the future `pendingTime` may be (clock skew), in seconds.
pub const MAX_FUTURE_SKEW_SECS: i64 = 60;

/// Why an instance identity document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsIidError {
    /// The evidence is not base64, PEM or PKCS#7 of the expected shape.
    #[error("malformed evidence: {0}")]
    Malformed(String),
    /// Evidence larger than [`MAX_EVIDENCE_LEN`].
    #[error("evidence of {0} bytes is too large")]
    TooLarge(usize),
    /// A signature form Mandate does not accept (the DSA/SHA-1 `pkcs7`).
    #[error("unsupported signature: {0}")]
    Unsupported(&'static str),
    /// No pinned certificate (of the allowed regions) names the PKCS#7 signer.
    #[error("signer certificate not found among the pinned certificates")]
    UnknownSigner,
    /// The signature does not verify with any candidate certificate.
    #[error("signature verification failed")]
    BadSignature,
    /// The PKCS#7 messageDigest is not SHA-256 of the embedded document.
    #[error("message digest does not match the document")]
    DigestMismatch,
    /// The verified bytes are not a valid instance identity document.
    #[error("malformed instance identity document: {0}")]
    Document(String),
    /// The document names a region with no pinned certificate.
    #[error("region `{0}` has no pinned certificate")]
    UnknownRegion(String),
    /// The document's region's certificate is not the one that verified it.
    #[error("document region `{0}` was not signed with that region's certificate")]
    RegionMismatch(String),
    /// The account is not on the policy's list.
    #[error("account `{0}` is not allowed")]
    AccountNotAllowed(String),
    /// The region is not on the policy's list.
    #[error("region `{0}` is not allowed")]
    RegionNotAllowed(String),
    /// The document is older than the policy allows.
    #[error("document is {age} s old; at most {max} s allowed")]
    TooOld {
        /// Age in seconds (now minus `pendingTime`).
        age: i64,
        /// The configured maximum.
        max: i64,
    },
    /// `pendingTime` is further in the future than the clock skew.
    #[error("document pending time {pending} is in the future (now {now})")]
    FromTheFuture {
        /// `pendingTime`, unix seconds.
        pending: i64,
        /// The time of the check.
        now: i64,
    },
    /// An embedded certificate did not parse (a build defect).
    #[error("pinned certificate for `{region}` is unusable: {reason}")]
    PinnedCertificate {
        /// The region.
        region: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Instance identity evidence as an agent presents it.
#[derive(Debug, Clone, Copy)]
pub enum Evidence<'a> {
    /// `/latest/dynamic/instance-identity/document` and `.../signature`.
    Signature {
        /// The exact document bytes.
        document: &'a [u8],
        /// The base64 signature (line breaks allowed).
        signature: &'a [u8],
    },
    /// `/latest/dynamic/instance-identity/rsa2048`: base64 PKCS#7, with or
    /// without `-----BEGIN PKCS7-----` armour.
    Pkcs7(&'a [u8]),
}

/// Which signature verified a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    /// The base64 RSA-1024/SHA-256 `signature`.
    Rsa1024Signature,
    /// The RSA-2048 PKCS#7.
    Rsa2048Pkcs7,
}

/// What a verified document must also satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    accounts: Vec<String>,
    regions: Vec<String>,
    max_age_secs: i64,
}

impl Policy {
    /// Documents up to `max_age_secs` old (from `pendingTime`), from no
    /// account yet: add accounts with [`Policy::allow_account`]. Without any
    /// allowed account every document is refused.
    pub fn new(max_age_secs: i64) -> Self {
        Self {
            accounts: Vec::new(),
            regions: Vec::new(),
            max_age_secs,
        }
    }

    /// Allows documents from `account`.
    #[must_use]
    pub fn allow_account(mut self, account: impl Into<String>) -> Self {
        self.accounts.push(account.into());
        self
    }

    /// Restricts documents to `region` (and the other allowed regions). With
    /// no region listed, every region with a pinned certificate is allowed.
    #[must_use]
    pub fn allow_region(mut self, region: impl Into<String>) -> Self {
        self.regions.push(region.into());
        self
    }

    fn region_allowed(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }
}

/// A document whose signature verified and which satisfied the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDocument {
    document: InstanceIdentityDocument,
    form: SignatureForm,
    signing_time: Option<i64>,
}

impl VerifiedDocument {
    /// The document.
    pub fn document(&self) -> &InstanceIdentityDocument {
        &self.document
    }

    /// Which signature verified it.
    pub fn form(&self) -> SignatureForm {
        self.form
    }

    /// The PKCS#7 signingTime attribute (unix seconds), when present.
    pub fn signing_time(&self) -> Option<i64> {
        self.signing_time
    }

    /// The document, owned.
    pub fn into_document(self) -> InstanceIdentityDocument {
        self.document
    }
}

/// Verifies instance identity documents against the pinned certificates.
#[derive(Debug, Clone)]
pub struct AwsIidVerifier {
    policy: Policy,
    certs: PinnedCertificates,
}

impl AwsIidVerifier {
    /// A verifier with the certificates embedded in this crate.
    pub fn new(policy: Policy) -> Result<Self, AwsIidError> {
        Ok(Self {
            policy,
            certs: PinnedCertificates::embedded()?,
        })
    }

    /// The pinned certificates.
    pub fn certificates(&self) -> &PinnedCertificates {
        &self.certs
    }

    /// Verifies `evidence` at unix time `now`.
    pub fn verify(
        &self,
        evidence: &Evidence<'_>,
        now: i64,
    ) -> Result<VerifiedDocument, AwsIidError> {
        let (document, form, signing_time) = match *evidence {
            Evidence::Signature {
                document,
                signature,
            } => (
                self.verify_signature(document, signature)?,
                SignatureForm::Rsa1024Signature,
                None,
            ),
            Evidence::Pkcs7(text) => {
                let (doc, time) = self.verify_pkcs7(text)?;
                (doc, SignatureForm::Rsa2048Pkcs7, time)
            }
        };
        self.apply_policy(&document, now)?;
        Ok(VerifiedDocument {
            document,
            form,
            signing_time,
        })
    }

    fn candidates(&self, kind: CertificateKind) -> impl Iterator<Item = &PinnedCertificate> {
        self.certs
            .all(kind)
            .iter()
            .filter(|c| self.policy.region_allowed(c.region()))
    }

    fn verify_signature(
        &self,
        document: &[u8],
        signature: &[u8],
    ) -> Result<InstanceIdentityDocument, AwsIidError> {
        check_len(document)?;
        let signature = decode_base64(signature)?;
        // Many regions share one key: try each distinct key once.
        let mut tried: Vec<&[u8]> = Vec::new();
        let mut verified = None;
        for cert in self.candidates(CertificateKind::Rsa1024) {
            let spki = cert.key().spki_der();
            if tried.contains(&spki) {
                continue;
            }
            tried.push(spki);
            if cert.verify(document, &signature).is_ok() {
                verified = Some(cert);
                break;
            }
        }
        let verified = verified.ok_or(AwsIidError::BadSignature)?;
        let doc = InstanceIdentityDocument::parse(document)?;
        let own = self
            .certs
            .get(CertificateKind::Rsa1024, &doc.region)
            .ok_or_else(|| AwsIidError::UnknownRegion(doc.region.clone()))?;
        if own.key() != verified.key() {
            return Err(AwsIidError::RegionMismatch(doc.region));
        }
        Ok(doc)
    }

    fn verify_pkcs7(
        &self,
        text: &[u8],
    ) -> Result<(InstanceIdentityDocument, Option<i64>), AwsIidError> {
        let signed = pkcs7::parse(&pkcs7_der(text)?)?;
        let signer = self
            .candidates(CertificateKind::Rsa2048)
            .find(|c| c.is_signer(&signed.issuer, &signed.serial))
            .ok_or(AwsIidError::UnknownSigner)?;
        signer.verify(&signed.signed_attrs, &signed.signature)?;
        if !ct_eq(&sha256(&[&signed.content]), &signed.message_digest) {
            return Err(AwsIidError::DigestMismatch);
        }
        let doc = InstanceIdentityDocument::parse(&signed.content)?;
        let own = self
            .certs
            .get(CertificateKind::Rsa2048, &doc.region)
            .ok_or_else(|| AwsIidError::UnknownRegion(doc.region.clone()))?;
        if !own.is_signer(&signed.issuer, &signed.serial) {
            return Err(AwsIidError::RegionMismatch(doc.region));
        }
        Ok((doc, signed.signing_time))
    }

    fn apply_policy(&self, doc: &InstanceIdentityDocument, now: i64) -> Result<(), AwsIidError> {
        if !self.policy.accounts.contains(&doc.account_id) {
            return Err(AwsIidError::AccountNotAllowed(doc.account_id.clone()));
        }
        if !self.policy.region_allowed(&doc.region) {
            return Err(AwsIidError::RegionNotAllowed(doc.region.clone()));
        }
        let pending = doc.pending_time_unix();
        if pending > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
            return Err(AwsIidError::FromTheFuture { pending, now });
        }
        let age = now.saturating_sub(pending);
        if age > self.policy.max_age_secs {
            return Err(AwsIidError::TooOld {
                age,
                max: self.policy.max_age_secs,
            });
        }
        Ok(())
    }
}

fn check_len(bytes: &[u8]) -> Result<(), AwsIidError> {
    if bytes.len() > MAX_EVIDENCE_LEN {
        return Err(AwsIidError::TooLarge(bytes.len()));
    }
    Ok(())
}

/// Standard base64 with padding; ASCII whitespace (AWS's line breaks) ignored.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, AwsIidError> {
    check_len(text)?;
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(compact)
        .map_err(|e| AwsIidError::Malformed(format!("not base64: {e}")))
}

/// The DER bytes of a PKCS#7 given as base64, optionally PEM-armoured.
fn pkcs7_der(text: &[u8]) -> Result<Vec<u8>, AwsIidError> {
    const BEGIN: &[u8] = b"-----BEGIN PKCS7-----";
    const END: &[u8] = b"-----END PKCS7-----";
    check_len(text)?;
    let trimmed = text.trim_ascii();
    let body = match trimmed.strip_prefix(BEGIN) {
        Some(rest) => rest
            .trim_ascii_end()
            .strip_suffix(END)
            .ok_or_else(|| AwsIidError::Malformed("pem armour not closed".to_owned()))?,
        None => trimmed,
    };
    decode_base64(body)
}

/// Fuzzing entry point: runs the PKCS#7 reader, the SignedData walk and the
/// document parser over arbitrary bytes. Never panics; the result says
/// whether the bytes parsed as a signed document.
pub fn fuzz_parse(data: &[u8]) -> bool {
    let _ = InstanceIdentityDocument::parse(data);
    let from_text = pkcs7_der(data).and_then(|der| pkcs7::parse(&der));
    let from_der = pkcs7::parse(data);
    from_text.is_ok() || from_der.is_ok()
}
