//! Conversations for agents (issue #17): the unified inbox's API over the conversation
//! engine (`parley_cases::conversations`). Every text channel's conversations are here,
//! with their messages; agents reply (delivered by the delivery worker) or write
//! private notes, change the status and assign.
//!
//! Who sees what: supervisors and admins see every conversation of the tenant; agents
//! see those assigned to them and the unassigned ones whose team is one of theirs (or
//! that have no team) — anything else is 404. Agents assign only to themselves (or give
//! back their own); supervisors assign anyone.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Page;
use parley_cases::conversations::email::EmailMessage;
use parley_cases::conversations::{
    AssigneeFilter, ChannelKind, Conversation, ConversationFilter, ConversationStatus,
    MAX_TEXT_BYTES, Message, NewReply,
};
use parley_cases::sla::Priority;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Authed, Json, Query};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(post_message))
        .routes(routes!(set_status))
        .routes(routes!(assign))
        .routes(routes!(download_attachment))
        .routes(routes!(email_thread))
}

/// The mail thread of an email conversation, oldest first: every message's headers
/// (Message-ID, From, To, Cc, Bcc of replies, subject), the full text with its quoted
/// history (the timeline shows the folded text), the sanitised HTML (remote images
/// removed), automatic-mail and malformed flags, and the raw .eml's hash (the message's
/// `original.eml` attachment). Empty for other channels. Not visible to the caller: 404.
#[utoipa::path(get, path = "/conversations/{id}/email", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, body = Vec<EmailMessage>), (status = 404, body = ErrorBody)))]
async fn email_thread(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<EmailMessage>>> {
    Ok(axum::Json(s.store.email_messages(&a.actor, &id).await?))
}

/// Filters of the conversation list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConversationQuery {
    /// `open`, `pending`, `snoozed`, `resolved` or `closed`.
    #[param(value_type = Option<String>)]
    status: Option<ConversationStatus>,
    /// A channel kind: `web_chat`, `email`, `sms`, `whatsapp`, `messenger`,
    /// `instagram`, `x`.
    #[param(value_type = Option<String>)]
    channel: Option<ChannelKind>,
    /// `me`, `unassigned` or a user id.
    assignee: Option<String>,
    /// A team id.
    team: Option<String>,
    /// `P0`…`P3`.
    #[param(value_type = Option<String>)]
    priority: Option<Priority>,
    /// A customer id.
    customer_id: Option<String>,
    /// Page size, 1..=200 (default 50).
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// Conversations the caller may see, most recent activity first, a page at a time
/// (`next_cursor`).
#[utoipa::path(get, path = "/conversations", tag = "conversations", security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, body = Page<Conversation>), (status = 422, body = ErrorBody)))]
async fn list_conversations(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<ConversationQuery>,
) -> ApiResult<axum::Json<Page<Conversation>>> {
    let f = ConversationFilter {
        status: q.status,
        channel: q.channel,
        assignee: q.assignee.as_deref().map(AssigneeFilter::parse),
        team_id: q.team,
        priority: q.priority,
        customer_id: q.customer_id,
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(axum::Json(s.store.list_conversations(&a.actor, &f).await?))
}

/// A conversation with its messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    conversation: Conversation,
    /// Its messages after `after` (all by default), oldest first, at most 500; notes
    /// included.
    messages: Vec<Message>,
}

/// Which messages come with the conversation.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AfterQuery {
    /// Only messages with a greater `seq` (default 0: all).
    after: Option<i64>,
}

/// One conversation with its messages (oldest first; `?after=SEQ` for the newer ones
/// only). Not visible to the caller: 404.
#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(AfterQuery),
    responses((status = 200, body = ConversationDetail), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Query(q): Query<AfterQuery>,
) -> ApiResult<axum::Json<ConversationDetail>> {
    let conversation = s.store.conversation(&a.actor, &id).await?;
    let messages = s
        .store
        .conversation_messages(&a.actor, &id, q.after.unwrap_or(0), Some(500))
        .await?;
    Ok(axum::Json(ConversationDetail {
        conversation,
        messages,
    }))
}

