//! The cabinet's pages (maud, Russian): log-in, the overview with the kill
//! switch and its confirmation, API tokens, the audit log, the upload form,
//! the upload's progress / dry run / result, the cases and one case. The
//! look is the organization cabinet's (`/static/style.css`, `/static/org.css`);
//! pages that follow something moving refresh themselves (`<meta
//! http-equiv="refresh">` when script is off; `/static/follow.js` updates
//! them in place when it is on).

use checkin_core::case_csv::Reject;
use checkin_core::store::{AuditEntry, AuthorityUser, CaseReport, ExposedVisit, TokenInfo};
use checkin_core::ServiceZone;
use maud::{html, Markup};

use crate::org::{log_in_form, problem, token_list, ORG_CSS_PATH};
use crate::pages::{csrf_input, layout_with};

/// The page frame: the navigation of a logged-in person, and a
/// self-refresh every `refresh_s` seconds when something is moving.
fn layout(
    title: &str,
    user: Option<(&AuthorityUser, &str)>,
    refresh_s: Option<u32>,
    body: Markup,
) -> Markup {
    layout_with(
        title,
        Some(ORG_CSS_PATH),
        html! {
            @if let Some(seconds) = refresh_s {
                // Without script, the page reloads itself (in <body>, which
                // browsers honour too; layout_with owns <head>). With script,
                // /static/follow.js updates it in place instead: a reload on
                // a timer throws a screen reader back to the page's top
                // (axe-core's meta-refresh rule, WCAG 2.2.1).
                noscript { meta http-equiv="refresh" content=(seconds); }
                script src="/static/follow.js" data-follow=(seconds) {}
            }
            @if let Some((user, csrf)) = user {
                nav.cabinet aria-label="Кабинет" {
                    a href="/authority" { "Обзор" }
                    a href="/authority/upload" { "Загрузить случаи" }
                    a href="/authority/cases" { "Случаи" }
                    a href="/authority/tokens" { "Токены API" }
                    a href="/authority/audit" { "Журнал" }
                    span.who { (user.authority_name) " · " (user.email) }
                    form.inline method="post" action="/authority/logout" {
                        (csrf_input(csrf))
                        button.link type="submit" { "Выйти" }
                    }
                }
            }
            (body)
        },
    )
}

pub(crate) fn log_in(csrf: &str, email: &str, why: Option<&str>) -> Markup {
    layout(
        "Вход для органа здравоохранения",
        None,
        None,
        html! {
            h1 { "Вход для органа здравоохранения" }
            (problem(why))
            (log_in_form(csrf, "/authority/login", email))
            p.small { "Учётные записи создаёт администратор сервиса." }
        },
    )
}

/// Who last switched alerts, and when (a person of another authority is
/// not named: the switch is the service's, the people are each authority's).
fn switched(user: &AuthorityUser, zone: &ServiceZone, last: Option<&AuditEntry>) -> Markup {
    html! {
        @if let Some(e) = last {
            p #switched-by {
                @if e.action == "alerts_paused" { "Приостановил(а): " } @else { "Возобновил(а): " }
                @if e.authority_id == user.authority_id { (e.user_email) } @else { "другой орган здравоохранения" }
                ", " (zone.day_and_time(e.at))
            }
        }
    }
}

/// The overview: the kill switch's state with its button.
pub(crate) struct Home<'a> {
    pub user: &'a AuthorityUser,
    pub csrf: &'a str,
    pub zone: &'a ServiceZone,
    pub paused: bool,
    pub last_switch: Option<&'a AuditEntry>,
}

pub(crate) fn home(h: &Home<'_>) -> Markup {
    layout(
        "Кабинет органа здравоохранения",
        Some((h.user, h.csrf)),
        None,
        html! {
            h1 { "Кабинет органа здравоохранения" }
            section #alerts-state {
                h2 { "Оповещения" }
                @if h.paused {
                    p.problem #alerts-paused { "Отправка оповещений приостановлена." }
                    (switched(h.user, h.zone, h.last_switch))
                    p { a.button href="/authority/alerts?action=resume" { "Возобновить оповещения" } }
                } @else {
                    p #alerts-running { "Оповещения отправляются." }
                    (switched(h.user, h.zone, h.last_switch))
                    p { a.button href="/authority/alerts?action=pause" { "Приостановить оповещения" } }
                }
            }
            section {
                h2 { "Случаи" }
                p {
                    a href="/authority/upload" { "Загрузить подтверждённые случаи" }
                    " · "
                    a href="/authority/cases" { "Случаи и доставка оповещений" }
                }
            }
        },
    )
}

