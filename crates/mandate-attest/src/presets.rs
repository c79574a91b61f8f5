//! Presets of the OIDC provider: what differs for Kubernetes projected
//! service-account tokens, GitHub Actions and GitLab CI.
//!
//! | kind | issuer | claims for binding rules |
//! |---|---|---|
//! | `kubernetes` | the cluster's (`--service-account-issuer`), required | `kubernetes.io.namespace`, `kubernetes.io.serviceaccount.name`/`.uid`, `kubernetes.io.pod.name`/`.uid`, `kubernetes.io.node.name` |
//! | `github-actions` | `https://token.actions.githubusercontent.com` | `repository`, `repository_owner`, `ref`, `environment`, `job_workflow_ref`, `workflow`, `event_name`, `actor` |
//! | `gitlab-ci` | `https://gitlab.com` (or a self-managed instance) | `project_path`, `namespace_path`, `ref`, `ref_type`, `environment`, `pipeline_source`, `user_login` |
//!
//! Kubernetes: legacy (secret-based, non-expiring) service-account tokens,
//! issuer `kubernetes/serviceaccount` and no `exp`, are refused with their
//! own reason; a projected token must name its namespace and service account.

use std::collections::BTreeMap;

use mandate_jose::{ClaimsError, Error as JoseError};
use serde_json::Value;

use crate::Error;
use crate::oidc::Flavor;

/// The issuer of legacy Kubernetes service-account tokens.
pub const LEGACY_KUBERNETES_ISSUER: &str = "kubernetes/serviceaccount";
/// GitHub Actions' OIDC issuer.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// GitLab.com's issuer.
pub const GITLAB_COM_ISSUER: &str = "https://gitlab.com";

/// Claims a preset exposes for binding rules (documentation and `provider show`).
pub fn binding_claims(flavor: &Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::Kubernetes => &[
            "kubernetes.io.namespace",
            "kubernetes.io.serviceaccount.name",
            "kubernetes.io.serviceaccount.uid",
            "kubernetes.io.pod.name",
            "kubernetes.io.pod.uid",
            "kubernetes.io.node.name",
        ],
        Flavor::GithubActions => &[
            "repository",
            "repository_owner",
            "ref",
            "environment",
            "job_workflow_ref",
            "workflow",
            "event_name",
            "actor",
        ],
        Flavor::GitlabCi => &[
            "project_path",
            "namespace_path",
            "ref",
            "ref_type",
            "environment",
            "pipeline_source",
            "user_login",
        ],
        Flavor::Oidc | Flavor::Spiffe(_) => &["sub"],
    }
}

/// The well-known issuer of a preset, if it has one.
pub fn default_issuer(flavor: &Flavor) -> Option<&'static str> {
    match flavor {
        Flavor::GithubActions => Some(GITHUB_ACTIONS_ISSUER),
        Flavor::GitlabCi => Some(GITLAB_COM_ISSUER),
        Flavor::Oidc | Flavor::Kubernetes | Flavor::Spiffe(_) => None,
    }
}

/// Checks a configured issuer: an `https` URL with a host and no query or
/// fragment (OpenID Connect Discovery; Kubernetes' own rule). With
/// `allow_private`, `http` to a loopback IP literal is accepted too (a test
/// issuer).
pub fn check_issuer(issuer: &str, allow_private: bool) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Config(format!("issuer `{issuer}` {why}")));
    let Ok(u) = url::Url::parse(issuer) else {
        return bad("is not a url");
    };
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if u.scheme() != "https" && !(u.scheme() == "http" && allow_private && loopback) {
        return bad("must use https");
    }
    if u.host().is_none() {
        return bad("has no host");
    }
    if u.query().is_some() || u.fragment().is_some() {
        return bad("must have no query or fragment");
    }
    Ok(())
}

/// Turns a verification failure into the preset's most precise reason.
pub fn explain(flavor: &Flavor, e: JoseError, token: &str) -> Error {
    if *flavor == Flavor::Kubernetes
        && matches!(
            e,
            JoseError::Claims(ClaimsError::Missing("exp") | ClaimsError::Issuer(_))
        )
        && unverified_issuer(token).as_deref() == Some(LEGACY_KUBERNETES_ISSUER)
    {
        return Error::LegacyServiceAccountToken;
    }
    Error::Token(e)
}

/// The `iss` of a token whose signature already verified (the caller only
/// asks after the claims failed), for a better message.
fn unverified_issuer(token: &str) -> Option<String> {
    let jws = mandate_jose::jws::decode(token, mandate_jose::jws::DEFAULT_MAX_TOKEN_LEN).ok()?;
    let v: Value = serde_json::from_slice(jws.payload_unverified()).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

/// Claims a preset insists on after verification.
pub fn check_claims(flavor: &Flavor, claims: &BTreeMap<String, String>) -> Result<(), Error> {
    let need: &[&str] = match flavor {
        Flavor::Kubernetes => &[
            "kubernetes.io.namespace",
            "kubernetes.io.serviceaccount.name",
        ],
        Flavor::GithubActions => &["repository"],
        Flavor::GitlabCi => &["project_path"],
        Flavor::Oidc | Flavor::Spiffe(_) => &[],
    };
    for n in need {
        if !claims.contains_key(*n) {
            return Err(Error::MissingClaim((*n).to_owned()));
        }
    }
    Ok(())
}
