//! Security headers on every response (UI pages, static files, the API, the API docs,
//! errors and the fallback alike), added by one layer around the whole router in
//! [`crate::app`]:
//!
//! - `Content-Security-Policy`: everything from this origin (the events and softphone
//!   WebSockets included), audio previews from `blob:` URLs, images also from `data:`,
//!   no inline scripts, no plugins, `frame-ancestors 'none'` (no framing: clickjacking),
//!   `base-uri 'none'`, forms only to this origin. The API docs page (Swagger UI) also
//!   needs inline styles, and only it gets them.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY` (for browsers without `frame-ancestors`),
//!   `Cross-Origin-Opener-Policy: same-origin`.
//! - `Strict-Transport-Security` when Parley is behind TLS: [`Hsts::Auto`] (the default)
//!   sends it when the request says it came over HTTPS through a TLS-terminating proxy
//!   (`X-Forwarded-Proto: https`), [`Hsts::Always`] on every response, [`Hsts::Off`]
//!   never. Parley itself serves plain HTTP, where HSTS means nothing (RFC 6797 §8.1).
//!
//! A header a handler set itself is kept (none does today; the layer fills in).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Content-Security-Policy of every response but the API docs page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Content-Security-Policy of the API docs (Swagger UI sets inline styles).
pub const CSP_DOCS: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The HSTS value sent: one year, subdomains included.
pub const HSTS_VALUE: &str = "max-age=31536000; includeSubDomains";

/// When `Strict-Transport-Security` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hsts {
    /// When the request came over HTTPS through a proxy (`X-Forwarded-Proto: https`).
    #[default]
    Auto,
    /// On every response (Parley is only ever reached over HTTPS).
    Always,
    /// Never.
    Off,
}

impl std::str::FromStr for Hsts {
    type Err = String;

    fn from_str(s: &str) -> Result<Hsts, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Hsts::Auto),
            "always" => Ok(Hsts::Always),
            "off" => Ok(Hsts::Off),
            other => Err(format!("{other:?}: expected auto, always or off")),
        }
    }
}

/// Whether the client reached the TLS-terminating proxy over HTTPS.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The layer's function (`axum::middleware::from_fn_with_state`).
pub(crate) async fn security_headers(
    State(hsts): State<Hsts>,
    req: Request,
    next: Next,
) -> Response {
    let docs = req.uri().path().starts_with("/api/v1/docs");
    let https = match hsts {
        Hsts::Auto => forwarded_https(req.headers()),
        Hsts::Always => true,
        Hsts::Off => false,
    };
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        if docs { CSP_DOCS } else { CSP },
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, HSTS_VALUE);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_setting_parses() {
        assert_eq!("AUTO".parse::<Hsts>(), Ok(Hsts::Auto));
        assert_eq!("always".parse::<Hsts>(), Ok(Hsts::Always));
        assert_eq!(" off".parse::<Hsts>(), Ok(Hsts::Off));
        assert!("yes".parse::<Hsts>().is_err());
    }

    #[test]
    fn forwarded_proto_is_read_from_the_first_hop() {
        let mut h = HeaderMap::new();
        assert!(!forwarded_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(forwarded_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!forwarded_https(&h));
    }
}