/// The confirmation step of a pause (`pause`) or resume.
pub(crate) fn switch_confirm(
    user: &AuthorityUser,
    csrf: &str,
    zone: &ServiceZone,
    pause: bool,
    paused: bool,
    last_switch: Option<&AuditEntry>,
) -> Markup {
    let title = if pause {
        "Приостановить оповещения?"
    } else {
        "Возобновить оповещения?"
    };
    html! {
        (layout(title, Some((user, csrf)), None, html! {
            h1 { (title) }
            p {
                "Сейчас: "
                @if paused { "оповещения приостановлены." } @else { "оповещения отправляются." }
            }
            (switched(user, zone, last_switch))
            @if pause {
                p { "Новые оповещения не будут отправляться ни одному адресату, пока их не возобновят. Коды и подтверждения отметок продолжат уходить." }
            } @else {
                p { "Оповещения из очереди начнут отправляться сразу." }
            }
            form method="post" action="/authority/alerts" {
                (csrf_input(csrf))
                input type="hidden" name="action" value=(if pause { "pause" } else { "resume" });
                button #confirm-switch type="submit" {
                    @if pause { "Да, приостановить" } @else { "Да, возобновить" }
                }
            }
            p { a href="/authority" { "Отмена" } }
        }))
    }
}

pub(crate) fn tokens(
    user: &AuthorityUser,
    csrf: &str,
    tokens: &[TokenInfo],
    created: Option<&str>,
    why: Option<&str>,
) -> Markup {
    layout(
        "Токены API",
        Some((user, csrf)),
        None,
        html! {
            h1 { "Токены API" }
            p.small { "Для систем, которые передают случаи через API (/api/v1/cases)." }
            (token_list(csrf, tokens, created, why, "/authority/tokens"))
        },
    )
}

/// The Russian words of an audit action.
fn action_text(action: &str) -> &str {
    match action {
        "login" => "вход",
        "upload_checked" => "проверка файла (без отправки)",
        "upload_confirmed" => "отправка оповещений подтверждена",
        "alerts_paused" => "оповещения приостановлены",
        "alerts_resumed" => "оповещения возобновлены",
        "token_created" => "создан токен API",
        "token_revoked" => "отозван токен API",
        other => other,
    }
}

pub(crate) fn audit(
    user: &AuthorityUser,
    csrf: &str,
    zone: &ServiceZone,
    entries: &[AuditEntry],
    next_before: Option<i64>,
) -> Markup {
    layout(
        "Журнал действий",
        Some((user, csrf)),
        None,
        html! {
            h1 { "Журнал действий" }
            table #audit {
                thead { tr { th { "Когда" } th { "Кто" } th { "Действие" } th { "Подробности" } } }
                tbody {
                    @for e in entries {
                        tr data-action=(e.action) {
                            td { (zone.day_and_time(e.at)) }
                            td { (e.user_email) }
                            td { (action_text(&e.action)) }
                            td { (e.detail) }
                        }
                    }
                }
            }
            @if let Some(before) = next_before {
                p { a href=(format!("/authority/audit?before={before}")) { "Раньше" } }
            }
        },
    )
}

pub(crate) fn upload_form(user: &AuthorityUser, csrf: &str, why: Option<&str>) -> Markup {
    layout(
        "Загрузка случаев",
        Some((user, csrf)),
        None,
        html! {
            h1 { "Загрузка подтверждённых случаев" }
            p {
                "CSV с заголовком "
                code { "phone,confirmed_at,contagious_from,contagious_to" }
                " (последние два столбца можно не заполнять). Сначала будет показана проверка: ничего не записывается и не отправляется, пока вы не подтвердите."
            }
            (problem(why))
            form method="post" action="/authority/upload" enctype="multipart/form-data" {
                (csrf_input(csrf))
                label for="file" { "Файл CSV" }
                input #file type="file" name="file" accept=".csv,text/csv";
                label for="list" { "…или вставьте список" }
                textarea #list name="list" rows="8" {}
                button #check-upload type="submit" { "Проверить" }
            }
        },
    )
}

