//! `checkin org create` with a cabinet password: the sign-up's rule (at least
//! 10 characters) holds for an administrator too, and the password may come
//! from `CHECKIN_ORG_PASSWORD` (out of the shell history).

mod common;

use common::cli::{checkin, json_line};

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

/// Issue 23: the SMS name from the command line, refused over the limit
/// (naming it) on `premises add` and `premises label`; a name accepted is
/// what the confirmation says.
#[test]
fn the_cli_sets_an_sms_name_and_refuses_one_over_the_limit_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let org = json_line(&org_create(&data, "sms@example.ru", None));
    let org_id = org["id"].to_string();
    let address = "Кутузовский пр., д. 57, ТРЦ «Океания», 3 этаж";
    let too_long = "Ж".repeat(checkin_core::texts::SMS_LABEL_UNITS_MAX + 1);

    let refused = checkin(
        &data,
        &[
            "premises",
            "add",
            "--org",
            &org_id,
            "--address",
            address,
            "--sms-label",
            &too_long,
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("longer than 25 characters"), "{stderr}");

    let added = json_line(&checkin(
        &data,
        &[
            "premises",
            "add",
            "--org",
            &org_id,
            "--address",
            address,
            "--sms-label",
            "Океания",
        ],
    ));
    let id = added["id"].to_string();
    let refused = checkin(
        &data,
        &["premises", "label", "--id", &id, "--sms-label", &too_long],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("longer than 25 characters"), "{stderr}");

    let set = json_line(&checkin(
        &data,
        &[
            "premises",
            "label",
            "--id",
            &id,
            "--sms-label",
            "Океания, 3 этаж",
        ],
    ));
    assert_eq!(set["sms_label"], "Океания, 3 этаж");
    let text = set["confirmation"].as_str().unwrap();
    assert!(
        text.starts_with("Вход отмечен: Океания, 3 этаж, "),
        "{text}"
    );

    let cleared = json_line(&checkin(&data, &["premises", "label", "--id", &id]));
    assert!(cleared["sms_label"].is_null());
    let text = cleared["confirmation"].as_str().unwrap();
    assert!(
        text.starts_with("Вход отмечен: Кутузовский пр., д. 57, "),
        "{text}"
    );
}
