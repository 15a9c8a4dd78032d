//! The `simulator` binary: runs the SMSC simulator (SMPP + control API), or
//! the MO load generator against an in-process simulator.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use simulator::{
    esme::{Esme, EsmeOptions},
    load::{self, LoadConfig},
    network, Account, Config, MessageIdFormat, Network, Simulator,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// SMSC simulator: an SMPP 3.4 server with a control API and virtual phone.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the SMPP server.
    #[arg(
        long,
        env = "SIMULATOR_SMPP",
        default_value = "127.0.0.1:2775",
        global = true
    )]
    smpp: SocketAddr,
    /// Address of the control API and virtual phone.
    #[arg(
        long,
        env = "SIMULATOR_HTTP",
        default_value = "127.0.0.1:2776",
        global = true
    )]
    http: SocketAddr,
    /// Account allowed to bind, SYSTEM_ID:PASSWORD; repeatable. Default checkin:checkin.
    #[arg(long = "account", value_name = "SYSTEM_ID:PASSWORD", global = true)]
    accounts: Vec<Account>,
    /// TOML configuration file (see README); flags override it.
    #[arg(long, env = "SIMULATOR_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Write every PDU as a JSON line to this file.
    #[arg(long, env = "SIMULATOR_JOURNAL", global = true)]
    journal: Option<PathBuf>,
    /// Message id format: hex or decimal.
    #[arg(long, value_parser = parse_id_format, global = true)]
    message_id_format: Option<MessageIdFormat>,
    /// Seed of the fault profile's random draws.
    #[arg(long, global = true)]
    seed: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inject MO messages at a target rate and report latencies.
    Load {
        /// MO per second.
        #[arg(long)]
        rate: f64,
        /// How long, e.g. 30s, 2m, 500ms (plain numbers are seconds).
        #[arg(long, value_parser = parse_duration)]
        duration: Duration,
        /// Distinct sender numbers.
        #[arg(long, default_value_t = 1000)]
        phones: usize,
        /// Text of every MO.
        #[arg(long, default_value = "ВХОД*123-456-789")]
        text: String,
        /// MOs in flight at most.
        #[arg(long, default_value_t = 1000)]
        inflight_max: usize,
        /// Time to wait for an ESME to bind before starting.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        bind_wait: Duration,
        /// Start an in-process ESME that answers every MO with "OK"
        /// (a self-test without the gateway).
        #[arg(long)]
        self_esme: bool,
        /// Dial this USSD string (one-shot, e.g. `*7377*123456789#`)
        /// instead of sending MO; reports dial → screen latencies.
        #[arg(long, value_name = "DIAL")]
        ussd: Option<String>,
        /// Operator profile of the dials (default: the configured one).
        #[arg(long, requires = "ussd")]
        ussd_profile: Option<String>,
        /// With `[[operator]]` sections: spread the load over these
        /// operators (comma-separated names, or `all`); each gets an equal
        /// share of the rate and phones numbered from its ranges. Default:
        /// the first operator.
        #[arg(long, value_delimiter = ',', conflicts_with = "ussd")]
        operators: Vec<String>,
    },
}

