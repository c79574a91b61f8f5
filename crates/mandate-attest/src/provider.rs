//! Trust provider configuration ([`ProviderSpec`], stored as JSON) and the
//! built, ready-to-verify [`Provider`].

use std::collections::BTreeMap;

use mandate_core::ProviderKind;
use serde::{Deserialize, Serialize};

use crate::aws_iid::{self, AwsIidVerifier};
use crate::fetch::Fetcher;
use crate::jwks_cache::CacheStatus;
use crate::oidc::{Flavor, JwtProvider, KeysSpec, OidcSpec};
use crate::{Error, presets};

/// Largest evidence accepted, in bytes.
pub const MAX_EVIDENCE_LEN: usize = 16 * 1024;

/// An AWS instance identity provider's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsIidSpec {
    /// Accounts whose instances may attest (at least one).
    pub accounts: Vec<String>,
    /// Regions allowed (empty: all regions with a pinned certificate).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Oldest document accepted, seconds since its `pendingTime`.
    pub max_age_secs: i64,
}

/// A SPIFFE federation provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpiffeSpec {
    /// The federated trust domain.
    pub trust_domain: String,
    /// The audience JWT-SVIDs must carry.
    pub audience: String,
    /// Where the trust bundle comes from: `url` or `inline` (no discovery).
    pub bundle: KeysSpec,
    /// The `iss` JWT-SVIDs must carry, when the domain sets one.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted algorithms (default RS256, ES256, EdDSA).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Refetch the bundle at least this often (seconds; the bundle's
    /// `spiffe_refresh_hint` when shorter).
    #[serde(default)]
    pub bundle_max_age_secs: Option<i64>,
}

/// A join-token provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinTokenSpec {
    /// Default lifetime of tokens created for this provider (seconds, default 3600).
    #[serde(default)]
    pub default_ttl_secs: Option<i64>,
}

/// A trust provider's configuration, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "config", rename_all = "kebab-case")]
pub enum ProviderSpec {
    /// Any OIDC issuer.
    Oidc(OidcSpec),
    /// Kubernetes projected service-account tokens.
    Kubernetes(OidcSpec),
    /// GitHub Actions OIDC tokens.
    GithubActions(OidcSpec),
    /// GitLab CI ID tokens.
    GitlabCi(OidcSpec),
    /// AWS EC2 instance identity documents.
    AwsIid(AwsIidSpec),
    /// SPIFFE JWT-SVIDs of a federated trust domain.
    Spiffe(SpiffeSpec),
    /// One-time join tokens.
    JoinToken(JoinTokenSpec),
}

impl ProviderSpec {
    /// The kind.
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Oidc(_) => ProviderKind::Oidc,
            Self::Kubernetes(_) => ProviderKind::Kubernetes,
            Self::GithubActions(_) => ProviderKind::GithubActions,
            Self::GitlabCi(_) => ProviderKind::GitlabCi,
            Self::AwsIid(_) => ProviderKind::AwsIid,
            Self::Spiffe(_) => ProviderKind::Spiffe,
            Self::JoinToken(_) => ProviderKind::JoinToken,
        }
    }

    /// Whether a JWT with these (unverified) `iss`, `sub` and `aud` is one
    /// this provider would verify: the issuer it pins (the preset's when not
    /// configured) and its audience, or for SPIFFE a `sub` in its trust
    /// domain. Only for choosing which provider verifies an assertion; the
    /// verification itself decides.
    pub fn may_verify_jwt(&self, iss: Option<&str>, sub: Option<&str>, aud: &[&str]) -> bool {
        match self {
            Self::Oidc(s) | Self::Kubernetes(s) | Self::GithubActions(s) | Self::GitlabCi(s) => {
                let flavor = match self {
                    Self::Kubernetes(_) => Flavor::Kubernetes,
                    Self::GithubActions(_) => Flavor::GithubActions,
                    Self::GitlabCi(_) => Flavor::GitlabCi,
                    _ => Flavor::Oidc,
                };
                let pinned = s
                    .issuer
                    .as_deref()
                    .or_else(|| presets::default_issuer(&flavor));
                pinned.is_some() && pinned == iss && aud.contains(&s.audience.as_str())
            }
            Self::Spiffe(s) => {
                let prefix = format!("spiffe://{}/", s.trust_domain);
                sub.is_some_and(|x| x.starts_with(&prefix))
                    && aud.contains(&s.audience.as_str())
                    && s.issuer.as_deref().is_none_or(|i| iss == Some(i))
            }
            Self::AwsIid(_) | Self::JoinToken(_) => false,
        }
    }

    /// Claim names the kind offers for binding rules.
    pub fn binding_claims(&self) -> Vec<&'static str> {
        match self {
            Self::Oidc(_) => presets::binding_claims(&Flavor::Oidc).to_vec(),
            Self::Kubernetes(_) => presets::binding_claims(&Flavor::Kubernetes).to_vec(),
            Self::GithubActions(_) => presets::binding_claims(&Flavor::GithubActions).to_vec(),
            Self::GitlabCi(_) => presets::binding_claims(&Flavor::GitlabCi).to_vec(),
            Self::AwsIid(_) => vec![
                "account_id",
                "region",
                "availability_zone",
                "instance_id",
                "image_id",
                "instance_type",
            ],
            Self::Spiffe(_) => vec!["sub", "spiffe_id"],
            Self::JoinToken(_) => vec![],
        }
    }
}