/// Where an upload is.
pub(crate) enum JobView<'a> {
    /// The dry run is running: `done` of `total` cases matched.
    Checking { done: usize, total: usize },
    /// The dry run's result, before anything is recorded.
    Checked {
        visits: u64,
        people: u64,
        unreachable: u64,
    },
    /// Recording and queuing: `done` of `total` cases.
    Sending { done: usize, total: usize },
    /// Recorded: cases, alerts queued.
    Sent { recorded: usize, queued: u64 },
    /// Stopped on an error after `recorded` cases.
    Failed { recorded: usize, why: &'a str },
}

pub(crate) struct JobPage<'a> {
    pub user: &'a AuthorityUser,
    pub csrf: &'a str,
    pub job: &'a str,
    pub accepted: usize,
    pub rejected: &'a [Reject],
    pub view: JobView<'a>,
}

/// Refused rows listed on the page; the rest only counted.
const REJECTS_SHOWN_MAX: usize = 200;

pub(crate) fn job(j: &JobPage<'_>) -> Markup {
    let refresh = matches!(j.view, JobView::Checking { .. } | JobView::Sending { .. }).then_some(1);
    let title = match j.view {
        JobView::Checking { .. } => "Проверка файла",
        JobView::Checked { .. } => "Проверка: ничего не отправлено",
        JobView::Sending { .. } => "Отправка оповещений",
        JobView::Sent { .. } => "Оповещения поставлены в очередь",
        JobView::Failed { .. } => "Отправка прервана",
    };
    layout(
        title,
        Some((j.user, j.csrf)),
        refresh,
        html! {
            h1 { (title) }
            p #rows { "Строк принято: " strong #accepted { (j.accepted) } ", отклонено: " strong #rejected { (j.rejected.len()) } }
            @match &j.view {
                JobView::Checking { done, total } | JobView::Sending { done, total } => {
                    p { "Обработано " (done) " из " (total) ". Страница обновляется сама." }
                    progress #progress max=(total.max(&1)) value=(done) { (done) " из " (total) }
                }
                JobView::Checked { visits, people, unreachable } => {
                    dl #dry-run {
                        dt { "Посещений в окне заразности" } dd #visits { (visits) }
                        dt { "Людей (по случаям)" } dd #people { (people) }
                        dt { "Недоступны (СТОП или без согласия)" } dd #unreachable { (unreachable) }
                    }
                    @if j.accepted > 0 {
                        form method="post" action=(format!("/authority/upload/{}/send", j.job)) {
                            (csrf_input(j.csrf))
                            button #send-alerts type="submit" { "Отправить оповещения" }
                        }
                    }
                    p { a href="/authority/upload" { "Загрузить другой файл" } }
                }
                JobView::Sent { recorded, queued } => {
                    p #sent { "Записано случаев: " (recorded) ", оповещений в очереди: " (queued) "." }
                    p { a href="/authority/cases" { "Следить за доставкой" } }
                }
                JobView::Failed { recorded, why } => {
                    p.problem role="alert" { (why) }
                    p { "Записано случаев до ошибки: " (recorded) ". Повторная загрузка того же файла не отправит оповещение дважды." }
                }
            }
            @if !j.rejected.is_empty() {
                h2 { "Отклонённые строки" }
                table #rejects {
                    thead { tr { th { "Строка" } th { "Телефон" } th { "Причина" } } }
                    tbody {
                        @for r in j.rejected.iter().take(REJECTS_SHOWN_MAX) {
                            tr { td { (r.line) } td { (r.phone) } td { (r.reason) } }
                        }
                    }
                }
                @if j.rejected.len() > REJECTS_SHOWN_MAX {
                    p { "…и ещё " (j.rejected.len() - REJECTS_SHOWN_MAX) "." }
                }
            }
        },
    )
}

