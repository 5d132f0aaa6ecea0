//! The public web-chat API, `/chat/v1` (issue #17), and the widget it serves.
//!
//! Visitors are not users: they hold a signed visitor token ([`token`]) naming one
//! conversation of one tenant, handed out when the conversation is opened. The routes:
//!
//! - `POST /chat/v1/{tenant}/conversations` `{"name"?, "email"?}` → 201
//!   `{"conversation_id", "visitor_token"}`
//! - `POST /chat/v1/conversations/{id}/messages` (Bearer visitor token)
//!   `{"text", "client_id"?}` → 201 `{"id", "seq"}`; the same `client_id` again answers
//!   the message already stored.
//! - `GET /chat/v1/conversations/{id}/messages?after=SEQ&wait=SECONDS` → `{"messages":
//!   [{"id", "seq", "author", "text", "created_at"}], "status"}`; with `wait` (at most
//!   30 s) the request is held until a message after `SEQ` exists.
//! - `GET /chat/v1/conversations/{id}/ws?token=…&after=SEQ` → a WebSocket carrying the
//!   same message objects, one per text frame, in `seq` order; frames with a `type`
//!   (`status`) are not messages.
//! - `GET /chat/v1/{tenant}/config` (is an agent available), `GET
//!   /chat/v1/conversations/{id}` (its status), `POST …/{id}/csat` (1–5 + comment),
//!   `POST …/{id}/read {"seq"}` (read receipt: agents' replies up to `seq` are `read`).
//!
//! Fan-out: every waiter (a long-poll or a WebSocket) subscribes to the backend's
//! changes ([`ChatBackend::changes`], fed by the store's committed events) *before* it
//! reads, and reads the conversation's messages after the last `seq` it delivered
//! whenever a change names its conversation (or the stream lagged).
//! Events are only a wake-up: what is sent always comes from the store in `seq` order,
//! so a reconnect with `after` = the last seen loses and repeats nothing.
//!
//! Storage is the conversation engine's (`parley_cases`), reached through
//! [`ChatBackend`], so this module holds no conversation state of its own. CORS is open
//! (any origin, no credentials: the token is a header, never a cookie) on these routes
//! only; never on `/api/v1`.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parley_cases::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tower_http::cors::{Any, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Query, bearer};

pub mod engine;
pub mod token;

pub use engine::StoreChat;
pub use token::ChatSecret;
use token::Visitor;

/// Longest message text, in characters (a longer one is answered 413 naming it).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest `client_id`.
const MAX_CLIENT_ID: usize = 100;
/// Longest long-poll hold, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Most messages in one answer (the client asks again after the last `seq`).
const PAGE: u32 = 200;
/// New conversations one source address may open per minute.
pub const OPENS_PER_MINUTE: u32 = 60;
/// How long a visitor token is good for.
const TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;

/// A message as visitors see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// Id.
    pub id: String,
    /// Position in the conversation, from 1, without gaps.
    pub seq: i64,
    /// `customer`, `agent`, `bot` or `system`.
    pub author: String,
    /// Plain text (shown as text, never as HTML).
    pub text: String,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// What a visitor may know of their conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatConversation {
    /// Id.
    pub id: String,
    /// `open`, `pending`, `snoozed`, `resolved` or `closed`.
    pub status: String,
    /// The CSAT score given, if any.
    pub csat: Option<u8>,
}

/// A boxed future, as the traits of this crate return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The conversation engine as the web chat needs it. Implemented over
/// `parley_cases::Store` (the engine's storage and its one ingestion path); tenant
/// ids are checked by the store, a conversation of another tenant is `NotFound`.
pub trait ChatBackend: Send + Sync + 'static {
    /// Opens a web-chat conversation for a new visitor (`name`/`email` as they claimed
    /// them, unverified). Returns its id.
    fn open<'a>(
        &'a self,
        tenant_id: &'a str,
        name: Option<String>,
        email: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<String>>;
    /// Ingests the visitor's message (idempotent on `client_id`).
    fn send<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        text: String,
        client_id: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<ChatMessage>>;
    /// Messages visible to the visitor (no internal notes) after `after`, in `seq`
    /// order, at most `limit`.
    fn after<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'a, parley_cases::Result<Vec<ChatMessage>>>;
    /// The conversation's state.
    fn conversation<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, parley_cases::Result<ChatConversation>>;
    /// Stores the visitor's satisfaction score (1–5) and comment.
    fn rate<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        score: u8,
        comment: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<()>>;
    /// The visitor has seen every message up to `seq`: agents' and bots' delivered
    /// replies up to it become `read` (a read receipt; never backwards).
    fn read_up_to<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        seq: i64,
    ) -> BoxFuture<'a, parley_cases::Result<()>>;
    /// Ids of conversations whose messages or status changed, sent after the change
    /// is committed (a lagging receiver re-reads everything it follows).
    fn changes(&self) -> broadcast::Receiver<String>;
    /// The visitor is typing: agents who see the conversation are told (never stored).
    fn typing<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, parley_cases::Result<()>>;
    /// Records the visitor's request for the transcript by email (to `email`, or the
    /// address they gave in the pre-chat form). Returns the address.
    fn request_transcript<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        email: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<String>>;
    /// Ids of conversations where an agent is typing a reply (live only; a lagging
    /// receiver just misses hints).
    fn agent_typing(&self) -> broadcast::Receiver<String>;
}

