//! Attachment files of conversation messages: stored once per tenant by content hash
//! under the data directory (`attachments/<tenant>/<sha256>`, [`Store::with_files_dir`]),
//! with a size limit and an allow-list of types per channel (the content must be what
//! its type says: images and PDFs are recognised by their first bytes, text must be
//! UTF-8), and downloads authorised by the conversation's visibility.
//!
//! Channel settings (`channels.settings`) may set `max_attachment_bytes` and
//! `attachment_types` (a list of MIME types); the defaults are
//! [`DEFAULT_MAX_ATTACHMENT_BYTES`] and [`DEFAULT_ATTACHMENT_TYPES`].

use std::io::Write as _;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::{Channel, MessageAttachment, NewAttachment};
use crate::types::Actor;
use crate::{Error, Result, Store};

/// Largest attachment by default (10 MiB).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 10 << 20;

/// Types accepted by default.
pub const DEFAULT_ATTACHMENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// Where an attachment's bytes are, relative to the files directory.
pub fn attachment_location(tenant_id: &str, sha256: &str) -> String {
    format!("attachments/{tenant_id}/{sha256}")
}

/// Largest attachment an email channel accepts by default (mail carries big files).
pub const DEFAULT_MAX_EMAIL_ATTACHMENT_BYTES: u64 = 25 << 20;

/// The channel's limits: (largest size, accepted types; `*` accepts any type). Email
/// channels accept any type by default: a customer's mail is stored as it came.
fn limits(channel: &Channel) -> (u64, Vec<String>) {
    let email = channel.kind == super::ChannelKind::Email;
    let max = channel
        .settings
        .get("max_attachment_bytes")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(if email {
            DEFAULT_MAX_EMAIL_ATTACHMENT_BYTES
        } else {
            DEFAULT_MAX_ATTACHMENT_BYTES
        });
    let types = channel
        .settings
        .get("attachment_types")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_else(|| {
            if email {
                return vec!["*".to_owned()];
            }
            DEFAULT_ATTACHMENT_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
    (max, types)
}

/// Whether `bytes` are plausibly of type `ct` (by their first bytes).
fn content_matches(ct: &str, bytes: &[u8]) -> bool {
    match ct {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        "text/plain" => std::str::from_utf8(bytes).is_ok(),
        // A type the tenant allowed that we cannot recognise: its word is taken.
        _ => true,
    }
}

impl Store {
    /// Checks an upload against the channel's limits and stores its bytes (once per
    /// tenant and content); returns the attachment to put on a message
    /// ([`super::InboundMessage::attachments`]). Too large: [`Error::TooLarge`]; a type
    /// not accepted, or content that is not of its type: [`Error::UnsupportedType`].
    pub async fn store_attachment(
        &self,
        actor: &Actor,
        channel_id: &str,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<NewAttachment> {
        let channel = self.channel(actor, channel_id).await?;
        let (max, types) = limits(&channel);
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > max {
            return Err(Error::TooLarge {
                what: "attachment",
                limit: max,
            });
        }
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let any = types.iter().any(|t| t == "*");
        if !any && (!types.contains(&ct) || !content_matches(&ct, bytes)) {
            return Err(Error::UnsupportedType { content_type: ct });
        }
        let name = name.trim();
        let name: String = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        if name.is_empty() {
            return Err(Error::invalid("name", "a file name"));
        }
        let sha256 = hex(&Sha256::digest(bytes));
        let root = self.files_dir().ok_or(Error::Unsupported {
            what: "attachments without a data directory",
        })?;
        let path = root.join(attachment_location(&actor.tenant_id, &sha256));
        if !path.exists() {
            let bytes = bytes.to_vec();
            tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
                .await
                .map_err(|_| Error::Unsupported {
                    what: "storing a file (the writer stopped)",
                })?
                .map_err(|e| {
                    tracing::error!(error = %e, "attachment not stored");
                    Error::Unsupported {
                        what: "storing a file (see the server log)",
                    }
                })?;
        }
        Ok(NewAttachment {
            name,
            content_type: ct,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
        })
    }

    /// An attachment of a conversation the actor may see, with the path of its bytes
    /// (agents' download). Anything else: not found.
    pub async fn attachment_for_download(
        &self,
        actor: &Actor,
        conversation_id: &str,
        attachment_id: &str,
    ) -> Result<(MessageAttachment, PathBuf)> {
        let conv = self.conversation(actor, conversation_id).await?;
        self.attachment_file(&actor.tenant_id, &conv.id, attachment_id, false)
            .await
    }

    /// An attachment as the customer may download it: on their own messages or on
    /// replies delivered to them, never on notes (the web chat and portal authenticate
    /// the customer; `actor` is the tenant's system actor).
    pub async fn visitor_attachment(
        &self,
        actor: &Actor,
        conversation_id: &str,
        attachment_id: &str,
    ) -> Result<(MessageAttachment, PathBuf)> {
        self.attachment_file(&actor.tenant_id, conversation_id, attachment_id, true)
            .await
    }

    async fn attachment_file(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        attachment_id: &str,
        visitor: bool,
    ) -> Result<(MessageAttachment, PathBuf)> {
        let filter = if visitor {
            "AND m.private = 0 AND (m.direction = 'inbound' OR m.status IN ('sent', 'delivered', 'read'))"
        } else {
            ""
        };
        let row: Option<(String, String, String, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT a.id, a.name, a.content_type, a.size, a.sha256
                 FROM message_attachments a JOIN messages m ON m.id = a.message_id
                 WHERE a.tenant_id = $1 AND a.conversation_id = $2 AND a.id = $3 {filter}"
            )))
            .bind(tenant_id)
            .bind(conversation_id)
            .bind(attachment_id)
            .fetch_optional(self.pool())
            .await?;
        let (id, name, content_type, size, sha256) =
            row.ok_or_else(|| Error::not_found("attachment"))?;
        let root = self
            .files_dir()
            .ok_or_else(|| Error::not_found("attachment"))?;
        let path = root.join(attachment_location(tenant_id, &sha256));
        Ok((
            MessageAttachment {
                id,
                name,
                content_type,
                size,
                sha256,
            },
            path,
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes `bytes` to `path` through a temporary file and a rename (never half a file).
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_be_its_type() {
        assert!(content_matches("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!content_matches("image/png", b"<svg onload=alert(1)>"));
        assert!(!content_matches("image/jpeg", b"GIF89a"));
        assert!(content_matches("text/plain", "héllo".as_bytes()));
        assert!(!content_matches("text/plain", &[0xff, 0xfe, 0x00]));
        assert_eq!(
            attachment_location("t1", "ab"),
            "attachments/t1/ab".to_owned()
        );
    }
}
