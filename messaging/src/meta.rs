//! Messenger and Instagram (Meta's Send API and `messaging` webhooks; the same
//! `X-Hub-Signature-256` as WhatsApp, [`crate::signature::verify_meta`]).
//! Configuration: `page_id`, `access_token`, `app_secret`, `verify_token`,
//! `api_base_url`, `api_version`, `human_agent_tag` (send with the `HUMAN_AGENT` tag,
//! which stretches the 24-hour window to 7 days where Meta allows it).

use serde_json::{Value, json};

use crate::{
    DeliveryStatus, Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result, SendError,
    StatusUpdate, base_url, config_str, malformed,
};

/// The standard messaging window.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;
/// The window with the human-agent tag.
pub const HUMAN_AGENT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

const P: &str = "meta";

/// Parses a Messenger (`"object": "page"`) or Instagram (`"object": "instagram"`)
/// webhook: messages (text, attachments by URL) and delivery/read receipts. Echoes
/// of the page's own messages are skipped.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(P, "$", e.to_string()))?;
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(P, "entry", "missing"))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(items) = entry.get("messaging").and_then(Value::as_array) else {
            continue;
        };
        for (j, m) in items.iter().enumerate() {
            let at = format!("entry[{i}].messaging[{j}]");
            let sender = m
                .pointer("/sender/id")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(P, format!("{at}.sender.id"), "missing"))?;
            let ts = m.get("timestamp").and_then(Value::as_i64);
            if let Some(msg) = m.get("message") {
                if msg.get("is_echo").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let id = msg
                    .get("mid")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(P, format!("{at}.message.mid"), "missing"))?;
                let media = msg
                    .get("attachments")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|att| {
                                Some(MediaRef {
                                    reference: att.pointer("/payload/url")?.as_str()?.to_owned(),
                                    is_url: true,
                                    mime: None,
                                    filename: None,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Event::Message(InboundMessage {
                    id: id.to_owned(),
                    thread: sender.to_owned(),
                    from: sender.to_owned(),
                    name: None,
                    text: msg
                        .get("text")
                        .and_then(Value::as_str)
                        .or_else(|| msg.pointer("/quick_reply/payload").and_then(Value::as_str))
                        .unwrap_or_default()
                        .to_owned(),
                    media,
                    at_ms: ts,
                    kind: "message".into(),
                }));
            } else if let Some(d) = m.get("delivery") {
                for mid in d
                    .get("mids")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(mid) = mid.as_str() {
                        out.push(Event::Status(StatusUpdate {
                            id: mid.to_owned(),
                            status: DeliveryStatus::Delivered,
                            error: None,
                            at_ms: ts,
                            recipient: Some(sender.to_owned()),
                        }));
                    }
                }
            } else if let Some(r) = m.get("read")
                && let Some(mid) = r.get("mid").and_then(Value::as_str)
            {
                out.push(Event::Status(StatusUpdate {
                    id: mid.to_owned(),
                    status: DeliveryStatus::Read,
                    error: None,
                    at_ms: ts,
                    recipient: Some(sender.to_owned()),
                }));
            }
        }
    }
    Ok(out)
}

/// `POST /{version}/{page_id}/messages` with a text; `human_agent` sends with the
/// `HUMAN_AGENT` tag (outside the 24-hour window).
pub fn send_text(config: &Value, to: &str, text: &str, human_agent: bool) -> Result<HttpRequest> {
    let url = format!(
        "{}/{}/{}/messages",
        base_url(config, crate::whatsapp::DEFAULT_BASE),
        config
            .get("api_version")
            .and_then(Value::as_str)
            .unwrap_or(crate::whatsapp::DEFAULT_VERSION),
        config_str(config, "page_id")?
    );
    let mut body = json!({"recipient": {"id": to}, "message": {"text": text},
        "messaging_type": "RESPONSE"});
    if human_agent {
        body["messaging_type"] = json!("MESSAGE_TAG");
        body["tag"] = json!("HUMAN_AGENT");
    }
    Ok(HttpRequest::post_json(url, &body).bearer(config_str(config, "access_token")?))
}

/// Reads a Send API answer: the `message_id`.
pub fn read_send(r: &HttpResponse) -> Result<String, SendError> {
    read_graph_send(P, r, "/message_id")
}

/// Reads a Graph API send answer: the id at `pointer`, or the error
/// (`error.code`, `error.message`) classified as retryable or not.
pub(crate) fn read_graph_send(
    provider: &str,
    r: &HttpResponse,
    pointer: &str,
) -> Result<String, SendError> {
    let v: Option<Value> = serde_json::from_slice(&r.body).ok();
    if (200..300).contains(&r.status) {
        if let Some(id) = v
            .as_ref()
            .and_then(|v| v.pointer(pointer))
            .and_then(Value::as_str)
        {
            return Ok(id.to_owned());
        }
        return Err(SendError {
            retryable: false,
            reason: format!("{provider}: the answer has no message id"),
            retry_after_s: None,
        });
    }
    let detail = v.as_ref().and_then(|v| v.get("error")).map(|e| {
        let code = e.get("code").map(Value::to_string).unwrap_or_default();
        let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
        format!("error {code}: {msg}")
    });
    Err(SendError::from_response(provider, r, detail))
}
