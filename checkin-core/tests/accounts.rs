//! The organization cabinet's storage on both backends: sign-up and log-in
//! records, sessions (expiry, log-out), API tokens (hashed, listed by
//! prefix, revoked, the `checkin org create` one included), premises scoped
//! to their organization (list by cursor, edit, deactivate), and check-ins
//! counted per UTC hour and channel.

mod common;

use checkin_core::store::{password_matches, NewOrganization, NewPremises, STATS_DAYS_MAX};
use checkin_core::{Channel, Msisdn, NewCheckIn, StoreConfig};
use chrono::Duration;
use common::{backends, t0, TestDb};

#[tokio::test]
async fn sign_up_sessions_and_tokens() {
    for db in backends(StoreConfig::default()).await {
        let TestDb { label, store, .. } = &db;
        let accounts = store.accounts();
        assert!(accounts
            .sign_up("Кафе", "a@example.ru", "short", t0())
            .await
            .is_err());
        let org = accounts
            .sign_up("Кафе", "A@Example.ru", "correct horse battery", t0())
            .await
            .unwrap();
        assert_eq!(org.email, "a@example.ru", "{label}");
        let record = accounts
            .login_record(" a@EXAMPLE.ru ")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.org_id, org.id);
        let hash = record.password_hash.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{label}");
        assert!(password_matches(Some(&hash), "correct horse battery"));
        assert!(!password_matches(Some(&hash), "wrong horse battery"));
        assert!(!password_matches(None, "correct horse battery"));
        assert!(accounts
            .login_record("b@example.ru")
            .await
            .unwrap()
            .is_none());
        assert!(
            accounts
                .tokens(org.id)
                .await
                .unwrap()
                .iter()
                .all(|t| t.revoked_at.is_some()),
            "{label}: sign-up leaves no live token"
        );

        let session = accounts
            .open_session(org.id, Duration::hours(12), t0())
            .await
            .unwrap();
        let seen = accounts
            .session_org(&session.secret, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (seen.org_id, seen.name.as_str()),
            (org.id, "Кафе"),
            "{label}"
        );
        let late = t0() + Duration::hours(12);
        assert!(accounts
            .session_org(&session.secret, late)
            .await
            .unwrap()
            .is_none());
        let other = accounts
            .open_session(org.id, Duration::hours(1), t0())
            .await
            .unwrap();
        assert_eq!(
            accounts
                .purge_sessions(t0() + Duration::hours(1))
                .await
                .unwrap(),
            1,
            "{label}"
        );
        assert!(accounts
            .session_org(&other.secret, t0())
            .await
            .unwrap()
            .is_none());
        assert!(accounts
            .session_org(&session.secret, t0())
            .await
            .unwrap()
            .is_some());
        accounts.close_session(&session.secret, t0()).await.unwrap();
        assert!(accounts
            .session_org(&session.secret, t0())
            .await
            .unwrap()
            .is_none());

        let (info, secret) = accounts.create_token(org.id, "касса", t0()).await.unwrap();
        assert_eq!(info.prefix, secret[..8], "{label}");
        assert_eq!(accounts.token_org(&secret).await.unwrap(), Some(org.id));
        assert!(
            !accounts
                .revoke_token(org.id + 1, info.id, t0())
                .await
                .unwrap(),
            "{label}"
        );
        assert!(accounts.revoke_token(org.id, info.id, t0()).await.unwrap());
        assert_eq!(accounts.token_org(&secret).await.unwrap(), None, "{label}");

        let cli = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "Бар".into(),
                    email: "bar@example.ru".into(),
                    password: None,
                },
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(
            accounts.token_org(&cli.api_token).await.unwrap(),
            Some(cli.organization.id),
            "{label}: the printed token works"
        );
    }
}

#[tokio::test]
async fn premises_are_scoped_to_their_organization_and_counted_per_hour() {
    for db in backends(StoreConfig::default()).await {
        let TestDb { label, store, .. } = &db;
        let p = common::premises(store).await;
        let other = common::premises(store).await;
        let orgs = store.orgs();
        assert_eq!(
            orgs.org_premises(p.org_id, p.id).await.unwrap(),
            Some(p.clone())
        );
        assert_eq!(
            orgs.org_premises(p.org_id, other.id).await.unwrap(),
            None,
            "{label}"
        );
        assert!(orgs
            .update_premises(p.org_id, other.id, "Захвачено", None, None)
            .await
            .unwrap()
            .is_none());
        assert!(!orgs
            .set_org_premises_active(p.org_id, other.id, false)
            .await
            .unwrap());
        assert!(
            orgs.premises_by_id(other.id).await.unwrap().unwrap().active,
            "{label}"
        );

        for n in 0..3 {
            orgs.add_premises(
                &NewPremises {
                    org_id: p.org_id,
                    address: format!("Арбат, {n}"),
                    kind: Some("бар".into()),
                    stay_minutes: None,
                },
                t0(),
            )
            .await
            .unwrap();
        }
        let first = orgs.list_premises(p.org_id, 0, 2).await.unwrap();
        assert_eq!(first.len(), 2, "{label}");
        let rest = orgs.list_premises(p.org_id, first[1].id, 2).await.unwrap();
        assert_eq!(rest.len(), 2, "{label}");
        assert!(rest
            .iter()
            .all(|r| r.org_id == p.org_id && r.stay_minutes == 120));

        let edited = orgs
            .update_premises(p.org_id, p.id, " Тверская, 1 ", Some("офис"), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (edited.address.as_str(), edited.stay_minutes),
            ("Тверская, 1", 480)
        );
        assert!(orgs
            .update_premises(p.org_id, p.id, "a\tb", None, None)
            .await
            .is_err());
        assert!(orgs
            .set_org_premises_active(p.org_id, p.id, false)
            .await
            .unwrap());

        let visit = |phone: &str, channel, at| NewCheckIn {
            phone: Msisdn::parse(phone).unwrap(),
            code: other.code,
            channel,
            at,
            consent: true,
        };
        let checkins = store.checkins();
        checkins
            .record_checkin(&visit("+79160000001", Channel::Sms, t0()))
            .await
            .unwrap();
        checkins
            .record_checkin(&visit("+79160000002", Channel::Sms, t0()))
            .await
            .unwrap();
        checkins
            .record_checkin(&visit("+79160000003", Channel::Web, t0()))
            .await
            .unwrap();
        let old = t0() - Duration::days(STATS_DAYS_MAX + 1);
        checkins
            .record_checkin(&visit("+79160000004", Channel::Sms, old))
            .await
            .unwrap();
        let counts = orgs
            .premises_hourly_counts(other.id, old - Duration::days(1), t0() + Duration::hours(1))
            .await
            .unwrap();
        let total: u64 = counts.iter().map(|c| c.count).sum();
        assert_eq!(
            total, 3,
            "{label}: the range is cut to {STATS_DAYS_MAX} days"
        );
        let sms = counts.iter().find(|c| c.channel == Channel::Sms).unwrap();
        assert_eq!(sms.count, 2, "{label}");
        assert_eq!(
            sms.hour,
            t0() - Duration::minutes(13),
            "{label}: the hour's start"
        );
    }
}
