//! Policy: versioned Cedar policy sets in the store, a compiled engine kept
//! in memory and rebuilt on change, and audited decisions.
//!
//! Evaluation reads only memory: the active policy set and the entities
//! (agents from the inventory) are compiled once per change. Changes made
//! through this engine rebuild at once; changes made by other replicas are
//! picked up by [`Engine::refresh_policy_if_changed`], which the server calls
//! on an interval.

use std::sync::{Arc, RwLock};

use mandate_core::{Agent, AgentKind, AuditDraft, Outcome, ProviderKind};
use mandate_jose::digest::sha256_hex;
use mandate_policy::{
    AgentEntity, Decision, Entities, EntityData, PolicySet, PolicySource, Request, Schema,
    SourceDiagnostic, ToolEntity, UserEntity,
};
use mandate_store::{AgentFilter, MAX_PAGE, PolicyVersionRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::resources::resources_signature;
use crate::{Actor, Engine, Error, Result};

/// One policy file as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// File name, as pushed (used in policy ids and diagnostics).
    pub name: String,
    /// Cedar policies.
    pub text: String,
}

/// A stored policy version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    /// Version number, from 1.
    pub version: i64,
    /// Why it was pushed.
    pub message: String,
    /// The admin token that pushed it.
    pub author: Option<String>,
    /// Hex SHA-256 of the sources as stored.
    pub digest: String,
    /// When it was pushed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether it is the active version.
    pub active: bool,
    /// Its files (absent in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<PolicyFile>>,
    /// Ids of the policies it holds (absent in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_ids: Option<Vec<String>>,
    /// What the set tests that nothing configured produces (on a push).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the engine evaluates with: one consistent snapshot.
#[derive(Debug)]
struct Loaded {
    version: Option<i64>,
    agents_signature: String,
    data: EntityData,
    engine: mandate_policy::Engine,
}

/// The compiled policy state shared by every request.
#[derive(Debug)]
pub(crate) struct PolicyCache {
    schema: Schema,
    current: RwLock<Arc<Loaded>>,
}

impl PolicyCache {
    pub(crate) fn new() -> Result<Self> {
        let schema =
            Schema::mandate().map_err(|e| Error::Internal(leak(format!("policy schema: {e}"))))?;
        let entities = Entities::empty(&schema)
            .map_err(|e| Error::Internal(leak(format!("policy entities: {e}"))))?;
        let engine = mandate_policy::Engine::new(schema.clone(), PolicySet::empty(), entities);
        Ok(Self {
            schema,
            current: RwLock::new(Arc::new(Loaded {
                version: None,
                agents_signature: String::new(),
                data: EntityData::default(),
                engine,
            })),
        })
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, loaded: Loaded) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(loaded);
    }
}

/// Static strings for `Error::Internal`, which carries `&'static str`; only
/// used on start-up failures that end the process.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The policy vocabulary for an agent's kind.
pub(crate) fn policy_kind(kind: AgentKind) -> &'static str {
    kind.claim_value()
}

