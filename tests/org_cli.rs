//! `checkin org create` with a cabinet password: the sign-up's rule (at least
//! 10 characters) holds for an administrator too, and the password may come
//! from `CHECKIN_ORG_PASSWORD` (out of the shell history).

use std::process::{Command, Output};

fn org_create(data_dir: &std::path::Path, email: &str, password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_checkin"));
    command
        .args(["org", "create", "--name", "Бар", "--email", email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data_dir)
        .current_dir(data_dir.parent().unwrap());
    if let Some(password) = password {
        command.env("CHECKIN_ORG_PASSWORD", password);
    }
    command.output().unwrap()
}

#[test]
fn an_administrator_sets_a_cabinet_password_by_the_sign_up_rule() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");

    let short = org_create(&data, "bar@example.ru", Some("123456789"));
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("shorter than 10 characters"), "{stderr}");
    assert!(!stderr.contains("123456789"), "the password is not echoed");

    let ok = org_create(&data, "bar@example.ru", Some("correct horse battery"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(ok.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["api_token"].as_str().unwrap().len(), 64);
}
