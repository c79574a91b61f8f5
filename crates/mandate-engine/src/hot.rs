//! Short-lived copies of what every grant reads and admins rarely change:
//! signing keys (and the published set), trust providers, binding rules,
//! resources and the agents grants map to. A copy is
//! reused for [`REUSE`] and dropped at once when this replica changes any
//! of them, so a change made here is seen by the next request, and one made
//! by another replica within [`REUSE`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mandate_core::{Agent, AgentName};
use mandate_store::{BindingRecord, ProviderRecord, ResourceRecord, SigningKeyRecord};

use crate::{Engine, Result};

/// How long a copy is reused.
pub(crate) const REUSE: Duration = Duration::from_secs(1);
/// Most agents held; past it the copies are dropped and read again.
const MAX_AGENTS: usize = 10_000;

/// One reusable value, tagged with the generation it was read in.
struct Slot<T>(Mutex<Option<(Instant, u64, Arc<T>)>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    async fn get<F, Fut>(&self, generation: u64, load: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Ok(g) = self.0.lock()
            && let Some((at, gen_at, v)) = g.as_ref()
            && *gen_at == generation
            && at.elapsed() < REUSE
        {
            return Ok(v.clone());
        }
        let v = Arc::new(load().await?);
        if let Ok(mut g) = self.0.lock() {
            *g = Some((Instant::now(), generation, v.clone()));
        }
        Ok(v)
    }
}

/// An agent as read: when, in which generation, the agent.
type AgentCopy = (Instant, u64, Arc<Agent>);

/// The copies.
#[derive(Default)]
pub(crate) struct Hot {
    generation: std::sync::atomic::AtomicU64,
    /// Moves whenever a token may have been revoked or an agent left
    /// `active`, so caches of verified tokens know to verify again.
    revocations: std::sync::atomic::AtomicU64,
    /// The store's latest revocation time last seen (`i64::MIN` before).
    revocation_mark: std::sync::Mutex<Option<Option<i64>>>,
    keys: Slot<Vec<SigningKeyRecord>>,
    providers: Slot<Vec<ProviderRecord>>,
    bindings: Slot<Vec<BindingRecord>>,
    resources: Slot<Vec<ResourceRecord>>,
    jwks: Slot<mandate_jose::jwk::JwkSet>,
    /// Agents by name.
    agents: Mutex<HashMap<AgentName, AgentCopy>>,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hot")
    }
}

impl Hot {
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Engine {
    /// A number that changes whenever a token may have been revoked or an
    /// agent may have left `active` (here, or seen from another replica by
    /// the periodic refresh). A cache of verified tokens (the gateway's)
    /// keeps an entry only while this number is the one it was verified in.
    pub fn revocation_epoch(&self) -> u64 {
        self.hot
            .revocations
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Moves [`Engine::revocation_epoch`] when another replica revoked a
    /// token since the last call (one indexed read). The server calls it
    /// every second.
    pub async fn refresh_revocations(&self) -> Result<()> {
        let mark = self.store.revocation_mark().await?;
        let changed = match self.hot.revocation_mark.lock() {
            Ok(mut seen) => {
                let changed = seen.is_some_and(|s| s != mark);
                *seen = Some(mark);
                changed
            }
            Err(_) => true,
        };
        if changed {
            self.revocations_changed();
        }
        Ok(())
    }

    /// Moves [`Engine::revocation_epoch`].
    pub(crate) fn revocations_changed(&self) {
        self.hot
            .revocations
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Drops every copy: call after changing keys, providers, bindings,
    /// resources or agents.
    pub(crate) fn hot_changed(&self) {
        self.hot
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) async fn hot_keys(&self) -> Result<Arc<Vec<SigningKeyRecord>>> {
        let g = self.hot.generation();
        self.hot
            .keys
            .get(g, || async { Ok(self.store.list_signing_keys().await?) })
            .await
    }

    pub(crate) async fn hot_providers(&self) -> Result<Arc<Vec<ProviderRecord>>> {
        let g = self.hot.generation();
        self.hot
            .providers
            .get(g, || async { Ok(self.store.list_providers().await?) })
            .await
    }

    pub(crate) async fn hot_bindings(&self) -> Result<Arc<Vec<BindingRecord>>> {
        let g = self.hot.generation();
        self.hot
            .bindings
            .get(g, || async { Ok(self.store.list_bindings(None).await?) })
            .await
    }

    /// The published key set, for verifying our own tokens. Keys are
    /// published a JWKS cache time before they sign, so a reused copy never
    /// misses a key that signs.
    pub(crate) async fn hot_jwks(&self) -> Result<Arc<mandate_jose::jwk::JwkSet>> {
        let g = self.hot.generation();
        self.hot.jwks.get(g, || self.published_jwks()).await
    }

    /// An agent as a grant maps to it, reused for [`REUSE`] (not found is
    /// not remembered). Only for grants: the token they record is refused
    /// by the store if the agent is no longer active by then, so a copy
    /// that missed a suspension elsewhere never outlives it.
    pub(crate) async fn hot_agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        let g = self.hot.generation();
        if let Ok(map) = self.hot.agents.lock()
            && let Some((at, gen_at, a)) = map.get(name)
            && *gen_at == g
            && at.elapsed() < REUSE
        {
            return Ok(Some(Agent::clone(a)));
        }
        let Some(a) = self.store.agent(name).await? else {
            return Ok(None);
        };
        if let Ok(mut map) = self.hot.agents.lock() {
            if map.len() >= MAX_AGENTS {
                map.clear();
            }
            map.insert(name.clone(), (Instant::now(), g, Arc::new(a.clone())));
        }
        Ok(Some(a))
    }

    /// Notes in the copy of `name` that a grant moved its `last_seen_at`,
    /// so the grants reusing the copy do not move it again.
    pub(crate) fn hot_agent_seen(&self, name: &AgentName, at: time::OffsetDateTime) {
        if let Ok(mut map) = self.hot.agents.lock()
            && let Some((_, _, a)) = map.get_mut(name)
        {
            let mut seen = Agent::clone(a);
            seen.last_seen_at = Some(at);
            *a = Arc::new(seen);
        }
    }

    pub(crate) async fn hot_resources(&self) -> Result<Arc<Vec<ResourceRecord>>> {
        let g = self.hot.generation();
        self.hot
            .resources
            .get(g, || async { Ok(self.store.list_resources().await?) })
            .await
    }
}
