//! Linking findings to registered agents by name.

use crate::finding::{Finding, FindingKind, Registration, RegistrationState};

/// A registered agent as the admin API lists it (`GET /admin/v1/agents`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RegisteredAgent {
    /// The agent's name.
    pub name: String,
    /// Its status: `active`, `suspended` or `decommissioned`.
    #[serde(default)]
    pub status: String,
}

/// Case-insensitive, with `_`, `.` and spaces read as `-`.
fn normalize(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '_' | '.' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

pub(crate) fn link(findings: &mut [Finding], agents: &[RegisteredAgent]) {
    for f in findings.iter_mut() {
        if matches!(f.kind, FindingKind::HardcodedCredential(_)) {
            continue;
        }
        let found = f
            .name()
            .map(normalize)
            .and_then(|n| agents.iter().find(|a| normalize(&a.name) == n));
        f.registration = Some(match found {
            Some(a) => Registration {
                state: RegistrationState::Registered,
                agent: Some(a.name.clone()),
                status: Some(a.status.clone()),
            },
            None => Registration {
                state: RegistrationState::Unregistered,
                agent: None,
                status: None,
            },
        });
    }
}
