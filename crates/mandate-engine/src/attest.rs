//! Attestation: evidence → verified claims → binding rule → agent.
//!
//! [`Engine::attest`] is the real path (the token service calls it): on
//! success it sets the agent's `last_seen_at`, consumes a join token, and
//! binds an AWS instance id to its agent on first sight. AWS replay rule
//! (SPIRE's): once an instance id has attested as an agent, an attestation
//! of the same instance id that maps to a different agent is refused.
//! [`Engine::attest_dry_run`] (admin only) verifies and maps the same way but
//! changes nothing of that.
//!
//! Both write one audit event per attestation, success or failure:
//! `attestation.verified`, `attestation.shadow` or `attestation.refused`,
//! with provider, subject (once verified), agent or shadow id, outcome,
//! reason and its stable code, and a digest of the claims — never the
//! evidence. A verified attestation no rule maps is a shadow agent: denied
//! and recorded (also on a dry run, which is how admins see them first).

mod manage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use mandate_attest::binding::{self, Choice};
use mandate_attest::{Fetcher, Provider, ProviderSpec, join_token};
use mandate_core::{AgentName, AgentStatus, AuditDraft, Outcome, SpiffeId};
use mandate_jose::digest::sha256_hex;
use mandate_store::{AttestationWrite, AttestationWritten, ProviderRecord, ShadowRecord};
use serde::Serialize;

pub use manage::{Binding, IssuedJoinToken, MAX_JOIN_TOKEN_TTL_SECS, ProviderInfo, Shadow};

use crate::{Actor, Engine, Error, Result};

/// Claims left out of a shadow's digest: they change on every token.
const VOLATILE_CLAIMS: [&str; 5] = ["exp", "iat", "nbf", "jti", "kubernetes.io.warnafter"];

/// Built providers, rebuilt when their stored record changes.
#[derive(Debug)]
pub(crate) struct AttestState {
    pub(crate) fetcher: Fetcher,
    built: RwLock<HashMap<String, (ProviderRecord, Arc<Provider>)>>,
    /// Parsed specs by provider name, with the text they were parsed from.
    specs: RwLock<HashMap<String, (String, Arc<ProviderSpec>)>>,
}

impl AttestState {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            fetcher: Fetcher::new()
                .map_err(|_| Error::Internal("cannot build the outbound http client"))?,
            built: RwLock::new(HashMap::new()),
            specs: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn forget(&self, name: &str) {
        self.built
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// `r`'s spec, parsed once per version of its text (every grant asks
    /// each provider whether it takes the assertion). `None` if it does
    /// not parse.
    pub(crate) fn spec(&self, r: &ProviderRecord) -> Option<Arc<ProviderSpec>> {
        if let Some((text, spec)) = self
            .specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&r.name)
            && *text == r.spec
        {
            return Some(spec.clone());
        }
        let spec = Arc::new(serde_json::from_str::<ProviderSpec>(&r.spec).ok()?);
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.name.clone(), (r.spec.clone(), spec.clone()));
        Some(spec)
    }

    pub(crate) fn cached(&self, r: &ProviderRecord) -> Option<Arc<Provider>> {
        let map = self.built.read().unwrap_or_else(|e| e.into_inner());
        map.get(&r.name)
            .filter(|(rec, _)| rec == r)
            .map(|(_, p)| p.clone())
    }

    pub(crate) fn get(
        &self,
        r: &ProviderRecord,
    ) -> std::result::Result<Arc<Provider>, mandate_attest::Error> {
        if let Some(p) = self.cached(r) {
            return Ok(p);
        }
        let spec: ProviderSpec = serde_json::from_str(&r.spec)
            .map_err(|e| mandate_attest::Error::Config(e.to_string()))?;
        let p = Arc::new(Provider::build(
            &spec,
            r.allow_private_network,
            &self.fetcher,
        )?);
        self.built
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.name.clone(), (r.clone(), p.clone()));
        Ok(p)
    }
}

/// A successful attestation: the workload is this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attested {
    /// The provider that verified it.
    pub provider: String,
    /// The workload's subject at the provider.
    pub subject: String,
    /// The agent.
    pub agent: AgentName,
    /// The agent's SPIFFE ID.
    pub spiffe_id: SpiffeId,
    /// The verified claims (flattened).
    pub claims: BTreeMap<String, String>,
    /// The binding rule that mapped it (none for join tokens).
    pub rule: Option<String>,
}

