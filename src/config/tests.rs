use super::*;
use std::collections::BTreeSet;

/// The configuration of a `checkin.toml` with this text under these flags.
fn merge(cli: Overrides, file: &str) -> anyhow::Result<Config> {
    Config::from_layers(Figment::from(Toml::string(file)).merge(cli))
}

/// The error of this `checkin.toml`, as shown.
fn refusal(file: &str) -> String {
    match merge(Overrides::default(), file) {
        Ok(config) => panic!("accepted: {file}\n{config:?}"),
        Err(e) => format!("{e:#}"),
    }
}

const KEY_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEY_B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

#[test]
fn defaults_are_the_documented_ones() {
    let config = merge(Overrides::default(), "").unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./checkin-data"));
    assert!(config.database_url.starts_with("sqlite://"));
    assert!(config.database_url.contains("checkin-data"));
    assert_eq!(config.http.to_string(), "127.0.0.1:8080");
    assert_eq!(config.sim_smpp.to_string(), "127.0.0.1:2775");
    assert_eq!(config.sim_http.to_string(), "127.0.0.1:2776");
    assert_eq!(config.zone, ServiceZone::default());
    assert_eq!(config.store.retention, Duration::from_secs(28 * 24 * 3600));
    assert_eq!(config.store.dedupe_window, Duration::from_secs(600));
    assert_eq!(
        config.keys,
        KeySource::File(PathBuf::from("./checkin-data/keys.toml"))
    );
    assert!(config.operators.is_empty());
    assert_eq!(config.default_operator, None);
    assert_eq!(config.simulator_ussd, UssdConfig::default());
    assert!(!config.msisdn_policy.allow_international);
    assert_eq!(config.send_rate.get(), 100);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(
        config.store.sqlite_synchronous,
        checkin_core::store::SqliteSync::Full,
        "acknowledged MOs survive a power loss by default"
    );
}

#[test]
fn sqlite_synchronous_comes_from_the_file_or_a_flag_and_refuses_other_words() {
    use checkin_core::store::SqliteSync;
    let file = r#"sqlite_synchronous = "normal""#;
    let config = merge(Overrides::default(), file).unwrap();
    assert_eq!(config.store.sqlite_synchronous, SqliteSync::Normal);
    let cli = Overrides {
        sqlite_synchronous: Some("FULL".into()),
        ..Overrides::default()
    };
    let config = merge(cli, file).unwrap();
    assert_eq!(config.store.sqlite_synchronous, SqliteSync::Full);
    let cli = Overrides {
        sqlite_synchronous: Some("off".into()),
        ..Overrides::default()
    };
    let refused = merge(cli, "").unwrap_err();
    assert!(
        refused.to_string().contains("\"full\" or \"normal\""),
        "{refused}"
    );
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let file = r#"
        data_dir = "/srv/checkin"
        http = "0.0.0.0:80"
        retention_days = 14
        allow_international = true
        time_zone = "Asia/Yekaterinburg"
        phone_hash_key = "0101010101010101010101010101010101010101010101010101010101010101"
        phone_encryption_key = "0202020202020202020202020202020202020202020202020202020202020202"
        [smsc]
        host = "smsc.operator.example"
        system_id = "checkin"
        password = "secret"
        window_max = 32
        "#;
    let cli = Overrides {
        http: Some("127.0.0.1:9999".parse().unwrap()),
        smsc_port: Some(3775),
        ..Overrides::default()
    };
    let config = merge(cli, file).unwrap();
    assert_eq!(config.http.to_string(), "127.0.0.1:9999");
    assert_eq!(config.data_dir, PathBuf::from("/srv/checkin"));
    assert!(config.database_url.contains("/srv/checkin/checkin.sqlite"));
    assert_eq!(config.store.retention, Duration::from_secs(14 * 24 * 3600));
    assert!(config.msisdn_policy.allow_international);
    assert_eq!(
        config.zone,
        ServiceZone::parse("Asia/Yekaterinburg").unwrap()
    );
    assert_eq!(config.operators.len(), 1, "[smsc] is one operator");
    let smsc = &config.operators[0];
    assert_eq!(smsc.name.as_str(), "default");
    assert_eq!(config.default_operator, Some(smsc.name.clone()));
    assert_eq!(
        (smsc.link.host.as_str(), smsc.link.port),
        ("smsc.operator.example", 3775)
    );
    assert_eq!(smsc.link.window_max, 32, "other [smsc] keys reach the link");
    assert!(!format!("{smsc:?}").contains("secret"));
    let KeySource::Given(keys) = config.keys else {
        panic!("keys were given")
    };
    assert_eq!(hex::encode(keys.hash_key), KEY_A);
    assert_eq!(hex::encode(keys.encryption_key), KEY_B);
}

