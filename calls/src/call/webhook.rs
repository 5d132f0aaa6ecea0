//! The IVR `http` node on live calls: the interpreter's `HttpRequest` is sent by a
//! task spawned off the call task (the call never waits on the network) and its outcome
//! comes back to the call as an interpreter event (`WebhookResult` / `WebhookFailed`).
//!
//! Rules: only `http` and `https` URLs; no redirects followed (a 3xx is a non-2xx answer,
//! so the flow takes its error exit); the node's timeout bounds the whole exchange (and
//! the interpreter's own timer takes the error exit if the answer is late anyway); a
//! response body is read up to [`MAX_RESPONSE`] bytes and must be JSON (or empty) on a
//! 2xx; a body is sent as `application/json` unless the node sets a `Content-Type`.
//! TLS is rustls with the Mozilla roots (webpki-roots); nothing is read from the system.
//! Every request goes through the SSRF guard ([`crate::http_guard`]): loopback, private,
//! link-local, metadata and unspecified addresses are refused unless the administrator
//! allowed them (`PARLEY_HTTP_ALLOW`), whether written in the URL or resolved from a name.

use std::time::Duration;

use parley_ivr::Event;
use parley_ivr::model::HttpMethod;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::http_guard::HttpGuard;

/// The largest response body read; a longer one fails the request.
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

/// Webhook requests of one call still in flight; dropping it aborts them.
#[derive(Default)]
pub(crate) struct Webhooks {
    tasks: JoinSet<Event>,
}

/// One request as the interpreter asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) id: u64,
    pub(crate) method: HttpMethod,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<String>,
    pub(crate) timeout: Duration,
}

impl Webhooks {
    /// Starts `req` on its own task, through `guard`.
    pub(crate) fn spawn(&mut self, guard: HttpGuard, req: Request) {
        self.tasks.spawn(async move {
            let id = req.id;
            match send(&guard, req).await {
                Ok((status, json)) => Event::WebhookResult { id, status, json },
                Err(reason) => Event::WebhookFailed { id, reason },
            }
        });
    }