/// How an attestation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestOutcome {
    /// Verified and mapped to an active agent.
    Mapped,
    /// Verified, but no binding rule maps it: a shadow agent, denied.
    Shadow,
    /// Not verified, or mapped to an agent that may not attest.
    Refused,
}

/// The answer of a dry run: what the attestation would give, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttestReport {
    /// The provider.
    pub provider: String,
    /// The provider's kind; absent when the provider does not exist.
    pub provider_kind: Option<mandate_core::ProviderKind>,
    /// Mapped, shadow or refused.
    pub outcome: AttestOutcome,
    /// The verified subject.
    pub subject: Option<String>,
    /// The agent it maps to.
    pub agent: Option<String>,
    /// The agent's SPIFFE ID.
    pub spiffe_id: Option<String>,
    /// The binding rule that mapped it.
    pub rule: Option<String>,
    /// The shadow agent's id.
    pub shadow_id: Option<String>,
    /// How often the shadow was seen.
    pub shadow_count: Option<i64>,
    /// The verified claims (flattened); empty when not verified.
    pub claims: BTreeMap<String, String>,
    /// The claims as policies see them in `context.attestation.claims` (the
    /// schema's vocabulary, filled from `claims` by the provider's kind); all
    /// of `claims` are the tags of `context.attestation.evidence`.
    pub policy_claims: BTreeMap<String, String>,
    /// Stable code of the refusal reason.
    pub code: Option<String>,
    /// Why it was refused, precisely.
    pub reason: Option<String>,
}

/// Where the flow stopped.
enum Step {
    Refused {
        code: &'static str,
        reason: String,
        subject: Option<String>,
        claims: BTreeMap<String, String>,
    },
    Shadow {
        subject: String,
        claims: BTreeMap<String, String>,
    },
    Mapped {
        attested: Attested,
        write: AttestationWrite,
        /// The agent as read when mapping.
        agent: Box<mandate_core::Agent>,
    },
}

fn refused(code: &'static str, reason: impl Into<String>) -> Step {
    Step::Refused {
        code,
        reason: reason.into(),
        subject: None,
        claims: BTreeMap::new(),
    }
}

/// SHA-256 (hex) of the claims without the volatile ones.
pub fn claims_digest(claims: &BTreeMap<String, String>) -> String {
    let stable: BTreeMap<&String, &String> = claims
        .iter()
        .filter(|(k, _)| !VOLATILE_CLAIMS.contains(&k.as_str()))
        .collect();
    sha256_hex(&serde_json::to_vec(&stable).unwrap_or_default())
}

fn shadow_id(provider: &str, subject: &str) -> String {
    let h = sha256_hex(format!("{provider}\u{0}{subject}").as_bytes());
    format!("shd_{}", &h[..16])
}

impl Engine {
    /// Attests `evidence` at `provider` (the real path, for the token
    /// service): on success the agent's `last_seen_at` is set; refusals and
    /// shadows are [`Error::AttestationRefused`]. Every outcome is audited.
    pub async fn attest(&self, provider: &str, evidence: &[u8]) -> Result<Attested> {
        let step = self.attest_step(provider, evidence, false).await?;
        let report = self.finish_attestation(None, provider, step, false).await?;
        match report {
            (_, Some(attested)) => Ok(attested),
            (r, None) => Err(Error::AttestationRefused {
                code: r.code.unwrap_or_else(|| "refused".to_owned()),
                reason: r.reason.unwrap_or_default(),
            }),
        }
    }

