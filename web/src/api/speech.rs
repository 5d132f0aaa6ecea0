//! Speech: the tenant's transcription settings (the "AI toggle", consent policy, alert
//! phrases), the per-queue toggle (`/queues/{id}/speech`) and stored call transcripts.
//! Live segments and alerts arrive over the events WebSocket (`transcript.segment`,
//! `transcript.alert`).

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
        .routes(routes!(get_queue_speech, put_queue_speech))
}

/// A queue's AI toggle.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueSpeech {
    /// Transcribe the calls this queue takes (default on: the queue follows the
    /// tenant's toggle, which still wins when it is off). Off: a call's transcription
    /// stops when it enters the queue and nothing of it is stored.
    transcription: bool,
}

/// A queue's transcription setting (the per-queue AI toggle).
#[utoipa::path(get, path = "/queues/{id}/speech", tag = "speech", security(("bearer" = [])),
    params(("id" = String, Path, description = "Queue id")),
    responses((status = 200, body = QueueSpeech), (status = 404, body = ErrorBody)))]
async fn get_queue_speech(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<QueueSpeech>> {
    s.store.queue(&a.actor, &id).await?;
    Ok(axum::Json(QueueSpeech {
        transcription: s.store.queue_transcription(&a.actor, &id).await?,
    }))
}

/// Switches transcription on or off for a queue's calls (admin; audited as
/// `queue_speech.update`).
#[utoipa::path(put, path = "/queues/{id}/speech", tag = "speech", security(("bearer" = [])),
    params(("id" = String, Path, description = "Queue id")), request_body = QueueSpeech,
    responses((status = 200, body = QueueSpeech), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_queue_speech(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<QueueSpeech>,
) -> ApiResult<axum::Json<QueueSpeech>> {
    Ok(axum::Json(QueueSpeech {
        transcription: s
            .store
            .set_queue_transcription(&a.actor, &id, body.transcription)
            .await?,
    }))
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
    responses((status = 200, body = Vec<TranscriptSegment>), (status = 404, body = ErrorBody)))]
async fn transcript(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<TranscriptSegment>>> {
    Ok(axum::Json(s.store.transcript(&a.actor, &id).await?))
}
