//! Cases: create, filter, update, move through statuses, tag, link, merge.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Page;
use parley_cases::cases::{Case, CaseEvent, CaseFilter, CasePatch, NewCase};
use parley_cases::sla::{CaseStatus, Priority};
use parley_cases::timeline::Interaction;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Authed, Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_case, list_cases))
        .routes(routes!(get_case, update_case))
        .routes(routes!(transition))
        .routes(routes!(events))
        .routes(routes!(interactions))
        .routes(routes!(tags))
        .routes(routes!(link))
        .routes(routes!(merge))
}

/// Opens a case; SLA due times come from the priority's policy.
#[utoipa::path(post, path = "/cases", tag = "cases", security(("bearer" = [])), request_body = NewCase,
    responses((status = 201, body = Case), (status = 422, body = ErrorBody)))]
async fn create_case(
    State(s): State<AppState>,
    a: Authed,
    Json(body): Json<NewCase>,
) -> ApiResult<(StatusCode, axum::Json<Case>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_case(&a.actor, body).await?),
    ))
}

/// Case list filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CaseQuery {
    /// Status.
    status: Option<CaseStatus>,
    /// Priority.
    priority: Option<Priority>,
    /// Assigned agent.
    assignee_id: Option<String>,
    /// Team.
    team_id: Option<String>,
    /// Tag.
    tag: Option<String>,
    /// Customer.
    customer_id: Option<String>,
    /// Page size, 1..=200 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Cases, newest first, filtered.
#[utoipa::path(get, path = "/cases", tag = "cases", security(("bearer" = [])), params(CaseQuery),
    responses((status = 200, body = Page<Case>), (status = 422, body = ErrorBody)))]
async fn list_cases(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<CaseQuery>,
) -> ApiResult<axum::Json<Page<Case>>> {
    let f = CaseFilter {
        status: q.status,
        priority: q.priority,
        assignee_id: q.assignee_id,
        team_id: q.team_id,
        tag: q.tag,
        customer_id: q.customer_id,
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(axum::Json(s.store.list_cases(&a.actor, &f).await?))
}

/// One case with tags, links and SLA.
#[utoipa::path(get, path = "/cases/{id}", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Case), (status = 404, body = ErrorBody)))]
async fn get_case(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(s.store.case(&a.actor, &id).await?))
}

/// Changes title, priority, assignee, team or custom fields.
#[utoipa::path(patch, path = "/cases/{id}", tag = "cases", security(("bearer" = [])), request_body = CasePatch,
    responses((status = 200, body = Case), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_case(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<CasePatch>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(s.store.update_case(&a.actor, &id, body).await?))
}

/// A status change.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TransitionBody {
    /// Target status.
    status: CaseStatus,
    /// Why (kept with the event).
    #[serde(default)]
    reason: Option<String>,
}

/// Moves the case to another status. Allowed: any active status (new, open,
/// pending_customer, on_hold) to another active one (not back to new) or to resolved;
/// resolved to closed; resolved or closed back to open (reopen). Others are 409.
#[utoipa::path(post, path = "/cases/{id}/transitions", tag = "cases", security(("bearer" = [])), request_body = TransitionBody,
    responses((status = 200, body = Case), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn transition(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<TransitionBody>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(
        s.store
            .transition_case(&a.actor, &id, body.status, body.reason.as_deref())
            .await?,
    ))
}

/// Every recorded change of the case, oldest first.
#[utoipa::path(get, path = "/cases/{id}/events", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Vec<CaseEvent>), (status = 404, body = ErrorBody)))]
async fn events(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<CaseEvent>>> {
    Ok(axum::Json(s.store.case_events(&a.actor, &id).await?))
}

/// Interactions filed under the case, oldest first.
#[utoipa::path(get, path = "/cases/{id}/interactions", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Vec<Interaction>), (status = 404, body = ErrorBody)))]
async fn interactions(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Interaction>>> {
    s.store.case(&a.actor, &id).await?;
    Ok(axum::Json(s.store.case_interactions(&a.actor, &id).await?))
}

/// Tags to add and remove.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TagsBody {
    /// Tags to add.
    #[serde(default)]
    add: Vec<String>,
    /// Tags to remove.
    #[serde(default)]
    remove: Vec<String>,
}

/// Adds and removes tags.
#[utoipa::path(post, path = "/cases/{id}/tags", tag = "cases", security(("bearer" = [])), request_body = TagsBody,
    responses((status = 200, body = Case), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn tags(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<TagsBody>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(
        s.store
            .tag_case(&a.actor, &id, &body.add, &body.remove)
            .await?,
    ))
}

/// A link to another case.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LinkBody {
    /// The other case.
    case_id: String,
    /// `relates_to`, `duplicate_of`, `blocks` or `blocked_by`.
    kind: String,
}

/// Links this case to another.
#[utoipa::path(post, path = "/cases/{id}/links", tag = "cases", security(("bearer" = [])), request_body = LinkBody,
    responses((status = 200, body = Case), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<LinkBody>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(
        s.store
            .link_cases(&a.actor, &id, &body.case_id, &body.kind)
            .await?,
    ))
}

/// Merge target.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MergeBody {
    /// The case that survives.
    into: String,
}

/// Merges this case into another (supervisor); this one closes with `merged_into`.
#[utoipa::path(post, path = "/cases/{id}/merge", tag = "cases", security(("bearer" = [])), request_body = MergeBody,
    responses((status = 200, body = Case), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn merge(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
    Json(body): Json<MergeBody>,
) -> ApiResult<axum::Json<Case>> {
    Ok(axum::Json(
        s.store.merge_cases(&a.actor, &id, &body.into).await?,
    ))
}