    /// Attests `evidence` for a grant at the token endpoint, which writes one
    /// event for the whole grant: a plain mapping is returned without any
    /// write (the grant records it and moves `last_seen_at` with its token);
    /// join tokens and first-seen AWS instances, which must change state
    /// atomically, and shadows, which are recorded, go through the full
    /// path with their own event.
    pub(crate) async fn attest_for_grant(
        &self,
        provider: &str,
        evidence: &[u8],
    ) -> Result<std::result::Result<(Attested, mandate_core::Agent), (String, String)>> {
        // The plain mapping may use an agent read up to a second ago on
        // another replica: the grant's token is recorded only if the agent
        // is still active then (the store checks it in the same
        // transaction). A mapping that changes state (join token, instance
        // binding) reads the agent afresh in `attest_step`.
        match self.attest_step(provider, evidence, true).await? {
            Step::Refused { code, reason, .. } => Ok(Err((code.to_owned(), reason))),
            Step::Mapped {
                attested,
                write,
                agent,
            } if write.bind_instance.is_none() && write.consume_join_token.is_none() => {
                Ok(Ok((attested, *agent)))
            }
            step => match self.finish_attestation(None, provider, step, false).await? {
                (_, Some(attested)) => match self.store.agent(&attested.agent).await? {
                    Some(agent) => Ok(Ok((attested, agent))),
                    None => Ok(Err((
                        "agent_missing".to_owned(),
                        format!("agent `{}` does not exist", attested.agent),
                    ))),
                },
                (r, None) => Ok(Err((
                    r.code.unwrap_or_else(|| "refused".to_owned()),
                    r.reason.unwrap_or_default(),
                ))),
            },
        }
    }

    /// Verifies and maps `evidence` without issuing anything or changing
    /// the agent, join token or instance bindings; the attestation is
    /// audited (and a shadow recorded) all the same.
    pub async fn attest_dry_run(
        &self,
        actor: &Actor,
        provider: &str,
        evidence: &[u8],
    ) -> Result<AttestReport> {
        let step = self.attest_step(provider, evidence, false).await?;
        let mut report = self
            .finish_attestation(Some(actor), provider, step, true)
            .await?
            .0;
        report.provider_kind = self
            .hot_providers()
            .await?
            .iter()
            .find(|p| p.name == provider)
            .and_then(|p| p.kind.parse().ok());
        if let Some(kind) = report.provider_kind {
            report.policy_claims = kind.policy_claims(&report.claims);
        }
        Ok(report)
    }

    /// Verifies and maps `evidence`; `reuse` lets the mapped agent come
    /// from the short-lived copy ([`Engine::hot_agent`]) when the mapping
    /// changes no state (no join token, no instance binding).
    async fn attest_step(&self, provider: &str, evidence: &[u8], reuse: bool) -> Result<Step> {
        // The reused list, or the store for a provider it does not hold yet
        // (added by another replica a moment ago).
        let providers = self.hot_providers().await?;
        let fresh;
        let record = match providers.iter().find(|p| p.name == provider) {
            Some(r) => Some(r),
            None => {
                fresh = self.store.provider(provider).await?;
                fresh.as_ref()
            }
        };
        let Some(record) = record else {
            return Ok(refused(
                "unknown_provider",
                format!("provider `{provider}` does not exist"),
            ));
        };
        let built = match self.attest.get(record) {
            Ok(p) => p,
            Err(e) => return Ok(refused(e.code(), e.to_string())),
        };
        let now = self.now().unix_timestamp();
        if let Provider::JoinToken = *built {
            return self.join_token_step(provider, evidence, now).await;
        }
        let att = match built.verify(evidence, now).await {
            Ok(a) => a,
            Err(e) => return Ok(refused(e.code(), e.to_string())),
        };
        let rules = self
            .hot_bindings()
            .await?
            .iter()
            .filter(|b| b.provider == provider)
            .cloned()
            .map(manage::binding_from)
            .collect::<Result<Vec<_>>>()?;
        let rule = match binding::choose(&rules, |r| &r.matches, &att.claims) {
            Choice::One(r) => r.clone(),
            Choice::None => {
                return Ok(Step::Shadow {
                    subject: att.subject,
                    claims: att.claims,
                });
            }
            Choice::Tie(rs) => {
                let ids: Vec<&str> = rs.iter().map(|r| r.id.as_str()).collect();
                return Ok(Step::Refused {
                    code: "ambiguous_binding",
                    reason: format!("binding rules {} tie", ids.join(", ")),
                    subject: Some(att.subject),
                    claims: att.claims,
                });
            }
        };
        let mut step = self
            .agent_step(
                provider,
                &rule.agent,
                att.subject,
                att.claims,
                Some(rule.id),
                reuse && att.instance_id.is_none(),
            )
            .await?;
        if let (
            Some(iid),
            Step::Mapped {
                attested, write, ..
            },
        ) = (att.instance_id, &mut step)
        {
            if let Some(bound) = self.store.instance_binding(provider, &iid).await?
                && bound != attested.agent.as_str()
            {
                return Ok(Step::Refused {
                    code: "instance_replay",
                    reason: format!(
                        "instance `{iid}` already attested as agent `{bound}`; refusing it as `{}`",
                        attested.agent
                    ),
                    subject: Some(attested.subject.clone()),
                    claims: attested.claims.clone(),
                });
            }
            write.bind_instance = Some((provider.to_owned(), iid));
        }
        Ok(step)
    }

