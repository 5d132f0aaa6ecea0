//! The delivery outbox, the store's side: agents' replies wait in `message_deliveries`
//! (written in the reply's transaction, [`Store::reply`]) until the delivery worker
//! claims them ([`Store::due_deliveries`]), sends each through its channel's adapter
//! and records the outcome: [`Store::delivery_sent`] (the row done, the message `sent`
//! and its status event, in one transaction; a second call for the same message does
//! nothing) or [`Store::delivery_failed`] (retried later with backoff, or `failed`
//! with the reason shown on the message). Receipts from the channel move a message on
//! with [`Store::message_status`] (`delivered`, `read`; never backwards).
//!
//! Exactly once: the worker sends a message only while its row is `pending`, and the
//! adapter is given the message id as its idempotency key; for `web_chat` the send
//! *is* [`Store::delivery_sent`] (the reply becomes visible on the visitor's stream in
//! the transaction that marks the row done), so a crash anywhere leaves it either
//! unsent (sent after the restart) or sent, never twice.

use serde::Serialize;

use super::{
    CHANNEL_COLS, Channel, ChannelRow, MSG_COLS, Message, MessageRow, MessageStatus,
    insert_status_event, visitor_event,
};
use crate::events::DomainEvent;
use crate::outbox::Audited;
use crate::types::{Actor, Timestamp};
use crate::{Error, Result, Store};

/// A reply due for delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Tenant.
    pub tenant_id: String,
    /// The channel to send it through.
    pub channel: Channel,
    /// The conversation's thread key on the channel (where to send).
    pub thread_key: String,
    /// The customer.
    pub customer_id: String,
    /// The message.
    pub message: Message,
    /// Attempts made so far.
    pub attempts: i64,
}

/// A message's status as agents see it change (`conversation.message_status`).
#[derive(Debug, Clone, Serialize)]
struct StatusChange<'a> {
    conversation_id: &'a str,
    message_id: &'a str,
    seq: i64,
    status: MessageStatus,
    reason: Option<&'a str>,
    at: Timestamp,
}

impl Store {
    /// Replies due for delivery (every tenant), oldest first, at most `limit`.
    pub async fn due_deliveries(&self, limit: u32) -> Result<Vec<Delivery>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, message_id, attempts FROM message_deliveries
             WHERE state = 'pending' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, message_id LIMIT $2",
        )
        .bind(self.now().0)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (tenant_id, message_id, attempts) in rows {
            let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.id = $2"
            )))
            .bind(&tenant_id)
            .bind(&message_id)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { continue };
            let message = row.into_message()?;
            let conv: (String, String, String) = sqlx::query_as(
                "SELECT channel_id, thread_key, customer_id FROM conversations
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&tenant_id)
            .bind(&message.conversation_id)
            .fetch_one(self.pool())
            .await?;
            let ch: ChannelRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = $1 AND id = $2"
            )))
            .bind(&tenant_id)
            .bind(&conv.0)
            .fetch_one(self.pool())
            .await?;
            let actor = Actor::system(&tenant_id);
            let message = self.with_attachments(&actor, message).await?;
            out.push(Delivery {
                tenant_id,
                channel: ch.into_channel()?,
                thread_key: conv.1,
                customer_id: conv.2,
                message,
                attempts,
            });
        }
        Ok(out)
    }

    /// Records a reply as sent (its delivery row done, the message `sent` with the
    /// provider's id if any, a status event) and publishes it to the visitor's stream
    /// and to agents, in one transaction. Returns false, changing nothing, when the row
    /// was no longer pending (sent already).
    pub async fn delivery_sent(
        &self,
        tenant_id: &str,
        message_id: &str,
        provider_message_id: Option<&str>,
    ) -> Result<bool> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE message_deliveries SET state = 'done', attempts = attempts + 1, updated_at = $1
             WHERE tenant_id = $2 AND message_id = $3 AND state = 'pending'",
        )
        .bind(now.0)
        .bind(tenant_id)
        .bind(message_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE messages SET status = 'sent', provider_message_id = COALESCE($1, provider_message_id),
                    updated_at = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(provider_message_id)
        .bind(now.0)
        .bind(tenant_id)
        .bind(message_id)
        .execute(&mut *tx)
        .await?;
        insert_status_event(
            &mut tx,
            tenant_id,
            message_id,
            MessageStatus::Sent,
            None,
            now,
        )
        .await?;
        let row: MessageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.id = $2"
        )))
        .bind(tenant_id)
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        let m = row.into_message()?;
        let events = [
            status_event(tenant_id, &m, MessageStatus::Sent, None, now),
            visitor_event(tenant_id, &m),
        ];
        // The status event row is the record of the delivery.
        self.commit_audited(tx, Audited::own_record(), events)
            .await?;
        // Receipts the provider sent before its id was recorded here (issue #19).
        if let Some(pid) = provider_message_id {
            let (channel_id,): (String,) =
                sqlx::query_as("SELECT channel_id FROM messages WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(message_id)
                    .fetch_one(self.pool())
                    .await?;
            self.apply_pending_receipts(tenant_id, &channel_id, pid)
                .await?;
        }
        Ok(true)
    }

    /// Records a failed attempt: with `retry_at`, the reply is tried again then;
    /// without, it is `failed` for good with `reason` (shown on the message).
    pub async fn delivery_failed(
        &self,
        tenant_id: &str,
        message_id: &str,
        reason: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<()> {
        let now = self.now();
        let reason: String = reason.chars().take(500).collect();
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE message_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2,
                    last_error = $3, updated_at = $4
             WHERE tenant_id = $5 AND message_id = $6 AND state = 'pending'",
        )
        .bind(if retry_at.is_some() { "pending" } else { "failed" })
        .bind(retry_at.unwrap_or(now).0)
        .bind(&reason)
        .bind(now.0)
        .bind(tenant_id)
        .bind(message_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(());
        }
        if retry_at.is_some() {
            tx.commit().await?;
            return Ok(());
        }
        sqlx::query(
            "UPDATE messages SET status = 'failed', failure_reason = $1, updated_at = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&reason)
        .bind(now.0)
        .bind(tenant_id)
        .bind(message_id)
        .execute(&mut *tx)
        .await?;
        insert_status_event(
            &mut tx,
            tenant_id,
            message_id,
            MessageStatus::Failed,
            Some(&reason),
            now,
        )
        .await?;
        let row: MessageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.id = $2"
        )))
        .bind(tenant_id)
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        let m = row.into_message()?;
        let e = status_event(tenant_id, &m, MessageStatus::Failed, Some(&reason), now);
        self.commit_audited(tx, Audited::own_record(), [e]).await?;
        Ok(())
    }

    /// A receipt from the channel or the customer's browser: moves an outbound message
    /// to `delivered` or `read` (never backwards; an older receipt changes nothing).
    /// Returns the message.
    pub async fn message_status(
        &self,
        actor: &Actor,
        message_id: &str,
        status: MessageStatus,
    ) -> Result<Message> {
        if !matches!(status, MessageStatus::Delivered | MessageStatus::Read) {
            return Err(Error::invalid("status", "must be one of: delivered read"));
        }
        let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        let m = row
            .ok_or_else(|| Error::not_found("message"))?
            .into_message()?;
        if m.direction != crate::timeline::Direction::Outbound
            || m.status == MessageStatus::Failed
            || m.status.rank() >= status.rank()
        {
            return Ok(m);
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE messages SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(status.as_str())
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(message_id)
        .execute(&mut *tx)
        .await?;
        insert_status_event(&mut tx, &actor.tenant_id, message_id, status, None, now).await?;
        let m = Message {
            status,
            updated_at: now,
            ..m
        };
        let e = status_event(&actor.tenant_id, &m, status, None, now);
        self.commit_audited(tx, Audited::own_record(), [e]).await?;
        Ok(m)
    }
}

