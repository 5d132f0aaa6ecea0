//! X (Twitter) direct messages: the Account Activity webhook (`GET` CRC challenge
//! answered with [`crate::signature::x_crc_response`], `POST` events signed in
//! `X-Twitter-Webhooks-Signature`) and `POST /2/dm_conversations/with/{id}/messages`.
//! Configuration: `user_id` (the account's id), `consumer_secret`, `access_token`
//! (an OAuth 2.0 user token with `dm.write`), `api_base_url` (default
//! `https://api.x.com`).

use serde_json::{Value, json};

use crate::{
    Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result, SendError, base_url,
    config_str, malformed,
};

/// X's public API.
pub const DEFAULT_BASE: &str = "https://api.x.com";
/// Longest DM.
pub const MAX_TEXT_CHARS: usize = 10_000;

const P: &str = "x";

/// Parses `direct_message_events`; the account's own messages are skipped.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(P, "$", e.to_string()))?;
    let me = v
        .get("for_user_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, e) in v
        .get("direct_message_events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if e.get("type").and_then(Value::as_str) != Some("message_create") {
            continue;
        }
        let at = format!("direct_message_events[{i}]");
        let id = e
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(P, format!("{at}.id"), "missing"))?;
        let mc = e.get("message_create").unwrap_or(&Value::Null);
        let sender = mc
            .get("sender_id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(P, format!("{at}.message_create.sender_id"), "missing"))?;
        if sender == me {
            continue;
        }
        let name = v
            .pointer(&format!("/users/{sender}/name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let media = mc
            .pointer("/message_data/attachment/media/media_url_https")
            .and_then(Value::as_str)
            .map(|u| {
                vec![MediaRef {
                    reference: u.to_owned(),
                    is_url: true,
                    mime: None,
                    filename: None,
                }]
            })
            .unwrap_or_default();
        out.push(Event::Message(InboundMessage {
            id: id.to_owned(),
            thread: sender.to_owned(),
            from: sender.to_owned(),
            name,
            text: mc
                .pointer("/message_data/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            media,
            at_ms: e
                .get("created_timestamp")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
            kind: "dm".into(),
        }));
    }
    Ok(out)
}

/// `POST /2/dm_conversations/with/{participant_id}/messages`.
pub fn send_message(config: &Value, participant_id: &str, text: &str) -> Result<HttpRequest> {
    let url = format!(
        "{}/2/dm_conversations/with/{participant_id}/messages",
        base_url(config, DEFAULT_BASE)
    );
    Ok(HttpRequest::post_json(url, &json!({"text": text}))
        .bearer(config_str(config, "access_token")?))
}

/// Reads the answer: `data.dm_event_id`, or the problem's `title`/`detail`.
pub fn read_send(r: &HttpResponse) -> Result<String, SendError> {
    let v: Option<Value> = serde_json::from_slice(&r.body).ok();
    if (200..300).contains(&r.status)
        && let Some(id) = v
            .as_ref()
            .and_then(|v| v.pointer("/data/dm_event_id"))
            .and_then(Value::as_str)
    {
        return Ok(id.to_owned());
    }
    let detail = v.as_ref().map(|v| {
        let t = v.get("title").and_then(Value::as_str).unwrap_or_default();
        let d = v.get("detail").and_then(Value::as_str).unwrap_or_default();
        format!("{t}: {d}")
    });
    Err(SendError::from_response(P, r, detail))
}
