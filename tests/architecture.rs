//! Architecture invariants (see ARCHITECTURE.md), checked by reading every
//! member's `Cargo.toml`, the sources that must not name certain crates, and
//! every member's non-test sources for the marks of a hand-written PDU codec.

use std::path::{Path, PathBuf};

/// Dependencies (by package name) a crate must never have, and why.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "parser",
        &[
            "checkin-core",
            "smsc-link",
            "notifier",
            "web",
            "simulator",
            "checkin",
            "smpp-text",
            "tokio",
        ],
        "the parser is pure: text in, command out, no I/O and nothing of ours",
    ),
    (
        "checkin-core",
        &[
            "smsc-link",
            "notifier",
            "web",
            "simulator",
            "checkin",
            "axum",
            "hyper",
            "tower",
            "governor",
            "rusmpp",
            "tokio-util",
            "smpp-text",
        ],
        "the core is domain + storage: no network, no SMPP, no HTTP, no rate limits",
    ),
    (
        "smpp-text",
        &[
            "checkin-core",
            "parser",
            "smsc-link",
            "notifier",
            "web",
            "simulator",
            "checkin",
        ],
        "SMPP text and framing is a leaf both SMPP sides share: nothing of ours",
    ),
    (
        "number-range",
        &[
            "checkin-core",
            "parser",
            "smpp-text",
            "smsc-link",
            "notifier",
            "web",
            "simulator",
            "checkin",
        ],
        "number ranges are a leaf the core and the simulator share: nothing of ours",
    ),
    (
        "smsc-link",
        &[
            "checkin-core",
            "parser",
            "notifier",
            "web",
            "simulator",
            "checkin",
        ],
        "the link moves messages and knows nothing of check-ins",
    ),
    (
        "simulator",
        &[
            "checkin-core",
            "parser",
            "smsc-link",
            "notifier",
            "web",
            "checkin",
        ],
        "the simulator stands in for an operator: independent of the product",
    ),
    (
        "notifier",
        &["smsc-link", "web", "simulator", "checkin"],
        "the notifier speaks to an SMS-sender trait; only the binary connects the link",
    ),
    (
        "web",
        &["smsc-link", "notifier", "simulator", "checkin"],
        "the web speaks to the core and an SMS-sender trait, never to the link",
    ),
];

/// tokio features that would let a crate open sockets.
const TOKIO_NET_FEATURES: &[&str] = &["net", "full"];

/// Crates that must not enable [`TOKIO_NET_FEATURES`], and why.
const NO_TOKIO_NET: &[(&str, &str)] = &[
    ("checkin-core", "the core opens no sockets"),
    ("smpp-text", "text and framing read bytes, never sockets"),
];