#[test]
fn mistakes_are_reported() {
    let half_keys = Overrides {
        phone_hash_key: Some(KEY_A.into()),
        ..Overrides::default()
    };
    assert!(merge(half_keys, "").is_err());
    let bad_zone = Overrides {
        time_zone: Some("Moscow".into()),
        ..Overrides::default()
    };
    assert!(merge(bad_zone, "").is_err());
    let smsc_without_login = Overrides {
        smsc_host: Some("smsc".into()),
        ..Overrides::default()
    };
    assert!(merge(smsc_without_login, "").is_err());
    assert!(merge(Overrides::default(), "unknown_key = 1").is_err());
    let typo_in_smsc = "[smsc]\nhost = \"h\"\nsystem_id = \"s\"\npassword = \"p\"\nwindow = 3";
    assert!(merge(Overrides::default(), typo_in_smsc).is_err());
}

#[test]
fn the_notifier_section_sets_the_deadlines() {
    let config = merge(Overrides::default(), "").unwrap();
    assert_eq!(config.notifier, NotifierSettings::default());
    let notifier = config
        .notifier
        .notifier_config(config.send_rate, &config.operators);
    assert_eq!(notifier.otp_max_age, Duration::from_secs(300));
    assert_eq!(
        notifier.confirmation_max_age,
        Duration::from_secs(24 * 3600)
    );
    assert_eq!(notifier.alert_max_age, Duration::from_secs(48 * 3600));
    let file = r#"
        [notifier]
        alert_max_age_ms = 3600000
        "#;
    let config = merge(Overrides::default(), file).unwrap();
    assert_eq!(config.notifier.alert_max_age_ms, 3_600_000);
    assert_eq!(config.notifier.otp_max_age_ms, 300_000);
    let zero = "[notifier]\notp_max_age_ms = 0";
    assert!(merge(Overrides::default(), zero).is_err());
}

#[test]
fn the_city_account_is_read_from_web_oidc_and_checked() {
    let off = merge(Overrides::default(), "").unwrap();
    assert!(!off.web.oidc.enabled());
    assert_eq!(off.web.oidc.button_label, "Войти через mos.ru");
    assert_eq!(off.web.oidc.scopes, "openid phone");
    let file = "[web.oidc]\nissuer_url = \"https://login.example.ru\"\n\
         client_id = \"checkin\"\nclient_secret = \"s3cret\"\n";
    let config = merge(Overrides::default(), file).unwrap();
    assert!(config.web.oidc.enabled());
    assert_eq!(config.web.oidc.client_id, "checkin");
    assert_eq!(config.web.oidc.request_timeout_ms, 10_000);
    assert!(!format!("{:?}", config.web.oidc).contains("s3cret"));
    for bad in [
        "[web.oidc]\nissuer_url = \"login.example.ru\"\nclient_id = \"c\"\n",
        "[web.oidc]\nissuer_url = \"https://login.example.ru\"\n",
        "[web.oidc]\nissuer = \"https://login.example.ru\"\n",
    ] {
        assert!(merge(Overrides::default(), bad).is_err(), "{bad}");
    }
}

const TWO_OPERATORS: &str = r#"
[ussd]
short_code = "7378"

[[operator]]
name = "mts"
host = "smsc.mts.example"
port = 2776
failover_hosts = [{ host = "smsc2.mts.example", port = 2775 }]
system_id = "checkin"
password = "mtspass1"
binds = 4
segments_per_second = 100
ranges = ["+7916", "+79030000000-+79030999999"]

