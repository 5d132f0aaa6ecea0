//! Callback requests, kept across restarts. A customer who asks to be called back (the
//! queue's callback key, the IVR `callback` node, a maximum wait that leads to a
//! callback) gets a row here that keeps their place in the queue (`since`, when they
//! started waiting); the ACD router is rebuilt from the open ones at start-up
//! ([`Store::open_callbacks`]) and moves them through their states:
//!
//! `waiting` → `dialling` (an agent was offered it and the call is being placed) →
//! `connected` (the customer answered), or back to `waiting` (another attempt, the
//! place kept), or `failed` (attempts used up, no trunk…); `waiting` → `cancelled`
//! (over the API). Creation, cancellation and completion (`connected`, `failed`) are
//! audited and appear as system entries on the customer's timeline.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::outbox::Audited;
use crate::timeline::insert_system_entry;
use crate::types::{Actor, Role, Timestamp, new_id};
use crate::{Error, Result, Store};

/// Where a callback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// In the queue, keeping its place.
    Waiting,
    /// Offered to an agent; the call is being placed.
    Dialling,
    /// The customer answered and was bridged with the agent.
    Connected,
    /// Given up (attempts used up, or it could not be placed).
    Failed,
    /// Cancelled over the API.
    Cancelled,
}

impl CallbackState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Waiting => "waiting",
            CallbackState::Dialling => "dialling",
            CallbackState::Connected => "connected",
            CallbackState::Failed => "failed",
            CallbackState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Result<CallbackState> {
        Ok(match s {
            "waiting" => CallbackState::Waiting,
            "dialling" => CallbackState::Dialling,
            "connected" => CallbackState::Connected,
            "failed" => CallbackState::Failed,
            "cancelled" => CallbackState::Cancelled,
            _ => {
                return Err(Error::invalid(
                    "state",
                    "must be one of: waiting dialling connected failed cancelled",
                ));
            }
        })
    }

    /// Still to be served (the router holds it).
    pub fn is_open(self) -> bool {
        matches!(self, CallbackState::Waiting | CallbackState::Dialling)
    }
}

/// A callback request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Callback {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// The queue it waits in.
    pub queue_id: String,
    /// The customer who asked.
    pub customer_id: String,
    /// The router's work-item id.
    pub item: String,
    /// The number to dial.
    pub number: String,
    /// When the customer started waiting (their place in the queue).
    pub since: Timestamp,
    /// Priority, higher first.
    pub priority: i32,
    /// State.
    pub state: CallbackState,
    /// Calls placed so far.
    pub attempts: u32,
    /// Why the last attempt did not connect.
    pub last_error: Option<String>,
    /// The call (timeline entry) in which the customer asked.
    pub interaction_id: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input of [`Store::create_callback`].
#[derive(Debug, Clone)]
pub struct NewCallback {
    /// Queue id.
    pub queue_id: String,
    /// Customer id.
    pub customer_id: String,
    /// The router's work-item id.
    pub item: String,
    /// Number to dial.
    pub number: String,
    /// When the customer started waiting.
    pub since: Timestamp,
    /// Priority.
    pub priority: i32,
}

/// Filter of [`Store::list_callbacks`].
#[derive(Debug, Clone, Default)]
pub struct CallbackFilter {
    /// Only this queue.
    pub queue_id: Option<String>,
    /// Only this state.
    pub state: Option<CallbackState>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

const COLS: &str = "id, tenant_id, queue_id, customer_id, item, number, since_ms, priority, state, \
                    attempts, last_error, interaction_id, created_at, updated_at";

fn from_row(r: Row) -> Result<Callback> {
    Ok(Callback {
        id: r.0,
        tenant_id: r.1,
        queue_id: r.2,
        customer_id: r.3,
        item: r.4,
        number: r.5,
        since: Timestamp(r.6),
        priority: i32::try_from(r.7).unwrap_or(0),
        state: CallbackState::parse(&r.8)?,
        attempts: u32::try_from(r.9).unwrap_or(0),
        last_error: r.10,
        interaction_id: r.11,
        created_at: Timestamp(r.12),
        updated_at: Timestamp(r.13),
    })
}

fn event(cb: &Callback) -> DomainEvent {
    let mut e = DomainEvent::new(&cb.tenant_id, "callback.changed", cb).customer(&cb.customer_id);
    e.min_role = Role::Supervisor;
    e
}

impl Store {
    /// Records a callback request in state `waiting` (audited; a system entry on the
    /// customer's timeline).
    pub async fn create_callback(&self, actor: &Actor, new: NewCallback) -> Result<Callback> {
        let number = new.number.trim();
        if number.is_empty() || number.len() > 64 {
            return Err(Error::invalid("number", "1 to 64 characters"));
        }
        if new.item.is_empty() || new.item.len() > 256 {
            return Err(Error::invalid("item", "1 to 256 characters"));
        }
        self.require(actor, "queues", "queue", &new.queue_id)
            .await?;
        self.require(actor, "customers", "customer", &new.customer_id)
            .await?;
        let now = self.now();
        let cb = Callback {
            id: new_id(),
            tenant_id: actor.tenant_id.clone(),
            queue_id: new.queue_id,
            customer_id: new.customer_id,
            item: new.item,
            number: number.to_owned(),
            since: Timestamp(new.since.0.min(now.0)),
            priority: new.priority,
            state: CallbackState::Waiting,
            attempts: 0,
            last_error: None,
            interaction_id: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO callbacks ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&cb.id)
        .bind(&cb.tenant_id)
        .bind(&cb.queue_id)
        .bind(&cb.customer_id)
        .bind(&cb.item)
        .bind(&cb.number)
        .bind(cb.since.0)
        .bind(i64::from(cb.priority))
        .bind(cb.state.as_str())
        .bind(i64::from(cb.attempts))
        .bind(&cb.last_error)
        .bind(&cb.interaction_id)
        .bind(cb.created_at.0)
        .bind(cb.updated_at.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "callback.create",
                entity_kind: "callback",
                entity_id: &cb.id,
                subject_customer_id: Some(&cb.customer_id),
                before: None,
                after: snapshot(&cb),
            },
        )
        .await?;
        let body = serde_json::json!({
            "summary": "Callback requested",
            "callback": { "id": cb.id, "number": cb.number, "queue_id": cb.queue_id, "state": "waiting" },
        });
        insert_system_entry(
            &mut tx,
            actor,
            &cb.customer_id,
            None,
            &body.to_string(),
            now,
        )
        .await?;
        self.commit_audited(tx, audited, [event(&cb)]).await?;
        Ok(cb)
    }

