//! Prometheus metrics: the process-wide recorder of the `metrics` crate and the
//! scrape endpoint `GET /api/v1/metrics` (also served as `GET /metrics`, Prometheus's
//! default path).
//!
//! The figures are server-wide (every tenant's calls together), so no tenant user may
//! read them, an admin included: the endpoint answers only the operator's
//! `PARLEY_METRICS_TOKEN` as a bearer token. Without one configured the endpoint
//! answers nobody. Labels never carry a tenant id, a number or a user: only bounded
//! sets (HTTP method, route template, status class).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// What a scrape needs: the recorder's handle and the operator's token.
#[derive(Clone)]
pub struct MetricsExport {
    handle: PrometheusHandle,
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for MetricsExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsExport")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl MetricsExport {
    /// Scrapes answered with `token` (none: the endpoint is closed).
    pub fn new(handle: PrometheusHandle, token: Option<String>) -> MetricsExport {
        MetricsExport {
            handle,
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
        }
    }

    /// The exposition text now.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Installs the process-wide Prometheus recorder once and returns its handle (the same
/// handle on every later call). Histograms are exported as summaries-free buckets
/// suited to latencies in seconds.
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Compares two tokens in time independent of where they first differ.
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Prometheus metrics of the whole server (text exposition format 0.0.4): calls, legs,
/// packets and loss, SIP, routing, queues, HTTP requests and latency, database lookups.
/// Only for the operator's `PARLEY_METRICS_TOKEN` (bearer): a tenant user's token, an
/// admin's included, gets 403, since the figures cover every tenant. Also at `/metrics`.
#[utoipa::path(get, path = "/metrics", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return ApiError::unauthenticated().into_response();
    };
    if let Some(m) = &s.metrics
        && let Some(want) = &m.token
        && same_token(token, want)
    {
        if let Some(sip) = &s.sip {
            for c in sip.counters() {
                let name = format!("parley_{}", c.name);
                if c.name.ends_with("_total") {
                    metrics::counter!(name).absolute(c.value);
                } else {
                    metrics::gauge!(name).set(c.value as f64);
                }
            }
        }
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            m.render(),
        )
            .into_response();
    }
    match s.store.actor_for_token(token).await {
        Ok(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "server metrics are read with the operator's metrics token",
        )
        .into_response(),
        Err(_) => ApiError::unauthenticated().into_response(),
    }
}

/// Counts every HTTP request by method, matched route template and status class, and
/// times it (`parley_http_requests_total`, `parley_http_request_duration_seconds`).
pub(crate) async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let labels = [
        ("method", method),
        ("route", route),
        ("status", class.to_owned()),
    ];
    metrics::counter!("parley_http_requests_total", &labels).increment(1);
    metrics::histogram!("parley_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
