//! The `checkin` binary: command line, configuration and the wiring of the crates.
//! Thin on purpose: behaviour lives in the library crates.

mod commands;
mod import;

use anyhow::Context;
use checkin::config::{Config, Overrides};
use checkin_core::store::NewPremises;
use clap::{Parser, Subcommand};

/// Venue check-in and exposure alerts: SMS to 7377 (SMPP) and the poster's QR code.
#[derive(Debug, Parser)]
#[command(name = "checkin", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default when no command is given).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Delete check-ins, cases and messages older than the retention period.
    Purge,
    /// Organizations: the shops, bars and offices that register premises.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Premises: buildings and rooms with a code on the poster.
    #[command(subcommand)]
    Premises(PremisesCommand),
    /// Health authorities: submit confirmed cases.
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Confirmed cases: bulk upload.
    #[command(subcommand)]
    Cases(CasesCommand),
    /// Routes to operators: the numbering plan.
    #[command(subcommand)]
    Routes(RoutesCommand),
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Replace the numbering plan with a CSV file (header range,operator; a
    /// range is +7916 or +79030000000-+79030999999); prints
    /// {"ranges":N,"operators":{"mts":K,…}}. A file with a bad line is
    /// refused whole (each bad line on stderr) and nothing changes.
    Import {
        /// The CSV file (e.g. data/numbering-plan/ru-mobile.csv).
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CasesCommand {
    /// Record and match the cases of a CSV file (header
    /// phone,confirmed_at,contagious_from,contagious_to; times RFC 3339) and
    /// queue their alerts; prints a JSON summary, refused rows on stderr.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// The authority the cases are recorded for (from `checkin authority create`).
        #[arg(long)]
        authority: Option<i64>,
        /// Count who would be alerted; record and queue nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write every refused row (line, masked phone, reason) to this CSV.
        #[arg(long)]
        rejects: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization; prints {"id":…,"api_token":…} (the token is shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Password for the web cabinet (optional; at least 10 characters).
        #[arg(long, env = "CHECKIN_ORG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PremisesCommand {
    /// Register premises; prints {"id":…,"code":"123-456-789"}.
    Add {
        /// The organization's id (from `checkin org create`).
        #[arg(long)]
        org: i64,
        /// The address shown to visitors and in confirmations.
        #[arg(long)]
        address: String,
        /// Kind of premises, free text (магазин, бар, офис…).
        #[arg(long)]
        kind: Option<String>,
        /// How long a visit is assumed to last, for exposure matching [default: 60].
        #[arg(long)]
        stay_minutes: Option<u32>,
        /// Short name SMS texts use instead of the address (at most 25
        /// characters, so the confirmation is one SMS) [default: the address, shortened].
        #[arg(long)]
        sms_label: Option<String>,
    },
    /// Set or clear the SMS name of premises; prints {"id":…,"sms_label":…,"confirmation":…}.
    Label {
        /// The premises' id (from `checkin premises add`).
        #[arg(long)]
        id: i64,
        /// The short name (at most 25 characters); left out: cleared.
        #[arg(long)]
        sms_label: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuthorityCommand {
    /// Create a health authority; prints {"id":…,"token":…} (the token is shown once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// People of an authority who log in to its cabinet (`/authority/login`).
    #[command(subcommand)]
    User(AuthorityUserCommand),
}

#[derive(Debug, Subcommand)]
enum AuthorityUserCommand {
    /// Add a person; prints {"id":…,"authority":…,"email":…}. The password
    /// comes from --password or CHECKIN_AUTHORITY_PASSWORD.
    Add {
        #[arg(long)]
        authority: i64,
        #[arg(long)]
        email: String,
        #[arg(long, env = "CHECKIN_AUTHORITY_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// How long leftover tasks get once a command returned.
const RUNTIME_EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The async runtime's workers: one core fewer than the machine has (at
/// least one), since the SQLite writer is a thread of its own that wants a
/// core, and every extra worker that parks and wakes costs thread switches
/// (on 2 cores: 6.4 instead of 8.9 switches per check-in at 300 MO/s, the
/// same capacity; BENCHMARKS.md). tokio's `TOKIO_WORKER_THREADS` overrides.
fn runtime_workers() -> usize {
    if let Some(n) = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::resolve(&cli.overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_workers())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => commands::serve(&config).await,
            Command::Migrate => commands::migrate(&config).await,
            Command::Purge => commands::purge(&config).await,
            Command::Org(OrgCommand::Create {
                name,
                email,
                password,
            }) => commands::org_create(&config, name, email, password).await,
            Command::Premises(PremisesCommand::Add {
                org,
                address,
                kind,
                stay_minutes,
                sms_label,
            }) => {
                let new = NewPremises {
                    org_id: org,
                    address,
                    kind,
                    stay_minutes,
                };
                commands::premises_add(&config, new, sms_label).await
            }
            Command::Premises(PremisesCommand::Label { id, sms_label }) => {
                commands::premises_label(&config, id, sms_label).await
            }
            Command::Authority(AuthorityCommand::Create { name }) => {
                commands::authority_create(&config, name).await
            }
            Command::Authority(AuthorityCommand::User(AuthorityUserCommand::Add {
                authority,
                email,
                password,
            })) => commands::authority_user_add(&config, authority, &email, &password).await,
            Command::Cases(CasesCommand::Import {
                file,
                authority,
                dry_run,
                rejects,
            }) => {
                let args = import::ImportArgs {
                    file,
                    authority,
                    dry_run,
                    rejects,
                };
                commands::cases_import(&config, &args).await
            }
            Command::Routes(RoutesCommand::Import { file }) => {
                commands::routes_import(&config, &file).await
            }
        }
    });
    // Tasks a deadline-cut shutdown left behind must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_EXIT_GRACE);
    result
}
