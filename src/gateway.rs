//! The running service as one tree of tasks: storage, the SMPP link (to the
//! operator, or to the bundled simulator started in-process when no `[smsc]`
//! is configured), the MO path, the sender (notifier), receipts, checkpoints
//! and the purge job, each registered as a [`Service`] on one `TaskTracker`
//! with its own child of one root `CancellationToken`, and stopped in the
//! order [`SHUTDOWN_ORDER`] writes down, within `shutdown_timeout_ms`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use checkin_core::{Clock, OperatorName, PhoneVault, Priority, SmsInbox, Store, SystemClock};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use notifier::{Notifier, NotifierConfig};
use smsc_link::{Link, LinkConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, OperatorConfig, SMSC_OPERATOR_NAME_DEFAULT};
use crate::operators::{self, OperatorLink, Plan, RoutedSender};
use crate::pipeline::{MoInbox, PipelineConfig};
use crate::segments::SegmentMeters;
use crate::sender::{self, LinkSender, ReceiptBook};
use crate::ussd::{MoRouter, Ussd};

/// How often the WAL is checkpointed in the background (SQLite).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// With background checkpoints, a commit checkpoints by itself only past this
/// many WAL pages (64 MiB): the bound should the background ones fall behind.
const AUTOCHECKPOINT_PAGES_MIN: u32 = 16 * 1024;
/// How often the retention job runs.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the outbox-depth gauge is refreshed (and the recorder's
/// histograms are tidied).
const METRICS_INTERVAL: Duration = Duration::from_secs(5);
/// The outbox-depth query counts at most this many rows per priority: a
/// deeper queue shows as this number, and the query's cost stays bounded.
pub const OUTBOX_DEPTH_COUNT_MAX: u64 = 100_000;
/// Gauge: outbox rows `pending` per priority (label `priority` = otp |
/// confirmation | alert), counted up to `OUTBOX_DEPTH_COUNT_MAX`.
pub const OUTBOX_DEPTH: &str = "checkin_outbox_depth";
/// Histogram buckets (seconds) of every latency: HTTP requests, SMPP round
/// trips, MO commits.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// After the shutdown deadline, how long storage gets to close.
const STORE_CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Every long-running part of the gateway. Web, metrics, exposure and USSD
/// have their place in the order already; they register when they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// The web server (visitor QR flow, cabinets, authority API).
    Web,
    /// USSD sessions.
    Ussd,
    /// The exposure job (cases → alerts).
    Exposure,
    /// The notifier: drains the outbox through the link.
    Sender,
    /// The SMPP link (a task that shuts it down when cancelled).
    Link,
    /// The MO committer.
    MoPath,
    /// Writes delivery receipts.
    Receipts,
    /// SQLite WAL checkpoints.
    Checkpoints,
    /// The hourly retention purge.
    Purge,
    /// Metrics exporter.
    Metrics,
    /// The bundled simulator (no `[smsc]`).
    Simulator,
    /// Re-reads the numbering plan when another process imported one.
    Routes,
}

/// One step of the shutdown: cancel these services and, when `join`, wait
/// for their tasks before the next step.
#[derive(Debug)]
pub struct Step {
    pub stop: &'static [Service],
    pub join: bool,
}

/// The shutdown order, written once.
///
/// 1. Producers from outside stop taking work.
/// 2. The sender starts nothing new; claimed-but-unsent messages go back to
///    `pending`. Its sends in flight end with the link (next step), so it is
///    not waited for yet.
/// 3. The link stops: waiting submits fail as never sent (→ `pending`),
///    written ones are settled within `response_timeout_ms` (or end
///    `Unknown`, → the outcome policy), the last MO is handled and
///    acknowledged, then it unbinds.
/// 4. The sender's outcomes are recorded.
/// 5. The MO path commits what it holds (later MO are answered with a
///    temporary error, so the SMSC redelivers).
/// 6. Receipts, background jobs and the simulator.
///
/// The whole runs within `shutdown_timeout_ms`; past it the gateway returns
/// anyway, and rows left `sending` are queued again at the next start.
pub const SHUTDOWN_ORDER: &[Step] = &[
    Step {
        stop: &[Service::Web, Service::Ussd, Service::Exposure],
        join: true,
    },
    Step {
        stop: &[Service::Sender],
        join: false,
    },
    Step {
        stop: &[Service::Link],
        join: true,
    },
    Step {
        stop: &[Service::Sender],
        join: true,
    },
    Step {
        stop: &[Service::MoPath],
        join: true,
    },
    Step {
        stop: &[
            Service::Receipts,
            Service::Checkpoints,
            Service::Purge,
            Service::Metrics,
            Service::Simulator,
            Service::Routes,
        ],
        join: true,
    },
];

