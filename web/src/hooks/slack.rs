//! Provider webhooks under `/hooks/v1` (not `/api/v1`: no bearer token; each request
//! is authenticated by the provider's signature). Today: the Slack Events API for
//! incident swarms (issue #21), `POST /hooks/v1/slack/{tenant}`.
//!
//! A request is verified against the tenant's signing secret (v0 HMAC-SHA256 over
//! `v0:timestamp:body`, timestamps more than 5 minutes off refused: 401), a
//! `url_verification` is answered with its challenge, and an event is acknowledged at
//! once (200) and processed in a task: a retry (same `event_id`, `X-Slack-Retry-Num`)
//! is acknowledged and dropped; a person's message in an incident's swarm channel (or
//! a thread of it) becomes an internal note on the incident, its author mapped to a
//! Parley user by email (`users.info`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(slack_events))
}

/// Seals a provider secret for storage with the data directory's key ring.
pub(crate) fn seal_secret(s: &AppState, secret: &str) -> Result<String, ApiError> {
    parley_slack::seal_stored(s.config.recording_keys.as_deref(), secret).map_err(|e| {
        tracing::error!(error = %e, "sealing a secret failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

fn refused() -> Response {
    ApiError::unauthenticated().into_response()
}

/// Slack Events API requests for the tenant's swarm channels (signed by Slack; no
/// bearer token).
#[utoipa::path(post, path = "/hooks/v1/slack/{tenant}", tag = "incidents",
    request_body(content = String, content_type = "application/json", description = "A Slack Events API request"),
    responses((status = 200, description = "Acknowledged (or the url_verification challenge)"), (status = 401, body = ErrorBody)))]
async fn slack_events(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Some(tenant_id)) = s.store.tenant_id_by_name(&tenant).await else {
        return refused();
    };
    let Ok(Some(integration)) = s.store.slack_integration(&tenant_id).await else {
        return refused();
    };
    let keys = s.config.recording_keys.clone();
    let Ok(secret) = parley_slack::open_stored(keys.as_deref(), &integration.signing_secret_sealed)
    else {
        tracing::error!(tenant = %tenant_id, "the Slack signing secret cannot be opened");
        return refused();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let now_secs = s.store.now().millis() / 1000;
    if let Err(e) = parley_slack::verify(
        &secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now_secs,
    ) {
        tracing::info!(tenant = %tenant_id, error = %e, "Slack event refused");
        return refused();
    }
    let req = match parley_slack::parse_event(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request(format!("unreadable event: {e}")).into_response();
        }
    };
    match req {
        parley_slack::EventRequest::UrlVerification { challenge } => {
            axum::Json(serde_json::json!({ "challenge": challenge })).into_response()
        }
        parley_slack::EventRequest::Callback { event_id, event } => {
            let store = s.store.clone();
            // Acknowledge at once; the work happens after the answer.
            tokio::spawn(async move {
                if let Err(e) = take_event(
                    &store,
                    &tenant_id,
                    &integration,
                    keys.as_deref(),
                    &event_id,
                    event,
                )
                .await
                {
                    tracing::warn!(tenant = %tenant_id, error = %e, "Slack event not taken");
                }
            });
            StatusCode::OK.into_response()
        }
        parley_slack::EventRequest::Other => StatusCode::OK.into_response(),
    }
}

async fn take_event(
    store: &parley_cases::Store,
    tenant_id: &str,
    integration: &parley_cases::incidents::slack::SlackIntegration,
    keys: Option<&parley_vault::KeyRing>,
    event_id: &str,
    event: parley_slack::Event,
) -> Result<(), String> {
    let s = |e: parley_cases::Error| e.to_string();
    let parley_slack::Event::Message {
        channel,
        user,
        text,
        ts,
        ..
    } = event
    else {
        return Ok(());
    };
    // Retries carry the same event id: the first one wins.
    if event_id.is_empty()
        || !store
            .slack_event_first_seen(tenant_id, event_id)
            .await
            .map_err(s)?
    {
        return Ok(());
    }
    let Some(incident_id) = store
        .incident_by_slack_channel(tenant_id, &channel)
        .await
        .map_err(s)?
    else {
        return Ok(());
    };
    let token = parley_slack::open_stored(keys, &integration.bot_token_sealed)
        .map_err(|e| e.to_string())?;
    let client =
        parley_slack::Client::new(&integration.api_base_url, &token).map_err(|e| e.to_string())?;
    let author = match client.user_email(&user).await {
        Ok(Some(email)) => store.user_id_by_email(tenant_id, &email).await.map_err(s)?,
        Ok(None) => None,
        Err(e) => {
            tracing::info!(error = %e, "Slack user not looked up; the note keeps their Slack id");
            None
        }
    };
    let text = match &author {
        Some(_) => text,
        None => format!("[Slack {user}] {text}"),
    };
    store
        .add_external_incident_note(
            tenant_id,
            &incident_id,
            author.as_deref(),
            &text,
            "slack",
            &format!("slack:{channel}:{ts}"),
        )
        .await
        .map_err(s)?;
    Ok(())
}
