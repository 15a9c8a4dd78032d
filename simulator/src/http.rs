//! The control API (axum) and the virtual-phone page.
//!
//! | call | does |
//! |---|---|
//! | `POST /api/mo` | inject an MO, answer the ESME's status |
//! | `GET /api/messages?to=` | MT messages, reassembled, with receipt status |
//! | `GET /api/stats` | counters |
//! | `GET /api/faults`, `PUT /api/faults` | the fault profile |
//! | `POST /api/ussd` | dial: open a USSD dialog, answer its first screen |
//! | `POST /api/ussd/{dialog}` | answer the screen (`{"answer"}`) or abort (`{"abort":true}`) |
//! | `DELETE /api/ussd/{dialog}` | abort |
//! | `GET /` | the virtual phone |

use axum::{
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::{Deserialize, Serialize};

use crate::{
    Error, FaultProfile, MoReport, MoRequest, MtMessage, Simulator, StatsSnapshot, UssdClosed,
    UssdDial, UssdScreen,
};

/// Largest request body the API reads.
pub const BODY_LEN_MAX: usize = 64 * 1024;

/// Messages returned by `GET /api/messages` when no `limit` is given.
pub const MESSAGES_LIMIT_DEFAULT: usize = 100;
/// Largest `limit` accepted by `GET /api/messages`.
pub const MESSAGES_LIMIT_MAX: usize = 10_000;

const PHONE_HTML: &str = include_str!("phone.html");

pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/", get(phone))
        .route("/api/mo", axum::routing::post(post_mo))
        .route("/api/messages", get(get_messages))
        .route("/api/stats", get(get_stats))
        .route("/api/faults", get(get_faults).put(put_faults))
        .route("/api/ussd", axum::routing::post(post_ussd))
        .route(
            "/api/ussd/{dialog}",
            axum::routing::post(post_ussd_reply).delete(delete_ussd),
        )
        .layer(DefaultBodyLimit::max(BODY_LEN_MAX))
        .with_state(sim)
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::Config(_) | Error::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NoReceiver | Error::ShuttingDown | Error::DialogsFull => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::DialogNotFound(_) => StatusCode::NOT_FOUND,
            Error::DialogClosed(_) => StatusCode::GONE,
            Error::DialogBusy(_) => StatusCode::CONFLICT,
            Error::NoScreen(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::EsmeRefused(_) => StatusCode::BAD_GATEWAY,
            Error::Io(error) => {
                tracing::error!(%error, "control api failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

async fn phone() -> Html<&'static str> {
    Html(PHONE_HTML)
}

async fn post_mo(
    State(sim): State<Simulator>,
    Json(request): Json<MoRequest>,
) -> Result<Json<MoReport>, Error> {
    Ok(Json(sim.inject_mo(request).await?))
}

#[derive(Debug, Deserialize)]
struct MessagesQuery {
    to: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct MessagesBody {
    messages: Vec<MtMessage>,
}

async fn get_messages(
    State(sim): State<Simulator>,
    Query(query): Query<MessagesQuery>,
) -> Json<MessagesBody> {
    let limit = query
        .limit
        .unwrap_or(MESSAGES_LIMIT_DEFAULT)
        .min(MESSAGES_LIMIT_MAX);
    Json(MessagesBody {
        messages: sim.messages(query.to.as_deref(), limit),
    })
}

async fn get_stats(State(sim): State<Simulator>) -> Json<StatsSnapshot> {
    Json(sim.stats())
}

async fn get_faults(State(sim): State<Simulator>) -> Json<FaultProfile> {
    Json(sim.faults())
}

async fn put_faults(
    State(sim): State<Simulator>,
    Json(profile): Json<FaultProfile>,
) -> Result<Json<FaultProfile>, Error> {
    sim.set_faults(profile)?;
    Ok(Json(sim.faults()))
}

async fn post_ussd(
    State(sim): State<Simulator>,
    Json(request): Json<UssdDial>,
) -> Result<Json<UssdScreen>, Error> {
    Ok(Json(sim.ussd_dial(request).await?))
}

/// The body of `POST /api/ussd/{dialog}`: an answer, or an abort.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UssdReply {
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    abort: bool,
}

async fn post_ussd_reply(
    State(sim): State<Simulator>,
    Path(dialog): Path<String>,
    Json(reply): Json<UssdReply>,
) -> Result<Response, Error> {
    if reply.abort {
        return Ok(Json(sim.ussd_abort(&dialog).await?).into_response());
    }
    let Some(answer) = reply.answer else {
        return Err(Error::BadRequest(
            "the body needs \"answer\" or \"abort\":true".into(),
        ));
    };
    Ok(Json(sim.ussd_answer(&dialog, &answer).await?).into_response())
}

async fn delete_ussd(
    State(sim): State<Simulator>,
    Path(dialog): Path<String>,
) -> Result<Json<UssdClosed>, Error> {
    Ok(Json(sim.ussd_abort(&dialog).await?))
}
