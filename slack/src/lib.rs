//! # parley-slack
//!
//! Parley's Slack client for incident swarms (issue #21). Three parts:
//!
//! - [`Client`]: the Web API methods a swarm uses, at `{api_base_url}/api/<method>`
//!   with the bot token (`conversations.create`, `conversations.invite`,
//!   `users.lookupByEmail`, `users.info`, `chat.postMessage`). `api_base_url` is
//!   Slack's (`https://slack.com`) unless a tenant points it at an on-premise gateway
//!   (or a test server).
//! - [`verify`]: the Events API request check — `X-Slack-Signature` is `v0=` + hex
//!   HMAC-SHA256 over `v0:{X-Slack-Request-Timestamp}:{body}` with the signing secret,
//!   compared in constant time; a timestamp more than 5 minutes from now is refused
//!   (replays). [`parse_event`] reads the request: `url_verification` (answer the
//!   challenge) or an `event_callback` with its `event_id` (retries carry the same).
//! - [`seal`] / [`open`]: the bot token and signing secret at rest, sealed with the data
//!   directory's key ring (`parley-vault`).
//!
//! No state, no tasks: the binary's worker drains the store's Slack outbox through
//! [`Client`], and the web layer's hook calls [`verify`] and [`parse_event`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), parley_slack::Error> {
//! let slack = parley_slack::Client::new("https://slack.com", "xoxb-…")?;
//! let ch = slack.create_channel(&parley_slack::channel_name("Login outage", "0190ab")).await?;
//! slack.post_message(&ch.id, "Investigating", None).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

/// Everything that can go wrong talking to Slack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not reach Slack or its answer was unreadable (try again later).
    #[error("slack unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// Slack answered with an HTTP error status (5xx, 429: try again later).
    #[error("slack answered HTTP {status}")]
    Http {
        /// The status.
        status: u16,
        /// Seconds Slack asked to wait (429).
        retry_after: Option<u64>,
    },
    /// Slack answered `{"ok": false, "error": …}`.
    #[error("slack refused {method}: {error}")]
    Api {
        /// The method called.
        method: &'static str,
        /// Slack's error code, e.g. `name_taken`, `invalid_auth`.
        error: String,
    },
    /// The base URL is not usable.
    #[error("invalid api_base_url: {0}")]
    BaseUrl(String),
    /// An Events API request failed verification.
    #[error("slack request refused: {0}")]
    Verify(VerifyError),
    /// An Events API body is not one we understand.
    #[error("unreadable slack event: {0}")]
    Event(#[from] serde_json::Error),
    /// Sealing or opening a secret failed.
    #[error("secret: {0}")]
    Secret(String),
}

impl Error {
    /// Whether trying again later may succeed (Slack down, rate limited, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Http { status, .. } => *status == 429 || *status >= 500,
            Error::Api { error, .. } => matches!(
                error.as_str(),
                "ratelimited"
                    | "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "request_timeout"
            ),
            _ => false,
        }
    }
}

/// Why an Events API request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `X-Slack-Signature` or `X-Slack-Request-Timestamp`, or not in the v0 format.
    #[error("missing or malformed signature headers")]
    Malformed,
    /// The timestamp is more than 5 minutes away from now (a replay).
    #[error("stale timestamp")]
    Stale,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The oldest (or furthest in the future) a request timestamp may be, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// The v0 signature of `body` sent at `timestamp` (what Slack puts in
