//! Cases: the unit of work that outlives any one conversation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{self, Record, snapshot};
use crate::case_types::validate_values;
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::sla::{AlwaysOpen, CaseStatus, Priority, SlaClock, SlaPolicy, check_transition};
use crate::store::Tx;
use crate::timeline::normalize_tags;
use crate::types::{
    Actor, Cursor, Page, Timestamp, from_json_text, into_page, json_text, new_id, page_limit,
};
use crate::{Error, Result, Store};

/// SLA figures of a case, with breach flags computed at read time.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CaseSla {
    /// First response due.
    pub first_response_due_at: Option<Timestamp>,
    /// Resolution due.
    pub resolution_due_at: Option<Timestamp>,
    /// When an agent first replied.
    pub first_responded_at: Option<Timestamp>,
    /// Set while paused (pending customer).
    pub paused_at: Option<Timestamp>,
    /// The first response came (or is still missing) after its due time.
    pub first_response_breached: bool,
    /// Resolution came (or is still missing) after its due time.
    pub resolution_breached: bool,
}

/// A relation between two cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Related.
    RelatesTo,
    /// This case duplicates the other.
    DuplicateOf,
    /// This case blocks the other.
    Blocks,
    /// This case is blocked by the other.
    BlockedBy,
    /// This case was merged into the other.
    MergedInto,
}

impl LinkKind {
    fn as_str(self) -> &'static str {
        match self {
            LinkKind::RelatesTo => "relates_to",
            LinkKind::DuplicateOf => "duplicate_of",
            LinkKind::Blocks => "blocks",
            LinkKind::BlockedBy => "blocked_by",
            LinkKind::MergedInto => "merged_into",
        }
    }

    fn parse(s: &str) -> Result<LinkKind> {
        Ok(match s {
            "relates_to" => LinkKind::RelatesTo,
            "duplicate_of" => LinkKind::DuplicateOf,
            "blocks" => LinkKind::Blocks,
            "blocked_by" => LinkKind::BlockedBy,
            "merged_into" => LinkKind::MergedInto,
            _ => {
                return Err(Error::invalid(
                    "kind",
                    "must be relates_to, duplicate_of, blocks or blocked_by",
                ));
            }
        })
    }

    /// The link as seen from the other case, if it has a mirror.
    fn inverse(self) -> Option<LinkKind> {
        match self {
            LinkKind::RelatesTo => Some(LinkKind::RelatesTo),
            LinkKind::Blocks => Some(LinkKind::BlockedBy),
            LinkKind::BlockedBy => Some(LinkKind::Blocks),
            LinkKind::DuplicateOf | LinkKind::MergedInto => None,
        }
    }
}

/// A link from this case to another.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CaseLink {
    /// The other case.
    pub case_id: String,
    /// Relation.
    pub kind: LinkKind,
}

