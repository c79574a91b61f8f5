//! The crate's error type: one `#[non_exhaustive]` enum with a nested enum per
//! category, so callers can match on the category (`Error::Jws(_)`) or on the
//! exact reason (`Error::Jws(JwsError::AlgNone)`).

use crate::jws::Algorithm;

/// Errors from the cryptographic layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system's random generator failed.
    #[error("secure random generator unavailable")]
    Random,
    /// A key could not be parsed or is not acceptable.
    #[error("invalid key: {0}")]
    Key(#[from] KeyError),
    /// A compact JWS was malformed, used a refused algorithm, or its
    /// signature did not verify.
    #[error("invalid token: {0}")]
    Jws(#[from] JwsError),
    /// The token's claims were malformed or did not hold.
    #[error("claims rejected: {0}")]
    Claims(#[from] ClaimsError),
    /// A signature could not be produced.
    #[error("signing failed")]
    Signing,
    /// A signature outside JOSE (see [`crate::pkix`]) did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Envelope encryption failed (see [`crate::envelope`]).
    #[error("encryption failed")]
    Seal,
    /// A sealed value did not decrypt: wrong key, wrong label or changed bytes.
    #[error("sealed data could not be opened: wrong key or tampered data")]
    Unseal,
}

/// Why a key (JWK, JWKS, PEM or SubjectPublicKeyInfo) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWK or JWKS is not valid JSON of the expected shape.
    #[error("malformed key JSON: {0}")]
    Json(String),
    /// A JWK member appears twice.
    #[error("duplicate member `{0}` in key JSON")]
    DuplicateMember(String),
    /// `kty` is missing or not one of `RSA`, `EC`, `OKP`.
    #[error("unsupported key type `{0}`")]
    UnsupportedKeyType(String),
    /// `crv` is not one of `P-256`, `P-384`, `Ed25519`.
    #[error("unsupported curve `{0}`")]
    UnsupportedCurve(String),
    /// A required member is missing or not a string.
    #[error("missing or non-string member `{0}`")]
    MissingMember(&'static str),
    /// A member is not strict unpadded base64url.
    #[error("member `{0}` is not unpadded base64url")]
    Base64(&'static str),
    /// An RSA modulus below 2048 bits.
    #[error("rsa modulus of {0} bits is below the 2048-bit minimum")]
    RsaTooSmall(usize),
    /// An RSA public exponent other than an odd number of at least 65537.
    #[error("rsa public exponent must be odd and at least 65537")]
    RsaExponent,
    /// The key's `alg` does not fit its type or curve.
    #[error("algorithm `{alg}` does not fit a `{kty}` key")]
    AlgorithmMismatch {
        /// The `alg` member.
        alg: String,
        /// The key type (and curve).
        kty: String,
    },
    /// The key's `alg` is not a supported signature algorithm.
    #[error("unsupported key algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// `use` is present and is not `sig`.
    #[error("key use `{0}` is not `sig`")]
    NotForSignatures(String),
    /// The key carries private members (`d`, `p`, ...): a verification key set
    /// must hold public keys only.
    #[error("key set entry carries private key material")]
    PrivateMaterial,
    /// A key in a set that needs `kid` lookup has no `kid`.
    #[error("key {0} of the set has no `kid`")]
    MissingKid(usize),
    /// Two keys in a set share a `kid`.
    #[error("duplicate `kid` `{0}` in key set")]
    DuplicateKid(String),
    /// The key set has no `keys` array.
    #[error("key set has no `keys` array")]
    NoKeys,
    /// The crypto backend refused the key material (not on the curve, wrong
    /// length, inconsistent components).
    #[error("key material rejected: {0}")]
    Rejected(String),
    /// A PEM document held no usable key, or a key of the wrong kind.
    #[error("no usable key in PEM: {0}")]
    Pem(String),
    /// The algorithm cannot be used to sign (or not with this key).
    #[error("algorithm `{0}` is not available for signing with this key")]
    CannotSign(Algorithm),
}

/// Why a compact JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is longer than the configured limit.
    #[error("token of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length of the token.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// Not three dot-separated parts.
    #[error("not a compact JWS: expected three dot-separated parts")]
    Malformed,
    /// A part is not strict unpadded base64url.
    #[error("{0} is not unpadded base64url")]
    Base64(&'static str),
    /// The header is not a JSON object of the expected shape.
    #[error("malformed header: {0}")]
    Header(String),
    /// A header member appears twice.
    #[error("duplicate header member `{0}`")]
    DuplicateMember(String),
    /// `alg` is `none`.
    #[error("algorithm `none` is refused")]
    AlgNone,
    /// `alg` is an HMAC algorithm (`HS256`, ...).
    #[error("hmac algorithm `{0}` is refused")]
    AlgHmac(String),
    /// `alg` is not a supported algorithm.
    #[error("unknown algorithm `{0}`")]
    AlgUnknown(String),
    /// The key's algorithm is not on the caller's allow-list.
    #[error("algorithm `{0}` is not allowed")]
    AlgNotAllowed(Algorithm),
    /// The header's `alg` differs from the key's algorithm.
    #[error("header algorithm `{header}` does not match the key's `{key}`")]
    AlgMismatch {
        /// The header's `alg`.
        header: Algorithm,
        /// The key's algorithm.
        key: Algorithm,
    },
    /// The header lists `crit` extensions; none are understood.
    #[error("critical header extensions are not supported")]
    CritUnsupported,
    /// The header has no `kid` and the key set has more than one key.
    #[error("header has no `kid`")]
    KidMissing,
    /// The header's `kid` is not in the key set.
    #[error("unknown `kid` `{0}`")]
    KidUnknown(String),
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// `typ` is missing or not the expected type.
    #[error("token type {found:?} is not `{expected}`")]
    Typ {
        /// The expected type.
        expected: String,
        /// The header's `typ`, if any.
        found: Option<String>,
    },
}

/// Why a claim set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The payload is not a JSON object.
    #[error("malformed claims: {0}")]
    Json(String),
    /// A claim appears twice.
    #[error("duplicate claim `{0}`")]
    DuplicateMember(String),
    /// A required claim is missing.
    #[error("missing claim `{0}`")]
    Missing(&'static str),
    /// A time claim is not a JSON integer (a float, string, ...).
    #[error("claim `{0}` is not an integer")]
    NotInteger(&'static str),
    /// A claim has the wrong JSON type.
    #[error("claim `{0}` has the wrong type")]
    WrongType(&'static str),
    /// `exp` is at or before now minus the allowed skew.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `nbf` is after now plus the allowed skew.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is after now plus the allowed skew.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The `iat` claim.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iss` is not the expected issuer.
    #[error("issuer `{0}` is not accepted")]
    Issuer(String),
    /// No `aud` value is an accepted audience.
    #[error("audience not accepted")]
    Audience,
    /// The configured clock skew is negative or above 60 seconds.
    #[error("clock skew of {0} s is outside 0..=60")]
    Skew(i64),
    /// No accepted audience was configured.
    #[error("no accepted audience configured")]
    NoAudienceConfigured,
}