/// An inventory agent as a policy entity. `env` comes from the agent's `env`
/// label; the trust provider from its `trust-provider` label (the provider
/// that verified a request is in the request's context instead).
pub fn agent_entity(a: &Agent) -> AgentEntity {
    AgentEntity {
        id: a.name.to_string(),
        kind: policy_kind(a.kind).to_owned(),
        owner: a.owner.to_string(),
        status: a.status.as_str().to_owned(),
        env: a.labels.get("env").unwrap_or_default().to_owned(),
        trust_provider: a
            .labels
            .get("trust-provider")
            .unwrap_or_default()
            .to_owned(),
        labels: a
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

fn invalid(e: mandate_policy::Error) -> Error {
    match e {
        mandate_policy::Error::Policies { diagnostics } => Error::InvalidPolicy(diagnostics),
        other => Error::InvalidPolicy(vec![SourceDiagnostic {
            file: String::new(),
            line: 1,
            column: 1,
            message: other.to_string(),
        }]),
    }
}

fn sources_of(files: &[PolicyFile]) -> Vec<PolicySource> {
    files
        .iter()
        .map(|f| PolicySource::new(f.name.clone(), f.text.clone()))
        .collect()
}

fn version_view(
    r: PolicyVersionRecord,
    active: Option<i64>,
    files: Option<Vec<PolicyFile>>,
    ids: Option<Vec<String>>,
) -> PolicyVersion {
    PolicyVersion {
        active: active == Some(r.version),
        version: r.version,
        message: r.message,
        author: r.author,
        digest: r.digest,
        created_at: r.created_at,
        files,
        policy_ids: ids,
        warnings: Vec::new(),
    }
}

impl Engine {
    /// Compiles `files` against the schema without storing anything.
    pub fn validate_policies(&self, files: &[PolicyFile]) -> Result<PolicySet> {
        if files.is_empty() {
            return Err(Error::Invalid(mandate_core::ValidationError::new(
                "files",
                "at least one policy file is required",
            )));
        }
        PolicySet::compile(&self.policy.schema, &sources_of(files)).map_err(invalid)
    }

    /// What `set` tests that nothing configured can produce: a claim no
    /// configured trust provider's kind fills, a tool argument when no
    /// gateway route forwards MCP tool calls. Such a test never fires, which
    /// for a `forbid` is a hole. Also a set with no `permit` at all.
    pub async fn policy_warnings(&self, set: &PolicySet) -> Result<Vec<String>> {
        let mut out: Vec<String> = set
            .no_permit_warning()
            .map(str::to_owned)
            .into_iter()
            .collect();
        let providers = self.hot_providers().await?;
        let kinds: Vec<ProviderKind> = providers
            .iter()
            .filter_map(|p| p.kind.parse().ok())
            .collect();
        let names = |ids: &[String]| {
            ids.iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (claim, ids) in set.reads_below(&["attestation", "claims"]) {
            let produces = |k: &ProviderKind| k.vocabulary().iter().any(|(n, _)| *n == claim);
            if kinds.iter().any(produces) {
                continue;
            }
            let would: Vec<&str> = ProviderKind::ALL
                .iter()
                .filter(|k| produces(k))
                .map(|k| k.as_str())
                .collect();
            out.push(format!(
                "policy {} tests claim `{claim}`, which no configured trust provider produces{}",
                names(ids),
                if would.is_empty() {
                    String::new()
                } else {
                    format!(" (a {} provider would)", would.join(" or "))
                }
            ));
        }
        let resources = self.hot_resources().await?;
        let mcp_route = resources
            .iter()
            .any(|r| r.route.is_some() && r.kind == "mcp");
        if !mcp_route {
            for (arg, ids) in set.reads_below(&["args"]) {
                out.push(format!(
                    "policy {} tests tool argument `{arg}`, but no gateway route forwards MCP \
                     tool calls, so `context.args` is always empty",
                    names(ids)
                ));
            }
        }
        Ok(out)
    }

    /// Validates, stores as a new version and activates `files`. An invalid
    /// set is refused and the active version stays as it was.
    pub async fn push_policies(
        &self,
        actor: &Actor,
        files: Vec<PolicyFile>,
        message: String,
    ) -> Result<PolicyVersion> {
        mandate_core::agent::check_text("message", &message)?;
        let set = self.validate_policies(&files)?;
        let sources = serde_json::to_string(&files)
            .map_err(|_| Error::Internal("cannot serialize policies"))?;
        let digest = sha256_hex(sources.as_bytes());
        let previous = self.store.active_policy_version().await?;
        let now = self.now();
        let record = PolicyVersionRecord {
            version: 0,
            sources,
            message: message.clone(),
            author: Some(actor.token_id.clone()),
            digest: digest.clone(),
            created_at: now,
        };
        let ids: Vec<String> = set.policies().iter().map(|p| p.id.clone()).collect();
        let ids_for_audit = ids.clone();
        let token = actor.token_id.clone();
        let (version, _) = self
            .store
            .push_policy_version(
                &record,
                move |v| {
                    AuditDraft::new(mandate_core::EventKind::PolicyActivated, Outcome::Success)
                        .actor(token)
                        .target(format!("policy/{v}"))
                        .detail(serde_json::json!({
                            "version": v,
                            "previous": previous,
                            "message": message,
                            "digest": digest,
                            "policies": ids_for_audit,
                        }))
                },
                now,
            )
            .await?;
        self.reload_policy().await?;
        let stored = PolicyVersionRecord { version, ..record };
        let mut view = version_view(stored, Some(version), Some(files), Some(ids));
        view.warnings = self.policy_warnings(&set).await?;
        Ok(view)
    }

    /// Activates an earlier version again. It is recompiled first: a version
    /// that no longer validates against the schema is refused.
    pub async fn rollback_policy(&self, actor: &Actor, version: i64) -> Result<PolicyVersion> {
        let record = self
            .store
            .policy_version(version)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "policy_version",
                id: version.to_string(),
            })?;
        let files: Vec<PolicyFile> = serde_json::from_str(&record.sources)
            .map_err(|_| Error::Internal("stored policy sources are corrupt"))?;
        let set = self.validate_policies(&files)?;
        let previous = self.store.active_policy_version().await?;
        let draft = AuditDraft::new(mandate_core::EventKind::PolicyActivated, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("policy/{version}"))
            .detail(serde_json::json!({
                "version": version,
                "previous": previous,
                "rollback": true,
                "digest": record.digest,
            }));
        if !self
            .store
            .activate_policy_version(version, draft, self.now())
            .await?
        {
            return Err(Error::NotFound {
                kind: "policy_version",
                id: version.to_string(),
            });
        }
        self.reload_policy().await?;
        let ids = set.policies().iter().map(|p| p.id.clone()).collect();
        Ok(version_view(record, Some(version), Some(files), Some(ids)))
    }

    /// Every stored version, newest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersion>> {
        let active = self.store.active_policy_version().await?;
        Ok(self
            .store
            .list_policy_versions()
            .await?
            .into_iter()
            .map(|r| version_view(r, active, None, None))
            .collect())
    }

    /// One version with its files; `None` asks for the active one.
    pub async fn policy_version(&self, version: Option<i64>) -> Result<PolicyVersion> {
        let active = self.store.active_policy_version().await?;
        let wanted = match version.or(active) {
            Some(v) => v,
            None => {
                return Err(Error::NotFound {
                    kind: "policy_version",
                    id: "active".into(),
                });
            }
        };
        let record = self
            .store
            .policy_version(wanted)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "policy_version",
                id: wanted.to_string(),
            })?;
        let files: Vec<PolicyFile> = serde_json::from_str(&record.sources)
            .map_err(|_| Error::Internal("stored policy sources are corrupt"))?;
        let ids = PolicySet::compile(&self.policy.schema, &sources_of(&files))
            .ok()
            .map(|s| s.policies().iter().map(|p| p.id.clone()).collect());
        Ok(version_view(record, active, Some(files), ids))
    }

    /// The active version number, as compiled in memory.
    pub fn loaded_policy_version(&self) -> Option<i64> {
        self.policy.snapshot().version
    }

    async fn all_agents(&self) -> Result<Vec<Agent>> {
        let mut out = Vec::new();
        let mut filter = AgentFilter {
            limit: MAX_PAGE,
            ..Default::default()
        };
        loop {
            let page = self.store.list_agents(&filter).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => filter.after = Some(c),
                None => return Ok(out),
            }
        }
    }

    fn agents_signature(agents: &[Agent]) -> String {
        let mut s = String::new();
        for a in agents {
            s.push_str(a.name.as_str());
            s.push('@');
            s.push_str(&mandate_core::clock::unix_millis(a.updated_at).to_string());
            s.push(';');
        }
        sha256_hex(s.as_bytes())
    }

    /// Rebuilds the compiled policy set and entities from the store. A stored
    /// version that fails to compile leaves no policy active (deny all).
    pub async fn reload_policy(&self) -> Result<()> {
        let version = self.store.active_policy_version().await?;
        let agents = self.all_agents().await?;
        self.build_loaded(version, agents).await
    }

    async fn build_loaded(&self, version: Option<i64>, agents: Vec<Agent>) -> Result<()> {
        let schema = &self.policy.schema;
        let policies = match version {
            None => PolicySet::empty(),
            Some(v) => {
                let record = self.store.policy_version(v).await?;
                let files: Vec<PolicyFile> = record
                    .and_then(|r| serde_json::from_str(&r.sources).ok())
                    .unwrap_or_default();
                match PolicySet::compile(schema, &sources_of(&files)) {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::error!(version = v, error = %e, "active policy version does not compile: denying everything");
                        PolicySet::empty()
                    }
                }
            }
        };
        let resources = self.store.list_resources().await?;
        let data = EntityData {
            agents: agents.iter().map(agent_entity).collect(),
            resources: resources
                .iter()
                .map(crate::resources::resource_entity)
                .collect(),
            tools: crate::governance::tool_entities(self.store.list_resource_tools().await?),
            ..Default::default()
        };
        let entities = match Entities::build(schema, &data) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot build policy entities: denying everything");
                return self.deny_all(version);
            }
        };
        let signature = Self::agents_signature(&agents) + &resources_signature(&resources);
        self.policy.replace(Loaded {
            version,
            agents_signature: signature,
            data,
            engine: mandate_policy::Engine::new(schema.clone(), policies, entities),
        });
        Ok(())
    }

    fn deny_all(&self, version: Option<i64>) -> Result<()> {
        let schema = &self.policy.schema;
        let entities = Entities::empty(schema).map_err(|_| Error::Internal("policy entities"))?;
        self.policy.replace(Loaded {
            version,
            agents_signature: String::new(),
            data: EntityData::default(),
            engine: mandate_policy::Engine::new(schema.clone(), PolicySet::empty(), entities),
        });
        Ok(())
    }

    /// Reloads when another replica changed the active version or the
    /// inventory. Cheap when nothing changed (two small queries).
    pub async fn refresh_policy_if_changed(&self) -> Result<bool> {
        let version = self.store.active_policy_version().await?;
        let agents = self.all_agents().await?;
        let resources = self.store.list_resources().await?;
        let current = self.policy.snapshot();
        if current.version == version
            && current.agents_signature
                == Self::agents_signature(&agents) + &resources_signature(&resources)
        {
            return Ok(false);
        }
        // An agent may have left `active` on another replica.
        self.revocations_changed();
        self.build_loaded(version, agents).await?;
        Ok(true)
    }

    /// Evaluates `request` against the loaded policy and inventory without
    /// writing anything (the caller audits the decision with what it
    /// decides): the decision and the policy version it was made under.
    /// `user`, on whose behalf (from the verified token), is an entity of
    /// this request alone.
    pub(crate) fn evaluate_policy_for(
        &self,
        request: &Request,
        user: Option<&UserEntity>,
    ) -> (Decision, Option<i64>) {
        let loaded = self.policy.snapshot();
        (loaded.engine.evaluate_for(request, user), loaded.version)
    }

    /// Decides `request` and writes the decision to the audit log before
    /// returning it. `supplied` holds attributes the caller gave for entities
    /// the inventory does not know; registered entities always use the
    /// inventory's attributes.
    pub async fn decide(
        &self,
        caller: &str,
        request: &Request,
        supplied: &EntityData,
    ) -> Result<Decision> {
        let request = &*self.with_agent_risk(request);
        let loaded = self.policy.snapshot();
        let decision = Self::evaluate_supplied(&self.policy.schema, &loaded, request, supplied);
        let draft = AuditDraft::new(
            mandate_core::EventKind::AuthzDecision,
            if decision.is_allowed() {
                Outcome::Success
            } else {
                Outcome::Denied
            },
        )
        .actor(caller.to_owned())
        .target(format!(
            "{}::{}",
            request.resource.type_name(),
            request.resource.id()
        ))
        .detail(serde_json::json!({
            "principal": format!("{}::{}", request.principal.type_name(), request.principal.id()),
            "action": request.action.as_str(),
            "decision": decision.effect.to_string(),
            "policies": decision.determining_policies,
            "errors": decision.errors,
            "policy_version": loaded.version,
        }));
        self.store.append_audit(draft, self.now()).await?;
        Ok(decision)
    }
}

