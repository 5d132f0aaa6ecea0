//! An email channel's configuration (the channel's `config`; field names pinned by
//! issue #18: `address`, `imap {host, port, tls, username, password, folder}`,
//! `smtp_in`, `smtp_out {host, port, tls, username, password}`, `signature`).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain text (loopback or a trusted network only).
    None,
    /// Plain, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte.
    #[default]
    Tls,
}

/// Reading a mailbox over IMAP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Security.
    #[serde(default)]
    pub tls: Tls,
    /// Login.
    pub username: String,
    /// Password (write-only in the API).
    #[serde(default)]
    pub password: Option<String>,
    /// The folder read (default `INBOX`).
    #[serde(default = "inbox")]
    pub folder: String,
}

fn inbox() -> String {
    "INBOX".to_owned()
}

/// Sending replies through a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpOutConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Security.
    #[serde(default)]
    pub tls: Tls,
    /// AUTH login (none: no AUTH).
    #[serde(default)]
    pub username: Option<String>,
    /// AUTH password (write-only in the API).
    #[serde(default)]
    pub password: Option<String>,
}

/// An email channel's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailConfig {
    /// The support address: where customers write, and the From of replies.
    pub address: String,
    /// The mailbox read over IMAP (none: mail arrives by the SMTP receiver only).
    #[serde(default)]
    pub imap: Option<ImapConfig>,
    /// Accept mail for `address` on the built-in receiver (`PARLEY_SMTP_ADDR`).
    #[serde(default)]
    pub smtp_in: bool,
    /// Where replies are submitted (none: replies fail with a reason).
    #[serde(default)]
    pub smtp_out: Option<SmtpOutConfig>,
    /// Appended to every reply.
    #[serde(default)]
    pub signature: Option<String>,
    /// Other addresses of ours (aliases): mail from them is ignored.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Minutes within which a new mail from the same sender with the same normalised
    /// subject joins the sender's open conversation (threading rule 5; default 7 days).
    #[serde(default = "default_window")]
    pub thread_window_minutes: u32,
    /// Automatic replies a sender gets at most per hour (default 3).
    #[serde(default = "default_auto_per_hour")]
    pub auto_replies_per_hour: u32,
}

fn default_window() -> u32 {
    7 * 24 * 60
}

fn default_auto_per_hour() -> u32 {
    3
}

impl EmailConfig {
    /// Reads and checks a channel's settings object.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let c: Self = serde_json::from_value(v.clone()).map_err(|e| Error::Config {
            field: "config",
            message: e.to_string(),
        })?;
        c.check()?;
        Ok(c)
    }

    /// Checks the fields.
    pub fn check(&self) -> Result<()> {
        if crate::thread::split_address(&self.address).is_none() {
            return Err(Error::Config {
                field: "address",
                message: "an address like support@example.com".into(),
            });
        }
        if let Some(i) = &self.imap
            && (i.host.trim().is_empty() || i.port == 0 || i.username.is_empty())
        {
            return Err(Error::Config {
                field: "imap",
                message: "host, port and username are required".into(),
            });
        }
        if let Some(o) = &self.smtp_out
            && (o.host.trim().is_empty() || o.port == 0)
        {
            return Err(Error::Config {
                field: "smtp_out",
                message: "host and port are required".into(),
            });
        }
        Ok(())
    }

    /// The support address's domain.
    pub fn domain(&self) -> &str {
        crate::thread::split_address(&self.address)
            .map(|(_, d)| d)
            .unwrap_or("localhost")
    }

    /// Whether `addr` is one of ours (the support address, an alias, or a reply-token
    /// address on the support domain).
    pub fn is_own(&self, addr: &str) -> bool {
        let a = addr.trim().to_ascii_lowercase();
        if a == self.address.to_ascii_lowercase()
            || self.aliases.iter().any(|x| x.to_ascii_lowercase() == a)
        {
            return true;
        }
        crate::thread::reply_token(&a, self.domain()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_fields_parse() {
        let c = EmailConfig::from_json(&serde_json::json!({
            "address": "support@example.com",
            "imap": {"host": "127.0.0.1", "port": 1143, "tls": "none", "username": "support", "password": "pw", "folder": "INBOX"},
            "smtp_in": true,
            "smtp_out": {"host": "127.0.0.1", "port": 2525, "tls": "starttls", "username": "u", "password": "p"},
            "signature": "-- \nSupport"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.imap.as_ref().map(|i| i.tls), Some(Tls::None));
        assert_eq!(c.smtp_out.as_ref().map(|i| i.tls), Some(Tls::Starttls));
        assert!(c.smtp_in);
        assert!(c.is_own("Support@Example.com"));
        assert!(c.is_own("reply+abc12345@example.com"));
        assert!(!c.is_own("alice@example.org"));
        assert!(EmailConfig::from_json(&serde_json::json!({"address": "nope"})).is_err());
    }
}