[operator.ussd]
service_type = "USSD"

[[operator]]
name = "beeline"
host = "smsc.beeline.example"
system_id = "gw"
password = "pw"
window_max = 10
ranges = ["+7903"]

[routing]
default_operator = "beeline"
"#;

#[test]
fn operator_sections_are_read_in_order_with_their_ranges_and_ussd() {
    let config = merge(Overrides::default(), TWO_OPERATORS).unwrap();
    let names: Vec<&str> = config.operators.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["mts", "beeline"]);
    let (mts, beeline) = (&config.operators[0], &config.operators[1]);
    assert_eq!(
        (mts.link.host.as_str(), mts.link.port),
        ("smsc.mts.example", 2776)
    );
    assert_eq!(mts.link.hosts().len(), 2, "failover hosts reach the link");
    assert_eq!((mts.link.binds, mts.link.segments_per_second), (4, 100));
    assert_eq!(
        mts.ranges,
        vec![
            "+7916".parse::<NumberRange>().unwrap(),
            "+79030000000-+79030999999".parse().unwrap()
        ]
    );
    assert_eq!(mts.ussd.service_type.as_deref(), Some("USSD"));
    assert_eq!(mts.ussd.short_code, "7377", "its own section over defaults");
    assert_eq!(
        beeline.ussd.short_code, "7378",
        "no [operator.ussd]: the top-level [ussd]"
    );
    assert_eq!(beeline.link.window_max, 10);
    assert_eq!(beeline.link.port, 2775, "the link's default port");
    assert_eq!(
        config.default_operator.as_ref().map(|o| o.as_str()),
        Some("beeline")
    );
    assert_eq!(config.simulator_ussd.short_code, "7378");
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("mtspass1") && !shown.contains("\"pw\""),
        "{shown}"
    );
    // Without [routing]: the first operator.
    let first = TWO_OPERATORS.replace("default_operator = \"beeline\"", "");
    let config = merge(Overrides::default(), &first).unwrap();
    assert_eq!(
        config.default_operator.as_ref().map(|o| o.as_str()),
        Some("mts")
    );
    // The alerts' default ceiling: both contracts, 100×4 + 50×1.
    let notifier = config
        .notifier
        .notifier_config(config.send_rate, &config.operators);
    assert_eq!(notifier.alert_segments_per_second, 450);
}

#[test]
fn the_single_smsc_of_flags_or_a_section_is_one_operator() {
    let cli = Overrides {
        smsc_host: Some("smsc.example".into()),
        smsc_system_id: Some("gw".into()),
        smsc_password: Some("pw".into()),
        ..Overrides::default()
    };
    let config = merge(cli, "[smsc.ussd]\nshort_code = \"7379\"\n").unwrap();
    assert_eq!(config.operators.len(), 1);
    let op = &config.operators[0];
    assert_eq!(op.name.as_str(), "default");
    assert_eq!(
        (op.link.host.as_str(), op.link.port),
        ("smsc.example", 2775)
    );
    assert_eq!(op.ussd.short_code, "7379", "[smsc.ussd] is its profile");
    assert!(op.ranges.is_empty());
    let named = "[smsc]\nname = \"mts\"\nhost = \"h\"\nsystem_id = \"s\"\npassword = \"p\"\n\
                 ranges = [\"+7916\"]\n";
    let config = merge(Overrides::default(), named).unwrap();
    assert_eq!(config.operators[0].name.as_str(), "mts");
    assert_eq!(config.operators[0].ranges.len(), 1);
    assert_eq!(config.default_operator.unwrap().as_str(), "mts");
    // Only [smsc.ussd]: the bundled simulator, with that profile.
    let config = merge(Overrides::default(), "[smsc.ussd]\nshort_code = \"7379\"\n").unwrap();
    assert!(config.operators.is_empty());
    assert_eq!(config.simulator_ussd.short_code, "7379");
    // [smsc.ussd] alone is [ussd] by its older name: every operator's default.
    let shared = format!("[smsc.ussd]\nshort_code = \"7380\"\n{TWO_OPERATORS}")
        .replace("[ussd]\nshort_code = \"7378\"\n", "");
    let config = merge(Overrides::default(), &shared).unwrap();
    assert_eq!(config.operators[1].ussd.short_code, "7380");
    assert_eq!(config.simulator_ussd.short_code, "7380");
    let twice = format!("[smsc.ussd]\nshort_code = \"7380\"\n{TWO_OPERATORS}");
    assert!(refusal(&twice).contains("keep one"), "{}", refusal(&twice));
    // Flags with [[operator]] sections: which would be which?
    let cli = Overrides {
        smsc_port: Some(2000),
        ..Overrides::default()
    };
    let both = merge(cli, TWO_OPERATORS).unwrap_err();
    assert!(format!("{both:#}").contains("[[operator]]"), "{both:#}");
}

