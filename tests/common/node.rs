//! The npm peers of the interop tests (`tests/node/`, node-smpp): `npm ci`
//! once, and their stdout read line by line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{BufReader, Lines};
use tokio::process::{ChildStdout, Command};

/// How long a peer's next line may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Where the peers and their `package.json` live.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `npm ci` in [`node_dir`] unless `node_modules` is there (`scripts/test`
/// runs it too).
pub async fn npm_ci_once() {
    let dir = node_dir();
    if dir.join("node_modules/smpp").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("npm runs");
    assert!(status.success(), "npm ci failed");
}

/// The peer's next line starting with `prefix`, without it; a line saying
/// `UNMATCHED` or `REFUSED` fails the test.
pub async fn line(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    loop {
        let next = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("peer output in time")
            .expect("readable")
            .expect("peer still running");
        assert!(
            !next.starts_with("UNMATCHED") && !next.starts_with("REFUSED"),
            "{next}"
        );
        if let Some(rest) = next.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}
