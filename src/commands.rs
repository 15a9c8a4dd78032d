//! What each `checkin` subcommand does, on a store opened from the configuration.
//! One-shot commands print one JSON line on stdout, so scripts can read them.

use std::time::Duration;

use anyhow::Context;
use checkin_core::store::{NewOrganization, NewPremises};
use checkin_core::{NumberPlan, PhoneVault, Store};
use serde_json::json;

use checkin::config::Config;
use checkin::gateway::{Gateway, GatewayOptions};

/// How long `serve` waits for the first bind before saying it is not bound.
const LINK_BIND_WAIT: Duration = Duration::from_secs(10);

/// Opens (and migrates) the configured store.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let keys = config
        .load_keys()
        .context("loading the phone-number keys")?;
    Store::open(
        &config.database_url,
        PhoneVault::new(&keys),
        config.store.clone(),
    )
    .await
    .with_context(|| format!("opening the database {}", redact_url(&config.database_url)))
}

/// The URL without a password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:…@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHECKIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub async fn serve(config: &Config) -> anyhow::Result<()> {
    init_logging();
    // Listening before anything starts: a SIGTERM during start-up (or the
    // moment after) stops the service gracefully instead of killing it.
    let mut stop = std::pin::pin!(shutdown_signal());
    let options = GatewayOptions {
        purge: true,
        ..GatewayOptions::from_config(config)
    };
    let gateway = Gateway::start(config, options).await?;
    tracing::info!(
        backend = ?gateway.store.backend(),
        database = %redact_url(&config.database_url),
        time_zone = %config.zone.0,
        allow_international = config.msisdn_policy.allow_international,
        send_rate = config.send_rate.get(),
        "storage ready, migrations applied"
    );
    let smsc = match (config.operators.first(), &gateway.simulator) {
        (Some(operator), _) => format!(
            "operator {}'s SMSC at {}:{} (system_id {})",
            operator.name, operator.link.host, operator.link.port, operator.link.system_id
        ),
        (None, Some(sim)) => format!(
            "the bundled simulator (SMPP {}, no operator configured)\n  \
             virtual phone: http://{}/  (text ВХОД*<code> to 7377 there)",
            sim.smpp_addr, sim.http_addr
        ),
        (None, None) => "nothing (no SMSC)".to_owned(),
    };
    eprintln!(
        "checkin is running.\n  web: http://{}/v/<code>  (the poster's QR; the guard checks /c/<token>)\n  \
         database: {}\n  data folder: {}\n  SMS: {}\n\
         Register premises with `checkin org create` and `checkin premises add` \
         (see README.md). Ctrl-C stops.",
        gateway.web_addr,
        redact_url(&config.database_url),
        config.data_dir.display(),
        smsc,
    );
    let first_bind = tokio::time::timeout(LINK_BIND_WAIT, gateway.link.wait_bound(1));
    let stopping = tokio::select! {
        bound = first_bind => {
            if !matches!(bound, Ok(true)) {
                tracing::warn!("the SMPP link is not bound yet; it keeps retrying");
            }
            false
        }
        _ = &mut stop => true,
    };
    if !stopping {
        stop.await;
    }
    tracing::info!(
        timeout_ms = config.shutdown_timeout.as_millis() as u64,
        "shutting down"
    );
    gateway.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM: both handlers are installed by this call (not at the
/// first poll), so a signal arriving before the returned future is awaited
/// is kept, not fatal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let ctrl_c = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let wait = |signal: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, signal = name, "cannot listen for the signal");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = wait(ctrl_c, "SIGINT") => {},
            _ = wait(terminate, "SIGTERM") => {},
        }
    }
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    print_json(
        json!({ "migrated": true, "backend": format!("{:?}", store.backend()).to_lowercase() }),
    );
    store.close().await;
    Ok(())
}

pub async fn purge(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let report = store.purge(chrono::Utc::now()).await?;
    print_json(json!({
        "checkins": report.checkins,
        "cases": report.cases,
        "messages": report.messages,
        "routes": report.routes,
    }));
    store.close().await;
    Ok(())
}

