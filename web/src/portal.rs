//! The customer portal (issue #17): a customer signs in with a one-time link sent to
//! their address and sees their own stream — every conversation on every channel with
//! the messages they may see, and their cases — and writes. The page is
//! `/portal/{tenant}` (`web/ui/portal/`); its API is under `/portal/v1` (not
//! `/api/v1`: customers are not users).
//!
//! - `POST /portal/v1/{tenant}/login {"email"}` → 202 whatever the address (whether a
//!   customer has it is not revealed). The link is handed to the [`LinkSender`]: the
//!   email channel plugs in its sender; the default ([`LogLinkSender`]) writes it to
//!   the server log (development and the demo only).
//! - `POST /portal/v1/{tenant}/session {"token"}` → the session (`Authorization:
//!   Bearer <session token>` on the rest): redeeming proves the address, which is when
//!   the visitors who claimed it in a chat are joined (see `parley_cases::portal`).
//! - `GET /portal/v1/stream`, `POST /portal/v1/messages {"text", "conversation_id"?,
//!   "client_id"?}`, `POST /portal/v1/logout`.
//!
//! The link carries the token in its fragment (`/portal/{tenant}#token=…`): it never
//! reaches a server log or a `Referer`. Its origin is the sender's business (the
//! email channel knows the public address); nothing here trusts a request's `Host`.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parley_cases::conversations::{MAX_TEXT_BYTES, VisitorMessage};
use parley_cases::portal::{PortalLink, PortalSession, PortalStream};
use parley_cases::{Actor, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::chat::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::extract::bearer;

/// Delivers a portal sign-in link to its address.
pub trait LinkSender: Send + Sync + 'static {
    /// Sends `link` for the tenant named `tenant`; `path` is the page's path with the
    /// token in its fragment (`/portal/{tenant}#token=…`), to put after the public
    /// origin.
    fn send(&self, tenant: &str, link: &PortalLink, path: &str) -> BoxFuture<'static, ()>;
}

/// The default sender until the email channel's: writes the link to the server log
/// (target `parley::portal`, level INFO). For development and the demo only — anyone
/// who reads the log can sign in as the customer.
#[derive(Debug, Default)]
pub struct LogLinkSender;

impl LinkSender for LogLinkSender {
    fn send(&self, tenant: &str, link: &PortalLink, path: &str) -> BoxFuture<'static, ()> {
        tracing::info!(target: "parley::portal", %tenant, email = %link.email,
            "portal sign-in link: {path}");
        Box::pin(async {})
    }
}

/// The portal's own state in [`AppState`].
#[derive(Clone)]
pub(crate) struct PortalState {
    sender: Arc<dyn LinkSender>,
    /// Sign-in requests per tenant and source address.
    logins: Arc<DefaultKeyedRateLimiter<String>>,
}

impl PortalState {
    pub(crate) fn new(sender: Arc<dyn LinkSender>) -> PortalState {
        let quota = Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        PortalState {
            sender,
            logins: Arc::new(RateLimiter::keyed(quota)),
        }
    }
}

/// The portal's routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(session))
        .routes(routes!(stream))
        .routes(routes!(write))
        .routes(routes!(logout))
}

fn portal(s: &AppState) -> &PortalState {
    &s.portal
}

/// The body of a sign-in request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// The customer's email address.
    email: String,
}

/// A customer asks for a sign-in link: 202 for any well-formed address (the link goes
/// only to that address; at most 5 an hour per address, 10 a minute per source).
#[utoipa::path(post, path = "/portal/v1/{tenant}/login", tag = "portal",
    params(("tenant" = String, Path, description = "The tenant's short name")),
    request_body = LoginBody,
    responses((status = 202, description = "A link is on its way if the address may have one"),
        (status = 404, description = "No such tenant"), (status = 422, description = "Not an email address"),
        (status = 429, description = "Too many requests from this address")))]
async fn login(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let p = portal(&s);
    let source = peer.map_or_else(String::new, |axum::Extension(c)| c.0.ip().to_string());
    if p.logins.len() > 100_000 {
        p.logins.retain_recent();
    }
    if p.logins.check_key(&format!("{tenant} {source}")).is_err() {
        return Err(ApiError::rate_limited(60));
    }
    let body: LoginBody = crate::extract::parse_json(&body)?;
    if body.email.len() > 254 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "email: longer than 254 bytes",
        )
        .with_field("email"));
    }
    let t = s
        .store
        .tenant_by_name(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let actor = Actor::system(&t.id);
    if let Some(link) = s.store.portal_request_link(&actor, &body.email).await? {
        let path = format!("/portal/{}#token={}", t.name, link.token);
        p.sender.send(&t.name, &link, &path).await;
    }
    Ok(StatusCode::ACCEPTED)
}

