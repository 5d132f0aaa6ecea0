//! The browser UI: static files under `web/ui/`, compiled into the binary (no CDN, no
//! build step, works offline).
//!
//! - `/assets/<path>` serves `web/ui/<path>` with its content type, an `ETag` and
//!   `Cache-Control: no-cache` (the browser revalidates, a 304 costs no body).
//! - Any other `GET` outside `/api/` whose last segment has no dot (`/`, `/login`,
//!   `/agent/customers/…`, `/admin/users`, `/designer/demo`) answers the app shell
//!   `index.html`; the router in `app.js` picks the page from the path.
//! - Everything else stays a JSON 404.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// One embedded file.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($p:literal),* $(,)?) => {
        &[$(Asset { path: $p, bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $p)) }),*]
    };
}

/// Every file of `web/ui/` (a test checks that this list and the folder agree).
static ASSETS: &[Asset] = assets![
    "index.html",
    "app.css",
    "app.js",
    "api.js",
    "dom.js",
    "events.js",
    "softphone.js",
    "softphone-test.html",
    "softphone-test.js",
    "favicon.svg",
    "pages/login.js",
    "pages/agent.js",
    "pages/supervisor.js",
    "pages/callbar.js",
    "pages/phone.js",
    "pages/admin.js",
    "pages/designer.js",
    "pages/flowgraph.js",
    "pages/flowlayout.js",
    "pages/presence.js",
    "pages/transcript.js",
    "pages/callentry.js",
    "pages/inbox.js",
    "pages/inboxlib.js",
    "pages/incidents.js",
    "pages/dashboards.js",
    "pages/dashboards.css",
    "vendor/uplot/uPlot.esm.js",
    "vendor/uplot/uPlot.min.css",
    "vendor/uplot/LICENSE",
    "vendor/uplot/README",
    "pages/offers.js",
    "pages/rules.js",
    "pages/mailthread.js",
    "chat/widget.js",
    "portal/index.html",
    "portal/portal.js",
];

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// FNV-1a of the content: a stable ETag for a file compiled into this binary.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(asset: &Asset, req_headers: &HeaderMap) -> Response {
    let tag = etag(asset.bytes);
    let fresh = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(asset.bytes))
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// The customer portal's page (`/portal/{tenant}`): its own small page, not the
/// agents' app shell.
pub(crate) async fn portal_page(req: Request) -> Response {
    match ASSETS.iter().find(|a| a.path == "portal/index.html") {
        Some(page) => serve(page, req.headers()),
        None => ApiError::not_found("route").into_response(),
    }
}

/// The router's fallback: UI files and pages, else a JSON 404.
pub(crate) async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::not_found("route").into_response();
    }
    if let Some(rel) = path.strip_prefix("/assets/") {
        return match ASSETS
            .iter()
            .find(|a| a.path == rel && a.path != "index.html")
        {
            Some(a) => serve(a, req.headers()),
            None => ApiError::not_found("asset").into_response(),
        };
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    let is_page = !path.starts_with("/api/") && path != "/api" && !last.contains('.');
    match ASSETS.iter().find(|a| a.path == "index.html") {
        Some(index) if is_page => serve(index, req.headers()),
        _ => ApiError::not_found("route").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_ui_is_embedded_and_nothing_else() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&root) {
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn content_types_and_etags() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}
