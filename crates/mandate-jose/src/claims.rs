//! Registered JWT claims (RFC 7519 section 4.1) and their validation.
//!
//! Time is passed in as unix seconds; nothing here reads the system clock.
//! `exp` is required; `exp`, `nbf` and `iat` must be JSON integers (a float,
//! a string or an integer outside `i64` is refused); the clock skew is at most
//! [`MAX_SKEW_SECS`]; `iss` and `aud` are compared exactly.

use serde_json::{Map, Value};

use crate::error::ClaimsError;
use crate::json::{StrictJsonError, parse_object};

/// The largest clock skew a [`Validation`] accepts, in seconds.
pub const MAX_SKEW_SECS: i64 = 60;

/// A JWT claim set: a JSON object with no duplicate member names.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    map: Map<String, Value>,
}

impl Claims {
    /// Parses a claim set from JSON bytes (a verified JWS payload).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ClaimsError> {
        let map = parse_object(bytes).map_err(|e| match e {
            StrictJsonError::Duplicate(name) => ClaimsError::DuplicateMember(name),
            StrictJsonError::Syntax(msg) => ClaimsError::Json(msg),
        })?;
        Ok(Self { map })
    }

    /// Wraps an already parsed JSON object.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { map }
    }

    /// Any claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// All claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The claims as a JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// `iss`, if it is a string.
    pub fn iss(&self) -> Option<&str> {
        self.map.get("iss").and_then(Value::as_str)
    }

    /// `sub`, if it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.map.get("sub").and_then(Value::as_str)
    }

    /// `jti`, if it is a string.
    pub fn jti(&self) -> Option<&str> {
        self.map.get("jti").and_then(Value::as_str)
    }

    /// `exp` (`None` when absent; an error when not an integer).
    pub fn exp(&self) -> Result<Option<i64>, ClaimsError> {
        self.time("exp")
    }

    /// `nbf` (`None` when absent; an error when not an integer).
    pub fn nbf(&self) -> Result<Option<i64>, ClaimsError> {
        self.time("nbf")
    }

    /// `iat` (`None` when absent; an error when not an integer).
    pub fn iat(&self) -> Result<Option<i64>, ClaimsError> {
        self.time("iat")
    }

    /// The `aud` values: a string is one audience, an array of strings many.
    pub fn audiences(&self) -> Result<Vec<&str>, ClaimsError> {
        match self.map.get("aud") {
            None => Err(ClaimsError::Missing("aud")),
            Some(Value::String(s)) => Ok(vec![s.as_str()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(ClaimsError::WrongType("aud")))
                .collect(),
            Some(_) => Err(ClaimsError::WrongType("aud")),
        }
    }

    fn time(&self, name: &'static str) -> Result<Option<i64>, ClaimsError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(ClaimsError::NotInteger(name)),
            Some(_) => Err(ClaimsError::NotInteger(name)),
        }
    }
}

/// What a claim set must satisfy: the exact issuer, one of the accepted
/// audiences, and the time claims within the clock skew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    issuer: String,
    // INVARIANT (issuer-check): false only when built by `without_issuer`.
    check_issuer: bool,
    audiences: Vec<String>,
    skew: i64,
}

