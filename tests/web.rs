//! The web visitor's way through the whole running service: `checkin serve`'s
//! gateway (web on port 0, the bundled simulator as the operator) — the
//! poster's page, phone and consent, the SMS code delivered over real SMPP to
//! the simulator's phone, the code entered, the confirmation, and the guard's
//! check of its token. On both backends.

mod common;

use std::collections::BTreeMap;

use common::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_checks_in_on_the_web_with_a_code_sent_over_smpp() {
    for (label, url) in common::backends().await {
        let running = common::start(label, url).await;
        let premises = running.premises("ул. Тверская, 13").await;
        let phone = "+79161234567";
        let mut browser = Browser {
            addr: running.gateway.web_addr,
            jar: BTreeMap::new(),
        };

        // The poster's QR: the address and the form.
        let digits: String = premises.code.to_string().replace('-', "");
        let poster = format!("/v/{digits}");
        let page = browser.request("GET", &poster, &[]).await;
        assert_eq!(page.status, 200, "{label}: {}", page.body);
        assert!(page.body.contains("ул. Тверская, 13"), "{label}");
        let csrf = page.field("csrf");
        let sent = browser
            .request(
                "POST",
                &poster,
                &[("csrf", &csrf), ("phone", phone), ("consent", "1")],
            )
            .await;
        assert_eq!(sent.status, 303, "{label}: {}", sent.body);

        // The code reaches the phone through the outbox, the notifier and the
        // SMPP link: the simulator holds it as an MT message.
        let texts = running.until_messages(phone, 1).await;
        let code: String = texts[0].chars().filter(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "{label}: {texts:?}");

        let form = browser.request("GET", &sent.location, &[]).await;
        assert_eq!(form.status, 200, "{label}: {}", form.body);
        let (csrf, ticket) = (form.field("csrf"), form.field("t"));
        let done = browser
            .request(
                "POST",
                &format!("{poster}/otp"),
                &[("csrf", &csrf), ("t", &ticket), ("code", &code)],
            )
            .await;
        assert_eq!(done.status, 303, "{label}: {}", done.body);
        let token = done
            .location
            .strip_prefix("/ok/")
            .unwrap_or_else(|| panic!("{label}: {}", done.location))
            .to_owned();

        // The confirmation names the place, and its guard link points at this
        // very server (the port was 0).
        let confirmation = browser.request("GET", &done.location, &[]).await;
        assert_eq!(confirmation.status, 200, "{label}");
        assert!(confirmation.body.contains("ул. Тверская, 13"), "{label}");
        let guard_url = format!("http://{}/c/{token}", running.gateway.web_addr);
        assert!(
            confirmation.body.contains(&guard_url),
            "{label}: no {guard_url} in {}",
            confirmation.body
        );

        // The guard opens it: valid.
        let mut guard = Browser {
            addr: running.gateway.web_addr,
            jar: BTreeMap::new(),
        };
        let check = guard.request("GET", &format!("/c/{token}"), &[]).await;
        assert_eq!(check.status, 200, "{label}");
        assert!(check.body.contains("ДЕЙСТВИТЕЛЕН"), "{label}");
        assert!(!check.body.contains("НЕДЕЙСТВИТЕЛЕН"), "{label}");

        let visits = running
            .gateway
            .store
            .checkins()
            .checkins_of(&checkin_core::Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        assert_eq!(visits.len(), 1, "{label}");
        assert_eq!(visits[0].channel, checkin_core::Channel::Web, "{label}");
        running.stop().await;
    }
}
