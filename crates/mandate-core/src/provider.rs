//! Trust provider kinds and the claim vocabulary policies see.
//!
//! Each kind of trust provider verifies claims under its platform's own
//! names (`kubernetes.io.namespace`, GitLab's `project_path`, ...). Binding
//! rules and the audit use those native names. Policies see one vocabulary,
//! the `Claims` record of the Cedar schema, filled from the native names by
//! [`ProviderKind::vocabulary`]; every verified claim stays reachable by its
//! native name as a tag of `context.attestation.evidence`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Which platform a trust provider verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Any OpenID Connect issuer.
    Oidc,
    /// Kubernetes projected service-account tokens.
    Kubernetes,
    /// GitHub Actions OIDC tokens.
    GithubActions,
    /// GitLab CI ID tokens.
    GitlabCi,
    /// AWS EC2 instance identity documents.
    AwsIid,
    /// SPIFFE JWT-SVIDs of a federated trust domain.
    Spiffe,
    /// One-time join tokens.
    JoinToken,
}

/// The JWT registered claims every JWT-based kind passes on as they are.
const JWT_COMMON: [(&str, &str); 3] = [("iss", "iss"), ("sub", "sub"), ("aud", "aud")];

impl ProviderKind {
    /// Every kind.
    pub const ALL: [ProviderKind; 7] = [
        Self::Oidc,
        Self::Kubernetes,
        Self::GithubActions,
        Self::GitlabCi,
        Self::AwsIid,
        Self::Spiffe,
        Self::JoinToken,
    ];

    /// The kind as configured and stored (`github-actions`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Kubernetes => "kubernetes",
            Self::GithubActions => "github-actions",
            Self::GitlabCi => "gitlab-ci",
            Self::AwsIid => "aws-iid",
            Self::Spiffe => "spiffe",
            Self::JoinToken => "join-token",
        }
    }

    /// Whether the kind verifies JWTs (and so has `iss`, `sub` and `aud`).
    pub fn is_jwt(self) -> bool {
        !matches!(self, Self::AwsIid | Self::JoinToken)
    }

    /// How the kind's verified claims fill the policy vocabulary:
    /// `(vocabulary name, native name)` pairs, the native name flattened
    /// with dots as binding rules spell it. `iss`, `sub` and `aud` come first
    /// for the JWT-based kinds.
    pub fn vocabulary(self) -> Vec<(&'static str, &'static str)> {
        let own: &[(&str, &str)] = match self {
            Self::Oidc => &[],
            Self::Kubernetes => &[
                ("namespace", "kubernetes.io.namespace"),
                ("service_account", "kubernetes.io.serviceaccount.name"),
                ("pod", "kubernetes.io.pod.name"),
                ("node", "kubernetes.io.node.name"),
            ],
            Self::GithubActions => &[
                ("repository", "repository"),
                ("repository_owner", "repository_owner"),
                ("ref", "ref"),
                ("workflow", "workflow"),
                ("environment", "environment"),
                ("actor", "actor"),
            ],
            // GitLab's `ref` is the bare branch or tag name; `ref_path` is
            // the qualified `refs/heads/main` GitHub's `ref` is, so the same
            // policy reads both alike.
            Self::GitlabCi => &[
                ("repository", "project_path"),
                ("repository_owner", "namespace_path"),
                ("ref", "ref_path"),
                ("environment", "environment"),
                ("actor", "user_login"),
            ],
            Self::AwsIid => &[
                ("account_id", "account_id"),
                ("region", "region"),
                ("instance_id", "instance_id"),
            ],
            Self::Spiffe => &[("spiffe_id", "spiffe_id")],
            Self::JoinToken => &[],
        };
        let common: &[(&str, &str)] = if self.is_jwt() { &JWT_COMMON } else { &[] };
        common.iter().chain(own).copied().collect()
    }

    /// The claims a policy sees under the vocabulary's names, from the
    /// verified native claims. Names the kind does not map are left out
    /// here (they stay in the evidence).
    pub fn policy_claims(self, native: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.vocabulary()
            .into_iter()
            .filter_map(|(name, from)| native.get(from).map(|v| (name.to_owned(), v.clone())))
            .collect()
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                ValidationError::new(
                    "kind",
                    format!("unknown provider kind `{s}` (one of {})", all.join(", ")),
                )
            })
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ProviderKind::ALL {
            assert_eq!(k.as_str().parse::<ProviderKind>().unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
        }
        assert!("github".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn gitlab_claims_read_like_github_ones() {
        let native = BTreeMap::from([
            ("project_path".to_owned(), "acme/app".to_owned()),
            ("namespace_path".to_owned(), "acme".to_owned()),
            ("ref".to_owned(), "main".to_owned()),
            ("ref_path".to_owned(), "refs/heads/main".to_owned()),
        ]);
        let seen = ProviderKind::GitlabCi.policy_claims(&native);
        assert_eq!(seen["repository"], "acme/app");
        assert_eq!(seen["repository_owner"], "acme");
        assert_eq!(seen["ref"], "refs/heads/main");
        assert!(!seen.contains_key("project_path"));
    }
}