/// The task tree: one tracker, one root token, a child token per service.
#[derive(Debug)]
struct Services {
    tracker: TaskTracker,
    root: CancellationToken,
    running: BTreeMap<Service, (CancellationToken, Vec<JoinHandle<()>>)>,
}

impl Services {
    fn new() -> Services {
        Services {
            tracker: TaskTracker::new(),
            root: CancellationToken::new(),
            running: BTreeMap::new(),
        }
    }

    /// The token `service`'s tasks stop on (made on first use).
    fn token(&mut self, service: Service) -> CancellationToken {
        let root = &self.root;
        self.running
            .entry(service)
            .or_insert_with(|| (root.child_token(), Vec::new()))
            .0
            .clone()
    }

    /// Registers a task of `service`: `task` gets the service's token.
    fn spawn<F, Fut>(&mut self, service: Service, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.token(service);
        let handle = self.tracker.spawn(task(token));
        if let Some((_, handles)) = self.running.get_mut(&service) {
            handles.push(handle);
        }
    }

    /// Runs [`SHUTDOWN_ORDER`]; then anything left (registered outside the
    /// order) is cancelled and joined.
    async fn stop_in_order(&mut self) {
        for step in SHUTDOWN_ORDER {
            for service in step.stop {
                if let Some((token, _)) = self.running.get(service) {
                    token.cancel();
                }
            }
            if step.join {
                for service in step.stop {
                    self.join(*service).await;
                }
            }
        }
        self.root.cancel();
        let left: Vec<Service> = self.running.keys().copied().collect();
        for service in left {
            self.join(service).await;
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    async fn join(&mut self, service: Service) {
        let Some((_, handles)) = self.running.get_mut(&service) else {
            return;
        };
        for handle in std::mem::take(handles) {
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, ?service, "a service's task failed");
            }
        }
    }
}

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

/// The retention job: every `PURGE_INTERVAL` (the first at start) until `stop`.
async fn purge(store: Store, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let mut every = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        let purged = tokio::select! {
            purged = store.purge(clock.now()) => purged,
            _ = stop.cancelled() => return,
        };
        match purged {
            Ok(report) => tracing::info!(?report, "retention purge done"),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; will retry"),
        }
    }
}

/// The process's Prometheus recorder, installed by the first gateway that
/// wants metrics; later ones (tests start several) share it. `None` when
/// another recorder was installed first.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = match PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS_S) {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: the latency buckets were refused");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: another recorder is installed");
                    None
                }
            }
        })
        .clone()
}

fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Otp => "otp",
        Priority::Confirmation => "confirmation",
        Priority::Alert => "alert",
    }
}

/// Every `METRICS_INTERVAL` until `stop`: the outbox-depth gauge from one
/// bounded query per priority, and the recorder's upkeep.
async fn metrics_upkeep(store: Store, handle: PrometheusHandle, stop: CancellationToken) {
    let outbox = store.outbox();
    let mut every = tokio::time::interval(METRICS_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        handle.run_upkeep();
        let depth = tokio::select! {
            depth = outbox.depth(OUTBOX_DEPTH_COUNT_MAX) => depth,
            _ = stop.cancelled() => return,
        };
        match depth {
            Ok(depth) => {
                for (priority, rows) in depth.by_priority() {
                    metrics::gauge!(OUTBOX_DEPTH, "priority" => priority_label(priority))
                        .set(rows as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "outbox depth not read; the next tick retries"),
        }
    }
}

/// The account the embedded simulator accepts and the link binds with.
const EMBEDDED_ACCOUNT: (&str, &str) = ("checkin", "checkin");

/// The link to the simulator the gateway started in-process.
fn embedded_link(embedded: &EmbeddedSimulator) -> LinkConfig {
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
    link
}

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
    /// The first operator's link (the only one with a single operator).
    pub link: Link,
    /// Every operator's link, in configuration order.
    pub links: Vec<(OperatorName, Link)>,
    /// `Some` when no `[smsc]` is configured.
    pub simulator: Option<EmbeddedSimulator>,
    /// Where the web (visitor pages, guard's check) listens.
    pub web_addr: SocketAddr,
    services: Services,
    shutdown_timeout: Duration,
}

/// What a gateway is started with besides the configuration (tests change these).
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub clock: Arc<dyn Clock>,
    pub pipeline: PipelineConfig,
    pub notifier: NotifierConfig,
    /// Run the retention purge (hourly, the first at start). `serve` does;
    /// the test harness does not.
    pub purge: bool,
    /// The bundled simulator's settings (when there is no `[smsc]`).
    pub simulator: simulator::Config,
    /// SMSC ids remembered for receipts (`sender::RECEIPT_IDS_MAX`).
    pub receipt_ids_max: usize,
    /// How often the numbering plan is re-read (`operators::PLAN_POLL_MS`).
    pub plan_poll: Duration,
}

