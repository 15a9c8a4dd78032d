//! The configuration as the `checkin` binary reads it: the layers' order
//! (file < `CHECKIN_*` < flag) and a mistaken operator section refused at
//! start, before anything is opened or bound. The keys themselves are held
//! to `docs/configuration.md` by `src/config/tests.rs`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `checkin` with `args` and `env` in a clean environment (but `PATH`), in
/// `dir`, killed if it runs past `limit`.
fn checkin(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_checkin"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "checkin {args:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    // ./checkin.toml is read from the working directory.
    std::fs::write(
        dir.path().join("checkin.toml"),
        "time_zone = \"Nowhere/File\"\n",
    )
    .unwrap();
    let migrate = ["migrate"];
    let file_only = checkin(dir.path(), &migrate, &[], LIMIT);
    assert!(!file_only.status.success());
    assert!(
        stderr(&file_only).contains("Nowhere/File"),
        "{}",
        stderr(&file_only)
    );
    let env = [("CHECKIN_TIME_ZONE", "Europe/Moscow")];
    let env_over_file = checkin(dir.path(), &migrate, &env, LIMIT);
    assert!(env_over_file.status.success(), "{}", stderr(&env_over_file));
    let flag_over_env = checkin(
        dir.path(),
        &["--time-zone", "Nowhere/Flag", "migrate"],
        &env,
        LIMIT,
    );
    assert!(!flag_over_env.status.success());
    assert!(
        stderr(&flag_over_env).contains("time_zone: unknown time zone \"Nowhere/Flag\""),
        "{}",
        stderr(&flag_over_env)
    );
}

#[test]
fn a_mistaken_operator_stops_serve_before_anything_opens_or_binds() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("operators.toml");
    std::fs::write(
        &config,
        "[[operator]]\nname = \"mts\"\nhost = \"127.0.0.1\"\nsystem_id = \"s\"\npassword = \"p\"\n\
         [[operator]]\nname = \"beeline\"\nhost = \"127.0.0.1\"\nsystem_id = \"s\"\n\
         pasword = \"p\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let serve = checkin(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "serve",
        ],
        &[("CHECKIN_DATA_DIR", data.to_str().unwrap())],
        LIMIT,
    );
    assert!(!serve.status.success());
    let shown = stderr(&serve);
    assert!(
        shown.contains(r#"operator "beeline": unknown key "pasword""#),
        "{shown}"
    );
    assert!(!data.exists(), "nothing was opened: {shown}");
    // The credential the typo left out, once the typo is gone.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("pasword = \"p\"\n", ""),
    )
    .unwrap();
    let serve = checkin(
        dir.path(),
        &["--config", config.to_str().unwrap(), "serve"],
        &[("CHECKIN_DATA_DIR", data.to_str().unwrap())],
        LIMIT,
    );
    assert!(!serve.status.success());
    let shown = stderr(&serve);
    assert!(
        shown.contains(r#"operator "beeline": password is required"#),
        "{shown}"
    );
    assert!(!data.exists(), "nothing was opened: {shown}");
}
