//! The inbox's supporting routes. Canned responses: the tenant's library of reply
//! templates (`{{customer.name}}` and the other placeholders of
//! `parley_cases::canned::PLACEHOLDERS`); every user reads it (the reply box of the
//! inbox), admins write it. Colleagues: who can be @mentioned in a note or named as an
//! assignee — names and mention handles only, for every signed-in user (agents may not
//! list users).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::canned::{CannedResponse, NewCannedResponse};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_canned, create_canned))
        .routes(routes!(get_canned, update_canned, delete_canned))
        .routes(routes!(colleagues))
}

/// A user as their colleagues see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Colleague {
    /// User id.
    id: String,
    /// Display name.
    name: String,
    /// What follows `@` to mention them in a note: their email's local part.
    handle: String,
    /// `agent`, `supervisor` or `admin`.
    role: parley_cases::Role,
}

/// The tenant's active users, by name: who can be @mentioned in a note (names and
/// handles only, no email addresses).
#[utoipa::path(get, path = "/colleagues", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = Vec<Colleague>), (status = 401, body = ErrorBody)))]
async fn colleagues(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<Colleague>>> {
    let mut out: Vec<Colleague> = s
        .store
        .list_users(&a.actor)
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| Colleague {
            handle: u.email.split('@').next().unwrap_or_default().to_owned(),
            id: u.id,
            name: u.name,
            role: u.role,
        })
        .collect();
    out.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(axum::Json(out))
}

/// The tenant's canned responses, by shortcut.
#[utoipa::path(get, path = "/canned-responses", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = Vec<CannedResponse>), (status = 401, body = ErrorBody)))]
async fn list_canned(
    State(s): State<AppState>,
    a: Authed,
) -> ApiResult<axum::Json<Vec<CannedResponse>>> {
    Ok(axum::Json(s.store.list_canned_responses(&a.actor).await?))
}

/// One canned response.
#[utoipa::path(get, path = "/canned-responses/{id}", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = CannedResponse), (status = 404, body = ErrorBody)))]
async fn get_canned(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CannedResponse>> {
    Ok(axum::Json(s.store.canned_response(&a.actor, &id).await?))
}

/// Adds a canned response (admin). An unknown placeholder is a 422 naming it; a taken
/// shortcut is a 409.
#[utoipa::path(post, path = "/canned-responses", tag = "inbox", security(("bearer" = [])), request_body = NewCannedResponse,
    responses((status = 201, body = CannedResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_canned(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewCannedResponse>,
) -> ApiResult<(StatusCode, axum::Json<CannedResponse>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_canned_response(&a.actor, body).await?),
    ))
}

/// Replaces a canned response's shortcut, title and body (admin).
#[utoipa::path(put, path = "/canned-responses/{id}", tag = "inbox", security(("bearer" = [])), request_body = NewCannedResponse,
    responses((status = 200, body = CannedResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_canned(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<NewCannedResponse>,
) -> ApiResult<axum::Json<CannedResponse>> {
    Ok(axum::Json(
        s.store.update_canned_response(&a.actor, &id, body).await?,
    ))
}

/// Removes a canned response (admin).
#[utoipa::path(delete, path = "/canned-responses/{id}", tag = "inbox", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_canned(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_canned_response(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
