//! The `checkin` command line as operators and scripts use it: the real binary,
//! a fresh data folder, JSON lines on stdout.

mod common;

use common::cli::{checkin, json_line};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn org_and_premises_from_the_first_day() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");

    let org = json_line(&checkin(
        &data,
        &[
            "org",
            "create",
            "--name",
            "Кафе «Ромашка»",
            "--email",
            "owner@example.ru",
        ],
    ));
    let org_id = org["id"].as_i64().unwrap();
    assert_eq!(org["api_token"].as_str().unwrap().len(), 64);

    let premises = json_line(&checkin(
        &data,
        &[
            "premises",
            "add",
            "--org",
            &org_id.to_string(),
            "--address",
            "ул. Тверская, 13",
            "--kind",
            "кафе",
            "--stay-minutes",
            "90",
        ],
    ));
    let code = premises["code"].as_str().unwrap();
    let parsed = checkin_core::VenueCode::parse(code).unwrap();
    assert_eq!(parsed.to_string(), code, "shown as XXX-XXX-XXX");
    assert!(premises["id"].as_i64().unwrap() > 0);

    // The key file was generated privately, and the database exists.
    let keys = data.join("keys.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(data.join("checkin.sqlite").exists());

    let authority = json_line(&checkin(
        &data,
        &["authority", "create", "--name", "Роспотребнадзор"],
    ));
    assert_eq!(authority["token"].as_str().unwrap().len(), 64);

    let migrated = json_line(&checkin(&data, &["migrate"]));
    assert_eq!(migrated["backend"], "sqlite");
    let purged = json_line(&checkin(&data, &["purge"]));
    assert_eq!(purged["checkins"], 0);

    // Errors are clear and fail the command.
    let bad = checkin(
        &data,
        &["premises", "add", "--org", "424242", "--address", "x"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no organization 424242"));
    let dup = checkin(
        &data,
        &[
            "org",
            "create",
            "--name",
            "Другая",
            "--email",
            "OWNER@example.ru",
        ],
    );
    assert!(!dup.status.success());
}

/// `checkin serve` on `data` (its parent the working folder), stderr piped
/// for [`wait_until_running`]. Port 0 everywhere: the test must not need
/// the default ports free (a checkin already running here holds them).
fn serve_command(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SIM_SMPP", "127.0.0.1:0")
        .env("CHECKIN_SIM_HTTP", "127.0.0.1:0")
        .current_dir(data.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits until serve says it runs (it prints that after migrating), reading
/// its stderr on a thread so a hang fails the test instead of blocking it.
fn wait_until_running(child: &mut std::process::Child) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("checkin is running") {
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(stderr)) => panic!("serve stopped early:\n{stderr}"),
        Err(_) => panic!("serve did not start within 30 s"),
    }
}

#[test]
fn a_sigterm_while_the_smsc_is_still_unreachable_stops_serve_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // An operator's SMSC nobody answers at: serve keeps trying to bind.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut child = serve_command(&data)
        .env("CHECKIN_SMSC_HOST", "127.0.0.1")
        .env("CHECKIN_SMSC_PORT", dead_port.to_string())
        .env("CHECKIN_SMSC_SYSTEM_ID", "checkin")
        .env("CHECKIN_SMSC_PASSWORD", "checkin")
        .spawn()
        .unwrap();
    wait_until_running(&mut child);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = std::time::Instant::now();
    let exit = child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped {took:?} after SIGTERM"
    );
    assert!(
        exit.success(),
        "a SIGTERM before the first bind stops serve cleanly, not by the signal: {exit:?}"
    );
}

#[test]
fn serve_creates_the_database_and_stops_on_a_signal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut child = serve_command(&data).spawn().unwrap();
    wait_until_running(&mut child);
    assert!(data.join("checkin.sqlite").exists());
    // Another process using the same database meanwhile is fine.
    let purged = Command::new(env!("CARGO_BIN_EXE_checkin"))
        .env_clear()
        .env("CHECKIN_DATA_DIR", &data)
        .arg("purge")
        .output()
        .unwrap();
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve must keep running"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exits cleanly on Ctrl-C: {exit:?}");
}

#[test]
fn environment_and_flags_configure_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // An invalid time zone from the environment is reported, not ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_checkin"))
        .env_clear()
        .env("CHECKIN_DATA_DIR", &data)
        .env("CHECKIN_TIME_ZONE", "Moscow")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone"));
    // A config file is read; a flag beats it.
    let file = root.path().join("checkin.toml");
    std::fs::write(
        &file,
        format!("data_dir = {:?}\n", root.path().join("from-file")),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_checkin"))
        .env_clear()
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.path().join("from-file/checkin.sqlite").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_checkin"))
        .env_clear()
        .args(["--config", file.to_str().unwrap(), "--data-dir"])
        .arg(root.path().join("from-flag"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(root.path().join("from-flag/checkin.sqlite").exists());
}
