//! The link against the bundled SMSC simulator, in-process on 127.0.0.1:0:
//! submits (GSM, Cyrillic, long), bind refusals, enquire_link timeouts,
//! throttling, MO (one and three UCS2 parts), failing handlers, receipts,
//! clean shutdown.

mod common;

use std::collections::HashSet;

use common::{link_config, next_event, proxy, recorder, start_sim, Event, WAIT};
use simulator::{faults::ThrottleStatus, Config, FaultProfile, MoEncoding, MoRequest};
use smsc_link::{
    bind_once, BindState, CommandStatus, DeliveryState, Error, Link, LinkConfig, SubmitOptions,
    SubmitOutcome,
};

const PHONE: &str = "+79161234567";

async fn bound_link(config: LinkConfig) -> (Link, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (handler, events) = recorder(0);
    let link = Link::start(config, handler.clone(), handler).expect("valid config");
    assert!(tokio::time::timeout(WAIT, link.wait_bound(1))
        .await
        .expect("bound in time"));
    (link, events)
}

fn accepted(outcome: Result<SubmitOutcome, Error>) -> Vec<String> {
    match outcome {
        Ok(SubmitOutcome::Accepted { message_ids }) => message_ids,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn texts_reach_the_phone_whole_and_in_the_right_alphabet() {
    let sim = start_sim(Config::default()).await;
    let (link, _events) = bound_link(link_config(sim.smpp)).await;
    let long_cyrillic = "Вы отметились по адресу: Москва, Тверская улица, дом 7. ".repeat(3);
    let table = [
        ("Hello {world} 5€", 1, "gsm7"),
        ("Вы отметились: Тверская, 7", 1, "ucs2"),
        (long_cyrillic.as_str(), 3, "ucs2"),
        (&*"a".repeat(200), 2, "gsm7"),
    ];
    for (i, (text, parts, encoding)) in table.iter().enumerate() {
        let to = format!("+7916000000{i}");
        let ids = accepted(link.submit(&to, text, SubmitOptions::default()).await);
        assert_eq!(ids.len(), *parts, "{text}");
        let messages = sim.sim.messages(Some(&to), 10);
        assert_eq!(messages.len(), 1, "{text}");
        assert!(messages[0].complete);
        assert_eq!(messages[0].text, *text);
        assert_eq!(messages[0].from, "7377");
        let shown = serde_json::to_value(messages[0].encoding).expect("json");
        assert_eq!(shown, *encoding, "{text}");
    }
    link.shutdown().await;
}

#[tokio::test]
async fn wrong_password_or_system_id_is_refused() {
    let sim = start_sim(Config::default()).await;
    let mut config = link_config(sim.smpp);
    config.password = "wrong".into();
    assert!(matches!(
        bind_once(&config).await,
        Err(Error::BindRefused(CommandStatus::EsmeRinvpaswd))
    ));
    config.system_id = "nobody".into();
    assert!(matches!(
        bind_once(&config).await,
        Err(Error::BindRefused(CommandStatus::EsmeRinvsysid))
    ));

    // A link with bad credentials keeps retrying and never reports Bound.
    let (handler, _events) = recorder(0);
    let link = Link::start(config, handler.clone(), handler).expect("valid config");
    let mut state = link.state();
    tokio::time::timeout(
        WAIT,
        state.wait_for(|s| s.binds == [BindState::Reconnecting]),
    )
    .await
    .expect("reconnecting in time")
    .expect("state");
    assert!(sim.sim.stats().binds.rejected >= 1);
    assert_eq!(link.state().borrow().bound(), 0);
    let last_error = link.state().borrow().last_errors[0].clone();
    assert!(
        last_error
            .as_deref()
            .is_some_and(|e| e.contains("EsmeRinvsysid")),
        "{last_error:?}"
    );
    link.shutdown().await;
    assert!(link.state().borrow().is_down());
}

#[tokio::test]
async fn a_silent_link_is_declared_dead_and_rebound() {
    let sim = start_sim(Config::default()).await;
    let proxy = proxy(sim.smpp).await;
    let config = LinkConfig {
        enquire_link_interval_ms: 100,
        enquire_link_timeout_ms: 300,
        ..link_config(proxy.addr)
    };
    let (link, _events) = bound_link(config).await;
    let mut state = link.state();
    proxy.silence();
    tokio::time::timeout(WAIT, state.wait_for(|s| s.bound() == 0))
        .await
        .expect("declared dead in time")
        .expect("state");
    tokio::time::timeout(WAIT, state.wait_for(|s| s.all_bound()))
        .await
        .expect("rebound in time")
        .expect("state");
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    accepted(
        link.submit(PHONE, "after reconnect", SubmitOptions::default())
            .await,
    );
    link.shutdown().await;
}

#[tokio::test]
async fn throttling_pauses_the_bind_and_retries_in_order_without_loss() {
    for (status, window_max) in [
        (ThrottleStatus::Throttled, 1),
        (ThrottleStatus::Msgqful, 10),
    ] {
        let sim = start_sim(Config {
            faults: FaultProfile {
                throttle_per_s: Some(50),
                throttle_status: status,
                ..FaultProfile::default()
            },
            ..Config::default()
        })
        .await;
        let config = LinkConfig {
            window_max,
            ..link_config(sim.smpp)
        };
        let (link, _events) = bound_link(config).await;
        let count = 120;
        // Every tenth message is a three-part Cyrillic text.
        let text = |i: usize| {
            if i % 10 == 0 {
                format!("сообщение {i} {}", "ж".repeat(150))
            } else {
                format!("message {i}")
            }
        };
        let mut outcomes = Vec::new();
        for i in 0..count {
            let reply = link
                .enqueue(PHONE, &text(i), &SubmitOptions::default())
                .await
                .expect("queued");
            outcomes.push(reply);
        }
        for (i, reply) in outcomes.into_iter().enumerate() {
            let ids = accepted(reply.await.expect("answered"));
            assert_eq!(ids.len(), if i % 10 == 0 { 3 } else { 1 });
        }
        let stats = sim.sim.stats();
        assert!(stats.throttled > 0, "the simulator throttled");
        let messages = sim.sim.messages(Some(PHONE), 1000);
        assert!(messages.iter().all(|m| m.complete), "no segment lost");
        let texts: Vec<String> = messages.into_iter().map(|m| m.text).collect();
        let expected: Vec<String> = (0..count).map(text).collect();
        assert_eq!(texts.len(), count, "none lost, none duplicated");
        let unique: HashSet<&String> = texts.iter().collect();
        assert_eq!(unique.len(), count);
        if window_max == 1 {
            assert_eq!(texts, expected, "strict order with a window of 1");
        }
        link.shutdown().await;
    }
}

#[tokio::test]
async fn cyrillic_mo_in_one_and_in_three_parts() {
    let sim = start_sim(Config::default()).await;
    let (link, mut events) = bound_link(link_config(sim.smpp)).await;
    let short = "ВХОД*123-456-789";
    let long = format!("ВХОД*123-456-789 {}", "длинное сообщение ".repeat(9));
    for (text, parts) in [(short.to_string(), 1), (long.clone(), 3)] {
        let request = MoRequest {
            encoding: Some(MoEncoding::Ucs2),
            ..MoRequest::new(PHONE, text.clone())
        };
        let report = sim.sim.inject_mo(request).await.expect("delivered");
        assert!(report.delivered, "{report:?}");
        assert_eq!(report.parts, parts);
        match next_event(&mut events).await {
            Event::Mo(mo) => {
                assert_eq!(mo.text, text);
                assert_eq!(mo.from, PHONE);
                assert_eq!(mo.to, "7377");
                assert_eq!(mo.parts, parts);
                assert_eq!(mo.data_coding, 8);
            }
            other => panic!("expected an MO, got {other:?}"),
        }
    }
    link.shutdown().await;
}

#[tokio::test]
async fn a_failing_mo_handler_gets_the_message_again() {
    let sim = start_sim(Config {
        delivery: simulator::config::DeliveryConfig {
            backoff_initial_ms: 10,
            ..Default::default()
        },
        ..Config::default()
    })
    .await;
    let (handler, mut events) = recorder(1);
    let link = Link::start(link_config(sim.smpp), handler.clone(), handler).expect("config");
    assert!(link.wait_bound(1).await);
    let report = sim
        .sim
        .inject_mo(MoRequest::new(PHONE, "ВХОД*123-456-789"))
        .await
        .expect("delivered");
    assert!(report.delivered);
    assert_eq!(report.attempts, 2, "first answered with a temporary error");
    assert!(matches!(next_event(&mut events).await, Event::MoFailed(_)));
    match next_event(&mut events).await {
        Event::Mo(mo) => assert_eq!(mo.text, "ВХОД*123-456-789"),
        other => panic!("expected the redelivered MO, got {other:?}"),
    }
    link.shutdown().await;
}

#[tokio::test]
async fn receipts_find_their_submits() {
    let sim = start_sim(Config {
        receipts: simulator::config::ReceiptConfig {
            delay_ms: 0,
            ..Default::default()
        },
        ..Config::default()
    })
    .await;
    let (link, mut events) = bound_link(link_config(sim.smpp)).await;
    let options = SubmitOptions {
        registered_delivery: true,
        ..SubmitOptions::default()
    };
    let long = "Уведомление о возможном контакте. ".repeat(4);
    let ids = accepted(link.submit(PHONE, &long, options).await);
    assert_eq!(ids.len(), 3);
    let mut seen = HashSet::new();
    while seen.len() < ids.len() {
        match next_event(&mut events).await {
            Event::Receipt(r) => {
                assert!(ids.contains(&r.message_id), "{r:?} vs {ids:?}");
                assert_eq!(r.state, DeliveryState::Delivered);
                assert_eq!(r.recipient.trim_start_matches('+'), &PHONE[1..]);
                seen.insert(r.message_id);
            }
            other => panic!("expected a receipt, got {other:?}"),
        }
    }
    link.shutdown().await;
}

#[tokio::test]
async fn shutdown_unbinds_and_later_submits_fail_as_not_sent() {
    let sim = start_sim(Config::default()).await;
    let (link, _events) = bound_link(link_config(sim.smpp)).await;
    accepted(link.submit(PHONE, "bye", SubmitOptions::default()).await);
    link.shutdown().await;
    assert!(link.state().borrow().is_down());
    let unbinds = sim.sim.stats().pdus_in.get("unbind").copied().unwrap_or(0);
    assert_eq!(unbinds, 1);
    assert!(matches!(
        link.submit(PHONE, "too late", SubmitOptions::default())
            .await,
        Err(Error::ShutDown)
    ));
}

#[tokio::test]
async fn a_transmitter_and_receiver_pair_submits_and_receives() {
    let sim = start_sim(Config::default()).await;
    let config = LinkConfig {
        bind_mode: smsc_link::BindMode::TransmitterReceiver,
        binds: 2,
        ..link_config(sim.smpp)
    };
    let (handler, mut events) = recorder(0);
    let link = Link::start(config, handler.clone(), handler).expect("config");
    assert!(tokio::time::timeout(WAIT, link.wait_bound(4))
        .await
        .expect("bound in time"));
    assert_eq!(link.state().borrow().binds.len(), 4);
    for i in 0..20 {
        accepted(
            link.submit(PHONE, &format!("pool {i}"), SubmitOptions::default())
                .await,
        );
    }
    assert_eq!(sim.sim.messages(Some(PHONE), 100).len(), 20);
    let report = sim
        .sim
        .inject_mo(MoRequest::new(PHONE, "ВХОД*123-456-789"))
        .await
        .expect("delivered");
    assert!(report.delivered);
    assert!(matches!(next_event(&mut events).await, Event::Mo(_)));
    link.shutdown().await;
}

#[tokio::test]
async fn a_dead_primary_host_fails_over_to_the_next() {
    let sim = start_sim(Config::default()).await;
    // A port nobody listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let config = LinkConfig {
        failover_hosts: vec![smsc_link::Host {
            host: sim.smpp.ip().to_string(),
            port: sim.smpp.port(),
        }],
        ..link_config(dead)
    };
    let (link, _events) = bound_link(config).await;
    accepted(
        link.submit(PHONE, "via the second host", SubmitOptions::default())
            .await,
    );
    link.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_segments() {
    let sim = start_sim(Config::default()).await;
    let config = LinkConfig {
        segments_per_second: 100,
        window_max: 50,
        ..link_config(sim.smpp)
    };
    let (link, _events) = bound_link(config).await;
    let started = tokio::time::Instant::now();
    let mut replies = Vec::new();
    for i in 0..60 {
        let reply = link
            .enqueue(PHONE, &format!("rate {i}"), &SubmitOptions::default())
            .await
            .expect("queued");
        replies.push(reply);
    }
    for reply in replies {
        accepted(reply.await.expect("answered"));
    }
    // 60 segments at 100/s with a burst of 10 need at least 0.5 s.
    assert!(started.elapsed() >= std::time::Duration::from_millis(450));
    assert_eq!(sim.sim.stats().throttled, 0);
    link.shutdown().await;
}

#[tokio::test]
async fn a_contract_of_thirty_segments_a_second_holds_in_every_second() {
    let sim = start_sim(Config::default()).await;
    let contract = 30;
    let config = LinkConfig {
        segments_per_second: contract,
        window_max: 100,
        ..link_config(sim.smpp)
    };
    let (link, _events) = bound_link(config).await;
    // Offered far more than the contract at once: the rate is all that
    // spaces them, from the very first second (no burst on top).
    let mut replies = Vec::new();
    for i in 0..70 {
        let reply = link
            .enqueue(PHONE, &format!("contract {i}"), &SubmitOptions::default())
            .await
            .expect("queued");
        replies.push(reply);
    }
    for reply in replies {
        accepted(reply.await.expect("answered"));
    }
    let busiest = sim.sim.busiest_second_segments(None);
    assert!(
        busiest <= contract as usize,
        "{busiest} segments in one second, over the contract of {contract}"
    );
    // The margin costs 5 %; a loaded machine's scheduling a little more.
    assert!(
        busiest * 100 >= contract as usize * 85,
        "only {busiest}: the contract is not used"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn a_withdrawn_message_is_never_sent_and_one_being_written_is() {
    let sim = start_sim(Config::default()).await;
    let config = LinkConfig {
        // One segment every 100 ms: the later messages wait behind the rate.
        segments_per_second: 10,
        ..link_config(sim.smpp)
    };
    let (link, _events) = bound_link(config).await;
    let withdraw = tokio_util::sync::CancellationToken::new();
    let mut sends = Vec::new();
    for i in 0..20 {
        let link = link.clone();
        let options = SubmitOptions {
            withdraw: Some(withdraw.clone()),
            ..SubmitOptions::default()
        };
        sends.push(tokio::spawn(async move {
            link.submit(PHONE, &format!("withdraw {i}"), options).await
        }));
    }
    // Two through, the rest still waiting behind the rate.
    while sim.sim.messages(Some(PHONE), 100).len() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    withdraw.cancel();
    let mut sent = 0;
    let mut withdrawn = 0;
    for send in sends {
        match tokio::time::timeout(WAIT, send)
            .await
            .expect("answered at once")
            .expect("joined")
        {
            Ok(SubmitOutcome::Accepted { .. }) => sent += 1,
            Err(Error::Withdrawn) => withdrawn += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Let anything the link still held show up at the SMSC.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stored = sim.sim.messages(Some(PHONE), 100).len();
    assert!(
        sent >= 2 && withdrawn >= 10,
        "{sent} sent, {withdrawn} withdrawn"
    );
    assert_eq!(
        stored, sent,
        "the SMSC got exactly the messages reported sent"
    );
    let late = link
        .submit(
            PHONE,
            "after the withdrawal",
            SubmitOptions {
                withdraw: Some(withdraw.clone()),
                ..SubmitOptions::default()
            },
        )
        .await;
    assert!(matches!(late, Err(Error::Withdrawn)), "{late:?}");
    link.shutdown().await;
}

#[tokio::test]
async fn under_disconnects_and_lost_responses_no_message_vanishes_or_doubles() {
    let sim = start_sim(Config {
        faults: FaultProfile {
            seed: Some(7),
            disconnect_share: 0.02,
            drop_response_share: 0.02,
            ..FaultProfile::default()
        },
        ..Config::default()
    })
    .await;
    let config = LinkConfig {
        window_max: 10,
        response_timeout_ms: 300,
        ..link_config(sim.smpp)
    };
    let (link, _events) = bound_link(config).await;
    let count = 300;
    let mut replies = Vec::new();
    for i in 0..count {
        let reply = link
            .enqueue(PHONE, &format!("chaos {i}"), &SubmitOptions::default())
            .await
            .expect("queued");
        replies.push(reply);
    }
    let mut accepted_texts = HashSet::new();
    let mut unknown = 0;
    for (i, reply) in replies.into_iter().enumerate() {
        let outcome = tokio::time::timeout(WAIT, reply)
            .await
            .expect("every submit answered in time")
            .expect("answered");
        match outcome {
            Ok(SubmitOutcome::Accepted { .. }) => {
                accepted_texts.insert(format!("chaos {i}"));
            }
            Ok(SubmitOutcome::Unknown { .. }) => unknown += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let stored: Vec<String> = sim
        .sim
        .messages(Some(PHONE), 10_000)
        .into_iter()
        .map(|m| m.text)
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "nothing was sent twice");
    for text in &accepted_texts {
        assert!(unique.contains(text), "accepted {text} reached the SMSC");
    }
    // Unknown ones may or may not have arrived; nothing else did.
    assert!(stored.len() <= accepted_texts.len() + unknown);
    assert!(sim.sim.stats().disconnects > 0, "the fault was exercised");
    link.shutdown().await;
}

#[tokio::test]
async fn spread_binds_start_on_every_host() {
    let first = start_sim(Config::default()).await;
    let second = start_sim(Config::default()).await;
    let config = LinkConfig {
        binds: 2,
        spread_binds: true,
        failover_hosts: vec![smsc_link::Host {
            host: second.smpp.ip().to_string(),
            port: second.smpp.port(),
        }],
        ..link_config(first.smpp)
    };
    let (handler, _events) = recorder(0);
    let link = Link::start(config, handler.clone(), handler).expect("config");
    assert!(tokio::time::timeout(WAIT, link.wait_bound(2))
        .await
        .expect("bound in time"));
    assert_eq!(first.sim.receivers_bound(), 1);
    assert_eq!(second.sim.receivers_bound(), 1);
    link.shutdown().await;
}
