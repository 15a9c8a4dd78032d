//! The disk fills up under the SQLite gateway: every MO it cannot store is
//! answered with a temporary error (the SMSC redelivers), `/readyz` says
//! storage cannot write, nothing acknowledged is lost, the file stays intact,
//! and once space is back the service resumes by itself.
//!
//! The data folder is a small tmpfs mounted for the test, so this needs the
//! right to mount (root, as in CI): without it the test says so and passes,
//! unless `CHECKIN_TEST_REQUIRE_MOUNT=1` (set by `./scripts/test`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tmpfs's size: room for the database and a few hundred check-ins.
const TMPFS_SIZE: &str = "24m";
/// MOs sent into the full disk before one must be refused.
const MO_MAX_BEFORE_REFUSAL: usize = 400;

/// A tmpfs mounted on a fresh folder, unmounted on drop.
struct Tmpfs {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("data");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs {
                _parent: parent,
                path,
            }),
            _ => None,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the filesystem refuses (ENOSPC).
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5_u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() || file.sync_all().is_err() {
            break;
        }
    }
}

fn phone(i: usize) -> String {
    format!("+7916{:07}", 3_000_000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_mos_for_redelivery_and_the_service_resumes_when_space_is_back() {
    let Some(tmpfs) = Tmpfs::mount() else {
        assert!(
            std::env::var("CHECKIN_TEST_REQUIRE_MOUNT").as_deref() != Ok("1"),
            "CHECKIN_TEST_REQUIRE_MOUNT=1 but a tmpfs cannot be mounted here"
        );
        eprintln!("skipped: this user cannot mount a tmpfs (run as root to test a full disk)");
        return;
    };
    let data = tempfile::TempDir::new_in(&tmpfs.path).unwrap();
    let config = common::config(data.path(), None);
    let run = common::start_with("sqlite on a small tmpfs", config, data).await;
    let premises = run.premises("Тверская ул., 1").await;
    let text = format!("ВХОД*{}", premises.code);
    let web = run.gateway.web_addr;
    assert_eq!(common::readyz(web).await.0, 200);

    let mut acknowledged = Vec::new();
    assert_eq!(run.send_mo(&phone(0), &text).await["status"], "ESME_ROK");
    acknowledged.push(phone(0));

    // The disk fills up. The WAL's pages already on disk may take a few more
    // commits; then every write is refused.
    let filler = tmpfs.path.join("filler");
    fill(&filler);
    let mut refused = None;
    for i in 1..=MO_MAX_BEFORE_REFUSAL {
        let report = run.send_mo(&phone(i), &text).await;
        if report["status"] == "ESME_ROK" {
            acknowledged.push(phone(i));
        } else {
            assert_eq!(
                report["status"], "ESME_RX_T_APPN",
                "a temporary error, so the SMSC redelivers: {report}"
            );
            refused = Some(phone(i));
            break;
        }
    }
    let refused = refused.expect("a full disk refused no MO");
    let (status, body) = common::readyz(web).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("storage: "), "{body}");

    // Space is back: the SMSC's next attempt is stored, readiness returns.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = common::readyz(web).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run.send_mo(&refused, &text).await["status"], "ESME_ROK");
    acknowledged.push(refused);

    // Nothing acknowledged was lost: each visitor is stored and confirmed.
    for to in &acknowledged {
        let got = run.until_messages(to, 1).await;
        assert!(got[0].starts_with("Вход отмечен"), "{to}: {got:?}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkins")
        .fetch_one(run.gateway.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(stored, acknowledged.len() as i64);
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(run.gateway.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "{} MOs acknowledged, 1 refused while the disk was full and stored after",
        acknowledged.len()
    );
    run.stop().await;
    drop(tmpfs);
}
