//! Provider webhooks (issue #19): `GET` and `POST /hooks/v1/{kind}/{channel id}` —
//! the channel's `webhook_url`. Nothing is trusted before the provider's signature
//! checks out against the channel's secret (`parley_messaging::signature`; 401 and
//! nothing stored otherwise). Then the payload is parsed
//! (`parley_messaging::<provider>::parse_webhook`) and each event applied: a message
//! goes through the one ingestion path (`Store::ingest`, which recognises a repeat by
//! the provider's message id), its media downloaded into attachments first (a failed
//! download keeps the message and says so); a receipt moves the sent message on, or is
//! kept until the message it names is known (`Store::provider_receipt`). SMS keywords
//! (STOP / START) record the number's consent.
//!
//! `GET` answers the providers' subscription checks: Meta's `hub.challenge` handshake
//! (WhatsApp, Messenger, Instagram) and X's CRC.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_cases::conversations::{Channel, ChannelKind, InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Actor, Store};
use parley_messaging::{Event, MediaRef, signature};
use serde_json::Value;
use std::collections::HashMap;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_hook, receive_hook))
}

/// The channel a hook names, with its tenant and complete configuration; 404 for an
/// unknown, disabled or other-kind channel.
async fn hook_channel(s: &AppState, kind: &str, id: &str) -> ApiResult<(String, Channel, Value)> {
    let (tenant, ch) = s
        .store
        .webhook_channel(id)
        .await?
        .filter(|(_, ch)| ch.kind.as_str() == kind && ch.enabled)
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let config = s.store.channel_config(&ch)?;
    Ok((tenant, ch, config))
}

fn secret<'a>(config: &'a Value, field: &str) -> &'a str {
    config
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn refused(e: parley_messaging::Error) -> ApiError {
    tracing::info!(error = %e, "webhook refused");
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string())
}

/// A provider's subscription check: Meta's `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
/// (answered with the challenge) or X's `crc_token` (answered with
/// `{"response_token": "sha256=…"}`). 401 when the token is wrong.
#[utoipa::path(get, path = "/hooks/v1/{kind}/{id}", tag = "channels",
    params(("kind" = String, Path, description = "The channel's kind"), ("id" = String, Path, description = "The channel's id")),
    responses((status = 200, description = "The challenge answered"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn verify_hook(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (_, ch, config) = hook_channel(&s, &kind, &id).await?;
    match ch.kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            let challenge = parley_messaging::whatsapp::verify_handshake(
                secret(&config, "verify_token"),
                q.get("hub.mode").map(String::as_str),
                q.get("hub.verify_token").map(String::as_str),
                q.get("hub.challenge").map(String::as_str),
            )
            .map_err(refused)?;
            Ok(([(header::CONTENT_TYPE, "text/plain")], challenge).into_response())
        }
        ChannelKind::X => {
            let token = q.get("crc_token").ok_or_else(|| {
                refused(parley_messaging::Error::MissingSignature {
                    header: "crc_token",
                })
            })?;
            let answer = signature::x_crc_response(secret(&config, "consumer_secret"), token);
            Ok(axum::Json(serde_json::json!({"response_token": answer})).into_response())
        }
        _ => Err(ApiError::not_found("verification for this channel kind")),
    }
}