/// The body of a sign-in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionBody {
    /// The token from the link.
    token: String,
}

/// A signed-in customer's session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionOut {
    /// Send as `Authorization: Bearer …`.
    session_token: String,
    /// The customer.
    customer_id: String,
    /// Their name.
    name: String,
    /// Until when.
    #[schema(value_type = String)]
    expires_at: Timestamp,
}

/// Redeems a sign-in link (once): the session. Unknown, used or expired: 401.
#[utoipa::path(post, path = "/portal/v1/{tenant}/session", tag = "portal",
    params(("tenant" = String, Path, description = "The tenant's short name")),
    request_body = SessionBody,
    responses((status = 200, body = SessionOut), (status = 401, description = "Bad, used or expired link"),
        (status = 404, description = "No such tenant")))]
async fn session(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<SessionOut>> {
    let body: SessionBody = crate::extract::parse_json(&body)?;
    let t = s
        .store
        .tenant_by_name(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let actor = Actor::system(&t.id);
    let sess = s
        .store
        .portal_redeem(&actor, &body.token)
        .await
        .map_err(|e| match e {
            parley_cases::Error::Unauthenticated => link_refused(),
            other => other.into(),
        })?;
    Ok(axum::Json(SessionOut {
        session_token: sess.token,
        customer_id: sess.customer_id,
        name: sess.name,
        expires_at: sess.expires_at,
    }))
}

fn link_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "this sign-in link is not valid any more: ask for a new one",
    )
}

/// The session a request's bearer token stands for: 401 otherwise.
async fn signed_in(s: &AppState, parts: &Parts) -> ApiResult<(PortalSession, String)> {
    let token = bearer(parts).ok_or_else(session_refused)?.to_owned();
    let sess = s.store.portal_session(&token).await.map_err(|e| match e {
        parley_cases::Error::Unauthenticated => session_refused(),
        other => other.into(),
    })?;
    Ok((sess, token))
}

fn session_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "sign in again: a portal session is required",
    )
}

/// The signed-in customer's stream: conversations on every channel (no internal notes)
/// and cases.
#[utoipa::path(get, path = "/portal/v1/stream", tag = "portal", security(("portal" = [])),
    responses((status = 200, body = PortalStream), (status = 401, description = "Not signed in")))]
async fn stream(State(s): State<AppState>, parts: Parts) -> ApiResult<axum::Json<PortalStream>> {
    let (sess, _) = signed_in(&s, &parts).await?;
    Ok(axum::Json(s.store.portal_stream(&sess).await?))
}

/// A message from the signed-in customer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteBody {
    /// The text.
    text: String,
    /// One of their conversations; default: their portal conversation.
    conversation_id: Option<String>,
    /// Idempotency key: the same again returns the same message.
    client_id: Option<String>,
}

/// The signed-in customer writes (through the one ingestion path: it reopens and is
/// routed like any inbound message). Over the limit: 413; not theirs: 404.
#[utoipa::path(post, path = "/portal/v1/messages", tag = "portal", security(("portal" = [])),
    request_body = WriteBody,
    responses((status = 201, body = VisitorMessage), (status = 401, description = "Not signed in"),
        (status = 404, description = "Not their conversation"), (status = 413, description = "Text over the limit")))]
async fn write(
    State(s): State<AppState>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<VisitorMessage>)> {
    let (sess, _) = signed_in(&s, &parts).await?;
    let body: WriteBody = crate::extract::parse_json(&body)?;
    if body.text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("text is longer than the limit of {MAX_TEXT_BYTES} bytes"),
        )
        .with_field("text"));
    }
    if body.text.trim().is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "text: empty")
                .with_field("text"),
        );
    }
    let m = s
        .store
        .portal_write(
            &sess,
            body.conversation_id.as_deref(),
            body.text,
            body.client_id,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(m)))
}

/// Signs out (the session token stops working).
#[utoipa::path(post, path = "/portal/v1/logout", tag = "portal", security(("portal" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, description = "Not signed in")))]
async fn logout(State(s): State<AppState>, parts: Parts) -> ApiResult<StatusCode> {
    let (_, token) = signed_in(&s, &parts).await?;
    s.store.portal_sign_out(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}