/// The web chat's own state in [`AppState`].
#[derive(Clone)]
pub(crate) struct ChatState {
    pub(crate) backend: Arc<dyn ChatBackend>,
    pub(crate) secret: ChatSecret,
    /// Messages per conversation (a visitor's flood slows only that visitor).
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// New conversations per source address.
    opens: Arc<DefaultKeyedRateLimiter<std::net::IpAddr>>,
}

impl ChatState {
    pub(crate) fn new(backend: Arc<dyn ChatBackend>, secret: ChatSecret) -> ChatState {
        // 20 messages at once, then one a second: more than anyone types.
        let quota = Quota::per_second(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN));
        // 60 new conversations a minute per address (visitors behind one NAT included).
        let opens = Quota::per_minute(NonZeroU32::new(OPENS_PER_MINUTE).unwrap_or(NonZeroU32::MIN));
        ChatState {
            backend,
            secret,
            limiter: Arc::new(RateLimiter::keyed(quota)),
            opens: Arc::new(RateLimiter::keyed(opens)),
        }
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The public routes, documented, with their CORS layer.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    OpenApiRouter::new()
        .routes(routes!(open_conversation))
        .routes(routes!(tenant_config))
        .routes(routes!(post_message, get_messages))
        .routes(routes!(get_conversation))
        .routes(routes!(rate))
        .routes(routes!(read))
        .routes(routes!(transcript))
        .routes(routes!(ws))
        .route("/chat/widget.js", axum::routing::get(widget_js))
        .layer(cors)
}

fn chat(s: &AppState) -> ApiResult<&ChatState> {
    s.chat.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "chat_unavailable",
            "web chat is not running on this server",
        )
    })
}

/// The visitor a request's token names, for conversation `id`: 401 without a valid
/// token, 404 when it is another conversation's (the same answer as a conversation
/// that does not exist).
fn visitor(c: &ChatState, parts: &Parts, id: &str) -> ApiResult<Visitor> {
    let token = bearer(parts)
        .map(str::to_owned)
        .or_else(|| {
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(visitor_unauthenticated)?;
    let v = token::verify(&c.secret, &token, now_unix()).ok_or_else(visitor_unauthenticated)?;
    if v.conversation_id != id {
        return Err(ApiError::not_found("conversation"));
    }
    Ok(v)
}

fn visitor_unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "a valid visitor token is required",
    )
}

/// The body of `POST /chat/v1/{tenant}/conversations`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenBody {
    /// The visitor's name, as they gave it (unverified).
    name: Option<String>,
    /// The visitor's email, as they gave it (unverified; never merges identities).
    email: Option<String>,
}

/// A new conversation and the token that reaches it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Opened {
    conversation_id: String,
    /// Send as `Authorization: Bearer …` (or `?token=` on the WebSocket).
    visitor_token: String,
}

/// Opens a web-chat conversation for a visitor of the tenant's site.
#[utoipa::path(post, path = "/chat/v1/{tenant}/conversations", tag = "chat",
    params(("tenant" = String, Path, description = "The tenant's short name, e.g. `demo`")),
    request_body = OpenBody,
    responses((status = 201, body = Opened), (status = 404, description = "No such tenant"),
        (status = 422, description = "A field is too long or not an email"),
        (status = 429, description = "Too many new conversations from this address")))]
