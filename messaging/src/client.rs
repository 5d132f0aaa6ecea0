//! The I/O companion: sends an [`HttpRequest`] with `reqwest` and reads at most a
//! bounded number of bytes of the answer. Connection failures and timeouts are an
//! [`HttpResponse`] with status 0 (retryable), never an error.

use std::time::Duration;

use crate::{HttpRequest, HttpResponse};

/// A provider API client (cheap to clone).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

/// The error text of a request that got no answer.
fn no_answer(e: &reqwest::Error) -> HttpResponse {
    HttpResponse {
        status: 0,
        retry_after_s: None,
        content_type: None,
        body: e.to_string().into_bytes(),
    }
}

impl Client {
    /// A client with a per-request timeout.
    pub fn new(timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Client { http }
    }

    /// Sends `req`; reads at most `max_body` bytes of the answer (a longer answer is
    /// cut and marked by a status of 413).
    pub async fn send(&self, req: &HttpRequest, max_body: usize) -> HttpResponse {
        let method = if req.method == "GET" {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let mut b = self.http.request(method, &req.url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if !req.body.is_empty() {
            b = b.body(req.body.clone());
        }
        let mut res = match b.send().await {
            Ok(r) => r,
            Err(e) => return no_answer(&e),
        };
        let status = res.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after_s =
            header(reqwest::header::RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > max_body {
                        return HttpResponse {
                            status: 413,
                            retry_after_s: None,
                            content_type,
                            body: Vec::new(),
                        };
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return no_answer(&e),
            }
        }
        HttpResponse {
            status,
            retry_after_s,
            content_type,
            body,
        }
    }
}
