//! Every page's HTML (maud: escaped by default), in Russian. No inline script
//! or style: the look is `/static/style.css`, the live clock
//! `/static/clock.js`; everything works without the script.

use std::time::Duration;

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The page frame.
fn layout(title: &str, body: Markup) -> Markup {
    layout_with(title, None, body)
}

/// The page frame with one more stylesheet of ours (`/static/…`) after the
/// common one.
pub(crate) fn layout_with(title: &str, stylesheet: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ru" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/style.css";
                @if let Some(sheet) = stylesheet { link rel="stylesheet" href=(sheet); }
            }
            body {
                main { (body) }
            }
        }
    }
}

/// A page that only says something (errors, refusals).
pub(crate) fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p.message { (text) }
        },
    )
}

/// An error page with one way on (a link back to the premises' form).
pub(crate) fn message_with_link(title: &str, text: &str, link: Option<(&str, &str)>) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p.message { (text) }
            @if let Some((href, label)) = link { p { a href=(href) { (label) } } }
        },
    )
}

/// The page that sends the browser on to the city account's provider by
/// itself (a meta refresh: no script), with the link in case it does not.
pub(crate) fn leaving(url: &str, label: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ru" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(format!("0; url={url}"));
                title { (label) }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                main {
                    h1 { (label) }
                    p.message { "Переходим на страницу входа…" }
                    p { a #continue href=(url) { "Продолжить" } }
                }
            }
        }
    }
}

/// "через 3 мин (в 20:16)"-style wait, rounded up to whole minutes.
pub(crate) fn wait_text(wait: Duration) -> String {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if seconds < 60 {
        return format!("через {} сек.", seconds.max(1));
    }
    let minutes = seconds.div_ceil(60);
    if minutes < 60 {
        format!("через {minutes} мин.")
    } else {
        format!("через {} ч {} мин.", minutes / 60, minutes % 60)
    }
}

/// "5 мин назад"-style age of an entry.
pub(crate) fn ago_text(age: chrono::Duration) -> String {
    let minutes = age.num_minutes();
    if minutes < 1 {
        "только что".to_owned()
    } else if minutes < 60 {
        format!("{minutes} мин назад")
    } else {
        format!("{} ч {} мин назад", minutes / 60, minutes % 60)
    }
}

/// The premises as a heading.
pub(crate) struct Place<'a> {
    pub address: &'a str,
    pub organization: Option<&'a str>,
    pub code: String,
}

fn place(p: &Place<'_>) -> Markup {
    html! {
        section.place {
            p.address { (p.address) }
            @if let Some(org) = p.organization { p.org { (org) } }
            p.code { "Код помещения " (p.code) }
        }
    }
}

pub(crate) fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

const CONSENT: &str = "Я согласен получать уведомления о возможном контакте с заболевшим";

fn consent_box(checked: bool) -> Markup {
    html! {
        label.consent {
            input type="checkbox" name="consent" value="1" checked[checked];
            " " (CONSENT)
        }
    }
}

/// The visitor's first page: phone and consent (or one tap with a
/// remembered phone).
pub(crate) struct CheckinForm<'a> {
    pub place: Place<'a>,
    pub csrf: &'a str,
    pub problem: Option<&'a str>,
    pub phone_value: &'a str,
    pub consent: bool,
    /// The remembered phone, masked.
    pub remembered: Option<String>,
    /// The city account's button label, when it is on.
    pub city_account: Option<&'a str>,
}

/// The second button of a form: the same fields go to `/v/{code}/oidc`
/// (`formnovalidate`: the phone field is not needed for it).
fn city_account_button(action: &str, label: Option<&str>) -> Markup {
    html! {
        @if let Some(label) = label {
            button.secondary.city type="submit" formaction=(format!("{action}/oidc")) formnovalidate {
                (label)
            }
        }
    }
}

pub(crate) fn checkin_form(f: &CheckinForm<'_>) -> Markup {
    let action = format!("/v/{}", f.place.code);
    layout(
        "Отметка входа",
        html! {
            h1 { "Отметка входа" }
            (place(&f.place))
            @if let Some(problem) = f.problem { p.problem role="alert" { (problem) } }
            @if let Some(masked) = &f.remembered {
                form method="post" action=(format!("{action}/quick")) {
                    (csrf_input(f.csrf))
                    p { "Телефон " strong { (masked) } " уже подтверждён на этом устройстве." }
                    (consent_box(f.consent))
                    button type="submit" { "Отметить вход" }
                    (city_account_button(&action, f.city_account))
                }
                form method="post" action="/forget" {
                    (csrf_input(f.csrf))
                    input type="hidden" name="next" value=(action);
                    button.secondary type="submit" { "Другой телефон (забыть этот)" }
                }
            } @else {
                form method="post" action=(action) {
                    (csrf_input(f.csrf))
                    label for="phone" { "Номер телефона" }
                    input #phone type="tel" name="phone" autocomplete="tel" inputmode="tel"
                        placeholder="+7 900 000-00-00" required value=(f.phone_value);
                    (consent_box(f.consent))
                    button type="submit" { "Получить код по SMS" }
                    (city_account_button(&action, f.city_account))
                }
            }
        },
    )
}

/// The page where the SMS code is entered.
pub(crate) struct CodeForm<'a> {
    pub place: Place<'a>,
    pub csrf: &'a str,
    pub ticket: &'a str,
    pub problem: Option<&'a str>,
    /// Offer a new code (expired, or attempts used up) instead of the field.
    pub resend_only: bool,
}

