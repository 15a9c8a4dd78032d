//! The running service: storage, the SMPP link (to the operator, or to the
//! bundled simulator started in-process when no `[smsc]` is configured), the
//! MO pipeline and the notifier, started together and stopped in order.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use checkin_core::{Clock, PhoneVault, Store, SystemClock};
use notifier::{Notifier, NotifierConfig, Waker};
use smsc_link::{Link, LinkConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::pipeline::{self, PipelineConfig};
use crate::sender::{LinkSender, ReceiptLog};

/// Replies the MO pipeline may hand to the notifier in memory (claimed in the
/// MO's own commit) before it leaves the rest in the outbox: a few windows'
/// worth, so a burst of check-ins needs no claim transactions.
const HANDOFF_MAX: usize = 2048;

/// How often the WAL is checkpointed in the background (SQLite).
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// With background checkpoints, a commit checkpoints by itself only past this
/// many WAL pages (64 MiB): the bound should the background ones fall behind.
const AUTOCHECKPOINT_PAGES_MIN: u32 = 16 * 1024;

/// Checkpoints the SQLite WAL every `CHECKPOINT_INTERVAL` until `stop`.
async fn checkpoints(store: Store, stop: CancellationToken) {
    if store.backend() != checkin_core::Backend::Sqlite {
        return;
    }
    let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = store.checkpoint().await {
            tracing::debug!(error = %e, "background checkpoint failed; the next one retries");
        }
    }
}

/// The account the embedded simulator accepts and the link binds with.
const EMBEDDED_ACCOUNT: (&str, &str) = ("checkin", "checkin");

/// The simulator the gateway started in-process.
#[derive(Debug, Clone)]
pub struct EmbeddedSimulator {
    pub simulator: simulator::Simulator,
    pub smpp_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

/// A running gateway. Stop it with [`Gateway::shutdown`].
#[derive(Debug)]
pub struct Gateway {
    pub store: Store,
    pub link: Link,
    /// `Some` when no `[smsc]` is configured.
    pub simulator: Option<EmbeddedSimulator>,
    notifier_stop: CancellationToken,
    notifier_task: tokio::task::JoinHandle<Result<(), notifier::NotifierError>>,
    pipeline_task: tokio::task::JoinHandle<()>,
    simulator_stop: CancellationToken,
    simulator_tasks: TaskTracker,
    checkpoint_stop: CancellationToken,
    checkpoint_task: tokio::task::JoinHandle<()>,
}

/// What a gateway is started with besides the configuration (tests change these).
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub clock: Arc<dyn Clock>,
    pub pipeline: PipelineConfig,
    pub notifier: NotifierConfig,
}

impl GatewayOptions {
    pub fn from_config(config: &Config) -> GatewayOptions {
        GatewayOptions {
            clock: Arc::new(SystemClock),
            pipeline: PipelineConfig::default(),
            notifier: NotifierConfig {
                messages_per_second: config.send_rate,
                ..NotifierConfig::default()
            },
        }
    }
}

