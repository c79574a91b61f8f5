//! The agent inventory: register, read, list, update, suspend, resume,
//! decommission.

use mandate_core::agent::check_text;
use mandate_core::{
    Agent, AgentKind, AgentName, AgentStatus, AuditDraft, Email, Labels, Outcome, Provenance,
    SpiffeId, StatusChange,
};
use mandate_store::{AgentFilter, Page};
use time::OffsetDateTime;

use crate::{Actor, Engine, Error, Result};

/// What a caller supplies to register an agent; parsed and valid.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Unique name.
    pub name: AgentName,
    /// Autonomous or on behalf of a user.
    pub kind: AgentKind,
    /// Accountable human.
    pub owner: Email,
    /// What it is for.
    pub description: String,
    /// What it runs on and who made it.
    pub provenance: Provenance,
    /// Labels.
    pub labels: Labels,
    /// Expected envelope (free text).
    pub envelope: String,
    /// Review date; default: registration + the review period.
    pub review_by: Option<OffsetDateTime>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    /// New owner.
    pub owner: Option<Email>,
    /// New description.
    pub description: Option<String>,
    /// New provenance (replaces the whole record).
    pub provenance: Option<Provenance>,
    /// New labels (replace all labels).
    pub labels: Option<Labels>,
    /// New envelope.
    pub envelope: Option<String>,
    /// New review date.
    pub review_by: Option<OffsetDateTime>,
}

fn target(name: &AgentName) -> String {
    format!("agent/{name}")
}

impl Engine {
    /// Registers an agent. Its SPIFFE ID is derived from the trust domain
    /// and the name; the name is never reusable.
    pub async fn register_agent(&self, actor: &Actor, new: NewAgent) -> Result<Agent> {
        check_text("description", &new.description)?;
        check_text("envelope", &new.envelope)?;
        new.provenance.validate()?;
        let now = self.now();
        let review_by = new.review_by.unwrap_or(now + self.config.review_period);
        let agent = Agent {
            spiffe_id: SpiffeId::for_agent(&self.config.trust_domain, &new.name),
            name: new.name,
            kind: new.kind,
            owner: new.owner,
            description: new.description,
            provenance: new.provenance,
            labels: new.labels,
            envelope: new.envelope,
            status: AgentStatus::Active,
            created_at: now,
            updated_at: now,
            review_by: mandate_core::clock::from_unix_millis(mandate_core::clock::unix_millis(
                review_by,
            )),
            last_seen_at: None,
        };
        let draft = AuditDraft::new(mandate_core::EventKind::AgentRegistered, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(target(&agent.name))
            .detail(serde_json::json!({
                "spiffe_id": agent.spiffe_id.as_str(),
                "kind": agent.kind.as_str(),
                "owner": agent.owner.as_str(),
            }));
        self.store.create_agent(&agent, draft, now).await?;
        self.inventory_changed().await;
        Ok(agent)
    }

    /// One agent.
    pub async fn agent(&self, name: &AgentName) -> Result<Agent> {
        self.store
            .agent(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "agent",
                id: name.to_string(),
            })
    }

    /// One page of agents.
    pub async fn list_agents(&self, filter: &AgentFilter) -> Result<Page<Agent>> {
        Ok(self.store.list_agents(filter).await?)
    }

    /// Applies `patch`. A decommissioned agent cannot change.
    pub async fn update_agent(
        &self,
        actor: &Actor,
        name: &AgentName,
        patch: AgentPatch,
    ) -> Result<Agent> {
        let current = self.agent(name).await?;
        if current.status == AgentStatus::Decommissioned {
            return Err(Error::InvalidState(format!(
                "agent `{name}` is decommissioned"
            )));
        }
        let mut next = current.clone();
        let mut changed = Vec::new();
        if let Some(owner) = patch.owner {
            next.owner = owner;
            changed.push("owner");
        }
        if let Some(d) = patch.description {
            check_text("description", &d)?;
            next.description = d;
            changed.push("description");
        }
        if let Some(p) = patch.provenance {
            p.validate()?;
            next.provenance = p;
            changed.push("provenance");
        }
        if let Some(l) = patch.labels {
            next.labels = l;
            changed.push("labels");
        }
        if let Some(e) = patch.envelope {
            check_text("envelope", &e)?;
            next.envelope = e;
            changed.push("envelope");
        }
        if let Some(r) = patch.review_by {
            next.review_by =
                mandate_core::clock::from_unix_millis(mandate_core::clock::unix_millis(r));
            changed.push("review_by");
        }
        let now = self.now();
        next.updated_at = now;
        let draft = AuditDraft::new(mandate_core::EventKind::AgentUpdated, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(target(name))
            .detail(serde_json::json!({ "changed": changed }));
        self.store
            .update_agent(&next, current.updated_at, draft, now)
            .await?;
        self.inventory_changed().await;
        Ok(next)
    }

    /// Suspends, resumes or decommissions an agent.
    pub async fn change_status(
        &self,
        actor: &Actor,
        name: &AgentName,
        change: StatusChange,
    ) -> Result<Agent> {
        let current = self.agent(name).await?;
        let status = current
            .status
            .apply(change)
            .map_err(|m| Error::InvalidState(format!("{m} (agent `{name}`)")))?;
        let now = self.now();
        let mut next = current.clone();
        next.status = status;
        next.updated_at = now;
        let event = match change {
            StatusChange::Suspend => mandate_core::EventKind::AgentSuspended,
            StatusChange::Resume => mandate_core::EventKind::AgentResumed,
            StatusChange::Decommission => mandate_core::EventKind::AgentDecommissioned,
        };
        let draft = AuditDraft::new(event, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(target(name))
            .detail(serde_json::json!({ "from": current.status.as_str(), "to": status.as_str() }));
        // The kill switch: leaving `active` revokes every live token of the
        // agent and every token derived from one, in the same transaction.
        if status == AgentStatus::Active {
            self.store
                .update_agent(&next, current.updated_at, draft, now)
                .await?;
        } else {
            self.store
                .update_agent_revoking_tokens(&next, current.updated_at, draft, now)
                .await?;
        }
        self.inventory_changed().await;
        Ok(next)
    }
}

impl Engine {
    /// After an inventory change: drops the reused copies (agents among
    /// them), moves the revocation epoch and rebuilds the policy entities.
    /// The change is committed already; a failure to rebuild is logged and
    /// the periodic refresh retries.
    async fn inventory_changed(&self) {
        self.hot_changed();
        self.revocations_changed();
        if let Err(e) = self.reload_policy().await {
            tracing::warn!(error = %e, "cannot rebuild policy entities after an inventory change");
        }
    }
}
