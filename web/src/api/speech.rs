//! Speech: the tenant's transcription settings (the "AI toggle", consent policy, alert
//! phrases) and stored call transcripts. Live segments and alerts arrive over the events
//! WebSocket (`transcript.segment`, `transcript.alert`).

use axum::extract::{Path, State};
use parley_cases::transcripts::{SpeechSettings, TranscriptSegment};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(transcript))
}

/// The tenant's speech settings.
#[utoipa::path(get, path = "/speech/settings", tag = "speech", security(("bearer" = [])),
    responses((status = 200, body = SpeechSettings)))]
async fn get_settings(
    State(s): State<AppState>,
    a: Authed,
) -> ApiResult<axum::Json<SpeechSettings>> {
    Ok(axum::Json(s.store.speech_settings(&a.actor).await?))
}

/// Replaces the tenant's speech settings (admin).
#[utoipa::path(put, path = "/speech/settings", tag = "speech", security(("bearer" = [])), request_body = SpeechSettings,
    responses((status = 200, body = SpeechSettings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_settings(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<SpeechSettings>,
) -> ApiResult<axum::Json<SpeechSettings>> {
    Ok(axum::Json(
        s.store.set_speech_settings(&a.actor, body).await?,
    ))
}

/// The stored transcript of a call interaction, in order (empty when none).
#[utoipa::path(get, path = "/interactions/{id}/transcript", tag = "speech", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interaction id")),
    responses((status = 200, body = Vec<TranscriptSegment>)))]
async fn transcript(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<TranscriptSegment>>> {
    Ok(axum::Json(s.store.transcript(&a.actor, &id).await?))
}
