//! The transactional outbox: every audited mutation commits its change, its audit
//! record and its [`DomainEvent`]s in one transaction, then the relay publishes the
//! events and marks them published.
//!
//! A mutation opens a write transaction, changes rows, writes its audit record with
//! [`crate::audit::write`] (which returns an [`Audited`] proof) and ends with
//! [`Store::commit_audited`], which needs that proof: a mutation cannot commit without
//! its audit record, and its events can only leave through the outbox.
//!
//! The relay hands events to the store's [`EventSink`]s: the in-process broadcast
//! ([`Store::subscribe`]) is the first; the cluster forwards to NATS with another.
//! Delivery is at-least-once: an event whose sinks did not all take it stays
//! unpublished and is delivered again by [`Store::relay_outbox`] (at start-up and when
//! shutting down), with the same [`DomainEvent::id`] so that consumers can drop
//! duplicates. A crash between commit and publish loses nothing.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::events::DomainEvent;
use crate::store::Tx;
use crate::types::Role;
use crate::{Error, Result, Store};

/// Proof that a mutation wrote its audit record in its transaction (returned by
/// [`crate::audit::write`], consumed by [`Store::commit_audited`]).
#[must_use = "an audited mutation ends with Store::commit_audited"]
#[derive(Debug)]
pub(crate) struct Audited(());

impl Audited {
    pub(crate) fn written() -> Audited {
        Audited(())
    }

    /// For a write whose row is itself the durable record of what happened and who
    /// did it (a call record): no separate audit entry.
    pub(crate) fn own_record() -> Audited {
        Audited(())
    }
}

/// A future a sink returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Where the relay delivers committed events (the in-process broadcast, NATS, …).
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Delivers `events` (committed, in commit order per mutation). An error leaves them
    /// unpublished in the outbox; they are delivered again later (at-least-once).
    fn deliver<'a>(&'a self, events: &'a [DomainEvent]) -> SinkFuture<'a>;
}

/// The in-process sink: the broadcast behind [`Store::subscribe`] (the events
/// WebSocket, the ACD, the SIP driver). Having no subscriber is not an error.
#[derive(Debug, Clone)]
pub struct BroadcastSink(pub broadcast::Sender<DomainEvent>);

impl EventSink for BroadcastSink {
    fn deliver<'a>(&'a self, events: &'a [DomainEvent]) -> SinkFuture<'a> {
        for e in events {
            let _ = self.0.send(e.clone());
        }
        Box::pin(async { Ok(()) })
    }
}

/// An event as the outbox stores it: everything, including who may see it.
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    tenant_id: String,
    min_role: Role,
    only_users: Option<Vec<String>>,
    kind: String,
    customer_id: Option<String>,
    case_id: Option<String>,
    data: serde_json::Value,
    /// The automation rules whose actions caused it, oldest first
    /// (`crate::automation::caused_by_rules`); empty for everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    caused_by: Vec<String>,
}

impl Stored {
    fn of(e: &DomainEvent, caused_by: &[String]) -> Stored {
        Stored {
            id: e.id.clone(),
            tenant_id: e.tenant_id.clone(),
            min_role: e.min_role,
            only_users: e.only_users.clone(),
            kind: e.kind.to_owned(),
            customer_id: e.customer_id.clone(),
            case_id: e.case_id.clone(),
            data: e.data.clone(),
            caused_by: caused_by.to_vec(),
        }
    }

    fn into_event(self) -> DomainEvent {
        DomainEvent {
            id: self.id,
            tenant_id: self.tenant_id,
            min_role: self.min_role,
            only_users: self.only_users,
            kind: intern(&self.kind),
            customer_id: self.customer_id,
            case_id: self.case_id,
            data: self.data,
        }
    }
}

/// An event as the outbox stored it (`outbox.event`), read back (the analytics fold).
pub(crate) fn stored_event(text: &str) -> Result<DomainEvent> {
    let s: Stored = serde_json::from_str(text).map_err(|source| Error::Corrupt {
        what: "outbox.event",
        source,
    })?;
    Ok(s.into_event())
}

/// Event kinds are `&'static str` constants in code; one read back from the outbox
/// is interned. Kinds are a small closed set (every one was a constant of some
/// version), so the interned strings are bounded.
fn intern(kind: &str) -> &'static str {
    static KINDS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = KINDS.lock().unwrap_or_else(|p| p.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(k) = set.get(kind) {
        return k;
    }
    let k: &'static str = Box::leak(kind.to_owned().into_boxed_str());
    set.insert(k);
    k
}

/// Published rows older than this are deleted by [`Store::relay_outbox`].
const KEEP_PUBLISHED_MS: i64 = 7 * 24 * 3600 * 1000;

