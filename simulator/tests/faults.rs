//! Each fault of the profile, on a real simulator: throttling, dropped
//! responses, disconnects, bind rejection, submit errors, latency, and
//! reproducibility under a seed.

mod common;

use std::time::{Duration, Instant};

use common::{start, Raw};
use rusmpp::{CommandId, CommandStatus, Pdu};
use simulator::{
    esme::simple_submit,
    faults::{Latency, ThrottleStatus},
    Config, FaultProfile,
};

async fn bound(run: &common::Running) -> Raw {
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    c
}

fn with_faults(faults: FaultProfile) -> Config {
    Config {
        faults,
        ..Config::default()
    }
}

/// Submits `n` messages back to back and counts the statuses.
async fn burst(c: &mut Raw, n: usize) -> Vec<CommandStatus> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            c.call(simple_submit("7377", "79161234567", b"x", false))
                .await
                .status(),
        );
    }
    out
}

#[tokio::test]
async fn throttling_above_the_limit_only() {
    let run = start(with_faults(FaultProfile {
        throttle_per_s: Some(200),
        ..FaultProfile::default()
    }))
    .await;
    let mut c = bound(&run).await;
    let below = burst(&mut c, 50).await;
    assert!(
        below.iter().all(|s| *s == CommandStatus::EsmeRok),
        "{below:?}"
    );

    run.sim
        .set_faults(FaultProfile {
            throttle_per_s: Some(10),
            ..FaultProfile::default()
        })
        .unwrap();
    let above = burst(&mut c, 30).await;
    let throttled = above
        .iter()
        .filter(|s| **s == CommandStatus::EsmeRthrottled)
        .count();
    assert!(
        above[..10].iter().all(|s| *s == CommandStatus::EsmeRok),
        "{above:?}"
    );
    assert!(throttled >= 15, "{above:?}");
    assert_eq!(run.sim.stats().throttled, throttled as u64);

    run.sim
        .set_faults(FaultProfile {
            throttle_per_s: Some(1),
            throttle_status: ThrottleStatus::Msgqful,
            ..FaultProfile::default()
        })
        .unwrap();
    let statuses = burst(&mut c, 3).await;
    assert_eq!(statuses[1], CommandStatus::EsmeRmsgqful);
}

#[tokio::test]
async fn dropped_responses_are_never_sent() {
    let run = start(with_faults(FaultProfile {
        drop_response_share: 1.0,
        ..FaultProfile::default()
    }))
    .await;
    let mut c = bound(&run).await;
    c.send(simple_submit("7377", "79161234567", b"x", false))
        .await;
    // The next PDU the simulator writes answers the enquire_link.
    let seq = c.send(Pdu::EnquireLink).await;
    let next = c.next().await;
    assert_eq!(
        (next.id(), next.sequence_number()),
        (CommandId::EnquireLinkResp, seq)
    );
    assert_eq!(run.sim.stats().dropped_responses, 1);
    // The message was still accepted.
    assert_eq!(run.sim.messages(Some("79161234567"), 10).len(), 1);
}

#[tokio::test]
async fn disconnects_close_the_connection() {
    let run = start(Config::default()).await;
    let mut c = bound(&run).await;
    run.sim
        .set_faults(FaultProfile {
            disconnect_share: 1.0,
            ..FaultProfile::default()
        })
        .unwrap();
    c.send(Pdu::EnquireLink).await;
    assert!(c.next_or_eof().await.is_none());
    assert_eq!(run.sim.stats().disconnects, 1);
}

#[tokio::test]
async fn binds_rejected_and_submit_errors() {
    let run = start(with_faults(FaultProfile {
        bind_reject_share: 1.0,
        ..FaultProfile::default()
    }))
    .await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRbindfail
    );
    run.sim
        .set_faults(FaultProfile {
            submit_error_share: 1.0,
            submit_error_status: Some(0x08),
            ..FaultProfile::default()
        })
        .unwrap();
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    assert_eq!(burst(&mut c, 2).await, [CommandStatus::EsmeRsyserr; 2]);
}

#[tokio::test]
async fn slow_responses_wait_their_latency() {
    let latency = Latency {
        min_ms: 80,
        max_ms: 80,
        ..Latency::default()
    };
    let run = start(with_faults(FaultProfile {
        latency,
        ..FaultProfile::default()
    }))
    .await;
    let mut c = bound(&run).await;
    let started = Instant::now();
    let status = burst(&mut c, 1).await;
    assert_eq!(status, [CommandStatus::EsmeRok]);
    assert!(started.elapsed() >= Duration::from_millis(80));
}

/// One outcome per submit: its status, or `None` when the response was dropped.
async fn scripted_run(seed: u64) -> Vec<Option<CommandStatus>> {
    let faults = FaultProfile {
        seed: Some(seed),
        drop_response_share: 0.3,
        submit_error_share: 0.3,
        ..FaultProfile::default()
    };
    let run = start(with_faults(faults)).await;
    let mut c = bound(&run).await;
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        c.send(simple_submit("7377", "79161234567", b"x", false))
            .await;
        c.send(Pdu::EnquireLink).await;
        let first = c.next().await;
        if first.id() == CommandId::EnquireLinkResp {
            outcomes.push(None);
        } else {
            outcomes.push(Some(first.status()));
            assert_eq!(c.next().await.id(), CommandId::EnquireLinkResp);
        }
    }
    outcomes
}

#[tokio::test]
async fn the_same_seed_gives_the_same_run() {
    let a = scripted_run(42).await;
    let b = scripted_run(42).await;
    let c = scripted_run(43).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let dropped = a.iter().filter(|o| o.is_none()).count();
    let errors = a
        .iter()
        .filter(|o| **o == Some(CommandStatus::EsmeRsubmitfail))
        .count();
    assert!((4..=20).contains(&dropped), "{dropped} dropped of 40");
    assert!((3..=20).contains(&errors), "{errors} errors of 40");
}

/// Indexes of the PDUs after which the simulator hung up, over `n` enquire_links.
async fn disconnect_run(seed: u64, n: usize) -> Vec<usize> {
    let faults = FaultProfile {
        seed: Some(seed),
        ..FaultProfile::default()
    };
    let run = start(with_faults(faults)).await;
    let mut c = bound(&run).await;
    run.sim
        .set_faults(FaultProfile {
            seed: Some(seed),
            disconnect_share: 0.2,
            ..FaultProfile::default()
        })
        .unwrap();
    let mut cuts = Vec::new();
    for i in 0..n {
        c.send(Pdu::EnquireLink).await;
        if c.next_or_eof().await.is_none() {
            cuts.push(i);
            // Reconnect; the bind itself may be cut too.
            loop {
                c = Raw::connect(run.smpp).await;
                let seq = c.send(common::bind_trx("checkin", "checkin")).await;
                if let Some(r) = c.next_or_eof().await {
                    assert_eq!(
                        (r.sequence_number(), r.status()),
                        (seq, CommandStatus::EsmeRok)
                    );
                    break;
                }
            }
        }
    }
    assert!(run.sim.stats().disconnects as usize >= cuts.len());
    cuts
}

#[tokio::test]
async fn disconnects_follow_the_share_and_the_seed() {
    let a = disconnect_run(7, 60).await;
    let b = disconnect_run(7, 60).await;
    assert_eq!(a, b);
    assert!(
        (3..=25).contains(&a.len()),
        "{} disconnects in 60 PDUs at 0.2",
        a.len()
    );
}