#[test]
fn operator_mistakes_name_the_operator_and_the_key() {
    let op = |extra: &str| {
        format!(
            "[[operator]]\nname = \"mts\"\nhost = \"h1\"\nsystem_id = \"s\"\npassword = \"p\"\n\
             [[operator]]\nname = \"beeline\"\n{extra}"
        )
    };
    let complete = "host = \"h\"\nsystem_id = \"s\"\npassword = \"p\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            op("host = \"h\"\nsystem_id = \"s\"\npasword = \"p\"\n"),
            r#"operator "beeline": unknown key "pasword""#,
        ),
        (
            op("host = \"h\"\nsystem_id = \"s\"\n"),
            r#"operator "beeline": password is required"#,
        ),
        (
            op("system_id = \"s\"\npassword = \"p\"\n"),
            r#"operator "beeline": host is required"#,
        ),
        (
            op("host = \"h\"\npassword = \"p\"\n"),
            r#"operator "beeline": system_id is required"#,
        ),
        (
            op(&format!("{complete}ranges = [\"+7916\", \"+7abc\"]\n")),
            r#"operator "beeline": ranges: "+7abc" is neither"#,
        ),
        (
            op(&format!("{complete}ranges = [\"+79030000000-+7903099\"]\n")),
            r#"operator "beeline": ranges: "+79030000000-+7903099""#,
        ),
        (
            op(&format!("{complete}port = \"x\"\n")),
            r#"operator "beeline": port: invalid type"#,
        ),
        (
            op(&format!("{complete}password = \"far too long\"\n")
                .replace("password = \"p\"\npassword", "password")),
            r#"operator "beeline": password must be at most 8 characters"#,
        ),
        (
            op(&format!(
                "{complete}[operator.ussd]\nshort_code = \"*7377#\"\n"
            )),
            r#"operator "beeline": ussd: short_code must be digits"#,
        ),
        (
            op(&format!(
                "{complete}[operator.ussd]\nshortcode = \"7377\"\n"
            )),
            r#"operator "beeline": unknown key "ussd.shortcode""#,
        ),
        (
            op(complete).replace("\"beeline\"", "\"mts\""),
            r#"operator "mts" is configured twice"#,
        ),
        (
            op(complete).replace("name = \"beeline\"\n", ""),
            "[[operator]] #2: name is required",
        ),
        (
            op(complete).replace("\"beeline\"", "\"би лайн\""),
            r#"operator "би лайн": operator name"#,
        ),
        (
            format!(
                "{}[routing]\ndefault_operator = \"megafon\"\n",
                op(complete)
            ),
            r#"[routing] default_operator "megafon": no such operator"#,
        ),
        (
            "[routing]\ndefault_operator = \"mts\"\n".to_owned(),
            r#"[routing] default_operator "mts": no operator is configured"#,
        ),
        (
            "[routing]\ndefault = \"mts\"\n".to_owned(),
            r#"unknown key "routing.default""#,
        ),
        (
            format!("[smsc]\n{complete}{}", op(complete)),
            "cannot be used together",
        ),
        (
            "[smsc]\nhost = \"h\"\nsystem_id = \"s\"\n".to_owned(),
            r#"operator "default" ([smsc]): password is required (--smsc-password, CHECKIN_SMSC_PASSWORD)"#,
        ),
        (
            "[smsc]\nsystem_id = \"s\"\npassword = \"p\"\n".to_owned(),
            r#"operator "default" ([smsc]): host is required (--smsc-host, CHECKIN_SMSC_HOST)"#,
        ),
        (
            format!("[smsc]\n{complete}window = 3\n"),
            r#"operator "default" ([smsc]): unknown key "window""#,
        ),
        (
            "[web.oidc]\nissuer = \"https://login.example.ru\"\n".to_owned(),
            r#"unknown key "web.oidc.issuer""#,
        ),
        (
            "[ussd]\nshort_code = \"x\"\n".to_owned(),
            "[ussd]: short_code must be digits",
        ),
    ];
    for (file, expected) in cases {
        let shown = refusal(&file);
        assert!(
            shown.contains(expected),
            "{file}\nshows: {shown}\nexpected: {expected}"
        );
    }
}

