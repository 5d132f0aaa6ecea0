//! WhatsApp Cloud API: webhook payloads (`messages`: text, media, location,
//! interactive and button replies; `statuses`: sent / delivered / read / failed) and
//! the Graph API requests Parley makes (send text or a template, mark as read, fetch
//! media, list templates). Configuration: `phone_number_id`, `access_token`,
//! `app_secret`, `verify_token`, `api_base_url` (default `https://graph.facebook.com`),
//! `api_version` (default [`DEFAULT_VERSION`]), `business_account_id` (templates).
//!
//! The customer service window: a free-form message may be sent only within
//! [`WINDOW_MS`] of the customer's last message; outside it only an approved template.

use serde_json::{Value, json};

use crate::{
    DeliveryStatus, Error, Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result,
    SendError, StatusUpdate, base_url, config_str, malformed,
};

/// The Graph API's public base URL.
pub const DEFAULT_BASE: &str = "https://graph.facebook.com";
/// The Graph API version used when the channel names none.
pub const DEFAULT_VERSION: &str = "v21.0";
/// The customer service window: 24 hours after the customer's last message.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Longest text message body.
pub const MAX_TEXT_CHARS: usize = 4096;

const P: &str = "whatsapp";

fn version(config: &Value) -> &str {
    config
        .get("api_version")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_VERSION)
}

fn ts_ms(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    let s = v
        .as_str()
        .map(str::to_owned)
        .or_else(|| v.as_i64().map(|n| n.to_string()))?;
    s.parse::<i64>().ok().map(|s| s * 1000)
}

