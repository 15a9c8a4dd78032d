//! `AppState`: what every handler shares — the store, the service zone, the
//! clock, the secrets derived from the service keys, the SMS limits, the
//! settings, and what the owner gives for operations (`Ops`: readiness
//! probe, metrics rendering).

use std::sync::Arc;

use checkin_core::{Clock, Keys, ServiceZone, Store};

use crate::config::WebConfig;
use crate::limits::Limits;
use crate::oidc::provider::Provider;
use crate::ops::Ops;
use crate::security::Secrets;

/// What every handler shares (cheap clone).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
    ops: Arc<Ops>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) zone: ServiceZone,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) secrets: Secrets,
    pub(crate) config: WebConfig,
    pub(crate) limits: Limits,
    /// The city account's provider, when configured.
    pub(crate) oidc: Option<Provider>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("ops", &self.ops)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over `store`; `keys` are the service keys (the web's own
    /// signing keys are derived from them). Queued SMS codes wake the sender
    /// through the store's outbox signal.
    pub fn new(
        store: Store,
        keys: &Keys,
        zone: ServiceZone,
        clock: Arc<dyn Clock>,
        config: WebConfig,
    ) -> AppState {
        let limits = Limits::new(&config, clock.clone());
        let oidc = config
            .oidc
            .enabled()
            .then(|| Provider::new(&config.oidc, &config.public_base_url, keys));
        AppState {
            inner: Arc::new(Inner {
                store,
                zone,
                clock,
                secrets: Secrets::new(keys),
                config,
                limits,
                oidc,
            }),
            ops: Arc::new(Ops::default()),
        }
    }

    /// The same state with the owner's readiness probe and metrics renderer.
    pub fn with_ops(self, ops: Ops) -> AppState {
        AppState {
            ops: Arc::new(ops),
            ..self
        }
    }

    pub(crate) fn ops(&self) -> &Ops {
        &self.ops
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &WebConfig {
        &self.inner.config
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}
