//! Tasks on cases (issue #23; migration 0030 `case_tasks`): a description, an assignee,
//! a due time, a status (`open` → `done`, or `cancelled`; reopenable) and a priority;
//! "my tasks" (a user's open tasks, soonest due first); every change audited and
//! published as `task.*` (with the case). Overdue open tasks raise `task.overdue` once
//! per task and due time ([`Store::sla_scan`]), for rules and alerts to act on.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::sla::Priority;
use crate::types::{Actor, Timestamp, new_id};
use crate::{Error, Result, Store};

/// A task on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Task {
    /// Id.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// What to do (1 to 200 characters).
    pub title: String,
    /// Details.
    pub description: String,
    /// Who does it.
    pub assignee_id: Option<String>,
    /// When it is due.
    pub due_at: Option<Timestamp>,
    /// `open`, `done` or `cancelled`.
    pub status: String,
    /// P0 (most urgent) to P3.
    pub priority: Priority,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// When done.
    pub completed_at: Option<Timestamp>,
}

/// A new task.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    pub description: String,
    /// A user of the tenant.
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// Due time.
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    /// Default P2.
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// Changes to a task (absent: unchanged; `assignee_id`/`due_at` null: cleared).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New assignee, or null.
    #[serde(default, deserialize_with = "double_option")]
    pub assignee_id: Option<Option<String>>,
    /// New due time, or null.
    #[serde(default, deserialize_with = "double_option")]
    pub due_at: Option<Option<Timestamp>>,
    /// `open`, `done` or `cancelled`.
    #[serde(default)]
    pub status: Option<String>,
    /// New priority.
    #[serde(default)]
    pub priority: Option<Priority>,
}

fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

const COLS: &str = "id, case_id, title, description, assignee_id, due_at, status, priority, created_at, updated_at, completed_at";

fn from_row(r: Row) -> Result<Task> {
    Ok(Task {
        id: r.0,
        case_id: r.1,
        title: r.2,
        description: r.3,
        assignee_id: r.4,
        due_at: r.5.map(Timestamp),
        status: r.6,
        priority: Priority::parse(&r.7)?,
        created_at: Timestamp(r.8),
        updated_at: Timestamp(r.9),
        completed_at: r.10.map(Timestamp),
    })
}

fn check_title(t: &str) -> Result<String> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(Error::invalid("title", "1 to 200 characters"));
    }
    Ok(t.to_owned())
}

fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > 10_000 {
        return Err(Error::invalid("description", "at most 10000 characters"));
    }
    Ok(d.trim().to_owned())
}

impl Store {
    async fn check_assignee(&self, actor: &Actor, user: Option<&str>) -> Result<()> {
        if let Some(u) = user {
            let found: Option<(i64,)> =
                sqlx::query_as("SELECT active FROM users WHERE tenant_id = $1 AND id = $2")
                    .bind(&actor.tenant_id)
                    .bind(u)
                    .fetch_optional(self.pool())
                    .await?;
            match found {
                Some((1,)) => {}
                Some(_) => return Err(Error::invalid("assignee_id", "this user is deactivated")),
                None => return Err(Error::invalid("assignee_id", "no such user")),
            }
        }
        Ok(())
    }

    /// Adds a task to a case the actor can see.
    pub async fn create_task(&self, actor: &Actor, case_id: &str, new: NewTask) -> Result<Task> {
        let case = self.case(actor, case_id).await?;
        let title = check_title(&new.title)?;
        let description = check_description(&new.description)?;
        self.check_assignee(actor, new.assignee_id.as_deref())
            .await?;
        let now = self.now();
        let task = Task {
            id: new_id(),
            case_id: case.id.clone(),
            title,
            description,
            assignee_id: new.assignee_id,
            due_at: new.due_at,
            status: "open".into(),
            priority: new.priority.unwrap_or(Priority::P2),
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO case_tasks (id, tenant_id, case_id, title, description, assignee_id, due_at, status, priority, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $9)",
        )
        .bind(&task.id)
        .bind(&actor.tenant_id)
        .bind(&task.case_id)
        .bind(&task.title)
        .bind(&task.description)
        .bind(task.assignee_id.as_deref())
        .bind(task.due_at.map(|t| t.0))
        .bind(task.priority.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "task.create",
                entity_kind: "task",
                entity_id: &task.id,
                subject_customer_id: case.customer_id.as_deref(),
                before: None,
                after: snapshot(&task),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "task.created", &task).case(&task.case_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(task)
    }

    /// One task (of a case the actor can see).
    pub async fn task(&self, actor: &Actor, id: &str) -> Result<Task> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM case_tasks WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let task = row
            .map(from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found("task"))?;
        // Visible when its case is.
        self.case(actor, &task.case_id).await?;
        Ok(task)
    }

    /// A case's tasks, open ones first by due time.
    pub async fn case_tasks(&self, actor: &Actor, case_id: &str) -> Result<Vec<Task>> {
        self.case(actor, case_id).await?;
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM case_tasks WHERE tenant_id = $1 AND case_id = $2
             ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, due_at IS NULL, due_at, created_at, id"
        )))
        .bind(&actor.tenant_id)
        .bind(case_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The actor's open tasks, soonest due first ("my tasks").
    pub async fn my_tasks(&self, actor: &Actor) -> Result<Vec<Task>> {
        let Some(me) = &actor.user_id else {
            return Ok(Vec::new());
        };
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM case_tasks WHERE tenant_id = $1 AND assignee_id = $2 AND status = 'open'
             ORDER BY due_at IS NULL, due_at, priority, created_at, id LIMIT 500"
        )))
        .bind(&actor.tenant_id)
        .bind(me)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Changes a task (title, description, assignee, due time, status, priority).
    pub async fn update_task(&self, actor: &Actor, id: &str, patch: TaskPatch) -> Result<Task> {
        let before = self.task(actor, id).await?;
        let mut after = before.clone();
        let now = self.now();
        if let Some(t) = &patch.title {
            after.title = check_title(t)?;
        }
        if let Some(d) = &patch.description {
            after.description = check_description(d)?;
        }
        if let Some(a) = patch.assignee_id {
            self.check_assignee(actor, a.as_deref()).await?;
            after.assignee_id = a;
        }
        if let Some(d) = patch.due_at {
            after.due_at = d;
        }
        if let Some(p) = patch.priority {
            after.priority = p;
        }
        if let Some(s) = &patch.status {
            if !["open", "done", "cancelled"].contains(&s.as_str()) {
                return Err(Error::invalid(
                    "status",
                    "must be one of: open done cancelled",
                ));
            }
            after.completed_at = match s.as_str() {
                "done" if before.status != "done" => Some(now),
                "done" => before.completed_at,
                _ => None,
            };
            after.status = s.clone();
        }
        after.updated_at = now;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE case_tasks SET title = $1, description = $2, assignee_id = $3, due_at = $4, status = $5,
                    priority = $6, updated_at = $7, completed_at = $8
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(&after.title)
        .bind(&after.description)
        .bind(after.assignee_id.as_deref())
        .bind(after.due_at.map(|t| t.0))
        .bind(&after.status)
        .bind(after.priority.as_str())
        .bind(now.0)
        .bind(after.completed_at.map(|t| t.0))
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "task.update",
                entity_kind: "task",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "task.updated", &after).case(&after.case_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }
}
