//! The cabinet's pages (maud, Russian): sign-up, log-in, the premises list
//! with the add form, a premises' edit page, its statistics, API tokens, and
//! the printable posters. The look is `/static/style.css` plus
//! `/static/org.css` (wide tables, A4 print rules); no inline style or script
//! (the premises form's live SMS preview is `/static/org-sms.js`).

use checkin_core::store::{TokenInfo, ADDRESS_CHARS_MAX, PASSWORD_CHARS_MIN, PREMISES_KINDS};
use checkin_core::texts::SMS_LABEL_UNITS_MAX;
use checkin_core::Premises;
use maud::{html, Markup, PreEscaped};

use super::sms_preview::SmsPreview;
use crate::pages::{csrf_input, layout_with};

pub(crate) const ORG_CSS: &str = "/static/org.css";

fn layout(title: &str, org_name: Option<&str>, csrf: Option<&str>, body: Markup) -> Markup {
    layout_with(
        title,
        Some(ORG_CSS),
        html! {
            @if let (Some(name), Some(csrf)) = (org_name, csrf) {
                nav.cabinet {
                    a href="/org" { "Помещения" }
                    a href="/org/tokens" { "Токены API" }
                    span.who { (name) }
                    form.inline method="post" action="/org/logout" {
                        (csrf_input(csrf))
                        button.link type="submit" { "Выйти" }
                    }
                }
            }
            (body)
        },
    )
}

pub(crate) fn problem(p: Option<&str>) -> Markup {
    html! { @if let Some(p) = p { p.problem role="alert" { (p) } } }
}

/// Sign-up form values sent back with the reason.
#[derive(Debug, Default)]
pub(crate) struct SignUpValues<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

pub(crate) fn sign_up(csrf: &str, values: &SignUpValues<'_>, why: Option<&str>) -> Markup {
    layout(
        "Регистрация организации",
        None,
        None,
        html! {
            h1 { "Регистрация организации" }
            (problem(why))
            form method="post" action="/org/signup" {
                (csrf_input(csrf))
                label for="name" { "Название организации" }
                input #name type="text" name="name" required value=(values.name);
                label for="email" { "Электронная почта" }
                input #email type="email" name="email" autocomplete="email" required value=(values.email);
                label for="password" { "Пароль (не короче " (PASSWORD_CHARS_MIN) " символов)" }
                input #password type="password" name="password" autocomplete="new-password" required;
                button type="submit" { "Зарегистрироваться" }
            }
            p.small { "Уже зарегистрированы? " a href="/org/login" { "Войти" } }
        },
    )
}

/// The e-mail and password form posting to `action`: both cabinets' log-in.
pub(crate) fn log_in_form(csrf: &str, action: &str, email: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_input(csrf))
            label for="email" { "Электронная почта" }
            input #email type="email" name="email" autocomplete="email" required value=(email);
            label for="password" { "Пароль" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Войти" }
        }
    }
}

pub(crate) fn log_in(csrf: &str, email: &str, why: Option<&str>) -> Markup {
    layout(
        "Вход для организаций",
        None,
        None,
        html! {
            h1 { "Вход для организаций" }
            (problem(why))
            (log_in_form(csrf, "/org/login", email))
            p.small { "Нет учётной записи? " a href="/org/signup" { "Зарегистрироваться" } }
        },
    )
}

/// Values of the premises form (add or edit) sent back with the reason.
#[derive(Debug, Default)]
pub(crate) struct PremisesValues<'a> {
    pub address: &'a str,
    pub kind: &'a str,
    pub stay: &'a str,
    pub sms_label: &'a str,
    /// The confirmation these values make (none on an empty form).
    pub preview: Option<&'a SmsPreview>,
}

fn premises_fields(v: &PremisesValues<'_>) -> Markup {
    html! {
        label for="address" { "Адрес (до " (ADDRESS_CHARS_MAX) " символов)" }
        input #address type="text" name="address" required value=(v.address);
        label for="kind" { "Тип помещения" }
        select #kind name="kind" {
            // A kind set elsewhere (the CLI's free text) stays as it is.
            @if !v.kind.is_empty() && !PREMISES_KINDS.iter().any(|(k, _)| *k == v.kind) {
                option value=(v.kind) selected { (v.kind) }
            }
            @for (kind, stay) in PREMISES_KINDS {
                option value=(kind) selected[v.kind == *kind] { (kind) " (по умолчанию " (stay) " мин)" }
            }
        }
        label for="stay" { "Время пребывания, мин (пусто — по типу)" }
        input #stay type="text" name="stay_minutes" inputmode="numeric" value=(v.stay);
        label for="sms_label" {
            "Короткое название для SMS (до " (SMS_LABEL_UNITS_MAX) " знаков; пусто — сокращённый адрес)"
        }
        // No maxlength: a longer name is shown with its cost and refused with the reason.
        input #sms_label type="text" name="sms_label" value=(v.sms_label);
    }
}