#[test]
fn the_file_layer_is_named_in_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkin.toml");
    std::fs::write(&path, "retention_days = \"many\"\n").unwrap();
    let cli = Overrides {
        config: Some(path.clone()),
        ..Overrides::default()
    };
    let shown = format!("{:#}", Config::resolve(&cli).unwrap_err());
    assert!(shown.contains("retention_days: invalid type"), "{shown}");
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    let missing = Overrides {
        config: Some(dir.path().join("nothing.toml")),
        ..Overrides::default()
    };
    assert!(
        Config::resolve(&missing).is_err(),
        "a named file must exist"
    );
}

/// Every key the typed layer accepts, with its section (`web.oidc.issuer_url`),
/// from the field names of each section's type.
fn accepted_keys() -> BTreeSet<String> {
    use serde_aux::serde_introspection::serde_introspect;
    let mut keys = BTreeSet::new();
    let mut add = |prefix: &str, fields: &[&str], skip: &[&str]| {
        for field in fields.iter().filter(|f| !skip.contains(f)) {
            keys.insert(format!("{prefix}{field}"));
        }
    };
    // A new top-level field is a key unless it is named here as a section
    // (and then read below).
    let sections = ["web", "smsc", "operator", "ussd", "routing", "notifier"];
    let top = serde_introspect::<Settings>();
    for section in sections {
        assert!(top.contains(&section), "Settings has no {section}");
    }
    add("", top, &sections);
    let web = serde_introspect::<web::WebConfig>();
    assert!(web.contains(&"oidc"));
    add("web.", web, &["oidc"]);
    add("web.oidc.", serde_introspect::<web::OidcConfig>(), &[]);
    let own = serde_introspect::<OperatorKeys>();
    assert!(own.contains(&"ussd"));
    for section in ["operator.", "smsc."] {
        add(section, own, &["ussd"]);
        add(section, serde_introspect::<LinkConfig>(), &[]);
        add(
            &format!("{section}ussd."),
            serde_introspect::<UssdConfig>(),
            &[],
        );
    }
    add("ussd.", serde_introspect::<UssdConfig>(), &[]);
    add("routing.", serde_introspect::<RoutingSection>(), &[]);
    add("notifier.", serde_introspect::<NotifierSettings>(), &[]);
    keys
}

/// A row of the reference's table: its keys, variables and flags.
struct Row {
    keys: Vec<String>,
    env: Vec<String>,
    flags: Vec<String>,
}

/// The rows of `docs/configuration.md`'s table ("## Every key").
fn reference_rows(doc: &str) -> Vec<Row> {
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let table = doc.split_once("## Every key").map_or("", |(_, rest)| rest);
    table
        .lines()
        .take_while(|l| l.is_empty() || !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| key "))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or("");
            Row {
                keys: ticked(cell(0).trim_start_matches("| ")),
                env: ticked(cell(1))
                    .into_iter()
                    .filter(|v| v.starts_with("CHECKIN_"))
                    .collect(),
                flags: ticked(cell(2))
                    .into_iter()
                    .filter(|f| f.starts_with("--"))
                    .collect(),
            }
        })
        .collect()
}

