//! Reports and reviews: the inventory, access review (granted by policy
//! against used in the audit log), review dates and the stale rule.

use std::collections::{BTreeMap, BTreeSet};

use mandate_core::agent::check_text;
use mandate_core::{Agent, AgentName, AgentStatus, AuditDraft, Outcome, StatusChange};
use mandate_policy::{Action, EntityRef, Request};
use mandate_store::{AgentFilter, MAX_PAGE};

use super::drift::use_key;
use super::{
    AccessReport, AgentAccess, Grant, InventoryEntry, InventoryReport, ReviewDue, StaleAgent,
};
use crate::{Actor, Engine, Error, Result};

const DAY_MS: i64 = 86_400_000;

impl Engine {
    /// Every agent in the inventory, across pages.
    async fn inventory_agents(&self) -> Result<Vec<Agent>> {
        let mut filter = AgentFilter {
            limit: MAX_PAGE,
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.store.list_agents(&filter).await?;
            out.extend(page.items);
            let Some(next) = page.next_cursor else {
                return Ok(out);
            };
            filter.after = Some(next);
        }
    }

    /// What policy grants each of `agents`: `token:issue` on every resource
    /// and `mcp:tools/call` on every registered tool, evaluated with a
    /// neutral context, with the determining policy ids.
    async fn grants(&self, agents: &[&Agent]) -> Result<BTreeMap<String, Vec<Grant>>> {
        let resources = self.store.list_resources().await?;
        let tools = self.store.list_resource_tools().await?;
        let mut targets: Vec<(Action, EntityRef, String, Option<String>)> = Vec::new();
        for r in &resources {
            targets.push((
                Action::TokenIssue,
                EntityRef::Resource(r.name.clone()),
                r.name.clone(),
                None,
            ));
        }
        for (r, t) in &tools {
            targets.push((
                Action::McpToolsCall,
                EntityRef::Tool(format!("{r}/{t}")),
                r.clone(),
                Some(t.clone()),
            ));
        }
        let mut requests = Vec::new();
        for a in agents {
            for (action, target, _, _) in &targets {
                requests.push(Request {
                    principal: EntityRef::Agent(a.name.to_string()),
                    action: *action,
                    resource: target.clone(),
                    context: Default::default(),
                });
            }
        }
        let decisions = self.evaluate_quietly(&requests);
        let mut out: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        let mut it = decisions.into_iter();
        for a in agents {
            let grants = out.entry(a.name.to_string()).or_default();
            for (action, _, resource, tool) in &targets {
                let Some(d) = it.next() else { break };
                if d.is_allowed() {
                    grants.push(Grant {
                        action: action.as_str().to_owned(),
                        resource: resource.clone(),
                        tool: tool.clone(),
                        policies: d.determining_policies,
                        used: false,
                        last_used: None,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The inventory report: every agent with its owner, kind, status,
    /// trust providers and binding rules, the resources policy lets it
    /// obtain tokens for, last seen, review-by date and risk; and the
    /// shadow identities no binding maps.
    pub async fn inventory_report(&self) -> Result<InventoryReport> {
        let now = self.now();
        let agents = self.inventory_agents().await?;
        let bindings = self.list_bindings(None).await?;
        let refs: Vec<&Agent> = agents.iter().collect();
        let grants = self.grants(&refs).await?;
        let entries = agents
            .iter()
            .map(|a| {
                let name = a.name.to_string();
                let mine: Vec<_> = bindings.iter().filter(|b| b.agent == name).collect();
                let providers: BTreeSet<String> = mine.iter().map(|b| b.provider.clone()).collect();
                let reach: BTreeSet<String> = (grants.get(&name).into_iter().flatten())
                    .filter(|g| g.action == Action::TokenIssue.as_str())
                    .map(|g| g.resource.clone())
                    .collect();
                InventoryEntry {
                    risk: self.agent_risk(&name),
                    spiffe_id: a.spiffe_id.to_string(),
                    owner: a.owner.to_string(),
                    kind: a.kind.to_string(),
                    status: a.status.to_string(),
                    description: a.description.clone(),
                    providers: providers.into_iter().collect(),
                    bindings: mine.iter().map(|b| b.id.clone()).collect(),
                    resources: reach.into_iter().collect(),
                    last_seen_at: a.last_seen_at,
                    review_by: a.review_by,
                    review_overdue: a.status != AgentStatus::Decommissioned && a.review_by < now,
                    name,
                }
            })
            .collect();
        Ok(InventoryReport {
            generated_at: now,
            agents: entries,
            shadows: self.list_shadows(None).await?,
        })
    }

    /// Access review of one agent or of all that are not decommissioned:
    /// each grant, whether the audit log shows it used within
    /// `window_days`, and which policies grant it.
    pub async fn access_report(
        &self,
        agent: Option<&str>,
        window_days: i64,
    ) -> Result<AccessReport> {
        if !(1..=3650).contains(&window_days) {
            return Err(Error::Invalid(mandate_core::ValidationError::new(
                "window_days",
                "must be between 1 and 3650",
            )));
        }
        // Usage comes from the baselines: bring them up to date first.
        self.run_drift_detector().await?;
        let now = self.now();
        let agents = match agent {
            Some(name) => {
                let n: AgentName = name.parse()?;
                vec![self.agent(&n).await?]
            }
            None => (self.inventory_agents().await?)
                .into_iter()
                .filter(|a| a.status != AgentStatus::Decommissioned)
                .collect(),
        };
        let refs: Vec<&Agent> = agents.iter().collect();
        let mut grants = self.grants(&refs).await?;
        let since = now - time::Duration::days(window_days);
        let baselines = self
            .governance
            .baselines_of(&self.governance.detector)
            .await;
        let mut out = Vec::new();
        for a in &agents {
            let name = a.name.to_string();
            let mut list = grants.remove(&name).unwrap_or_default();
            for g in &mut list {
                let key = use_key(&g.action, Some(&g.resource), g.tool.as_deref());
                g.last_used = baselines.get(&name).and_then(|b| b.last_used(&key));
                g.used = g.last_used.is_some_and(|t| t >= since);
            }
            let unused = list.iter().filter(|g| !g.used).count();
            out.push(AgentAccess {
                agent: name,
                grants: list,
                unused,
            });
        }
        Ok(AccessReport {
            generated_at: now,
            window_days,
            agents: out,
        })
    }

    /// Agents (not decommissioned) whose review-by date has passed.
    pub async fn reviews_due(&self) -> Result<Vec<ReviewDue>> {
        let now = self.now();
        let mut out: Vec<ReviewDue> = (self.inventory_agents().await?)
            .into_iter()
            .filter(|a| a.status != AgentStatus::Decommissioned && a.review_by < now)
            .map(|a| ReviewDue {
                overdue_days: (now - a.review_by).whole_days(),
                name: a.name.to_string(),
                owner: a.owner.to_string(),
                status: a.status.to_string(),
                review_by: a.review_by,
            })
            .collect();
        out.sort_by(|x, y| x.review_by.cmp(&y.review_by).then(x.name.cmp(&y.name)));
        Ok(out)
    }

    /// Records a review of `name` (an `agent.reviewed` audit event with the
    /// note) and moves its review-by date `days` (default: the configured
    /// review period) from now.
    pub async fn review_agent(
        &self,
        actor: &Actor,
        name: &AgentName,
        note: &str,
        days: Option<i64>,
    ) -> Result<Agent> {
        if note.trim().is_empty() {
            return Err(Error::Invalid(mandate_core::ValidationError::new(
                "note",
                "must say what was reviewed",
            )));
        }
        check_text("note", note)?;
        let period = match days {
            Some(d) if (1..=3650).contains(&d) => time::Duration::days(d),
            Some(_) => {
                return Err(Error::Invalid(mandate_core::ValidationError::new(
                    "days",
                    "must be between 1 and 3650",
                )));
            }
            None => self.config.review_period,
        };
        let current = self.agent(name).await?;
        if current.status == AgentStatus::Decommissioned {
            return Err(Error::InvalidState(format!(
                "agent `{name}` is decommissioned"
            )));
        }
        let now = self.now();
        let mut next = current.clone();
        next.review_by = now + period;
        next.updated_at = now;
        let draft = AuditDraft::new(mandate_core::EventKind::AgentReviewed, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("agent/{name}"))
            .detail(serde_json::json!({
                "note": note,
                "previous_review_by": mandate_core::clock::unix_millis(current.review_by),
                "review_by": mandate_core::clock::unix_millis(next.review_by),
            }));
        self.store
            .update_agent(&next, current.updated_at, draft, now)
            .await?;
        self.hot_changed();
        if let Err(e) = self.reload_policy().await {
            tracing::warn!(error = %e, "cannot rebuild policy entities after a review");
        }
        Ok(next)
    }

    /// Active agents with no successful attestation, token or request in
    /// `days` (default: the configured rule). An agent never used counts
    /// from its registration.
    pub async fn stale_agents(&self, days: Option<i64>) -> Result<Vec<StaleAgent>> {
        let days = days.unwrap_or(self.governance.settings().stale_after_days);
        if !(1..=3650).contains(&days) {
            return Err(Error::Invalid(mandate_core::ValidationError::new(
                "days",
                "must be between 1 and 3650",
            )));
        }
        self.run_drift_detector().await?;
        let now = self.now();
        let now_ms = mandate_core::clock::unix_millis(now);
        let baselines = self
            .governance
            .baselines_of(&self.governance.detector)
            .await;
        let mut out = Vec::new();
        for a in self.inventory_agents().await? {
            if a.status != AgentStatus::Active {
                continue;
            }
            let name = a.name.to_string();
            let used = baselines
                .get(&name)
                .map(|b| b.last_activity_ms)
                .filter(|t| *t > 0);
            let seen = a.last_seen_at.map(mandate_core::clock::unix_millis);
            let last = used.max(seen);
            let since = last.unwrap_or(mandate_core::clock::unix_millis(a.created_at));
            let idle_days = (now_ms - since) / DAY_MS;
            if idle_days >= days {
                out.push(StaleAgent {
                    reason: match last {
                        Some(_) => format!("no successful attestation or token in {idle_days} days (rule: {days})"),
                        None => format!("never attested nor issued a token in the {idle_days} days since registration (rule: {days})"),
                    },
                    name,
                    owner: a.owner.to_string(),
                    last_activity: last.map(mandate_core::clock::from_unix_millis),
                    idle_days,
                });
            }
        }
        Ok(out)
    }

    /// Suspends every stale agent (which revokes its tokens). Each
    /// suspension is preceded by an `agent.stale` audit event with the
    /// reason; returns the agents suspended.
    pub async fn suspend_stale_agents(
        &self,
        actor: &Actor,
        days: Option<i64>,
    ) -> Result<Vec<StaleAgent>> {
        let stale = self.stale_agents(days).await?;
        let mut done = Vec::new();
        for s in stale {
            let name: AgentName = s.name.parse()?;
            let draft = AuditDraft::new(mandate_core::EventKind::AgentStale, Outcome::Success)
                .actor(actor.token_id.clone())
                .target(format!("agent/{name}"))
                .detail(serde_json::json!({
                    "reason": s.reason,
                    "idle_days": s.idle_days,
                    "action": "suspend",
                }));
            self.store.append_audit(draft, self.now()).await?;
            match self
                .change_status(actor, &name, StatusChange::Suspend)
                .await
            {
                Ok(_) => done.push(s),
                // Someone suspended it meanwhile: nothing left to do.
                Err(Error::InvalidState(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}