/// `X-Slack-Signature`).
pub fn sign(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let out = mac(signing_secret, timestamp, body).finalize().into_bytes();
    let mut s = String::with_capacity(3 + out.len() * 2);
    s.push_str("v0=");
    for b in out {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn mac(signing_secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(signing_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks an Events API request: `signature` and `timestamp` are the
/// `X-Slack-Signature` and `X-Slack-Request-Timestamp` headers, `now_secs` the Unix
/// time now.
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(VerifyError::Malformed);
    };
    let t: i64 = ts.trim().parse().map_err(|_| VerifyError::Malformed)?;
    if (now_secs - t).abs() > MAX_SKEW_SECS {
        return Err(VerifyError::Stale);
    }
    let hex = sig.strip_prefix("v0=").ok_or(VerifyError::Malformed)?;
    let want = unhex(hex).ok_or(VerifyError::Malformed)?;
    mac(signing_secret, ts.trim(), body)
        .verify_slice(&want)
        .map_err(|_| VerifyError::BadSignature)
}

/// An Events API request body.
#[derive(Debug, Clone, PartialEq)]
pub enum EventRequest {
    /// Slack checks the endpoint: answer with the challenge.
    UrlVerification {
        /// Echo this back.
        challenge: String,
    },
    /// An event.
    Callback {
        /// Unique per event; a retry carries the same.
        event_id: String,
        /// The event.
        event: Event,
    },
    /// Anything else (acknowledged and ignored).
    Other,
}

/// The events a swarm reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A person wrote in a channel (or a thread of it).
    Message {
        /// The channel id.
        channel: String,
        /// The Slack user id.
        user: String,
        /// The text.
        text: String,
        /// The message's timestamp (its id in the channel).
        ts: String,
        /// The thread it belongs to, if any.
        thread_ts: Option<String>,
    },
    /// Something else: a bot's message (ours included), an edit, a join, another type.
    Ignored,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    event: Option<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    subtype: Option<String>,
    bot_id: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    text: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
}

/// Reads an Events API body (after [`verify`]).
pub fn parse_event(body: &[u8]) -> Result<EventRequest> {
    let raw: RawRequest = serde_json::from_slice(body)?;
    Ok(match raw.kind.as_str() {
        "url_verification" => EventRequest::UrlVerification {
            challenge: raw.challenge.unwrap_or_default(),
        },
        "event_callback" => {
            let event = match raw.event {
                Some(RawEvent {
                    kind,
                    subtype: None,
                    bot_id: None,
                    channel: Some(channel),
                    user: Some(user),
                    text: Some(text),
                    ts: Some(ts),
                    thread_ts,
                }) if kind == "message" && !text.trim().is_empty() => Event::Message {
                    channel,
                    user,
                    text,
                    ts,
                    thread_ts,
                },
                _ => Event::Ignored,
            };
            EventRequest::Callback {
                event_id: raw.event_id.unwrap_or_default(),
                event,
            }
        }
        _ => EventRequest::Other,
    })
}

/// A valid, recognisable channel name for an incident: `inc-` + the title's words
/// (lower case, `a-z0-9-`) + the end of the incident id; at most 80 characters, as
/// Slack requires.
pub fn channel_name(title: &str, incident_id: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(50).collect();
    let tail: String = incident_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let slug = slug.trim_end_matches('-');
    let name = if slug.is_empty() {
        format!("inc-{tail}")
    } else {
        format!("inc-{slug}-{tail}")
    };
    name.chars().take(80).collect()
}

/// A channel Slack created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The Web API, with one bot token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client for `{api_base_url}/api/<method>`.
    pub fn new(api_base_url: &str, bot_token: &str) -> Result<Client> {
        let base = api_base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::BaseUrl(base));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client {
            http,
            base,
            token: bot_token.to_owned(),
        })
    }

    async fn call(&self, method: &'static str, body: Value, form: bool) -> Result<Value> {
        let url = format!("{}/api/{method}", self.base);
        let req = self.http.post(url).bearer_auth(&self.token);
        let req = if form {
            let pairs: Vec<(String, String)> = body
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let encoded = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            req.header("content-type", "application/x-www-form-urlencoded")
                .body(encoded)
        } else {
            req.header("content-type", "application/json; charset=utf-8")
                .body(body.to_string())
        };
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            return Err(Error::Http {
                status: status.as_u16(),
                retry_after,
            });
        }
        let v: Value = resp.json().await?;
        if v["ok"].as_bool() == Some(true) {
            Ok(v)
        } else {
            Err(Error::Api {
                method,
                error: v["error"].as_str().unwrap_or("unknown").to_owned(),
            })
        }
    }

    /// `conversations.create` (a public channel).
    pub async fn create_channel(&self, name: &str) -> Result<Channel> {
        let v = self
            .call(
                "conversations.create",
                json!({"name": name, "is_private": false}),
                false,
            )
            .await?;
        Ok(Channel {
            id: v["channel"]["id"].as_str().unwrap_or_default().to_owned(),
            name: v["channel"]["name"].as_str().unwrap_or(name).to_owned(),
        })
    }

    /// `conversations.invite` (user ids, at most 1000).
    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<()> {
        self.call(
            "conversations.invite",
            json!({"channel": channel, "users": users.join(",")}),
            false,
        )
        .await
        .map(|_| ())
    }

    /// `users.lookupByEmail`: the Slack user id, `None` when no user has it.
    pub async fn lookup_by_email(&self, email: &str) -> Result<Option<String>> {
        match self
            .call("users.lookupByEmail", json!({"email": email}), true)
            .await
        {
            Ok(v) => Ok(v["user"]["id"].as_str().map(str::to_owned)),
            Err(Error::Api { error, .. }) if error == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `users.info`: the user's email (to map them to a Parley user), if shared.
    pub async fn user_email(&self, user: &str) -> Result<Option<String>> {
        let v = self.call("users.info", json!({"user": user}), true).await?;
        Ok(v["user"]["profile"]["email"].as_str().map(str::to_owned))
    }

    /// `chat.postMessage`, optionally into a thread.
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<String> {
        let mut body = json!({"channel": channel, "text": text});
        if let Some(t) = thread_ts {
            body["thread_ts"] = json!(t);
        }
        let v = self.call("chat.postMessage", body, false).await?;
        Ok(v["ts"].as_str().unwrap_or_default().to_owned())
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Seals a secret for storage with the key ring: `v1:` + base64 of a vault stream.
pub fn seal(ring: &parley_vault::KeyRing, secret: &str) -> Result<String> {
    let mut w = parley_vault::SealedWriter::new(Vec::new(), ring)
        .map_err(|e| Error::Secret(e.to_string()))?;
    std::io::Write::write_all(&mut w, secret.as_bytes())
        .map_err(|e| Error::Secret(e.to_string()))?;
    let bytes = w.finish().map_err(|e| Error::Secret(e.to_string()))?;
    Ok(format!(
        "v1:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Opens a secret sealed by [`seal`].
pub fn open(ring: &parley_vault::KeyRing, sealed: &str) -> Result<String> {
    let b64 = sealed
        .strip_prefix("v1:")
        .ok_or_else(|| Error::Secret("not a sealed secret".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| Error::Secret(e.to_string()))?;
    let mut r = parley_vault::SealedReader::new(std::io::Cursor::new(bytes), ring)
        .map_err(|e| Error::Secret(e.to_string()))?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut r, &mut out).map_err(|e| Error::Secret(e.to_string()))?;
    Ok(out)
}

/// A secret as stored: sealed with `ring` when there is one (the binary always has one:
/// `<data>/keys/`), else kept as `plain:` + the secret (embedded test servers without
/// a key ring).
pub fn seal_stored(ring: Option<&parley_vault::KeyRing>, secret: &str) -> Result<String> {
    match ring {
        Some(r) => seal(r, secret),
        None => Ok(format!("plain:{secret}")),
    }
}

/// Reads a secret stored by [`seal_stored`].
pub fn open_stored(ring: Option<&parley_vault::KeyRing>, stored: &str) -> Result<String> {
    if let Some(p) = stored.strip_prefix("plain:") {
        return Ok(p.to_owned());
    }
    match ring {
        Some(r) => open(r, stored),
        None => Err(Error::Secret("sealed, and no key ring to open it".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's documented example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slack_documented_signature_example() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
        let now = 1_531_420_618 + 10;
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now),
            Ok(())
        );
        // A changed body, another secret, a stale or future timestamp, missing headers.
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), b"token=x", now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify("other", Some(TS), Some(SIG), BODY.as_bytes(), now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(
                SECRET,
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                1_531_420_618 - 400
            ),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY.as_bytes(), now),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v1=abcd"), BODY.as_bytes(), now),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v0=zz"), BODY.as_bytes(), now),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn events_are_read_and_bots_ignored() {
        let v = parse_event(br#"{"token":"x","challenge":"abc123","type":"url_verification"}"#)
            .unwrap();
        assert_eq!(
            v,
            EventRequest::UrlVerification {
                challenge: "abc123".into()
            }
        );
        let m = parse_event(br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"rolled back","ts":"1.2","thread_ts":"1.0"}}"#).unwrap();
        assert_eq!(
            m,
            EventRequest::Callback {
                event_id: "Ev1".into(),
                event: Event::Message {
                    channel: "C1".into(),
                    user: "U1".into(),
                    text: "rolled back".into(),
                    ts: "1.2".into(),
                    thread_ts: Some("1.0".into())
                }
            }
        );
        let bot = parse_event(br#"{"type":"event_callback","event_id":"Ev2","event":{"type":"message","channel":"C1","bot_id":"B1","user":"U9","text":"our own post","ts":"1.3"}}"#).unwrap();
        assert!(matches!(
            bot,
            EventRequest::Callback {
                event: Event::Ignored,
                ..
            }
        ));
        assert!(parse_event(b"not json").is_err());
    }

    #[test]
    fn channel_names_are_valid() {
        let n = channel_name(
            "Login outage: EU / 502s!",
            "0190ab12-3456-7abc-8def-0123456789ab",
        );
        assert_eq!(n, "inc-login-outage-eu-502s-456789ab");
        let long = channel_name(&"x".repeat(200), "id");
        assert!(long.len() <= 80);
        assert_eq!(channel_name("!!!", "AB"), "inc-ab");
        for n in [n, long] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }

    #[test]
    fn secrets_round_trip_sealed() {
        let ring = parley_vault::KeyRing::new(1, [7; 32]);
        let s = seal(&ring, "xoxb-secret").unwrap();
        assert!(!s.contains("xoxb"));
        assert_eq!(open(&ring, &s).unwrap(), "xoxb-secret");
        assert!(open(&parley_vault::KeyRing::new(1, [8; 32]), &s).is_err());
    }
}