impl GatewayOptions {
    pub fn from_config(config: &Config) -> GatewayOptions {
        GatewayOptions {
            clock: Arc::new(SystemClock),
            pipeline: PipelineConfig::default(),
            notifier: config
                .notifier
                .notifier_config(config.send_rate, &config.operators),
            purge: false,
            simulator: simulator::Config::default(),
            receipt_ids_max: sender::RECEIPT_IDS_MAX,
            plan_poll: Duration::from_millis(operators::PLAN_POLL_MS),
        }
    }
}

impl Gateway {
    /// Opens storage, starts the simulator if needed, and registers every
    /// service: link, MO path, sender, receipts, checkpoints, purge.
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
        // The web's port first: a taken port stops the start before anything runs.
        let web_listener = TcpListener::bind(config.http)
            .await
            .with_context(|| format!("listening for the web on {}", config.http))?;
        let web_addr = web_listener.local_addr()?;
        // Before the link starts: its sessions register their meters once.
        let metrics = if config.web.metrics {
            prometheus()
        } else {
            None
        };
        let mut services = Services::new();
        if let Some(handle) = &metrics {
            services.spawn(Service::Metrics, {
                let (store, handle) = (store.clone(), handle.clone());
                move |stop| metrics_upkeep(store, handle, stop)
            });
        }
        services.spawn(Service::Checkpoints, {
            let store = store.clone();
            move |stop| checkpoints(store, stop)
        });
        if options.purge {
            services.spawn(Service::Purge, {
                let (store, clock) = (store.clone(), options.clock.clone());
                move |stop| purge(store, clock, stop)
            });
        }

        let (specs, simulator) = if config.operators.is_empty() {
            let embedded =
                start_simulator(config, options.simulator.clone(), &mut services).await?;
            let operator = OperatorConfig {
                name: OperatorName::new(SMSC_OPERATOR_NAME_DEFAULT).expect("a valid name"),
                link: embedded_link(&embedded),
                ranges: Vec::new(),
                ussd: config.simulator_ussd.clone(),
            };
            (vec![operator], Some(embedded))
        } else {
            (config.operators.clone(), None)
        };