pub async fn org_create(
    config: &Config,
    name: String,
    email: String,
    password: Option<String>,
) -> anyhow::Result<()> {
    // The cabinet's sign-up rule holds for an administrator too.
    if let Some(password) = password.as_deref().filter(|p| !p.is_empty()) {
        checkin_core::store::check_password(password).context("the cabinet password")?;
    }
    let store = open_store(config).await?;
    let created = store
        .orgs()
        .create_org(
            &NewOrganization {
                name,
                email,
                password,
            },
            chrono::Utc::now(),
        )
        .await
        .context("creating the organization")?;
    print_json(json!({ "id": created.organization.id, "api_token": created.api_token }));
    store.close().await;
    Ok(())
}

pub async fn premises_add(
    config: &Config,
    new: NewPremises,
    sms_label: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let premises = store
        .orgs()
        .add_premises_labelled(&new, sms_label.as_deref(), chrono::Utc::now())
        .await
        .context("adding the premises")?;
    print_json(json!({ "id": premises.id, "code": premises.code.to_string() }));
    store.close().await;
    Ok(())
}

/// `checkin premises label --id ID [--sms-label L]`: the SMS name set (or
/// cleared), and the confirmation a visitor now gets.
pub async fn premises_label(
    config: &Config,
    id: i64,
    sms_label: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let premises = store
        .orgs()
        .set_sms_label(None, id, sms_label.as_deref())
        .await
        .context("setting the SMS name")?
        .with_context(|| format!("no premises {id}"))?;
    let confirmation =
        checkin_core::texts::confirmation(&premises, chrono::Utc::now(), &config.zone);
    print_json(json!({
        "id": premises.id,
        "sms_label": premises.sms_label,
        "confirmation": confirmation,
    }));
    store.close().await;
    Ok(())
}

pub async fn authority_create(config: &Config, name: String) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let (id, token) = store
        .orgs()
        .create_authority(&name, chrono::Utc::now())
        .await
        .context("creating the authority")?;
    print_json(json!({ "id": id, "token": token }));
    store.close().await;
    Ok(())
}

/// `checkin authority user add`: a person of the authority's cabinet.
pub async fn authority_user_add(
    config: &Config,
    authority: i64,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let id = store
        .authority()
        .add_user(authority, email, password, chrono::Utc::now())
        .await
        .context("adding the authority's user")?;
    print_json(json!({
        "id": id,
        "authority": authority,
        "email": email.trim().to_lowercase(),
    }));
    store.close().await;
    Ok(())
}

pub async fn cases_import(config: &Config, args: &crate::import::ImportArgs) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let summary = crate::import::import(&store, args).await;
    store.close().await;
    print_json(summary?);
    Ok(())
}

/// `checkin routes import FILE`: the numbering plan replaced by the file's,
/// or, if any line is bad, each bad line on stderr and nothing changed.
pub async fn routes_import(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the numbering plan {}", file.display()))?;
    let plan = match NumberPlan::parse_csv(&text) {
        Ok(plan) => plan,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}:{}: {}", file.display(), e.line, e.reason);
            }
            anyhow::bail!(
                "{}: {} bad line(s); nothing imported",
                file.display(),
                errors.len()
            );
        }
    };
    let store = open_store(config).await?;
    let imported = store.routes().import_plan(&plan, chrono::Utc::now()).await;
    store.close().await;
    let ranges = imported?;
    let operators: serde_json::Map<String, serde_json::Value> = plan
        .ranges_per_operator()
        .into_iter()
        .map(|(operator, n)| (operator.as_str().to_owned(), n.into()))
        .collect();
    print_json(json!({ "ranges": ranges, "operators": operators }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://checkin:s3cret@db.example:5432/checkin"),
            "postgres://checkin:…@db.example:5432/checkin"
        );
        assert_eq!(redact_url("sqlite://./x.sqlite"), "sqlite://./x.sqlite");
    }
}
