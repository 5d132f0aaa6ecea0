//! Messaging channels' rules and receipts (issue #19).
//!
//! - Reply windows and length limits ([`check_reply`], a pure rule given the time of
//!   the customer's last message and `now`): WhatsApp allows free text for 24 hours
//!   after the customer's last message, then only approved templates; Messenger and
//!   Instagram 24 hours (7 days with the human-agent tag, where the channel enables
//!   it). Each kind has a character limit (`max_chars` in the settings overrides it).
//! - Provider receipts ([`Store::provider_receipt`]): a status names the provider's id
//!   of a message Parley sent; one that arrives before Parley recorded that id (the
//!   provider's webhook raced its API answer) is kept in `channel_pending_statuses`
//!   and applied when the id is recorded ([`Store::apply_pending_receipts`]).
//! - Templates a reply is sent as (`message_templates`), read by the adapter.

use serde::{Deserialize, Serialize};

use super::{ChannelKind, MSG_COLS, Message, MessageRow, MessageStatus, insert_status_event};
use crate::outbox::Audited;
use crate::types::{Actor, Timestamp};
use crate::{Error, Result, Store};

/// An approved template a reply is sent as (WhatsApp outside the window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    /// The template's name.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// Body parameters, in order (`{{1}}`, `{{2}}`, …).
    #[serde(default)]
    pub params: Vec<String>,
}

/// The reply window of a kind: how long after the customer's last message free
/// text may be sent, or `None` when there is no window.
pub fn reply_window_ms(kind: ChannelKind, settings: &serde_json::Value) -> Option<i64> {
    const DAY: i64 = 24 * 3600 * 1000;
    match kind {
        ChannelKind::Whatsapp => Some(DAY),
        ChannelKind::Messenger | ChannelKind::Instagram => {
            if settings
                .get("human_agent_tag")
                .and_then(serde_json::Value::as_bool)
                == Some(true)
            {
                Some(7 * DAY)
            } else {
                Some(DAY)
            }
        }
        _ => None,
    }
}

/// The longest text a kind sends (characters), `max_chars` in the settings first.
pub fn max_chars(kind: ChannelKind, settings: &serde_json::Value) -> Option<usize> {
    if let Some(n) = settings
        .get("max_chars")
        .and_then(serde_json::Value::as_u64)
    {
        return usize::try_from(n).ok();
    }
    match kind {
        ChannelKind::Whatsapp | ChannelKind::Telegram => Some(4096),
        ChannelKind::Sms => Some(1600),
        ChannelKind::Messenger => Some(2000),
        ChannelKind::Instagram => Some(1000),
        ChannelKind::X => Some(10_000),
        _ => None,
    }
}

/// Whether a reply may be sent now: within the kind's window (or as a template where
/// templates are allowed), within its length limit.
pub fn check_reply(
    kind: ChannelKind,
    settings: &serde_json::Value,
    last_inbound: Option<Timestamp>,
    now: Timestamp,
    text: &str,
    template: Option<&TemplateRef>,
) -> Result<()> {
    if let Some(max) = max_chars(kind, settings) {
        let n = text.chars().count();
        if n > max {
            return Err(Error::invalid(
                "text",
                format!(
                    "{} messages are at most {max} characters (this one has {n})",
                    kind.as_str()
                ),
            ));
        }
    }
    if template.is_some() {
        if kind != ChannelKind::Whatsapp {
            return Err(Error::invalid(
                "template",
                "only WhatsApp channels send templates",
            ));
        }
        return Ok(());
    }
    let Some(window) = reply_window_ms(kind, settings) else {
        return Ok(());
    };
    let open = last_inbound.is_some_and(|t| now.0 - t.0 < window);
    if open {
        return Ok(());
    }
    Err(Error::ReplyWindowClosed {
        channel: kind.as_str(),
        hours: window / 3_600_000,
        templates: kind == ChannelKind::Whatsapp,
    })
}

/// What [`Store::provider_receipt`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Receipt {
    /// Applied to the message (or already reflected by it).
    Applied(Box<Message>),
    /// No message has that provider id yet: kept until one does.
    Kept,
}

