//! Outbound webhook subscriptions (issue #23, admins): which event types a tenant's
//! URL receives, signed with the subscription's secret (shown once, at creation); each
//! subscription's delivery log; replaying a delivery. Deliveries are sent by the
//! binary's worker (`src/webhooks.rs`, headers documented there and in docs/webhooks.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::webhooks::{NewWebhookSubscription, WebhookDelivery, WebhookSubscription};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Json, Query};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(webhook_deliveries))
        .routes(routes!(replay_delivery))
}

/// The tenant's webhook subscriptions (admin).
#[utoipa::path(get, path = "/webhooks", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = Vec<WebhookSubscription>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_webhooks(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<Vec<WebhookSubscription>>> {
    Ok(axum::Json(s.store.list_webhooks(&a.actor).await?))
}

/// Adds a subscription (admin); the answer holds its signing `secret`, never shown again.
#[utoipa::path(post, path = "/webhooks", tag = "automation", security(("bearer" = [])), request_body = NewWebhookSubscription,
    responses((status = 201, body = WebhookSubscription), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_webhook(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewWebhookSubscription>,
) -> ApiResult<(StatusCode, axum::Json<WebhookSubscription>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_webhook(&a.actor, body).await?),
    ))
}

/// One subscription (admin).
#[utoipa::path(get, path = "/webhooks/{id}", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = WebhookSubscription), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WebhookSubscription>> {
    Ok(axum::Json(s.store.webhook(&a.actor, &id).await?))
}

/// Replaces a subscription's URL, event types and state (admin; the secret stays).
#[utoipa::path(put, path = "/webhooks/{id}", tag = "automation", security(("bearer" = [])), request_body = NewWebhookSubscription,
    responses((status = 200, body = WebhookSubscription), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_webhook(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<NewWebhookSubscription>,
) -> ApiResult<axum::Json<WebhookSubscription>> {
    Ok(axum::Json(
        s.store.update_webhook(&a.actor, &id, body).await?,
    ))
}

/// Deletes a subscription (admin); its pending deliveries are dropped, its log stays.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "automation", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_webhook(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many log entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// 1..=500 (default 100).
    limit: Option<u32>,
}

/// A subscription's deliveries, newest first (admin).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "automation", security(("bearer" = [])), params(DeliveryParams),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn webhook_deliveries(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<axum::Json<Vec<WebhookDelivery>>> {
    Ok(axum::Json(
        s.store
            .webhook_deliveries(&a.actor, &id, q.limit.unwrap_or(100))
            .await?,
    ))
}

/// Sends a delivery again, whatever its state (admin; same delivery id).
#[utoipa::path(post, path = "/webhooks/deliveries/{id}/replay", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = WebhookDelivery), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn replay_delivery(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WebhookDelivery>> {
    Ok(axum::Json(
        s.store.replay_webhook_delivery(&a.actor, &id).await?,
    ))
}
