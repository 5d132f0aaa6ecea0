//! Work items routed like calls: chats, emails, messages and tasks that an integration
//! creates (`POST /api/v1/work-items`) and the router (`parley-routing`) offers to
//! agents by their capacity per channel.
//!
//! The router is the truth while it runs: it hears of a new item through the
//! `work_item.created` event, and every decision it makes about the item is written
//! here in order ([`Store::work_item_progress`]), audited (`work_item.create`,
//! `work_item.state`), and published to the agent concerned (`only_users`):
//!
//! `queued` → `offered` (`work_item.offered`) → `assigned` (`work_item.assigned`, the
//! agent accepted, or the queue assigns automatically) → `completed`
//! (`work_item.completed`); an offer declined or timed out goes back to `queued`
//! (`work_item.revoked`); an item whose queue is deleted ends `expired`. The open ones
//! are restored at start-up ([`Store::open_work_items`]).

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::routing::WorkKind;
use crate::sla::Priority;
use crate::types::{Actor, Role, Timestamp, new_id};
use crate::{Error, Result, Store};

/// Where a work item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkItemState {
    /// Waiting in its queue.
    Queued,
    /// Offered to an agent, who may accept or decline it.
    Offered,
    /// Being handled by an agent.
    Assigned,
    /// Done.
    Completed,
    /// Left its queue unhandled (the queue was deleted).
    Expired,
}

impl WorkItemState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkItemState::Queued => "queued",
            WorkItemState::Offered => "offered",
            WorkItemState::Assigned => "assigned",
            WorkItemState::Completed => "completed",
            WorkItemState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Result<WorkItemState> {
        Ok(match s {
            "queued" => WorkItemState::Queued,
            "offered" => WorkItemState::Offered,
            "assigned" => WorkItemState::Assigned,
            "completed" => WorkItemState::Completed,
            "expired" => WorkItemState::Expired,
            _ => return Err(Error::invalid("state", "unknown work item state")),
        })
    }

    /// Still held by the router.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            WorkItemState::Queued | WorkItemState::Offered | WorkItemState::Assigned
        )
    }
}

/// A routed work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WorkItem {
    /// Id (also the router's item id).
    pub id: String,
    /// Tenant.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub tenant_id: String,
    /// What it is: `chat`, `email`, `message` or `task`.
    pub kind: WorkKind,
    /// The queue it is routed through (id).
    pub queue_id: String,
    /// P0 (most urgent) to P3.
    pub priority: Priority,
    /// What the agent sees.
    pub title: String,
    /// The customer concerned (sticky routing to their last agent).
    pub customer_id: Option<String>,
    /// State.
    pub state: WorkItemState,
    /// The agent it is offered or assigned to (or who completed it).
    pub agent_id: Option<String>,
    /// When the first response is due by the tenant's SLA policy for the priority.
    pub sla_due_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Completed.
    pub completed_at: Option<Timestamp>,
}

/// Input of [`Store::create_work_item`] (the body of `POST /api/v1/work-items`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWorkItem {
    /// `task` (or `chat`, `email`, `message`).
    pub kind: String,
    /// The queue, by id or name.
    pub queue: String,
    /// `P0`…`P3`; default `P2`.
    #[serde(default)]
    pub priority: Option<String>,
    /// What the agent sees (1 to 500 bytes).
    pub title: String,
    /// The customer concerned (one of the tenant's).
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// What an agent does with a work item offered or assigned to them (the router decides;
/// see `parley_routing::acd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkAction {
    /// Take the offer.
    Accept,
    /// Refuse the offer (routed to someone else).
    Decline,
    /// Finish the assigned item (frees the capacity).
    Complete,
}

impl WorkAction {
    /// The state the action leads to.
    pub fn target(self) -> WorkItemState {
        match self {
            WorkAction::Accept => WorkItemState::Assigned,
            WorkAction::Decline => WorkItemState::Queued,
            WorkAction::Complete => WorkItemState::Completed,
        }
    }
}

/// Filter of [`Store::list_work_items`].
#[derive(Debug, Clone, Default)]
pub struct WorkItemFilter {
    /// Only items offered or assigned to this agent (their open items).
    pub agent_id: Option<String>,
    /// Only this state.
    pub state: Option<WorkItemState>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
);

const COLS: &str = "id, tenant_id, kind, queue_id, priority, title, customer_id, state, agent_id, \
                    sla_due_at, created_at, updated_at, completed_at";