impl Gateway {
    /// Opens storage, starts the simulator if needed, binds the link, and starts
    /// the MO pipeline and the notifier.
    pub async fn start(config: &Config, options: GatewayOptions) -> anyhow::Result<Gateway> {
        let keys = config
            .load_keys()
            .context("loading the phone-number keys")?;
        let mut store_config = config.store.clone();
        // Checkpoints run in the background (below), off the writer's commits;
        // the autocheckpoint is only the bound should they fall behind.
        store_config.sqlite_autocheckpoint_pages = store_config
            .sqlite_autocheckpoint_pages
            .max(AUTOCHECKPOINT_PAGES_MIN);
        let store = Store::open(&config.database_url, PhoneVault::new(&keys), store_config)
            .await
            .context("opening the database")?;
        let checkpoint_stop = CancellationToken::new();
        let checkpoint_task = tokio::spawn(checkpoints(store.clone(), checkpoint_stop.clone()));

        let simulator_stop = CancellationToken::new();
        let simulator_tasks = TaskTracker::new();
        let (link_config, simulator) = match &config.smsc {
            Some(smsc) => (smsc.0.clone(), None),
            None => {
                let embedded = start_simulator(config, &simulator_stop, &simulator_tasks).await?;
                let mut link = LinkConfig::new(
                    "127.0.0.1",
                    embedded.smpp_addr.port(),
                    EMBEDDED_ACCOUNT.0,
                    EMBEDDED_ACCOUNT.1,
                );
                // On loopback the notifier's rate limit is the only pacing needed.
                link.window_max = 64;
                link.segments_per_second = 0;
                // Let a burst of MO reach the pipeline together: bigger groups
                // per commit instead of ESME_RX_T_APPN and redeliveries.
                link.deliveries_in_flight_max = 1024;
                (link, Some(embedded))
            }
        };

        // Before anything can claim: messages a previous run left claimed
        // (`sending`) are due again. The notifier leaves this to us because the
        // pipeline claims replies too, and may do so before the notifier runs.
        let requeued = store
            .requeue_sending(options.clock.now())
            .await
            .context("requeuing messages a previous run left in flight")?;
        if requeued > 0 {
            tracing::warn!(
                requeued,
                "messages left in flight by a previous run are queued again"
            );
        }
        let waker = Waker::default();
        let (handoff, lane) = notifier::handoff(HANDOFF_MAX);
        let (inbox, pipeline_task) = pipeline::spawn(
            store.clone(),
            config.zone,
            waker.clone(),
            handoff,
            config.msisdn_policy,
            options.clock.clone(),
            options.pipeline,
        );
        let link = Link::start(link_config, inbox, ReceiptLog).context("starting the SMPP link")?;
        let notifier = Notifier::new(
            store.clone(),
            LinkSender(link.clone()),
            options.clock.clone(),
            options.notifier,
        )
        .with_waker(waker)
        .with_handoff(lane);
        let notifier_stop = CancellationToken::new();
        let notifier_task = tokio::spawn(notifier.run(notifier_stop.clone()));
        Ok(Gateway {
            store,
            link,
            simulator,
            notifier_stop,
            notifier_task,
            pipeline_task,
            simulator_stop,
            simulator_tasks,
            checkpoint_stop,
            checkpoint_task,
        })
    }

    /// Stops in order: sends in flight finish, the link unbinds after its last
    /// MO is handled and acknowledged, the pipeline drains, then the simulator
    /// and storage close.
    pub async fn shutdown(self) {
        self.notifier_stop.cancel();
        match self.notifier_task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the notifier stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "the notifier task failed"),
        }
        self.link.shutdown().await;
        // The link held the last MO handler: the pipeline ends once it is dropped.
        drop(self.link);
        if let Err(e) = self.pipeline_task.await {
            tracing::warn!(error = %e, "the MO pipeline task failed");
        }
        self.simulator_stop.cancel();
        self.simulator_tasks.close();
        self.simulator_tasks.wait().await;
        self.checkpoint_stop.cancel();
        let _ = self.checkpoint_task.await;
        self.store.close().await;
    }
}

async fn start_simulator(
    config: &Config,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) -> anyhow::Result<EmbeddedSimulator> {
    let smpp = TcpListener::bind(config.sim_smpp)
        .await
        .with_context(|| format!("listening for SMPP on {}", config.sim_smpp))?;
    let http = TcpListener::bind(config.sim_http)
        .await
        .with_context(|| format!("listening for the simulator's HTTP on {}", config.sim_http))?;
    let smpp_addr = smpp.local_addr()?;
    let http_addr = http.local_addr()?;
    let sim = simulator::Simulator::new(simulator::Config::default())
        .context("configuring the bundled simulator")?;
    let (a, b) = (sim.clone(), sim.clone());
    let (stop_a, stop_b) = (stop.clone(), stop.clone());
    tasks.spawn(async move {
        if let Err(e) = a.serve_smpp(smpp, stop_a).await {
            tracing::error!(error = %e, "the bundled simulator's SMPP server stopped");
        }
    });
    tasks.spawn(async move {
        if let Err(e) = b.serve_http(http, stop_b).await {
            tracing::error!(error = %e, "the bundled simulator's HTTP server stopped");
        }
    });
    Ok(EmbeddedSimulator {
        simulator: sim,
        smpp_addr,
        http_addr,
    })
}
