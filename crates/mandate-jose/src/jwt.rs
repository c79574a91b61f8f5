//! JWT verification: a compact JWS ([`crate::jws`]) whose payload is a claim
//! set ([`crate::claims`]), checked against one issuer's key set.
//!
//! Order: size limit, parse, `typ` (when required), key by `kid`, algorithm
//! allow-list and header match, signature, and only then the payload is
//! parsed as JSON and the claims validated.

use crate::claims::{Claims, Validation};
use crate::error::Error;
use crate::jwk::JwkSet;
use crate::jws::{self, Algorithm, DEFAULT_MAX_TOKEN_LEN, Header};

/// Verifies JWTs of one issuer.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: JwkSet,
    algorithms: Vec<Algorithm>,
    validation: Validation,
    typ: Option<String>,
    max_len: usize,
}

impl JwtVerifier {
    /// A verifier trusting `keys`, for tokens whose key's algorithm is in
    /// `algorithms`, with claims checked by `validation`.
    pub fn new(keys: JwkSet, algorithms: &[Algorithm], validation: Validation) -> Self {
        Self {
            keys,
            algorithms: algorithms.to_vec(),
            validation,
            typ: None,
            max_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Requires the header's `typ` to be `typ` (see [`Header::check_typ`]).
    #[must_use]
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Sets the token size limit in bytes (default [`DEFAULT_MAX_TOKEN_LEN`]).
    #[must_use]
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Replaces the key set (after a JWKS refresh).
    pub fn set_keys(&mut self, keys: JwkSet) {
        self.keys = keys;
    }

    /// The trusted keys.
    pub fn keys(&self) -> &JwkSet {
        &self.keys
    }

    /// Verifies `token` at unix time `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedJwt, Error> {
        let jws = jws::decode(token, self.max_len)?;
        if let Some(typ) = &self.typ {
            jws.header().check_typ(typ)?;
        }
        let (header, payload) = jws.verify(&self.keys, &self.algorithms)?.into_parts();
        let claims = Claims::from_json(&payload)?;
        self.check_claims(&claims, now)?;
        Ok(VerifiedJwt { header, claims })
    }

    /// Checks claims this verifier already accepted again at `now` (time,
    /// issuer, audience): what a remembered verification must still pass.
    pub fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), Error> {
        Ok(self.validation.validate(claims, now)?)
    }
}

/// A JWT whose signature verified and whose claims held.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    header: Header,
    claims: Claims,
}

impl VerifiedJwt {
    /// The JOSE header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The claims, owned.
    pub fn into_claims(self) -> Claims {
        self.claims
    }
}