fn from_row(r: Row) -> Result<WorkItem> {
    Ok(WorkItem {
        id: r.0,
        tenant_id: r.1,
        kind: WorkKind::parse(&r.2).ok_or_else(|| Error::invalid("kind", "unknown work kind"))?,
        queue_id: r.3,
        priority: Priority::parse(&r.4)?,
        title: r.5,
        customer_id: r.6,
        state: WorkItemState::parse(&r.7)?,
        agent_id: r.8,
        sla_due_at: r.9.map(Timestamp),
        created_at: Timestamp(r.10),
        updated_at: Timestamp(r.11),
        completed_at: r.12.map(Timestamp),
    })
}

/// The event of a state change, for the agent concerned (and supervisors).
fn event(kind: &'static str, item: &WorkItem, agent: Option<&str>) -> DomainEvent {
    let mut e = DomainEvent::new(&item.tenant_id, kind, item);
    if let Some(c) = &item.customer_id {
        e = e.customer(c);
    }
    e.min_role = Role::Agent;
    e.only_users = Some(agent.map(|a| vec![a.to_owned()]).unwrap_or_default());
    e
}

/// Inserts a work item inside the caller's transaction (a new item: `queued`).
pub(crate) async fn insert_work_item(tx: &mut crate::store::Tx, item: &WorkItem) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO work_items ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(&item.id)
    .bind(&item.tenant_id)
    .bind(item.kind.as_str())
    .bind(&item.queue_id)
    .bind(item.priority.as_str())
    .bind(&item.title)
    .bind(&item.customer_id)
    .bind(item.state.as_str())
    .bind(&item.agent_id)
    .bind(item.sla_due_at.map(|t| t.0))
    .bind(item.created_at.0)
    .bind(item.updated_at.0)
    .bind(item.completed_at.map(|t| t.0))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `work_item.created` (supervisors; the router takes it from there).
pub(crate) fn created_event(item: &WorkItem) -> DomainEvent {
    let mut e = DomainEvent::new(&item.tenant_id, "work_item.created", item);
    e.min_role = Role::Supervisor;
    if let Some(c) = &item.customer_id {
        e = e.customer(c);
    }
    e
}

impl Store {
    /// Creates a work item in state `queued` (audited) and publishes
    /// `work_item.created` (supervisors; the router takes it from there).
    pub async fn create_work_item(&self, actor: &Actor, new: NewWorkItem) -> Result<WorkItem> {
        let kind = match WorkKind::parse(new.kind.trim()) {
            Some(k @ (WorkKind::Chat | WorkKind::Email | WorkKind::Message | WorkKind::Task)) => k,
            _ => {
                return Err(Error::invalid(
                    "kind",
                    "must be one of: task chat email message",
                ));
            }
        };
        let title = new.title.trim();
        if title.is_empty() || title.len() > 500 {
            return Err(Error::invalid("title", "1 to 500 bytes"));
        }
        let priority = match new.priority.as_deref() {
            None => Priority::P2,
            Some(p) => Priority::parse(p.trim())?,
        };
        let queue: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM queues WHERE tenant_id = $1 AND (id = $2 OR name = $2)
             ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(&actor.tenant_id)
        .bind(new.queue.trim())
        .fetch_optional(self.pool())
        .await?;
        let Some((queue_id,)) = queue else {
            return Err(Error::not_found("queue"));
        };
        if let Some(c) = &new.customer_id {
            self.require(actor, "customers", "customer", c).await?;
        }
        let now = self.now();
        let sla_due_at = self.first_response_due(actor, priority, now).await?;
        let item = WorkItem {
            id: new_id(),
            tenant_id: actor.tenant_id.clone(),
            kind,
            queue_id,
            priority,
            title: title.to_owned(),
            customer_id: new.customer_id,
            state: WorkItemState::Queued,
            agent_id: None,
            sla_due_at,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        let mut tx = self.write_tx().await?;
        insert_work_item(&mut tx, &item).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "work_item.create",
                entity_kind: "work_item",
                entity_id: &item.id,
                subject_customer_id: item.customer_id.as_deref(),
                before: None,
                after: snapshot(&item),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [created_event(&item)])
            .await?;
        Ok(item)
    }