    async fn join_token_step(&self, provider: &str, evidence: &[u8], now: i64) -> Result<Step> {
        let presented = match join_token::parse(evidence) {
            Ok(p) => p,
            Err(e) => return Ok(refused(e.code(), e.to_string())),
        };
        let unknown = || refused("unknown_join_token", "join token is unknown");
        let Some(rec) = self.store.join_token(&presented.id).await? else {
            return Ok(unknown());
        };
        if rec.provider != provider || !presented.matches(&rec.secret_hash) {
            return Ok(unknown());
        }
        if rec.consumed_at.is_some() {
            return Ok(refused(
                "join_token_spent",
                format!("join token `{}` was already used", rec.id),
            ));
        }
        if rec.expires_at.unix_timestamp() <= now {
            return Ok(refused(
                "expired",
                format!("join token `{}` expired at {}", rec.id, rec.expires_at),
            ));
        }
        let subject = format!("join-token:{}", rec.id);
        let claims = BTreeMap::from([("join_token_id".to_owned(), rec.id.clone())]);
        let mut step = self
            .agent_step(provider, &rec.agent, subject, claims, None, false)
            .await?;
        if let Step::Mapped { write, .. } = &mut step {
            write.consume_join_token = Some(rec.id);
        }
        Ok(step)
    }

    async fn agent_step(
        &self,
        provider: &str,
        agent: &str,
        subject: String,
        claims: BTreeMap<String, String>,
        rule: Option<String>,
        reuse: bool,
    ) -> Result<Step> {
        let refuse = |code, reason: String, subject, claims| Step::Refused {
            code,
            reason,
            subject: Some(subject),
            claims,
        };
        let Ok(name) = agent.parse::<AgentName>() else {
            return Ok(refuse(
                "agent_missing",
                format!("agent `{agent}` is invalid"),
                subject,
                claims,
            ));
        };
        let found = if reuse {
            self.hot_agent(&name).await?
        } else {
            self.store.agent(&name).await?
        };
        let Some(a) = found else {
            return Ok(refuse(
                "agent_missing",
                format!("agent `{agent}` does not exist"),
                subject,
                claims,
            ));
        };
        if a.status != AgentStatus::Active {
            return Ok(refuse(
                "agent_inactive",
                format!(
                    "agent `{agent}` is {} and may not attest",
                    a.status.as_str()
                ),
                subject,
                claims,
            ));
        }
        Ok(Step::Mapped {
            write: AttestationWrite {
                agent: agent.to_owned(),
                touch_last_seen: true,
                bind_instance: None,
                consume_join_token: None,
            },
            attested: Attested {
                provider: provider.to_owned(),
                subject,
                agent: name,
                spiffe_id: a.spiffe_id.clone(),
                claims,
                rule,
            },
            agent: Box::new(a),
        })
    }

