//! ACD: queues (admin), agents' presence (an agent sets their own, supervisors anyone's),
//! live queue metrics and agent activity from the running router (through
//! [`crate::AcdView`]), call detail records and ASA/AHT/abandonment/service-level
//! statistics per queue and per agent over a time range (supervisor), and the tenant's
//! call-recording policy (admin), and callback requests: list and cancel (supervisor).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::agent_capacity::{AgentCapacity, AgentCapacityInput};
use parley_cases::callbacks::{Callback, CallbackFilter, CallbackState};
use parley_cases::queues::{
    AgentPresence, CallRecord, CallRecordFilter, CallStats, PresenceInput, Queue, QueueInput,
    RecordingPolicy,
};
use parley_cases::routing::{Presence, QueueMetrics};
use parley_cases::{Role, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues, create_queue))
        .routes(routes!(get_queue, update_queue, delete_queue))
        .routes(routes!(live_queues))
        .routes(routes!(live_agents))
        .routes(routes!(get_presence, set_presence))
        .routes(routes!(get_capacity, set_capacity))
        .routes(routes!(list_calls))
        .routes(routes!(queue_stats))
        .routes(routes!(agent_stats))
        .routes(routes!(get_recording_policy, set_recording_policy))
        .routes(routes!(list_callbacks))
        .routes(routes!(cancel_callback))
}

/// Filters of the callback list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    /// One queue.
    queue_id: Option<String>,
    /// One state: `waiting`, `dialling`, `connected`, `failed` or `cancelled`.
    #[param(value_type = Option<String>)]
    state: Option<CallbackState>,
}

