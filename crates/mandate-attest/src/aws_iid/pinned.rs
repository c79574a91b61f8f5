//! The pinned regional certificates, parsed from the embedded PEM table.
//!
//! Only three things are read from each certificate: the issuer name and
//! serial number (how a PKCS#7 SignerInfo names its signer) and the RSA
//! public key. Certificates are pinned, so their validity dates and
//! self-signatures are not checked.

use der::Tag;
use der::asn1::Any;
use mandate_jose::pkix::RsaSpkiKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::{AwsIidError, certs};
use crate::asn1::{self, Asn1Error};

/// Which AWS signature a certificate checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// RSA-1024: the base64 `signature` over the document.
    Rsa1024,
    /// RSA-2048: the `rsa2048` PKCS#7.
    Rsa2048,
}

/// One region's certificate, reduced to what verification needs.
#[derive(Debug, Clone)]
pub struct PinnedCertificate {
    region: &'static str,
    kind: CertificateKind,
    issuer: Any,
    serial: Vec<u8>,
    key: RsaSpkiKey,
}

impl PinnedCertificate {
    fn from_pem(
        region: &'static str,
        kind: CertificateKind,
        pem: &str,
    ) -> Result<Self, AwsIidError> {
        let bad = |reason: String| AwsIidError::PinnedCertificate { region, reason };
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let (issuer, serial, spki) = tbs_fields(&der).map_err(|e| bad(e.0))?;
        let key = RsaSpkiKey::from_spki_der(&spki).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            region,
            kind,
            issuer,
            serial,
            key,
        })
    }

    /// The region this certificate is published for.
    pub fn region(&self) -> &'static str {
        self.region
    }

    /// Which signature it checks.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }

    /// The certificate's RSA public key.
    pub fn key(&self) -> &RsaSpkiKey {
        &self.key
    }

    /// Whether a SignerInfo's issuer and serial name this certificate.
    pub(crate) fn is_signer(&self, issuer: &Any, serial: &[u8]) -> bool {
        self.issuer == *issuer && self.serial == serial
    }

    /// Verifies a raw signature over `message` with the key and the
    /// algorithm of this kind of certificate: RSA-1024 PKCS#1 v1.5 SHA-256
    /// (AWS's legacy size) or RSA-2048 PKCS#1 v1.5 SHA-256.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), AwsIidError> {
        match self.kind {
            CertificateKind::Rsa1024 => {
                self.key.verify_pkcs1_sha256_legacy_1024(message, signature)
            }
            CertificateKind::Rsa2048 => self.key.verify_pkcs1_sha256(message, signature),
        }
        .map_err(|_| AwsIidError::BadSignature)
    }
}

/// `(issuer, serial, subjectPublicKeyInfo DER)` of a DER certificate.
fn tbs_fields(der: &[u8]) -> Result<(Any, Vec<u8>, Vec<u8>), Asn1Error> {
    let cert = asn1::children(&asn1::single(der)?, Tag::Sequence, "certificate")?;
    let tbs = cert
        .first()
        .ok_or_else(|| Asn1Error("empty certificate".to_owned()))?;
    let mut fields = asn1::children(tbs, Tag::Sequence, "tbsCertificate")?.into_iter();
    let mut next = || {
        fields
            .next()
            .ok_or_else(|| Asn1Error("short tbsCertificate".to_owned()))
    };
    let mut serial = next()?;
    if asn1::is_context(der::Tagged::tag(&serial), 0) {
        serial = next()?; // [0] version
    }
    asn1::expect(&serial, Tag::Integer, "serialNumber")?;
    let _signature_alg = next()?;
    let issuer = next()?;
    asn1::expect(&issuer, Tag::Sequence, "issuer")?;
    let _validity = next()?;
    let _subject = next()?;
    let spki = next()?;
    asn1::expect(&spki, Tag::Sequence, "subjectPublicKeyInfo")?;
    Ok((issuer, serial.value().to_vec(), asn1::to_der(&spki)?))
}

/// AWS's certificates for every region, both kinds.
#[derive(Debug, Clone)]
pub struct PinnedCertificates {
    rsa1024: Vec<PinnedCertificate>,
    rsa2048: Vec<PinnedCertificate>,
}

impl PinnedCertificates {
    /// Parses the certificates embedded in this crate.
    pub fn embedded() -> Result<Self, AwsIidError> {
        let mut rsa1024 = Vec::with_capacity(certs::REGIONS.len());
        let mut rsa2048 = Vec::with_capacity(certs::REGIONS.len());
        for &(region, pem1024, pem2048) in certs::REGIONS {
            rsa1024.push(PinnedCertificate::from_pem(
                region,
                CertificateKind::Rsa1024,
                pem1024,
            )?);
            rsa2048.push(PinnedCertificate::from_pem(
                region,
                CertificateKind::Rsa2048,
                pem2048,
            )?);
        }
        Ok(Self { rsa1024, rsa2048 })
    }

    /// The regions with a pinned certificate, sorted.
    pub fn regions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rsa1024.iter().map(PinnedCertificate::region)
    }

    /// A region's certificate of `kind`.
    pub fn get(&self, kind: CertificateKind, region: &str) -> Option<&PinnedCertificate> {
        self.all(kind).iter().find(|c| c.region == region)
    }

    /// Every certificate of `kind`.
    pub fn all(&self, kind: CertificateKind) -> &[PinnedCertificate] {
        match kind {
            CertificateKind::Rsa1024 => &self.rsa1024,
            CertificateKind::Rsa2048 => &self.rsa2048,
        }
    }
}
