//! Outbound webhook subscriptions (issue #23; migration 0030), the store's side: a
//! tenant's subscriptions (URL, the event types it wants, its signing secret; admin
//! CRUD, audited) and their delivery outbox (`webhook_deliveries`). The automation
//! runtime enqueues one delivery per matching subscription in the transaction that
//! finishes the event ([`Store::automation_finish`]), so each event is enqueued once;
//! the webhook worker (`src/webhooks.rs`) sends due deliveries signed, records each
//! outcome and retries with backoff; an admin replays a delivery from its log.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{self, Record, snapshot};
use crate::automation::StreamEvent;
use crate::events::DomainEvent;
use crate::store::Tx;
use crate::types::{Actor, Role, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// Attempts before a delivery is given up (`failed`).
pub const MAX_ATTEMPTS: i64 = 8;

/// The wait before attempt `attempts + 1` after `attempts` failures: 2 s doubling,
/// at most 10 minutes.
pub fn retry_after_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    (2_000_i64.saturating_mul(1_i64 << exp)).min(600_000)
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WebhookSubscription {
    /// Id.
    pub id: String,
    /// Where events are POSTed (`http(s)://`; the outbound HTTP guard applies).
    pub url: String,
    /// Event kinds delivered (`conversation.opened`, …; `*` for all).
    pub event_types: Vec<String>,
    /// Paused subscriptions get nothing.
    pub active: bool,
    /// The HMAC-SHA256 key; shown only when the subscription is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A subscription as an admin writes it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhookSubscription {
    /// `http(s)://` URL, at most 2,000 characters.
    pub url: String,
    /// 1 to 50 event kinds, or `["*"]`.
    pub event_types: Vec<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn validate(new: &NewWebhookSubscription) -> Result<()> {
    let url = new.url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2000 {
        return Err(Error::invalid("url", "an http:// or https:// URL"));
    }
    if new.event_types.is_empty() || new.event_types.len() > 50 {
        return Err(Error::invalid(
            "event_types",
            "1 to 50 event kinds, or \"*\"",
        ));
    }
    for (i, k) in new.event_types.iter().enumerate() {
        if k != "*"
            && (k.is_empty()
                || k.len() > 64
                || !k
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'))
        {
            return Err(Error::invalid(
                format!("event_types[{i}]"),
                "an event kind like conversation.opened",
            ));
        }
    }
    Ok(())
}

/// One delivery of one event to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// Id (also the `Parley-Delivery` header: receivers drop one they have seen).
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// The event.
    pub event_id: String,
    /// Its kind.
    pub event_kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending).
    pub next_attempt_at: Option<Timestamp>,
    /// The last HTTP status received.
    pub last_status: Option<i64>,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// Enqueued.
    pub created_at: Timestamp,
    /// Delivered.
    pub delivered_at: Option<Timestamp>,
}

/// A due delivery, with what the worker needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Where.
    pub url: String,
    /// The signing key.
    pub secret: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
}

type SubRow = (String, String, String, i64, i64, i64);

fn sub_from_row((id, url, types, active, created, updated): SubRow) -> Result<WebhookSubscription> {
    Ok(WebhookSubscription {
        id,
        url,
        event_types: from_json_text("webhook_subscriptions.event_types", &types)?,
        active: active != 0,
        secret: None,
        created_at: Timestamp(created),
        updated_at: Timestamp(updated),
    })
}

type DelRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

fn del_from_row(r: DelRow) -> WebhookDelivery {
    WebhookDelivery {
        id: r.0,
        subscription_id: r.1,
        event_id: r.2,
        event_kind: r.3,
        status: r.4,
        attempts: r.5,
        next_attempt_at: r.6.map(Timestamp),
        last_status: r.7,
        last_error: r.8,
        created_at: Timestamp(r.9),
        delivered_at: r.10.map(Timestamp),
    }
}

const DEL_COLS: &str = "id, subscription_id, event_id, event_kind, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

fn admin_only(actor: &Actor) -> Result<()> {
    if actor.role < Role::Admin {
        return Err(Error::Forbidden {
            what: "webhook subscriptions",
        });
    }
    Ok(())
}

/// The JSON body of an event's delivery: `{"id","type","created_at","data",...}`.
pub fn payload(event: &StreamEvent) -> Value {
    json!({
        "id": event.id,
        "type": event.kind,
        "created_at": Timestamp(event.created_at),
        "customer_id": event.customer_id,
        "case_id": event.case_id,
        "data": event.data,
    })
}

