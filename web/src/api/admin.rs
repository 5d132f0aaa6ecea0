//! Case types, SLA policies, the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Page;
use parley_cases::audit::{AuditEntry, AuditFilter};
use parley_cases::case_types::{CaseType, FieldDef};
use parley_cases::sla::{Priority, SlaPolicy};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_case_types, create_case_type))
        .routes(routes!(update_case_type))
        .routes(routes!(list_sla))
        .routes(routes!(set_sla))
        .routes(routes!(audit))
}

/// Case types and their forms.
#[utoipa::path(get, path = "/case-types", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Vec<CaseType>)))]
async fn list_case_types(
    State(s): State<AppState>,
    a: Authed,
) -> ApiResult<axum::Json<Vec<CaseType>>> {
    Ok(axum::Json(s.store.list_case_types(&a.actor).await?))
}

/// A case type definition.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CaseTypeBody {
    /// Unique name.
    name: String,
    /// Custom fields.
    #[serde(default)]
    fields: Vec<FieldDef>,
}

/// Creates a case type (admin).
#[utoipa::path(post, path = "/case-types", tag = "admin", security(("bearer" = [])), request_body = CaseTypeBody,
    responses((status = 201, body = CaseType), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_case_type(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<CaseTypeBody>,
) -> ApiResult<(StatusCode, axum::Json<CaseType>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            s.store
                .create_case_type(&a.actor, &body.name, body.fields)
                .await?,
        ),
    ))
}

/// New fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct FieldsBody {
    /// Custom fields (replace the current ones).
    fields: Vec<FieldDef>,
}

/// Replaces a case type's fields (admin).
#[utoipa::path(put, path = "/case-types/{id}", tag = "admin", security(("bearer" = [])), request_body = FieldsBody,
    responses((status = 200, body = CaseType), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_case_type(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<FieldsBody>,
) -> ApiResult<axum::Json<CaseType>> {
    Ok(axum::Json(
        s.store.update_case_type(&a.actor, &id, body.fields).await?,
    ))
}

/// SLA targets per priority.
#[utoipa::path(get, path = "/sla-policies", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Vec<SlaPolicy>)))]
async fn list_sla(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<SlaPolicy>>> {
    Ok(axum::Json(s.store.list_sla_policies(&a.actor).await?))
}

/// Targets in minutes.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct SlaBody {
    /// Minutes to first response.
    first_response_minutes: i64,
    /// Minutes to resolution.
    resolution_minutes: i64,
}

/// Sets the SLA targets of one priority (admin).
#[utoipa::path(put, path = "/sla-policies/{priority}", tag = "admin", security(("bearer" = [])), request_body = SlaBody,
    params(("priority" = String, Path, description = "P0, P1, P2 or P3")),
    responses((status = 200, body = SlaPolicy), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_sla(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(priority): Path<String>,
    Json(body): Json<SlaBody>,
) -> ApiResult<axum::Json<SlaPolicy>> {
    let priority = Priority::parse(&priority)?;
    let p = SlaPolicy {
        priority,
        first_response_minutes: body.first_response_minutes,
        resolution_minutes: body.resolution_minutes,
    };
    Ok(axum::Json(s.store.set_sla_policy(&a.actor, p).await?))
}

/// Audit filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only about this entity.
    entity_id: Option<String>,
    /// Only by this user.
    actor_id: Option<String>,
    /// Page size.
    limit: Option<u32>,
    /// Cursor.
    cursor: Option<String>,
}

/// The audit log, newest first (supervisor).
#[utoipa::path(get, path = "/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody)))]
async fn audit(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    let f = AuditFilter {
        entity_id: q.entity_id,
        actor_id: q.actor_id,
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(axum::Json(s.store.audit_log(&a.actor, &f).await?))
}
