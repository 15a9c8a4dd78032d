//! The SMS inbox and the outbox's signal on both backends: outcomes only
//! after the commit, replies handed to a subscribed sender in memory, nothing
//! claimed before the sender subscribed (which recovers `sending` rows first),
//! what does not fit put back and the sender woken, `enqueue` waking it.

mod common;

use std::sync::Arc;

use checkin_core::store::{Rejection, SmsOutcome};
use checkin_core::{
    InboxConfig, InboxError, ManualClock, Msisdn, NewMessage, OutboxStatus, Priority, ServiceZone,
    SmsInbox, Store, StoreConfig,
};
use common::{backends, premises, sms, t0};
use tokio::sync::oneshot;

async fn enqueue(store: &Store, text: &str) -> i64 {
    let new = NewMessage {
        recipient: Msisdn::parse("+79161234567").unwrap(),
        text: text.into(),
        priority: Priority::Confirmation,
    };
    store.outbox().enqueue(&new, t0()).await.unwrap()
}

/// An inbox whose committer runs until the returned sender is used or dropped.
fn inbox(store: &Store) -> (SmsInbox, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (inbox, committer) = SmsInbox::new(
        store.clone(),
        ServiceZone::default(),
        Arc::new(ManualClock::new(t0())),
        InboxConfig::default(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(committer.run(async move {
        let _ = stopped.await;
    }));
    (inbox, stop, task)
}

async fn status(store: &Store, id: i64) -> OutboxStatus {
    store.outbox().message(id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn nothing_is_claimed_before_the_sender_subscribed_and_subscribing_recovers_sending_rows() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let outbox = store.outbox();
        // A previous run claimed this one and died.
        let orphan = enqueue(store, "orphan").await;
        assert_eq!(store.outbox().claim_ready(10, t0()).await.unwrap().len(), 1);
        assert_eq!(outbox.room(), 0, "{}", db.label);
        let (inbox, stop, task) = inbox(store);
        let outcome = inbox.submit(sms("+79160000001", "что это")).await.unwrap();
        assert!(
            matches!(
                outcome,
                SmsOutcome::Rejected {
                    reason: Rejection::Unrecognized
                }
            ),
            "{}: {outcome:?}",
            db.label
        );
        let reply = store
            .outbox()
            .messages_to(&Msisdn::parse("+79160000001").unwrap())
            .await
            .unwrap();
        assert_eq!(reply.len(), 1);
        assert_eq!(
            reply[0].status,
            OutboxStatus::Pending,
            "{}: no sender, no claim",
            db.label
        );
        let feed = outbox.subscribe(8, t0()).await.unwrap();
        assert_eq!(feed.requeued(), 1, "{}", db.label);
        assert_eq!(status(store, orphan).await, OutboxStatus::Pending);
        assert_eq!(outbox.room(), 8);
        // The inbox's commit left a reply pending and woke the sender.
        assert!(feed.take_wake(), "{}", db.label);
        drop(stop);
        task.await.unwrap();
    }
}

#[tokio::test]
async fn the_inbox_hands_replies_to_the_subscribed_sender_after_the_commit() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let premises = premises(store).await;
        let mut feed = store.outbox().subscribe(8, t0()).await.unwrap();
        let (inbox, stop, task) = inbox(store);
        let outcome = inbox
            .submit(sms("+79160000002", &premises.code.to_string()))
            .await
            .unwrap();
        let SmsOutcome::CheckedIn { checkin_id } = outcome else {
            panic!("{}: {outcome:?}", db.label);
        };
        assert!(checkin_id > 0);
        let handed = feed.try_recv().expect("the reply is handed over");
        assert_eq!(
            store.open_recipient(&handed).unwrap(),
            Msisdn::parse("+79160000002").unwrap()
        );
        assert_eq!(handed.attempts, 1, "{}", db.label);
        assert_eq!(status(store, handed.id).await, OutboxStatus::Sending);
        assert!(feed.try_recv().is_none());
        drop(stop);
        task.await.unwrap();
        // Stopped: later SMS are refused as temporary, nothing lost.
        assert!(matches!(
            inbox.submit(sms("+79160000002", "help")).await,
            Err(InboxError::Stopped)
        ));
    }
}