    /// One callback of the tenant.
    pub async fn callback(&self, actor: &Actor, id: &str) -> Result<Callback> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM callbacks WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        from_row(row.ok_or_else(|| Error::not_found("callback"))?)
    }

    /// The tenant's callbacks, oldest place first (at most 1000).
    pub async fn list_callbacks(
        &self,
        actor: &Actor,
        filter: &CallbackFilter,
    ) -> Result<Vec<Callback>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM callbacks WHERE tenant_id = $1
               AND ($2 IS NULL OR queue_id = $2) AND ($3 IS NULL OR state = $3)
             ORDER BY since_ms, id LIMIT 1000"
        )))
        .bind(&actor.tenant_id)
        .bind(filter.queue_id.as_deref())
        .bind(filter.state.map(CallbackState::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Every tenant's open callbacks (`waiting`, `dialling`), oldest place first: what
    /// the router restores at start-up.
    pub async fn open_callbacks(&self) -> Result<Vec<Callback>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM callbacks WHERE state IN ('waiting', 'dialling')
             ORDER BY since_ms, id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The router moved a callback on (written by the ACD as the system). A callback
    /// already closed (cancelled, connected, failed) is left alone: `None`. Reaching
    /// `connected` or `failed` completes it (audited, on the timeline).
    pub async fn callback_progress(
        &self,
        actor: &Actor,
        id: &str,
        state: CallbackState,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<Option<Callback>> {
        let before = self.callback(actor, id).await?;
        if !before.state.is_open() {
            return Ok(None);
        }
        let now = self.now();
        let after = Callback {
            state,
            attempts,
            last_error: last_error.map(str::to_owned).or(before.last_error.clone()),
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE callbacks SET state = $1, attempts = $2, last_error = $3, updated_at = $4
             WHERE tenant_id = $5 AND id = $6 AND state IN ('waiting', 'dialling')",
        )
        .bind(after.state.as_str())
        .bind(i64::from(after.attempts))
        .bind(&after.last_error)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None); // closed meanwhile
        }
        // Progress while open (dialling, another attempt) lives in the callback's own
        // row; completing it is audited.
        let mut audited = Audited::own_record();
        if !state.is_open() {
            audited = audit::write(
                &mut tx,
                actor,
                now,
                Record {
                    action: "callback.complete",
                    entity_kind: "callback",
                    entity_id: id,
                    subject_customer_id: Some(&after.customer_id),
                    before: snapshot(&before),
                    after: snapshot(&after),
                },
            )
            .await?;
            let summary = if state == CallbackState::Connected {
                "Callback connected"
            } else {
                "Callback failed"
            };
            let body = serde_json::json!({
                "summary": summary,
                "callback": { "id": id, "number": after.number, "state": state,
                              "attempts": attempts, "last_error": after.last_error },
            });
            insert_system_entry(
                &mut tx,
                actor,
                &after.customer_id,
                None,
                &body.to_string(),
                now,
            )
            .await?;
        }
        self.commit_audited(tx, audited, [event(&after)]).await?;
        Ok(Some(after))
    }

    /// Cancels a waiting callback (audited, on the timeline). One being dialled or
    /// already closed cannot be: [`Error::InvalidTransition`].
    pub async fn cancel_callback(&self, actor: &Actor, id: &str) -> Result<Callback> {
        let before = self.callback(actor, id).await?;
        let refused = || Error::InvalidTransition {
            entity: "callback",
            from: before.state.as_str().to_owned(),
            to: "cancelled".to_owned(),
        };
        if before.state != CallbackState::Waiting {
            return Err(refused());
        }
        let now = self.now();
        let after = Callback {
            state: CallbackState::Cancelled,
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE callbacks SET state = 'cancelled', updated_at = $1
             WHERE tenant_id = $2 AND id = $3 AND state = 'waiting'",
        )
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(refused()); // dialled or closed meanwhile
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "callback.cancel",
                entity_kind: "callback",
                entity_id: id,
                subject_customer_id: Some(&after.customer_id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let body = serde_json::json!({
            "summary": "Callback cancelled",
            "callback": { "id": id, "number": after.number, "state": "cancelled" },
        });
        insert_system_entry(
            &mut tx,
            actor,
            &after.customer_id,
            None,
            &body.to_string(),
            now,
        )
        .await?;
        self.commit_audited(tx, audited, [event(&after)]).await?;
        Ok(after)
    }

    /// Ties a callback to the call (timeline entry) in which it was requested.
    pub async fn link_callback_interaction(
        &self,
        actor: &Actor,
        id: &str,
        interaction_id: &str,
    ) -> Result<()> {
        self.require(actor, "interactions", "interaction", interaction_id)
            .await?;
        let n = sqlx::query(
            "UPDATE callbacks SET interaction_id = $1 WHERE tenant_id = $2 AND id = $3",
        )
        .bind(interaction_id)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::not_found("callback"));
        }
        Ok(())
    }
}