async fn open_conversation(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let c = chat(&s)?;
    if let Some(axum::Extension(axum::extract::ConnectInfo(addr))) = peer {
        if c.opens.len() > 100_000 {
            c.opens.retain_recent();
        }
        if let Err(not_until) = c.opens.check_key(&addr.ip()) {
            let wait = not_until
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                + 1;
            return Err(ApiError::rate_limited(wait));
        }
    }
    // The body may be empty (no pre-chat form).
    let body: OpenBody = if body.iter().all(u8::is_ascii_whitespace) {
        OpenBody::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let name = clean_optional(body.name, "name", 200)?;
    let email = clean_optional(body.email, "email", 254)?;
    if let Some(e) = &email
        && !looks_like_email(e)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "email: not an email address",
        )
        .with_field("email"));
    }
    let tenant = s
        .store
        .tenant_by_name(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let id = c.backend.open(&tenant.id, name, email).await?;
    let visitor_token = token::sign(
        &c.secret,
        &Visitor {
            tenant_id: tenant.id,
            conversation_id: id.clone(),
            expires_unix: now_unix() + TOKEN_TTL_SECS,
        },
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(Opened {
            conversation_id: id,
            visitor_token,
        }),
    )
        .into_response())
}

fn clean_optional(v: Option<String>, field: &str, max: usize) -> ApiResult<Option<String>> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if v.chars().count() > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}: longer than {max} characters"),
        )
        .with_field(field));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn looks_like_email(e: &str) -> bool {
    e.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !e.chars().any(char::is_whitespace)
    })
}

/// What the widget needs before the visitor writes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantConfig {
    /// An agent is available now; otherwise the widget says so and takes a message.
    agents_available: bool,
}

/// Whether an agent of the tenant is available to chat now.
#[utoipa::path(get, path = "/chat/v1/{tenant}/config", tag = "chat",
    params(("tenant" = String, Path, description = "The tenant's short name")),
    responses((status = 200, body = TenantConfig), (status = 404, description = "No such tenant")))]
async fn tenant_config(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<TenantConfig>> {
    chat(&s)?;
    let tenant = s
        .store
        .tenant_by_name(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let agents_available = s.acd.as_ref().is_some_and(|acd| {
        acd.agent_presence(&tenant.id)
            .iter()
            .any(|(_, p)| *p == parley_cases::routing::Presence::Available)
    });
    Ok(axum::Json(TenantConfig { agents_available }))
}

/// The body of `POST /chat/v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    /// The message, at most 4000 characters.
    text: String,
    /// The browser's id for this message: sending it again answers the same message.
    client_id: Option<String>,
}

/// The stored message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Sent {
    id: String,
    seq: i64,
}

/// The visitor writes.
#[utoipa::path(post, path = "/chat/v1/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = SendBody, security(("visitor" = [])),
    responses((status = 201, body = Sent), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation"),
        (status = 413, description = "Text over the limit (named in the message)"),
        (status = 429, description = "Too many messages from this visitor")))]
async fn post_message(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    if let Err(not_until) = c.limiter.check_key(&v.conversation_id) {
        let wait = not_until
            .wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
            .as_secs()
            + 1;
        return Err(ApiError::rate_limited(wait));
    }
    if c.limiter.len() > 100_000 {
        c.limiter.retain_recent();
    }
    let body: SendBody = crate::extract::parse_json(&body)?;
    let text = body.text.trim().to_owned();
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_long",
            format!("text: longer than the limit of {MAX_TEXT_CHARS} characters"),
        )
        .with_field("text"));
    }
    if text.is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "text: empty")
                .with_field("text"),
        );
    }
    let client_id = clean_optional(body.client_id, "client_id", MAX_CLIENT_ID)?;
    let m = c
        .backend
        .send(&v.tenant_id, &v.conversation_id, text, client_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Sent {
            id: m.id,
            seq: m.seq,
        }),
    )
        .into_response())
}

/// Long-poll parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PollParams {
    /// Only messages with a greater `seq` (default 0: all).
    after: Option<i64>,
    /// Seconds to hold the request while there is nothing new (0–30, default 0; more
    /// is treated as 30).
    wait: Option<u64>,
    /// The visitor token, for clients that cannot send a header.
    #[allow(dead_code)]
    token: Option<String>,
}

/// Messages after a `seq`, and the conversation's status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Messages {
    messages: Vec<ChatMessage>,
    /// The conversation's status (`resolved`: the widget asks for a score).
    status: String,
}