impl Store {
    /// The time of the customer's last message in a conversation.
    pub async fn last_inbound_at(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Option<Timestamp>> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT MAX(created_at) FROM messages WHERE tenant_id = $1 AND conversation_id = $2
             AND direction = 'inbound'",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|(t,)| t).map(Timestamp))
    }

    /// The provider's id of the customer's last message in a conversation.
    pub async fn last_inbound_provider_id(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT provider_message_id FROM messages WHERE tenant_id = $1 AND conversation_id = $2
             AND direction = 'inbound' ORDER BY seq DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|(p,)| p))
    }

    /// The template a reply is to be sent as, if any.
    pub async fn message_template(
        &self,
        tenant_id: &str,
        message_id: &str,
    ) -> Result<Option<TemplateRef>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT template FROM message_templates WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant_id)
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(t,)| crate::types::from_json_text("message_templates.template", &t))
            .transpose()
    }

    /// A provider's receipt for the message it knows as `provider_message_id` on a
    /// channel: `delivered` and `read` move it on (never backwards), `failed` marks it
    /// failed with the provider's `reason`; `sent` changes nothing. Kept for later
    /// when no message has that id yet.
    pub async fn provider_receipt(
        &self,
        tenant_id: &str,
        channel_id: &str,
        provider_message_id: &str,
        status: MessageStatus,
        reason: Option<&str>,
    ) -> Result<Receipt> {
        let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.tenant_id = $1 AND m.channel_id = $2
             AND m.provider_message_id = $3 AND m.direction = 'outbound'"
        )))
        .bind(tenant_id)
        .bind(channel_id)
        .bind(provider_message_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            sqlx::query(
                "INSERT INTO channel_pending_statuses (tenant_id, channel_id, provider_message_id, status, reason, at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (channel_id, provider_message_id, status) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(channel_id)
            .bind(provider_message_id)
            .bind(status.as_str())
            .bind(reason)
            .bind(self.now().0)
            .execute(self.pool())
            .await?;
            return Ok(Receipt::Kept);
        };
        let m = row.into_message()?;
        self.apply_receipt(tenant_id, m, status, reason)
            .await
            .map(|m| Receipt::Applied(Box::new(m)))
    }

    async fn apply_receipt(
        &self,
        tenant_id: &str,
        m: Message,
        status: MessageStatus,
        reason: Option<&str>,
    ) -> Result<Message> {
        match status {
            MessageStatus::Delivered | MessageStatus::Read => {
                self.message_status(&Actor::system(tenant_id), &m.id, status)
                    .await
            }
            MessageStatus::Failed => {
                if matches!(
                    m.status,
                    MessageStatus::Failed | MessageStatus::Delivered | MessageStatus::Read
                ) {
                    return Ok(m);
                }
                let now = self.now();
                let reason: String = reason
                    .unwrap_or("the provider could not deliver it")
                    .chars()
                    .take(500)
                    .collect();
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE messages SET status = 'failed', failure_reason = $1, updated_at = $2
                     WHERE tenant_id = $3 AND id = $4",
                )
                .bind(&reason)
                .bind(now.0)
                .bind(tenant_id)
                .bind(&m.id)
                .execute(&mut *tx)
                .await?;
                insert_status_event(
                    &mut tx,
                    tenant_id,
                    &m.id,
                    MessageStatus::Failed,
                    Some(&reason),
                    now,
                )
                .await?;
                let m = Message {
                    status: MessageStatus::Failed,
                    failure_reason: Some(reason.clone()),
                    updated_at: now,
                    ..m
                };
                let e = super::delivery::status_event(
                    tenant_id,
                    &m,
                    MessageStatus::Failed,
                    Some(&reason),
                    now,
                );
                self.commit_audited(tx, Audited::own_record(), [e]).await?;
                Ok(m)
            }
            _ => Ok(m),
        }
    }

    /// Applies the receipts kept for a provider id, now that a message has it.
    pub async fn apply_pending_receipts(
        &self,
        tenant_id: &str,
        channel_id: &str,
        provider_message_id: &str,
    ) -> Result<usize> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, reason FROM channel_pending_statuses
             WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3 ORDER BY at",
        )
        .bind(tenant_id)
        .bind(channel_id)
        .bind(provider_message_id)
        .fetch_all(self.pool())
        .await?;
        let mut n = 0;
        let mut statuses: Vec<(MessageStatus, Option<String>)> = rows
            .into_iter()
            .filter_map(|(s, r)| MessageStatus::parse(&s).ok().map(|s| (s, r)))
            .collect();
        // In the order they happened, whatever order they came in.
        statuses.sort_by_key(|(s, _)| s.rank());
        for (status, reason) in statuses {
            if let Receipt::Applied(_) = self
                .provider_receipt(
                    tenant_id,
                    channel_id,
                    provider_message_id,
                    status,
                    reason.as_deref(),
                )
                .await?
            {
                n += 1;
            }
        }
        sqlx::query(
            "DELETE FROM channel_pending_statuses WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3",
        )
        .bind(tenant_id)
        .bind(channel_id)
        .bind(provider_message_id)
        .execute(self.pool())
        .await?;
        Ok(n)
    }
}