/// Unpublished rows read per round by [`Store::relay_outbox`].
const RELAY_BATCH: i64 = 500;

impl Store {
    /// Ends an audited mutation: writes `events` into the outbox in `tx` (which holds the
    /// change and its audit record), commits, then relays them. A failed change never
    /// reaches the commit, so it leaves neither audit record nor event.
    pub(crate) async fn commit_audited(
        &self,
        mut tx: Tx,
        _audited: Audited,
        events: impl IntoIterator<Item = DomainEvent>,
    ) -> Result<()> {
        let events: Vec<DomainEvent> = events.into_iter().collect();
        let now = self.now();
        let caused_by = crate::automation::current_rule_chain();
        for e in &events {
            let stored = serde_json::to_string(&Stored::of(e, &caused_by)).map_err(|source| {
                Error::Corrupt {
                    what: "outbox.event",
                    source,
                }
            })?;
            sqlx::query(
                "INSERT INTO outbox (id, tenant_id, kind, event, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&e.id)
            .bind(&e.tenant_id)
            .bind(e.kind)
            .bind(stored)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if !events.is_empty() {
            self.relay(&events).await;
        }
        Ok(())
    }

    /// Delivers committed `events` to every sink and, when all took them, marks them
    /// published. Failures leave them for [`Store::relay_outbox`]; the mutation stands.
    async fn relay(&self, events: &[DomainEvent]) -> bool {
        let sinks = self.sinks();
        let mut all = true;
        for s in &sinks {
            if let Err(e) = s.deliver(events).await {
                tracing::warn!(error = %e, sink = ?s, "events left in the outbox for a later relay");
                all = false;
            }
        }
        if all && let Err(e) = self.mark_published(events).await {
            // Delivered but not marked: delivered again at the next relay (consumers
            // dedupe by id).
            tracing::warn!(error = %e, "published events not marked in the outbox");
        }
        all
    }

    async fn mark_published(&self, events: &[DomainEvent]) -> Result<()> {
        let now = self.now();
        for chunk in events.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE outbox SET published_at = $1 WHERE id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.0);
            for e in chunk {
                q = q.bind(&e.id);
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Publishes every event still unpublished in the outbox (oldest first) and deletes
    /// rows published more than a week ago. Run at start-up (a crash between commit
    /// and publish, a sink that was down) and when shutting down. Returns how many
    /// events were published; stops early (leaving the rest) when a sink refuses.
    pub async fn relay_outbox(&self) -> Result<usize> {
        let mut published = 0;
        let mut after: Option<(i64, String)> = None;
        loop {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT id, created_at, event FROM outbox
                 WHERE published_at IS NULL
                   AND ($1 IS NULL OR created_at > $1 OR (created_at = $1 AND id > $2))
                 ORDER BY created_at, id LIMIT $3",
            )
            .bind(after.as_ref().map(|a| a.0))
            .bind(after.as_ref().map(|a| a.1.clone()))
            .bind(RELAY_BATCH)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.1, last.0.clone()));
            let n = rows.len();
            let mut events = Vec::with_capacity(n);
            for (_, _, text) in rows {
                let s: Stored = serde_json::from_str(&text).map_err(|source| Error::Corrupt {
                    what: "outbox.event",
                    source,
                })?;
                events.push(s.into_event());
            }
            if !self.relay(&events).await {
                break;
            }
            published += events.len();
            if i64::try_from(n).unwrap_or(i64::MAX) < RELAY_BATCH {
                break;
            }
        }
        sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
            .bind(self.now().0 - KEEP_PUBLISHED_MS)
            .execute(self.pool())
            .await?;
        Ok(published)
    }

    /// How many events wait in the outbox (committed, not yet published everywhere).
    pub async fn outbox_pending(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The events of the outbox about `tenant_id`, oldest first, published or not
    /// (for tests and diagnostics).
    pub async fn outbox_events(&self, tenant_id: &str) -> Result<Vec<(DomainEvent, bool)>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT event, published_at FROM outbox WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(text, published)| {
                let s: Stored = serde_json::from_str(&text).map_err(|source| Error::Corrupt {
                    what: "outbox.event",
                    source,
                })?;
                Ok((s.into_event(), published.is_some()))
            })
            .collect()
    }

    /// Adds a sink the relay delivers to (after the in-process broadcast).
    pub fn add_event_sink(&self, sink: Arc<dyn EventSink>) {
        self.sinks_lock().push(sink);
    }

    fn sinks(&self) -> Vec<Arc<dyn EventSink>> {
        self.sinks_lock().clone()
    }
}
