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

use mandate_core::ProviderKind;
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
        // The ones that name the workload (not its secret or the warning time).
        Flavor::Kubernetes => &KUBERNETES_CLAIMS[..6],
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

/// The claims a projected service-account token carries below
/// `kubernetes.io`, flattened.
const KUBERNETES_CLAIMS: &[&str] = &[
    "kubernetes.io.namespace",
    "kubernetes.io.serviceaccount.name",
    "kubernetes.io.serviceaccount.uid",
    "kubernetes.io.pod.name",
    "kubernetes.io.pod.uid",
    "kubernetes.io.node.name",
    "kubernetes.io.node.uid",
    "kubernetes.io.secret.name",
    "kubernetes.io.secret.uid",
    "kubernetes.io.warnafter",
];

/// The registered JWT claims any JWT-based kind's tokens may carry.
const JWT_REGISTERED: &[&str] = &["iss", "sub", "aud", "exp", "iat", "nbf", "jti"];

/// Every claim name (flattened, as binding rules spell it) a kind's evidence
/// can carry, for the kinds whose platform fixes them; `None` for `oidc` and
/// `spiffe`, whose issuers may add any claim, and join tokens (no rules).
pub fn known_claims(kind: ProviderKind) -> Option<Vec<&'static str>> {
    let own: &[&str] = match kind {
        ProviderKind::Kubernetes => KUBERNETES_CLAIMS,
        // docs.github.com, "OpenID Connect reference", and the issuer's
        // `claims_supported`.
        ProviderKind::GithubActions => &[
            "actor",
            "actor_id",
            "base_ref",
            "check_run_id",
            "enterprise",
            "enterprise_id",
            "environment",
            "environment_node_id",
            "event_name",
            "head_ref",
            "job_workflow_ref",
            "job_workflow_sha",
            "ref",
            "ref_protected",
            "ref_type",
            "repository",
            "repository_id",
            "repository_owner",
            "repository_owner_id",
            "repository_visibility",
            "run_attempt",
            "run_id",
            "run_number",
            "runner_environment",
            "sha",
            "workflow",
            "workflow_ref",
            "workflow_sha",
        ],
        // docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using ID Tokens".
        ProviderKind::GitlabCi => &[
            "ci_config_ref_uri",
            "ci_config_sha",
            "deployment_tier",
            "environment",
            "environment_action",
            "environment_protected",
            "groups_direct",
            "job_id",
            "job_namespace_id",
            "job_namespace_path",
            "job_project_id",
            "job_project_path",
            "namespace_id",
            "namespace_path",
            "pipeline_id",
            "pipeline_source",
            "project_id",
            "project_path",
            "project_visibility",
            "ref",
            "ref_path",
            "ref_protected",
            "ref_type",
            "runner_environment",
            "runner_id",
            "sha",
            "user_access_level",
            "user_email",
            "user_id",
            "user_login",
        ],
        // What `Provider::verify` puts in an AWS attestation.
        ProviderKind::AwsIid => {
            return Some(vec![
                "account_id",
                "architecture",
                "availability_zone",
                "image_id",
                "instance_id",
                "instance_type",
                "pending_time",
                "region",
            ]);
        }
        ProviderKind::Oidc | ProviderKind::Spiffe | ProviderKind::JoinToken => return None,
    };
    Some(JWT_REGISTERED.iter().chain(own).copied().collect())
}

/// Checks that a binding rule of a `kind` provider names a claim that kind
/// can carry: a misspelt name would make the rule match nothing, silently.
/// The error suggests the closest known name.
pub fn check_claim_name(kind: ProviderKind, name: &str) -> Result<(), String> {
    let Some(known) = known_claims(kind) else {
        return Ok(());
    };
    if known.contains(&name) {
        return Ok(());
    }
    Err(match mandate_core::closest(name, known.iter().copied()) {
        Some(k) => format!(
            "a {kind} token has no claim `{name}`; did you mean `{k}`? (`mandate provider show` lists the claims)"
        ),
        None => format!(
            "a {kind} token has no claim `{name}` (one of: {})",
            known.join(", ")
        ),
    })
}
