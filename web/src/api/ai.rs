//! The local AI's routes (issue #20): triage of any text (`POST /ai/triage`, the same
//! code path as the ingestion hook), a tenant's own intents (`/ai/intents`), agents'
//! corrections of a conversation's triage (`/conversations/{id}/triage`) and the list
//! of corrections. Learning applies at once: the classifier learns the intent or the
//! correction right after the store has kept it (no restart, no retraining).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::conversations::Conversation;
use parley_cases::triage::{
    AiIntent, MessageTriage, NewAiIntent, TriageCorrection, TriageCorrectionInput, TriageResult,
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Authed, Json, Supervisor};

/// Text triaged at most (longer text is cut there; 1 MB bodies are accepted).
const MAX_TRIAGE_BYTES: usize = 1 << 20;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(triage_text))
        .routes(routes!(list_intents, save_intent))
        .routes(routes!(conversation_triage, correct_triage))
        .routes(routes!(list_corrections))
}

/// Body of `POST /ai/triage`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriageRequest {
    /// The text (up to 1 MiB is read; the classifier reads its beginning).
    text: String,
    /// The channel it came on (`web_chat`, `email`, `voice`, …), informational.
    #[serde(default)]
    #[allow(dead_code)]
    channel: Option<String>,
}

/// Triages a text as the ingestion path does for the caller's tenant: intent (default
/// taxonomy and the tenant's own), priority P0–P3, noise, language, sentiment,
/// entities, confidence. Without an embedding model: rules only (`source: rules`).
#[utoipa::path(post, path = "/ai/triage", tag = "ai", security(("bearer" = [])),
    request_body = TriageRequest,
    responses((status = 200, body = TriageResult), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
async fn triage_text(
    State(s): State<AppState>,
    a: Authed,
    Json(body): Json<TriageRequest>,
) -> ApiResult<axum::Json<TriageResult>> {
    if body.text.len() > MAX_TRIAGE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("text is longer than {MAX_TRIAGE_BYTES} bytes"),
        )
        .with_field("text"));
    }
    let t = s.triager.clone();
    let tenant = a.actor.tenant_id.clone();
    let r = tokio::task::spawn_blocking(move || t.triage(Some(&tenant), &body.text))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(r))
}

/// The tenant's own intents.
#[utoipa::path(get, path = "/ai/intents", tag = "ai", security(("bearer" = [])),
    responses((status = 200, body = Vec<AiIntent>), (status = 401, body = ErrorBody)))]
async fn list_intents(
    State(s): State<AppState>,
    a: Authed,
) -> ApiResult<axum::Json<Vec<AiIntent>>> {
    Ok(axum::Json(s.store.ai_intents(&a.actor).await?))
}

/// Defines (or redefines, by name) an intent of the tenant's own from a description
/// and examples; triage recognises it (and paraphrases of the examples) from the next
/// message on. Supervisors and admins.
#[utoipa::path(post, path = "/ai/intents", tag = "ai", security(("bearer" = [])),
    request_body = NewAiIntent,
    responses((status = 201, body = AiIntent), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn save_intent(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Json(body): Json<NewAiIntent>,
) -> ApiResult<(StatusCode, axum::Json<AiIntent>)> {
    let saved = s.store.save_ai_intent(&a.actor, body).await?;
    let def = parley_ai::triage::IntentDef {
        name: saved.name.clone(),
        description: saved.description.clone(),
        examples: saved.examples.clone(),
        priority: saved.priority,
    };
    let t = s.triager.clone();
    let tenant = a.actor.tenant_id.clone();
    learn(move || t.add_intent(&tenant, &def)).await;
    Ok((StatusCode::CREATED, axum::Json(saved)))
}

/// Runs a learning step off the async threads; a failure is logged (the store kept
/// what was taught: the next start-up learns it).
async fn learn(f: impl FnOnce() -> parley_ai::Result<()> + Send + 'static) {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "triage did not learn"),
        Err(e) => tracing::warn!(error = %e, "triage learning task failed"),
    }
}

/// The triage results of a conversation's customer messages, in order.
#[utoipa::path(get, path = "/conversations/{id}/triage", tag = "ai", security(("bearer" = [])),
    responses((status = 200, body = Vec<MessageTriage>), (status = 404, body = ErrorBody)))]
async fn conversation_triage(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<MessageTriage>>> {
    Ok(axum::Json(
        s.store.conversation_triage(&a.actor, &id).await?,
    ))
}

/// What a correction returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CorrectionResult {
    /// The stored correction (who, when, before and after).
    correction: TriageCorrection,
    /// The conversation with the corrected intent and priority.
    conversation: Conversation,
}

/// Corrects the intent and priority of a conversation (its latest customer message,
/// or `message_id`): kept with who and when, set on the conversation, and learned by
/// the tenant's triage at once. Anyone who sees the conversation.
#[utoipa::path(post, path = "/conversations/{id}/triage", tag = "ai", security(("bearer" = [])),
    request_body = TriageCorrectionInput,
    responses((status = 200, body = CorrectionResult), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn correct_triage(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<TriageCorrectionInput>,
) -> ApiResult<axum::Json<CorrectionResult>> {
    let (correction, conversation) = s.store.correct_triage(&a.actor, &id, body).await?;
    let c = parley_ai::triage::Correction {
        text: correction.text.clone(),
        intent: correction.intent.clone(),
        priority: correction.priority,
    };
    let t = s.triager.clone();
    let tenant = a.actor.tenant_id.clone();
    learn(move || t.add_correction(&tenant, &c)).await;
    Ok(axum::Json(CorrectionResult {
        correction,
        conversation,
    }))
}

/// The tenant's triage corrections, newest first (the last 500). Supervisors and
/// admins.
#[utoipa::path(get, path = "/ai/corrections", tag = "ai", security(("bearer" = [])),
    responses((status = 200, body = Vec<TriageCorrection>), (status = 403, body = ErrorBody)))]
async fn list_corrections(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<TriageCorrection>>> {
    Ok(axum::Json(s.store.triage_corrections(&a.actor, 500).await?))
}
