//! The email channel's storage (issue #18; migration 0024): IMAP cursors, the
//! Message-ID index of every email message (both directions), the reply token and
//! customer address of every email conversation, and thread resolution in the order
//! the issue pins ([`Store::email_thread_key`]). Parsing and I/O live in
//! `parley-email`; everything inbound still goes through [`Store::ingest`].

use serde::{Deserialize, Serialize};

use super::{Channel, MSG_COLS, MessageRow, MessageStatus};
use crate::outbox::Audited;
use crate::types::{Actor, Timestamp};
use crate::{Result, Store};

/// The threading keys of an inbound email, in the order they are tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadHints {
    /// 1. In-Reply-To ids.
    pub in_reply_to: Vec<String>,
    /// 2. References ids, right to left (newest first).
    pub references: Vec<String>,
    /// 3. The token of a `reply+<token>@` recipient.
    pub reply_token: Option<String>,
    /// 4. The case number of a `[#1234]` in the subject.
    pub case_number: Option<i64>,
    /// 5. The sender's address (lowercase)…
    pub sender: Option<String>,
    /// …and the normalised subject.
    pub subject: String,
}

/// Which rule found the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadRule {
    /// In-Reply-To.
    InReplyTo,
    /// References.
    References,
    /// The reply token.
    ReplyToken,
    /// A case reference in the subject.
    CaseReference,
    /// Same sender, open conversation, same subject, within the window.
    SenderSubject,
}

/// What an email message adds to its stored message ([`Store::record_email`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmailRecord {
    /// The Message-ID header (without angle brackets).
    pub header_message_id: String,
    /// `inbound` or `outbound`.
    pub outbound: bool,
    /// From address.
    pub from: Option<String>,
    /// To addresses.
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Bcc addresses (outbound only).
    pub bcc: Vec<String>,
    /// Subject as written.
    pub subject: Option<String>,
    /// The whole text (the message's text is the folded one).
    pub full_text: Option<String>,
    /// Sanitised HTML.
    pub html: Option<String>,
    /// `auto_reply`, `auto_generated`, `bulk`, `list`.
    pub auto_kind: Option<String>,
    /// Could not be decoded as declared.
    pub malformed: bool,
    /// Content hash of the raw .eml (stored like attachments).
    pub raw_sha256: Option<String>,
}

/// An email conversation's addressing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailThread {
    /// The conversation.
    pub conversation_id: String,
    /// The token of the `reply+<token>@` Reply-To address.
    pub reply_token: String,
    /// Where replies go.
    pub customer_address: String,
    /// The normalised subject.
    pub subject: String,
}

/// An email message's headers and bodies, for the agent's mail thread view.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EmailMessage {
    /// The stored message.
    pub message_id: String,
    /// The Message-ID header.
    pub header_message_id: String,
    /// `inbound` / `outbound`.
    pub direction: String,
    /// From.
    pub from_addr: Option<String>,
    /// To (JSON array).
    pub to_addrs: String,
    /// Cc (JSON array).
    pub cc_addrs: String,
    /// Bcc (JSON array).
    pub bcc_addrs: String,
    /// Subject.
    pub subject: Option<String>,
    /// Full text, quoted history included.
    pub full_text: Option<String>,
    /// Sanitised HTML.
    pub html: Option<String>,
    /// Automatic mail kind.
    pub auto_kind: Option<String>,
    /// Flagged as malformed.
    pub malformed: i64,
    /// Content hash of the raw .eml.
    pub raw_sha256: Option<String>,
    /// Stored.
    pub created_at: i64,
}

fn token() -> String {
    use rand::Rng;
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::rng();
    (0..24)
        .map(|_| char::from(A[r.random_range(0..A.len())]))
        .collect()
}

