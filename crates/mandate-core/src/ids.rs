//! Identifiers: agent names, trust domains, SPIFFE ids and owner addresses.
//!
//! Each is a newtype that can only hold a valid value: parse with `FromStr` or
//! `TryFrom<String>` (which serde uses), read with `as_str`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $check:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $check(s).map_err(|m| ValidationError::new($field, m))?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $check(&s).map_err(|m| ValidationError::new($field, m))?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// An agent's name: a DNS label (RFC 1123), 1–63 characters of `a-z`,
    /// `0-9` and `-`, neither starting nor ending with `-`. Unique in the
    /// inventory and never reused, even after decommissioning.
    AgentName,
    "name",
    check_dns_label
);

string_newtype!(
    /// A SPIFFE trust domain: lower-case letters, digits, `.`, `-` and `_`,
    /// at most 255 characters (SPIFFE-ID standard §2.1).
    TrustDomain,
    "trust_domain",
    check_trust_domain
);

string_newtype!(
    /// A human owner's e-mail address (`local@domain`). Checked for shape
    /// only; Mandate does not send mail.
    Email,
    "owner",
    check_email
);

string_newtype!(
    /// A SPIFFE ID, `spiffe://<trust-domain>/<path>`, checked as the SPIFFE-ID
    /// standard says: lower-case scheme, a valid trust domain, no query,
    /// fragment, port or user info, path segments of `[A-Za-z0-9.-_]` that
    /// are neither empty, `.` nor `..`, and no trailing slash.
    SpiffeId,
    "spiffe_id",
    check_spiffe_id
);

impl SpiffeId {
    /// The SPIFFE ID Mandate gives an agent: `spiffe://<td>/agent/<name>`.
    pub fn for_agent(trust_domain: &TrustDomain, name: &AgentName) -> Self {
        // INVARIANT (valid-spiffe-id): a valid trust domain and a DNS label
        // always form a valid SPIFFE ID, so no re-check is needed.
        Self(format!("spiffe://{trust_domain}/agent/{name}"))
    }

    /// The trust domain part.
    pub fn trust_domain(&self) -> &str {
        let rest = self.0.trim_start_matches("spiffe://");
        rest.split('/').next().unwrap_or(rest)
    }
}

fn check_dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only lower-case letters, digits and `-`".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with `-`".into());
    }
    Ok(())
}

fn check_trust_domain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if !s.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
    }) {
        return Err("may contain only lower-case letters, digits, `.`, `-` and `_`".into());
    }
    Ok(())
}

fn check_email(s: &str) -> Result<(), String> {
    const MSG: &str = "must be an e-mail address like `alice@example.com`";
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MSG.into());
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Err(MSG.into());
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(MSG.into());
    }
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if !labels_ok {
        return Err(MSG.into());
    }
    Ok(())
}

fn check_spiffe_id(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("spiffe://") else {
        return Err("must start with `spiffe://`".into());
    };
    if s.len() > 2048 {
        return Err("must be at most 2048 bytes".into());
    }
    let (td, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    check_trust_domain(td).map_err(|m| format!("trust domain {m}"))?;
    if path.is_empty() {
        return Ok(());
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() {
            return Err("path segments must not be empty (no `//` or trailing `/`)".into());
        }
        if seg == "." || seg == ".." {
            return Err("path segments must not be `.` or `..`".into());
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err("path segments may contain only `A-Za-z0-9.-_`".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_follow_dns_label_rules() {
        for ok in ["invoice-bot", "a", "x1", &"a".repeat(63)] {
            assert!(ok.parse::<AgentName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Invoice",
            "a_b",
            "a.b",
            &"a".repeat(64),
            "ä",
        ] {
            let err = bad.parse::<AgentName>().err();
            assert_eq!(err.map(|e| e.field), Some("name"), "{bad}");
        }
    }

    #[test]
    fn spiffe_ids_are_checked_as_the_standard_says() {
        for ok in [
            "spiffe://example.org",
            "spiffe://example.org/workload-1",
            "spiffe://td/a/b.c_d-e",
        ] {
            assert!(ok.parse::<SpiffeId>().is_ok(), "{ok}");
        }
        for bad in [
            "SPIFFE://example.org",
            "spiffe://Example.org/a",
            "spiffe://example.org/",
            "spiffe://example.org//a",
            "spiffe://example.org/a/../b",
            "spiffe://example.org/a?b",
            "spiffe://example.org:443/a",
            "spiffe://user@example.org/a",
            "spiffe:///a",
            "http://example.org/a",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn agent_spiffe_id_is_derived_from_trust_domain_and_name() -> Result<(), ValidationError> {
        let td: TrustDomain = "mandate.local".parse()?;
        let name: AgentName = "invoice-bot".parse()?;
        let id = SpiffeId::for_agent(&td, &name);
        assert_eq!(id.as_str(), "spiffe://mandate.local/agent/invoice-bot");
        assert_eq!(id.trust_domain(), "mandate.local");
        assert!(id.as_str().parse::<SpiffeId>().is_ok());
        Ok(())
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!("alice@example.com".parse::<Email>().is_ok());
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "a b@c.d",
            "a@b@c",
            "a@-b.c",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_refuses_invalid_values() {
        let r: Result<AgentName, _> = serde_json::from_str("\"Bad Name\"");
        assert!(r.is_err());
        let r: Result<AgentName, _> = serde_json::from_str("\"good-name\"");
        assert!(r.is_ok());
    }
}
