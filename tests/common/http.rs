//! An authenticated JSON client for Parley's API: async (`Api`) for tests on a tokio
//! runtime, blocking (`Parley::request`/`Parley::http`, which run one request on a
//! current-thread runtime) for the others. A response body that is not JSON comes back
//! as a JSON string (or null when empty).

use serde_json::{Value, json};

/// The body of a response: JSON, its text as a string, or null when empty.
fn body_of(text: String) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// One request against `base` (e.g. `http://127.0.0.1:1234`): its status and body.
pub(crate) async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{base}{path}"),
    );
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    (status, body_of(res.text().await.unwrap()))
}

/// One request with a raw body (bytes and a content type): its status and raw body.
pub(crate) async fn send_bytes(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Vec<u8>) {
    let mut r = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{base}{path}"),
    );
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some((content_type, b)) = body {
        r = r.header("content-type", content_type).body(b);
    }
    let res = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

/// Runs `fut` to completion on a fresh current-thread runtime (for blocking tests).
pub(crate) fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// The async API client of one server, optionally as one user.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
}

impl Api {
    pub(crate) fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            token: None,
        }
    }

    /// The same server as the user whose token this is.
    pub(crate) fn as_user(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Status and body of `method path` with `body`, as this client's user.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        send(
            &self.http,
            &self.base,
            method,
            path,
            self.token.as_deref(),
            body,
        )
        .await
    }

    /// Status and body of `method path` with an explicit token (or none).
    pub(crate) async fn call_as(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        send(&self.http, &self.base, method, path, token, body).await
    }

    /// The body of a request that must succeed (2xx).
    pub(crate) async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// A session token for `email` in `tenant`.
    pub(crate) async fn login(&self, tenant: &str, email: &str, password: &str) -> String {
        let (s, v) = self
            .call_as(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"tenant": tenant, "email": email, "password": password})),
            )
            .await;
        assert_eq!(s, 200, "login {email}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }
}
