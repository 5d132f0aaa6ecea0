//! # parley-messaging
//!
//! The messaging providers' side of Parley's conversation channels (issue #19): for
//! each provider, the check of its webhook signature ([`signature`]), the parser of
//! its webhook payloads into normalised [`Event`]s, and the builder of its API
//! requests (send a message, a template, mark as read, fetch media, register the
//! webhook) as plain [`HttpRequest`] values with the reader of their answers. None of
//! that does I/O: the caller (the webhook handlers in `parley-web`, the delivery
//! adapters in the binary) passes bytes in and gets values out. [`client`] is the one
//! thin I/O companion: it sends an [`HttpRequest`] with `reqwest` and hands back an
//! [`HttpResponse`].
//!
//! ```
//! use parley_messaging::{signature, whatsapp};
//! let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
//! let header = signature::meta_header("app-secret", body);
//! assert!(signature::verify_meta("app-secret", body, Some(&header)).is_ok());
//! assert!(whatsapp::parse_webhook(body).unwrap().is_empty());
//! ```
//!
//! Providers: [`whatsapp`] (WhatsApp Cloud API; Messenger and Instagram share its
//! Meta webhook and signature: [`meta`]), [`telegram`], [`twilio`] (SMS/MMS),
//! [`x`] (X direct messages), [`api`] (the generic signed-webhook channel).

pub mod api;
pub mod client;
pub mod meta;
pub mod signature;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;
pub mod x;

use serde::Serialize;

/// What can go wrong with a provider's input or answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The signature header is missing.
    #[error("the {header} header is missing")]
    MissingSignature {
        /// The header expected.
        header: &'static str,
    },
    /// The signature does not match the body and the channel's secret.
    #[error("the {header} signature does not match")]
    BadSignature {
        /// The header checked.
        header: &'static str,
    },
    /// The payload is not what the provider sends.
    #[error("malformed {provider} payload at {at}: {reason}")]
    Malformed {
        /// Which provider's shape.
        provider: &'static str,
        /// Where in the payload (a JSON path or a form field).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The channel's configuration lacks a field needed here.
    #[error("the channel configuration has no {field}")]
    Config {
        /// The field.
        field: &'static str,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed(
    provider: &'static str,
    at: impl Into<String>,
    reason: impl Into<String>,
) -> Error {
    Error::Malformed {
        provider,
        at: at.into(),
        reason: reason.into(),
    }
}

/// A normalised webhook event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A customer's message.
    Message(InboundMessage),
    /// What happened to a message Parley sent.
    Status(StatusUpdate),
}

/// A customer's message as a provider delivers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InboundMessage {
    /// The provider's message id (the deduplication key).
    pub id: String,
    /// The conversation on the provider (a phone number, a chat id, a user id): where
    /// replies go.
    pub thread: String,
    /// The sender's id on the channel (a WhatsApp number, a page-scoped id, …).
    pub from: String,
    /// The sender's display name, when the provider gives one.
    pub name: Option<String>,
    /// The text (a caption, a location rendered as text, an interactive reply's title).
    pub text: String,
    /// Media to fetch.
    pub media: Vec<MediaRef>,
    /// When the provider says it was sent (Unix milliseconds).
    pub at_ms: Option<i64>,
    /// The provider's message type (`text`, `image`, `location`, `interactive`, …).
    pub kind: String,
}

/// Media attached to an inbound message: an id to resolve through the provider's API
/// or a URL to download.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaRef {
    /// The media id (WhatsApp, Telegram `file_id`) or the download URL (Twilio, Meta).
    pub reference: String,
    /// Whether `reference` is a URL to download directly.
    pub is_url: bool,
    /// The MIME type, when given.
    pub mime: Option<String>,
    /// The file name, when given.
    pub filename: Option<String>,
}

/// A delivery receipt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusUpdate {
    /// The provider's id of the message Parley sent.
    pub id: String,
    /// What happened.
    pub status: DeliveryStatus,
    /// The provider's error code and text, for `failed`.
    pub error: Option<String>,
    /// When (Unix milliseconds).
    pub at_ms: Option<i64>,
    /// The recipient (a phone number, a chat id).
    pub recipient: Option<String>,
}

/// A delivery receipt's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by the provider.
    Sent,
    /// On the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// Given up on by the provider.
    Failed,
}

/// An HTTP request to a provider's API, to be sent by [`client`] (or anything else).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub(crate) fn get(url: String) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn post_json(url: String, body: &serde_json::Value) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub(crate) fn post_form(url: String, fields: &[(&str, &str)]) -> HttpRequest {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            ser.append_pair(k, v);
        }
        HttpRequest {
            method: "POST",
            url,
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: ser.finish().into_bytes(),
        }
    }

    pub(crate) fn bearer(mut self, token: &str) -> HttpRequest {
        self.headers
            .push(("authorization".into(), format!("Bearer {token}")));
        self
    }

    pub(crate) fn header(mut self, name: &str, value: String) -> HttpRequest {
        self.headers.push((name.to_owned(), value));
        self
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// The status code (0: no answer — a connection error).
    pub status: u16,
    /// The `Retry-After` header in seconds, when given.
    pub retry_after_s: Option<u64>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Worth trying again later (429, 5xx, no answer).
    pub retryable: bool,
    /// The provider's error code and message, shown on the message.
    pub reason: String,
    /// Seconds the provider asked to wait.
    pub retry_after_s: Option<u64>,
}

impl SendError {
    /// Classifies a failed answer: 429, 5xx and no answer are retryable; the rest is
    /// permanent. `detail` is the provider's error text read from the body.
    pub fn from_response(provider: &str, r: &HttpResponse, detail: Option<String>) -> SendError {
        let retryable = r.status == 0 || r.status == 429 || r.status >= 500;
        let what = if r.status == 0 {
            "no answer".to_owned()
        } else {
            format!("HTTP {}", r.status)
        };
        SendError {
            retryable,
            reason: match detail {
                Some(d) => format!("{provider} {what}: {d}"),
                None => format!("{provider} {what}"),
            },
            retry_after_s: r.retry_after_s,
        }
    }
}

/// The base URL of a provider's API: the channel's `api_base_url` or the provider's
/// public one, without a trailing slash.
pub(crate) fn base_url(config: &serde_json::Value, default: &str) -> String {
    config
        .get("api_base_url")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_owned()
}

pub(crate) fn config_str<'a>(
    config: &'a serde_json::Value,
    field: &'static str,
) -> Result<&'a str> {
    config
        .get(field)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Error::Config { field })
}
