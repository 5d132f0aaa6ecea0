//! Visitor tokens: `v1.<payload>.<mac>`, both base64url without padding, where the
//! payload is `tenant_id \n conversation_id \n expiry (unix seconds)` and the MAC is
//! HMAC-SHA256 over `v1.<payload>` with the server's chat secret. Nothing is stored:
//! a token is good for exactly one conversation of one tenant until it expires, and
//! every token dies when the secret changes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The server secret visitor tokens are signed with. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ChatSecret([u8; 32]);

impl ChatSecret {
    /// A secret from its 32 bytes (the binary keeps them in the data directory).
    pub fn new(bytes: [u8; 32]) -> ChatSecret {
        ChatSecret(bytes)
    }

    /// A fresh random secret (tokens signed with it die with the process).
    pub fn random() -> ChatSecret {
        ChatSecret(rand::random())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }
}

impl std::fmt::Debug for ChatSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatSecret(…)")
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visitor {
    pub(crate) tenant_id: String,
    pub(crate) conversation_id: String,
    pub(crate) expires_unix: i64,
}

/// Signs a token for one conversation.
pub(crate) fn sign(secret: &ChatSecret, v: &Visitor) -> String {
    let payload = B64.encode(format!(
        "{}\n{}\n{}",
        v.tenant_id, v.conversation_id, v.expires_unix
    ));
    let signed = format!("v1.{payload}");
    let mut mac = secret.mac();
    mac.update(signed.as_bytes());
    let tag = B64.encode(mac.finalize().into_bytes());
    format!("{signed}.{tag}")
}

/// Checks a token's signature and expiry (`now_unix`); `None` for anything wrong.
pub(crate) fn verify(secret: &ChatSecret, token: &str, now_unix: i64) -> Option<Visitor> {
    let (signed, tag) = token.rsplit_once('.')?;
    let payload = signed.strip_prefix("v1.")?;
    let tag = B64.decode(tag).ok()?;
    let mut mac = secret.mac();
    mac.update(signed.as_bytes());
    mac.verify_slice(&tag).ok()?;
    let text = String::from_utf8(B64.decode(payload).ok()?).ok()?;
    let mut parts = text.split('\n');
    let tenant_id = parts.next()?.to_owned();
    let conversation_id = parts.next()?.to_owned();
    let expires_unix: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || expires_unix <= now_unix {
        return None;
    }
    Some(Visitor {
        tenant_id,
        conversation_id,
        expires_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor() -> Visitor {
        Visitor {
            tenant_id: "t1".into(),
            conversation_id: "c1".into(),
            expires_unix: 1_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let s = ChatSecret::new([7; 32]);
        let t = sign(&s, &visitor());
        assert_eq!(verify(&s, &t, 999), Some(visitor()));
        assert_eq!(verify(&s, &t, 1_000), None);
    }

    #[test]
    fn another_secret_or_a_changed_payload_is_refused() {
        let s = ChatSecret::new([7; 32]);
        let t = sign(&s, &visitor());
        assert_eq!(verify(&ChatSecret::new([8; 32]), &t, 0), None);
        let other = sign(
            &s,
            &Visitor {
                conversation_id: "c2".into(),
                ..visitor()
            },
        );
        // The payload of one token under the tag of another.
        let (_, tag) = t.rsplit_once('.').unwrap();
        let (signed, _) = other.rsplit_once('.').unwrap();
        assert_eq!(verify(&s, &format!("{signed}.{tag}"), 0), None);
        for junk in ["", "v1.", "v1..", "x.y.z", "v1.AAAA.AAAA"] {
            assert_eq!(verify(&s, junk, 0), None, "{junk}");
        }
    }
}
