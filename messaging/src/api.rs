//! The generic `api` channel, for custom integrations. Inbound: `POST` the channel's
//! webhook URL with a JSON body signed in `X-Parley-Signature: sha256=<hex
//! HMAC-SHA256(signing_secret, body)>`:
//!
//! ```json
//! {"type": "message", "id": "ext-1", "thread": "order-42", "from": "customer-7",
//!  "name": "Ann", "text": "Where is my order?",
//!  "attachments": [{"url": "https://…", "content_type": "image/png", "filename": "a.png"}]}
//! {"type": "status", "id": "<id returned for a reply>", "status": "delivered"}
//! ```
//!
//! Outbound: each reply is `POST`ed to the channel's `outbound_url`, signed the same
//! way, as `{"type": "message", "id": <Parley's message id>, "thread", "text",
//! "attachments"}`; a 2xx answer delivers it (its `{"id"}`, when given, is the id later
//! statuses name), 429 and 5xx are retried with backoff.

use serde_json::{Value, json};

use crate::{
    DeliveryStatus, Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result, SendError,
    StatusUpdate, config_str, malformed, signature,
};

const P: &str = "api";

fn s<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 500)
        .ok_or_else(|| malformed(P, key, "missing, empty or longer than 500 characters"))
}

/// Parses one inbound event.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(P, "$", e.to_string()))?;
    match v.get("type").and_then(Value::as_str).unwrap_or("message") {
        "message" => {
            let thread = s(&v, "thread")?;
            let from = v.get("from").and_then(Value::as_str).unwrap_or(thread);
            let media = v
                .get("attachments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            Some(MediaRef {
                                reference: x.get("url")?.as_str()?.to_owned(),
                                is_url: true,
                                mime: x
                                    .get("content_type")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned),
                                filename: x
                                    .get("filename")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(vec![Event::Message(InboundMessage {
                id: s(&v, "id")?.to_owned(),
                thread: thread.to_owned(),
                from: from.to_owned(),
                name: v.get("name").and_then(Value::as_str).map(str::to_owned),
                text: v
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                media,
                at_ms: None,
                kind: "message".into(),
            })])
        }
        "status" => {
            let status = match s(&v, "status")? {
                "sent" => DeliveryStatus::Sent,
                "delivered" => DeliveryStatus::Delivered,
                "read" => DeliveryStatus::Read,
                "failed" => DeliveryStatus::Failed,
                other => return Err(malformed(P, "status", format!("unknown status {other}"))),
            };
            Ok(vec![Event::Status(StatusUpdate {
                id: s(&v, "id")?.to_owned(),
                status,
                error: v.get("error").and_then(Value::as_str).map(str::to_owned),
                at_ms: None,
                recipient: None,
            })])
        }
        other => Err(malformed(P, "type", format!("unknown type {other}"))),
    }
}

/// The signed POST of a reply to the channel's `outbound_url`.
pub fn send_message(
    config: &Value,
    message_id: &str,
    thread: &str,
    text: &str,
    attachments: &[Value],
) -> Result<HttpRequest> {
    let url = config_str(config, "outbound_url")?.to_owned();
    let secret = config_str(config, "signing_secret")?;
    let body = json!({"type": "message", "id": message_id, "thread": thread, "text": text,
        "attachments": attachments});
    let req = HttpRequest::post_json(url, &body);
    let sig = signature::api_header(secret, &req.body);
    Ok(req.header(signature::API_HEADER, sig))
}

/// Reads the integration's answer: its `id` when it gives one, else `fallback`.
pub fn read_send(r: &HttpResponse, fallback: &str) -> Result<String, SendError> {
    if (200..300).contains(&r.status) {
        let v: Option<Value> = serde_json::from_slice(&r.body).ok();
        return Ok(v
            .as_ref()
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str)
            .unwrap_or(fallback)
            .to_owned());
    }
    let detail = String::from_utf8_lossy(&r.body)
        .chars()
        .take(200)
        .collect::<String>();
    Err(SendError::from_response(
        P,
        r,
        (!detail.is_empty()).then_some(detail),
    ))
}