pub(crate) fn cases(
    user: &AuthorityUser,
    csrf: &str,
    zone: &ServiceZone,
    reports: &[CaseReport],
    next_before: Option<i64>,
) -> Markup {
    let moving = reports
        .iter()
        .any(|r| r.states.queued > 0 || r.states.sent > 0);
    layout(
        "Случаи",
        Some((user, csrf)),
        moving.then_some(5),
        html! {
            h1 { "Случаи и доставка оповещений" }
            p { a href="/authority/cases.csv" download { "Отчёт о доставке (CSV)" } }
            @if reports.is_empty() {
                p { "Случаев пока нет." }
            } @else {
                table #cases {
                    thead { tr {
                        th { "Случай" } th { "Подтверждён" } th { "Посещений" }
                        th { "В очереди" } th { "Отправлено" } th { "Доставлено" }
                        th { "Не доставлено" } th { "Истекло" }
                    } }
                    tbody {
                        @for r in reports {
                            tr data-case=(r.case.id) {
                                td { a href=(format!("/authority/cases/{}", r.case.id)) { "№" (r.case.id) } }
                                td { (zone.day_and_time(r.case.confirmed_at)) }
                                td { (r.counts.visits) }
                                td.queued { (r.states.queued) }
                                td.sent { (r.states.sent) }
                                td.delivered { (r.states.delivered) }
                                td.failed { (r.states.failed) }
                                td.expired { (r.states.expired) }
                            }
                        }
                    }
                }
            }
            @if let Some(before) = next_before {
                p { a href=(format!("/authority/cases?before={before}")) { "Ранее" } }
            }
        },
    )
}

/// The words of an alert's state on a case's page.
fn alert_state(v: &ExposedVisit) -> &'static str {
    let mut states = checkin_core::store::AlertStates::default();
    match v.status.as_deref() {
        None => return "удалено",
        Some(status) => states.add(status, v.delivery_state.as_deref(), 1),
    }
    if states.queued > 0 {
        "в очереди"
    } else if states.delivered > 0 {
        "доставлено"
    } else if states.failed > 0 {
        "не доставлено"
    } else if states.expired > 0 {
        "истекло"
    } else {
        "отправлено"
    }
}

pub(crate) fn case(
    user: &AuthorityUser,
    csrf: &str,
    zone: &ServiceZone,
    report: &CaseReport,
    visits: &[ExposedVisit],
) -> Markup {
    let case = &report.case;
    let moving = report.states.queued > 0 || report.states.sent > 0;
    let title = format!("Случай №{}", case.id);
    layout(
        &title,
        Some((user, csrf)),
        moving.then_some(5),
        html! {
            h1 { (title) }
            dl {
                dt { "Подтверждён" } dd { (zone.day_and_time(case.confirmed_at)) }
                dt { "Окно заразности" } dd { (zone.day_and_time(case.contagious_from)) " — " (zone.day_and_time(case.contagious_to)) }
                dt { "Посещений / людей / недоступны" } dd { (report.counts.visits) " / " (report.counts.people) " / " (report.counts.unreachable) }
                dt { "Оповещения" } dd #states {
                    "в очереди " (report.states.queued) ", отправлено " (report.states.sent)
                    ", доставлено " (report.states.delivered) ", не доставлено " (report.states.failed)
                    ", истекло " (report.states.expired)
                }
            }
            h2 { "Помещения и время" }
            table #visits {
                thead { tr { th { "Адрес" } th { "Время отметки" } th { "Оповещение" } } }
                tbody {
                    @for v in visits {
                        tr { td { (v.address) } td { (zone.day_and_time(v.checked_in_at)) } td { (alert_state(v)) } }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_refreshes_itself_and_a_finished_one_does_not() {
        let user = AuthorityUser {
            user_id: 1,
            authority_id: 1,
            authority_name: "РПН".into(),
            email: "epi@example.ru".into(),
        };
        let page = |view| {
            job(&JobPage {
                user: &user,
                csrf: "x",
                job: "j",
                accepted: 100_000,
                rejected: &[],
                view,
            })
            .into_string()
        };
        let running = page(JobView::Sending {
            done: 42_000,
            total: 100_000,
        });
        assert!(running.contains(r#"http-equiv="refresh""#), "{running}");
        assert!(
            running.contains(r#"max="100000" value="42000""#),
            "{running}"
        );
        let sent = page(JobView::Sent {
            recorded: 100_000,
            queued: 7,
        });
        assert!(!sent.contains("http-equiv"), "{sent}");
        assert!(sent.contains("оповещений в очереди: 7"), "{sent}");
    }
}