/// Parses a webhook POST body into events (messages and statuses, in order).
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(P, "$", e.to_string()))?;
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(P, "entry", "missing"))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            continue;
        };
        for (j, change) in changes.iter().enumerate() {
            let at = format!("entry[{i}].changes[{j}].value");
            let Some(value) = change.get("value") else {
                continue;
            };
            let names: Vec<(String, String)> = value
                .get("contacts")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| {
                            Some((
                                c.get("wa_id")?.as_str()?.to_owned(),
                                c.pointer("/profile/name")?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Some(msgs) = value.get("messages").and_then(Value::as_array) {
                for (k, m) in msgs.iter().enumerate() {
                    out.push(Event::Message(message(
                        m,
                        &names,
                        &format!("{at}.messages[{k}]"),
                    )?));
                }
            }
            if let Some(sts) = value.get("statuses").and_then(Value::as_array) {
                for (k, s) in sts.iter().enumerate() {
                    out.push(Event::Status(status(s, &format!("{at}.statuses[{k}]"))?));
                }
            }
        }
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(P, format!("{at}.{key}"), "missing or not a string"))
}

fn message(m: &Value, names: &[(String, String)], at: &str) -> Result<InboundMessage> {
    let id = str_at(m, "id", at)?.to_owned();
    let from = str_at(m, "from", at)?.to_owned();
    let kind = m
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_owned();
    let mut media = Vec::new();
    let at_str = |ptr: &str| {
        m.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let text = match kind.as_str() {
        "text" => at_str("/text/body"),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let obj = m
                .get(&kind)
                .ok_or_else(|| malformed(P, format!("{at}.{kind}"), "missing"))?;
            media.push(MediaRef {
                reference: str_at(obj, "id", &format!("{at}.{kind}"))?.to_owned(),
                is_url: false,
                mime: obj
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                filename: obj
                    .get("filename")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
            obj.get("caption")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
        "location" => {
            let l = m.get("location").unwrap_or(&Value::Null);
            let lat = l.get("latitude").and_then(Value::as_f64);
            let lon = l.get("longitude").and_then(Value::as_f64);
            let (Some(lat), Some(lon)) = (lat, lon) else {
                return Err(malformed(
                    P,
                    format!("{at}.location"),
                    "latitude and longitude required",
                ));
            };
            let label: Vec<&str> = [l.get("name"), l.get("address")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut t = format!("📍 {lat:.6}, {lon:.6}");
            if !label.is_empty() {
                t = format!("{t} ({})", label.join(", "));
            }
            format!("{t} https://maps.google.com/?q={lat},{lon}")
        }
        "interactive" => {
            let i = m.get("interactive").unwrap_or(&Value::Null);
            i.get("button_reply")
                .or_else(|| i.get("list_reply"))
                .or_else(|| i.get("nfm_reply"))
                .and_then(|r| r.get("title").or_else(|| r.get("body")))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
        "button" => at_str("/button/text"),
        "reaction" => at_str("/reaction/emoji"),
        _ => format!("[unsupported WhatsApp message type: {kind}]"),
    };
    Ok(InboundMessage {
        id,
        thread: from.clone(),
        name: names
            .iter()
            .find(|(wa, _)| *wa == from)
            .map(|(_, n)| n.clone()),
        from,
        text,
        media,
        at_ms: ts_ms(m.get("timestamp")),
        kind,
    })
}

fn status(s: &Value, at: &str) -> Result<StatusUpdate> {
    let status = match str_at(s, "status", at)? {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        other => {
            return Err(malformed(
                P,
                format!("{at}.status"),
                format!("unknown status {other}"),
            ));
        }
    };
    let error = s.get("errors").and_then(Value::as_array).and_then(|es| {
        es.first().map(|e| {
            let code = e.get("code").map(Value::to_string).unwrap_or_default();
            let title = e
                .get("title")
                .or_else(|| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("error");
            format!("{code} {title}").trim().to_owned()
        })
    });
    Ok(StatusUpdate {
        id: str_at(s, "id", at)?.to_owned(),
        status,
        error,
        at_ms: ts_ms(s.get("timestamp")),
        recipient: s
            .get("recipient_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The answer to the `GET` verification handshake: the `hub.challenge` when
/// `hub.mode` is `subscribe` and `hub.verify_token` is the channel's.
pub fn verify_handshake(
    verify_token: &str,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> Result<String> {
    match (mode, token, challenge) {
        (Some("subscribe"), Some(t), Some(c))
            if crate::signature::ct_eq(t.as_bytes(), verify_token.as_bytes()) =>
        {
            Ok(c.to_owned())
        }
        _ => Err(Error::BadSignature {
            header: "hub.verify_token",
        }),
    }
}

fn messages_url(config: &Value) -> Result<String> {
    Ok(format!(
        "{}/{}/{}/messages",
        base_url(config, DEFAULT_BASE),
        version(config),
        config_str(config, "phone_number_id")?
    ))
}

/// `POST /{version}/{phone_number_id}/messages` with a text.
pub fn send_text(config: &Value, to: &str, text: &str) -> Result<HttpRequest> {
    let body = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": to, "type": "text", "text": {"preview_url": false, "body": text}});
    Ok(HttpRequest::post_json(messages_url(config)?, &body)
        .bearer(config_str(config, "access_token")?))
}

/// `POST /{version}/{phone_number_id}/messages` with a document or image by link.
pub fn send_media(
    config: &Value,
    to: &str,
    kind: &str,
    link: &str,
    caption: Option<&str>,
) -> Result<HttpRequest> {
    let mut media = json!({"link": link});
    if let Some(c) = caption {
        media["caption"] = json!(c);
    }
    let body = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": to, "type": kind, kind: media});
    Ok(HttpRequest::post_json(messages_url(config)?, &body)
        .bearer(config_str(config, "access_token")?))
}

/// `POST /{version}/{phone_number_id}/messages` with an approved template, its body
/// parameters filled in order.
pub fn send_template(
    config: &Value,
    to: &str,
    name: &str,
    language: &str,
    params: &[String],
) -> Result<HttpRequest> {
    let mut template = json!({"name": name, "language": {"code": language}});
    if !params.is_empty() {
        let ps: Vec<Value> = params
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        template["components"] = json!([{"type": "body", "parameters": ps}]);
    }
    let body = json!({"messaging_product": "whatsapp", "to": to, "type": "template",
        "template": template});
    Ok(HttpRequest::post_json(messages_url(config)?, &body)
        .bearer(config_str(config, "access_token")?))
}

/// Marks a customer's message as read (the blue ticks).
pub fn mark_read(config: &Value, message_id: &str) -> Result<HttpRequest> {
    let body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": message_id});
    Ok(HttpRequest::post_json(messages_url(config)?, &body)
        .bearer(config_str(config, "access_token")?))
}

/// `GET /{version}/{media_id}`: the media's download URL (read with [`media_url`]).
pub fn media_info(config: &Value, media_id: &str) -> Result<HttpRequest> {
    Ok(HttpRequest::get(format!(
        "{}/{}/{media_id}",
        base_url(config, DEFAULT_BASE),
        version(config)
    ))
    .bearer(config_str(config, "access_token")?))
}

/// The `url` (and `mime_type`) of a [`media_info`] answer.
pub fn media_url(r: &HttpResponse) -> Result<(String, Option<String>)> {
    let v: Value =
        serde_json::from_slice(&r.body).map_err(|e| malformed(P, "media", e.to_string()))?;
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(P, "media.url", "missing"))?;
    Ok((
        url.to_owned(),
        v.get("mime_type")
            .and_then(Value::as_str)
            .map(str::to_owned),
    ))
}

/// Downloads media from its URL (with the bearer token, as Meta requires).
pub fn media_download(config: &Value, url: &str) -> Result<HttpRequest> {
    Ok(HttpRequest::get(url.to_owned()).bearer(config_str(config, "access_token")?))
}

/// `GET /{version}/{business_account_id}/message_templates`.
pub fn list_templates(config: &Value) -> Result<HttpRequest> {
    Ok(HttpRequest::get(format!(
        "{}/{}/{}/message_templates?limit=200",
        base_url(config, DEFAULT_BASE),
        version(config),
        config_str(config, "business_account_id")?
    ))
    .bearer(config_str(config, "access_token")?))
}

/// An approved template (from [`parse_templates`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    /// Name.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`.
    pub status: String,
    /// The body text with `{{1}}` placeholders.
    pub body: String,
}

/// The templates of a [`list_templates`] answer.
pub fn parse_templates(r: &HttpResponse) -> Result<Vec<Template>> {
    let v: Value =
        serde_json::from_slice(&r.body).map_err(|e| malformed(P, "templates", e.to_string()))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(P, "data", "missing"))?;
    Ok(data
        .iter()
        .filter_map(|t| {
            let body = t
                .get("components")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("BODY"))
                })
                .and_then(|c| c.get("text"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some(Template {
                name: t.get("name")?.as_str()?.to_owned(),
                language: t.get("language")?.as_str()?.to_owned(),
                status: t
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("APPROVED")
                    .to_owned(),
                body: body.to_owned(),
            })
        })
        .collect())
}

/// Reads a send's answer: the new message's id, or why not (Graph's
/// `error.code` and `error.message`).
pub fn read_send(r: &HttpResponse) -> Result<String, SendError> {
    crate::meta::read_graph_send(P, r, "/messages/0/id")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() {
        let cfg = json!({"phone_number_id": "106", "access_token": "T", "api_base_url": "http://127.0.0.1:9/"});
        let r = send_text(&cfg, "15550001111", "hi").unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v21.0/106/messages");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer T".into()))
        );
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["text"]["body"], "hi");
        assert_eq!(b["to"], "15550001111");
        let t = send_template(&cfg, "1", "hello_world", "en_US", &["Ann".into()]).unwrap();
        let b: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(
            b["template"]["components"][0]["parameters"][0]["text"],
            "Ann"
        );
        assert_eq!(
            verify_handshake("v", Some("subscribe"), Some("v"), Some("42")).unwrap(),
            "42"
        );
        assert!(verify_handshake("v", Some("subscribe"), Some("x"), Some("42")).is_err());
    }
}