/// A verified attestation: who the workload is, by its provider's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The workload's subject at its provider (`sub`, an instance id, ...).
    pub subject: String,
    /// Flattened claims for binding rules.
    pub claims: BTreeMap<String, String>,
    /// For AWS: the instance id bound on first attestation.
    pub instance_id: Option<String>,
}

/// A provider ready to verify evidence.
#[derive(Debug)]
pub enum Provider {
    /// A JWT-based provider (OIDC, presets, SPIFFE).
    Jwt(Box<JwtProvider>),
    /// AWS instance identity documents.
    AwsIid(Box<AwsIidVerifier>),
    /// Join tokens: resolved against the store by the engine.
    JoinToken,
}

impl Provider {
    /// Builds a provider from its configuration. Fetches nothing.
    pub fn build(
        spec: &ProviderSpec,
        allow_private: bool,
        fetcher: &Fetcher,
    ) -> Result<Self, Error> {
        let jwt = |flavor: Flavor, s: &OidcSpec| -> Result<Self, Error> {
            Ok(Self::Jwt(Box::new(JwtProvider::new(
                flavor,
                s,
                allow_private,
                fetcher.clone(),
            )?)))
        };
        match spec {
            ProviderSpec::Oidc(s) => jwt(Flavor::Oidc, s),
            ProviderSpec::Kubernetes(s) => {
                if s.issuer.is_none() {
                    return Err(Error::Config(
                        "a kubernetes provider needs the cluster's issuer".to_owned(),
                    ));
                }
                jwt(Flavor::Kubernetes, s)
            }
            ProviderSpec::GithubActions(s) => jwt(Flavor::GithubActions, s),
            ProviderSpec::GitlabCi(s) => jwt(Flavor::GitlabCi, s),
            ProviderSpec::Spiffe(s) => {
                let td: mandate_core::TrustDomain = s
                    .trust_domain
                    .parse()
                    .map_err(|e: mandate_core::ValidationError| Error::Config(e.to_string()))?;
                if s.bundle == KeysSpec::Discovery {
                    return Err(Error::Config(
                        "a spiffe bundle needs `url` or `inline`".to_owned(),
                    ));
                }
                let o = OidcSpec {
                    issuer: s.issuer.clone(),
                    audience: s.audience.clone(),
                    keys: s.bundle.clone(),
                    algorithms: s.algorithms.clone(),
                    required_claims: BTreeMap::new(),
                    skew_secs: None,
                    jwks_max_age_secs: s.bundle_max_age_secs,
                    jwks_min_refresh_secs: None,
                };
                jwt(Flavor::Spiffe(td.to_string()), &o)
            }
            ProviderSpec::AwsIid(s) => {
                if s.accounts.is_empty() {
                    return Err(Error::Config(
                        "at least one allowed account is required".to_owned(),
                    ));
                }
                if s.max_age_secs <= 0 {
                    return Err(Error::Config("`max_age_secs` must be positive".to_owned()));
                }
                let mut policy = aws_iid::Policy::new(s.max_age_secs);
                for a in &s.accounts {
                    policy = policy.allow_account(a.clone());
                }
                for r in &s.regions {
                    policy = policy.allow_region(r.clone());
                }
                let v = AwsIidVerifier::new(policy).map_err(|e| Error::Config(e.to_string()))?;
                for r in &s.regions {
                    if !v.certificates().regions().any(|known| known == r) {
                        return Err(Error::Config(format!(
                            "region `{r}` has no pinned certificate"
                        )));
                    }
                }
                Ok(Self::AwsIid(Box::new(v)))
            }
            ProviderSpec::JoinToken(s) => {
                if s.default_ttl_secs.is_some_and(|t| t <= 0) {
                    return Err(Error::Config(
                        "`default_ttl_secs` must be positive".to_owned(),
                    ));
                }
                Ok(Self::JoinToken)
            }
        }
    }

