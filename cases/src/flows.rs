//! IVR administration storage: flows with a draft and immutable published versions,
//! publish/rollback history, business-hours calendars, routes from dialled numbers to
//! flows, and metadata of uploaded prompts.
//!
//! This module stores flow documents as JSON text and does not interpret them: the flow
//! model and its validator live in `parley-ivr`, and the HTTP layer validates a draft
//! before it calls [`Store::publish_flow`]. What this module guarantees on its own:
//!
//! - a published version is never changed or deleted; its `definition` is the exact
//!   text that was validated (publishing fails with a conflict if the draft changed in
//!   between);
//! - exactly one version is current, and every change of the current version (publish
//!   or rollback) is an [`FlowEvent`] plus an audit record, in the same transaction;
//! - the prompts a published version plays cannot be deleted (rollback must work);
//! - a dialled number routes to one flow of one tenant, which must have been published.

use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;

use crate::audit::{self, Record, snapshot};
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::identity::IdentityKind;
use crate::outbox::Audited;
use crate::store::Tx;
use crate::types::{Actor, Role, Timestamp, new_id};
use crate::{Error, Result, Store};

/// Largest flow or calendar document stored, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The demo tenant's flow (greeting, business-hours branch, menu, queues, voicemail,
/// survey), the same file the `parley-ivr` fixture tests run.
pub const DEMO_FLOW_JSON: &str = include_str!("../../ivr/tests/fixtures/flows/demo.json");

/// Business-hours calendars the demo tenant gets (`main`: open around the clock, every
/// day, so a first call at any hour reaches the menu and an agent; the admin sets real
/// hours in Admin → Business hours). The `parley-ivr` fixture tests run the demo flow
/// against New York office hours instead (`ivr/tests/fixtures/calendars.json`).
pub const DEMO_CALENDARS_JSON: &str = include_str!("demo_calendars.json");

/// The demo number routed to the demo flow.
pub const DEMO_NUMBER: &str = "+15550100";

/// An IVR flow: its editable draft and the pointer to its current published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IvrFlow {
    /// The flow's id (the `id` of its JSON), unique in the tenant.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The draft document (JSON text), not necessarily valid.
    pub draft: String,
    /// The version calls run, if the flow was ever published.
    pub current_version: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change of the draft or of the current version.
    pub updated_at: Timestamp,
}

/// A published version of a flow. Immutable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowVersion {
    /// The flow.
    pub flow_id: String,
    /// 1, 2, 3...
    pub version: i64,
    /// The exact JSON that was published.
    pub definition: String,
    /// Who published it (`None`: the system).
    pub published_by: Option<String>,
    /// When.
    pub published_at: Timestamp,
}

/// How a version became current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FlowEventKind {
    /// A new version was published.
    Publish,
    /// An earlier version was made current again.
    Rollback,
}

impl FlowEventKind {
    fn as_str(self) -> &'static str {
        match self {
            FlowEventKind::Publish => "publish",
            FlowEventKind::Rollback => "rollback",
        }
    }

    fn parse(s: &str) -> Result<FlowEventKind> {
        match s {
            "publish" => Ok(FlowEventKind::Publish),
            "rollback" => Ok(FlowEventKind::Rollback),
            _ => Err(Error::invalid("kind", "unknown flow event kind")),
        }
    }
}

/// One change of a flow's current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FlowEvent {
    /// Id.
    pub id: String,
    /// The flow.
    pub flow_id: String,
    /// Publish or rollback.
    pub kind: FlowEventKind,
    /// The version that became current.
    pub version: i64,
    /// The version that was current before, if any.
    pub from_version: Option<i64>,
    /// Who (`None`: the system).
    pub actor_id: Option<String>,
    /// When.
    pub occurred_at: Timestamp,
}