pub(crate) fn code_form(f: &CodeForm<'_>) -> Markup {
    let base = format!("/v/{}", f.place.code);
    layout(
        "Код из SMS",
        html! {
            h1 { "Код из SMS" }
            (place(&f.place))
            @if let Some(problem) = f.problem { p.problem role="alert" { (problem) } }
            @if !f.resend_only {
                form method="post" action=(format!("{base}/otp")) {
                    (csrf_input(f.csrf))
                    input type="hidden" name="t" value=(f.ticket);
                    label for="code" { "Код из 6 цифр, отправленный вам по SMS" }
                    input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9 ]{6,7}" maxlength="7" required;
                    button type="submit" { "Подтвердить" }
                }
            }
            form method="post" action=(format!("{base}/resend")) {
                (csrf_input(f.csrf))
                input type="hidden" name="t" value=(f.ticket);
                button.secondary type="submit" { "Отправить новый код" }
            }
        },
    )
}

/// The confirmation the visitor shows at the door.
pub(crate) struct Confirmation<'a> {
    pub place: Place<'a>,
    pub entered: &'a str,
    pub now_text: &'a str,
    /// The service zone's UTC offset now, for the clock script.
    pub offset_min: i32,
    pub qr_svg: &'a str,
    pub guard_url: &'a str,
    pub earlier: bool,
    /// The CSRF field for «Забыть этот телефон», when a phone is remembered.
    pub forget_csrf: Option<&'a str>,
    pub self_path: &'a str,
}

pub(crate) fn confirmation(c: &Confirmation<'_>) -> Markup {
    layout(
        "Вход отмечен",
        html! {
            div.live { span.pulse {} span #clock.clock data-offset-min=(c.offset_min) { (c.now_text) } }
            h1.ok { @if c.earlier { "Вход уже отмечен" } @else { "Вход отмечен" } }
            (place(&c.place))
            p.when { "Время входа: " strong { (c.entered) } }
            figure.qr {
                // Our own SVG from the qrcode crate: no text from outside in it.
                (PreEscaped(c.qr_svg))
                figcaption { "Покажите этот QR-код охране" }
            }
            p.small { a href=(c.guard_url) { "Проверка отметки" } }
            p.small { "Часы и полоса сверху движутся: так охрана отличит живую страницу от снимка экрана." }
            @if let Some(csrf) = c.forget_csrf {
                form method="post" action="/forget" {
                    (csrf_input(csrf))
                    input type="hidden" name="next" value=(c.self_path);
                    button.secondary type="submit" { "Забыть этот телефон" }
                }
            }
            script src="/static/clock.js" {}
        },
    )
}

/// How the guard's check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid,
    /// Signed by us, but the entry is older than the freshness.
    Stale,
    /// Signed by us, for another premises than the guard's.
    OtherPremises,
    /// The check-in it names is at another premises than the token says.
    PremisesMismatch,
    /// No such check-in (deleted after the retention period, or never).
    Unknown,
    /// Not a token we signed (altered, or made up).
    Tampered,
}

pub(crate) struct GuardPage<'a> {
    pub verdict: Verdict,
    pub place: Option<Place<'a>>,
    pub entered: Option<&'a str>,
    pub ago: Option<String>,
    pub fresh_h: u32,
}

pub(crate) fn guard(g: &GuardPage<'_>) -> Markup {
    let (word, class, reason): (&str, &str, Option<String>) = match g.verdict {
        Verdict::Valid => ("ДЕЙСТВИТЕЛЕН", "valid", None),
        Verdict::Stale => (
            "НЕДЕЙСТВИТЕЛЕН",
            "invalid",
            Some(format!("Устарел: вход был более {} ч назад.", g.fresh_h)),
        ),
        Verdict::OtherPremises => (
            "НЕДЕЙСТВИТЕЛЕН",
            "invalid",
            Some("Другое помещение: отметка сделана не здесь.".into()),
        ),
        Verdict::PremisesMismatch => (
            "НЕДЕЙСТВИТЕЛЕН",
            "invalid",
            Some("Отметка не совпадает с помещением в коде.".into()),
        ),
        Verdict::Unknown => (
            "НЕДЕЙСТВИТЕЛЕН",
            "invalid",
            Some("Такой отметки нет.".into()),
        ),
        Verdict::Tampered => (
            "НЕДЕЙСТВИТЕЛЕН",
            "invalid",
            Some("Код изменён или поддельный.".into()),
        ),
    };
    layout(
        word,
        html! {
            div class=(format!("verdict {class}")) data-verdict=(class) {
                h1.word { (word) }
                @if let Some(reason) = &reason { p.reason { (reason) } }
            }
            @if let Some(p) = &g.place { (place(p)) }
            @if let Some(entered) = g.entered {
                p.when { "Вход: " strong { (entered) } @if let Some(ago) = &g.ago { " (" (ago) ")" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_ages_read_as_russian() {
        assert_eq!(wait_text(Duration::from_millis(1500)), "через 2 сек.");
        assert_eq!(wait_text(Duration::from_secs(61)), "через 2 мин.");
        assert_eq!(
            wait_text(Duration::from_secs(3600 + 120)),
            "через 1 ч 2 мин."
        );
        assert_eq!(ago_text(chrono::Duration::seconds(30)), "только что");
        assert_eq!(ago_text(chrono::Duration::minutes(5)), "5 мин назад");
        assert_eq!(ago_text(chrono::Duration::minutes(130)), "2 ч 10 мин назад");
    }

    #[test]
    fn text_from_outside_is_escaped() {
        let page = message("t", "<script>alert(1)</script>").into_string();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
