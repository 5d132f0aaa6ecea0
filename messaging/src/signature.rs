//! Webhook signatures, each as its provider documents it. Every comparison is in
//! constant time.
//!
//! | provider | header | value |
//! |---|---|---|
//! | Meta (WhatsApp, Messenger, Instagram) | `X-Hub-Signature-256` | `sha256=` hex HMAC-SHA256(app secret, raw body) |
//! | Twilio | `X-Twilio-Signature` | Base64 HMAC-SHA1(auth token, URL + sorted `name`+`value` params); HMAC-SHA256 accepted too |
//! | Telegram | `X-Telegram-Bot-Api-Secret-Token` | the `secret_token` given to `setWebhook` |
//! | X | `X-Twitter-Webhooks-Signature` | `sha256=` Base64 HMAC-SHA256(consumer secret, raw body); CRC: the same over `crc_token` |
//! | `api` channel | `X-Parley-Signature` | `sha256=` hex HMAC-SHA256(signing secret, raw body) |

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::{Error, Result};

/// Meta's header.
pub const META_HEADER: &str = "X-Hub-Signature-256";
/// Twilio's header.
pub const TWILIO_HEADER: &str = "X-Twilio-Signature";
/// Telegram's header.
pub const TELEGRAM_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
/// X's header.
pub const X_HEADER: &str = "X-Twitter-Webhooks-Signature";
/// The `api` channel's header (both ways).
pub const API_HEADER: &str = "X-Parley-Signature";

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `X-Hub-Signature-256` value Meta sends with `body`.
pub fn meta_header(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(app_secret.as_bytes(), body)))
}

/// Checks Meta's `X-Hub-Signature-256`.
pub fn verify_meta(app_secret: &str, body: &[u8], header: Option<&str>) -> Result<()> {
    let h = header.ok_or(Error::MissingSignature {
        header: META_HEADER,
    })?;
    let want = meta_header(app_secret, body);
    if ct_eq(h.trim().to_ascii_lowercase().as_bytes(), want.as_bytes()) {
        Ok(())
    } else {
        Err(Error::BadSignature {
            header: META_HEADER,
        })
    }
}

/// The string Twilio signs: the URL, then each parameter's name and value, sorted by
/// name (then value).
fn twilio_base(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut s = url.to_owned();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// The `X-Twilio-Signature` Twilio sends for a form POST to `url` (HMAC-SHA1).
pub fn twilio_header(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    b64(&hmac_sha1(
        auth_token.as_bytes(),
        twilio_base(url, params).as_bytes(),
    ))
}

/// The HMAC-SHA256 variant of [`twilio_header`].
pub fn twilio_header_sha256(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    b64(&hmac_sha256(
        auth_token.as_bytes(),
        twilio_base(url, params).as_bytes(),
    ))
}

/// Checks `X-Twilio-Signature` for a form POST to `url` (the public URL Twilio was
/// given, query included): HMAC-SHA1, or HMAC-SHA256 when the signature has its
/// length.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<()> {
    let h = header.ok_or(Error::MissingSignature {
        header: TWILIO_HEADER,
    })?;
    let h = h.trim();
    let decoded_len = base64::engine::general_purpose::STANDARD
        .decode(h)
        .map(|b| b.len())
        .unwrap_or(0);
    let want = if decoded_len == 32 {
        twilio_header_sha256(auth_token, url, params)
    } else {
        twilio_header(auth_token, url, params)
    };
    if ct_eq(h.as_bytes(), want.as_bytes()) {
        Ok(())
    } else {
        Err(Error::BadSignature {
            header: TWILIO_HEADER,
        })
    }
}

/// Checks Telegram's secret token header.
pub fn verify_telegram(secret_token: &str, header: Option<&str>) -> Result<()> {
    let h = header.ok_or(Error::MissingSignature {
        header: TELEGRAM_HEADER,
    })?;
    if ct_eq(h.as_bytes(), secret_token.as_bytes()) {
        Ok(())
    } else {
        Err(Error::BadSignature {
            header: TELEGRAM_HEADER,
        })
    }
}

