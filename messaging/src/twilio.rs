//! Twilio-compatible SMS/MMS: the inbound message webhook and the status callback
//! (form posts signed with `X-Twilio-Signature`, [`crate::signature::verify_twilio`]),
//! the Messages REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`, basic
//! auth), and the STOP / START / HELP keywords. Configuration: `account_sid`,
//! `auth_token`, `from` (or `messaging_service_sid`), `api_base_url` (default
//! `https://api.twilio.com`).

use base64::Engine as _;
use serde_json::Value;

use crate::{
    DeliveryStatus, Event, HttpRequest, HttpResponse, InboundMessage, MediaRef, Result, SendError,
    StatusUpdate, base_url, config_str, malformed,
};

/// Twilio's public API.
pub const DEFAULT_BASE: &str = "https://api.twilio.com";
/// Longest body Parley sends (Twilio splits longer ones itself; 1,600 is its limit).
pub const MAX_TEXT_CHARS: usize = 1600;

const P: &str = "twilio";

/// The form fields of a POST body, in order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Parses an inbound message or a status callback (a form with `MessageStatus` and
/// no `Body`).
pub fn parse_webhook(params: &[(String, String)]) -> Result<Vec<Event>> {
    let sid = get(params, "MessageSid")
        .or_else(|| get(params, "SmsMessageSid"))
        .or_else(|| get(params, "SmsSid"))
        .ok_or_else(|| malformed(P, "MessageSid", "missing"))?;
    if let Some(st) = get(params, "MessageStatus").or_else(|| get(params, "SmsStatus"))
        && get(params, "Body").is_none()
        && get(params, "NumMedia").is_none()
    {
        let status = match st {
            "sent" | "queued" | "accepted" | "sending" | "scheduled" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" | "undelivered" | "canceled" => DeliveryStatus::Failed,
            other => {
                return Err(malformed(
                    P,
                    "MessageStatus",
                    format!("unknown status {other}"),
                ));
            }
        };
        let error = get(params, "ErrorCode").map(|c| match get(params, "ErrorMessage") {
            Some(m) => format!("{c} {m}"),
            None => c.to_owned(),
        });
        return Ok(vec![Event::Status(StatusUpdate {
            id: sid.to_owned(),
            status,
            error,
            at_ms: None,
            recipient: get(params, "To").map(str::to_owned),
        })]);
    }
    let from = get(params, "From").ok_or_else(|| malformed(P, "From", "missing"))?;
    let n: usize = get(params, "NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let media = (0..n.min(10))
        .filter_map(|i| {
            Some(MediaRef {
                reference: get(params, &format!("MediaUrl{i}"))?.to_owned(),
                is_url: true,
                mime: get(params, &format!("MediaContentType{i}")).map(str::to_owned),
                filename: None,
            })
        })
        .collect();
    Ok(vec![Event::Message(InboundMessage {
        id: sid.to_owned(),
        thread: from.to_owned(),
        from: from.to_owned(),
        name: None,
        text: get(params, "Body").unwrap_or_default().to_owned(),
        media,
        at_ms: None,
        kind: if n > 0 { "mms".into() } else { "sms".into() },
    })])
}

/// What an SMS keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop sending (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT).
    Stop,
    /// Sending allowed again (START, YES, UNSTOP).
    Start,
    /// Help asked (HELP, INFO).
    Help,
}

/// The keyword a message body is, if it is one (the whole body, any case).
pub fn keyword(body: &str) -> Option<Keyword> {
    match body.trim().to_ascii_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "OPTOUT" => {
            Some(Keyword::Stop)
        }
        "START" | "YES" | "UNSTOP" => Some(Keyword::Start),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// `POST /2010-04-01/Accounts/{account_sid}/Messages.json` with `To`, `From` (or
/// `MessagingServiceSid`), `Body`, and `StatusCallback` when given.
pub fn send_message(
    config: &Value,
    to: &str,
    body: &str,
    status_callback: Option<&str>,
) -> Result<HttpRequest> {
    let sid = config_str(config, "account_sid")?;
    let token = config_str(config, "auth_token")?;
    let url = format!(
        "{}/2010-04-01/Accounts/{sid}/Messages.json",
        base_url(config, DEFAULT_BASE)
    );
    let mut fields: Vec<(&str, &str)> = vec![("To", to), ("Body", body)];
    match (
        config_str(config, "from"),
        config_str(config, "messaging_service_sid"),
    ) {
        (Ok(from), _) => fields.push(("From", from)),
        (_, Ok(ms)) => fields.push(("MessagingServiceSid", ms)),
        (Err(e), Err(_)) => return Err(e),
    }
    if let Some(cb) = status_callback {
        fields.push(("StatusCallback", cb));
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
    Ok(HttpRequest::post_form(url, &fields).header("authorization", format!("Basic {basic}")))
}

/// Reads a Messages API answer: the `sid`, or the error `code` and `message`.
pub fn read_send(r: &HttpResponse) -> Result<String, SendError> {
    let v: Option<Value> = serde_json::from_slice(&r.body).ok();
    if (200..300).contains(&r.status) {
        return v
            .as_ref()
            .and_then(|v| v.get("sid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(SendError {
                retryable: false,
                reason: "twilio: the answer has no sid".into(),
                retry_after_s: None,
            });
    }
    let detail = v.as_ref().map(|v| {
        format!(
            "error {}: {}",
            v.get("code").map(Value::to_string).unwrap_or_default(),
            v.get("message").and_then(Value::as_str).unwrap_or_default()
        )
    });
    Err(SendError::from_response(P, r, detail))
}

/// Downloads MMS media (Twilio's media URLs take the account's basic auth).
pub fn media_download(config: &Value, url: &str) -> HttpRequest {
    let req = HttpRequest::get(url.to_owned());
    match (
        config_str(config, "account_sid"),
        config_str(config, "auth_token"),
    ) {
        (Ok(sid), Ok(token)) => {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
            req.header("authorization", format!("Basic {basic}"))
        }
        _ => req,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keywords_and_status_callbacks() {
        assert_eq!(keyword(" stop "), Some(Keyword::Stop));
        assert_eq!(keyword("Start"), Some(Keyword::Start));
        assert_eq!(keyword("help"), Some(Keyword::Help));
        assert_eq!(keyword("stop it"), None);
        let p = form_params(b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B1555");
        let e = parse_webhook(&p).unwrap();
        match &e[0] {
            Event::Status(s) => {
                assert_eq!(s.status, DeliveryStatus::Failed);
                assert_eq!(s.error.as_deref(), Some("30003"));
            }
            other => panic!("{other:?}"),
        }
    }
}