/// The visitor reads (long-poll).
#[utoipa::path(get, path = "/chat/v1/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "Conversation id"), PollParams),
    security(("visitor" = [])),
    responses((status = 200, body = Messages), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation")))]
async fn get_messages(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PollParams>,
    parts: Parts,
) -> ApiResult<axum::Json<Messages>> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    let after = q.after.unwrap_or(0).max(0);
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    // Subscribe before reading: a message stored between the read and the wait still
    // wakes us.
    let mut events = c.backend.changes();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let messages = c
            .backend
            .after(&v.tenant_id, &v.conversation_id, after, PAGE)
            .await?;
        if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
            let status = c
                .backend
                .conversation(&v.tenant_id, &v.conversation_id)
                .await?
                .status;
            return Ok(axum::Json(Messages { messages, status }));
        }
        // Woken by news or by the deadline: either way read again (and, past the
        // deadline, answer what there is).
        wait_for(&mut events, &v, deadline).await;
    }
}

/// Waits until a change concerns the visitor's conversation (true) or `deadline`
/// passes (false). A lagged or closed change stream counts as "something may have
/// changed".
async fn wait_for(
    events: &mut broadcast::Receiver<String>,
    v: &Visitor,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(id) => {
                    if id == v.conversation_id || id == engine::EVERYTHING {
                        return true;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                Err(broadcast::error::RecvError::Closed) => {
                    tokio::time::sleep_until(deadline).await;
                    return false;
                }
            },
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// The visitor's conversation: its status (and CSAT, once given).
#[utoipa::path(get, path = "/chat/v1/conversations/{id}", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    security(("visitor" = [])),
    responses((status = 200, body = ChatConversation), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation")))]
async fn get_conversation(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> ApiResult<axum::Json<ChatConversation>> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    Ok(axum::Json(
        c.backend
            .conversation(&v.tenant_id, &v.conversation_id)
            .await?,
    ))
}

/// A satisfaction score.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateBody {
    /// 1 (bad) to 5 (good).
    score: u8,
    /// Optional words, at most 2000 characters.
    comment: Option<String>,
}

/// The visitor rates the conversation after it was resolved.
#[utoipa::path(post, path = "/chat/v1/conversations/{id}/csat", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = RateBody, security(("visitor" = [])),
    responses((status = 204, description = "Stored"), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation"),
        (status = 409, description = "Not resolved yet"),
        (status = 422, description = "Score outside 1–5")))]
async fn rate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    let body: RateBody = crate::extract::parse_json(&body)?;
    if !(1..=5).contains(&body.score) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "score: between 1 and 5",
        )
        .with_field("score"));
    }
    let comment = clean_optional(body.comment, "comment", 2000)?;
    c.backend
        .rate(&v.tenant_id, &v.conversation_id, body.score, comment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A transcript request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TranscriptBody {
    /// Where to send it; default: the email given in the pre-chat form.
    email: Option<String>,
}

/// Where the transcript will go.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TranscriptQueued {
    /// The address.
    email: String,
}

/// The visitor asks for the conversation's transcript by email: recorded (the email
/// channel sends it). No address given and none in the pre-chat form: 422.
#[utoipa::path(post, path = "/chat/v1/conversations/{id}/transcript", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = TranscriptBody, security(("visitor" = [])),
    responses((status = 202, body = TranscriptQueued), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation"),
        (status = 422, description = "No address, or not an email address")))]
async fn transcript(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<TranscriptQueued>)> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    let body: TranscriptBody = if body.iter().all(u8::is_ascii_whitespace) {
        TranscriptBody::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let email = clean_optional(body.email, "email", 254)?;
    if let Some(e) = &email
        && !looks_like_email(e)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "email: not an email address",
        )
        .with_field("email"));
    }
    let email = c
        .backend
        .request_transcript(&v.tenant_id, &v.conversation_id, email)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(TranscriptQueued { email })))
}

/// A read receipt.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadBody {
    /// The visitor has seen every message up to this `seq`.
    seq: i64,
}

/// The visitor has seen the conversation up to a `seq`: agents see their replies up to
/// it as `read`.
#[utoipa::path(post, path = "/chat/v1/conversations/{id}/read", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = ReadBody, security(("visitor" = [])),
    responses((status = 204, description = "Recorded"), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation")))]
async fn read(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let c = chat(&s)?;
    let v = visitor(c, &parts, &id)?;
    let body: ReadBody = crate::extract::parse_json(&body)?;
    c.backend
        .read_up_to(&v.tenant_id, &v.conversation_id, body.seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// WebSocket parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WsParams {
    /// The visitor token (browsers cannot set headers on a WebSocket).
    #[allow(dead_code)]
    token: Option<String>,
    /// Resume after this `seq` (default 0: the whole history).
    after: Option<i64>,
}

/// The visitor's live stream: a WebSocket of message objects in `seq` order, and
/// `{"type": "status", "status"}` when the conversation's status changes.
#[utoipa::path(get, path = "/chat/v1/conversations/{id}/ws", tag = "chat",
    params(("id" = String, Path, description = "Conversation id"), WsParams),
    responses((status = 101, description = "WebSocket"), (status = 401, description = "Bad visitor token"),
        (status = 404, description = "Not this token's conversation")))]