/// After the form's own button (the first, which Enter presses): the
/// preview without script, and the preview itself.
fn preview_part(preview: Option<&SmsPreview>) -> Markup {
    html! {
        button.secondary type="submit" name="preview" value="1" formnovalidate { "Показать SMS" }
        (sms_preview(preview))
    }
}

/// The confirmation as the visitor will read it, and its segments; filled
/// by the server (a saved form, «Показать SMS») and kept live by the script.
fn sms_preview(preview: Option<&SmsPreview>) -> Markup {
    let segments = preview.map_or(0, |p| p.segments);
    let over = preview.is_some_and(|p| p.segments > 1 || p.refused.is_some());
    html! {
        div #sms-preview .sms-preview .over[over] aria-live="polite" {
            p.small { "Так посетитель прочтёт подтверждение:" }
            p #sms-preview-text .sms-text {
                @if let Some(p) = preview { (p.text) } @else { "—" }
            }
            p.small {
                "SMS-сегментов: "
                strong #sms-preview-segments data-segments=(segments) { (segments) }
                " (один сегмент — до 70 знаков кириллицей)"
            }
            p #sms-preview-refused .problem-inline {
                @if let Some(why) = preview.and_then(|p| p.refused.as_deref()) { (why) }
            }
        }
        script src="/static/org-sms.js" {}
    }
}

pub(crate) struct Dashboard<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub premises: &'a [Premises],
    pub next_after: Option<i64>,
    pub values: PremisesValues<'a>,
    pub problem: Option<&'a str>,
}

pub(crate) fn dashboard(d: &Dashboard<'_>) -> Markup {
    layout(
        "Помещения",
        Some(d.org_name),
        Some(d.csrf),
        html! {
            h1 { "Помещения" }
            @if d.premises.is_empty() {
                p { "Помещений пока нет. Добавьте первое ниже." }
            } @else {
                form method="get" action="/org/posters" {
                    table.premises {
                        thead { tr { th { span.visually-hidden { "Выбор" } } th { "Код" } th { "Адрес" } th { "Тип" } th { "Мин" } th { "Статус" } th { span.visually-hidden { "Действия" } } } }
                        tbody {
                            @for p in d.premises {
                                tr data-premises=(p.id) {
                                    td { @if p.active { input type="checkbox" name="ids" value=(p.id) aria-label="выбрать"; } }
                                    td.code { (p.code) }
                                    td { (p.address) @if let Some(l) = &p.sms_label { br; small { "SMS: " (l) } } }
                                    td { (p.kind) }
                                    td { (p.stay_minutes) }
                                    td { @if p.active { "принимает отметки" } @else { "отключено" } }
                                    td.links {
                                        a href=(format!("/org/premises/{}", p.id)) { "Изменить" } " "
                                        a href=(format!("/org/premises/{}/poster", p.id)) { "Плакат" } " "
                                        a href=(format!("/org/premises/{}/stats", p.id)) { "Статистика" }
                                    }
                                }
                            }
                        }
                    }
                    p.small { "Без отметок — плакаты всех действующих помещений одним документом." }
                    button.secondary type="submit" { "Плакаты для печати" }
                }
                @if let Some(after) = d.next_after {
                    p { a href=(format!("/org?after={after}")) { "Следующие помещения →" } }
                }
            }
            h2 { "Добавить помещение" }
            (problem(d.problem))
            form method="post" action="/org/premises" {
                (csrf_input(d.csrf))
                (premises_fields(&d.values))
                button type="submit" { "Добавить" }
                (preview_part(d.values.preview))
            }
        },
    )
}

pub(crate) struct EditPage<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub premises: &'a Premises,
    pub values: PremisesValues<'a>,
    pub problem: Option<&'a str>,
}

pub(crate) fn edit(e: &EditPage<'_>) -> Markup {
    let base = format!("/org/premises/{}", e.premises.id);
    layout(
        "Помещение",
        Some(e.org_name),
        Some(e.csrf),
        html! {
            h1 { "Помещение " (e.premises.code) }
            p { a href=(format!("{base}/poster")) { "Плакат" } " · "
                a href=(format!("{base}/qr.svg")) { "QR (SVG)" } " · "
                a href=(format!("{base}/qr.png")) { "QR (PNG)" } " · "
                a href=(format!("{base}/stats")) { "Статистика" } }
            (problem(e.problem))
            form method="post" action=(base) {
                (csrf_input(e.csrf))
                (premises_fields(&e.values))
                button type="submit" { "Сохранить" }
                (preview_part(e.values.preview))
            }
            @if e.premises.active {
                form method="post" action=(format!("{base}/deactivate")) {
                    (csrf_input(e.csrf))
                    button.secondary type="submit" { "Отключить (код перестанет принимать отметки)" }
                }
            } @else {
                p { "Помещение отключено: отметки по его коду не принимаются." }
            }
        },
    )
}

