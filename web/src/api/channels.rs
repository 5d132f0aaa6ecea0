//! Channels (issue #19): the tenant's entry points — web chat, email, SMS, WhatsApp,
//! Messenger, Instagram, Telegram, X, the generic `api` channel — and their provider
//! configuration. Admins create and change them; every signed-in user may list them
//! (the inbox filters by channel). The configuration is checked per kind
//! (`parley_cases::conversations::channel_config`); its secrets are write-only
//! (shown as `"has_<field>": true`) and sealed at rest. `webhook_url` is where the
//! provider posts: `<public URL>/hooks/v1/<kind>/<channel id>`, the public URL being
//! `PARLEY_PUBLIC_URL` or the address the request came to.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use parley_cases::Timestamp;
use parley_cases::conversations::channels::{ChannelPatch, Removed};
use parley_cases::conversations::{Channel, ChannelKind, NewChannel, channel_config};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
}

/// A channel as the API shows it (secrets never included).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChannelView {
    /// Id.
    id: String,
    /// `web_chat`, `email`, `sms`, `whatsapp`, `messenger`, `instagram`, `telegram`,
    /// `x` or `api`.
    kind: ChannelKind,
    /// Name, unique in the tenant.
    name: String,
    /// Where the provider sends webhooks (kinds that receive them).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    /// The configuration without its secrets; `has_<field>: true` for each secret set.
    #[schema(value_type = Object)]
    config: serde_json::Value,
    /// The queue its conversations are routed through.
    queue_id: Option<String>,
    /// The team its conversations belong to.
    team_id: Option<String>,
    /// Receives and sends (a removed channel with conversations is disabled).
    enabled: bool,
    /// Created.
    created_at: Timestamp,
    /// Last changed.
    updated_at: Timestamp,
    /// Telegram, on create: `registered` when Parley's `setWebhook` succeeded, else
    /// why not (the channel is created either way; save it again to retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_registration: Option<String>,
}

/// Whether provider webhooks come to channels of this kind.
fn has_webhook(kind: ChannelKind) -> bool {
    !matches!(kind, ChannelKind::WebChat | ChannelKind::Email)
}

/// Parley's public base URL as seen by providers: `PARLEY_PUBLIC_URL`, else the
/// address this request came to.
pub(crate) fn public_base(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &s.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The webhook URL of a channel.
pub(crate) fn webhook_url(base: &str, ch: &Channel) -> Option<String> {
    has_webhook(ch.kind).then(|| format!("{base}/hooks/v1/{}/{}", ch.kind.as_str(), ch.id))
}

fn view(base: &str, ch: Channel) -> ChannelView {
    ChannelView {
        webhook_url: webhook_url(base, &ch),
        config: channel_config::redacted(&ch.settings, &ch.secret_fields),
        id: ch.id,
        kind: ch.kind,
        name: ch.name,
        queue_id: ch.queue_id,
        team_id: ch.team_id,
        enabled: ch.enabled,
        created_at: ch.created_at,
        updated_at: ch.updated_at,
        webhook_registration: None,
    }
}

/// Registers the webhook with providers that are told where to post (Telegram's
/// `setWebhook`); `None` for the others.
async fn register_webhook(s: &AppState, base: &str, ch: &Channel) -> Option<String> {
    if ch.kind != ChannelKind::Telegram {
        return None;
    }
    let url = webhook_url(base, ch)?;
    let config = match s.store.channel_config(ch) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let req = match parley_messaging::telegram::set_webhook(&config, &url) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    let r = s.messaging.send(&req, 64 << 10).await;
    match parley_messaging::telegram::read_send(&r) {
        Ok(_) => Some("registered".into()),
        Err(e) => {
            tracing::warn!(channel = %ch.id, reason = %e.reason, "Telegram setWebhook failed");
            Some(e.reason)
        }
    }
}

/// The tenant's channels, by name.
#[utoipa::path(get, path = "/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = Vec<ChannelView>), (status = 401, body = ErrorBody)))]
async fn list_channels(
    State(s): State<AppState>,
    a: Authed,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<ChannelView>>> {
    let base = public_base(&s, &headers);
    let out = s.store.channels(&a.actor).await?;
    Ok(axum::Json(
        out.into_iter().map(|c| view(&base, c)).collect(),
    ))
}

/// One channel.
#[utoipa::path(get, path = "/channels/{id}", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorBody)))]
async fn get_channel(
    State(s): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ChannelView>> {
    let ch = s.store.channel(&a.actor, &id).await?;
    Ok(axum::Json(view(&public_base(&s, &headers), ch)))
}

/// Creates a channel (admin): `{"kind", "name", "config", "queue"?, "team_id"?}`.
/// A missing, mistyped or unknown configuration field is a 422 naming it
/// (`config.<field>`); a taken name is a 409.
#[utoipa::path(post, path = "/channels", tag = "channels", security(("bearer" = [])), request_body = NewChannel,
    responses((status = 201, body = ChannelView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_channel(
    State(s): State<AppState>,
    Admin(a): Admin,
    headers: HeaderMap,
    Json(body): Json<NewChannel>,
) -> ApiResult<(StatusCode, axum::Json<ChannelView>)> {
    let ch = s.store.create_channel(&a.actor, body).await?;
    let base = public_base(&s, &headers);
    let registration = register_webhook(&s, &base, &ch).await;
    let mut v = view(&base, ch);
    v.webhook_registration = registration;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// Changes a channel (admin): `name`, `config` (a merge patch: secrets not given are
/// kept, `null` removes a key), `queue`, `team_id`, `enabled`.
#[utoipa::path(patch, path = "/channels/{id}", tag = "channels", security(("bearer" = [])), request_body = ChannelPatch,
    responses((status = 200, body = ChannelView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_channel(
    State(s): State<AppState>,
    Admin(a): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ChannelPatch>,
) -> ApiResult<axum::Json<ChannelView>> {
    let config_changed = body.config.is_some();
    let ch = s.store.update_channel(&a.actor, &id, body).await?;
    let base = public_base(&s, &headers);
    let registration = if config_changed {
        register_webhook(&s, &base, &ch).await
    } else {
        None
    };
    let mut v = view(&base, ch);
    v.webhook_registration = registration;
    Ok(axum::Json(v))
}

/// Removes a channel (admin): 204 when it had no conversation (deleted); 200 with the
/// channel, now `"enabled": false`, when it has conversations (disabled, history kept).
#[utoipa::path(delete, path = "/channels/{id}", tag = "channels", security(("bearer" = [])),
    responses((status = 204), (status = 200, body = ChannelView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_channel(
    State(s): State<AppState>,
    Admin(a): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    match s.store.remove_channel(&a.actor, &id).await? {
        Removed::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        Removed::Disabled => {
            let ch = s.store.channel(&a.actor, &id).await?;
            Ok(axum::Json(view(&public_base(&s, &headers), ch)).into_response())
        }
    }
}