/// What the reference `doc` gets wrong against the typed layer and the
/// command line: each mistake in words, none when it is right.
fn reference_mistakes(doc: &str) -> Vec<String> {
    use clap::Args;
    let rows = reference_rows(doc);
    let mut mistakes = Vec::new();
    let documented: BTreeSet<String> = rows.iter().flat_map(|r| r.keys.clone()).collect();
    let accepted = accepted_keys();
    for key in accepted.difference(&documented) {
        mistakes.push(format!("read but not documented: {key}"));
    }
    for key in documented.difference(&accepted) {
        mistakes.push(format!("documented but not read: {key}"));
    }
    let command = Overrides::augment_args(clap::Command::new("checkin"));
    // The file key an argument stands for: `smsc_port` is `smsc.port`.
    let key_of = |id: &str| match id.strip_prefix("smsc_") {
        Some(rest) => format!("smsc.{rest}"),
        None => id.to_owned(),
    };
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            mistakes.push(format!("--{id} has no long flag or no variable"));
            continue;
        };
        let (flag, env) = (format!("--{long}"), env.to_string_lossy().into_owned());
        let key = key_of(id);
        let found = rows.iter().find(|r| r.flags.contains(&flag));
        match found {
            None => mistakes.push(format!("flag not documented: {flag}")),
            Some(row) => {
                if !row.env.contains(&env) {
                    mistakes.push(format!("{flag}'s variable {env} not in its row"));
                }
                let keyless = id == "config" && row.keys.is_empty();
                if !keyless && !row.keys.contains(&key) {
                    mistakes.push(format!("{flag} documented on a row without {key}"));
                }
            }
        }
    }
    for row in &rows {
        for flag in &row.flags {
            let exists = command
                .get_arguments()
                .any(|a| a.get_long().is_some_and(|l| format!("--{l}") == *flag));
            if !exists {
                mistakes.push(format!("documented flag does not exist: {flag}"));
            }
        }
        for env in &row.env {
            let exists = command.get_arguments().any(|a| {
                a.get_env()
                    .is_some_and(|e| e.to_string_lossy() == env.as_str())
            });
            if !exists {
                mistakes.push(format!("documented variable does not exist: {env}"));
            }
        }
    }
    mistakes
}

const REFERENCE: &str = include_str!("../../docs/configuration.md");

#[test]
fn the_reference_documents_every_key_flag_and_variable_read_and_no_other() {
    let rows = reference_rows(REFERENCE);
    assert!(
        rows.len() > 80,
        "the table was not found: {} rows",
        rows.len()
    );
    let mistakes = reference_mistakes(REFERENCE);
    assert!(
        mistakes.is_empty(),
        "docs/configuration.md and the configuration disagree:\n{}",
        mistakes.join("\n")
    );
}

#[test]
fn the_reference_check_catches_each_kind_of_mistake() {
    let cases = [
        // A key read but its row gone.
        (
            REFERENCE.replace("| `routing.default_operator` |", "| removed |"),
            "read but not documented: routing.default_operator",
        ),
        // A key documented that nothing reads.
        (
            REFERENCE.replace(
                "| `web.cookie_secure` |",
                "| `web.cookie_secure` / `web.cookies` |",
            ),
            "documented but not read: web.cookies",
        ),
        // A variable or flag the program does not have.
        (
            REFERENCE.replace("`CHECKIN_SEND_RATE`", "`CHECKIN_SEND_RATE_PER_S`"),
            "documented variable does not exist: CHECKIN_SEND_RATE_PER_S",
        ),
        (
            REFERENCE.replace("`--send-rate`", "`--rate`"),
            "documented flag does not exist: --rate",
        ),
        (
            REFERENCE.replace("`--send-rate`", "—"),
            "flag not documented: --send-rate",
        ),
    ];
    for (doc, expected) in cases {
        assert_ne!(doc, REFERENCE, "the edit for {expected:?} changed nothing");
        let mistakes = reference_mistakes(&doc);
        assert!(
            mistakes.iter().any(|m| m == expected),
            "{expected:?} not caught: {mistakes:?}"
        );
    }
}
