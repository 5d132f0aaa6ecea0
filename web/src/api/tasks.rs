//! Tasks on cases (issue #23): a case's tasks, adding and changing one, and "my tasks"
//! (the caller's open tasks, soonest due first). Visibility follows the case's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::tasks::{NewTask, Task, TaskPatch};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Authed, Json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(case_tasks, create_task))
        .routes(routes!(my_tasks))
        .routes(routes!(get_task, update_task))
}

/// A case's tasks, open ones first by due time.
#[utoipa::path(get, path = "/cases/{id}/tasks", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Vec<Task>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn case_tasks(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Task>>> {
    Ok(axum::Json(s.store.case_tasks(&a.actor, &id).await?))
}

/// Adds a task to a case.
#[utoipa::path(post, path = "/cases/{id}/tasks", tag = "cases", security(("bearer" = [])), request_body = NewTask,
    responses((status = 201, body = Task), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_task(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<NewTask>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_task(&a.actor, &id, body).await?),
    ))
}

/// The caller's open tasks, soonest due first.
#[utoipa::path(get, path = "/tasks", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Vec<Task>), (status = 401, body = ErrorBody)))]
async fn my_tasks(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<Task>>> {
    Ok(axum::Json(s.store.my_tasks(&a.actor).await?))
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
async fn get_task(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(s.store.task(&a.actor, &id).await?))
}

/// Changes a task (title, description, assignee, due time, status `open`/`done`/`cancelled`, priority).
#[utoipa::path(patch, path = "/tasks/{id}", tag = "cases", security(("bearer" = [])), request_body = TaskPatch,
    responses((status = 200, body = Task), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_task(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<TaskPatch>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(s.store.update_task(&a.actor, &id, body).await?))
}