async fn ws(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WsParams>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let c = chat(&s)?.clone();
    let v = visitor(&c, &parts, &id)?;
    let upgrade =
        upgrade.map_err(|e| ApiError::new(e.status(), "websocket_required", e.body_text()))?;
    let events = c.backend.changes();
    let typing = c.backend.agent_typing();
    let after = q.after.unwrap_or(0).max(0);
    let upgrade = upgrade.max_message_size(4096).max_frame_size(4096);
    Ok(upgrade.on_upgrade(move |socket: WebSocket| async move {
        let (sink, stream) = socket.split();
        stream_conversation(sink, stream, (events, typing), c, v, after).await;
    }))
}

/// At most one typing hint per this interval, each way, per connection.
const TYPING_EVERY: Duration = Duration::from_secs(2);

/// Sends the conversation's messages after `after`, then each new one, until the
/// client leaves or its token expires. Typing hints go both ways and are never
/// stored: the visitor's `{"type": "typing"}` frames reach the agents (at most one
/// every [`TYPING_EVERY`]), and an agent typing a reply comes as
/// `{"type": "typing", "author": "agent"}`. Generic over the socket halves.
pub(crate) async fn stream_conversation<Tx, Rx, E>(
    mut sink: Tx,
    mut stream: Rx,
    (mut events, mut typing): (broadcast::Receiver<String>, broadcast::Receiver<String>),
    c: ChatState,
    v: Visitor,
    mut after: i64,
) where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let mut last_typing_in: Option<tokio::time::Instant> = None;
    let mut last_typing_out: Option<tokio::time::Instant> = None;
    let mut status = String::new();
    let expires = v.expires_unix.saturating_sub(now_unix()).max(0);
    let expiry = tokio::time::sleep(Duration::from_secs(expires.unsigned_abs()));
    tokio::pin!(expiry);
    let mut dirty = true;
    loop {
        if dirty {
            dirty = false;
            // Drain everything after `after` (pages of PAGE).
            loop {
                let Ok(page) = c
                    .backend
                    .after(&v.tenant_id, &v.conversation_id, after, PAGE)
                    .await
                else {
                    return;
                };
                let full = page.len() == PAGE as usize;
                for m in page {
                    after = m.seq;
                    let Ok(text) = serde_json::to_string(&m) else {
                        continue;
                    };
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
            if let Ok(conv) = c
                .backend
                .conversation(&v.tenant_id, &v.conversation_id)
                .await
                && conv.status != status
            {
                status = conv.status;
                let frame = serde_json::json!({"type": "status", "status": status});
                if sink
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(id) => dirty = id == v.conversation_id || id == engine::EVERYTHING,
                Err(broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            ev = typing.recv() => match ev {
                Ok(id) if id == v.conversation_id => {
                    let now = tokio::time::Instant::now();
                    if last_typing_out.is_none_or(|t| now.duration_since(t) >= TYPING_EVERY) {
                        last_typing_out = Some(now);
                        let frame = serde_json::json!({"type": "typing", "author": "agent"});
                        if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // The visitor types: agents are told, throttled. Pings are answered by
                // the WebSocket layer; the visitor writes over HTTP (POST …/messages),
                // so other frames are ignored.
                Some(Ok(Message::Text(t))) if is_typing_frame(&t) => {
                    let now = tokio::time::Instant::now();
                    if last_typing_in.is_none_or(|t| now.duration_since(t) >= TYPING_EVERY) {
                        last_typing_in = Some(now);
                        if let Err(e) = c.backend.typing(&v.tenant_id, &v.conversation_id).await {
                            tracing::debug!(error = %e, "web chat: typing hint not published");
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = &mut expiry => {
                let frame = axum::extract::ws::CloseFrame { code: 4001, reason: "visitor token expired".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
}

/// Whether a visitor's text frame is a typing hint (`{"type": "typing"}`).
pub(crate) fn is_typing_frame(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Frame<'a> {
        #[serde(borrow, rename = "type")]
        kind: &'a str,
    }
    serde_json::from_str::<Frame<'_>>(text).is_ok_and(|f| f.kind == "typing")
}

/// The embeddable widget: a plain ES module, loadable from any origin.
async fn widget_js() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        include_str!("../../ui/chat/widget.js"),
    )
}