impl Store {
    /// Records an SMS keyword's consent: `opted_out` after STOP, not after START.
    pub async fn set_sms_opt_out(
        &self,
        tenant_id: &str,
        channel_id: &str,
        number: &str,
        opted_out: bool,
    ) -> Result<()> {
        if opted_out {
            sqlx::query(
                "INSERT INTO sms_opt_outs (tenant_id, channel_id, number, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (channel_id, number) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(channel_id)
            .bind(number)
            .bind(self.now().0)
            .execute(self.pool())
            .await?;
        } else {
            sqlx::query(
                "DELETE FROM sms_opt_outs WHERE tenant_id = $1 AND channel_id = $2 AND number = $3",
            )
            .bind(tenant_id)
            .bind(channel_id)
            .bind(number)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Whether a number texted STOP to the channel (and not START since).
    pub async fn sms_opted_out(
        &self,
        tenant_id: &str,
        channel_id: &str,
        number: &str,
    ) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT number FROM sms_opt_outs WHERE tenant_id = $1 AND channel_id = $2 AND number = $3",
        )
        .bind(tenant_id)
        .bind(channel_id)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const H: i64 = 3_600_000;

    #[test]
    fn whatsapp_window_and_templates() {
        let s = json!({});
        let now = Timestamp(100 * H);
        let wa = ChannelKind::Whatsapp;
        check_reply(wa, &s, Some(Timestamp(now.0 - 23 * H)), now, "hi", None).unwrap();
        let e = check_reply(wa, &s, Some(Timestamp(now.0 - 25 * H)), now, "hi", None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ReplyWindowClosed {
                    hours: 24,
                    templates: true,
                    ..
                }
            ),
            "{e}"
        );
        assert!(check_reply(wa, &s, None, now, "hi", None).is_err());
        let t = TemplateRef {
            name: "hello_world".into(),
            language: "en_US".into(),
            params: vec![],
        };
        check_reply(wa, &s, None, now, "Hello", Some(&t)).unwrap();
        assert!(check_reply(ChannelKind::Telegram, &s, None, now, "hi", Some(&t)).is_err());
        // Messenger: 24 hours, 7 days with the human-agent tag.
        let old = Some(Timestamp(now.0 - 48 * H));
        assert!(check_reply(ChannelKind::Messenger, &s, old, now, "hi", None).is_err());
        check_reply(
            ChannelKind::Messenger,
            &json!({"human_agent_tag": true}),
            old,
            now,
            "hi",
            None,
        )
        .unwrap();
        // No window on Telegram or SMS; length limits.
        check_reply(ChannelKind::Telegram, &s, None, now, "hi", None).unwrap();
        let long = "x".repeat(1601);
        assert!(check_reply(ChannelKind::Sms, &s, None, now, &long, None).is_err());
        check_reply(
            ChannelKind::Sms,
            &json!({"max_chars": 2000}),
            None,
            now,
            &long,
            None,
        )
        .unwrap();
    }
}
