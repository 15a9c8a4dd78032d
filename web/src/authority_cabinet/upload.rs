//! The upload: a CSV file or a pasted list, read by the core's case CSV rules
//! (`checkin_core::case_csv`, the CLI import's too) → a dry run shown before
//! anything is recorded → «Отправить оповещения» records and queues in
//! batches (`Cases::record_and_match_batch_by`, the audit entry in the first
//! batch's transaction). Both runs are background tasks of this process; the
//! job's page refreshes itself while one runs, so a large file needs no
//! script. A job lives in memory for [`JOB_LIFE`] and belongs to its authority.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use checkin_core::case_csv::{self, CaseFileError, Reject};
use checkin_core::store::{AuditNote, AuthorityUser, CASES_BATCH_MAX};
use checkin_core::NewCase;
use rand::RngCore;

use super::auth::CabinetUser;
use super::cabinet::page;
use super::pages::{self, JobView};
use crate::error::WebError;
use crate::state::AppState;
use crate::visitor::{check_csrf, csrf, csrf_form, redirect, CsrfOnly};

/// Largest upload (a 100 000-row file is about 5 MB).
pub(crate) const UPLOAD_BYTES_MAX: usize = 32 * 1024 * 1024;
/// How long a job is kept after it was made.
const JOB_LIFE: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone)]
enum Phase {
    Checking {
        done: usize,
    },
    Checked {
        visits: u64,
        people: u64,
        unreachable: u64,
    },
    Sending {
        done: usize,
    },
    Sent {
        recorded: usize,
        queued: u64,
    },
    Failed {
        recorded: usize,
        why: String,
    },
}

#[derive(Debug)]
struct Job {
    authority_id: i64,
    made: Instant,
    cases: Arc<Vec<(u64, NewCase)>>,
    rejected: Vec<Reject>,
    phase: Phase,
}

type Jobs = Mutex<HashMap<String, Arc<Mutex<Job>>>>;

static JOBS: LazyLock<Jobs> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The job `id` of `authority_id` (another authority's is not found).
fn job_of(id: &str, authority_id: i64) -> Result<Arc<Mutex<Job>>, WebError> {
    let job = lock(&JOBS).get(id).cloned().ok_or(WebError::NotFound)?;
    if lock(&job).authority_id != authority_id {
        return Err(WebError::NotFound);
    }
    Ok(job)
}

fn set_phase(job: &Mutex<Job>, phase: Phase) {
    lock(job).phase = phase;
}

pub(crate) async fn form_page(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
) -> Response {
    let (field, cookies) = csrf(&state, &headers);
    page(
        StatusCode::OK,
        pages::upload_form(&user, &field, None),
        cookies,
    )
}

/// The byte offset of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The fields of a `multipart/form-data` body, by name (the last of a name
/// wins); `None` when it is not one.
fn multipart_fields(content_type: &str, body: &[u8]) -> Option<HashMap<String, Vec<u8>>> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })?;
    let delimiter = format!("\r\n--{boundary}");
    let mut rest: Vec<u8> = Vec::with_capacity(body.len() + 2);
    rest.extend_from_slice(b"\r\n");
    rest.extend_from_slice(body);
    let mut fields = HashMap::new();
    let mut at = find(&rest, delimiter.as_bytes())? + delimiter.len();
    loop {
        let part = &rest[at..];
        if part.starts_with(b"--") {
            break;
        }
        let next = find(part, delimiter.as_bytes())?;
        let part = part[..next].strip_prefix(b"\r\n")?;
        let split = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..split]);
        let name = head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            value.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == "name").then(|| v.trim_matches('"').to_owned())
            })
        })?;
        fields.insert(name, part[split + 4..].to_vec());
        at += next + delimiter.len();
    }
    Some(fields)
}

/// Reads the upload, checks it (the dry run, in the background) and sends
/// the browser to the job's page.
pub(crate) async fn upload(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadForm
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fields = multipart_fields(content_type, &body).ok_or(WebError::BadForm)?;
    let csrf_field = fields
        .get("csrf")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    check_csrf(&state, &headers, &csrf_field)?;
    let file = fields
        .get("file")
        .filter(|f| !f.iter().all(u8::is_ascii_whitespace))
        .or_else(|| fields.get("list"))
        .filter(|f| !f.iter().all(u8::is_ascii_whitespace));
    let refuse = |why: String| {
        let (field, cookies) = csrf(&state, &headers);
        Ok(page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::upload_form(&user, &field, Some(&why)),
            cookies,
        ))
    };
    let Some(bytes) = file else {
        return refuse("Выберите файл или вставьте список.".into());
    };
    let now = state.now();
    let exposure = state.store().config().exposure;
    let authority = user.authority_id;
    let bytes = bytes.clone();
    let read = tokio::task::spawn_blocking(move || {
        case_csv::read_cases(&bytes, Some(authority), &exposure, now)
    })
    .await
    .map_err(|_| WebError::BadForm)?;
    let (good, rejected) = match read {
        Ok(rows) => rows,
        Err(CaseFileError::Header(why)) => {
            return refuse(format!(
                "Первая строка должна быть заголовком phone,confirmed_at[,contagious_from,contagious_to] ({why})."
            ))
        }
        Err(CaseFileError::TooManyRows) => {
            return refuse(format!(
                "В файле больше {} строк: разделите его.",
                case_csv::CASE_ROWS_MAX
            ))
        }
    };
    let note = AuditNote::new(
        authority,
        &user.email,
        "upload_checked",
        format!("принято {}, отклонено {}", good.len(), rejected.len()),
    );
    state.store().authority().log(note, now).await?;
    let id = {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let cases = Arc::new(good);
    let job = Arc::new(Mutex::new(Job {
        authority_id: authority,
        made: Instant::now(),
        cases: Arc::clone(&cases),
        rejected,
        phase: Phase::Checking { done: 0 },
    }));
    {
        let mut jobs = lock(&JOBS);
        jobs.retain(|_, j| lock(j).made.elapsed() < JOB_LIFE);
        jobs.insert(id.clone(), Arc::clone(&job));
    }
    tracing::info!(authority, cases = cases.len(), "authority upload checked");
    tokio::spawn(dry_run(state.clone(), job, cases));
    Ok(redirect(&format!("/authority/upload/{id}"), Vec::new()))
}