/// Crates whose sources must not mention `smsc_link` (not even through a re-export).
const NO_LINK_IN_SOURCE: &[&str] = &["notifier", "web", "checkin-core", "parser"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The member folders named in the workspace manifest.
fn members() -> Vec<(String, PathBuf)> {
    let manifest: toml::Table = read_toml(&root().join("Cargo.toml"));
    let list = manifest["workspace"]["members"].as_array().unwrap();
    list.iter()
        .map(|m| {
            let dir = root().join(m.as_str().unwrap());
            let own: toml::Table = read_toml(&dir.join("Cargo.toml"));
            let name = own["package"]["name"].as_str().unwrap().to_owned();
            (name, dir)
        })
        .collect()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The package names a manifest depends on at build/run time (not dev), with their
/// features, including target-specific tables.
fn dependencies(manifest: &toml::Table) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(|v| v.as_table()) {
            tables.push(t);
        }
    }
    if let Some(targets) = manifest.get("target").and_then(|v| v.as_table()) {
        for target in targets.values().filter_map(|v| v.as_table()) {
            for key in ["dependencies", "build-dependencies"] {
                if let Some(t) = target.get(key).and_then(|v| v.as_table()) {
                    tables.push(t);
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in tables {
        for (key, spec) in table {
            // `alias = { package = "real-name", … }` depends on real-name.
            let name = spec
                .get("package")
                .and_then(|p| p.as_str())
                .unwrap_or(key)
                .to_owned();
            let features = spec
                .get("features")
                .and_then(|f| f.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.push((name, features));
        }
    }
    out
}

/// Every broken invariant of crate `name` with manifest `manifest`.
fn violations(name: &str, manifest: &toml::Table, workspace: &toml::Table) -> Vec<String> {
    let mut found = Vec::new();
    let deps = dependencies(manifest);
    for (krate, forbidden, why) in FORBIDDEN {
        if *krate != name {
            continue;
        }
        for (dep, _) in &deps {
            if forbidden.contains(&dep.as_str()) {
                found.push(format!("{name} depends on {dep}: {why}"));
            }
        }
    }
    if let Some((_, why)) = NO_TOKIO_NET.iter().find(|(krate, _)| *krate == name) {
        let workspace_tokio: Vec<String> = workspace
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.get("tokio"))
            .and_then(|t| t.get("features"))
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for (dep, features) in &deps {
            if dep != "tokio" {
                continue;
            }
            for feature in features.iter().chain(&workspace_tokio) {
                if TOKIO_NET_FEATURES.contains(&feature.as_str()) {
                    found.push(format!("{name} enables tokio feature {feature:?}: {why}"));
                }
            }
        }
    }
    found
}

/// SMPP `command_id`s of requests (SMPP 3.4 §5.1.2.1, and 5.0's broadcast
/// operations); a response's id is its request's with the top bit set.
const REQUEST_IDS: &[u32] = &[
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x15, 0x21, 0x102, 0x103, 0x111,
    0x112, 0x113,
];

/// Writes of a big-endian 32-bit word: how a hand-written encoder puts
/// `command_length`, `command_id`, `command_status` or `sequence_number`.
/// (`Hasher::write_u32` is not one: it hashes.)
const WORD_WRITES: &[&str] = &["put_u32(", "u32::to_be_bytes", "as u32).to_be_bytes()"];

/// Files allowed to carry a mark of [`pdu_codec_marks`], and why. Each
/// must still carry one, so the list cannot outlive its reason.
const PDU_BYTES_ALLOWED: &[(&str, &str)] = &[(
    "smsc-link/src/pdu.rs",
    "prefixes `command_length` to a submit_sm rusmpp-core's borrowed encoder wrote (it writes the command without its length)",
)];

/// The marks of a hand-written PDU codec in `source` (line number, line):
/// an SMPP `command_id` spelled as a 32-bit hex literal (`0x8000_0004`), or
/// a big-endian 32-bit word written by hand. Unit tests (after
/// `#[cfg(test)]`) and comments are not looked at: tests pin bytes on purpose.
/// A heuristic: it catches the usual ways of writing a header, not all.
fn pdu_codec_marks(source: &str) -> Vec<(usize, String)> {
    let mut marks = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let literal_id = code.split("0x").skip(1).any(|rest| {
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '_')
                .filter(|c| *c != '_')
                .collect();
            digits.len() == 8
                && u32::from_str_radix(&digits, 16)
                    .is_ok_and(|id| REQUEST_IDS.contains(&(id & 0x7fff_ffff)))
        });
        if literal_id || WORD_WRITES.iter().any(|w| code.contains(w)) {
            marks.push((i + 1, code.to_owned()));
        }
    }
    marks
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_member_keeps_its_invariants() {
    let workspace = read_toml(&root().join("Cargo.toml"));
    let members = members();
    assert!(members.len() >= 8, "members: {members:?}");
    let mut all = Vec::new();
    for (name, dir) in &members {
        all.extend(violations(
            name,
            &read_toml(&dir.join("Cargo.toml")),
            &workspace,
        ));
        if NO_LINK_IN_SOURCE.contains(&name.as_str()) {
            let mut files = Vec::new();
            rust_files(&dir.join("src"), &mut files);
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                // Code, not comments: docs may say why the crate stays away.
                let uses = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .any(|l| l.contains("smsc_link"));
                if uses {
                    all.push(format!("{} uses smsc_link", file.display()));
                }
            }
        }
    }
    assert!(
        all.is_empty(),
        "architecture invariants broken:\n{}",
        all.join("\n")
    );
}

#[test]
fn every_pdu_is_encoded_and_decoded_by_rusmpp() {
    let mut found = Vec::new();
    let mut allowed_used = Vec::new();
    for (_, dir) in members() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let relative = file
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let marks = pdu_codec_marks(&std::fs::read_to_string(&file).unwrap());
            if marks.is_empty() {
                continue;
            }
            if PDU_BYTES_ALLOWED.iter().any(|(path, _)| *path == relative) {
                allowed_used.push(relative);
                continue;
            }
            for (line, code) in marks {
                found.push(format!("{relative}:{line}: {code}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "PDU header bytes written by hand (invariant 5: every PDU goes through rusmpp):\n{}",
        found.join("\n")
    );
    for (path, why) in PDU_BYTES_ALLOWED {
        assert!(
            allowed_used.iter().any(|p| p == path),
            "{path} is allowed to write header bytes ({why}) but no longer does: drop it from the list"
        );
    }
}

#[test]
fn the_checker_catches_a_hand_written_pdu_header() {
    let bad = r#"
        const SUBMIT_SM_RESP: u32 = 0x8000_0004;
        fn header(buf: &mut BytesMut, len: usize, seq: u32) {
            buf.put_u32(len as u32);
            buf.extend_from_slice(&(seq as u32).to_be_bytes());
            buf.extend_from_slice(&u32::to_be_bytes(0x00000015));
        }
    "#;
    let marks = pdu_codec_marks(bad);
    assert_eq!(
        marks.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        [2, 4, 5, 6],
        "{marks:#?}"
    );
    let fine = r#"
        // A comment may say 0x8000_0004 and put_u32(.
        let response = command_id & 0x8000_0000 != 0;
        let reference = u16::from_be_bytes([hi, lo]);
        let length = u32::from_be_bytes(word);
        let color = 0x00ff_00ff;
        #[cfg(test)]
        mod tests { const GOLDEN: [u8; 4] = 0x0000_0004u32.to_be_bytes(); fn f(b: &mut BytesMut) { b.put_u32(16) } }
    "#;
    assert!(
        pdu_codec_marks(fine).is_empty(),
        "{:#?}",
        pdu_codec_marks(fine)
    );
}

#[test]
fn every_rule_names_a_real_member() {
    let names: Vec<String> = members().into_iter().map(|(n, _)| n).collect();
    for (krate, _, _) in FORBIDDEN {
        assert!(
            names.iter().any(|n| n == krate),
            "rule for unknown crate {krate}"
        );
    }
}

#[test]
fn the_checker_catches_a_core_that_grows_a_web_dependency() {
    let workspace: toml::Table = "[workspace.dependencies]\ntokio = \"1\"".parse().unwrap();
    let bad: toml::Table = r#"
        [package]
        name = "checkin-core"
        [dependencies]
        axum.workspace = true
        link = { package = "smsc-link", path = "../smsc-link" }
        tokio = { workspace = true, features = ["net"] }
    "#
    .parse()
    .unwrap();
    let found = violations("checkin-core", &bad, &workspace);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].contains("axum") || found.iter().any(|f| f.contains("axum")));
    assert!(found.iter().any(|f| f.contains("smsc-link")));
    assert!(found.iter().any(|f| f.contains("\"net\"")));

    // tokio "full" inherited from the workspace table counts too.
    let full: toml::Table =
        "[workspace.dependencies]\ntokio = { version = \"1\", features = [\"full\"] }"
            .parse()
            .unwrap();
    let core: toml::Table = "[dependencies]\ntokio.workspace = true".parse().unwrap();
    assert_eq!(violations("checkin-core", &core, &full).len(), 1);

    let fine: toml::Table = "[dependencies]\nsqlx.workspace = true".parse().unwrap();
    assert!(violations("checkin-core", &fine, &workspace).is_empty());
    let sim: toml::Table = "[dependencies]\ncheckin-core.workspace = true"
        .parse()
        .unwrap();
    assert_eq!(violations("simulator", &sim, &workspace).len(), 1);
}

/// Crates whose modules may not import each other in a circle (issue 14:
/// `link.rs` and `session.rs` of `smsc-link` once did; issue 18: the store's
/// `mod.rs` and its children did).
const NO_MODULE_CIRCLES_IN: &[&str] = &["smsc-link", "checkin-core"];

/// `checkin-core`'s storage folder: the domain (every module outside it)
/// never imports it; storage imports the domain.
const STORAGE_MODULE: &str = "store";

/// Module path of a source file under `src` (`session/mod.rs` → `session`,
/// `session/wire.rs` → `session::wire`, `lib.rs` → ``).
fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// Every path of a `use` tree starting at `text` (just after `crate::`,
/// `super::` or `self::`): `a::b`, `a::{b, c::{d}}`, `*`.
fn use_paths(text: &str) -> Vec<Vec<String>> {
    fn tree(chars: &[char], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            while *at < chars.len() && chars[*at].is_whitespace() {
                *at += 1;
            }
            if chars.get(*at) == Some(&'{') {
                *at += 1;
                loop {
                    tree(chars, at, &path, out);
                    while *at < chars.len() && chars[*at].is_whitespace() {
                        *at += 1;
                    }
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                    while *at < chars.len() && chars[*at].is_whitespace() {
                        *at += 1;
                    }
                    if chars.get(*at) == Some(&'}') {
                        *at += 1;
                        return;
                    }
                }
            }
            let start = *at;
            while *at < chars.len() && (chars[*at].is_alphanumeric() || chars[*at] == '_') {
                *at += 1;
            }
            if *at > start {
                path.push(chars[start..*at].iter().collect());
            }
            if chars.get(*at..*at + 2) == Some(&[':', ':']) {
                *at += 2;
                continue;
            }
            if *at > start || path.len() > prefix.len() {
                out.push(path);
            }
            // Skip `as name`, `*`, anything up to the tree's end.
            while *at < chars.len() && !matches!(chars[*at], ',' | '}' | ';' | '(' | ')') {
                *at += 1;
            }
            return;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, &[], &mut out);
    out
}

/// For each module of the crate at `src`, the other modules it names
/// (`crate::…`, `super::…`, `self::…`, in `use` lines or inline), test
/// modules left out. Names the root re-exports (`pub use x::Name`) count
/// as module `x`; the root itself, the crate's face, is left out.
fn module_uses(
    src: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let code = |file: &Path| -> String {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let text = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
        text.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let modules: std::collections::BTreeSet<String> =
        files.iter().map(|f| module_path(src, f)).collect();
    let longest_module = |segments: &[String]| -> String {
        (0..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| modules.contains(m))
            .unwrap_or_default()
    };
    // Names the root hands on, and the module that defines each.
    let mut reexports = std::collections::BTreeMap::new();
    let root = code(&src.join("lib.rs"));
    for statement in root.split("pub use ").skip(1) {
        for mut path in use_paths(statement) {
            // `pub use a::b::{self, …}` hands on the module `b` itself.
            if path.last().is_some_and(|p| p == "self") {
                path.pop();
            }
            if let Some(name) = path.last() {
                reexports.insert(name.clone(), longest_module(&path));
            }
        }
    }
    let mut uses = std::collections::BTreeMap::new();
    for file in &files {
        let module = module_path(src, file);
        if module.is_empty() {
            continue;
        }
        let text = code(file);
        let mut targets = std::collections::BTreeSet::new();
        for (keyword, base) in [
            ("crate::", Vec::new()),
            ("super::", {
                let mut parent: Vec<String> = module.split("::").map(String::from).collect();
                parent.pop();
                parent
            }),
            ("self::", module.split("::").map(String::from).collect()),
        ] {
            for (at, _) in text.match_indices(keyword) {
                let before = text[..at].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                for path in use_paths(&text[at + keyword.len()..]) {
                    let mut full = base.clone();
                    full.extend(path);
                    let mut target = longest_module(&full);
                    if target.is_empty() {
                        let name = full.first().cloned().unwrap_or_default();
                        target = reexports.get(&name).cloned().unwrap_or_default();
                    }
                    if !target.is_empty() && target != module {
                        targets.insert(target);
                    }
                }
            }
        }
        // A parent naming its own children (`use child::X;`, `child::f()`),
        // which carries no `crate::`/`super::`/`self::`. A `pub use` of a
        // child is the folder's face (a re-export), not an import.
        let prefix = format!("{module}::");
        let children: Vec<&str> = modules
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix))
            .filter(|rest| !rest.contains("::"))
            .collect();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("pub use ")
                || trimmed.starts_with("pub(crate) use ")
                || trimmed.starts_with("mod ")
                || trimmed.starts_with("pub mod ")
                || trimmed.starts_with("pub(crate) mod ")
            {
                continue;
            }
            for child in &children {
                let needle = format!("{child}::");
                for (at, _) in line.match_indices(&needle) {
                    let before = line[..at].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    targets.insert(format!("{module}::{child}"));
                }
            }
        }
        uses.insert(module, targets);
    }
    uses
}