pub(super) fn status_event(
    tenant_id: &str,
    m: &Message,
    status: MessageStatus,
    reason: Option<&str>,
    at: Timestamp,
) -> DomainEvent {
    DomainEvent::new(
        tenant_id,
        "conversation.message_status",
        &StatusChange {
            conversation_id: &m.conversation_id,
            message_id: &m.id,
            seq: m.seq,
            status,
            reason,
            at,
        },
    )
}

/// What a channel adapter did with a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the provider, which gave it this id (or none); the worker records it
    /// with [`Store::delivery_sent`].
    Provider(Option<String>),
    /// The adapter recorded the delivery itself, in the store's transaction that made
    /// it visible (web chat: [`Store::delivery_sent`] *is* the send).
    Recorded,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Worth trying again later (a timeout, a 5xx), or not (a refused address).
    pub retryable: bool,
    /// What happened, shown on the message when it fails for good.
    pub reason: String,
}

/// A future an adapter returns.
pub type SendFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<Sent, SendError>> + Send + 'a>,
>;

/// Sends replies out on one kind of channel. The message id is the idempotency key:
/// an adapter whose provider accepts one must pass it, so that a send repeated after a
/// crash (sent, but not yet recorded) is not delivered twice.
pub trait ChannelAdapter: Send + Sync {
    /// The channel kind it serves.
    fn kind(&self) -> super::ChannelKind;
    /// Sends `delivery`.
    fn send<'a>(&'a self, store: &'a Store, delivery: &'a Delivery) -> SendFuture<'a>;
}

/// The web chat adapter: delivering a reply is making it visible on the visitor's
/// stream (`visitor_messages`, and the `conversation.visitor_message` event the web
/// chat fans out), in the one transaction that records it sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebChatAdapter;

impl ChannelAdapter for WebChatAdapter {
    fn kind(&self) -> super::ChannelKind {
        super::ChannelKind::WebChat
    }

    fn send<'a>(&'a self, store: &'a Store, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            match store.delivery_sent(&d.tenant_id, &d.message.id, None).await {
                Ok(_) => Ok(Sent::Recorded),
                Err(e) => Err(SendError {
                    retryable: true,
                    reason: e.to_string(),
                }),
            }
        })
    }
}

/// Attempts before a reply is `failed` for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// When to try again after `attempts` failed attempts: 2 s doubling per attempt, at
/// most 10 minutes; `None` once [`MAX_ATTEMPTS`] are spent.
pub fn retry_after_ms(attempts: i64) -> Option<i64> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    Some((2_000_i64 << shift).min(600_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_gives_up() {
        assert_eq!(retry_after_ms(0), Some(2_000));
        assert_eq!(retry_after_ms(1), Some(4_000));
        assert_eq!(retry_after_ms(7), Some(256_000));
        assert_eq!(retry_after_ms(MAX_ATTEMPTS), None);
        assert!((0..MAX_ATTEMPTS).all(|a| retry_after_ms(a).is_some_and(|ms| ms <= 600_000)));
    }
}