/// The tenant's callback requests, oldest place first (supervisor): each with its
/// queue, customer, number, original place (`since`), state, attempts and last error.
#[utoipa::path(get, path = "/callbacks", tag = "acd", security(("bearer" = [])), params(CallbackQuery),
    responses((status = 200, body = Vec<Callback>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_callbacks(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<axum::Json<Vec<Callback>>> {
    let f = CallbackFilter {
        queue_id: q.queue_id,
        state: q.state,
    };
    Ok(axum::Json(s.store.list_callbacks(&a.actor, &f).await?))
}

/// Cancels a waiting callback (supervisor; audited, on the customer's timeline); the
/// router drops it at once. One being dialled or already closed: 409.
#[utoipa::path(post, path = "/callbacks/{id}/cancel", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = Callback), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn cancel_callback(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Callback>> {
    Ok(axum::Json(s.store.cancel_callback(&a.actor, &id).await?))
}

/// The tenant's queues (any user).
#[utoipa::path(get, path = "/queues", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = Vec<Queue>)))]
async fn list_queues(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<Queue>>> {
    Ok(axum::Json(s.store.list_queues(&a.actor).await?))
}

/// Creates a queue (admin). An IVR `enqueue` node names it by id or name.
#[utoipa::path(post, path = "/queues", tag = "acd", security(("bearer" = [])), request_body = QueueInput,
    responses((status = 201, body = Queue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_queue(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<QueueInput>,
) -> ApiResult<(StatusCode, axum::Json<Queue>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_queue(&a.actor, body).await?),
    ))
}

/// One queue (any user).
#[utoipa::path(get, path = "/queues/{id}", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = Queue), (status = 404, body = ErrorBody)))]
async fn get_queue(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Queue>> {
    Ok(axum::Json(s.store.queue(&a.actor, &id).await?))
}

/// Replaces a queue's settings (admin); the router picks them up at once.
#[utoipa::path(put, path = "/queues/{id}", tag = "acd", security(("bearer" = [])), request_body = QueueInput,
    responses((status = 200, body = Queue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_queue(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<QueueInput>,
) -> ApiResult<axum::Json<Queue>> {
    Ok(axum::Json(s.store.update_queue(&a.actor, &id, body).await?))
}

/// Deletes a queue (admin); calls waiting in it leave through the flow's timeout exit.
#[utoipa::path(delete, path = "/queues/{id}", tag = "acd", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_queue(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_queue(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live metrics of the tenant's queues (supervisor): waiting, longest wait, estimated
/// wait, staffing, service level and abandonment over the last 100 calls. Empty when
/// no SIP stack runs.
#[utoipa::path(get, path = "/queues/live", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = Vec<QueueMetrics>), (status = 403, body = ErrorBody)))]
async fn live_queues(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<QueueMetrics>>> {
    Ok(axum::Json(
        s.acd
            .as_ref()
            .map(|acd| acd.queue_metrics(&a.actor.tenant_id))
            .unwrap_or_default(),
    ))
}

/// What an agent is doing now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AgentActivity {
    /// The agent.
    user_id: String,
    /// Live presence (`offline`, `available`, `ringing`, `on_call`, `wrap_up`, `away`).
    #[serde(flatten)]
    presence: Presence,
}

/// Live presence of the tenant's routable agents (supervisor).
#[utoipa::path(get, path = "/agents/live", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = Vec<AgentActivity>), (status = 403, body = ErrorBody)))]
async fn live_agents(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<AgentActivity>>> {
    Ok(axum::Json(
        s.acd
            .as_ref()
            .map(|acd| acd.agent_presence(&a.actor.tenant_id))
            .unwrap_or_default()
            .into_iter()
            .map(|(user_id, presence)| AgentActivity { user_id, presence })
            .collect(),
    ))
}

/// An agent's presence: their own status and, with a running router, what they are
/// doing now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PresenceView {
    #[serde(flatten)]
    stored: AgentPresence,
    /// Live presence name (`ringing`, `on_call`, `wrap_up`…), when the router knows
    /// the agent.
    activity: Option<String>,
}

fn may_touch(a: &Authed, id: &str) -> Result<(), ApiError> {
    if a.user.id != id {
        a.require(Role::Supervisor)?;
    }
    Ok(())
}

fn view(s: &AppState, tenant_id: &str, stored: AgentPresence) -> PresenceView {
    let activity = s.acd.as_ref().and_then(|acd| {
        acd.agent_presence(tenant_id)
            .into_iter()
            .find(|(id, _)| *id == stored.user_id)
            .map(|(_, p)| p.name().to_owned())
    });
    PresenceView { stored, activity }
}

/// An agent's presence (the agent, or a supervisor).
#[utoipa::path(get, path = "/users/{id}/presence", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = PresenceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_presence(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PresenceView>> {
    may_touch(&a, &id)?;
    let p = s.store.presence(&a.actor, &id).await?;
    Ok(axum::Json(view(&s, &a.actor.tenant_id, p)))
}

/// Sets an agent's presence (the agent for themselves, a supervisor for anyone):
/// `available` to take calls, `away` with a reason, `offline`. Audited and published
/// as `agent.presence_changed`.
#[utoipa::path(put, path = "/users/{id}/presence", tag = "acd", security(("bearer" = [])), request_body = PresenceInput,
    responses((status = 200, body = PresenceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_presence(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<PresenceInput>,
) -> ApiResult<axum::Json<PresenceView>> {
    may_touch(&a, &id)?;
    let p = s.store.set_presence(&a.actor, &id, body).await?;
    Ok(axum::Json(view(&s, &a.actor.tenant_id, p)))
}

/// An agent's routing capacity: items at once per channel (`voice` 0–1, `chat` 0–20,
/// `async` 0–50; defaults 1, 3, 5) and whether a call blocks other work (the agent,
/// or a supervisor).
#[utoipa::path(get, path = "/users/{id}/capacity", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = AgentCapacity), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_capacity(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AgentCapacity>> {
    may_touch(&a, &id)?;
    Ok(axum::Json(s.store.agent_capacity(&a.actor, &id).await?))
}

/// Sets an agent's routing capacity (admin; a full replacement, absent fields take the
/// defaults). Audited; the router applies it at once.
#[utoipa::path(put, path = "/users/{id}/capacity", tag = "acd", security(("bearer" = [])), request_body = AgentCapacityInput,
    responses((status = 200, body = AgentCapacity), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_capacity(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<AgentCapacityInput>,
) -> ApiResult<axum::Json<AgentCapacity>> {
    Ok(axum::Json(
        s.store.set_agent_capacity(&a.actor, &id, body).await?,
    ))
}

/// Filters of the call list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallQuery {
    /// Started at or after (RFC 3339).
    #[param(value_type = Option<String>)]
    from: Option<Timestamp>,
    /// Started before (RFC 3339).
    #[param(value_type = Option<String>)]
    to: Option<Timestamp>,
    /// One queue.
    queue_id: Option<String>,
    /// One agent (who answered).
    agent_id: Option<String>,
    /// At most this many (1..=500, default 100).
    limit: Option<u32>,
}

/// Call detail records, newest first (supervisor).
#[utoipa::path(get, path = "/call-records", tag = "acd", security(("bearer" = [])), params(CallQuery),
    responses((status = 200, body = Vec<CallRecord>), (status = 403, body = ErrorBody)))]
async fn list_calls(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(q): Query<CallQuery>,
) -> ApiResult<axum::Json<Vec<CallRecord>>> {
    let f = CallRecordFilter {
        from: q.from,
        to: q.to,
        queue_id: q.queue_id,
        agent_id: q.agent_id,
        limit: q.limit,
    };
    Ok(axum::Json(s.store.call_records(&a.actor, &f).await?))
}

/// A time range (both required).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeQuery {
    /// From (RFC 3339, inclusive).
    #[param(value_type = String)]
    from: Timestamp,
    /// To (RFC 3339, exclusive).
    #[param(value_type = String)]
    to: Timestamp,
}

fn check_range(q: &RangeQuery) -> Result<(), ApiError> {
    if q.to <= q.from {
        return Err(ApiError::from(parley_cases::Error::Invalid {
            field: "to".into(),
            reason: "must be after from".into(),
        }));
    }
    Ok(())
}

/// ASA, AHT, abandonment rate and service level per queue for calls started in
/// `[from, to)` (supervisor).
#[utoipa::path(get, path = "/stats/queues", tag = "acd", security(("bearer" = [])), params(RangeQuery),
    responses((status = 200, body = Vec<CallStats>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn queue_stats(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(q): Query<RangeQuery>,
) -> ApiResult<axum::Json<Vec<CallStats>>> {
    check_range(&q)?;
    Ok(axum::Json(
        s.store.call_stats(&a.actor, q.from, q.to, false).await?,
    ))
}

/// The same per answering agent (supervisor).
#[utoipa::path(get, path = "/stats/agents", tag = "acd", security(("bearer" = [])), params(RangeQuery),
    responses((status = 200, body = Vec<CallStats>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn agent_stats(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(q): Query<RangeQuery>,
) -> ApiResult<axum::Json<Vec<CallStats>>> {
    check_range(&q)?;
    Ok(axum::Json(
        s.store.call_stats(&a.actor, q.from, q.to, true).await?,
    ))
}

/// The recording policy body.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct PolicyBody {
    /// `off`; `on` (record everyone: the tenant asserts a legal basis); `announce`
    /// (the caller hears a notice first, then everyone is recorded); `consent`
    /// (record only customers who opted in, `consent.recording`; no notice).
    recording: RecordingPolicy,
}

/// The tenant's call-recording policy for queue calls (admin).
#[utoipa::path(get, path = "/acd/recording", tag = "acd", security(("bearer" = [])),
    responses((status = 200, body = PolicyBody), (status = 403, body = ErrorBody)))]
async fn get_recording_policy(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<PolicyBody>> {
    Ok(axum::Json(PolicyBody {
        recording: s.store.recording_policy(&a.actor).await?,
    }))
}

/// Sets the tenant's call-recording policy (admin, audited).
#[utoipa::path(put, path = "/acd/recording", tag = "acd", security(("bearer" = [])), request_body = PolicyBody,
    responses((status = 200, body = PolicyBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_recording_policy(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<PolicyBody>,
) -> ApiResult<axum::Json<PolicyBody>> {
    s.store
        .set_recording_policy(&a.actor, body.recording)
        .await?;
    Ok(axum::Json(body))
}
