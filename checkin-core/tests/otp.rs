//! One-time codes of the web check-in on both backends: issued with their SMS
//! in one commit, stored hashed, spent once (even by two entries at once),
//! counted against their attempts, dead once expired; and the guard's look-ups.

mod common;

use checkin_core::otp::{OtpCode, OtpKey, OTP_ATTEMPTS_MAX};
use checkin_core::store::{NewOrganization, NewOtp, NewPremises, OtpCheck};
use checkin_core::{Channel, Keys, Msisdn, Premises, Priority, Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use common::backends;
use sqlx::Row;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

fn phone() -> Msisdn {
    Msisdn::parse("+79161234567").unwrap()
}

async fn premises(store: &Store, address: &str) -> Premises {
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе «Ромашка»".into(),
                email: format!("owner{}@example.ru", rand::random::<u32>()),
                password: None,
            },
            t0(),
        )
        .await
        .unwrap();
    store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.organization.id,
                address: address.into(),
                kind: None,
                stay_minutes: None,
            },
            t0(),
        )
        .await
        .unwrap()
}

async fn issue(store: &Store, key: &OtpKey, premises: &Premises, code: &OtpCode) -> i64 {
    let phone = phone();
    let new = NewOtp {
        phone: &phone,
        premises_id: premises.id,
        code,
        expires_at: t0() + chrono::Duration::minutes(5),
        text: checkin_core::otp::sms_text(code),
    };
    store.otps().issue_otp(&new, key, t0()).await.unwrap()
}

#[tokio::test]
async fn a_code_goes_out_with_its_sms_and_checks_in_once() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let key = OtpKey::new(&Keys::generate());
        let here = premises(store, "Тверская ул., 1").await;
        let code = OtpCode::parse("123456").unwrap();
        let id = issue(store, &key, &here, &code).await;

        let sms = store.outbox().messages_to(&phone()).await.unwrap();
        assert_eq!(sms.len(), 1, "{}", db.label);
        assert_eq!(sms[0].priority, Priority::Otp);
        assert_eq!(sms[0].text, "Код для входа: 123456. Никому не сообщайте");
        let row = sqlx::query("SELECT code_hash FROM otps WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool_for_tests())
            .await
            .unwrap();
        let hash: Vec<u8> = row.try_get("code_hash").unwrap();
        assert_eq!(hash.len(), 32);
        assert!(!String::from_utf8_lossy(&hash).contains("123456"));
        let issued = store.otps().issued_otp(id).await.unwrap().unwrap();
        assert_eq!((issued.premises_id, issued.phone), (here.id, phone()));

        let at = t0() + chrono::Duration::minutes(1);
        let wrong = OtpCode::parse("654321").unwrap();
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, here.id, &wrong, &key, true, at)
                .await
                .unwrap(),
            OtpCheck::Wrong {
                attempts_left: OTP_ATTEMPTS_MAX - 1
            },
            "{}",
            db.label
        );
        let other = premises(store, "Арбат, 5").await;
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, other.id, &code, &key, true, at)
                .await
                .unwrap(),
            OtpCheck::Unknown,
            "a code is good only at its premises"
        );
        let OtpCheck::Confirmed {
            recorded,
            phone: who,
        } = store
            .otps()
            .confirm_otp(id, here.id, &code, &key, true, at)
            .await
            .unwrap()
        else {
            panic!("{}: the right code did not confirm", db.label);
        };
        assert_eq!(who, phone());
        assert_eq!(recorded.checkin.channel, Channel::Web);
        assert!(recorded.checkin.consent);
        assert_eq!(recorded.checkin.at, at);
        assert_eq!(recorded.premises.id, here.id);
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, here.id, &code, &key, true, at)
                .await
                .unwrap(),
            OtpCheck::Used
        );
        assert_eq!(
            store.checkins().checkins_of(&phone()).await.unwrap().len(),
            1
        );
        assert_eq!(
            store
                .checkins()
                .checkin_by_id(recorded.checkin.id)
                .await
                .unwrap(),
            Some(recorded.checkin.clone())
        );
        assert_eq!(
            store
                .checkins()
                .checkin_by_id(recorded.checkin.id + 99)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .orgs()
                .organization_name(here.org_id)
                .await
                .unwrap()
                .as_deref(),
            Some("Кафе «Ромашка»")
        );
        assert_eq!(
            store
                .otps()
                .confirm_otp(id + 99, here.id, &code, &key, true, at)
                .await
                .unwrap(),
            OtpCheck::Unknown
        );
    }
}

#[tokio::test]
async fn attempts_run_out_and_codes_expire() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let key = OtpKey::new(&Keys::generate());
        let here = premises(store, "Тверская ул., 1").await;
        let code = OtpCode::parse("123456").unwrap();
        let wrong = OtpCode::parse("000000").unwrap();
        let id = issue(store, &key, &here, &code).await;
        for left in (0..OTP_ATTEMPTS_MAX).rev() {
            assert_eq!(
                store
                    .otps()
                    .confirm_otp(id, here.id, &wrong, &key, true, t0())
                    .await
                    .unwrap(),
                OtpCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, here.id, &code, &key, true, t0())
                .await
                .unwrap(),
            OtpCheck::AttemptsExhausted,
            "{}",
            db.label
        );

        let id = issue(store, &key, &here, &code).await;
        let end = t0() + chrono::Duration::minutes(5);
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, here.id, &code, &key, true, end)
                .await
                .unwrap(),
            OtpCheck::Expired
        );
        assert!(store
            .checkins()
            .checkins_of(&phone())
            .await
            .unwrap()
            .is_empty());

        let id = issue(store, &key, &here, &code).await;
        store
            .orgs()
            .set_premises_active(here.id, false)
            .await
            .unwrap();
        assert_eq!(
            store
                .otps()
                .confirm_otp(id, here.id, &code, &key, true, t0())
                .await
                .unwrap(),
            OtpCheck::InactivePremises
        );

        assert_eq!(
            store.otps().purge_otps(end).await.unwrap(),
            0,
            "not yet expired before `end`"
        );
        assert_eq!(
            store
                .otps()
                .purge_otps(end + chrono::Duration::seconds(1))
                .await
                .unwrap(),
            3
        );
        assert_eq!(store.otps().issued_otp(id).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_entries_of_one_code_at_once_check_in_once() {
    for db in backends(StoreConfig::default()).await {
        let store = db.store.clone();
        let key = OtpKey::new(&Keys::generate());
        let here = premises(&store, "Тверская ул., 1").await;
        let code = OtpCode::parse("123456").unwrap();
        let id = issue(&store, &key, &here, &code).await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, key, code) = (store.clone(), key.clone(), code.clone());
                let premises_id = here.id;
                tokio::spawn(async move {
                    store
                        .otps()
                        .confirm_otp(id, premises_id, &code, &key, true, t0())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut confirmed = 0;
        for task in tasks {
            match task.await.unwrap() {
                OtpCheck::Confirmed { .. } => confirmed += 1,
                OtpCheck::Used => {}
                other => panic!("{}: {other:?}", db.label),
            }
        }
        assert_eq!(confirmed, 1, "{}", db.label);
        assert_eq!(
            store.checkins().checkins_of(&phone()).await.unwrap().len(),
            1
        );
    }
}
