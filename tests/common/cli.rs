//! The `checkin` binary run as a user runs it, for the CLI tests.

use std::path::Path;
use std::process::{Command, Output};

/// `checkin` with `args` on the data folder `data_dir` (a clean environment
/// but `PATH`; the working directory is the folder above it).
pub fn checkin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checkin"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data_dir)
        .current_dir(data_dir.parent().unwrap())
        .output()
        .unwrap()
}

/// The one JSON line a successful command prints.
pub fn json_line(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line expected, got {stdout:?}");
    serde_json::from_str(lines[0]).unwrap()
}

/// An organization and its premises at `address`, made with the CLI on
/// `data_dir`: the premises' code as printed (`123-456-789`).
pub fn premises_code(data_dir: &Path, address: &str) -> String {
    let org = json_line(&checkin(
        data_dir,
        &[
            "org",
            "create",
            "--name",
            "Кафе",
            "--email",
            "cafe@example.ru",
        ],
    ));
    let org_id = org["id"].as_i64().unwrap().to_string();
    let premises = json_line(&checkin(
        data_dir,
        &["premises", "add", "--org", &org_id, "--address", address],
    ));
    premises["code"].as_str().unwrap().to_owned()
}
