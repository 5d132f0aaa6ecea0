//! Batch operations (issue #23): one action on many cases or conversations selected from
//! a list — assign, status, priority, tags, and for conversations a message (text or a
//! canned response filled per conversation). Each item goes through the same audited
//! store call as its single-item route, with the caller's rights (an agent may be
//! refused some items); the answer reports every item, failures with their error.

use axum::extract::State;
use parley_cases::cases::CasePatch;
use parley_cases::conversations::{ConversationStatus, NewReply};
use parley_cases::sla::{CaseStatus, Priority};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::extract::{Authed, Json};

/// The most items in one batch.
pub(crate) const MAX_ITEMS: usize = 1000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(batch_cases))
        .routes(routes!(batch_conversations))
}

/// What to do to every item.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum BatchAction {
    /// Assign to a user (`null`: unassign).
    Assign {
        /// User id.
        user_id: Option<String>,
    },
    /// Change the status (the item's own status names).
    Status {
        /// Status.
        status: String,
    },
    /// Change the priority.
    Priority {
        /// `P0`..`P3`.
        priority: Priority,
    },
    /// Add and remove tags.
    Tag {
        /// Tags to add.
        #[serde(default)]
        add: Vec<String>,
        /// Tags to remove.
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Send a message to the customer (conversations only): `text`, or the canned
    /// response `shortcut` filled for each conversation.
    Message {
        /// Text.
        #[serde(default)]
        text: Option<String>,
        /// Canned response shortcut.
        #[serde(default)]
        shortcut: Option<String>,
    },
}

/// A batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// Item ids (1 to 1,000).
    ids: Vec<String>,
    /// The action.
    action: BatchAction,
}

/// One item's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchItem {
    /// Item id.
    id: String,
    /// Whether the action was applied.
    ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

/// The outcome of a batch, item by item, in the order given.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchResult {
    /// Items applied.
    succeeded: usize,
    /// Items refused.
    failed: usize,
    /// Every item.
    results: Vec<BatchItem>,
}

fn check(req: &BatchRequest) -> ApiResult<()> {
    if req.ids.is_empty() || req.ids.len() > MAX_ITEMS {
        return Err(ApiError::from(parley_cases::Error::Invalid {
            field: "ids".into(),
            reason: format!("1 to {MAX_ITEMS} ids").into(),
        }));
    }
    Ok(())
}

fn result(items: Vec<(String, ApiResult<()>)>) -> BatchResult {
    let results: Vec<BatchItem> = items
        .into_iter()
        .map(|(id, r)| match r {
            Ok(()) => BatchItem {
                id,
                ok: true,
                error: None,
            },
            Err(e) => BatchItem {
                id,
                ok: false,
                error: Some(e.detail()),
            },
        })
        .collect();
    let succeeded = results.iter().filter(|r| r.ok).count();
    BatchResult {
        failed: results.len() - succeeded,
        succeeded,
        results,
    }
}

/// Applies one action to many cases, each audited; partial failures are reported per
/// item (200 whatever the items' outcomes).
#[utoipa::path(post, path = "/cases/batch", tag = "cases", security(("bearer" = [])), request_body = BatchRequest,
    responses((status = 200, body = BatchResult), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn batch_cases(
    State(s): State<AppState>,
    a: Authed,
    Json(req): Json<BatchRequest>,
) -> ApiResult<axum::Json<BatchResult>> {
    check(&req)?;
    if matches!(req.action, BatchAction::Message { .. }) {
        return Err(ApiError::from(parley_cases::Error::Invalid {
            field: "action.type".into(),
            reason: "cases take assign, status, priority or tag".into(),
        }));
    }
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let r: ApiResult<()> = async {
            match &req.action {
                BatchAction::Assign { user_id } => {
                    let patch = CasePatch {
                        assignee_id: Some(user_id.clone()),
                        ..CasePatch::default()
                    };
                    s.store.update_case(&a.actor, &id, patch).await?;
                }
                BatchAction::Priority { priority } => {
                    let patch = CasePatch {
                        priority: Some(*priority),
                        ..CasePatch::default()
                    };
                    s.store.update_case(&a.actor, &id, patch).await?;
                }
                BatchAction::Status { status } => {
                    let to = CaseStatus::parse(status)?;
                    s.store.transition_case(&a.actor, &id, to, None).await?;
                }
                BatchAction::Tag { add, remove } => {
                    s.store.tag_case(&a.actor, &id, add, remove).await?;
                }
                BatchAction::Message { .. } => {}
            }
            Ok(())
        }
        .await;
        out.push((id, r));
    }
    Ok(axum::Json(result(out)))
}

/// Applies one action to many conversations, each audited; partial failures are
/// reported per item (200 whatever the items' outcomes).
#[utoipa::path(post, path = "/conversations/batch", tag = "conversations", security(("bearer" = [])), request_body = BatchRequest,
    responses((status = 200, body = BatchResult), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn batch_conversations(
    State(s): State<AppState>,
    a: Authed,
    Json(req): Json<BatchRequest>,
) -> ApiResult<axum::Json<BatchResult>> {
    check(&req)?;
    if let BatchAction::Message { text, shortcut } = &req.action
        && text.is_some() == shortcut.is_some()
    {
        return Err(ApiError::from(parley_cases::Error::Invalid {
            field: "action.text".into(),
            reason: "give a text or a canned response shortcut".into(),
        }));
    }
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let r: ApiResult<()> = async {
            match &req.action {
                BatchAction::Assign { user_id } => {
                    s.store
                        .assign_conversation(&a.actor, &id, user_id.as_deref())
                        .await?;
                }
                BatchAction::Priority { priority } => {
                    s.store
                        .set_conversation_priority(&a.actor, &id, *priority)
                        .await?;
                }
                BatchAction::Status { status } => {
                    let to = ConversationStatus::parse(status)?;
                    s.store
                        .set_conversation_status(&a.actor, &id, to, None)
                        .await?;
                }
                BatchAction::Tag { add, remove } => {
                    s.store.tag_conversation(&a.actor, &id, add, remove).await?;
                }
                BatchAction::Message { text, shortcut } => {
                    let text = match (text, shortcut) {
                        (Some(t), _) => t.clone(),
                        (None, Some(sc)) => s.store.render_canned(&a.actor, &id, sc).await?,
                        (None, None) => String::new(),
                    };
                    s.store
                        .reply(
                            &a.actor,
                            &id,
                            NewReply {
                                text,
                                ..NewReply::default()
                            },
                        )
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        out.push((id, r));
    }
    Ok(axum::Json(result(out)))
}