/// X's `response_token` answering a CRC check of `crc_token`.
pub fn x_crc_response(consumer_secret: &str, crc_token: &str) -> String {
    format!(
        "sha256={}",
        b64(&hmac_sha256(
            consumer_secret.as_bytes(),
            crc_token.as_bytes()
        ))
    )
}

/// The `X-Twitter-Webhooks-Signature` X sends with `body`.
pub fn x_header(consumer_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        b64(&hmac_sha256(consumer_secret.as_bytes(), body))
    )
}

/// Checks X's `X-Twitter-Webhooks-Signature`.
pub fn verify_x(consumer_secret: &str, body: &[u8], header: Option<&str>) -> Result<()> {
    let h = header.ok_or(Error::MissingSignature { header: X_HEADER })?;
    if ct_eq(
        h.trim().as_bytes(),
        x_header(consumer_secret, body).as_bytes(),
    ) {
        Ok(())
    } else {
        Err(Error::BadSignature { header: X_HEADER })
    }
}

/// The `X-Parley-Signature` of the `api` channel: `sha256=` hex HMAC-SHA256 of the body.
pub fn api_header(signing_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex(&hmac_sha256(signing_secret.as_bytes(), body))
    )
}

/// Checks the `api` channel's `X-Parley-Signature`.
pub fn verify_api(signing_secret: &str, body: &[u8], header: Option<&str>) -> Result<()> {
    let h = header.ok_or(Error::MissingSignature { header: API_HEADER })?;
    if ct_eq(
        h.trim().to_ascii_lowercase().as_bytes(),
        api_header(signing_secret, body).as_bytes(),
    ) {
        Ok(())
    } else {
        Err(Error::BadSignature { header: API_HEADER })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Twilio's published example (docs "Validating requests"; twilio-python,
    /// twilio-php and twilio-csharp RequestValidator tests): token `12345`.
    #[test]
    fn twilio_published_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            twilio_header("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        verify_twilio("12345", url, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")).unwrap();
        let mut tampered = params.clone();
        tampered[2].1 = "9999".into();
        assert_eq!(
            verify_twilio(
                "12345",
                url,
                &tampered,
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Err(Error::BadSignature {
                header: TWILIO_HEADER
            })
        );
        assert!(verify_twilio("12345", url, &params, None).is_err());
        // The SHA-256 variant over the same string.
        let sha256 = twilio_header_sha256("12345", url, &params);
        verify_twilio("12345", url, &params, Some(&sha256)).unwrap();
        assert!(verify_twilio("54321", url, &params, Some(&sha256)).is_err());
    }

    /// RFC 4231 test case 2 (HMAC-SHA256), which Meta's and the `api` channel's
    /// `sha256=<hex>` headers are made of; and Meta's header over a body.
    #[test]
    fn hmac_sha256_rfc4231_and_meta_header() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = meta_header("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            h,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        verify_meta("Jefe", b"what do ya want for nothing?", Some(&h)).unwrap();
        verify_meta(
            "Jefe",
            b"what do ya want for nothing?",
            Some(&h.to_uppercase().replace("SHA256", "sha256")),
        )
        .unwrap();
        assert!(verify_meta("Jefe", b"what do ya want for nothing!", Some(&h)).is_err());
        assert!(verify_meta("Jefe", b"x", None).is_err());
        assert!(verify_api("Jefe", b"what do ya want for nothing?", Some(&h)).is_ok());
    }

    /// X's CRC: `sha256=` Base64 HMAC-SHA256 of the token (RFC 4231 case 2 again, as
    /// Base64).
    #[test]
    fn x_crc_and_signature() {
        assert_eq!(
            x_crc_response("Jefe", "what do ya want for nothing?"),
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
        let h = x_header("k", b"{}");
        verify_x("k", b"{}", Some(&h)).unwrap();
        assert!(verify_x("other", b"{}", Some(&h)).is_err());
    }

    #[test]
    fn telegram_secret_token() {
        verify_telegram("s3cr3t", Some("s3cr3t")).unwrap();
        assert!(verify_telegram("s3cr3t", Some("s3cr3")).is_err());
        assert!(verify_telegram("s3cr3t", None).is_err());
    }
}