#[tokio::test]
async fn what_does_not_fit_goes_back_pending_and_wakes_the_sender() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let outbox = store.outbox();
        let mut feed = outbox.subscribe(1, t0()).await.unwrap();
        enqueue(store, "a").await;
        enqueue(store, "b").await;
        let _ = feed.take_wake();
        let claimed = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let left = outbox.hand_over(claimed, t0()).await;
        assert_eq!(left.len(), 1, "{}", db.label);
        assert_eq!(status(store, left[0].id).await, OutboxStatus::Pending);
        assert!(feed.take_wake(), "{}", db.label);
        assert!(feed.try_recv().is_some());
        // A closed lane takes nothing.
        feed.close();
        assert_eq!(outbox.room(), 0);
    }
}

#[tokio::test]
async fn enqueue_wakes_the_sender_and_one_sender_subscribes_at_a_time() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let outbox = store.outbox();
        let feed = outbox.subscribe(4, t0()).await.unwrap();
        assert!(!feed.take_wake(), "{}", db.label);
        enqueue(store, "otp").await;
        assert!(feed.take_wake(), "{}", db.label);
        assert!(!feed.take_wake(), "a wake is taken once");
        assert!(outbox.subscribe(4, t0()).await.is_err(), "{}", db.label);
        drop(feed);
        assert_eq!(outbox.room(), 0);
        assert!(outbox.subscribe(4, t0()).await.is_ok(), "{}", db.label);
    }
}

/// A USSD check-in rides the SMS commit: channel `ussd`, the visit (address
/// and time) returned for the final screen, the same dedupe as an SMS of the
/// same phone, and the SMS confirmation queued only when asked for.
#[tokio::test]
async fn a_ussd_check_in_is_an_sms_check_in_with_its_visit() {
    use checkin_core::Channel;
    use parser::CodeDigits;
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let digits = CodeDigits::from_ascii(p.code.digits().as_bytes().try_into().unwrap())
            .expect("nine digits");
        let (inbox, stop, task) = inbox(store);
        let phone = Msisdn::parse("+79160000021").unwrap();
        let done = inbox
            .submit_ussd(phone.clone(), digits, t0(), true, None)
            .await
            .unwrap();
        assert!(
            matches!(done.outcome, SmsOutcome::CheckedIn { .. }),
            "{label}: {done:?}"
        );
        let visit = done.visit.expect("the visit comes with the outcome");
        assert_eq!((visit.premises.id, visit.at), (p.id, t0()), "{label}");
        let rows = store.checkins().checkins_of(&phone).await.unwrap();
        assert_eq!(rows.len(), 1, "{label}");
        assert_eq!(rows[0].channel, Channel::Ussd, "{label}");
        let sent = store.outbox().messages_to(&phone).await.unwrap();
        assert_eq!(sent.len(), 1, "{label}: the SMS confirmation is queued");

        // The same phone texting the code is the same visit (dedupe).
        let again = inbox
            .submit(sms("+79160000021", &format!("ВХОД*{}", p.code)))
            .await
            .unwrap();
        assert!(
            matches!(again, SmsOutcome::Duplicate { .. }),
            "{label}: {again:?}"
        );

        // Without the SMS confirmation: recorded, nothing queued.
        let quiet = Msisdn::parse("+79160000022").unwrap();
        let done = inbox
            .submit_ussd(quiet.clone(), digits, t0(), false, None)
            .await
            .unwrap();
        assert!(
            matches!(done.outcome, SmsOutcome::CheckedIn { .. }),
            "{label}"
        );
        assert!(done.visit.is_some(), "{label}");
        assert!(store.outbox().messages_to(&quiet).await.unwrap().is_empty());
        assert_eq!(store.checkins().count_checkins(p.id).await.unwrap(), 2);
        let _ = stop.send(());
        task.await.unwrap();
    }
}