fn parse_id_format(s: &str) -> Result<MessageIdFormat, String> {
    match s {
        "hex" => Ok(MessageIdFormat::Hex),
        "decimal" => Ok(MessageIdFormat::Decimal),
        _ => Err("expected hex or decimal".into()),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn build_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Config::default(),
    };
    if !cli.accounts.is_empty() {
        config.accounts = cli.accounts.clone();
    }
    if let Some(journal) = &cli.journal {
        config.journal_path = Some(journal.clone());
    }
    if let Some(format) = cli.message_id_format {
        config.message_id_format = format;
    }
    if cli.seed.is_some() {
        config.faults.seed = cli.seed;
        for faults in config
            .operators
            .iter_mut()
            .filter_map(|o| o.faults.as_mut())
        {
            faults.seed = cli.seed;
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rusmpp=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let config = build_config(&cli)?;
    if !config.operators.is_empty() {
        return run_network(cli, config).await;
    }
    let sim = Simulator::new(config).context("starting the simulator")?;
    let shutdown = CancellationToken::new();
    let smpp = bind(cli.smpp).await?;
    let http = bind(cli.http).await?;
    let smpp_addr = smpp.local_addr().context("smpp address")?;
    let http_addr = http.local_addr().context("http address")?;
    tracing::info!(smpp = %smpp_addr, http = %http_addr, "simulator listening");
    let smpp_task = tokio::spawn(sim.clone().serve_smpp(smpp, shutdown.clone()));
    let http_task = tokio::spawn(sim.clone().serve_http(http, shutdown.clone()));
    cancel_on_ctrl_c(&shutdown);

    match cli.command {
        None => shutdown.cancelled().await,
        Some(Command::Load {
            rate,
            duration,
            phones,
            text,
            inflight_max,
            bind_wait,
            self_esme,
            ussd,
            ussd_profile,
            operators,
        }) => {
            anyhow::ensure!(
                operators
                    .iter()
                    .all(|o| o == "all" || o == network::DEFAULT_OPERATOR),
                "--operators names operators of [[operator]] sections; the configuration has none"
            );
            let _esme = if self_esme {
                let options = EsmeOptions {
                    reply_to_mo: true,
                    system_id: sim.config().accounts[0].system_id.clone(),
                    password: sim.config().accounts[0].password.clone(),
                    ..EsmeOptions::default()
                };
                Some(
                    Esme::connect(smpp_addr, options)
                        .await
                        .context("starting the in-process esme")?,
                )
            } else {
                None
            };
            eprintln!("waiting up to {bind_wait:?} for an ESME to bind to {smpp_addr} ...");
            let bound = tokio::time::timeout(bind_wait, sim.wait_for_receivers(1, &shutdown)).await;
            anyhow::ensure!(
                matches!(bound, Ok(true)),
                "no ESME bound as receiver or transceiver"
            );
            if let Some(dial) = ussd {
                let config = load::UssdLoadConfig {
                    rate_per_s: rate,
                    duration,
                    phones,
                    dial,
                    profile: ussd_profile,
                    inflight_max,
                };
                let report = load::run_ussd(&sim, config, &shutdown).await;
                eprintln!(
                    "dialled {} in {:.1}s: {:.1}/s achieved (target {rate}/s); completed {} ({:.1}/s) questions {} failed {} skipped {}",
                    report.sent, report.elapsed_s, report.achieved_rate_per_s, report.completed,
                    report.completed_per_s, report.questions, report.failed, report.skipped
                );
                let l = &report.screen_latency;
                eprintln!(
                    "dial -> screen ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
                );
                println!("{}", serde_json::to_string(&report)?);
                shutdown.cancel();
                smpp_task.await.context("smpp server task")??;
                http_task.await.context("http server task")??;
                return Ok(());
            }
            let config = LoadConfig {
                rate_per_s: rate,
                duration,
                phones,
                text,
                inflight_max,
                progress: true,
                ..LoadConfig::default()
            };
            let report = load::run(&sim, config, &shutdown).await;
            eprintln!(
                "sent {} in {:.1}s: {:.1} MO/s achieved (target {rate}/s); delivered {} failed {} replies {}",
                report.sent, report.elapsed_s, report.achieved_rate_per_s, report.delivered, report.failed, report.replies
            );
            eprintln!(
                "MO -> deliver_sm_resp ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                report.deliver_latency.p50_ms,
                report.deliver_latency.p90_ms,
                report.deliver_latency.p99_ms,
                report.deliver_latency.max_ms
            );
            eprintln!(
                "MO -> reply submit_sm ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                report.reply_latency.p50_ms,
                report.reply_latency.p90_ms,
                report.reply_latency.p99_ms,
                report.reply_latency.max_ms
            );
            println!("{}", serde_json::to_string(&report)?);
            shutdown.cancel();
        }
    }
    smpp_task.await.context("smpp server task")??;
    http_task.await.context("http server task")??;
    Ok(())
}

/// Runs several operators (`[[operator]]`): one SMPP server each, one
/// control API; `load` spreads over the operators asked for.
async fn run_network(cli: Cli, config: Config) -> anyhow::Result<()> {
    let net = Network::new(config, cli.smpp).context("starting the simulator")?;
    let shutdown = CancellationToken::new();
    let listeners = net.bind_smpp().await.context("binding the smpp servers")?;
    let http = bind(cli.http).await?;
    let http_addr = http.local_addr().context("http address")?;
    for name in net.names() {
        if let Some(smpp) = net.smpp_addr(&name) {
            tracing::info!(operator = %name, smpp = %smpp, "operator listening");
        }
    }
    tracing::info!(http = %http_addr, operators = net.names().len(), "simulator listening");
    let smpp_task = tokio::spawn(net.clone().serve_smpp(listeners, shutdown.clone()));
    let http_task = tokio::spawn(net.clone().serve_http(http, shutdown.clone()));
    cancel_on_ctrl_c(&shutdown);
    match cli.command {
        None => shutdown.cancelled().await,
        Some(Command::Load {
            rate,
            duration,
            phones,
            text,
            inflight_max,
            bind_wait,
            self_esme,
            ussd,
            operators,
            ..
        }) => {
            anyhow::ensure!(
                ussd.is_none(),
                "load --ussd does not run over [[operator]] sections yet"
            );
            let names = match operators.as_slice() {
                [] => net.names().into_iter().take(1).collect(),
                [all] if all == "all" => net.names(),
                names => {
                    for name in names {
                        anyhow::ensure!(
                            net.simulator(name).is_some(),
                            "--operators: no operator {name:?} (have {})",
                            net.names().join(", ")
                        );
                    }
                    names.to_vec()
                }
            };
            let mut esmes = Vec::new();
            for name in &names {
                let (Some(sim), Some(addr)) = (net.simulator(name), net.smpp_addr(name)) else {
                    continue;
                };
                if self_esme {
                    let options = EsmeOptions {
                        reply_to_mo: true,
                        system_id: sim.config().accounts[0].system_id.clone(),
                        password: sim.config().accounts[0].password.clone(),
                        ..EsmeOptions::default()
                    };
                    esmes.push(
                        Esme::connect(addr, options)
                            .await
                            .with_context(|| format!("starting the esme of operator {name}"))?,
                    );
                }
                eprintln!(
                    "waiting up to {bind_wait:?} for an ESME to bind to {name} at {addr} ..."
                );
                let bound =
                    tokio::time::timeout(bind_wait, sim.wait_for_receivers(1, &shutdown)).await;
                anyhow::ensure!(
                    matches!(bound, Ok(true)),
                    "no ESME bound as receiver or transceiver to operator {name}"
                );
            }
            let config = LoadConfig {
                rate_per_s: rate,
                duration,
                phones,
                text,
                inflight_max,
                ..LoadConfig::default()
            };
            let report = load::run_spread(&net, &names, config, &shutdown).await;
            for (name, r) in &report.operators {
                eprintln!(
                    "operator {name}: sent {} ({:.1} MO/s) delivered {} failed {} replies {}; MO -> deliver_sm_resp p99 {:.2} ms",
                    r.sent, r.achieved_rate_per_s, r.delivered, r.failed, r.replies, r.deliver_latency.p99_ms
                );
            }
            let t = &report.total;
            eprintln!(
                "total: sent {} in {:.1}s: {:.1} MO/s achieved (target {rate}/s); delivered {} failed {} replies {}",
                t.sent, t.elapsed_s, t.achieved_rate_per_s, t.delivered, t.failed, t.replies
            );
            eprintln!(
                "MO -> deliver_sm_resp ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                t.deliver_latency.p50_ms,
                t.deliver_latency.p90_ms,
                t.deliver_latency.p99_ms,
                t.deliver_latency.max_ms
            );
            println!("{}", serde_json::to_string(&report)?);
            shutdown.cancel();
        }
    }
    smpp_task.await.context("smpp server task")??;
    http_task.await.context("http server task")??;
    Ok(())
}

/// Listens on `addr` (port 0 picks one).
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Cancels `shutdown` at Ctrl-C.
fn cancel_on_ctrl_c(shutdown: &CancellationToken) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("shutting down");
        }
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
