//! Drift detection: a per-agent baseline learned from usage events, and the
//! findings raised when an agent behaves unlike it.
//!
//! The baseline holds the (action, resource, tool) triples the agent used,
//! the resources it reached, a histogram of the hours (UTC) it is active in,
//! an EWMA of its request count per *active* hour (hours with no request are
//! not averaged in, so a working-hours agent is not a burst every morning),
//! its deepest delegation and its delegation peers. Every part is bounded,
//! so memory stays proportional to the number of agents.
//!
//! Nothing is raised while an agent is still learning (its first
//! `learning_days`). Each finding has a weight; an agent's risk score is the
//! sum of the weights of its unacknowledged findings of the last 24 hours,
//! capped at 100.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::usage::Usage;

/// Most (action, resource, tool) triples kept per agent; the least
/// recently used is dropped beyond it.
const MAX_USES: usize = 512;
/// Most resources and peers kept per agent.
const MAX_SET: usize = 256;
/// EWMA weight of the newest active hour.
const ALPHA: f64 = 0.2;
/// Active hours needed before the rate is judged.
const MIN_ACTIVE_HOURS: u32 = 8;
/// Fewest requests in an hour that can be a burst.
const MIN_BURST: f64 = 10.0;
/// How long a finding counts towards the risk score.
pub(crate) const RISK_WINDOW_MS: i64 = 24 * 3_600_000;
const HOUR_MS: i64 = 3_600_000;

/// Uses of one (action, resource, tool).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct UseStat {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One agent's learned behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Baseline {
    /// First usage event seen.
    pub first_seen_ms: i64,
    /// Latest successful token, request or attestation (for the stale rule).
    pub last_activity_ms: i64,
    /// `action\tresource\ttool` → uses.
    pub uses: BTreeMap<String, UseStat>,
    /// Resources reached.
    pub resources: BTreeSet<String>,
    /// Requests per hour of the day (UTC).
    pub hours: Vec<u64>,
    /// EWMA of the request count per active hour, and its variance.
    pub rate_mean: f64,
    pub rate_var: f64,
    pub active_hours: u32,
    /// The hour (ms since epoch / 1 h) being counted, and its count.
    pub cur_hour: i64,
    pub cur_count: u32,
    /// Last hour a burst or an unusual hour was raised in (once per hour).
    pub burst_hour: i64,
    pub odd_hour: i64,
    /// Deepest delegation seen, and the agents seen in its chains.
    pub max_depth: u32,
    pub peers: BTreeSet<String>,
}

/// A finding before it gets an id and a risk score.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detected {
    pub kind: &'static str,
    pub summary: String,
    pub detail: serde_json::Value,
    pub weight: u8,
}

pub(crate) fn use_key(action: &str, resource: Option<&str>, tool: Option<&str>) -> String {
    format!(
        "{action}\t{}\t{}",
        resource.unwrap_or_default(),
        tool.unwrap_or_default()
    )
}

fn ms(t: OffsetDateTime) -> i64 {
    mandate_core::clock::unix_millis(t)
}

impl Baseline {
    fn learned(&self, now_ms: i64, learning_days: i64) -> bool {
        now_ms - self.first_seen_ms >= learning_days * 24 * HOUR_MS
    }

    /// The request count above which the current hour is a burst.
    pub(crate) fn burst_threshold(&self, sensitivity: f64) -> f64 {
        let sd = self.rate_var.sqrt().max(self.rate_mean.sqrt()).max(1.0);
        (self.rate_mean + sensitivity * sd)
            .max(2.0 * self.rate_mean)
            .max(MIN_BURST)
    }

    /// Closes the counted hour when `hour` is a later one, folding its
    /// count (capped at the burst threshold, so a burst does not become
    /// normal) into the EWMA.
    fn roll_hour(&mut self, hour: i64, sensitivity: f64) {
        if hour == self.cur_hour {
            return;
        }
        if self.cur_count > 0 {
            let x = f64::from(self.cur_count);
            if self.active_hours == 0 {
                self.rate_mean = x;
                self.rate_var = 0.0;
            } else {
                let x = x.min(self.burst_threshold(sensitivity));
                let diff = x - self.rate_mean;
                self.rate_mean += ALPHA * diff;
                self.rate_var = (1.0 - ALPHA) * (self.rate_var + ALPHA * diff * diff);
            }
            self.active_hours = self.active_hours.saturating_add(1);
        }
        self.cur_hour = hour;
        self.cur_count = 0;
    }