impl Store {
    /// Every email channel of every tenant (the workers' list): (tenant, channel).
    pub async fn email_channels(&self) -> Result<Vec<(String, Channel)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT tenant_id, id FROM channels WHERE kind = 'email' ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (tenant, id) in rows {
            let ch = self.channel(&Actor::system(&tenant), &id).await?;
            out.push((tenant, ch));
        }
        Ok(out)
    }

    /// The IMAP cursor of a channel's folder: (UIDVALIDITY, highest UID ingested).
    pub async fn email_cursor(&self, channel_id: &str, folder: &str) -> Result<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT uidvalidity, last_uid FROM email_cursors WHERE channel_id = $1 AND folder = $2",
        )
        .bind(channel_id)
        .bind(folder)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Moves the IMAP cursor (bookkeeping of the reader, not an audited change).
    pub async fn set_email_cursor(
        &self,
        channel_id: &str,
        folder: &str,
        uidvalidity: i64,
        last_uid: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO email_cursors (channel_id, folder, uidvalidity, last_uid, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel_id, folder) DO UPDATE SET uidvalidity = $3, last_uid = $4, updated_at = $5",
        )
        .bind(channel_id)
        .bind(folder)
        .bind(uidvalidity)
        .bind(last_uid)
        .bind(self.now().0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn thread_key_of(&self, actor: &Actor, conversation_id: &str) -> Result<Option<String>> {
        let r: Option<(String,)> =
            sqlx::query_as("SELECT thread_key FROM conversations WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(conversation_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(r.map(|r| r.0))
    }

    /// The conversation an email with a Message-ID header belongs to. An id of an
    /// inbound message counts only for the same sender (a reply-all to a customer's
    /// mail by someone else does not join their conversation); ids of Parley's own
    /// messages count for anyone.
    async fn by_header_id(
        &self,
        actor: &Actor,
        channel_id: &str,
        id: &str,
        sender: Option<&str>,
    ) -> Result<Option<String>> {
        let r: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT conversation_id, direction, from_addr FROM email_messages
             WHERE tenant_id = $1 AND channel_id = $2 AND header_message_id = $3
             ORDER BY created_at LIMIT 1",
        )
        .bind(&actor.tenant_id)
        .bind(channel_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some((conv, dir, from)) = r else {
            return Ok(None);
        };
        if dir == "inbound" && from.as_deref().map(str::to_ascii_lowercase).as_deref() != sender {
            return Ok(None);
        }
        self.thread_key_of(actor, &conv).await
    }

    /// The thread key of the conversation an inbound email belongs to, by the rules in
    /// order (see [`ThreadHints`]); `None`: a new conversation. `window_ms` bounds rule 5.
    pub async fn email_thread_key(
        &self,
        actor: &Actor,
        channel_id: &str,
        hints: &ThreadHints,
        window_ms: i64,
    ) -> Result<Option<(String, ThreadRule)>> {
        let sender = hints.sender.as_deref();
        for id in &hints.in_reply_to {
            if let Some(k) = self.by_header_id(actor, channel_id, id, sender).await? {
                return Ok(Some((k, ThreadRule::InReplyTo)));
            }
        }
        for id in &hints.references {
            if let Some(k) = self.by_header_id(actor, channel_id, id, sender).await? {
                return Ok(Some((k, ThreadRule::References)));
            }
        }
        if let Some(t) = &hints.reply_token {
            let r: Option<(String,)> = sqlx::query_as(
                "SELECT conversation_id FROM email_threads
                 WHERE tenant_id = $1 AND channel_id = $2 AND reply_token = $3",
            )
            .bind(&actor.tenant_id)
            .bind(channel_id)
            .bind(t)
            .fetch_optional(self.pool())
            .await?;
            if let Some((c,)) = r
                && let Some(k) = self.thread_key_of(actor, &c).await?
            {
                return Ok(Some((k, ThreadRule::ReplyToken)));
            }
        }
        if let Some(n) = hints.case_number {
            let r: Option<(String,)> = sqlx::query_as(
                "SELECT c.thread_key FROM cases k
                 JOIN conversation_cases cc ON cc.case_id = k.id AND cc.tenant_id = k.tenant_id
                 JOIN conversations c ON c.id = cc.conversation_id
                 WHERE k.tenant_id = $1 AND k.number = $2 AND c.channel_id = $3
                 ORDER BY c.last_message_at DESC, c.id LIMIT 1",
            )
            .bind(&actor.tenant_id)
            .bind(n)
            .bind(channel_id)
            .fetch_optional(self.pool())
            .await?;
            if let Some((k,)) = r {
                return Ok(Some((k, ThreadRule::CaseReference)));
            }
        }
        if let (Some(s), false) = (sender, hints.subject.is_empty()) {
            let r: Option<(String,)> = sqlx::query_as(
                "SELECT c.thread_key FROM email_threads t
                 JOIN conversations c ON c.id = t.conversation_id
                 WHERE t.tenant_id = $1 AND t.channel_id = $2 AND t.sender = $3 AND t.subject = $4
                   AND c.status IN ('open', 'pending', 'snoozed') AND c.last_message_at >= $5
                 ORDER BY c.last_message_at DESC, c.id LIMIT 1",
            )
            .bind(&actor.tenant_id)
            .bind(channel_id)
            .bind(s)
            .bind(&hints.subject)
            .bind(self.now().0 - window_ms)
            .fetch_optional(self.pool())
            .await?;
            if let Some((k,)) = r {
                return Ok(Some((k, ThreadRule::SenderSubject)));
            }
        }
        Ok(None)
    }

    /// Records an email message's headers next to its stored message, and gives its
    /// conversation an [`EmailThread`] (reply token, customer address) when it has none.
    /// Idempotent: a repeat changes nothing (so a reader that crashed between
    /// [`Store::ingest`] and this call repairs it by reading the message again).
    pub async fn record_email(
        &self,
        actor: &Actor,
        channel_id: &str,
        conversation_id: &str,
        message_id: &str,
        rec: &EmailRecord,
        thread_subject: &str,
    ) -> Result<EmailThread> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        if !rec.outbound {
            let addr = rec.from.clone().unwrap_or_default().to_ascii_lowercase();
            sqlx::query(
                "INSERT INTO email_threads (conversation_id, tenant_id, channel_id, reply_token,
                     customer_address, sender, subject, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (conversation_id) DO NOTHING",
            )
            .bind(conversation_id)
            .bind(&actor.tenant_id)
            .bind(channel_id)
            .bind(token())
            .bind(&addr)
            .bind(&addr)
            .bind(thread_subject)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO email_messages (message_id, tenant_id, channel_id, conversation_id,
                 header_message_id, direction, from_addr, to_addrs, cc_addrs, bcc_addrs, subject,
                 full_text, html, auto_kind, malformed, raw_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(&actor.tenant_id)
        .bind(channel_id)
        .bind(conversation_id)
        .bind(&rec.header_message_id)
        .bind(if rec.outbound { "outbound" } else { "inbound" })
        .bind(&rec.from)
        .bind(serde_json::to_string(&rec.to).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&rec.cc).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&rec.bcc).unwrap_or_else(|_| "[]".into()))
        .bind(&rec.subject)
        .bind(&rec.full_text)
        .bind(&rec.html)
        .bind(&rec.auto_kind)
        .bind(i64::from(rec.malformed))
        .bind(&rec.raw_sha256)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.email_thread(actor, conversation_id)
            .await?
            .ok_or_else(|| crate::Error::not_found("email thread"))
    }

    /// An email conversation's addressing (none: not an email conversation, or no
    /// inbound mail yet).
    pub async fn email_thread(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Option<EmailThread>> {
        let r: Option<(String, String, String)> = sqlx::query_as(
            "SELECT reply_token, customer_address, subject FROM email_threads
             WHERE tenant_id = $1 AND conversation_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(conversation_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(
            r.map(|(reply_token, customer_address, subject)| EmailThread {
                conversation_id: conversation_id.to_owned(),
                reply_token,
                customer_address,
                subject,
            }),
        )
    }

    /// A conversation's email messages, oldest first (the mail thread; agents who may
    /// see the conversation).
    pub async fn email_messages(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Vec<EmailMessage>> {
        // Visibility: the conversation itself (not found otherwise).
        self.conversation(actor, conversation_id).await?;
        Ok(sqlx::query_as(
            "SELECT message_id, header_message_id, direction, from_addr, to_addrs, cc_addrs,
                    bcc_addrs, subject, full_text, html, auto_kind, malformed, raw_sha256, created_at
             FROM email_messages WHERE tenant_id = $1 AND conversation_id = $2
             ORDER BY created_at, message_id",
        )
        .bind(&actor.tenant_id)
        .bind(conversation_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The Message-ID headers of a conversation, oldest first (References of a reply;
    /// its In-Reply-To is the last inbound one).
    pub async fn email_header_ids(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Vec<(String, bool)>> {
        let r: Vec<(String, String)> = sqlx::query_as(
            "SELECT header_message_id, direction FROM email_messages
             WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY created_at, message_id",
        )
        .bind(&actor.tenant_id)
        .bind(conversation_id)
        .fetch_all(self.pool())
        .await?;
        Ok(r.into_iter().map(|(h, d)| (h, d == "outbound")).collect())
    }

    /// A bounce (DSN) for the outbound message with Message-ID `header_id`: the message
    /// becomes `failed` with the reason. Returns its id; `None` when no outbound
    /// message of the channel has that Message-ID (or it failed already).
    pub async fn email_bounced(
        &self,
        actor: &Actor,
        channel_id: &str,
        header_id: &str,
        reason: &str,
    ) -> Result<Option<String>> {
        let r: Option<(String,)> = sqlx::query_as(
            "SELECT message_id FROM email_messages
             WHERE tenant_id = $1 AND channel_id = $2 AND header_message_id = $3 AND direction = 'outbound'",
        )
        .bind(&actor.tenant_id)
        .bind(channel_id)
        .bind(header_id)
        .fetch_optional(self.pool())
        .await?;
        let Some((id,)) = r else { return Ok(None) };
        let reason: String = reason.chars().take(500).collect();
        let now: Timestamp = self.now();
        let mut tx = self.write_tx().await?;
        // The outbox row too, in case the bounce beat the worker's bookkeeping.
        sqlx::query(
            "UPDATE message_deliveries SET state = 'failed', last_error = $1, updated_at = $2
             WHERE tenant_id = $3 AND message_id = $4",
        )
        .bind(&reason)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE messages SET status = 'failed', failure_reason = $1, updated_at = $2
             WHERE tenant_id = $3 AND id = $4 AND status <> 'failed'",
        )
        .bind(&reason)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        super::insert_status_event(
            &mut tx,
            &actor.tenant_id,
            &id,
            MessageStatus::Failed,
            Some(&reason),
            now,
        )
        .await?;
        let row: MessageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        let m = row.into_message()?;
        let e = super::delivery::status_event(
            &actor.tenant_id,
            &m,
            MessageStatus::Failed,
            Some(&reason),
            now,
        );
        self.commit_audited(tx, Audited::own_record(), [e]).await?;
        Ok(Some(id))
    }
}

/// The copies of a reply: only on email conversations, at most 20 addresses each, each
/// looking like an address. `None`: no copies.
#[allow(clippy::type_complexity)]
pub(super) fn check_copies(
    conv: &super::Conversation,
    cc: &[String],
    bcc: &[String],
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    if cc.is_empty() && bcc.is_empty() {
        return Ok(None);
    }
    if conv.channel != super::ChannelKind::Email {
        return Err(crate::Error::invalid(
            "cc",
            "copies are for email conversations",
        ));
    }
    let check = |field: &'static str, v: &[String]| -> Result<Vec<String>> {
        if v.len() > 20 {
            return Err(crate::Error::invalid(field, "at most 20 addresses"));
        }
        v.iter()
            .map(|a| {
                let a = a.trim();
                let ok = a.len() <= 254
                    && a.split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                    && !a
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
                if ok {
                    Ok(a.to_owned())
                } else {
                    Err(crate::Error::invalid(field, "email addresses"))
                }
            })
            .collect()
    };
    Ok(Some((check("cc", cc)?, check("bcc", bcc)?)))
}

/// Stores a reply's copies in its transaction (the adapter reads them when it sends).
pub(super) async fn insert_copies(
    tx: &mut crate::store::Tx,
    tenant_id: &str,
    message_id: &str,
    cc: &[String],
    bcc: &[String],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO email_reply_copies (message_id, tenant_id, cc_addrs, bcc_addrs)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(message_id)
    .bind(tenant_id)
    .bind(serde_json::to_string(cc).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(bcc).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The copies (cc, bcc) an agent put on a reply.
    pub async fn email_reply_recipients(
        &self,
        actor: &Actor,
        message_id: &str,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let r: Option<(String, String)> = sqlx::query_as(
            "SELECT cc_addrs, bcc_addrs FROM email_reply_copies WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.map(|(c, b)| {
            (
                serde_json::from_str(&c).unwrap_or_default(),
                serde_json::from_str(&b).unwrap_or_default(),
            )
        })
        .unwrap_or_default())
    }
}