    async fn finish_attestation(
        &self,
        actor: Option<&Actor>,
        provider: &str,
        step: Step,
        dry_run: bool,
    ) -> Result<(AttestReport, Option<Attested>)> {
        let now = self.now();
        let base = |outcome| AttestReport {
            provider: provider.to_owned(),
            provider_kind: None,
            policy_claims: BTreeMap::new(),
            outcome,
            subject: None,
            agent: None,
            spiffe_id: None,
            rule: None,
            shadow_id: None,
            shadow_count: None,
            claims: BTreeMap::new(),
            code: None,
            reason: None,
        };
        let draft = |ty: mandate_core::EventKind, outcome, detail: serde_json::Value| {
            AuditDraft::new(ty, outcome)
                .actor_opt(actor.map(|a| a.token_id.clone()))
                .target(format!("provider/{provider}"))
                .detail(detail)
        };
        match step {
            Step::Refused {
                code,
                reason,
                subject,
                claims,
            } => {
                let digest = (!claims.is_empty()).then(|| claims_digest(&claims));
                let d = draft(
                    mandate_core::EventKind::AttestationRefused,
                    Outcome::Denied,
                    serde_json::json!({
                        "provider": provider, "subject": subject, "outcome": "refused",
                        "code": code, "reason": reason, "claims_digest": digest, "dry_run": dry_run,
                    }),
                );
                self.store.append_audit(d, now).await?;
                let mut r = base(AttestOutcome::Refused);
                r.subject = subject;
                r.claims = claims;
                r.code = Some(code.to_owned());
                r.reason = Some(reason);
                Ok((r, None))
            }
            Step::Shadow { subject, claims } => {
                let digest = claims_digest(&claims);
                let rec = ShadowRecord {
                    id: shadow_id(provider, &subject),
                    provider: provider.to_owned(),
                    subject: subject.clone(),
                    claims_digest: digest.clone(),
                    claims: serde_json::to_string(&claims).unwrap_or_default(),
                    first_seen: now,
                    last_seen: now,
                    count: 1,
                };
                let reason = "no binding rule matches; recorded as a shadow agent".to_owned();
                let (stored, _) = self
                    .store
                    .record_shadow(
                        &rec,
                        |s| {
                            draft(
                                mandate_core::EventKind::AttestationShadow,
                                Outcome::Denied,
                                serde_json::json!({
                                    "provider": provider, "subject": subject, "outcome": "shadow",
                                    "shadow_id": s.id, "count": s.count, "code": "no_binding",
                                    "reason": reason, "claims_digest": digest, "dry_run": dry_run,
                                }),
                            )
                        },
                        now,
                    )
                    .await?;
                let mut r = base(AttestOutcome::Shadow);
                r.subject = Some(stored.subject);
                r.shadow_id = Some(stored.id);
                r.shadow_count = Some(stored.count);
                r.claims = claims;
                r.code = Some("no_binding".to_owned());
                r.reason = Some(reason);
                Ok((r, None))
            }
            Step::Mapped {
                attested,
                mut write,
                ..
            } => {
                let detail = serde_json::json!({
                    "provider": provider, "subject": attested.subject, "outcome": "mapped",
                    "agent": attested.agent.as_str(), "rule": attested.rule,
                    "claims_digest": claims_digest(&attested.claims), "dry_run": dry_run,
                });
                let d = draft(
                    mandate_core::EventKind::AttestationVerified,
                    Outcome::Success,
                    detail,
                )
                .actor_opt(
                    actor
                        .map(|a| a.token_id.clone())
                        .or_else(|| Some(attested.spiffe_id.to_string())),
                );
                if dry_run {
                    self.store.append_audit(d, now).await?;
                } else {
                    write.touch_last_seen = true;
                    match self.store.write_attestation(&write, d, now).await? {
                        AttestationWritten::Done(_) => {}
                        AttestationWritten::InstanceBoundElsewhere(bound) => {
                            let step = Step::Refused {
                                code: "instance_replay",
                                reason: format!(
                                    "instance already attested as agent `{bound}`; refusing it as `{}`",
                                    attested.agent
                                ),
                                subject: Some(attested.subject),
                                claims: attested.claims,
                            };
                            return Box::pin(
                                self.finish_attestation(actor, provider, step, dry_run),
                            )
                            .await;
                        }
                        AttestationWritten::JoinTokenSpent => {
                            let step = refused(
                                "join_token_spent",
                                "join token was already used or expired",
                            );
                            return Box::pin(
                                self.finish_attestation(actor, provider, step, dry_run),
                            )
                            .await;
                        }
                    }
                }
                let mut r = base(AttestOutcome::Mapped);
                r.subject = Some(attested.subject.clone());
                r.agent = Some(attested.agent.to_string());
                r.spiffe_id = Some(attested.spiffe_id.to_string());
                r.rule = attested.rule.clone();
                r.claims = attested.claims.clone();
                Ok((r, Some(attested)))
            }
        }
    }
}