/// A provider's webhook: checked against the channel's secret (401, nothing stored,
/// when the signature is missing or wrong), parsed (400 when it is not the provider's
/// shape), and applied. A repeat of a message already stored changes nothing.
#[utoipa::path(post, path = "/hooks/v1/{kind}/{id}", tag = "channels", request_body(content = String, description = "The provider's payload (JSON, or a form for SMS), exactly as signed"),
    params(("kind" = String, Path, description = "The channel's kind"), ("id" = String, Path, description = "The channel's id")),
    responses((status = 200, description = "Taken"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn receive_hook(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (tenant, ch, config) = hook_channel(&s, &kind, &id).await?;
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let events = match ch.kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            signature::verify_meta(
                secret(&config, "app_secret"),
                &body,
                h(signature::META_HEADER),
            )
            .map_err(refused)?;
            if ch.kind == ChannelKind::Whatsapp {
                parley_messaging::whatsapp::parse_webhook(&body)
            } else {
                parley_messaging::meta::parse_webhook(&body)
            }
        }
        ChannelKind::Telegram => {
            signature::verify_telegram(
                secret(&config, "secret_token"),
                h(signature::TELEGRAM_HEADER),
            )
            .map_err(refused)?;
            parley_messaging::telegram::parse_webhook(&body)
        }
        ChannelKind::Sms => {
            let params = parley_messaging::twilio::form_params(&body);
            let path = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(uri.path());
            let url = format!("{}{path}", crate::api::channels::public_base(&s, &headers));
            signature::verify_twilio(
                secret(&config, "auth_token"),
                &url,
                &params,
                h(signature::TWILIO_HEADER),
            )
            .map_err(refused)?;
            parley_messaging::twilio::parse_webhook(&params)
        }
        ChannelKind::X => {
            signature::verify_x(
                secret(&config, "consumer_secret"),
                &body,
                h(signature::X_HEADER),
            )
            .map_err(refused)?;
            parley_messaging::x::parse_webhook(&body)
        }
        ChannelKind::Api => {
            signature::verify_api(
                secret(&config, "signing_secret"),
                &body,
                h(signature::API_HEADER),
            )
            .map_err(refused)?;
            parley_messaging::api::parse_webhook(&body)
        }
        ChannelKind::WebChat | ChannelKind::Email => {
            return Err(ApiError::not_found("webhook for this channel kind"));
        }
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let actor = Actor::system(&tenant);
    for event in events {
        match event {
            Event::Message(m) => ingest(&s, &actor, &ch, &config, m).await?,
            Event::Status(st) => {
                let status = match st.status {
                    parley_messaging::DeliveryStatus::Sent => MessageStatus::Sent,
                    parley_messaging::DeliveryStatus::Delivered => MessageStatus::Delivered,
                    parley_messaging::DeliveryStatus::Read => MessageStatus::Read,
                    parley_messaging::DeliveryStatus::Failed => MessageStatus::Failed,
                };
                s.store
                    .provider_receipt(&tenant, &ch.id, &st.id, status, st.error.as_deref())
                    .await?;
            }
        }
    }
    if ch.kind == ChannelKind::Sms {
        // Twilio wants TwiML; an empty response sends nothing back.
        return Ok((
            [(header::CONTENT_TYPE, "text/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        )
            .into_response());
    }
    Ok(axum::Json(serde_json::json!({"ok": true})).into_response())
}

/// The identity a channel vouches for.
fn identity(kind: ChannelKind, from: &str) -> Option<RawIdentity> {
    let (k, v) = match kind {
        ChannelKind::Whatsapp => ("whatsapp", format!("+{}", from.trim_start_matches('+'))),
        // A texting number is the same customer as a calling one.
        ChannelKind::Sms => ("phone", from.to_owned()),
        ChannelKind::Messenger => ("messenger", from.to_owned()),
        ChannelKind::Instagram => ("instagram", from.to_owned()),
        ChannelKind::Telegram => ("telegram", from.to_owned()),
        ChannelKind::X => ("x", from.to_owned()),
        _ => return None,
    };
    Some(RawIdentity {
        kind: k.into(),
        value: v,
    })
}

async fn ingest(
    s: &AppState,
    actor: &Actor,
    ch: &Channel,
    config: &Value,
    m: parley_messaging::InboundMessage,
) -> ApiResult<()> {
    if ch.kind == ChannelKind::Sms
        && let Some(k) = parley_messaging::twilio::keyword(&m.text)
    {
        use parley_messaging::twilio::Keyword;
        if matches!(k, Keyword::Stop | Keyword::Start) {
            s.store
                .set_sms_opt_out(&actor.tenant_id, &ch.id, &m.from, k == Keyword::Stop)
                .await?;
        }
    }
    let mut text = m.text.clone();
    let mut attachments = Vec::new();
    for media in &m.media {
        match fetch_media(s, &s.store, actor, ch, config, media).await {
            Ok(a) => attachments.push(a),
            Err(why) => {
                tracing::warn!(channel = %ch.id, message = %m.id, %why, "media not downloaded");
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("[attachment not downloaded: {why}]"));
            }
        }
    }
    if text.trim().is_empty() && attachments.is_empty() {
        text = format!("[{} message]", m.kind);
    }
    let sender = Sender {
        customer_id: None,
        identity: identity(ch.kind, &m.from),
        name: m.name.clone(),
    };
    s.store
        .ingest(
            actor,
            InboundMessage {
                channel_id: ch.id.clone(),
                thread_key: m.thread.clone(),
                sender,
                text,
                provider_message_id: Some(m.id.clone()),
                attachments,
                ..Default::default()
            },
        )
        .await?;
    Ok(())
}

/// Largest media download (the channel's own limit applies when it is stored).
const MAX_MEDIA_BYTES: usize = 25 << 20;

/// Downloads one media item into an attachment; the error says why not (shown on the
/// message).
async fn fetch_media(
    s: &AppState,
    store: &Store,
    actor: &Actor,
    ch: &Channel,
    config: &Value,
    media: &MediaRef,
) -> Result<parley_cases::conversations::NewAttachment, String> {
    use parley_messaging::{telegram, twilio, whatsapp};
    let client = &s.messaging;
    let cfg_err = |e: parley_messaging::Error| e.to_string();
    let get = if media.is_url {
        match ch.kind {
            ChannelKind::Sms => twilio::media_download(config, &media.reference),
            _ => parley_messaging::HttpRequest {
                method: "GET",
                url: media.reference.clone(),
                headers: vec![],
                body: vec![],
            },
        }
    } else {
        match ch.kind {
            ChannelKind::Whatsapp => {
                let info = client
                    .send(
                        &whatsapp::media_info(config, &media.reference).map_err(cfg_err)?,
                        64 << 10,
                    )
                    .await;
                if info.status != 200 {
                    return Err(format!("media lookup answered HTTP {}", info.status));
                }
                let (url, _) = whatsapp::media_url(&info).map_err(cfg_err)?;
                whatsapp::media_download(config, &url).map_err(cfg_err)?
            }
            ChannelKind::Telegram => {
                let info = client
                    .send(
                        &telegram::get_file(config, &media.reference).map_err(cfg_err)?,
                        64 << 10,
                    )
                    .await;
                if info.status != 200 {
                    return Err(format!("getFile answered HTTP {}", info.status));
                }
                parley_messaging::HttpRequest {
                    method: "GET",
                    url: telegram::file_url(config, &info).map_err(cfg_err)?,
                    headers: vec![],
                    body: vec![],
                }
            }
            _ => return Err("no way to fetch this media".into()),
        }
    };
    let r = client.send(&get, MAX_MEDIA_BYTES).await;
    if r.status != 200 {
        return Err(if r.status == 0 {
            "no answer from the media server".to_owned()
        } else {
            format!("HTTP {}", r.status)
        });
    }
    let ct = media
        .mime
        .clone()
        .or(r.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    let name = media.filename.clone().unwrap_or_else(|| {
        let ext = ct
            .split('/')
            .nth(1)
            .unwrap_or("bin")
            .split(';')
            .next()
            .unwrap_or("bin");
        format!(
            "{}.{ext}",
            media
                .reference
                .rsplit('/')
                .next()
                .unwrap_or("media")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(40)
                .collect::<String>()
        )
    });
    store
        .store_attachment(actor, &ch.id, &name, &ct, &r.body)
        .await
        .map_err(|e| e.to_string())
}