/// Imports of the storage folder by a module outside it: `(importer, storage module)`.
fn domain_imports_of_storage(
    uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Vec<(String, String)> {
    let in_storage = |m: &str| m == STORAGE_MODULE || m.starts_with(&format!("{STORAGE_MODULE}::"));
    uses.iter()
        .filter(|(module, _)| !in_storage(module))
        .flat_map(|(module, targets)| {
            targets
                .iter()
                .filter(|t| in_storage(t))
                .map(move |t| (module.clone(), t.clone()))
        })
        .collect()
}

/// A circle of modules importing each other, if any.
fn find_circle(
    uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in uses.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, uses, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    uses.keys()
        .find_map(|node| visit(node, uses, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_modules_of_the_link_import_each_other() {
    for (name, dir) in members() {
        if !NO_MODULE_CIRCLES_IN.contains(&name.as_str()) {
            continue;
        }
        let uses = module_uses(&dir.join("src"));
        assert!(uses.len() > 5, "{name}: modules not found: {uses:?}");
        let (importer, imported) = match name.as_str() {
            "smsc-link" => ("supervisor", "session"),
            _ => ("store::sms", "sms_decision"),
        };
        assert!(
            uses.get(importer).is_some_and(|u| u.contains(imported)),
            "{name}: the reader misses imports: {uses:?}"
        );
        if let Some(circle) = find_circle(&uses) {
            panic!("{name}: modules import each other: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_domain_never_imports_storage() {
    let (_, dir) = members()
        .into_iter()
        .find(|(name, _)| name == "checkin-core")
        .expect("checkin-core is a member");
    let uses = module_uses(&dir.join("src"));
    // The reader sees storage importing the domain (the direction allowed).
    assert!(
        uses.get("store::sms")
            .is_some_and(|u| u.contains("sms_decision")),
        "the reader misses imports: {uses:?}"
    );
    let wrong = domain_imports_of_storage(&uses);
    assert!(wrong.is_empty(), "domain modules import storage: {wrong:?}");
}

#[test]
fn the_checkers_catch_a_domain_that_imports_storage_and_a_parent_importing_its_child() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).expect("dir");
    let files = [
        (
            "lib.rs",
            "pub mod store;\npub mod texts;\npub use store::Store;\npub use store::sms::{self, Reply};\n",
        ),
        // The parent uses a child's type, and the child its parent's: a circle.
        (
            "store/mod.rs",
            "mod sms;\npub use sms::Reply;\nuse sms::Group;\npub struct Store;\n",
        ),
        ("store/sms.rs", "use super::Store;\nuse crate::texts::hello;\n"),
        // A domain module reaching into storage.
        (
            "texts.rs",
            "pub fn hello() { let _ = crate::Store; }\npub fn reply(_: crate::sms::Reply) {}\n",
        ),
    ];
    for (path, text) in files {
        std::fs::write(src.join(path), text).expect("write");
    }
    let uses = module_uses(src);
    let wrong = domain_imports_of_storage(&uses);
    // Both ways in are seen: a name the root hands on, and a storage module
    // the root hands on under its own name (`pub use store::sms::{self, …}`).
    assert_eq!(
        wrong,
        vec![
            ("texts".to_string(), "store".to_string()),
            ("texts".to_string(), "store::sms".to_string())
        ]
    );
    let circle = find_circle(&uses).expect("a circle");
    assert!(circle.contains(&"store::sms".to_string()), "{circle:?}");
    // A re-export alone (`pub use sms::Reply`) is the folder's face, no import.
    std::fs::write(
        src.join("store/mod.rs"),
        "mod sms;\npub use sms::Reply;\npub struct Store;\n",
    )
    .expect("write");
    std::fs::write(src.join("texts.rs"), "pub fn hello() {}\n").expect("write");
    let uses = module_uses(src);
    assert!(domain_imports_of_storage(&uses).is_empty(), "{uses:?}");
    assert_eq!(find_circle(&uses), None, "{uses:?}");
}

#[test]
fn the_module_reader_sees_a_circle_through_nested_use_trees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("session")).expect("dir");
    let files = [
        ("lib.rs", "mod link;\nmod session;\npub use link::Link;\n"),
        (
            "link.rs",
            "use crate::{config, session::{wire::write, Session}};\n",
        ),
        ("config.rs", "//! leaf\n"),
        (
            "session/mod.rs",
            "pub(crate) mod wire;\nuse self::wire::write;\n",
        ),
        (
            "session/wire.rs",
            "fn f() { let _ = crate::Link::new(); }\n",
        ),
    ];
    for (path, text) in files {
        std::fs::write(src.join(path), text).expect("write");
    }
    let uses = module_uses(src);
    assert_eq!(
        uses.get("link")
            .map(|u| u.iter().cloned().collect::<Vec<_>>()),
        Some(vec![
            "config".into(),
            "session".into(),
            "session::wire".into()
        ])
    );
    let circle = find_circle(&uses).expect("a circle");
    assert!(circle.contains(&"link".to_string()), "{circle:?}");
    assert!(circle.contains(&"session::wire".to_string()), "{circle:?}");
}