/// A named business-hours calendar (JSON: time zone, weekly hours, holidays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IvrCalendar {
    /// Name referenced by `business_hours` / `holiday` conditions.
    pub name: String,
    /// The calendar document (JSON text).
    pub definition: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A dialled number routed to a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Route {
    /// E.164 number, e.g. `+15550100`.
    pub number: String,
    /// The flow calls to this number run (its current version).
    pub flow_id: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Where an inbound call to a number goes: the tenant and flow, found by number alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundRoute {
    /// The tenant owning the number.
    pub tenant_id: String,
    /// The number, E.164.
    pub number: String,
    /// The flow.
    pub flow_id: String,
    /// Its current version (routes only point at published flows).
    pub version: i64,
}

/// Metadata of an uploaded prompt; the audio is a file under the storage root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PromptMeta {
    /// Id, referenced by flows as `{"file": "<id>"}`.
    pub id: String,
    /// Name shown to admins.
    pub name: String,
    /// `audio/wav`, `audio/mpeg`, `audio/ogg` or `audio/flac`.
    pub content_type: String,
    /// Decoded duration in milliseconds.
    pub duration_ms: i64,
    /// File size in bytes.
    pub size_bytes: i64,
    /// Path of the file relative to the storage root.
    pub storage_path: String,
    /// Uploaded by (`None`: the system).
    pub created_by: Option<String>,
    /// Uploaded.
    pub created_at: Timestamp,
}

/// A prompt to record (the file is already in place at `storage_path`).
#[derive(Debug, Clone)]
pub struct NewPrompt {
    /// Id from [`new_prompt_id`] (chosen before the file is written, as it names it).
    pub id: String,
    /// Name shown to admins.
    pub name: String,
    /// Content type.
    pub content_type: String,
    /// Decoded duration in milliseconds.
    pub duration_ms: i64,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Path relative to the storage root.
    pub storage_path: String,
}

/// A fresh prompt id.
pub fn new_prompt_id() -> String {
    new_id()
}

/// Checks an id of a flow or calendar: 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn check_key(field: &'static str, id: &str) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(Error::invalid(
            field,
            "must be 1 to 64 of A-Z a-z 0-9 _ . -",
        ))
    }
}

/// Checks that `doc` is a JSON object of reasonable size; returns it parsed.
fn check_document(field: &'static str, doc: &str) -> Result<serde_json::Map<String, Value>> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    match serde_json::from_str::<Value>(doc) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::invalid(field, "must be a JSON object")),
        Err(e) => Err(Error::invalid(field, format!("is not JSON: {e}"))),
    }
}

/// Checks a draft: a JSON object whose `id` is the flow's id.
fn check_draft(flow_id: &str, draft: &str) -> Result<()> {
    let doc = check_document("draft", draft)?;
    match doc.get("id") {
        Some(Value::String(id)) if id == flow_id => Ok(()),
        _ => Err(Error::invalid(
            "id",
            format!("the flow document's id must be {flow_id:?}"),
        )),
    }
}

/// What the audit log keeps of a flow: not the (possibly large) draft, but its digest.
#[derive(Serialize)]
struct FlowSnapshot<'a> {
    id: &'a str,
    name: &'a str,
    current_version: Option<i64>,
    draft_sha256: String,
    draft_bytes: usize,
}

