//! The drift detector as a use case: tail the audit log from the persisted
//! cursor, feed usage events to the baselines, persist baselines, findings
//! (each with an audit event) and the cursor in one transaction, and keep
//! the in-memory risk scores current.

use std::collections::{BTreeSet, HashMap};

use mandate_core::{AuditDraft, Outcome};
use mandate_store::governance::{DriftWrite, FindingFilter, FindingRecord};
use mandate_store::{AuditFilter, MAX_PAGE};
use time::OffsetDateTime;

use super::drift::{Baseline, RISK_WINDOW_MS, risk_at};
use super::usage::usage;
use super::{DriftRun, Finding, GOVERNANCE_ACTOR};
use crate::{Actor, Engine, Error, Result};

/// Most audit pages one run reads; the next run continues.
const MAX_PAGES_PER_RUN: usize = 200;

/// The detector's working state, loaded from the store on first use.
#[derive(Debug, Default)]
pub(crate) struct Detector {
    pub cursor: i64,
    pub baselines: HashMap<String, Baseline>,
    /// Open findings of the last 24 h per agent: (id, created ms, weight).
    pub open: HashMap<String, Vec<(String, i64, u8)>>,
}

fn ms(t: OffsetDateTime) -> i64 {
    mandate_core::clock::unix_millis(t)
}

fn weight_of(f: &FindingRecord) -> u8 {
    serde_json::from_str::<serde_json::Value>(&f.detail)
        .ok()
        .and_then(|d| d.get("weight").and_then(serde_json::Value::as_u64))
        .and_then(|w| u8::try_from(w).ok())
        .unwrap_or(0)
}

impl Engine {
    async fn open_findings(&self, since: OffsetDateTime) -> Result<Vec<FindingRecord>> {
        Ok(self
            .store
            .list_findings(&FindingFilter {
                since: Some(since),
                limit: MAX_PAGE,
                ..Default::default()
            })
            .await?)
    }

    async fn load_detector(&self) -> Result<Detector> {
        let state = self.store.drift_state().await?;
        let mut baselines = HashMap::new();
        for (agent, json) in state.baselines {
            match serde_json::from_str::<Baseline>(&json) {
                Ok(b) => {
                    baselines.insert(agent, b);
                }
                Err(e) => {
                    tracing::warn!(agent, error = %e, "unreadable drift baseline; learning it again");
                }
            }
        }
        let mut open: HashMap<String, Vec<(String, i64, u8)>> = HashMap::new();
        let since = self.now() - time::Duration::milliseconds(RISK_WINDOW_MS);
        for f in self.open_findings(since).await? {
            let w = weight_of(&f);
            open.entry(f.agent.clone())
                .or_default()
                .push((f.id, ms(f.created_at), w));
        }
        Ok(Detector {
            cursor: state.cursor,
            baselines,
            open,
        })
    }