/// Replies to the customer (`{"text"}`: stored `queued`, then sent by the delivery
/// worker; its status moves to `sent`, `delivered`, `read` or `failed` with a reason)
/// or, with `"private": true`, writes an internal note that is never sent. The same
/// `client_id` again returns the stored message. Text over the limit: 413.
#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    request_body = NewReply,
    responses((status = 201, body = Message), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn post_message(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<NewReply>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    if body.text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("text is longer than the limit of {MAX_TEXT_BYTES} bytes"),
        )
        .with_field("text"));
    }
    let m = s.store.reply(&a.actor, &id, body).await?;
    Ok((StatusCode::CREATED, axum::Json(m)))
}

/// A new status.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    /// `open`, `pending`, `snoozed`, `resolved` or `closed`.
    status: ConversationStatus,
    /// Until when (RFC 3339), for `snoozed`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    snoozed_until: Option<parley_cases::Timestamp>,
}

/// Moves the conversation to a status (`snoozed` needs `snoozed_until` in the future).
/// A closed conversation is only reopened by the customer writing again: 409.
/// Resolving or closing completes its routed work item when it is the caller's.
#[utoipa::path(post, path = "/conversations/{id}/status", tag = "conversations", security(("bearer" = [])),
    request_body = StatusBody,
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_status(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> ApiResult<axum::Json<Conversation>> {
    let conv = s
        .store
        .set_conversation_status(&a.actor, &id, body.status, body.snoozed_until)
        .await?;
    // Resolving or closing finishes the routed work item, freeing the agent's chat
    // capacity in the router (best effort: the router refuses when the item is not
    // assigned to the caller; it stays for them to complete).
    if matches!(
        conv.status,
        ConversationStatus::Resolved | ConversationStatus::Closed
    ) && let (Some(acd), Some(item)) = (s.acd.as_ref(), conv.work_item_id.clone())
        && let Ok(w) = s.store.work_item(&a.actor, &item).await
        && w.state == parley_cases::work_items::WorkItemState::Assigned
        && let Err(e) = acd
            .work_item(
                a.actor.clone(),
                item,
                parley_cases::work_items::WorkAction::Complete,
            )
            .await
    {
        tracing::info!(conversation = %conv.id, error = %e, "work item left for its agent to complete");
    }
    Ok(axum::Json(conv))
}

/// A new assignee.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    /// The user (`null`: unassigned).
    user_id: Option<String>,
}

/// Assigns the conversation (`{"user_id": null}` unassigns). Agents take it for
/// themselves or give back their own (else 403); supervisors assign any active user.
#[utoipa::path(post, path = "/conversations/{id}/assign", tag = "conversations", security(("bearer" = [])),
    request_body = AssignBody,
    responses((status = 200, body = Conversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn assign(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> ApiResult<axum::Json<Conversation>> {
    Ok(axum::Json(
        s.store
            .assign_conversation(&a.actor, &id, body.user_id.as_deref())
            .await?,
    ))
}

/// Downloads an attachment of a conversation the caller may see (as a file: never
/// rendered by the browser as a page). Anything else: 404.
#[utoipa::path(get, path = "/conversations/{id}/attachments/{attachment_id}", tag = "conversations",
    security(("bearer" = [])),
    responses((status = 200, description = "The file, with its stored content type", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody)))]
async fn download_attachment(
    State(s): State<AppState>,
    a: Authed,
    Path((id, attachment_id)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse as _;
    let (meta, path) = s
        .store
        .attachment_for_download(&a.actor, &id, &attachment_id)
        .await?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(parley_cases::Error::NotFound {
                entity: "attachment",
            }
            .into());
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "attachment not readable");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            ));
        }
    };
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Only a plain name goes in the header; anything else downloads as "attachment".
    let name: String = meta
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    let name = if name.is_empty() {
        "attachment".to_owned()
    } else {
        name
    };
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