async fn dry_run(state: AppState, job: Arc<Mutex<Job>>, cases: Arc<Vec<(u64, NewCase)>>) {
    let (mut visits, mut people, mut unreachable) = (0, 0, 0);
    let mut done = 0;
    for chunk in cases.chunks(CASES_BATCH_MAX) {
        let batch: Vec<NewCase> = chunk.iter().map(|(_, c)| c.clone()).collect();
        match state.store().cases().dry_run_batch(&batch).await {
            Ok(all) => {
                for counts in all {
                    visits += counts.visits;
                    people += counts.people;
                    unreachable += counts.unreachable;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "authority upload's dry run failed");
                let why = "Проверка прервана: хранилище недоступно. Загрузите файл ещё раз.";
                set_phase(
                    &job,
                    Phase::Failed {
                        recorded: 0,
                        why: why.into(),
                    },
                );
                return;
            }
        }
        done += chunk.len();
        set_phase(&job, Phase::Checking { done });
    }
    set_phase(
        &job,
        Phase::Checked {
            visits,
            people,
            unreachable,
        },
    );
}

pub(crate) async fn job_page(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let job = job_of(&id, user.authority_id)?;
    let (total, rejected, phase) = {
        let job = lock(&job);
        (job.cases.len(), job.rejected.clone(), job.phase.clone())
    };
    let view = match &phase {
        Phase::Checking { done } => JobView::Checking { done: *done, total },
        Phase::Checked {
            visits,
            people,
            unreachable,
        } => JobView::Checked {
            visits: *visits,
            people: *people,
            unreachable: *unreachable,
        },
        Phase::Sending { done } => JobView::Sending { done: *done, total },
        Phase::Sent { recorded, queued } => JobView::Sent {
            recorded: *recorded,
            queued: *queued,
        },
        Phase::Failed { recorded, why } => JobView::Failed {
            recorded: *recorded,
            why,
        },
    };
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::job(&pages::JobPage {
        user: &user,
        csrf: &field,
        job: &id,
        accepted: total,
        rejected: &rejected,
        view,
    });
    Ok(page(StatusCode::OK, markup, cookies))
}

/// «Отправить оповещения»: records and queues the checked cases in the
/// background (once: a second press finds the job sending or sent).
pub(crate) async fn send(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, WebError> {
    let job = job_of(&id, user.authority_id)?;
    csrf_form(&state, &headers, body)?;
    let cases = {
        let mut job = lock(&job);
        if !matches!(job.phase, Phase::Checked { .. }) || job.cases.is_empty() {
            return Ok(redirect(&format!("/authority/upload/{id}"), Vec::new()));
        }
        job.phase = Phase::Sending { done: 0 };
        Arc::clone(&job.cases)
    };
    tokio::spawn(record(state.clone(), user, job, cases));
    Ok(redirect(&format!("/authority/upload/{id}"), Vec::new()))
}

async fn record(
    state: AppState,
    user: AuthorityUser,
    job: Arc<Mutex<Job>>,
    cases: Arc<Vec<(u64, NewCase)>>,
) {
    let now = state.now();
    let (mut recorded, mut queued) = (0usize, 0u64);
    for (n, chunk) in cases.chunks(CASES_BATCH_MAX).enumerate() {
        let batch: Vec<NewCase> = chunk.iter().map(|(_, c)| c.clone()).collect();
        // The confirmation is logged with the first batch, in its transaction.
        let note = (n == 0).then(|| {
            AuditNote::new(
                user.authority_id,
                &user.email,
                "upload_confirmed",
                format!("случаев: {}", cases.len()),
            )
        });
        match state
            .store()
            .cases()
            .record_and_match_batch_by(&batch, note, now)
            .await
        {
            Ok(done) => {
                recorded += done.len();
                queued += done.iter().map(|c| c.alerts_queued).sum::<u64>();
                set_phase(&job, Phase::Sending { done: recorded });
            }
            Err(e) => {
                tracing::error!(error = %e, recorded, "authority upload stopped");
                let why = format!(
                    "Не удалось записать строки {}–{}: хранилище недоступно.",
                    chunk[0].0,
                    chunk[chunk.len() - 1].0
                );
                set_phase(&job, Phase::Failed { recorded, why });
                return;
            }
        }
    }
    tracing::info!(
        authority = user.authority_id,
        recorded,
        queued,
        "authority upload sent"
    );
    set_phase(&job, Phase::Sent { recorded, queued });
}

#[cfg(test)]
mod tests {
    use super::multipart_fields;

    #[test]
    fn multipart_fields_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nphone,confirmed_at\r\n1,2\r\n\r\n--XyZ--\r\n";
        let fields = multipart_fields("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(fields["csrf"], b"abc");
        assert_eq!(fields["file"], b"phone,confirmed_at\r\n1,2\r\n");
        assert!(multipart_fields("application/x-www-form-urlencoded", body).is_none());
    }
}
