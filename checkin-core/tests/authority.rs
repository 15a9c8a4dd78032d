//! The health authority's cabinet storage on both backends: people (argon2id,
//! e-mail unique, only for an existing authority), sessions (expiry,
//! log-out), API tokens (the `checkin authority create` one carried, several,
//! revoked ones refused), the audit log written with each action (log-in,
//! tokens, kill switch, confirmed upload) and purged with the retention
//! period, cases listed per authority, and the visits a case exposed.

mod common;

use checkin_core::store::{password_matches, AuditNote, TokenHolder};
use checkin_core::{Channel, ExposureConfig, Msisdn, NewCheckIn, StoreConfig};
use chrono::Duration;
use common::{backends, premises, t0, TestDb};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn users_sessions_tokens_and_the_audit_log() {
    for db in backends(StoreConfig::default()).await {
        let TestDb { label, store, .. } = &db;
        let (authority, first_token) = store
            .orgs()
            .create_authority("Роспотребнадзор", t0())
            .await
            .unwrap();
        let (other, _) = store.orgs().create_authority("Другой", t0()).await.unwrap();
        let cabinet = store.authority();
        assert!(cabinet
            .add_user(authority, "a@example.ru", "short", t0())
            .await
            .is_err());
        assert!(cabinet
            .add_user(9999, "a@example.ru", PASSWORD, t0())
            .await
            .is_err());
        let user_id = cabinet
            .add_user(authority, "A@Example.ru", PASSWORD, t0())
            .await
            .unwrap();
        assert!(
            cabinet
                .add_user(other, "a@example.ru", PASSWORD, t0())
                .await
                .is_err(),
            "{label}: e-mails are unique"
        );
        let record = cabinet
            .login_record(" a@EXAMPLE.ru")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((record.user_id, record.authority_id), (user_id, authority));
        assert!(record.password_hash.starts_with("$argon2id$"), "{label}");
        assert!(password_matches(Some(&record.password_hash), PASSWORD));

        let session = cabinet
            .open_session(user_id, Duration::hours(12), t0())
            .await
            .unwrap();
        let user = cabinet
            .session_user(&session.secret, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.authority_id, authority);
        assert_eq!(user.email, "a@example.ru");
        assert!(cabinet
            .session_user(&session.secret, t0() + Duration::hours(13))
            .await
            .unwrap()
            .is_none());
        assert!(cabinet.session_user("nope", t0()).await.unwrap().is_none());

        // The token `checkin authority create` printed is listed and works;
        // a new one too; a revoked one no more.
        let tokens = cabinet.tokens(authority).await.unwrap();
        assert_eq!(tokens.len(), 1, "{label}");
        assert!(matches!(
            store.orgs().token_holder(&first_token).await.unwrap(),
            Some(TokenHolder::Authority(a)) if a.id == authority
        ));
        let (info, secret) = cabinet.create_token(&user, "ЕГИСЗ", t0()).await.unwrap();
        assert_eq!(cabinet.tokens(authority).await.unwrap().len(), 2);
        assert!(cabinet.tokens(other).await.unwrap().len() == 1);
        assert!(matches!(
            store.orgs().token_holder(&secret).await.unwrap(),
            Some(TokenHolder::Authority(a)) if a.id == authority
        ));
        let mut stranger = user.clone();
        stranger.authority_id = other;
        assert!(!cabinet
            .revoke_token(&stranger, info.id, t0())
            .await
            .unwrap());
        assert!(cabinet.revoke_token(&user, info.id, t0()).await.unwrap());
        assert!(!cabinet.revoke_token(&user, info.id, t0()).await.unwrap());
        assert!(store.orgs().token_holder(&secret).await.unwrap().is_none());

        // The kill switch, with who did it.
        let note = AuditNote::new(authority, &user.email, "alerts_paused", "");
        store
            .flags()
            .set_alerts_paused_by(true, Some(note), t0())
            .await
            .unwrap();
        assert!(store.flags().alerts_paused().await.unwrap());
        let last = cabinet.last_switch().await.unwrap().unwrap();
        assert_eq!(
            (last.action.as_str(), last.user_email.as_str()),
            ("alerts_paused", "a@example.ru")
        );

        let actions: Vec<String> = cabinet
            .audit(authority, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["alerts_paused", "token_revoked", "token_created", "login"],
            "{label}: newest first"
        );
        assert!(cabinet.audit(other, None, 100).await.unwrap().is_empty());
        let page = cabinet.audit(authority, None, 2).await.unwrap();
        let older = cabinet
            .audit(authority, Some(page[1].id), 100)
            .await
            .unwrap();
        assert_eq!(older.len(), 2);

        cabinet.close_session(&session.secret, t0()).await.unwrap();
        assert!(cabinet
            .session_user(&session.secret, t0())
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn a_confirmed_upload_is_logged_with_its_cases_and_purged_with_them() {
    for db in backends(StoreConfig::default()).await {
        let TestDb { label, store, .. } = &db;
        let (authority, _) = store.orgs().create_authority("РПН", t0()).await.unwrap();
        let (other, _) = store.orgs().create_authority("Другой", t0()).await.unwrap();
        let place = premises(store).await;
        let phone = Msisdn::parse("+79161234567").unwrap();
        // The case's own visit, and another person's beside it.
        for (who, at) in [
            ("+79161234567", t0()),
            ("+79161112233", t0() + Duration::minutes(10)),
        ] {
            store
                .checkins()
                .record_checkin(&NewCheckIn {
                    phone: Msisdn::parse(who).unwrap(),
                    code: place.code,
                    channel: Channel::Sms,
                    at,
                    consent: true,
                })
                .await
                .unwrap();
        }
        let exposure = ExposureConfig::default();
        let case = exposure.new_case(Some(authority), phone, t0(), None, None);
        // The upload's dry run in one read counts what one case's would.
        let alone = store.cases().dry_run(&case, t0()).await.unwrap();
        let batch = store
            .cases()
            .dry_run_batch(&[case.clone(), case.clone()])
            .await
            .unwrap();
        assert_eq!(batch, [alone, alone], "{label}");
        assert_eq!(alone.visits, 1, "{label}");
        let note = AuditNote::new(authority, "a@example.ru", "upload_confirmed", "случаев: 1");
        let recorded = store
            .cases()
            .record_and_match_batch_by(std::slice::from_ref(&case), Some(note), t0())
            .await
            .unwrap();
        let id = recorded[0].case.id;
        let cabinet = store.authority();
        assert_eq!(cabinet.case_ids(authority, None, 10).await.unwrap(), [id]);
        assert!(cabinet.case_ids(other, None, 10).await.unwrap().is_empty());
        let visits = cabinet.exposed_visits(id).await.unwrap();
        assert_eq!(visits.len(), 1, "{label}");
        assert_eq!(visits[0].address, "ул. Тверская, 13");
        assert_eq!(visits[0].checked_in_at, t0() + Duration::minutes(10));
        assert_eq!(visits[0].status.as_deref(), Some("pending"));
        let audit = cabinet.audit(authority, None, 10).await.unwrap();
        assert_eq!(audit[0].action, "upload_confirmed");

        // Kept within the retention period, gone after it.
        let retention = Duration::from_std(store.config().retention).unwrap();
        store
            .purge(t0() + retention - Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(cabinet.audit(authority, None, 10).await.unwrap().len(), 1);
        store
            .purge(t0() + retention + Duration::hours(1))
            .await
            .unwrap();
        assert!(
            cabinet.audit(authority, None, 10).await.unwrap().is_empty(),
            "{label}"
        );
    }
}
