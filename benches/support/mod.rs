//! What the whole-gateway benches (`e2e.rs`, `ussd.rs`) share: the
//! operator's SMSC (the simulator on port 0), the protocol-only ceiling's
//! ESMEs, and a real `checkin` process with one premises, stopped like an
//! operator stops it.

#![allow(dead_code)] // each bench uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use simulator::esme::{Esme, EsmeOptions};
use simulator::Simulator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `deliver_sm` the simulator keeps outstanding per bind (the SMSC-side
/// window), for the ceiling and the gateway alike. Operators' SMSCs allow
/// 10 to 100+.
pub const SMSC_WINDOW: usize = 100;

/// The simulator serving SMPP on a fresh port, until the token is cancelled.
pub async fn simulator() -> (Simulator, u16, CancellationToken) {
    let token = CancellationToken::new();
    let mut config = simulator::Config::default();
    config.limits.outbound_window_max = SMSC_WINDOW;
    let sim = Simulator::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));
    (sim, port, token)
}

/// `binds` of the simulator's own ESME, answering every MO with a reply and
/// storing nothing: the protocol-only ceiling's far end. Bound when this
/// returns; kept alive by the returned handles.
pub async fn ceiling_esmes(
    sim: &Simulator,
    port: u16,
    binds: usize,
    token: &CancellationToken,
) -> Vec<Esme> {
    let mut esmes = Vec::new();
    for _ in 0..binds {
        let options = EsmeOptions {
            reply_to_mo: true,
            keep_delivers: false,
            ..EsmeOptions::default()
        };
        esmes.push(Esme::connect(("127.0.0.1", port), options).await.unwrap());
    }
    assert!(sim.wait_for_receivers(binds, token).await);
    esmes
}

/// The `checkin` binary on `data` with `config`.
/// `CHECKIN_BENCH_BIN` runs another build (an A/B comparison of two commits).
pub fn checkin(data: &Path, config: &Path) -> Command {
    let bin = std::env::var("CHECKIN_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_checkin").into());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SEND_RATE", "1000000")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null());
    cmd
}

/// A data folder and configuration for a gateway bound to the simulator on
/// `port` with `binds` binds, and one premises registered through the CLI.
pub struct Prepared {
    _root: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    /// The premises' code, `123-456-789`.
    pub code: String,
}

impl Prepared {
    /// On `database_url` (None: SQLite in the data folder). The link's
    /// defaults but for the binds and the MT side: replies are not paced by
    /// a contract (the send rate is not what is measured).
    pub fn new(port: u16, binds: usize, database_url: Option<&str>) -> Prepared {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let config = root.path().join("checkin.toml");
        let mut toml = String::new();
        if let Some(url) = database_url {
            toml.push_str(&format!("database_url = {url:?}\n"));
        }
        toml.push_str(&format!(
            "[smsc]\nhost = \"127.0.0.1\"\nport = {port}\nsystem_id = \"checkin\"\n\
             password = \"checkin\"\nwindow_max = 100\nsegments_per_second = 0\n\
             binds = {binds}\n"
        ));
        std::fs::write(&config, toml).unwrap();
        let run = |args: &[&str]| -> serde_json::Value {
            let out = checkin(&data, &config).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let org = run(&[
            "org",
            "create",
            "--name",
            "Bench",
            "--email",
            "bench@example.ru",
        ]);
        let premises = run(&[
            "premises",
            "add",
            "--org",
            &org["id"].to_string(),
            "--address",
            "ул. Тверская, 13",
        ]);
        let code = premises["code"].as_str().unwrap().to_owned();
        Prepared {
            _root: root,
            data,
            config,
            code,
        }
    }

    /// Starts the gateway. `CHECKIN_BENCH_LOG=<file>` keeps its log
    /// (`CHECKIN_LOG` passed on).
    pub fn spawn(&self) -> Child {
        let stderr = match std::env::var_os("CHECKIN_BENCH_LOG") {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let mut gateway = checkin(&self.data, &self.config);
        if let Ok(filter) = std::env::var("CHECKIN_LOG") {
            gateway.env("CHECKIN_LOG", filter);
        }
        gateway
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }
}

/// Stops the gateway as an operator does (SIGINT) and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