impl Validation {
    /// Requires issuer `issuer` and audience `audience`, with the maximum
    /// skew of [`MAX_SKEW_SECS`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            check_issuer: true,
            audiences: vec![audience.into()],
            skew: MAX_SKEW_SECS,
        }
    }

    /// Requires audience `audience` but no particular issuer: `iss`, when
    /// present, must merely be a string. Only for token kinds whose
    /// specification makes `iss` optional (SPIFFE JWT-SVIDs), where the
    /// caller pins the signer by its key set instead.
    pub fn without_issuer(audience: impl Into<String>) -> Self {
        Self {
            issuer: String::new(),
            check_issuer: false,
            audiences: vec![audience.into()],
            skew: MAX_SKEW_SECS,
        }
    }

    /// Also accepts `audience`.
    #[must_use]
    pub fn also_accept_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the clock skew, in seconds: `0..=MAX_SKEW_SECS`.
    pub fn with_skew(mut self, secs: i64) -> Result<Self, ClaimsError> {
        if !(0..=MAX_SKEW_SECS).contains(&secs) {
            return Err(ClaimsError::Skew(secs));
        }
        self.skew = secs;
        Ok(self)
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The clock skew in seconds.
    pub fn skew(&self) -> i64 {
        self.skew
    }

    /// Checks `claims` at unix time `now`.
    ///
    /// With skew `s`: refused when `now >= exp + s`, when `now + s < nbf`, or
    /// when `iat > now + s`.
    pub fn validate(&self, claims: &Claims, now: i64) -> Result<(), ClaimsError> {
        // Types first, so a malformed claim never hides behind a time check.
        let exp = claims.exp()?.ok_or(ClaimsError::Missing("exp"))?;
        let nbf = claims.nbf()?;
        let iat = claims.iat()?;

        if now >= exp.saturating_add(self.skew) {
            return Err(ClaimsError::Expired { exp, now });
        }
        let latest = now.saturating_add(self.skew);
        if let Some(nbf) = nbf
            && nbf > latest
        {
            return Err(ClaimsError::NotYetValid { nbf, now });
        }
        if let Some(iat) = iat
            && iat > latest
        {
            return Err(ClaimsError::IssuedInFuture { iat, now });
        }

        match claims.get("iss") {
            None if !self.check_issuer => {}
            Some(Value::String(_)) if !self.check_issuer => {}
            None => return Err(ClaimsError::Missing("iss")),
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(iss)) => return Err(ClaimsError::Issuer(iss.clone())),
            Some(_) => return Err(ClaimsError::WrongType("iss")),
        }

        if self.audiences.is_empty() {
            return Err(ClaimsError::NoAudienceConfigured);
        }
        let auds = claims.audiences()?;
        if !auds
            .iter()
            .any(|a| self.audiences.iter().any(|accepted| accepted == a))
        {
            return Err(ClaimsError::Audience);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        Claims::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn accepts_a_valid_claim_set() {
        let v = Validation::new("https://i", "a");
        let c = claims(r#"{"iss":"https://i","aud":["x","a"],"exp":200,"nbf":100,"iat":100}"#);
        assert_eq!(v.validate(&c, 150), Ok(()));
    }

    #[test]
    fn without_issuer_accepts_any_or_no_issuer_but_still_checks_the_rest() {
        let v = Validation::without_issuer("a");
        let c = claims(r#"{"aud":"a","exp":200}"#);
        assert_eq!(v.validate(&c, 150), Ok(()));
        let c = claims(r#"{"iss":"x","aud":"a","exp":200}"#);
        assert_eq!(v.validate(&c, 150), Ok(()));
        let c = claims(r#"{"iss":1,"aud":"a","exp":200}"#);
        assert_eq!(v.validate(&c, 150), Err(ClaimsError::WrongType("iss")));
        let c = claims(r#"{"aud":"b","exp":200}"#);
        assert_eq!(v.validate(&c, 150), Err(ClaimsError::Audience));
    }

    #[test]
    fn skew_is_bounded() {
        let v = Validation::new("i", "a");
        assert_eq!(v.clone().with_skew(61), Err(ClaimsError::Skew(61)));
        assert_eq!(v.clone().with_skew(-1), Err(ClaimsError::Skew(-1)));
        assert_eq!(v.with_skew(0).map(|v| v.skew()), Ok(0));
    }

    #[test]
    fn exp_is_required_and_integer() {
        let v = Validation::new("i", "a");
        let c = claims(r#"{"iss":"i","aud":"a"}"#);
        assert_eq!(v.validate(&c, 0), Err(ClaimsError::Missing("exp")));
        let c = claims(r#"{"iss":"i","aud":"a","exp":1e10}"#);
        assert_eq!(v.validate(&c, 0), Err(ClaimsError::NotInteger("exp")));
        let c = claims(r#"{"iss":"i","aud":"a","exp":18446744073709551615}"#);
        assert_eq!(v.validate(&c, 0), Err(ClaimsError::NotInteger("exp")));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let v = Validation::new("i", "a");
        let c =
            claims(r#"{"iss":"i","aud":"a","exp":9223372036854775807,"nbf":-9223372036854775808}"#);
        assert_eq!(v.validate(&c, i64::MAX - 1), Ok(()));
        assert!(v.validate(&c, i64::MAX).is_err());
    }

    #[test]
    fn audience_must_be_strings() {
        let v = Validation::new("i", "a");
        let c = claims(r#"{"iss":"i","aud":["a",1],"exp":10}"#);
        assert_eq!(v.validate(&c, 0), Err(ClaimsError::WrongType("aud")));
        let c = claims(r#"{"iss":"i","aud":[],"exp":10}"#);
        assert_eq!(v.validate(&c, 0), Err(ClaimsError::Audience));
    }
}