impl Store {
    /// The tenant's subscriptions.
    pub async fn list_webhooks(&self, actor: &Actor) -> Result<Vec<WebhookSubscription>> {
        admin_only(actor)?;
        let rows: Vec<SubRow> = sqlx::query_as(
            "SELECT id, url, event_types, active, created_at, updated_at FROM webhook_subscriptions
             WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(sub_from_row).collect()
    }

    /// One subscription.
    pub async fn webhook(&self, actor: &Actor, id: &str) -> Result<WebhookSubscription> {
        admin_only(actor)?;
        let row: Option<SubRow> = sqlx::query_as(
            "SELECT id, url, event_types, active, created_at, updated_at FROM webhook_subscriptions
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(sub_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found("webhook"))
    }

    /// Adds a subscription with a fresh secret (returned this once).
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        new: NewWebhookSubscription,
    ) -> Result<WebhookSubscription> {
        admin_only(actor)?;
        validate(&new)?;
        let now = self.now();
        let secret = format!("whsec_{}", new_id().replace('-', ""));
        let sub = WebhookSubscription {
            id: new_id(),
            url: new.url.trim().to_owned(),
            event_types: new.event_types,
            active: new.active,
            secret: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, tenant_id, url, secret, event_types, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&sub.id)
        .bind(&actor.tenant_id)
        .bind(&sub.url)
        .bind(&secret)
        .bind(json_text(&sub.event_types))
        .bind(i64::from(sub.active))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "webhook.create",
                entity_kind: "webhook",
                entity_id: &sub.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&sub),
            },
        )
        .await?;
        let event =
            DomainEvent::new(&actor.tenant_id, "webhook.created", &sub).min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(WebhookSubscription {
            secret: Some(secret),
            ..sub
        })
    }

    /// Replaces a subscription's URL, event types and state (the secret stays).
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: &str,
        new: NewWebhookSubscription,
    ) -> Result<WebhookSubscription> {
        validate(&new)?;
        let before = self.webhook(actor, id).await?;
        let now = self.now();
        let after = WebhookSubscription {
            url: new.url.trim().to_owned(),
            event_types: new.event_types,
            active: new.active,
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE webhook_subscriptions SET url = $1, event_types = $2, active = $3, updated_at = $4
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(&after.url)
        .bind(json_text(&after.event_types))
        .bind(i64::from(after.active))
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "webhook.update",
                entity_kind: "webhook",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event =
            DomainEvent::new(&actor.tenant_id, "webhook.updated", &after).min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Deletes a subscription and its pending deliveries (delivered ones stay logged).
    pub async fn delete_webhook(&self, actor: &Actor, id: &str) -> Result<()> {
        let before = self.webhook(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deleted', next_attempt_at = NULL
             WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'pending'",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "webhook.delete",
                entity_kind: "webhook",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "webhook.deleted", &json!({ "id": id }))
            .min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// A subscription's deliveries, newest first (at most `limit`, 1..=500).
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        subscription_id: &str,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        self.webhook(actor, subscription_id).await?;
        let rows: Vec<DelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEL_COLS} FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(&actor.tenant_id)
        .bind(subscription_id)
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(del_from_row).collect())
    }

    /// Sends a delivery again (any status): pending, due now, attempts from zero
    /// (audited).
    pub async fn replay_webhook_delivery(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<WebhookDelivery> {
        admin_only(actor)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                    last_error = NULL, delivered_at = NULL
             WHERE tenant_id = $2 AND id = $3
               AND subscription_id IN (SELECT id FROM webhook_subscriptions WHERE tenant_id = $2)",
        )
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::not_found("webhook_delivery"));
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "webhook.replay",
                entity_kind: "webhook_delivery",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: None,
            },
        )
        .await?;
        self.commit_audited(tx, audited, []).await?;
        let row: DelRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEL_COLS} FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(del_from_row(row))
    }

    /// Deliveries due now, oldest first (at most `limit`).
    pub async fn due_webhook_deliveries(&self, limit: u32) -> Result<Vec<DueDelivery>> {
        let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT d.id, d.tenant_id, s.url, s.secret, d.payload, d.attempts
             FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1
             ORDER BY d.next_attempt_at, d.id LIMIT $2",
        )
        .bind(self.now().0)
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, tenant_id, url, secret, payload, attempts)| DueDelivery {
                    id,
                    tenant_id,
                    url,
                    secret,
                    payload,
                    attempts,
                },
            )
            .collect())
    }

    /// Records an attempt: delivered (a 2xx), or failed and retried with backoff until
    /// [`MAX_ATTEMPTS`], then `failed`.
    pub async fn webhook_attempted(
        &self,
        id: &str,
        status: Option<u16>,
        error: Option<&str>,
    ) -> Result<()> {
        let now = self.now().0;
        let ok = status.is_some_and(|s| (200..300).contains(&s)) && error.is_none();
        let (attempts,): (i64,) =
            sqlx::query_as("SELECT attempts FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(self.pool())
                .await?;
        let attempts = attempts + 1;
        let (state, next) = if ok {
            ("delivered", None)
        } else if attempts >= MAX_ATTEMPTS {
            ("failed", None)
        } else {
            ("pending", Some(now + retry_after_ms(attempts)))
        };
        let error = match (ok, error, status) {
            (true, ..) => None,
            (false, Some(e), _) => Some(e.to_owned()),
            (false, None, Some(s)) => Some(format!("HTTP {s}")),
            (false, None, None) => Some("no answer".to_owned()),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3,
                    last_status = $4, last_error = $5, delivered_at = $6
             WHERE id = $7",
        )
        .bind(state)
        .bind(attempts)
        .bind(next)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(ok.then_some(now))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Enqueues `event` for every active subscription of its tenant that wants it (in the
/// transaction finishing the event: once per event and subscription).
pub(crate) async fn enqueue(tx: &mut Tx, event: &StreamEvent, now: i64) -> Result<()> {
    let subs: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, event_types FROM webhook_subscriptions WHERE tenant_id = $1 AND active = 1",
    )
    .bind(&event.tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut body = None;
    for (id, types) in subs {
        let types: Vec<String> = from_json_text("webhook_subscriptions.event_types", &types)?;
        if !types.iter().any(|t| t == "*" || *t == event.kind) {
            continue;
        }
        let body = body.get_or_insert_with(|| json_text(&payload(event)));
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event_id, event_kind, payload, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)
             ON CONFLICT (subscription_id, event_id) DO NOTHING",
        )
        .bind(new_id())
        .bind(&event.tenant_id)
        .bind(&id)
        .bind(&event.id)
        .bind(&event.kind)
        .bind(&*body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
