//! The ICE servers a browser softphone is handed when its session starts.
//!
//! Two ways to authenticate to TURN:
//! - **static**: one user name and credential (`PARLEY_WEBRTC_TURN_USERNAME` /
//!   `_CREDENTIAL`), the same for every browser — simple, but every logged-in user
//!   learns a credential that never expires;
//! - **shared secret** (`PARLEY_WEBRTC_TURN_SECRET`): the "TURN REST API" scheme that
//!   coturn implements with `use-auth-secret` + `static-auth-secret`. Each session gets
//!   its own time-limited user name `<expiry unix time>:<user id>` and the credential
//!   `base64(HMAC-SHA1(secret, user name))`; the TURN server checks both without
//!   asking Parley, and refuses the user name once its time has passed.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// How browsers authenticate to the TURN servers among the ICE URLs.
#[derive(Clone)]
pub enum TurnAuth {
    /// No TURN credentials (STUN only, or TURN without authentication).
    None,
    /// One user name and credential for everybody.
    Static {
        /// The user name.
        username: String,
        /// The credential.
        credential: String,
    },
    /// Per-session credentials derived from a secret shared with the TURN server.
    Secret {
        /// The secret shared with the TURN server.
        secret: String,
        /// How long a session's credential is valid.
        ttl_secs: u64,
    },
}

impl std::fmt::Debug for TurnAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints a credential or the secret.
        match self {
            TurnAuth::None => f.write_str("None"),
            TurnAuth::Static { username, .. } => write!(f, "Static({username:?})"),
            TurnAuth::Secret { ttl_secs, .. } => write!(f, "Secret(ttl {ttl_secs} s)"),
        }
    }
}

/// The ICE servers handed to browsers.
#[derive(Debug, Clone)]
pub struct BrowserIce {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// How browsers authenticate to the TURN servers.
    pub auth: TurnAuth,
}

impl BrowserIce {
    /// The servers for one session of `user_id`, at `now_unix` (seconds).
    pub fn for_user(&self, user_id: &str, now_unix: u64) -> Vec<parley_web::IceServer> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        let (username, credential) = match &self.auth {
            TurnAuth::None => (None, None),
            TurnAuth::Static {
                username,
                credential,
            } => (Some(username.clone()), Some(credential.clone())),
            TurnAuth::Secret { secret, ttl_secs } => {
                let username = format!("{}:{user_id}", now_unix.saturating_add(*ttl_secs));
                let credential = rest_credential(secret.as_bytes(), &username);
                (Some(username), Some(credential))
            }
        };
        vec![parley_web::IceServer {
            urls: self.urls.clone(),
            username,
            credential,
        }]
    }
}

/// The TURN REST API credential of `username`: base64 of HMAC-SHA1 keyed by the secret.
pub fn rest_credential(secret: &[u8], username: &str) -> String {
    use base64::Engine as _;
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha1> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against Python's `base64.b64encode(hmac.new(b"north",
    /// b"1700000000:agent1", hashlib.sha1).digest())`.
    #[test]
    fn rest_credential_matches_hmac_sha1_reference() {
        assert_eq!(
            rest_credential(b"north", "1700000000:agent1"),
            "Fimo9t3MyYU6kL88jjl0VTF2lyc="
        );
    }

    #[test]
    fn secret_mode_gives_each_user_an_expiring_name() {
        let ice = BrowserIce {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            auth: TurnAuth::Secret {
                secret: "north".into(),
                ttl_secs: 3600,
            },
        };
        let a = ice.for_user("agent1", 1_700_000_000 - 3600);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].username.as_deref(), Some("1700000000:agent1"));
        assert_eq!(
            a[0].credential.as_deref(),
            Some("Fimo9t3MyYU6kL88jjl0VTF2lyc=")
        );
        let b = ice.for_user("agent2", 1_700_000_000 - 3600);
        assert_ne!(a[0].credential, b[0].credential);
        // The secret never leaves the server.
        assert!(!format!("{ice:?}").contains("north"));
    }

    #[test]
    fn static_and_none_modes() {
        let mut ice = BrowserIce {
            urls: vec!["stun:127.0.0.1:3478".into()],
            auth: TurnAuth::None,
        };
        let s = ice.for_user("u", 0);
        assert_eq!(
            (s[0].username.as_deref(), s[0].credential.as_deref()),
            (None, None)
        );
        ice.auth = TurnAuth::Static {
            username: "parley".into(),
            credential: "pw".into(),
        };
        let s = ice.for_user("u", 0);
        assert_eq!(s[0].credential.as_deref(), Some("pw"));
        assert!(!format!("{ice:?}").contains("pw"));
        ice.urls.clear();
        assert!(ice.for_user("u", 0).is_empty());
    }
}