    /// The next finished request's event; pending forever while none runs.
    pub(crate) async fn next(&mut self) -> Event {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(ev)) => return ev,
                Some(Err(e)) => tracing::warn!(error = %e, "webhook task failed"),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// Sends one request: `(status, JSON body)` for any HTTP answer that could be read
/// (`null` when empty or, on a non-2xx, not JSON); an error text otherwise.
pub(crate) async fn send(guard: &HttpGuard, req: Request) -> Result<(u16, Value), String> {
    let url = guard.check_url(&req.url)?;
    let client = guard
        .client()
        .ok_or_else(|| "outbound HTTP client unavailable".to_owned())?;
    let method = match req.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &req.headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("bad header name {k:?}"))?;
        let value = reqwest::header::HeaderValue::from_str(v)
            .map_err(|_| format!("bad value for header {k:?}"))?;
        headers.append(name, value);
    }
    if req.body.is_some() && !headers.contains_key(reqwest::header::CONTENT_TYPE) {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
    }
    let mut builder = client
        .request(method, url)
        .headers(headers)
        .timeout(req.timeout.max(Duration::from_millis(1)));
    if let Some(b) = req.body {
        builder = builder.body(b);
    }
    let exchange = async {
        let mut res = builder.send().await.map_err(crate::http_guard::describe)?;
        let status = res.status().as_u16();
        if res
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE as u64)
        {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(crate::http_guard::describe)? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(format!("response larger than {MAX_RESPONSE} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    };
    // reqwest's timeout covers the body too; this bound is belt and braces.
    let (status, body) = tokio::time::timeout(req.timeout, exchange)
        .await
        .map_err(|_| "timed out".to_owned())??;
    let json = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) if !(200..300).contains(&status) => Value::Null,
            Err(e) => return Err(format!("response is not JSON: {e}")),
        }
    };
    Ok((status, json))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};

    /// A real HTTP server on 127.0.0.1 (ephemeral port) with the answers the tests need.
    async fn server() -> String {
        let app = Router::new()
            .route(
                "/echo",
                post(|h: HeaderMap, body: String| async move {
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    axum::Json(serde_json::json!({
                        "got": v,
                        "ct": h.get("content-type").and_then(|v| v.to_str().ok()),
                        "key": h.get("x-key").and_then(|v| v.to_str().ok()),
                    }))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "{}"
                }),
            )
            .route("/html", get(|| async { "<html>hi</html>" }))
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "<h1>no</h1>") }),
            )
            .route("/big", get(|| async { "x".repeat(MAX_RESPONSE + 1) }))
            .route(
                "/redirect",
                get(|| async { (StatusCode::FOUND, [("location", "/echo")], "") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// The guard with the test servers' loopback address allowed (as an administrator
    /// would with `PARLEY_HTTP_ALLOW=127.0.0.1/32`).
    fn local() -> HttpGuard {
        HttpGuard::new(crate::http_guard::Cidr::parse_list("127.0.0.1/32").unwrap())
    }

    fn req(url: String, method: HttpMethod) -> Request {
        Request {
            id: 7,
            method,
            url,
            headers: vec![("X-Key".into(), "s3cret".into())],
            body: None,
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn posts_json_and_reads_the_json_answer() {
        let base = server().await;
        let mut r = req(format!("{base}/echo"), HttpMethod::Post);
        r.body = Some(r#"{"number": "+15550123"}"#.into());
        let (status, json) = send(&local(), r).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(json["got"]["number"], "+15550123");
        assert_eq!(json["ct"], "application/json");
        assert_eq!(json["key"], "s3cret");
    }

    #[tokio::test]
    async fn failures_are_errors_with_a_reason() {
        let base = server().await;
        let mut slow = req(format!("{base}/slow"), HttpMethod::Get);
        slow.timeout = Duration::from_millis(300);
        assert_eq!(send(&local(), slow).await.unwrap_err(), "timed out");
        let html = send(&local(), req(format!("{base}/html"), HttpMethod::Get)).await;
        assert!(html.unwrap_err().contains("not JSON"));
        let big = send(&local(), req(format!("{base}/big"), HttpMethod::Get)).await;
        assert!(big.unwrap_err().contains("larger than"));
        for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://h/"] {
            let e = send(&local(), req(url.into(), HttpMethod::Get)).await;
            assert!(e.unwrap_err().contains("not allowed"), "{url}");
        }
        // A closed port.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = send(&local(), req(format!("http://{closed}/"), HttpMethod::Get)).await;
        assert_eq!(e.unwrap_err(), "connection failed");
    }

    #[tokio::test]
    async fn non_2xx_and_redirects_are_answers_for_the_error_exit() {
        let base = server().await;
        let (s, j) = send(&local(), req(format!("{base}/missing"), HttpMethod::Get))
            .await
            .unwrap();
        assert_eq!((s, j), (404, Value::Null));
        let (s, _) = send(&local(), req(format!("{base}/redirect"), HttpMethod::Get))
            .await
            .unwrap();
        assert_eq!(s, 302, "redirects are not followed");
    }

    #[tokio::test]
    async fn spawned_requests_come_back_as_interpreter_events() {
        let base = server().await;
        let mut w = Webhooks::default();
        let mut slow = req(format!("{base}/slow"), HttpMethod::Get);
        slow.id = 1;
        slow.timeout = Duration::from_millis(200);
        w.spawn(local(), slow);
        match w.next().await {
            Event::WebhookFailed { id: 1, reason } => assert_eq!(reason, "timed out"),
            other => panic!("{other:?}"),
        }
        let mut ok = req(format!("{base}/echo"), HttpMethod::Post);
        ok.body = Some("{}".into());
        w.spawn(local(), ok);
        match w.next().await {
            Event::WebhookResult {
                id: 7,
                status: 200,
                json,
            } => {
                assert_eq!(json["key"], "s3cret")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Regression (SSRF): a tenant's flow could make Parley call its own loopback
    /// services and the cloud metadata service.
    #[tokio::test]
    async fn ssrf_to_loopback_and_metadata_is_refused_by_default() {
        let base = server().await;
        let port = base.rsplit(':').next().unwrap().to_owned();
        let guard = HttpGuard::default();
        // The server answers when allowed, so a refusal below is the guard's doing.
        let (s, _) = send(&local(), req(format!("{base}/echo"), HttpMethod::Post))
            .await
            .unwrap();
        assert_eq!(s, 200);
        let cases = [
            (format!("{base}/echo"), "127.0.0.1", "loopback"),
            // A name that resolves to loopback: refused after resolution.
            (format!("http://localhost:{port}/echo"), "", "loopback"),
            // The same address written other ways.
            (
                format!("http://2130706433:{port}/echo"),
                "127.0.0.1",
                "loopback",
            ),
            (
                format!("http://[::ffff:127.0.0.1]:{port}/echo"),
                "",
                "loopback",
            ),
            (format!("http://[::1]:{port}/echo"), "::1", "loopback"),
            (
                "http://169.254.169.254/latest/meta-data/".to_owned(),
                "169.254.169.254",
                "metadata",
            ),
            (
                "http://[fd00:ec2::254]/".to_owned(),
                "fd00:ec2::254",
                "metadata",
            ),
            ("http://10.0.0.1/".to_owned(), "10.0.0.1", "private"),
            ("http://192.168.1.1/".to_owned(), "192.168.1.1", "private"),
            (
                "http://169.254.1.1/".to_owned(),
                "169.254.1.1",
                "link-local",
            ),
            (
                format!("http://0.0.0.0:{port}/echo"),
                "0.0.0.0",
                "unspecified",
            ),
        ];
        for (url, addr, class) in cases {
            let e = send(&guard, req(url.clone(), HttpMethod::Post))
                .await
                .unwrap_err();
            assert!(
                e.contains(&format!("{class} addresses are not reached")) && e.contains(addr),
                "{url}: {e}"
            );
        }
        // Allowing loopback does not allow the metadata service.
        let e = send(
            &local(),
            req("http://169.254.169.254/".into(), HttpMethod::Get),
        )
        .await
        .unwrap_err();
        assert!(e.contains("metadata"), "{e}");
        // Nor does a spawned request get around it.
        let mut w = Webhooks::default();
        w.spawn(guard, req(format!("{base}/echo"), HttpMethod::Get));
        match w.next().await {
            Event::WebhookFailed { id: 7, reason } => {
                assert!(reason.contains("loopback"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