fn flow_snapshot(f: &IvrFlow) -> Option<Value> {
    let digest = sha2::Sha256::digest(f.draft.as_bytes());
    snapshot(&FlowSnapshot {
        id: &f.id,
        name: &f.name,
        current_version: f.current_version,
        draft_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        draft_bytes: f.draft.len(),
    })
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    id: String,
    name: String,
    draft: String,
    current_version: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<FlowRow> for IvrFlow {
    fn from(r: FlowRow) -> IvrFlow {
        IvrFlow {
            id: r.id,
            name: r.name,
            draft: r.draft,
            current_version: r.current_version,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    flow_id: String,
    version: i64,
    definition: String,
    published_by: Option<String>,
    published_at: i64,
}

impl From<VersionRow> for FlowVersion {
    fn from(r: VersionRow) -> FlowVersion {
        FlowVersion {
            flow_id: r.flow_id,
            version: r.version,
            definition: r.definition,
            published_by: r.published_by,
            published_at: Timestamp(r.published_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct PromptRow {
    id: String,
    name: String,
    content_type: String,
    duration_ms: i64,
    size_bytes: i64,
    storage_path: String,
    created_by: Option<String>,
    created_at: i64,
}

impl From<PromptRow> for PromptMeta {
    fn from(r: PromptRow) -> PromptMeta {
        PromptMeta {
            id: r.id,
            name: r.name,
            content_type: r.content_type,
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            storage_path: r.storage_path,
            created_by: r.created_by,
            created_at: Timestamp(r.created_at),
        }
    }
}

const FLOW_COLS: &str = "id, name, draft, current_version, created_at, updated_at";
const VERSION_COLS: &str = "flow_id, version, definition, published_by, published_at";
const PROMPT_COLS: &str =
    "id, name, content_type, duration_ms, size_bytes, storage_path, created_by, created_at";

/// Normalises a dialled number to E.164 (`+1 555-0100` → `+15550100`).
pub fn normalize_number(field: &str, number: &str) -> Result<String> {
    IdentityKind::Phone.normalize(field, number)
}

impl Store {
    /// Creates a flow with its first draft (`draft` is the flow's JSON; its `id` must be `id`).
    pub async fn create_flow(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
        draft: &str,
    ) -> Result<IvrFlow> {
        let id = check_key("id", id)?;
        let name = check_name("name", name, 200)?;
        check_draft(&id, draft)?;
        let now = self.now();
        let flow = IvrFlow {
            id,
            name,
            draft: draft.to_owned(),
            current_version: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO ivr_flows (tenant_id, id, name, draft, current_version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, NULL, $5, $5)",
        )
        .bind(&actor.tenant_id)
        .bind(&flow.id)
        .bind(&flow.name)
        .bind(&flow.draft)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "flow", "id"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_flow.create",
                entity_kind: "ivr_flow",
                entity_id: &flow.id,
                subject_customer_id: None,
                before: None,
                after: flow_snapshot(&flow),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ivr_flow.created", &flow_snapshot(&flow))
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(flow)
    }

    /// Replaces a flow's draft and name. Published versions are not affected.
    pub async fn update_flow_draft(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
        draft: &str,
    ) -> Result<IvrFlow> {
        let name = check_name("name", name, 200)?;
        check_draft(id, draft)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before = lock_flow(&mut tx, actor, id, now).await?;
        let after = IvrFlow {
            name,
            draft: draft.to_owned(),
            updated_at: now,
            ..before.clone()
        };
        sqlx::query("UPDATE ivr_flows SET name = $1, draft = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(&after.name)
            .bind(&after.draft)
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_flow.update_draft",
                entity_kind: "ivr_flow",
                entity_id: id,
                subject_customer_id: None,
                before: flow_snapshot(&before),
                after: flow_snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "ivr_flow.draft_updated",
            &flow_snapshot(&after),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// One flow.
    pub async fn flow(&self, actor: &Actor, id: &str) -> Result<IvrFlow> {
        let row: Option<FlowRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FLOW_COLS} FROM ivr_flows WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(IvrFlow::from)
            .ok_or_else(|| Error::not_found("flow"))
    }

    /// The tenant's flows, by id.
    pub async fn list_flows(&self, actor: &Actor) -> Result<Vec<IvrFlow>> {
        let rows: Vec<FlowRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FLOW_COLS} FROM ivr_flows WHERE tenant_id = $1 ORDER BY id"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(IvrFlow::from).collect())
    }

    /// Publishes `definition` as the flow's next version and makes it current.
    ///
    /// `definition` must be the flow's draft as it is stored (the caller validated exactly
    /// that text); if the draft changed meanwhile this is a conflict on `draft`.
    /// `prompt_ids` are the uploaded prompts the definition plays: each must exist in
    /// the tenant, and stays undeletable while this version exists (that is, forever).
    pub async fn publish_flow(
        &self,
        actor: &Actor,
        id: &str,
        definition: &str,
        prompt_ids: &[String],
    ) -> Result<FlowVersion> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before = lock_flow(&mut tx, actor, id, now).await?;
        if before.draft != definition {
            return Err(Error::Conflict {
                entity: "flow",
                field: "draft".into(),
                detail: Some("the draft changed while it was being published; try again".into()),
            });
        }
        for p in prompt_ids {
            let found: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM ivr_prompts WHERE tenant_id = $1 AND id = $2")
                    .bind(&actor.tenant_id)
                    .bind(p)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(Error::invalid(
                    "prompts",
                    format!("prompt {p:?} does not exist"),
                ));
            }
        }
        let (max,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(version) FROM ivr_flow_versions WHERE tenant_id = $1 AND flow_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let version = FlowVersion {
            flow_id: id.to_owned(),
            version: max.unwrap_or(0) + 1,
            definition: definition.to_owned(),
            published_by: actor.user_id.clone(),
            published_at: now,
        };
        sqlx::query(
            "INSERT INTO ivr_flow_versions (tenant_id, flow_id, version, definition, published_by, published_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(version.version)
        .bind(&version.definition)
        .bind(version.published_by.as_deref())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let mut seen = std::collections::BTreeSet::new();
        for p in prompt_ids.iter().filter(|p| seen.insert(p.as_str())) {
            sqlx::query(
                "INSERT INTO ivr_version_prompts (tenant_id, flow_id, version, prompt_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(&actor.tenant_id)
            .bind(id)
            .bind(version.version)
            .bind(p)
            .execute(&mut *tx)
            .await?;
        }
        let (after, audited) = set_current(
            &mut tx,
            actor,
            now,
            &before,
            version.version,
            FlowEventKind::Publish,
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "ivr_flow.published",
            &flow_snapshot(&after),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(version)
    }

    /// Makes an earlier published version current again. Nothing is deleted; the change
    /// is recorded as a rollback event.
    pub async fn rollback_flow(&self, actor: &Actor, id: &str, version: i64) -> Result<IvrFlow> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before = lock_flow(&mut tx, actor, id, now).await?;
        let exists: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM ivr_flow_versions WHERE tenant_id = $1 AND flow_id = $2 AND version = $3",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(Error::not_found("flow version"));
        }
        if before.current_version == Some(version) {
            return Err(Error::invalid(
                "version",
                format!("version {version} is already current"),
            ));
        }
        let (after, audited) = set_current(
            &mut tx,
            actor,
            now,
            &before,
            version,
            FlowEventKind::Rollback,
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "ivr_flow.rolled_back",
            &flow_snapshot(&after),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(after)
    }

    /// The flow's published versions, newest first.
    pub async fn flow_versions(&self, actor: &Actor, id: &str) -> Result<Vec<FlowVersion>> {
        self.flow(actor, id).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLS} FROM ivr_flow_versions WHERE tenant_id = $1 AND flow_id = $2 ORDER BY version DESC"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(FlowVersion::from).collect())
    }

    /// One published version.
    pub async fn flow_version(&self, actor: &Actor, id: &str, version: i64) -> Result<FlowVersion> {
        let row: Option<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLS} FROM ivr_flow_versions WHERE tenant_id = $1 AND flow_id = $2 AND version = $3"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.map(FlowVersion::from)
            .ok_or_else(|| Error::not_found("flow version"))
    }

    /// The current version of every published flow of the tenant (what calls run,
    /// sub-flows included), by flow id.
    pub async fn published_flows(&self, actor: &Actor) -> Result<Vec<FlowVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT v.flow_id, v.version, v.definition, v.published_by, v.published_at
             FROM ivr_flows f JOIN ivr_flow_versions v
               ON v.tenant_id = f.tenant_id AND v.flow_id = f.id AND v.version = f.current_version
             WHERE f.tenant_id = $1 ORDER BY f.id",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(FlowVersion::from).collect())
    }

    /// Publish and rollback events of a flow, oldest first.
    pub async fn flow_events(&self, actor: &Actor, id: &str) -> Result<Vec<FlowEvent>> {
        self.flow(actor, id).await?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(String, String, String, i64, Option<i64>, Option<String>, i64)> =
            sqlx::query_as(
                "SELECT id, flow_id, kind, version, from_version, actor_id, occurred_at
                 FROM ivr_flow_events WHERE tenant_id = $1 AND flow_id = $2 ORDER BY occurred_at, id",
            )
            .bind(&actor.tenant_id)
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|(id, flow_id, kind, version, from_version, actor_id, at)| {
                Ok(FlowEvent {
                    id,
                    flow_id,
                    kind: FlowEventKind::parse(&kind)?,
                    version,
                    from_version,
                    actor_id,
                    occurred_at: Timestamp(at),
                })
            })
            .collect()
    }

    /// Creates or replaces a business-hours calendar (a JSON object; the HTTP layer
    /// checks its shape with `parley-ivr`).
    pub async fn set_calendar(
        &self,
        actor: &Actor,
        name: &str,
        definition: &str,
    ) -> Result<IvrCalendar> {
        let name = check_key("name", name)?;
        check_document("calendar", definition)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before: Option<(String,)> = sqlx::query_as(
            "SELECT definition FROM ivr_calendars WHERE tenant_id = $1 AND name = $2",
        )
        .bind(&actor.tenant_id)
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ivr_calendars (tenant_id, name, definition, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
        )
        .bind(&actor.tenant_id)
        .bind(&name)
        .bind(definition)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_calendar.set",
                entity_kind: "ivr_calendar",
                entity_id: &name,
                subject_customer_id: None,
                before: before.and_then(|(d,)| parse(&d)),
                after: parse(definition),
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "ivr_calendar.changed",
            &serde_json::json!({ "name": name }),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(IvrCalendar {
            name,
            definition: definition.to_owned(),
            updated_at: now,
        })
    }

    /// The tenant's calendars, by name.
    pub async fn calendars(&self, actor: &Actor) -> Result<Vec<IvrCalendar>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, definition, updated_at FROM ivr_calendars WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, definition, at)| IvrCalendar {
                name,
                definition,
                updated_at: Timestamp(at),
            })
            .collect())
    }

    /// Routes `number` (normalised to E.164) to a published flow, replacing the tenant's
    /// previous route for it. A number the tenant does not hold (as a phone number of
    /// one of its trunks) is a conflict, "number not available", whoever holds it.
    pub async fn set_route(&self, actor: &Actor, number: &str, flow_id: &str) -> Result<Route> {
        let number = normalize_number("number", number)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let flow: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT current_version FROM ivr_flows WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(flow_id)
        .fetch_optional(&mut *tx)
        .await?;
        match flow {
            None => return Err(Error::invalid("flow_id", "no such flow")),
            Some((None,)) => {
                return Err(Error::invalid(
                    "flow_id",
                    "the flow has no published version",
                ));
            }
            Some((Some(_),)) => {}
        }
        // A tenant routes only numbers it holds (issue #13): the same answer whether
        // another tenant holds the number or nobody does.
        let owned: Option<(String,)> =
            sqlx::query_as("SELECT id FROM phone_numbers WHERE tenant_id = $1 AND number = $2")
                .bind(&actor.tenant_id)
                .bind(&number)
                .fetch_optional(&mut *tx)
                .await?;
        if owned.is_none() {
            return Err(Error::Conflict {
                entity: "route",
                field: "number".into(),
                detail: Some(crate::telephony::NUMBER_NOT_AVAILABLE.into()),
            });
        }
        let before = route_in(&mut tx, actor, &number).await?;
        let res = sqlx::query(
            "INSERT INTO ivr_routes (number, tenant_id, flow_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (number) DO UPDATE SET flow_id = excluded.flow_id, updated_at = excluded.updated_at
             WHERE ivr_routes.tenant_id = excluded.tenant_id",
        )
        .bind(&number)
        .bind(&actor.tenant_id)
        .bind(flow_id)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(Error::Conflict {
                entity: "route",
                field: "number".into(),
                detail: Some(crate::telephony::NUMBER_NOT_AVAILABLE.into()),
            });
        }
        let after = Route {
            number: number.clone(),
            flow_id: flow_id.to_owned(),
            created_at: before.as_ref().map_or(now, |r| r.created_at),
            updated_at: now,
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_route.set",
                entity_kind: "ivr_route",
                entity_id: &number,
                subject_customer_id: None,
                before: before.as_ref().and_then(snapshot),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ivr_route.changed", &after)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(after)
    }

    /// Removes the tenant's route for `number`.
    pub async fn delete_route(&self, actor: &Actor, number: &str) -> Result<Route> {
        let number = normalize_number("number", number)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let before = route_in(&mut tx, actor, &number)
            .await?
            .ok_or_else(|| Error::not_found("route"))?;
        sqlx::query("DELETE FROM ivr_routes WHERE tenant_id = $1 AND number = $2")
            .bind(&actor.tenant_id)
            .bind(&number)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_route.delete",
                entity_kind: "ivr_route",
                entity_id: &number,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ivr_route.deleted", &before)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(before)
    }

    /// The tenant's routes, by number.
    pub async fn list_routes(&self, actor: &Actor) -> Result<Vec<Route>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT number, flow_id, created_at, updated_at FROM ivr_routes WHERE tenant_id = $1 ORDER BY number",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(number, flow_id, c, u)| Route {
                number,
                flow_id,
                created_at: Timestamp(c),
                updated_at: Timestamp(u),
            })
            .collect())
    }

    /// Inbound routing: the tenant, flow and current version for a dialled number, found by
    /// number alone (any punctuation; the number is normalised). `None` when the number
    /// is not routed, not a phone number, or not held by the routing tenant (a route
    /// left from before numbers were checked never takes another tenant's calls).
    /// Cached (see [`crate::lookups`]).
    pub async fn inbound_route(&self, number: &str) -> Result<Option<InboundRoute>> {
        self.inbound_route_cached(number).await
    }

    pub(crate) async fn inbound_route_db(&self, number: &str) -> Result<Option<InboundRoute>> {
        let Ok(number) = normalize_number("number", number) else {
            return Ok(None);
        };
        let row: Option<(String, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT r.tenant_id, r.number, r.flow_id, f.current_version
             FROM ivr_routes r JOIN ivr_flows f ON f.tenant_id = r.tenant_id AND f.id = r.flow_id
             JOIN phone_numbers p ON p.tenant_id = r.tenant_id AND p.number = r.number
             WHERE r.number = $1",
        )
        .bind(&number)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|(tenant_id, number, flow_id, v)| {
            v.map(|version| InboundRoute {
                tenant_id,
                number,
                flow_id,
                version,
            })
        }))
    }

    /// Records an uploaded prompt.
    pub async fn create_prompt(&self, actor: &Actor, p: NewPrompt) -> Result<PromptMeta> {
        let name = check_name("name", &p.name, 200)?;
        let now = self.now();
        let meta = PromptMeta {
            id: p.id,
            name,
            content_type: p.content_type,
            duration_ms: p.duration_ms,
            size_bytes: p.size_bytes,
            storage_path: p.storage_path,
            created_by: actor.user_id.clone(),
            created_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO ivr_prompts (id, tenant_id, name, content_type, duration_ms, size_bytes, storage_path, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&meta.id)
        .bind(&actor.tenant_id)
        .bind(&meta.name)
        .bind(&meta.content_type)
        .bind(meta.duration_ms)
        .bind(meta.size_bytes)
        .bind(&meta.storage_path)
        .bind(meta.created_by.as_deref())
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "prompt", "id"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_prompt.create",
                entity_kind: "ivr_prompt",
                entity_id: &meta.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&meta),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ivr_prompt.created", &meta)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(meta)
    }

    /// One prompt's metadata.
    pub async fn prompt(&self, actor: &Actor, id: &str) -> Result<PromptMeta> {
        let row: Option<PromptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROMPT_COLS} FROM ivr_prompts WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(PromptMeta::from)
            .ok_or_else(|| Error::not_found("prompt"))
    }

    /// The tenant's prompts, newest first.
    pub async fn list_prompts(&self, actor: &Actor) -> Result<Vec<PromptMeta>> {
        let rows: Vec<PromptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROMPT_COLS} FROM ivr_prompts WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(PromptMeta::from).collect())
    }

    /// Deletes a prompt's metadata and returns it (the caller removes the file). A prompt
    /// played by any published version is a conflict naming the flow and version.
    pub async fn delete_prompt(&self, actor: &Actor, id: &str) -> Result<PromptMeta> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row: Option<PromptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROMPT_COLS} FROM ivr_prompts WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let meta = PromptMeta::from(row.ok_or_else(|| Error::not_found("prompt"))?);
        let used: Option<(String, i64)> = sqlx::query_as(
            "SELECT flow_id, version FROM ivr_version_prompts WHERE tenant_id = $1 AND prompt_id = $2
             ORDER BY flow_id, version DESC LIMIT 1",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((flow, version)) = used {
            return Err(Error::Conflict {
                entity: "prompt",
                field: "id".into(),
                detail: Some(format!(
                    "prompt is played by published flow {flow:?} version {version}"
                )),
            });
        }
        sqlx::query("DELETE FROM ivr_prompts WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ivr_prompt.delete",
                entity_kind: "ivr_prompt",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&meta),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ivr_prompt.deleted", &meta)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(meta)
    }
}