    /// Learns from `u` and returns what was new about it.
    pub(crate) fn observe(
        &mut self,
        u: &Usage,
        learning_days: i64,
        sensitivity: f64,
    ) -> Vec<Detected> {
        let now = ms(u.at);
        if self.first_seen_ms == 0 {
            self.first_seen_ms = now;
        }
        self.last_activity_ms = self.last_activity_ms.max(now);
        let Some(action) = u.action.as_deref() else {
            return Vec::new();
        };
        if self.hours.len() != 24 {
            self.hours = vec![0; 24];
        }
        let hour = now.div_euclid(HOUR_MS);
        self.roll_hour(hour, sensitivity);
        self.cur_count = self.cur_count.saturating_add(1);
        let key = use_key(action, u.resource.as_deref(), u.tool.as_deref());
        let hod = usize::from(u.at.hour());
        let mut out = Vec::new();
        if self.learned(now, learning_days) {
            if let Some(r) = &u.resource
                && !self.resources.contains(r)
            {
                out.push(Detected {
                    kind: "new_resource",
                    summary: format!("first use of resource `{r}` ({action})"),
                    detail: json!({"action": action, "resource": r}),
                    weight: 30,
                });
            }
            if let Some(t) = &u.tool
                && !self.uses.contains_key(&key)
            {
                let r = u.resource.as_deref().unwrap_or_default();
                out.push(Detected {
                    kind: "new_tool",
                    summary: format!("first use of tool `{r}/{t}`"),
                    detail: json!({"action": action, "resource": r, "tool": t}),
                    weight: 40,
                });
            }
            if u.depth > 0 && self.max_depth == 0 {
                out.push(Detected {
                    kind: "first_delegation",
                    summary: format!("first delegated request (depth {})", u.depth),
                    detail: json!({"depth": u.depth, "peers": u.peers}),
                    weight: 25,
                });
            }
            let quiet = |h: usize| self.hours.get(h % 24).copied().unwrap_or(0) == 0;
            if quiet(hod) && quiet(hod + 23) && quiet(hod + 1) && self.odd_hour != hour {
                self.odd_hour = hour;
                out.push(Detected {
                    kind: "unusual_hour",
                    summary: format!(
                        "active at {hod:02}:00 UTC, an hour it has not been active in"
                    ),
                    detail: json!({"hour_utc": hod}),
                    weight: 15,
                });
            }
            let threshold = self.burst_threshold(sensitivity);
            if self.active_hours >= MIN_ACTIVE_HOURS
                && self.burst_hour != hour
                && f64::from(self.cur_count) > threshold
            {
                self.burst_hour = hour;
                let ratio = f64::from(self.cur_count) / self.rate_mean.max(1.0);
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "clamped to 0..=30"
                )]
                let extra = (ratio * 3.0).clamp(0.0, 30.0) as u8;
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "rounded for the audit log, which holds no floats"
                )]
                let (mean, thr) = (self.rate_mean.round() as i64, threshold.round() as i64);
                out.push(Detected {
                    kind: "rate_burst",
                    summary: format!(
                        "more than {thr} requests within the hour; its usual rate is about {mean} per active hour"
                    ),
                    detail: json!({"count": self.cur_count, "threshold": thr, "baseline_per_hour": mean}),
                    weight: 30 + extra,
                });
            }
        }
        self.learn(key, u, now, hod);
        out
    }

    fn learn(&mut self, key: String, u: &Usage, now: i64, hod: usize) {
        let stat = self.uses.entry(key).or_default();
        if stat.count == 0 {
            stat.first_ms = now;
        }
        stat.count += 1;
        stat.last_ms = now;
        if self.uses.len() > MAX_USES
            && let Some(oldest) = (self.uses.iter())
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(k, _)| k.clone())
        {
            self.uses.remove(&oldest);
        }
        if let Some(r) = &u.resource
            && self.resources.len() < MAX_SET
        {
            self.resources.insert(r.clone());
        }
        if let Some(h) = self.hours.get_mut(hod) {
            *h += 1;
        }
        self.max_depth = self.max_depth.max(u.depth);
        for p in &u.peers {
            if self.peers.len() < MAX_SET {
                self.peers.insert(p.clone());
            }
        }
    }

    /// When the agent last used `(action, resource, tool)`.
    pub(crate) fn last_used(&self, key: &str) -> Option<OffsetDateTime> {
        self.uses
            .get(key)
            .map(|s| mandate_core::clock::from_unix_millis(s.last_ms))
    }
}