    /// The key cache's state, for JWT providers.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        match self {
            Self::Jwt(p) => Some(p.cache_status()),
            Self::AwsIid(_) | Self::JoinToken => None,
        }
    }

    /// Verifies `evidence` at unix time `now`. Join tokens are the engine's
    /// to resolve ([`crate::join_token::parse`]); this refuses them.
    pub async fn verify(&self, evidence: &[u8], now: i64) -> Result<Attestation, Error> {
        if evidence.len() > MAX_EVIDENCE_LEN {
            return Err(Error::EvidenceTooLarge(evidence.len()));
        }
        match self {
            Self::Jwt(p) => {
                let token = std::str::from_utf8(evidence)
                    .map_err(|_| Error::Evidence("a token must be text".to_owned()))?
                    .trim();
                let v = p.verify(token, now).await?;
                Ok(Attestation {
                    subject: v.subject,
                    claims: v.claims,
                    instance_id: None,
                })
            }
            Self::AwsIid(v) => verify_aws(v, evidence, now),
            Self::JoinToken => Err(Error::Config(
                "join tokens are resolved by the engine".to_owned(),
            )),
        }
    }
}

/// AWS evidence: the `rsa2048` PKCS#7 (base64 or PEM), or the JSON
/// `{"document": "...", "signature": "..."}` of the document and its base64
/// RSA-1024 signature.
fn verify_aws(v: &AwsIidVerifier, evidence: &[u8], now: i64) -> Result<Attestation, Error> {
    let trimmed = evidence.trim_ascii_start();
    let verified = if trimmed.starts_with(b"{") {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pair {
            document: String,
            signature: String,
        }
        let pair: Pair = serde_json::from_slice(trimmed).map_err(|e| {
            Error::Evidence(format!("expected {{\"document\", \"signature\"}}: {e}"))
        })?;
        v.verify(
            &aws_iid::Evidence::Signature {
                document: pair.document.as_bytes(),
                signature: pair.signature.as_bytes(),
            },
            now,
        )?
    } else {
        v.verify(&aws_iid::Evidence::Pkcs7(evidence), now)?
    };
    let d = verified.into_document();
    let mut claims = BTreeMap::new();
    claims.insert("account_id".to_owned(), d.account_id.clone());
    claims.insert("region".to_owned(), d.region.clone());
    claims.insert("availability_zone".to_owned(), d.availability_zone.clone());
    claims.insert("instance_id".to_owned(), d.instance_id.clone());
    claims.insert("image_id".to_owned(), d.image_id.clone());
    claims.insert("instance_type".to_owned(), d.instance_type.clone());
    claims.insert("pending_time".to_owned(), d.pending_time.clone());
    if let Some(a) = &d.architecture {
        claims.insert("architecture".to_owned(), a.clone());
    }
    Ok(Attestation {
        subject: d.instance_id.clone(),
        claims,
        instance_id: Some(d.instance_id),
    })
}