impl Engine {
    /// Evaluates `request` with `supplied` entities added to the loaded
    /// inventory where it does not know them (registered ones keep the
    /// inventory's attributes).
    fn evaluate_supplied(
        schema: &Schema,
        loaded: &Loaded,
        request: &Request,
        supplied: &EntityData,
    ) -> Decision {
        if supplied == &EntityData::default() {
            return loaded.engine.evaluate(request);
        }
        let mut data = loaded.data.clone();
        let known = |id: &str| data.agents.iter().any(|a| a.id == id);
        let extra_agents: Vec<AgentEntity> = supplied
            .agents
            .iter()
            .filter(|a| !known(&a.id))
            .cloned()
            .collect();
        data.agents.extend(extra_agents);
        data.users.extend(supplied.users.iter().cloned());
        let known_resources: Vec<String> = data.resources.iter().map(|r| r.id.clone()).collect();
        data.resources.extend(
            (supplied.resources.iter())
                .filter(|r| !known_resources.contains(&r.id))
                .cloned(),
        );
        let known_tools: Vec<String> = data.tools.iter().map(|t| t.id.clone()).collect();
        data.tools.extend(
            (supplied.tools.iter())
                .filter(|t| !known_tools.contains(&t.id))
                .cloned(),
        );
        match Entities::build(schema, &data) {
            Ok(entities) => loaded
                .engine
                .clone()
                .with_entities(entities)
                .evaluate(request),
            Err(e) => Decision {
                effect: mandate_policy::Effect::Deny,
                determining_policies: Vec::new(),
                errors: vec![format!("supplied entities: {e}")],
            },
        }
    }

    /// Evaluates `request` on a tool without auditing. A tool the resource
    /// has not registered is added for this evaluation only, as a child of
    /// its resource, so `resource in Resource::"..."` holds for it too.
    pub(crate) fn evaluate_with_tool(
        &self,
        request: &Request,
        tool: ToolEntity,
        user: Option<&UserEntity>,
    ) -> (Decision, Option<i64>) {
        let loaded = self.policy.snapshot();
        let decision = if loaded.data.tools.iter().any(|t| t.id == tool.id) {
            loaded.engine.evaluate_for(request, user)
        } else {
            let supplied = EntityData {
                tools: vec![tool],
                users: user.into_iter().cloned().collect(),
                ..EntityData::default()
            };
            Self::evaluate_supplied(&self.policy.schema, &loaded, request, &supplied)
        };
        (decision, loaded.version)
    }

    /// Evaluates `requests` against the active set without auditing (for
    /// access review).
    pub(crate) fn evaluate_quietly(&self, requests: &[Request]) -> Vec<Decision> {
        let loaded = self.policy.snapshot();
        requests.iter().map(|r| loaded.engine.evaluate(r)).collect()
    }
}
