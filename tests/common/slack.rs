//! A Slack-compatible server on loopback (issue #21): the Web API methods Parley's swarm
//! calls, at `/api/<method>`, answering in Slack's documented shapes (`{"ok": true, …}`
//! or `{"ok": false, "error": …}`, `invalid_auth` for another bot token, form-encoded
//! `users.lookupByEmail` / `users.info`, JSON for the rest), recording every call; and
//! the Events API's side: [`SlackServer::send_event`] POSTs a signed request to Parley
//! the way Slack does (`X-Slack-Request-Timestamp`, `X-Slack-Signature` v0,
//! `X-Slack-Retry-Num` on retries). `fail_next(method, n)` answers HTTP 503 n times
//! (Slack down).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The bot token the server accepts.
pub(crate) const BOT_TOKEN: &str = "xoxb-test-token";
/// The signing secret events are signed with.
pub(crate) const SIGNING_SECRET: &str = "test-signing-secret";

#[derive(Default)]
struct Inner {
    calls: Vec<(String, Value)>,
    fail: HashMap<String, usize>,
    /// Slack users: id → email.
    users: HashMap<String, String>,
    channels: Vec<String>,
}

/// The running server.
#[derive(Clone)]
pub(crate) struct SlackServer {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:<port>` (Parley's `api_base_url`).
    pub(crate) base: String,
    http: reqwest::Client,
}

impl SlackServer {
    /// Starts on an ephemeral loopback port with the workspace's users (id, email).
    pub(crate) async fn start(users: &[(&str, &str)]) -> SlackServer {
        let inner = Arc::new(Mutex::new(Inner {
            users: users
                .iter()
                .map(|(i, e)| ((*i).to_owned(), (*e).to_owned()))
                .collect(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/{method}", axum::routing::post(api))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SlackServer {
            inner,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Every call so far: (method, arguments).
    pub(crate) fn calls(&self) -> Vec<(String, Value)> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The calls of one method.
    pub(crate) fn calls_of(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(m, _)| m == method)
            .map(|(_, v)| v)
            .collect()
    }

    /// Answers `method` with HTTP 503 the next `n` times.
    pub(crate) fn fail_next(&self, method: &str, n: usize) {
        self.inner.lock().unwrap().fail.insert(method.to_owned(), n);
    }

    /// POSTs an Events API request to `url` as Slack does: signed with `secret` at
    /// `timestamp` (Unix seconds), with `X-Slack-Retry-Num` when `retry` is given.
    pub(crate) async fn send_event(
        &self,
        url: &str,
        secret: &str,
        timestamp: i64,
        body: &Value,
        retry: Option<u32>,
    ) -> (u16, String) {
        let body = body.to_string();
        let ts = timestamp.to_string();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", &ts)
            .header(
                "x-slack-signature",
                parley_slack::sign(secret, &ts, body.as_bytes()),
            );
        if let Some(n) = retry {
            req = req
                .header("x-slack-retry-num", n.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

fn form(body: &[u8]) -> Value {
    let mut m = serde_json::Map::new();
    for pair in String::from_utf8_lossy(body).split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            let v = percent_decode(v);
            m.insert(k.to_owned(), Value::String(v));
        }
    }
    Value::Object(m)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A valid Slack channel name: lower case letters, digits, `-` and `_`, at most 80.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

async fn api(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ok_auth = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {BOT_TOKEN}"));
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let args: Value = if is_form {
        form(&body)
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut g = inner.lock().unwrap();
    if let Some(n) = g.fail.get_mut(&method)
        && *n > 0
    {
        *n -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    g.calls.push((method.clone(), args.clone()));
    if !ok_auth {
        return axum::Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    let answer = match method.as_str() {
        "conversations.create" => {
            let name = args["name"].as_str().unwrap_or_default().to_owned();
            if !valid_name(&name) {
                json!({"ok": false, "error": "invalid_name_specials"})
            } else if g.channels.contains(&name) {
                json!({"ok": false, "error": "name_taken"})
            } else {
                g.channels.push(name.clone());
                let id = format!("C{:08}", g.channels.len());
                json!({"ok": true, "channel": {"id": id, "name": name, "is_channel": true}})
            }
        }
        "conversations.invite" => json!({"ok": true, "channel": {"id": args["channel"]}}),
        "users.lookupByEmail" => {
            let email = args["email"].as_str().unwrap_or_default();
            match g.users.iter().find(|(_, e)| e.as_str() == email) {
                Some((id, _)) => json!({"ok": true, "user": {"id": id}}),
                None => json!({"ok": false, "error": "users_not_found"}),
            }
        }
        "users.info" => {
            let id = args["user"].as_str().unwrap_or_default();
            match g.users.get(id) {
                Some(email) => json!({"ok": true, "user": {"id": id, "profile": {"email": email}}}),
                None => json!({"ok": false, "error": "user_not_found"}),
            }
        }
        "chat.postMessage" => {
            json!({"ok": true, "channel": args["channel"], "ts": format!("{}.000100", g.calls.len())})
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    axum::Json(answer).into_response()
}
