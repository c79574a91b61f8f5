//! Opened credentials, kept so the hot path neither reads the database nor
//! decrypts: each is checked against its stored `updated_at` at most every
//! [`RECHECK`], so a replaced secret takes effect within that time and a
//! provider's own state (a fetched upstream token) lives as long as the
//! secret does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::credential::Credential;
use crate::plane::Plane;

/// How long an opened credential is used before its record is checked.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

struct Slot {
    credential: Arc<Credential>,
    updated_at: time::OffsetDateTime,
    checked: Instant,
}

pub(crate) struct Credentials {
    plane: Plane,
    http: reqwest::Client,
    slots: Mutex<HashMap<String, Slot>>,
}

impl Credentials {
    pub(crate) fn new(plane: Plane, http: reqwest::Client) -> Self {
        Self {
            plane,
            http,
            slots: Mutex::default(),
        }
    }

    /// The credential `name`, opened.
    pub(crate) async fn get(&self, name: &str) -> Result<Arc<Credential>, String> {
        let stale = match self.slots.lock() {
            Ok(slots) => match slots.get(name) {
                Some(s) if s.checked.elapsed() < RECHECK => return Ok(s.credential.clone()),
                Some(s) => Some((s.updated_at, s.credential.clone())),
                None => None,
            },
            Err(_) => None,
        };
        let known = stale.as_ref().map(|(at, _)| *at);
        let fresh = self
            .plane
            .credential(name, known)
            .await
            .map_err(|e| format!("credential `{name}`: {e}"))?;
        let Some((opened, updated_at)) = fresh else {
            // Unchanged since it was opened.
            let Some((at, credential)) = stale else {
                return Err(format!(
                    "credential `{name}`: the control plane has no change to a credential never opened"
                ));
            };
            self.store(name, credential.clone(), at);
            return Ok(credential);
        };
        let credential = Arc::new(
            Credential::from_opened(opened, self.http.clone())
                .map_err(|e| format!("credential `{name}`: {e}"))?,
        );
        self.store(name, credential.clone(), updated_at);
        Ok(credential)
    }

    fn store(&self, name: &str, credential: Arc<Credential>, updated_at: time::OffsetDateTime) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(
                name.to_owned(),
                Slot {
                    credential,
                    updated_at,
                    checked: Instant::now(),
                },
            );
        }
    }
}
