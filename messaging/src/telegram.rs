//! Telegram Bot API: webhook updates (messages with text, photos, documents,
//! voice, location), `setWebhook` (done by Parley when the channel is created, with
//! the channel's `secret_token`), `getFile` and the file download, `sendMessage`.
//! Configuration: `bot_token`, `secret_token`, `api_base_url` (default
//! `https://api.telegram.org`).

use serde_json::{Value, json};

use crate::{
    Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result, SendError, base_url,
    config_str, malformed,
};

/// The Bot API's public base URL.
pub const DEFAULT_BASE: &str = "https://api.telegram.org";
/// Longest message text.
pub const MAX_TEXT_CHARS: usize = 4096;

const P: &str = "telegram";

fn method_url(config: &Value, method: &str) -> Result<String> {
    Ok(format!(
        "{}/bot{}/{method}",
        base_url(config, DEFAULT_BASE),
        config_str(config, "bot_token")?
    ))
}

/// Parses an update. A message's id is `<chat id>:<message id>` (Telegram numbers
/// messages per chat); edits and other update kinds yield nothing.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(P, "$", e.to_string()))?;
    if v.get("update_id").and_then(Value::as_i64).is_none() {
        return Err(malformed(P, "update_id", "missing"));
    }
    let Some(m) = v.get("message") else {
        return Ok(Vec::new());
    };
    let chat = m
        .pointer("/chat/id")
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed(P, "message.chat.id", "missing"))?;
    let mid = m
        .get("message_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed(P, "message.message_id", "missing"))?;
    let from = m
        .pointer("/from/id")
        .and_then(Value::as_i64)
        .unwrap_or(chat);
    let name = [
        m.pointer("/from/first_name").and_then(Value::as_str),
        m.pointer("/from/last_name").and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let mut text = m
        .get("text")
        .or_else(|| m.get("caption"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut media = Vec::new();
    let mut kind = "text";
    if let Some(photos) = m.get("photo").and_then(Value::as_array) {
        kind = "photo";
        // The largest size is last.
        if let Some(id) = photos
            .last()
            .and_then(|p| p.get("file_id"))
            .and_then(Value::as_str)
        {
            media.push(MediaRef {
                reference: id.to_owned(),
                is_url: false,
                mime: Some("image/jpeg".into()),
                filename: None,
            });
        }
    }
    for k in ["document", "voice", "audio", "video"] {
        if let Some(d) = m.get(k)
            && let Some(id) = d.get("file_id").and_then(Value::as_str)
        {
            kind = k;
            media.push(MediaRef {
                reference: id.to_owned(),
                is_url: false,
                mime: d
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                filename: d
                    .get("file_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    if let Some(l) = m.get("location") {
        kind = "location";
        let lat = l
            .get("latitude")
            .and_then(Value::as_f64)
            .unwrap_or_default();
        let lon = l
            .get("longitude")
            .and_then(Value::as_f64)
            .unwrap_or_default();
        text = format!("📍 {lat:.6}, {lon:.6} https://maps.google.com/?q={lat},{lon}");
    }
    Ok(vec![Event::Message(InboundMessage {
        id: format!("{chat}:{mid}"),
        thread: chat.to_string(),
        from: from.to_string(),
        name: (!name.is_empty()).then_some(name),
        text,
        media,
        at_ms: m.get("date").and_then(Value::as_i64).map(|s| s * 1000),
        kind: kind.into(),
    })])
}

/// `setWebhook` to `url` with the channel's `secret_token`.
pub fn set_webhook(config: &Value, url: &str) -> Result<HttpRequest> {
    let body = json!({"url": url, "secret_token": config_str(config, "secret_token")?,
        "allowed_updates": ["message"]});
    Ok(HttpRequest::post_json(
        method_url(config, "setWebhook")?,
        &body,
    ))
}

/// `sendMessage` to a chat.
pub fn send_message(config: &Value, chat_id: &str, text: &str) -> Result<HttpRequest> {
    let chat: Value = chat_id
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(chat_id));
    Ok(HttpRequest::post_json(
        method_url(config, "sendMessage")?,
        &json!({"chat_id": chat, "text": text}),
    ))
}

/// `getFile` of a `file_id` (read with [`file_url`]).
pub fn get_file(config: &Value, file_id: &str) -> Result<HttpRequest> {
    Ok(HttpRequest::post_json(
        method_url(config, "getFile")?,
        &json!({"file_id": file_id}),
    ))
}

/// The download URL of a [`get_file`] answer.
pub fn file_url(config: &Value, r: &HttpResponse) -> Result<String> {
    let v: Value =
        serde_json::from_slice(&r.body).map_err(|e| malformed(P, "getFile", e.to_string()))?;
    let path = v
        .pointer("/result/file_path")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(P, "result.file_path", "missing"))?;
    Ok(format!(
        "{}/file/bot{}/{path}",
        base_url(config, DEFAULT_BASE),
        config_str(config, "bot_token")?
    ))
}

/// Reads a Bot API answer to a send: the message id, or the `error_code` and
/// `description` (429 carries `parameters.retry_after`).
pub fn read_send(r: &HttpResponse) -> Result<String, SendError> {
    let v: Option<Value> = serde_json::from_slice(&r.body).ok();
    let ok = v
        .as_ref()
        .and_then(|v| v.get("ok"))
        .and_then(Value::as_bool)
        == Some(true);
    if (200..300).contains(&r.status) && ok {
        if let Some(id) = v
            .as_ref()
            .and_then(|v| v.pointer("/result/message_id"))
            .and_then(Value::as_i64)
        {
            return Ok(id.to_string());
        }
        return Ok(String::new());
    }
    let detail = v.as_ref().map(|v| {
        format!(
            "error {}: {}",
            v.get("error_code")
                .map(Value::to_string)
                .unwrap_or_default(),
            v.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )
    });
    let mut e = SendError::from_response(P, r, detail);
    if e.retry_after_s.is_none() {
        e.retry_after_s = v
            .as_ref()
            .and_then(|v| v.pointer("/parameters/retry_after"))
            .and_then(Value::as_u64);
    }
    Err(e)
}
