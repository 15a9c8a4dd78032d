//! **Architecture Invariant**: `parser` depends on nothing of ours and does no
//! I/O. It is the one crate every SMS passes through, and the core builds on it;
//! keeping it a pure function of the text keeps it testable and fast. This test
//! reads the manifests, so the invariant fails loudly in CI instead of eroding.

use std::path::Path;

/// Crates that would mean the parser does I/O or runs tasks.
const IO_CRATES: &[&str] = &["tokio", "tokio-util", "futures", "sqlx", "rusmpp", "axum"];

fn manifest(path: &Path) -> toml::Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

#[test]
fn parser_depends_on_nothing_of_ours_and_does_no_io() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace_dir = crate_dir.parent().expect("parser/ is inside the workspace");
    let ours: Vec<String> = manifest(&workspace_dir.join("Cargo.toml"))["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list")
        .iter()
        .map(|member| {
            let dir = workspace_dir.join(member.as_str().expect("a member is a path"));
            let package = &manifest(&dir.join("Cargo.toml"))["package"];
            package["name"].as_str().expect("package.name").to_owned()
        })
        .filter(|name| name != "parser")
        .collect();
    assert!(
        ours.iter().any(|name| name == "checkin-core"),
        "members: {ours:?}"
    );

    let parser = manifest(&crate_dir.join("Cargo.toml"));
    let dependencies = parser["dependencies"]
        .as_table()
        .expect("[dependencies] is a table");
    assert!(dependencies.contains_key("nom"), "read the wrong table");
    for name in dependencies.keys() {
        assert!(!ours.contains(name), "parser depends on our crate {name}");
        assert!(
            !IO_CRATES.contains(&name.as_str()),
            "parser depends on the I/O crate {name}"
        );
    }
}