    /// When a first response at `priority` is due by the tenant's SLA policy.
    pub(crate) async fn first_response_due(
        &self,
        actor: &Actor,
        priority: Priority,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        Ok(self
            .list_sla_policies(actor)
            .await?
            .into_iter()
            .find(|p| p.priority == priority)
            .map(|p| Timestamp(now.0 + p.first_response_minutes.max(0) * 60_000)))
    }

    /// One work item of the tenant.
    pub async fn work_item(&self, actor: &Actor, id: &str) -> Result<WorkItem> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM work_items WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        from_row(row.ok_or_else(|| Error::not_found("work_item"))?)
    }

    /// The tenant's work items, newest first (at most 1000); with an agent, only the
    /// items offered or assigned to them.
    pub async fn list_work_items(
        &self,
        actor: &Actor,
        filter: &WorkItemFilter,
    ) -> Result<Vec<WorkItem>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM work_items WHERE tenant_id = $1
               AND ($2 IS NULL OR (agent_id = $2 AND state IN ('offered', 'assigned')))
               AND ($3 IS NULL OR state = $3)
             ORDER BY created_at DESC, id DESC LIMIT 1000"
        )))
        .bind(&actor.tenant_id)
        .bind(filter.agent_id.as_deref())
        .bind(filter.state.map(WorkItemState::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Every tenant's open work items (`queued`, `offered`, `assigned`), oldest first:
    /// what the router restores at start-up.
    pub async fn open_work_items(&self) -> Result<Vec<WorkItem>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM work_items WHERE state IN ('queued', 'offered', 'assigned')
             ORDER BY created_at, id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The router moved a work item on: to `state`, offered to / held by `agent`
    /// (written by the router's task as `actor`: the agent who accepted, declined or
    /// completed it, or the system). Audited (`work_item.state`) and published to the
    /// agent concerned — the new agent, or for an item back in the queue the one whose
    /// offer ended — as `work_item.offered`, `.assigned`, `.completed`, `.revoked` or
    /// `.expired`. An item already closed is left alone: [`Error::InvalidTransition`].
    pub async fn work_item_progress(
        &self,
        actor: &Actor,
        id: &str,
        state: WorkItemState,
        agent: Option<&str>,
    ) -> Result<WorkItem> {
        let before = self.work_item(actor, id).await?;
        if !before.state.is_open() {
            return Err(Error::InvalidTransition {
                entity: "work_item",
                from: before.state.as_str().to_owned(),
                to: state.as_str().to_owned(),
            });
        }
        let now = self.now();
        let agent_id = match state {
            WorkItemState::Queued | WorkItemState::Expired => None,
            WorkItemState::Completed => agent.map(str::to_owned).or(before.agent_id.clone()),
            WorkItemState::Offered | WorkItemState::Assigned => agent.map(str::to_owned),
        };
        let after = WorkItem {
            state,
            agent_id,
            updated_at: now,
            completed_at: (state == WorkItemState::Completed).then_some(now),
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE work_items SET state = $1, agent_id = $2, updated_at = $3, completed_at = $4
             WHERE tenant_id = $5 AND id = $6 AND state IN ('queued', 'offered', 'assigned')",
        )
        .bind(after.state.as_str())
        .bind(&after.agent_id)
        .bind(now.0)
        .bind(after.completed_at.map(|t| t.0))
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::InvalidTransition {
                entity: "work_item",
                from: "closed".to_owned(),
                to: state.as_str().to_owned(),
            });
        }
        if state == WorkItemState::Assigned {
            // A conversation routed by this item is now the agent's (issue #17).
            sqlx::query(
                "UPDATE conversations SET assignee_id = $1, updated_at = $2
                 WHERE tenant_id = $3 AND work_item_id = $4",
            )
            .bind(&after.agent_id)
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "work_item.state",
                entity_kind: "work_item",
                entity_id: id,
                subject_customer_id: after.customer_id.as_deref(),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let (kind, to) = match state {
            WorkItemState::Offered => ("work_item.offered", after.agent_id.as_deref()),
            WorkItemState::Assigned => ("work_item.assigned", after.agent_id.as_deref()),
            WorkItemState::Completed => ("work_item.completed", after.agent_id.as_deref()),
            WorkItemState::Queued => ("work_item.revoked", before.agent_id.as_deref()),
            WorkItemState::Expired => ("work_item.expired", before.agent_id.as_deref()),
        };
        self.commit_audited(tx, audited, [event(kind, &after, to)])
            .await?;
        Ok(after)
    }
}