/// Reads a flow inside a write transaction, taking its row lock on PostgreSQL (the
/// `UPDATE` touches `updated_at`; SQLite's `BEGIN IMMEDIATE` already serialises writers).
async fn lock_flow(tx: &mut Tx, actor: &Actor, id: &str, now: Timestamp) -> Result<IvrFlow> {
    let res = sqlx::query("UPDATE ivr_flows SET updated_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if res.rows_affected() == 0 {
        return Err(Error::not_found("flow"));
    }
    let row: FlowRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FLOW_COLS} FROM ivr_flows WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(&actor.tenant_id)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Points the flow at `version`, records the event and the audit entry.
async fn set_current(
    tx: &mut Tx,
    actor: &Actor,
    now: Timestamp,
    before: &IvrFlow,
    version: i64,
    kind: FlowEventKind,
) -> Result<(IvrFlow, Audited)> {
    sqlx::query("UPDATE ivr_flows SET current_version = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(version)
        .bind(&actor.tenant_id)
        .bind(&before.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO ivr_flow_events (id, tenant_id, flow_id, kind, version, from_version, actor_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id())
    .bind(&actor.tenant_id)
    .bind(&before.id)
    .bind(kind.as_str())
    .bind(version)
    .bind(before.current_version)
    .bind(actor.user_id.as_deref())
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    let after = IvrFlow {
        current_version: Some(version),
        updated_at: now,
        ..before.clone()
    };
    let audited = audit::write(
        tx,
        actor,
        now,
        Record {
            action: match kind {
                FlowEventKind::Publish => "ivr_flow.publish",
                FlowEventKind::Rollback => "ivr_flow.rollback",
            },
            entity_kind: "ivr_flow",
            entity_id: &before.id,
            subject_customer_id: None,
            before: flow_snapshot(before),
            after: flow_snapshot(&after),
        },
    )
    .await?;
    Ok((after, audited))
}

async fn route_in(tx: &mut Tx, actor: &Actor, number: &str) -> Result<Option<Route>> {
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT number, flow_id, created_at, updated_at FROM ivr_routes WHERE tenant_id = $1 AND number = $2",
    )
    .bind(&actor.tenant_id)
    .bind(number)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(number, flow_id, c, u)| Route {
        number,
        flow_id,
        created_at: Timestamp(c),
        updated_at: Timestamp(u),
    }))
}

