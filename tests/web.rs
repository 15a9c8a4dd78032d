//! The web visitor's way through the whole running service: `checkin serve`'s
//! gateway (web on port 0, the bundled simulator as the operator) — the
//! poster's page, phone and consent, the SMS code delivered over real SMPP to
//! the simulator's phone, the code entered, the confirmation, and the guard's
//! check of its token. On both backends.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 answer.
struct Page {
    status: u16,
    location: String,
    body: String,
}

impl Page {
    /// The value of the hidden field `name` in the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

/// A visitor's browser, reduced to what the pages need: a cookie jar.
struct Browser {
    addr: SocketAddr,
    jar: BTreeMap<String, String>,
}

impl Browser {
    async fn request(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&");
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            cookies.join("; "),
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .expect("the web answers")
            .unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut location = String::new();
        let mut chunked = false;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "location" => location = value.to_owned(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "set-cookie" => {
                    let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
                    let (k, v) = pair.split_once('=').unwrap();
                    if attributes.contains("Max-Age=0") {
                        self.jar.remove(k);
                    } else {
                        self.jar.insert(k.to_owned(), v.to_owned());
                    }
                }
                _ => {}
            }
        }
        let body = if chunked {
            common::dechunk(rest)
        } else {
            rest.to_owned()
        };
        Page {
            status,
            location,
            body,
        }
    }
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

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
