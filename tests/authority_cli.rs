//! `checkin authority user add`: a person of an authority's cabinet, the
//! password from `CHECKIN_AUTHORITY_PASSWORD` (out of the shell history) by
//! the sign-up's rule, one JSON line out; an unknown authority or a taken
//! e-mail is refused.

mod common;

use std::process::{Command, Output};

use common::cli::{checkin, json_line};

fn user_add(data_dir: &std::path::Path, authority: &str, email: &str, password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checkin"))
        .args([
            "authority",
            "user",
            "add",
            "--authority",
            authority,
            "--email",
            email,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data_dir)
        .env("CHECKIN_AUTHORITY_PASSWORD", password)
        .current_dir(data_dir.parent().unwrap())
        .output()
        .unwrap()
}

#[test]
fn an_administrator_adds_people_to_an_authority() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let created = json_line(&checkin(&data, &["authority", "create", "--name", "РПН"]));
    let id = created["id"].as_i64().unwrap().to_string();

    let short = user_add(&data, &id, "epi@example.ru", "123456789");
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("shorter than 10 characters"), "{stderr}");
    assert!(!stderr.contains("123456789"), "the password is not echoed");

    let added = json_line(&user_add(
        &data,
        &id,
        "Epi@Example.ru",
        "correct horse battery",
    ));
    assert_eq!(added["authority"].as_i64().unwrap().to_string(), id);
    assert_eq!(added["email"], "epi@example.ru");
    assert!(added["id"].is_i64(), "{added}");

    let again = user_add(&data, &id, "epi@example.ru", "correct horse battery");
    assert!(!again.status.success(), "the e-mail is taken");
    let unknown = user_add(&data, "999", "other@example.ru", "correct horse battery");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no authority 999"));
}
