//! Architecture invariant: the simulator depends on no other crate of the
//! workspace (it plays the operator's SMSC, not a part of the gateway).

#[test]
fn no_workspace_crate_dependencies() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read Cargo.toml");
    let manifest: toml::Table = manifest.parse().expect("parse Cargo.toml");
    let ours = [
        "checkin",
        "parser",
        "checkin-core",
        "smsc-link",
        "notifier",
        "web",
    ];
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            for name in deps.keys() {
                assert!(
                    !ours.contains(&name.as_str()),
                    "simulator must not depend on {name} ({section})"
                );
            }
        }
    }
}
