//! Users, teams, skills.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Role;
use parley_cases::directory::{NewUser, Skill, Team, User, UserPatch, UserSkill};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(user_skills))
        .routes(routes!(set_user_skill, remove_user_skill))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(add_team_member, remove_team_member))
        .routes(routes!(list_skills, create_skill))
}

/// All users of the tenant.
#[utoipa::path(get, path = "/users", tag = "directory", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<User>>> {
    Ok(axum::Json(s.store.list_users(&a.actor).await?))
}

/// Creates a user (admin).
#[utoipa::path(post, path = "/users", tag = "directory", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_user(&a.actor, body).await?),
    ))
}

/// One user (supervisors see anyone, agents themselves).
#[utoipa::path(get, path = "/users/{id}", tag = "directory", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    if a.user.id != id {
        a.require(Role::Supervisor)?;
    }
    Ok(axum::Json(s.store.user(&a.actor, &id).await?))
}

/// Changes a user's name, role, active flag or password (admin).
#[utoipa::path(patch, path = "/users/{id}", tag = "directory", security(("bearer" = [])), request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<UserPatch>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(s.store.update_user(&a.actor, &id, body).await?))
}

/// A user's skills with proficiency.
#[utoipa::path(get, path = "/users/{id}/skills", tag = "directory", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserSkill>)))]
async fn user_skills(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<UserSkill>>> {
    s.store.user(&a.actor, &id).await?;
    Ok(axum::Json(s.store.user_skills(&a.actor, &id).await?))
}

/// Proficiency 1..=5.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Proficiency {
    /// 1 (novice) to 5 (expert).
    proficiency: i64,
}

/// Sets a user's proficiency in a skill (admin).
#[utoipa::path(put, path = "/users/{id}/skills/{skill_id}", tag = "directory", security(("bearer" = [])), request_body = Proficiency,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_user_skill(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path((id, skill)): Path<(String, String)>,
    Json(body): Json<Proficiency>,
) -> ApiResult<StatusCode> {
    s.store
        .set_user_skill(&a.actor, &id, &skill, Some(body.proficiency))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a skill from a user (admin).
#[utoipa::path(delete, path = "/users/{id}/skills/{skill_id}", tag = "directory", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_user_skill(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path((id, skill)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.set_user_skill(&a.actor, &id, &skill, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Teams with members.
#[utoipa::path(get, path = "/teams", tag = "directory", security(("bearer" = [])), responses((status = 200, body = Vec<Team>)))]
async fn list_teams(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<Team>>> {
    Ok(axum::Json(s.store.list_teams(&a.actor).await?))
}

/// A name.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NameBody {
    /// The name.
    name: String,
}

/// Creates a team (admin).
#[utoipa::path(post, path = "/teams", tag = "directory", security(("bearer" = [])), request_body = NameBody,
    responses((status = 201, body = Team), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_team(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NameBody>,
) -> ApiResult<(StatusCode, axum::Json<Team>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_team(&a.actor, &body.name).await?),
    ))
}

/// Adds a user to a team (admin).
#[utoipa::path(put, path = "/teams/{id}/members/{user_id}", tag = "directory", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn add_team_member(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.set_team_member(&a.actor, &id, &user, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user from a team (admin).
#[utoipa::path(delete, path = "/teams/{id}/members/{user_id}", tag = "directory", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_team_member(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.set_team_member(&a.actor, &id, &user, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's skills.
#[utoipa::path(get, path = "/skills", tag = "directory", security(("bearer" = [])), responses((status = 200, body = Vec<Skill>)))]
async fn list_skills(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<Skill>>> {
    Ok(axum::Json(s.store.list_skills(&a.actor).await?))
}

/// Creates a skill (admin).
#[utoipa::path(post, path = "/skills", tag = "directory", security(("bearer" = [])), request_body = NameBody,
    responses((status = 201, body = Skill), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_skill(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NameBody>,
) -> ApiResult<(StatusCode, axum::Json<Skill>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_skill(&a.actor, &body.name).await?),
    ))
}
