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
//!
//! With several operators ([`Network`]) the same calls route by number:
//! `POST /api/mo` and `POST /api/ussd` by `from`, the answers name the
//! `operator`; `GET /api/messages`, `GET`/`PUT /api/faults` take
//! `?operator=NAME` (all without it); `GET /api/stats` sums every
//! operator's counters and lists each under `operators`; `GET
//! /api/operators` lists them and `GET /api/route?from=` names a number's.

use axum::{
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::{Deserialize, Serialize};

use crate::{
    network::{Network, OperatorInfo},
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
            Error::DialogNotFound(_) | Error::UnknownOperator(_) => StatusCode::NOT_FOUND,
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

/// The router of several operators: the same calls, routed by number.
impl Network {
    /// Serves the control API and virtual phone of every operator on
    /// `listener` until `shutdown` is cancelled.
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(), crate::Error> {
        axum::serve(listener, self.http_router())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }

    /// The control API router of every operator.
    pub fn http_router(&self) -> Router {
        network_router(self.clone())
    }
}

fn network_router(net: Network) -> Router {
    Router::new()
        .route("/", get(phone))
        .route("/api/mo", axum::routing::post(net_post_mo))
        .route("/api/messages", get(net_get_messages))
        .route("/api/stats", get(net_get_stats))
        .route("/api/faults", get(net_get_faults).put(net_put_faults))
        .route("/api/operators", get(net_get_operators))
        .route("/api/route", get(net_get_route))
        .route("/api/ussd", axum::routing::post(net_post_ussd))
        .route(
            "/api/ussd/{dialog}",
            axum::routing::post(net_post_ussd_reply).delete(net_delete_ussd),
        )
        .layer(DefaultBodyLimit::max(BODY_LEN_MAX))
        .with_state(net)
}

/// A value of one operator, with the operator's name beside its fields.
#[derive(Debug, Serialize)]
struct Tagged<T> {
    operator: String,
    #[serde(flatten)]
    value: T,
}

#[derive(Debug, Deserialize)]
struct OperatorQuery {
    operator: Option<String>,
}

async fn net_post_mo(
    State(net): State<Network>,
    Json(request): Json<MoRequest>,
) -> Result<Json<Tagged<MoReport>>, Error> {
    let (operator, value) = net.inject_mo(request).await?;
    Ok(Json(Tagged { operator, value }))
}

#[derive(Debug, Deserialize)]
struct NetMessagesQuery {
    to: Option<String>,
    limit: Option<usize>,
    operator: Option<String>,
}

#[derive(Debug, Serialize)]
struct NetMessagesBody {
    messages: Vec<Tagged<MtMessage>>,
}

async fn net_get_messages(
    State(net): State<Network>,
    Query(query): Query<NetMessagesQuery>,
) -> Result<Json<NetMessagesBody>, Error> {
    let limit = query
        .limit
        .unwrap_or(MESSAGES_LIMIT_DEFAULT)
        .min(MESSAGES_LIMIT_MAX);
    let messages = net
        .messages(query.operator.as_deref(), query.to.as_deref(), limit)?
        .into_iter()
        .map(|(operator, value)| Tagged { operator, value })
        .collect();
    Ok(Json(NetMessagesBody { messages }))
}

/// Adds `b`'s numbers into `a`, field by field (maps merged): the sum of
/// every operator's counters keeps single-operator clients working.
fn add_json(a: &mut serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(key) {
                    Some(mine) => add_json(mine, value),
                    None => {
                        a.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (a @ Value::Number(_), Value::Number(b)) => {
            let sum = a
                .as_u64()
                .unwrap_or(0)
                .saturating_add(b.as_u64().unwrap_or(0));
            *a = Value::from(sum);
        }
        _ => {}
    }
}

async fn net_get_stats(State(net): State<Network>) -> Json<serde_json::Value> {
    let mut total = serde_json::json!({});
    let mut operators = serde_json::Map::new();
    for (name, stats) in net.stats() {
        let stats = serde_json::to_value(stats).unwrap_or_default();
        add_json(&mut total, &stats);
        operators.insert(name, stats);
    }
    if let serde_json::Value::Object(total) = &mut total {
        total.insert("operators".into(), serde_json::Value::Object(operators));
    }
    Json(total)
}

async fn net_get_faults(
    State(net): State<Network>,
    Query(query): Query<OperatorQuery>,
) -> Result<Json<FaultProfile>, Error> {
    Ok(Json(net.faults(query.operator.as_deref())?))
}

async fn net_put_faults(
    State(net): State<Network>,
    Query(query): Query<OperatorQuery>,
    Json(profile): Json<FaultProfile>,
) -> Result<Json<FaultProfile>, Error> {
    net.set_faults(query.operator.as_deref(), profile)?;
    Ok(Json(net.faults(query.operator.as_deref())?))
}

#[derive(Debug, Serialize)]
struct OperatorsBody {
    operators: Vec<OperatorInfo>,
}

async fn net_get_operators(State(net): State<Network>) -> Json<OperatorsBody> {
    Json(OperatorsBody {
        operators: net.operators(),
    })
}

#[derive(Debug, Deserialize)]
struct RouteQuery {
    from: String,
}

async fn net_get_route(
    State(net): State<Network>,
    Query(query): Query<RouteQuery>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "operator": net.route(&query.from).0 }))
}

/// Dialog ids of several operators read `OPERATOR.ID`: each operator
/// numbers its own dialogs.
fn split_dialog<'a>(net: &'a Network, dialog: &'a str) -> Result<(&'a Simulator, &'a str), Error> {
    let (name, id) = dialog
        .split_once('.')
        .ok_or_else(|| Error::DialogNotFound(dialog.into()))?;
    let sim = net
        .simulator(name)
        .ok_or_else(|| Error::DialogNotFound(dialog.into()))?;
    Ok((sim, id))
}

fn tag_screen(operator: &str, mut screen: UssdScreen) -> Tagged<UssdScreen> {
    screen.dialog = format!("{operator}.{}", screen.dialog);
    Tagged {
        operator: operator.into(),
        value: screen,
    }
}

async fn net_post_ussd(
    State(net): State<Network>,
    Json(request): Json<UssdDial>,
) -> Result<Json<Tagged<UssdScreen>>, Error> {
    let (operator, sim) = net.route(&request.from);
    let screen = sim.ussd_dial(request).await?;
    Ok(Json(tag_screen(operator, screen)))
}

async fn net_post_ussd_reply(
    State(net): State<Network>,
    Path(dialog): Path<String>,
    Json(reply): Json<UssdReply>,
) -> Result<Response, Error> {
    let (sim, id) = split_dialog(&net, &dialog)?;
    let operator = dialog.split('.').next().unwrap_or_default();
    if reply.abort {
        let mut closed = sim.ussd_abort(id).await?;
        closed.dialog = dialog.clone();
        return Ok(Json(closed).into_response());
    }
    let Some(answer) = reply.answer else {
        return Err(Error::BadRequest(
            "the body needs \"answer\" or \"abort\":true".into(),
        ));
    };
    Ok(Json(tag_screen(operator, sim.ussd_answer(id, &answer).await?)).into_response())
}

async fn net_delete_ussd(
    State(net): State<Network>,
    Path(dialog): Path<String>,
) -> Result<Json<UssdClosed>, Error> {
    let (sim, id) = split_dialog(&net, &dialog)?;
    let mut closed = sim.ussd_abort(id).await?;
    closed.dialog = dialog.clone();
    Ok(Json(closed))
}
