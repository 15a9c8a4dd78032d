//! `AppState`: what every handler shares — the store, the service zone, the
//! clock, the secrets derived from the service keys, the SMS limits, the
//! settings, and what the owner gives for operations (`Ops`: readiness
//! probe, metrics rendering).

use std::sync::Arc;

use checkin_core::store::{OtpCheck, OtpEntry, StoreError};
use checkin_core::{Clock, ConfirmConfig, Confirmations, Keys, ServiceZone, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::WebConfig;
use crate::limits::Limits;
use crate::oidc::provider::Provider;
use crate::places::Places;
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
    /// The premises the code entries name, read at most every `PLACE_LIFE`.
    pub(crate) places: Places,
    /// The city account's provider, when configured.
    pub(crate) oidc: Option<Provider>,
    /// Entries of SMS codes, committed in groups by a task of the state's
    /// (`checkin_core::confirm`); `None` when the state was made outside a
    /// tokio runtime: each entry then commits alone.
    confirmations: Option<Confirmations>,
    /// That task and what stops it (`serve` does, once its requests are done).
    confirm_task: std::sync::Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
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
        let secrets = Secrets::new(keys);
        // The committer runs beside the handlers, on the caller's runtime; it
        // also ends once the last clone of the state is dropped.
        let (confirmations, confirm_task) = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (queue, committer) = Confirmations::new(
                    store.clone(),
                    secrets.otp.clone(),
                    ConfirmConfig::default(),
                );
                let stop = CancellationToken::new();
                let task = runtime.spawn(committer.run(stop.clone().cancelled_owned()));
                (Some(queue), Some((stop, task)))
            }
            Err(_) => (None, None),
        };
        AppState {
            inner: Arc::new(Inner {
                store,
                zone,
                clock,
                secrets,
                config,
                limits,
                places: Places::default(),
                oidc,
                confirmations,
                confirm_task: std::sync::Mutex::new(confirm_task),
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

    /// Confirms one entry of an SMS code (see `Otps::confirm_otp`), in a
    /// group with the others waiting.
    pub(crate) async fn confirm_otp(&self, entry: OtpEntry) -> Result<OtpCheck, StoreError> {
        match &self.inner.confirmations {
            Some(queue) => queue.confirm(entry).await,
            None => {
                let OtpEntry {
                    id,
                    premises_id,
                    code,
                    consent,
                    at,
                } = entry;
                self.store()
                    .otps()
                    .confirm_otp(id, premises_id, &code, &self.inner.secrets.otp, consent, at)
                    .await
            }
        }
    }

    /// Stops the confirmations' committer once what is queued is confirmed;
    /// later entries are refused. For `serve`'s shutdown.
    pub(crate) async fn stop_confirmations(&self) {
        let task = self
            .inner
            .confirm_task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = task {
            stop.cancel();
            let _ = task.await;
        }
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

/// Says whether the service can do its work beyond storage (the gateway's:
/// at least one SMPP bind up); `Err` carries the reason for `/readyz`, `Ok`
/// notes shown under "ready" (an operator of several without a bind).
pub type ReadinessProbe = std::sync::Arc<dyn Fn() -> Result<Vec<String>, String> + Send + Sync>;
/// Renders every metric as Prometheus text.
pub type MetricsRender = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

/// What the owner gives the web for operations; both optional (a web alone
/// in a test is ready when storage is, and serves no `/metrics`).
#[derive(Clone, Default)]
pub struct Ops {
    pub readiness: Option<ReadinessProbe>,
    pub metrics: Option<MetricsRender>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("readiness", &self.readiness.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}