pub(crate) struct StatsPage<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub premises: &'a Premises,
    pub days_svg: &'a str,
    pub hours_svg: &'a str,
    /// (date, total, sms, web) per day, newest first.
    pub rows: Vec<(String, u64, u64, u64)>,
}

pub(crate) fn stats(s: &StatsPage<'_>) -> Markup {
    layout(
        "Статистика",
        Some(s.org_name),
        Some(s.csrf),
        html! {
            h1 { "Статистика: " (s.premises.address) }
            p.small { "Только количество отметок, без номеров телефонов. Последние 30 дней." }
            h2 { "По дням" }
            figure.chart { (PreEscaped(s.days_svg)) }
            h2 { "По часам суток" }
            figure.chart { (PreEscaped(s.hours_svg)) }
            table.stats {
                thead { tr { th { "День" } th { "Всего" } th { "СМС" } th { "Сайт" } } }
                tbody {
                    @for (day, total, sms, web) in &s.rows {
                        tr { td { (day) } td { (total) } td { (sms) } td { (web) } }
                    }
                }
            }
        },
    )
}

pub(crate) struct TokensPage<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub tokens: &'a [TokenInfo],
    /// A token just created: shown this once.
    pub created: Option<&'a str>,
    pub problem: Option<&'a str>,
}

pub(crate) fn tokens(t: &TokensPage<'_>) -> Markup {
    layout(
        "Токены API",
        Some(t.org_name),
        Some(t.csrf),
        html! {
            h1 { "Токены API" }
            (token_list(t.csrf, t.tokens, t.created, t.problem, "/org/tokens"))
        },
    )
}

/// The token form and list of a cabinet whose token routes are under
/// `base` (`POST base` creates, `POST base/{id}/revoke` revokes): the
/// organization's and the health authority's.
pub(crate) fn token_list(
    csrf: &str,
    tokens: &[TokenInfo],
    created: Option<&str>,
    why: Option<&str>,
    base: &str,
) -> Markup {
    html! {
        @if let Some(secret) = created {
            p.created { "Новый токен (показывается один раз, сохраните его):" }
            p.secret { code #new-token { (secret) } }
        }
        (problem(why))
        form method="post" action=(base) {
            (csrf_input(csrf))
            label for="label" { "Название токена" }
            input #label type="text" name="label";
            button type="submit" { "Создать токен" }
        }
        table.tokens {
            thead { tr { th { "Название" } th { "Начало" } th { "Статус" } th { span.visually-hidden { "Действие" } } } }
            tbody {
                @for token in tokens {
                    tr data-token=(token.id) {
                        td { (token.label) }
                        td { code { (token.prefix) "…" } }
                        td { @if token.revoked_at.is_some() { "отозван" } @else { "действует" } }
                        td {
                            @if token.revoked_at.is_none() {
                                form.inline method="post" action=(format!("{base}/{}/revoke", token.id)) {
                                    (csrf_input(csrf))
                                    button.link type="submit" { "Отозвать" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a poster shows for one premises.
pub(crate) struct PosterData {
    pub address: String,
    pub code: String,
    pub sms: String,
    pub ussd: String,
    pub url: String,
    pub qr_svg: String,
}

/// One printable document: a poster per premises, a page break between them.
pub(crate) fn posters(posters: &[PosterData]) -> Markup {
    let title = if posters.len() == 1 {
        "Плакат"
    } else {
        "Плакаты"
    };
    layout_with(
        title,
        Some(ORG_CSS),
        html! {
            @if posters.is_empty() { p { "Нет действующих помещений." } }
            @for p in posters {
                article.poster {
                    h1.poster-title { "Отметьтесь при входе" }
                    p.poster-address { (p.address) }
                    figure.poster-qr {
                        // Our own SVG from the qrcode crate: only the URL is in it.
                        (PreEscaped(&p.qr_svg))
                        figcaption { "Отсканируйте QR-код камерой телефона" }
                    }
                    p.poster-code { (p.code) }
                    p.poster-sms { (p.sms) }
                    p.poster-ussd { "или наберите " strong { (p.ussd) } }
                    p.poster-url { (p.url) }
                }
            }
        },
    )
}