        // No order to keep here: until the notifier has subscribed (below,
        // recovering what a previous run left `sending`), the outbox has no
        // room and the inbox claims nothing; its replies wait `pending`.
        let (inbox, committer) = SmsInbox::new(
            store.clone(),
            config.zone,
            options.clock.clone(),
            options.pipeline,
        );
        services.spawn(Service::MoPath, move |stop| {
            committer.run(stop.cancelled_owned())
        });
        let first_book = Arc::new(ReceiptBook::with_ids_max(options.receipt_ids_max));
        let (receipts, receipt_writer) =
            sender::receipts(store.clone(), options.clock.clone(), first_book.clone());
        let receipt_states = receipts.states();
        services.spawn(Service::Receipts, move |stop| receipt_writer.run(stop));
        let link_stop = services.token(Service::Link);
        let configured_ranges: Vec<_> = specs
            .iter()
            .flat_map(|s| s.ranges.iter().map(|r| (r.clone(), s.name.clone())))
            .collect();
        let mut operators = Vec::with_capacity(specs.len());
        for (position, spec) in specs.into_iter().enumerate() {
            let ussd = Arc::new(Ussd::new(
                spec.ussd,
                config.zone,
                inbox.clone(),
                config.msisdn_policy,
                options.clock.clone(),
                spec.name.clone(),
            ));
            services.spawn(Service::Ussd, {
                let ussd = ussd.clone();
                move |stop| ussd.sweep_until(stop)
            });
            let router = MoRouter {
                sms: MoInbox::new(
                    inbox.clone(),
                    config.msisdn_policy,
                    options.clock.clone(),
                    spec.name.clone(),
                ),
                ussd,
            };
            let book = match position {
                0 => first_book.clone(),
                _ => Arc::new(ReceiptBook::with_ids_max(options.receipt_ids_max)),
            };
            let id_prefix = operators::id_prefix(position, &spec.name);
            let recorder = receipts.for_operator(book.clone(), id_prefix.clone());
            // A message in doubt is resent only after its receipt had its chance.
            let receipt_grace = Duration::from_millis(spec.link.receipt_hold_ms);
            let response_timeout = Duration::from_millis(spec.link.response_timeout_ms);
            let mut link_config = spec.link;
            link_config.operator = spec.name.to_string();
            let link = match Link::start(link_config, router, recorder) {
                Ok(link) => link,
                Err(e) => {
                    services.stop_in_order().await;
                    return Err(e).with_context(|| {
                        format!("starting the SMPP link of operator {}", spec.name)
                    });
                }
            };
            services.spawn(Service::Link, {
                let link = link.clone();
                move |stop| async move {
                    stop.cancelled().await;
                    link.shutdown().await;
                }
            });
            operators.push(OperatorLink {
                sender: LinkSender {
                    link: link.clone(),
                    book,
                    receipt_grace,
                    response_timeout,
                    stop: link_stop.clone(),
                    meters: SegmentMeters::register(spec.name.as_str()),
                    receipt_states: receipt_states.clone(),
                },
                name: spec.name,
                link,
                id_prefix,
            });
        }
        drop(receipts);
        let links: Vec<(OperatorName, Link)> = operators
            .iter()
            .map(|o| (o.name.clone(), o.link.clone()))
            .collect();
        let plan = Arc::new(Plan::new(configured_ranges));
        if let Err(e) = plan.refresh(&store).await {
            tracing::warn!(error = %e, "the numbering plan was not read; routes fall back to the default operator until it is");
        }
        services.spawn(Service::Routes, {
            let (plan, store) = (plan.clone(), store.clone());
            let every = options.plan_poll;
            move |stop| plan.keep_fresh(store, every, stop)
        });
        let notifier = Notifier::new(
            store.clone(),
            RoutedSender::new(operators, None, plan, store.clone(), options.clock.clone()),
            options.clock.clone(),
            options.notifier,
        );
        let notifier = match notifier.prepare().await {
            Ok(notifier) => notifier,
            Err(e) => {
                services.stop_in_order().await;
                return Err(e).context("requeuing messages a previous run left in flight");
            }
        };
        services.spawn(Service::Sender, move |stop| async move {
            if let Err(e) = notifier.run(stop).await {
                tracing::warn!(error = %e, "the notifier stopped with an error");
            }
        });
        let mut web_config = config.web.clone();
        if web_config.public_base_url.is_empty() {
            web_config.public_base_url = format!("http://{web_addr}");
        }
        let web_state = web::AppState::new(
            store.clone(),
            &keys,
            config.zone,
            options.clock.clone(),
            web_config,
        )
        .with_ops(web::Ops {
            readiness: Some(operators::readiness(&links)),
            metrics: metrics
                .map(|handle| -> web::MetricsRender { Arc::new(move || handle.render()) }),
        });
        services.spawn(Service::Web, move |stop| async move {
            if let Err(e) = web::serve(web_listener, web_state, stop).await {
                tracing::error!(error = %e, "the web server stopped");
            }
        });
        Ok(Gateway {
            store,
            link: links[0].1.clone(),
            links,
            simulator,
            web_addr,
            services,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// Stops every service in [`SHUTDOWN_ORDER`], then closes storage, within
    /// the configured `shutdown_timeout_ms`. Returns false when the deadline
    /// cut it short (the caller exits anyway; rows left `sending` are queued
    /// again at the next start, MO not acknowledged are redelivered).
    pub async fn shutdown(self) -> bool {
        let Gateway {
            store,
            link,
            simulator,
            mut services,
            shutdown_timeout,
            ..
        } = self;
        // The link's handle here is only for callers; the Link service stops it.
        drop(link);
        drop(simulator);
        let started = std::time::Instant::now();
        let closing = store.clone();
        let clean = tokio::time::timeout(shutdown_timeout, async {
            services.stop_in_order().await;
            store.close().await;
        })
        .await
        .is_ok();
        if clean {
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "stopped cleanly"
            );
        } else {
            services.root.cancel();
            let _ = tokio::time::timeout(STORE_CLOSE_GRACE, closing.close()).await;
            tracing::warn!(
                timeout_ms = shutdown_timeout.as_millis() as u64,
                "shutdown deadline passed; stopping anyway (messages left in flight are queued again at the next start)"
            );
        }
        clean
    }
}

async fn start_simulator(
    config: &Config,
    settings: simulator::Config,
    services: &mut Services,
) -> anyhow::Result<EmbeddedSimulator> {
    let smpp = TcpListener::bind(config.sim_smpp)
        .await
        .with_context(|| format!("listening for SMPP on {}", config.sim_smpp))?;
    let http = TcpListener::bind(config.sim_http)
        .await
        .with_context(|| format!("listening for the simulator's HTTP on {}", config.sim_http))?;
    let smpp_addr = smpp.local_addr()?;
    let http_addr = http.local_addr()?;
    let sim = simulator::Simulator::new(settings).context("configuring the bundled simulator")?;
    let (a, b) = (sim.clone(), sim.clone());
    services.spawn(Service::Simulator, move |stop| async move {
        if let Err(e) = a.serve_smpp(smpp, stop).await {
            tracing::error!(error = %e, "the bundled simulator's SMPP server stopped");
        }
    });
    services.spawn(Service::Simulator, move |stop| async move {
        if let Err(e) = b.serve_http(http, stop).await {
            tracing::error!(error = %e, "the bundled simulator's HTTP server stopped");
        }
    });
    Ok(EmbeddedSimulator {
        simulator: sim,
        smpp_addr,
        http_addr,
    })
}