/// A case.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Case {
    /// Id.
    pub id: String,
    /// Human number, unique in the tenant (#1, #2, …).
    pub number: i64,
    /// The customer it is about.
    pub customer_id: Option<String>,
    /// Its type (and so its form).
    pub case_type_id: Option<String>,
    /// Title.
    pub title: String,
    /// Status.
    pub status: CaseStatus,
    /// Priority.
    pub priority: Priority,
    /// Owning agent.
    pub assignee_id: Option<String>,
    /// Owning team.
    pub team_id: Option<String>,
    /// Values of the case type's custom fields.
    pub custom_fields: Map<String, Value>,
    /// Tags.
    pub tags: Vec<String>,
    /// Links to other cases.
    pub links: Vec<CaseLink>,
    /// Set when merged into another case.
    pub merged_into: Option<String>,
    /// SLA figures.
    pub sla: CaseSla,
    /// When resolved (last time).
    pub resolved_at: Option<Timestamp>,
    /// When closed (last time).
    pub closed_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input for [`Store::create_case`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewCase {
    /// Title.
    pub title: String,
    /// The customer.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Case type id.
    #[serde(default)]
    pub case_type_id: Option<String>,
    /// Priority (default P2).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Owning agent.
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// Owning team.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Custom field values.
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Changes for [`Store::update_case`]. For the nullable ids, `Some(None)` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CasePatch {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New priority (moves the SLA due times).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// New assignee, or null to unassign.
    #[serde(default, deserialize_with = "double_option")]
    pub assignee_id: Option<Option<String>>,
    /// New team, or null.
    #[serde(default, deserialize_with = "double_option")]
    pub team_id: Option<Option<String>>,
    /// Custom field values to set (merged over the current ones; null clears one).
    #[serde(default)]
    pub custom_fields: Option<Map<String, Value>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// Filters for [`Store::list_cases`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CaseFilter {
    /// Only this status.
    pub status: Option<CaseStatus>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only cases assigned to this user.
    pub assignee_id: Option<String>,
    /// Only this team's cases.
    pub team_id: Option<String>,
    /// Only cases with this tag.
    pub tag: Option<String>,
    /// Only this customer's cases.
    pub customer_id: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// One recorded change of a case.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CaseEvent {
    /// Id.
    pub id: String,
    /// Kind (`created`, `status_changed`, `assigned`, `priority_changed`, `updated`,
    /// `tagged`, `untagged`, `linked`, `merged_into`, `merged_from`).
    pub kind: String,
    /// Status before, for status changes.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: Option<String>,
    /// Who.
    pub actor_id: Option<String>,
    /// Details.
    pub data: Value,
    /// When.
    pub occurred_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct CaseEventRow {
    id: String,
    kind: String,
    from_status: Option<String>,
    to_status: Option<String>,
    actor_id: Option<String>,
    data: String,
    occurred_at: i64,
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: String,
    number: i64,
    customer_id: Option<String>,
    case_type_id: Option<String>,
    title: String,
    status: String,
    priority: String,
    assignee_id: Option<String>,
    team_id: Option<String>,
    custom_fields: String,
    merged_into: Option<String>,
    first_response_due_at: Option<i64>,
    resolution_due_at: Option<i64>,
    first_responded_at: Option<i64>,
    sla_paused_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const CASE_COLS: &str = "c.id, c.number, c.customer_id, c.case_type_id, c.title, c.status, c.priority, c.assignee_id, \
    c.team_id, c.custom_fields, c.merged_into, c.first_response_due_at, c.resolution_due_at, c.first_responded_at, \
    c.sla_paused_at, c.resolved_at, c.closed_at, c.created_at, c.updated_at";

fn breached(due: Option<i64>, done: Option<i64>, now: Timestamp) -> bool {
    due.is_some_and(|d| done.unwrap_or(now.0) > d)
}

impl CaseRow {
    fn into_case(self, now: Timestamp) -> Result<Case> {
        let status = CaseStatus::parse(&self.status)?;
        // The resolution clock stops at resolution, and does not run while paused.
        let resolution_done = match status {
            CaseStatus::Resolved | CaseStatus::Closed => self.resolved_at.or(self.closed_at),
            _ => self.sla_paused_at,
        };
        Ok(Case {
            status,
            priority: Priority::parse(&self.priority)?,
            custom_fields: from_json_text("case.custom_fields", &self.custom_fields)?,
            tags: vec![],
            links: vec![],
            sla: CaseSla {
                first_response_due_at: self.first_response_due_at.map(Timestamp),
                resolution_due_at: self.resolution_due_at.map(Timestamp),
                first_responded_at: self.first_responded_at.map(Timestamp),
                paused_at: self.sla_paused_at.map(Timestamp),
                first_response_breached: breached(
                    self.first_response_due_at,
                    self.first_responded_at,
                    now,
                ),
                resolution_breached: breached(self.resolution_due_at, resolution_done, now),
            },
            id: self.id,
            number: self.number,
            customer_id: self.customer_id,
            case_type_id: self.case_type_id,
            title: self.title,
            assignee_id: self.assignee_id,
            team_id: self.team_id,
            merged_into: self.merged_into,
            resolved_at: self.resolved_at.map(Timestamp),
            closed_at: self.closed_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }

    fn clock(&self) -> SlaClock {
        SlaClock {
            first_response_due_at: self.first_response_due_at.map(Timestamp),
            resolution_due_at: self.resolution_due_at.map(Timestamp),
            paused_at: self.sla_paused_at.map(Timestamp),
        }
    }
}

async fn record_event(
    tx: &mut Tx,
    actor: &Actor,
    case_id: &str,
    kind: &str,
    status: Option<(CaseStatus, CaseStatus)>,
    data: Value,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO case_events (id, tenant_id, case_id, kind, from_status, to_status, actor_id, data, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(&actor.tenant_id)
    .bind(case_id)
    .bind(kind)
    .bind(status.map(|(f, _)| f.as_str()))
    .bind(status.map(|(_, t)| t.as_str()))
    .bind(actor.user_id.as_deref())
    .bind(data.to_string())
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The tenant's SLA policies, by priority.
    pub async fn list_sla_policies(&self, actor: &Actor) -> Result<Vec<SlaPolicy>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT priority, first_response_minutes, resolution_minutes FROM sla_policies
             WHERE tenant_id = $1 ORDER BY priority",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(p, f, r)| {
                Ok(SlaPolicy {
                    priority: Priority::parse(&p)?,
                    first_response_minutes: f,
                    resolution_minutes: r,
                })
            })
            .collect()
    }

    async fn sla_policy(&self, actor: &Actor, p: Priority) -> Result<Option<SlaPolicy>> {
        Ok(self
            .list_sla_policies(actor)
            .await?
            .into_iter()
            .find(|x| x.priority == p))
    }

    /// Sets the targets for one priority. Applies to cases created or re-prioritised
    /// from now on.
    pub async fn set_sla_policy(&self, actor: &Actor, policy: SlaPolicy) -> Result<SlaPolicy> {
        if policy.first_response_minutes <= 0 || policy.resolution_minutes <= 0 {
            return Err(Error::invalid(
                "first_response_minutes",
                "targets must be positive minutes",
            ));
        }
        if policy.first_response_minutes > policy.resolution_minutes {
            return Err(Error::invalid(
                "first_response_minutes",
                "must not exceed resolution_minutes",
            ));
        }
        let before = self.sla_policy(actor, policy.priority).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, priority) DO UPDATE SET first_response_minutes = excluded.first_response_minutes,
                 resolution_minutes = excluded.resolution_minutes, updated_at = excluded.updated_at",
        )
        .bind(&actor.tenant_id)
        .bind(policy.priority.as_str())
        .bind(policy.first_response_minutes)
        .bind(policy.resolution_minutes)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "sla_policy.set",
                entity_kind: "sla_policy",
                entity_id: policy.priority.as_str(),
                subject_customer_id: None,
                before: before.as_ref().and_then(snapshot),
                after: snapshot(&policy),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "sla_policy.changed", &policy);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(policy)
    }

    async fn check_custom_fields(
        &self,
        actor: &Actor,
        case_type_id: Option<&str>,
        values: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        match case_type_id {
            Some(id) => {
                let ct = self.case_type(actor, id).await.map_err(|e| match e {
                    Error::NotFound { .. } => Error::invalid("case_type_id", "no such case type"),
                    e => e,
                })?;
                validate_values(&ct.fields, values)
            }
            None if values.is_empty() => Ok(Map::new()),
            None => Err(Error::invalid(
                "custom_fields",
                "custom fields need a case type",
            )),
        }
    }

    async fn check_refs(
        &self,
        actor: &Actor,
        assignee: Option<&str>,
        team: Option<&str>,
        customer: Option<&str>,
    ) -> Result<()> {
        let as_invalid = |field: &'static str| {
            move |e: Error| match e {
                Error::NotFound { .. } => Error::invalid(field, "does not exist in this tenant"),
                e => e,
            }
        };
        if let Some(a) = assignee {
            self.require(actor, "users", "user", a)
                .await
                .map_err(as_invalid("assignee_id"))?;
        }
        if let Some(t) = team {
            self.require(actor, "teams", "team", t)
                .await
                .map_err(as_invalid("team_id"))?;
        }
        if let Some(c) = customer {
            self.require(actor, "customers", "customer", c)
                .await
                .map_err(as_invalid("customer_id"))?;
        }
        Ok(())
    }

    /// Opens a case, computing its SLA due times from the priority's policy.
    pub async fn create_case(&self, actor: &Actor, new: NewCase) -> Result<Case> {
        let title = check_name("title", &new.title, 500)?;
        let priority = new.priority.unwrap_or(Priority::P2);
        let tags = normalize_tags(&new.tags)?;
        let customer_id = match &new.customer_id {
            Some(c) => Some(self.live_customer_id(actor, c).await.map_err(|e| match e {
                Error::NotFound { .. } => {
                    Error::invalid("customer_id", "does not exist in this tenant")
                }
                e => e,
            })?),
            None => None,
        };
        self.check_refs(
            actor,
            new.assignee_id.as_deref(),
            new.team_id.as_deref(),
            None,
        )
        .await?;
        let custom = self
            .check_custom_fields(actor, new.case_type_id.as_deref(), &new.custom_fields)
            .await?;
        let policy = self.sla_policy(actor, priority).await?;
        let now = self.now();
        let clock = SlaClock::start(&AlwaysOpen, now, policy.as_ref());
        let id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO tenant_counters (tenant_id, name, value) VALUES ($1, 'case_number', 0)
             ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(&actor.tenant_id)
        .execute(&mut *tx)
        .await?;
        let (number,): (i64,) = sqlx::query_as(
            "UPDATE tenant_counters SET value = value + 1 WHERE tenant_id = $1 AND name = 'case_number' RETURNING value",
        )
        .bind(&actor.tenant_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cases (id, tenant_id, number, customer_id, case_type_id, title, status, priority, assignee_id,
                                team_id, custom_fields, first_response_due_at, resolution_due_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'new', $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&id)
        .bind(&actor.tenant_id)
        .bind(number)
        .bind(customer_id.as_deref())
        .bind(new.case_type_id.as_deref())
        .bind(&title)
        .bind(priority.as_str())
        .bind(new.assignee_id.as_deref())
        .bind(new.team_id.as_deref())
        .bind(json_text(&custom))
        .bind(clock.first_response_due_at.map(|t| t.0))
        .bind(clock.resolution_due_at.map(|t| t.0))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        for tag in &tags {
            sqlx::query("INSERT INTO case_tags (tenant_id, case_id, tag) VALUES ($1, $2, $3)")
                .bind(&actor.tenant_id)
                .bind(&id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        record_event(
            &mut tx,
            actor,
            &id,
            "created",
            None,
            serde_json::json!({ "number": number, "priority": priority }),
            now,
        )
        .await?;
        let case = self.case_in(&mut tx, actor, &id, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.create",
                entity_kind: "case",
                entity_id: &id,
                subject_customer_id: case.customer_id.as_deref(),
                before: None,
                after: snapshot(&case),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [case_event("case.created", actor, &case)])
            .await?;
        Ok(case)
    }

    async fn case_in(&self, tx: &mut Tx, actor: &Actor, id: &str, now: Timestamp) -> Result<Case> {
        let row: Option<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases c WHERE c.tenant_id = $1 AND c.id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let mut case = row
            .ok_or_else(|| Error::not_found("case"))?
            .into_case(now)?;
        let tags: Vec<(String,)> = sqlx::query_as(
            "SELECT tag FROM case_tags WHERE tenant_id = $1 AND case_id = $2 ORDER BY tag",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        case.tags = tags.into_iter().map(|(t,)| t).collect();
        let links: Vec<(String, String)> = sqlx::query_as(
            "SELECT other_case_id, kind FROM case_links WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        case.links = links
            .into_iter()
            .map(|(case_id, kind)| {
                Ok(CaseLink {
                    case_id,
                    kind: LinkKind::parse(&kind)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(case)
    }

    /// One case with its tags and links.
    pub async fn case(&self, actor: &Actor, id: &str) -> Result<Case> {
        let mut tx = self.pool().begin().await?;
        let case = self.case_in(&mut tx, actor, id, self.now()).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn case_row(&self, tx: &mut Tx, actor: &Actor, id: &str) -> Result<CaseRow> {
        let row: Option<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases c WHERE c.tenant_id = $1 AND c.id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        row.ok_or_else(|| Error::not_found("case"))
    }

    /// Cases matching `f`, newest first.
    pub async fn list_cases(&self, actor: &Actor, f: &CaseFilter) -> Result<Page<Case>> {
        let limit = page_limit(f.limit);
        let cursor = f.cursor.as_deref().map(Cursor::decode).transpose()?;
        let rows: Vec<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases c
             WHERE c.tenant_id = $1
               AND ($2 IS NULL OR c.status = $2)
               AND ($3 IS NULL OR c.priority = $3)
               AND ($4 IS NULL OR c.assignee_id = $4)
               AND ($5 IS NULL OR c.team_id = $5)
               AND ($6 IS NULL OR EXISTS (SELECT 1 FROM case_tags t WHERE t.case_id = c.id AND t.tag = $6))
               AND ($7 IS NULL OR c.customer_id = $7)
               AND ($8 IS NULL OR c.created_at < $8 OR (c.created_at = $8 AND c.id < $9))
             ORDER BY c.created_at DESC, c.id DESC LIMIT $10"
        )))
        .bind(&actor.tenant_id)
        .bind(f.status.map(CaseStatus::as_str))
        .bind(f.priority.map(Priority::as_str))
        .bind(f.assignee_id.as_deref())
        .bind(f.team_id.as_deref())
        .bind(f.tag.as_deref().map(|t| t.trim().to_lowercase()))
        .bind(f.customer_id.as_deref())
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id.clone()))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let now = self.now();
        let mut cases = rows
            .into_iter()
            .map(|r| r.into_case(now))
            .collect::<Result<Vec<_>>>()?;
        // One query for the page's tags rather than one per case.
        if !cases.is_empty() {
            let placeholders: Vec<String> =
                (0..cases.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT case_id, tag FROM case_tags WHERE tenant_id = $1 AND case_id IN ({}) ORDER BY tag",
                placeholders.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql))
                .bind(&actor.tenant_id);
            for c in &cases {
                q = q.bind(c.id.clone());
            }
            for (case_id, tag) in q.fetch_all(self.pool()).await? {
                if let Some(c) = cases.iter_mut().find(|c| c.id == case_id) {
                    c.tags.push(tag);
                }
            }
        }
        Ok(into_page(cases, limit, |c| Cursor {
            at: c.created_at.0,
            id: c.id.clone(),
        }))
    }

    /// Changes title, priority, assignment or custom fields; each change is recorded.
    pub async fn update_case(&self, actor: &Actor, id: &str, patch: CasePatch) -> Result<Case> {
        let before = self.case(actor, id).await?;
        let title = patch
            .title
            .as_deref()
            .map(|t| check_name("title", t, 500))
            .transpose()?;
        let assignee = patch
            .assignee_id
            .clone()
            .unwrap_or(before.assignee_id.clone());
        let team = patch.team_id.clone().unwrap_or(before.team_id.clone());
        self.check_refs(actor, assignee.as_deref(), team.as_deref(), None)
            .await?;
        let custom = match &patch.custom_fields {
            Some(changes) => {
                let mut merged = before.custom_fields.clone();
                for (k, v) in changes {
                    merged.insert(k.clone(), v.clone());
                }
                self.check_custom_fields(actor, before.case_type_id.as_deref(), &merged)
                    .await?
            }
            None => before.custom_fields.clone(),
        };
        let priority = patch.priority.unwrap_or(before.priority);
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row = self.case_row(&mut tx, actor, id).await?;
        let mut clock = row.clock();
        if priority != before.priority {
            let old = self.sla_policy(actor, before.priority).await?;
            let new = self.sla_policy(actor, priority).await?;
            clock =
                clock.on_policy_change(old.as_ref(), new.as_ref(), before.created_at, &AlwaysOpen);
            record_event(
                &mut tx,
                actor,
                id,
                "priority_changed",
                None,
                serde_json::json!({ "from": before.priority, "to": priority }),
                now,
            )
            .await?;
        }
        if assignee != before.assignee_id || team != before.team_id {
            record_event(
                &mut tx,
                actor,
                id,
                "assigned",
                None,
                serde_json::json!({ "assignee_id": assignee, "team_id": team }),
                now,
            )
            .await?;
        }
        if title.is_some() || patch.custom_fields.is_some() {
            record_event(
                &mut tx,
                actor,
                id,
                "updated",
                None,
                serde_json::json!({ "title": title, "custom_fields": patch.custom_fields }),
                now,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE cases SET title = $1, priority = $2, assignee_id = $3, team_id = $4, custom_fields = $5,
                 first_response_due_at = $6, resolution_due_at = $7, updated_at = $8
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(title.as_deref().unwrap_or(&before.title))
        .bind(priority.as_str())
        .bind(assignee.as_deref())
        .bind(team.as_deref())
        .bind(json_text(&custom))
        .bind(clock.first_response_due_at.map(|t| t.0))
        .bind(clock.resolution_due_at.map(|t| t.0))
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let after = self.case_in(&mut tx, actor, id, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.update",
                entity_kind: "case",
                entity_id: id,
                subject_customer_id: after.customer_id.as_deref(),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [case_event("case.updated", actor, &after)])
            .await?;
        Ok(after)
    }

    /// Moves a case to `to` if the status machine allows it (see
    /// [`crate::sla::check_transition`]); the change, its SLA effect and its event are
    /// written together, and a concurrent change makes this fail rather than overwrite.
    pub async fn transition_case(
        &self,
        actor: &Actor,
        id: &str,
        to: CaseStatus,
        reason: Option<&str>,
    ) -> Result<Case> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row = self.case_row(&mut tx, actor, id).await?;
        let from = CaseStatus::parse(&row.status)?;
        if row.merged_into.is_some() {
            return Err(Error::InvalidTransition {
                entity: "case",
                from: "merged".into(),
                to: to.as_str().into(),
            });
        }
        check_transition(from, to)?;
        let before = self.case_in(&mut tx, actor, id, now).await?;
        let policy = self.sla_policy(actor, before.priority).await?;
        let clock = row
            .clock()
            .on_transition(&AlwaysOpen, now, from, to, policy.as_ref());
        let reopening = matches!(from, CaseStatus::Resolved | CaseStatus::Closed);
        let done = sqlx::query(
            "UPDATE cases SET status = $1, first_response_due_at = $2, resolution_due_at = $3, sla_paused_at = $4,
                 resolved_at = CASE WHEN $1 = 'resolved' THEN $5 WHEN $6 = 1 THEN NULL ELSE resolved_at END,
                 closed_at = CASE WHEN $1 = 'closed' THEN $5 WHEN $6 = 1 THEN NULL ELSE closed_at END,
                 updated_at = $5
             WHERE tenant_id = $7 AND id = $8 AND status = $9",
        )
        .bind(to.as_str())
        .bind(clock.first_response_due_at.map(|t| t.0))
        .bind(clock.resolution_due_at.map(|t| t.0))
        .bind(clock.paused_at.map(|t| t.0))
        .bind(now.0)
        .bind(i64::from(reopening))
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict {
                entity: "case",
                field: "status".into(),
                detail: Some("changed concurrently; reload and retry".into()),
            });
        }
        let data = serde_json::json!({ "reason": reason, "reopened": reopening });
        record_event(
            &mut tx,
            actor,
            id,
            "status_changed",
            Some((from, to)),
            data,
            now,
        )
        .await?;
        let after = self.case_in(&mut tx, actor, id, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.transition",
                entity_kind: "case",
                entity_id: id,
                subject_customer_id: after.customer_id.as_deref(),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [case_event("case.status_changed", actor, &after)],
        )
        .await?;
        Ok(after)
    }

    /// Every recorded change of a case, oldest first.
    pub async fn case_events(&self, actor: &Actor, id: &str) -> Result<Vec<CaseEvent>> {
        self.require(actor, "cases", "case", id).await?;
        let rows: Vec<CaseEventRow> = sqlx::query_as(
            "SELECT id, kind, from_status, to_status, actor_id, data, occurred_at FROM case_events
             WHERE tenant_id = $1 AND case_id = $2 ORDER BY occurred_at, id",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CaseEvent {
                    data: from_json_text("case_event.data", &r.data)?,
                    id: r.id,
                    kind: r.kind,
                    from_status: r.from_status,
                    to_status: r.to_status,
                    actor_id: r.actor_id,
                    occurred_at: Timestamp(r.occurred_at),
                })
            })
            .collect()
    }

    /// Adds or removes tags.
    pub async fn tag_case(
        &self,
        actor: &Actor,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Case> {
        let add = normalize_tags(add)?;
        let remove = normalize_tags(remove)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before = self.case_in(&mut tx, actor, id, now).await?;
        for t in &add {
            sqlx::query("INSERT INTO case_tags (tenant_id, case_id, tag) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&actor.tenant_id)
                .bind(id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        for t in &remove {
            sqlx::query("DELETE FROM case_tags WHERE tenant_id = $1 AND case_id = $2 AND tag = $3")
                .bind(&actor.tenant_id)
                .bind(id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        if !add.is_empty() {
            record_event(
                &mut tx,
                actor,
                id,
                "tagged",
                None,
                serde_json::json!({ "tags": add }),
                now,
            )
            .await?;
        }
        if !remove.is_empty() {
            record_event(
                &mut tx,
                actor,
                id,
                "untagged",
                None,
                serde_json::json!({ "tags": remove }),
                now,
            )
            .await?;
        }
        sqlx::query("UPDATE cases SET updated_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let after = self.case_in(&mut tx, actor, id, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.tag",
                entity_kind: "case",
                entity_id: id,
                subject_customer_id: after.customer_id.as_deref(),
                before: snapshot(&before.tags),
                after: snapshot(&after.tags),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [case_event("case.updated", actor, &after)])
            .await?;
        Ok(after)
    }

    /// Links two cases (with the mirror link on the other case where there is one).
    pub async fn link_cases(
        &self,
        actor: &Actor,
        id: &str,
        other: &str,
        kind: &str,
    ) -> Result<Case> {
        let kind = LinkKind::parse(kind)?;
        if kind == LinkKind::MergedInto {
            return Err(Error::invalid(
                "kind",
                "use the merge operation to merge cases",
            ));
        }
        if id == other {
            return Err(Error::invalid("case_id", "a case cannot link to itself"));
        }
        self.require(actor, "cases", "case", other)
            .await
            .map_err(|_| Error::invalid("case_id", "no such case"))?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        self.case_row(&mut tx, actor, id).await?;
        self.insert_link(&mut tx, actor, id, other, kind, now)
            .await?;
        if let Some(inv) = kind.inverse() {
            self.insert_link(&mut tx, actor, other, id, inv, now)
                .await?;
        }
        record_event(
            &mut tx,
            actor,
            id,
            "linked",
            None,
            serde_json::json!({ "case_id": other, "kind": kind }),
            now,
        )
        .await?;
        let after = self.case_in(&mut tx, actor, id, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.link",
                entity_kind: "case",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: Some(serde_json::json!({ "case_id": other, "kind": kind })),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [case_event("case.updated", actor, &after)])
            .await?;
        Ok(after)
    }

    async fn insert_link(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        from: &str,
        to: &str,
        kind: LinkKind,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO case_links (tenant_id, case_id, other_case_id, kind, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&actor.tenant_id)
        .bind(from)
        .bind(to)
        .bind(kind.as_str())
        .bind(now.0)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Merges `source` into `target`: the source's interactions and tags move to the
    /// target, the source is closed with `merged_into` set (never deleted), and both
    /// cases record the merge.
    pub async fn merge_cases(&self, actor: &Actor, source: &str, target: &str) -> Result<Case> {
        if source == target {
            return Err(Error::invalid("into", "cannot merge a case into itself"));
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let src = self.case_row(&mut tx, actor, source).await?;
        let dst = self
            .case_row(&mut tx, actor, target)
            .await
            .map_err(|_| Error::invalid("into", "no such case"))?;
        if src.merged_into.is_some() || dst.merged_into.is_some() {
            return Err(Error::Conflict {
                entity: "case",
                field: "merged_into".into(),
                detail: Some("already merged".into()),
            });
        }
        let from = CaseStatus::parse(&src.status)?;
        sqlx::query("UPDATE interactions SET case_id = $1 WHERE tenant_id = $2 AND case_id = $3")
            .bind(target)
            .bind(&actor.tenant_id)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO case_tags (tenant_id, case_id, tag)
             SELECT tenant_id, $1, tag FROM case_tags WHERE tenant_id = $2 AND case_id = $3
             ON CONFLICT DO NOTHING",
        )
        .bind(target)
        .bind(&actor.tenant_id)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE cases SET merged_into = $1, status = 'closed', closed_at = $2, updated_at = $2, sla_paused_at = NULL
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(target)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        self.insert_link(&mut tx, actor, source, target, LinkKind::MergedInto, now)
            .await?;
        record_event(
            &mut tx,
            actor,
            source,
            "merged_into",
            Some((from, CaseStatus::Closed)),
            serde_json::json!({ "case_id": target }),
            now,
        )
        .await?;
        record_event(
            &mut tx,
            actor,
            target,
            "merged_from",
            None,
            serde_json::json!({ "case_id": source, "number": src.number }),
            now,
        )
        .await?;
        let after = self.case_in(&mut tx, actor, target, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case.merge",
                entity_kind: "case",
                entity_id: target,
                subject_customer_id: after.customer_id.as_deref(),
                before: None,
                after: Some(serde_json::json!({ "merged": source, "into": target })),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [case_event("case.updated", actor, &after)])
            .await?;
        Ok(after)
    }
}

/// The event of a case mutation.
fn case_event(kind: &'static str, actor: &Actor, case: &Case) -> DomainEvent {
    let mut e = DomainEvent::new(&actor.tenant_id, kind, case).case(&case.id);
    e.customer_id = case.customer_id.clone();
    e
}