/// Seeds a tenant with the demo IVR: the `main` calendar, the demo flow published as
/// version 1, and [`DEMO_NUMBER`] routed to it. The flow plays only text-to-speech
/// prompts, so no audio files are needed.
pub async fn seed_demo_ivr(store: &Store, system: &Actor) -> Result<()> {
    let calendars: serde_json::Map<String, Value> = serde_json::from_str(DEMO_CALENDARS_JSON)
        .map_err(|source| Error::Corrupt {
            what: "demo calendars",
            source,
        })?;
    for (name, cal) in &calendars {
        store.set_calendar(system, name, &cal.to_string()).await?;
    }
    let doc: Value = serde_json::from_str(DEMO_FLOW_JSON).map_err(|source| Error::Corrupt {
        what: "demo flow",
        source,
    })?;
    let id = doc.get("id").and_then(Value::as_str).unwrap_or("demo");
    let name = doc.get("name").and_then(Value::as_str).unwrap_or(id);
    store.create_flow(system, id, name, DEMO_FLOW_JSON).await?;
    store.publish_flow(system, id, DEMO_FLOW_JSON, &[]).await?;
    store.set_route(system, DEMO_NUMBER, id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_drafts_are_checked() {
        assert!(check_key("id", "main_menu-2.v1").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_key("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_draft("demo", r#"{"id": "demo"}"#).is_ok());
        for (bad, field) in [
            ("[1]", "draft"),
            ("{", "draft"),
            (r#"{"id": "other"}"#, "id"),
            (r#"{"name": "no id"}"#, "id"),
        ] {
            match check_draft("demo", bad) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn demo_documents_parse() {
        let doc: Value = serde_json::from_str(DEMO_FLOW_JSON).unwrap();
        assert_eq!(doc["id"], "demo");
        let cals: Value = serde_json::from_str(DEMO_CALENDARS_JSON).unwrap();
        assert!(cals["main"].is_object());
    }
}
