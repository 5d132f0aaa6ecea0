//! Work items routed like calls (tasks, chats, emails, messages): an integration (a
//! supervisor's or admin's token) creates one in a queue; the router offers it to an
//! agent with capacity (`work_item.offered` on the agent's event stream), who accepts,
//! declines or completes it here. The router decides (through [`crate::AcdView`]); the
//! answer comes once the new state is stored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Role;
use parley_cases::work_items::{NewWorkItem, WorkAction, WorkItem, WorkItemFilter, WorkItemState};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Authed, Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_work_items, create_work_item))
        .routes(routes!(get_work_item))
        .routes(routes!(accept_work_item))
        .routes(routes!(decline_work_item))
        .routes(routes!(complete_work_item))
}

/// Filters of the work-item list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WorkItemQuery {
    /// Present (`?mine`): only the items offered or assigned to me. Agents always get
    /// only theirs.
    #[param(value_type = Option<String>)]
    mine: Option<String>,
    /// One state: `queued`, `offered`, `assigned`, `completed` or `expired`.
    #[param(value_type = Option<String>)]
    state: Option<WorkItemState>,
}

/// Creates a routed work item (supervisor or admin: an integration's token):
/// `{"kind":"task","queue":"…","priority":"P1","title":"…","customer_id":"…"}` —
/// `kind` one of `task`, `chat`, `email`, `message`; `queue` by id or name; priority
/// `P0`…`P3` (default `P2`; with the tenant's SLA policy for it, the first-response
/// due time raises the item as it nears). Audited; the router offers it to an agent
/// with capacity on the kind's channel.
#[utoipa::path(post, path = "/work-items", tag = "routing", security(("bearer" = [])), request_body = NewWorkItem,
    responses((status = 201, body = WorkItem), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_work_item(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Json(body): Json<NewWorkItem>,
) -> ApiResult<(StatusCode, axum::Json<WorkItem>)> {
    let item = s.store.create_work_item(&a.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(item)))
}

/// Work items, newest first (at most 1000): an agent's own open ones (offered or
/// assigned to them); a supervisor's view of the tenant's, or theirs with `?mine`.
#[utoipa::path(get, path = "/work-items", tag = "routing", security(("bearer" = [])), params(WorkItemQuery),
    responses((status = 200, body = Vec<WorkItem>), (status = 422, body = ErrorBody)))]
async fn list_work_items(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<WorkItemQuery>,
) -> ApiResult<axum::Json<Vec<WorkItem>>> {
    let mine = q.mine.is_some() || a.actor.role < Role::Supervisor;
    let f = WorkItemFilter {
        agent_id: mine.then(|| a.user.id.clone()),
        state: q.state,
    };
    Ok(axum::Json(s.store.list_work_items(&a.actor, &f).await?))
}

/// One work item: agents only theirs (offered or assigned to them), supervisors any.
#[utoipa::path(get, path = "/work-items/{id}", tag = "routing", security(("bearer" = [])),
    responses((status = 200, body = WorkItem), (status = 404, body = ErrorBody)))]
async fn get_work_item(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WorkItem>> {
    Ok(axum::Json(visible(&s, &a, &id).await?))
}

/// The item, if `a` may see it: supervisors any of the tenant's, agents those offered
/// or assigned to them (404 otherwise).
async fn visible(s: &AppState, a: &Authed, id: &str) -> ApiResult<WorkItem> {
    let item = s.store.work_item(&a.actor, id).await?;
    if a.actor.role < Role::Supervisor && item.agent_id.as_deref() != Some(a.user.id.as_str()) {
        return Err(parley_cases::Error::NotFound {
            entity: "work_item",
        }
        .into());
    }
    Ok(item)
}

async fn act(
    s: &AppState,
    a: &Authed,
    id: String,
    action: WorkAction,
) -> ApiResult<axum::Json<WorkItem>> {
    let item = visible(s, a, &id).await?;
    let Some(acd) = s.acd.as_ref() else {
        // Nothing routes here, so nothing is offered to or held by anyone.
        return Err(parley_cases::Error::InvalidTransition {
            entity: "work_item",
            from: item.state.as_str().to_owned(),
            to: action.target().as_str().to_owned(),
        }
        .into());
    };
    acd.work_item(a.actor.clone(), id.clone(), action).await?;
    Ok(axum::Json(s.store.work_item(&a.actor, &id).await?))
}

/// Accepts the work item offered to me: it is assigned to me. Not (or no longer)
/// offered to me — e.g. the offer timed out and moved on: 409.
#[utoipa::path(post, path = "/work-items/{id}/accept", tag = "routing", security(("bearer" = [])),
    responses((status = 200, body = WorkItem), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
))]
async fn accept_work_item(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WorkItem>> {
    act(&s, &a, id, WorkAction::Accept).await
}

/// Declines the work item offered to me: it goes back to its queue for someone else.
/// Not offered to me: 409.
#[utoipa::path(post, path = "/work-items/{id}/decline", tag = "routing", security(("bearer" = [])),
    responses((status = 200, body = WorkItem), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
))]
async fn decline_work_item(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WorkItem>> {
    act(&s, &a, id, WorkAction::Decline).await
}

/// Completes the work item assigned to me, freeing my capacity (the next waiting item
/// may be offered at once). Not assigned to me: 409.
#[utoipa::path(post, path = "/work-items/{id}/complete", tag = "routing", security(("bearer" = [])),
    responses((status = 200, body = WorkItem), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
))]
async fn complete_work_item(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WorkItem>> {
    act(&s, &a, id, WorkAction::Complete).await
}