    /// Reads the audit events written since the last run, updates the
    /// baselines and raises findings. Safe to call from several replicas:
    /// only one run's write for a given cursor is kept.
    pub async fn run_drift_detector(&self) -> Result<DriftRun> {
        let settings = self.governance.settings();
        let mut guard = self.governance.detector.lock().await;
        let mut run = DriftRun::default();
        for _ in 0..MAX_PAGES_PER_RUN {
            if guard.is_none() {
                *guard = Some(self.load_detector().await?);
            }
            let Some(det) = guard.as_mut() else { break };
            let page = self
                .store
                .list_audit(&AuditFilter {
                    after_seq: Some(det.cursor),
                    limit: MAX_PAGE,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.items.last() else { break };
            let mut write = DriftWrite {
                from_cursor: det.cursor,
                to_cursor: last.seq,
                ..Default::default()
            };
            let mut changed = BTreeSet::new();
            for ev in &page.items {
                let Some(u) = usage(ev) else { continue };
                let baseline = det.baselines.entry(u.agent.clone()).or_default();
                let found =
                    baseline.observe(&u, settings.learning_days, settings.drift_sensitivity);
                changed.insert(u.agent.clone());
                let t = ms(u.at);
                for d in found {
                    let id = format!(
                        "fnd_{}",
                        mandate_jose::random::id(20)
                            .map_err(|_| Error::Internal("no randomness"))?
                    );
                    let open = det.open.entry(u.agent.clone()).or_default();
                    open.retain(|(_, c, _)| t - c < RISK_WINDOW_MS);
                    open.push((id.clone(), t, d.weight));
                    let pairs: Vec<(i64, u8)> = open.iter().map(|(_, c, w)| (*c, *w)).collect();
                    let risk = risk_at(&pairs, t);
                    let mut detail = d.detail.clone();
                    detail["weight"] = d.weight.into();
                    let draft =
                        AuditDraft::new(mandate_core::EventKind::DriftFinding, Outcome::Success)
                            .actor(GOVERNANCE_ACTOR)
                            .target(format!("agent/{}", u.agent))
                            .detail(serde_json::json!({
                                "id": id, "kind": d.kind, "summary": d.summary, "risk": risk,
                                "event_seq": u.seq, "detail": detail,
                            }));
                    write.findings.push((
                        FindingRecord {
                            id,
                            agent: u.agent.clone(),
                            kind: d.kind.to_owned(),
                            summary: d.summary,
                            detail: detail.to_string(),
                            risk: i64::from(risk),
                            event_seq: u.seq,
                            created_at: u.at,
                            acked_at: None,
                            acked_by: None,
                            ack_note: None,
                        },
                        draft,
                    ));
                }
            }
            for agent in &changed {
                if let Some(b) = det.baselines.get(agent) {
                    let json =
                        serde_json::to_string(b).map_err(|_| Error::Internal("baseline json"))?;
                    write.baselines.push((agent.clone(), json));
                }
            }
            det.cursor = last.seq;
            let full = page.items.len() >= MAX_PAGE as usize;
            match self.store.save_drift(&write, self.now()).await {
                Ok(true) => {
                    run.events += page.items.len() as u64;
                    run.findings += write.findings.len() as u64;
                }
                Ok(false) => {
                    // Another replica processed these events: start over from its state.
                    *guard = None;
                    continue;
                }
                Err(e) => {
                    *guard = None;
                    return Err(e.into());
                }
            }
            if !full {
                break;
            }
        }
        drop(guard);
        self.refresh_risk().await?;
        Ok(run)
    }

    /// Recomputes every agent's risk score from the open findings of the
    /// last 24 hours.
    pub(crate) async fn refresh_risk(&self) -> Result<()> {
        let now = self.now();
        let findings = self
            .open_findings(now - time::Duration::milliseconds(RISK_WINDOW_MS))
            .await?;
        let mut per: HashMap<String, Vec<(i64, u8)>> = HashMap::new();
        for f in &findings {
            per.entry(f.agent.clone())
                .or_default()
                .push((ms(f.created_at), weight_of(f)));
        }
        let now_ms = ms(now);
        let risk = per
            .into_iter()
            .map(|(a, v)| (a, risk_at(&v, now_ms)))
            .filter(|(_, r)| *r > 0)
            .collect();
        self.governance.set_risk(risk);
        Ok(())
    }

    /// Findings, newest first.
    pub async fn list_findings(
        &self,
        agent: Option<&str>,
        include_acked: bool,
    ) -> Result<Vec<Finding>> {
        let records = self
            .store
            .list_findings(&FindingFilter {
                agent: agent.map(str::to_owned),
                include_acked,
                limit: MAX_PAGE,
                ..Default::default()
            })
            .await?;
        Ok(records.into_iter().map(Finding::from).collect())
    }

    /// Acknowledges a finding: it no longer counts towards the risk score.
    pub async fn ack_finding(&self, actor: &Actor, id: &str, note: &str) -> Result<Finding> {
        mandate_core::agent::check_text("note", note)?;
        let now = self.now();
        let draft = AuditDraft::new(mandate_core::EventKind::DriftFindingAcked, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("finding/{id}"))
            .detail(serde_json::json!({ "note": note }));
        let rec = self
            .store
            .ack_finding(id, &actor.token_id, note, draft, now)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "finding",
                id: id.to_owned(),
            })?;
        if let Some(det) = self.governance.detector.lock().await.as_mut()
            && let Some(open) = det.open.get_mut(&rec.agent)
        {
            open.retain(|(fid, _, _)| fid != id);
        }
        self.refresh_risk().await?;
        Ok(Finding::from(rec))
    }
}