/// Risk score from open findings: `(created_ms, weight)` within the window
/// ending at `now_ms`, summed and capped at 100.
pub(crate) fn risk_at(open: &[(i64, u8)], now_ms: i64) -> u8 {
    let sum: u32 = open
        .iter()
        .filter(|(t, _)| *t <= now_ms && now_ms - *t < RISK_WINDOW_MS)
        .map(|(_, w)| u32::from(*w))
        .sum();
    u8::try_from(sum.min(100)).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn usage(at: OffsetDateTime, resource: &str, tool: Option<&str>, depth: u32) -> Usage {
        Usage {
            agent: "a".into(),
            action: Some(
                if tool.is_some() {
                    "mcp:tools/call"
                } else {
                    "token:issue"
                }
                .into(),
            ),
            resource: Some(resource.into()),
            tool: tool.map(Into::into),
            depth,
            peers: if depth > 0 {
                vec!["parent".into()]
            } else {
                vec![]
            },
            at,
            seq: 1,
        }
    }

    /// Eight learning days of one call an hour, 09:00–16:00 UTC.
    fn learned() -> (Baseline, OffsetDateTime) {
        let start = datetime!(2026-11-02 00:00 UTC);
        let mut b = Baseline::default();
        for d in 0..8 {
            for h in 9..17 {
                let at = start + time::Duration::days(d) + time::Duration::hours(h);
                assert!(
                    b.observe(&usage(at, "github", Some("list"), 0), 7, 3.0)
                        .is_empty()
                );
            }
        }
        (b, start + time::Duration::days(8))
    }

    fn kinds(found: &[Detected]) -> Vec<&'static str> {
        found.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn learning_raises_nothing_then_new_behaviour_is_named() {
        let (mut b, day) = learned();
        let at = day + time::Duration::hours(10);
        assert!(
            b.observe(&usage(at, "github", Some("list"), 0), 7, 3.0)
                .is_empty()
        );
        let found = b.observe(&usage(at, "billing", None, 0), 7, 3.0);
        assert_eq!(kinds(&found), ["new_resource"]);
        let found = b.observe(&usage(at, "github", Some("delete_repo"), 1), 7, 3.0);
        assert_eq!(kinds(&found), ["new_tool", "first_delegation"]);
        assert_eq!(b.peers.iter().collect::<Vec<_>>(), ["parent"]);
        // 03:00 UTC is far from its working hours; raised once per hour.
        let night = day + time::Duration::hours(3);
        let found = b.observe(&usage(night, "github", Some("list"), 0), 7, 3.0);
        assert_eq!(kinds(&found), ["unusual_hour"]);
        assert!(
            b.observe(&usage(night, "github", Some("list"), 0), 7, 3.0)
                .is_empty()
        );
    }

    #[test]
    fn a_burst_is_raised_once_per_hour_and_does_not_become_normal() {
        let (mut b, day) = learned();
        let at = day + time::Duration::hours(11);
        let mut bursts = 0;
        for _ in 0..50 {
            bursts += b
                .observe(&usage(at, "github", Some("list"), 0), 7, 3.0)
                .len();
        }
        assert_eq!(bursts, 1);
        let next = day + time::Duration::hours(12);
        b.observe(&usage(next, "github", Some("list"), 0), 7, 3.0);
        assert!(b.rate_mean < 5.0, "{}", b.rate_mean);
    }

    #[test]
    fn risk_counts_the_last_day_and_caps_at_100() {
        let h = 3_600_000;
        assert_eq!(risk_at(&[(0, 40), (h, 45)], 2 * h), 85);
        assert_eq!(risk_at(&[(0, 40), (h, 45)], 24 * h + 1), 45);
        assert_eq!(risk_at(&[(0, 60), (0, 60)], 1), 100);
    }
}
