//! Incidents (issue #21): problem records for long-running problems that touch many
//! customers (migration 0028).
//!
//! An incident has a title, a severity (P0–P3), a status machine
//! ([`transition`]: investigating → identified → monitoring → resolved → post_mortem),
//! an owner (engineer), a communications owner, affected services, start/resolve times
//! and a timeline of internal notes, public updates and status changes. Cases and
//! conversations link to it; linking a case puts it on hold (waiting on engineering).
//!
//! A *public update* becomes one outbound message per affected customer, on the
//! conversation they last used, through the one reply path ([`Store::reply`]: the
//! delivery outbox and the channel adapters send it). Exactly once: the
//! (update, customer) row is written before the message, and the message's client id is
//! derived from it, so a restart in the middle ([`Store::resume_incident_fanouts`])
//! stores nothing twice and loses nobody. The update cadence per severity
//! ([`update_due`]) is a pure function of `now`; [`Store::check_incident_cadence`] raises
//! one `incident.update_overdue` alert per missed update to the communications owner
//! and supervisors.
//!
//! Roles: every signed-in role, engineers included, reads incidents and writes notes;
//! engineers do not see customers' names and never message customers (public updates
//! need an agent or above).

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::conversations::NewReply;
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::sla::{CaseStatus, Priority};
use crate::types::{Actor, Role, Timestamp, flag, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

pub mod recurrence;
pub mod slack;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Something is wrong; the cause is not known yet.
    Investigating,
    /// The cause is known; a fix is being made.
    Identified,
    /// A fix is out; watching that it holds.
    Monitoring,
    /// Over.
    Resolved,
    /// Resolved and written up (final).
    PostMortem,
}

impl IncidentStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::PostMortem => "post_mortem",
        }
    }

    /// Parses a stored or user-supplied name.
    pub fn parse(s: &str) -> Result<IncidentStatus> {
        Ok(match s {
            "investigating" => IncidentStatus::Investigating,
            "identified" => IncidentStatus::Identified,
            "monitoring" => IncidentStatus::Monitoring,
            "resolved" => IncidentStatus::Resolved,
            "post_mortem" => IncidentStatus::PostMortem,
            _ => {
                return Err(Error::invalid(
                    "status",
                    "must be one of investigating, identified, monitoring, resolved, post_mortem",
                ));
            }
        })
    }

    /// Still being worked on (customers are waiting for news).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::Investigating | IncidentStatus::Identified | IncidentStatus::Monitoring
        )
    }
}

/// The part of an incident its status machine owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentState {
    /// Status.
    pub status: IncidentStatus,
    /// When it was resolved (cleared by a reopen).
    pub resolved_at: Option<Timestamp>,
}

/// What the status machine was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Move to this status.
    SetStatus(IncidentStatus),
}

/// What a transition did, besides changing the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transitioned {
    /// The status changed.
    StatusChanged {
        /// Before.
        from: IncidentStatus,
        /// After.
        to: IncidentStatus,
    },
    /// It is resolved now: offer to resolve or follow up the linked cases.
    Resolved,
    /// A resolved incident is open again (its symptoms came back).
    Reopened,
}

/// The status machine:
///
/// ```text
/// investigating ──► identified ──► monitoring ──► resolved ──► post_mortem
///       ▲  ◄──────────┘  ▲  ◄──────────┘            │
///       └───────────── reopen ──────────────────────┘
/// ```
///
/// Forward moves may skip steps (a fix found at once goes straight to monitoring or
/// resolved); an open incident may step back (monitoring showed the fix did not hold);
/// a resolved one reopens to `investigating` or `identified`; `post_mortem` is final.
pub fn transition(
    state: IncidentState,
    cmd: Command,
    now: Timestamp,
) -> Result<(IncidentState, Vec<Transitioned>)> {
    use IncidentStatus::*;
    let Command::SetStatus(to) = cmd;
    let from = state.status;
    let ok = match (from, to) {
        (a, b) if a == b => false,
        (PostMortem, _) => false,
        (Resolved, PostMortem | Investigating | Identified) => true,
        (Resolved, _) => false,
        (_, PostMortem) => false,
        (_, _) => true,
    };
    if !ok {
        return Err(Error::InvalidTransition {
            entity: "incident",
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
        });
    }
    let mut events = vec![Transitioned::StatusChanged { from, to }];
    let resolved_at = match (from, to) {
        (_, Resolved) => {
            events.push(Transitioned::Resolved);
            Some(now)
        }
        (Resolved, Investigating | Identified) => {
            events.push(Transitioned::Reopened);
            None
        }
        _ => state.resolved_at,
    };
    Ok((
        IncidentState {
            status: to,
            resolved_at,
        },
        events,
    ))
}

/// Minutes between public updates for a severity (P0 every hour, P1 every 4 hours, P2
/// daily); P3 has no cadence.
pub fn cadence_minutes(severity: Priority) -> Option<i64> {
    match severity {
        Priority::P0 => Some(60),
        Priority::P1 => Some(240),
        Priority::P2 => Some(1440),
        Priority::P3 => None,
    }
}

/// When the next public update is due: the cadence counted from the last public update
/// (or the start); none for a closed incident or a severity without cadence.
pub fn update_due(
    severity: Priority,
    status: IncidentStatus,
    started_at: Timestamp,
    last_public_update_at: Option<Timestamp>,
) -> Option<Timestamp> {
    if !status.is_open() {
        return None;
    }
    let every = cadence_minutes(severity)?;
    Some(
        last_public_update_at
            .unwrap_or(started_at)
            .plus_minutes(every),
    )
}

/// Where an incident stands against its update cadence at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Cadence {
    /// Minutes between updates (none: no cadence).
    pub every_minutes: Option<i64>,
    /// When the next public update is due.
    pub due_at: Option<Timestamp>,
    /// The due time has passed without an update.
    pub overdue: bool,
}

/// The cadence of an incident at `now` (pure).
pub fn cadence(
    severity: Priority,
    status: IncidentStatus,
    started_at: Timestamp,
    last_public_update_at: Option<Timestamp>,
    now: Timestamp,
) -> Cadence {
    let due_at = update_due(severity, status, started_at, last_public_update_at);
    Cadence {
        every_minutes: cadence_minutes(severity),
        due_at,
        overdue: due_at.is_some_and(|d| now > d),
    }
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Incident {
    /// Id.
    pub id: String,
    /// What is wrong, in a line.
    pub title: String,
    /// P0 (most severe) to P3.
    pub severity: Priority,
    /// Status.
    pub status: IncidentStatus,
    /// The engineer who owns the fix.
    pub owner_id: Option<String>,
    /// The agent or supervisor who owns the communication with customers.
    pub comms_owner_id: Option<String>,
    /// Affected services or areas.
    pub services: Vec<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it was resolved.
    pub resolved_at: Option<Timestamp>,
    /// The last public update's time.
    pub last_public_update_at: Option<Timestamp>,
    /// The swarm's Slack channel, once created.
    pub slack_channel_id: Option<String>,
    /// Its name.
    pub slack_channel_name: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl Incident {
    /// The state its status machine owns.
    pub fn state(&self) -> IncidentState {
        IncidentState {
            status: self.status,
            resolved_at: self.resolved_at,
        }
    }

    /// Its cadence at `now`.
    pub fn cadence(&self, now: Timestamp) -> Cadence {
        cadence(
            self.severity,
            self.status,
            self.started_at,
            self.last_public_update_at,
            now,
        )
    }
}

/// A new incident (`POST /api/v1/incidents`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// 1 to 200 characters.
    pub title: String,
    /// P0 to P3.
    pub severity: Priority,
    /// The engineer owning the fix (a user of the tenant).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The communications owner (a user of the tenant; default: whoever creates it,
    /// when they are an agent or above).
    #[serde(default)]
    pub comms_owner_id: Option<String>,
    /// Affected services or areas (at most 20, 1 to 64 characters each).
    #[serde(default)]
    pub services: Vec<String>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IncidentEntry {
    /// Id.
    pub id: String,
    /// `note` (internal), `update` (public when `public`) or `status`.
    pub kind: String,
    /// Text.
    pub text: String,
    /// Sent to the affected customers.
    pub public: bool,
    /// The Parley user who wrote it (none: the system or a Slack user).
    pub author_id: Option<String>,
    /// `parley` or `slack`.
    pub source: String,
    /// Created.
    pub created_at: Timestamp,
}

/// What became of a public update for one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UpdateDelivery {
    /// The public update (entry id).
    pub update_id: String,
    /// The customer.
    pub customer_id: String,
    /// The conversation it went to (the one the customer last used).
    pub conversation_id: String,
    /// The channel kind (`web_chat`, `email`, `sms`, …).
    pub channel: String,
    /// The message (none until stored).
    pub message_id: Option<String>,
    /// The message's delivery status (`queued`, `sent`, `delivered`, `read`, `failed`).
    pub status: Option<String>,
}

/// An item linked to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IncidentLink {
    /// `case` or `conversation`.
    pub kind: String,
    /// The case or conversation id.
    pub id: String,
    /// The customer concerned.
    pub customer_id: Option<String>,
    /// The case's or conversation's status now.
    pub status: Option<String>,
    /// The case's title or the conversation's channel kind.
    pub label: Option<String>,
}

/// An incident with everything around it (`GET /api/v1/incidents/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IncidentView {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Its update cadence now.
    pub cadence: Cadence,
    /// Linked cases and conversations.
    pub links: Vec<IncidentLink>,
    /// Distinct customers affected (of the linked items).
    pub affected_customers: usize,
    /// Notes, updates and status changes, oldest first.
    pub timeline: Vec<IncidentEntry>,
    /// Public updates' deliveries, per customer.
    pub deliveries: Vec<UpdateDelivery>,
}

/// Items to link (`POST /api/v1/incidents/{id}/links`).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLinks {
    /// Cases (each is put on hold: waiting on engineering).
    #[serde(default)]
    pub case_ids: Vec<String>,
    /// Conversations.
    #[serde(default)]
    pub conversation_ids: Vec<String>,
}

/// A note or public update (`POST /api/v1/incidents/{id}/updates`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUpdate {
    /// 1 to 4,000 characters.
    pub text: String,
    /// Sent to every affected customer (agents and above); otherwise an internal note.
    #[serde(default)]
    pub public: bool,
}

/// What posting an update did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PostedUpdate {
    /// The timeline entry.
    pub entry: IncidentEntry,
    /// One per affected customer (public updates only).
    pub deliveries: Vec<UpdateDelivery>,
}

/// The longest note or update, in characters.
pub const MAX_UPDATE_CHARS: usize = 4000;

type IncidentRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

const INCIDENT_COLS: &str = "id, title, severity, status, owner_id, comms_owner_id, services, started_at, \
     resolved_at, last_public_update_at, slack_channel_id, slack_channel_name, created_at, updated_at";

fn incident_of(r: IncidentRow) -> Result<Incident> {
    Ok(Incident {
        id: r.0,
        title: r.1,
        severity: Priority::parse(&r.2)?,
        status: IncidentStatus::parse(&r.3)?,
        owner_id: r.4,
        comms_owner_id: r.5,
        services: from_json_text("incidents.services", &r.6)?,
        started_at: Timestamp(r.7),
        resolved_at: r.8.map(Timestamp),
        last_public_update_at: r.9.map(Timestamp),
        slack_channel_id: r.10,
        slack_channel_name: r.11,
        created_at: Timestamp(r.12),
        updated_at: Timestamp(r.13),
    })
}

type EntryRow = (String, String, String, i64, Option<String>, String, i64);

fn entry_of(r: EntryRow) -> IncidentEntry {
    IncidentEntry {
        id: r.0,
        kind: r.1,
        text: r.2,
        public: r.3 != 0,
        author_id: r.4,
        source: r.5,
        created_at: Timestamp(r.6),
    }
}

fn check_text(text: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::invalid("text", "must not be empty"));
    }
    if t.chars().count() > MAX_UPDATE_CHARS {
        return Err(Error::invalid(
            "text",
            format!("must be at most {MAX_UPDATE_CHARS} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn check_services(services: &[String]) -> Result<Vec<String>> {
    if services.len() > 20 {
        return Err(Error::invalid("services", "at most 20"));
    }
    services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            if s.is_empty() || s.chars().count() > 64 {
                Err(Error::invalid(
                    format!("services[{i}]"),
                    "1 to 64 characters",
                ))
            } else {
                Ok(s.to_owned())
            }
        })
        .collect()
}

/// The message an affected customer receives for a public update.
pub fn personalise(customer_name: &str, incident_title: &str, text: &str) -> String {
    let first = customer_name.split_whitespace().next().unwrap_or("");
    let greeting = if first.is_empty() {
        "Hello".to_owned()
    } else {
        format!("Hi {first}")
    };
    format!("{greeting}, an update on \"{incident_title}\": {text}")
}

/// The client id of the message a public update becomes for one customer: what makes a
/// resumed fan-out store nothing twice.
fn update_client_id(entry_id: &str, customer_id: &str) -> String {
    format!("incident-update:{entry_id}:{customer_id}")
}

/// An incident event: every signed-in role of the tenant (engineers included) gets it.
fn incident_event(tenant_id: &str, kind: &'static str, data: &impl Serialize) -> DomainEvent {
    DomainEvent::new(tenant_id, kind, data).min_role(Role::Engineer)
}

impl Store {
    async fn check_user(&self, actor: &Actor, field: &'static str, id: &str) -> Result<()> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        found
            .map(|_| ())
            .ok_or_else(|| Error::invalid(field, "no such user in this tenant"))
    }

    /// Opens an incident (status `investigating`, started now). Audited; published as
    /// `incident.created`.
    pub async fn create_incident(&self, actor: &Actor, new: NewIncident) -> Result<Incident> {
        let title = check_name("title", &new.title, 200)?;
        let services = check_services(&new.services)?;
        if let Some(o) = &new.owner_id {
            self.check_user(actor, "owner_id", o).await?;
        }
        let comms_owner_id = match new.comms_owner_id {
            Some(c) => {
                self.check_user(actor, "comms_owner_id", &c).await?;
                Some(c)
            }
            None if actor.role >= Role::Agent => actor.user_id.clone(),
            None => None,
        };
        let now = self.now();
        let inc = Incident {
            id: new_id(),
            title,
            severity: new.severity,
            status: IncidentStatus::Investigating,
            owner_id: new.owner_id,
            comms_owner_id,
            services,
            started_at: now,
            resolved_at: None,
            last_public_update_at: None,
            slack_channel_id: None,
            slack_channel_name: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO incidents (id, tenant_id, title, severity, status, owner_id, comms_owner_id,
                                    services, started_at, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $9)",
        )
        .bind(&inc.id)
        .bind(&actor.tenant_id)
        .bind(&inc.title)
        .bind(inc.severity.as_str())
        .bind(inc.status.as_str())
        .bind(inc.owner_id.as_deref())
        .bind(inc.comms_owner_id.as_deref())
        .bind(json_text(&inc.services))
        .bind(now.0)
        .bind(actor.user_id.as_deref())
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "incident.create",
                entity_kind: "incident",
                entity_id: &inc.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&inc),
            },
        )
        .await?;
        // P0/P1: the swarm (a Slack channel) when the tenant has connected Slack.
        if matches!(inc.severity, Priority::P0 | Priority::P1) {
            slack::queue_swarm(&mut tx, &actor.tenant_id, &inc, now).await?;
        }
        let event = incident_event(&actor.tenant_id, "incident.created", &inc);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(inc)
    }

    /// One incident.
    pub async fn incident(&self, actor: &Actor, id: &str) -> Result<Incident> {
        let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLS} FROM incidents WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(incident_of)
            .transpose()?
            .ok_or_else(|| Error::not_found("incident"))
    }

    /// The tenant's incidents, newest first, optionally of one status (at most 500).
    pub async fn list_incidents(
        &self,
        actor: &Actor,
        status: Option<IncidentStatus>,
    ) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLS} FROM incidents
             WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT 500"
        )))
        .bind(&actor.tenant_id)
        .bind(status.map(IncidentStatus::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(incident_of).collect()
    }

    /// An incident with its links, timeline, cadence and deliveries. Engineers see no
    /// customer names (there are none in it) and no message bodies (the customers'
    /// messages are not in it either).
    pub async fn incident_view(&self, actor: &Actor, id: &str) -> Result<IncidentView> {
        let incident = self.incident(actor, id).await?;
        let links = self.incident_links(actor, id).await?;
        let mut customers: Vec<&str> = links
            .iter()
            .filter_map(|l| l.customer_id.as_deref())
            .collect();
        customers.sort_unstable();
        customers.dedup();
        let entries: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, kind, text, public, author_id, source, created_at FROM incident_entries
             WHERE tenant_id = $1 AND incident_id = $2 ORDER BY created_at, id",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let deliveries = self.update_deliveries(actor, id, None).await?;
        Ok(IncidentView {
            cadence: incident.cadence(self.now()),
            affected_customers: customers.len(),
            incident,
            links,
            timeline: entries.into_iter().map(entry_of).collect(),
            deliveries,
        })
    }

    async fn incident_links(&self, actor: &Actor, id: &str) -> Result<Vec<IncidentLink>> {
        type LinkRow = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<LinkRow> = sqlx::query_as(
            "SELECT l.kind, l.item_id,
                    COALESCE(k.customer_id, c.customer_id),
                    COALESCE(k.status, c.status),
                    COALESCE(k.title, ch.kind)
             FROM incident_links l
             LEFT JOIN cases k ON l.kind = 'case' AND k.tenant_id = l.tenant_id AND k.id = l.item_id
             LEFT JOIN conversations c ON l.kind = 'conversation' AND c.tenant_id = l.tenant_id AND c.id = l.item_id
             LEFT JOIN channels ch ON ch.id = c.channel_id
             WHERE l.tenant_id = $1 AND l.incident_id = $2
             ORDER BY l.created_at, l.kind, l.item_id",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, id, customer_id, status, label)| IncidentLink {
                kind,
                id,
                customer_id,
                status,
                label,
            })
            .collect())
    }

    async fn update_deliveries(
        &self,
        actor: &Actor,
        incident_id: &str,
        entry_id: Option<&str>,
    ) -> Result<Vec<UpdateDelivery>> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.entry_id, d.customer_id, d.conversation_id, d.channel, d.message_id, m.status
             FROM incident_update_deliveries d
             JOIN incident_entries e ON e.id = d.entry_id
             LEFT JOIN messages m ON m.id = d.message_id
             WHERE d.tenant_id = $1 AND e.incident_id = $2 AND ($3 IS NULL OR d.entry_id = $3)
             ORDER BY e.created_at, d.entry_id, d.customer_id",
        )
        .bind(&actor.tenant_id)
        .bind(incident_id)
        .bind(entry_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(update_id, customer_id, conversation_id, channel, message_id, status)| {
                    UpdateDelivery {
                        update_id,
                        customer_id,
                        conversation_id,
                        channel,
                        message_id,
                        status,
                    }
                },
            )
            .collect())
    }

    /// Links cases and conversations (ids of this tenant; an unknown one is refused,
    /// naming it, and nothing is linked). A linked active case goes on hold (waiting on
    /// engineering); linking twice changes nothing. Returns the incident's links.
    pub async fn link_incident(
        &self,
        actor: &Actor,
        id: &str,
        links: NewLinks,
    ) -> Result<Vec<IncidentLink>> {
        let inc = self.incident(actor, id).await?;
        if links.case_ids.len() + links.conversation_ids.len() > 1000 {
            return Err(Error::invalid("case_ids", "at most 1000 items at once"));
        }
        for (i, c) in links.case_ids.iter().enumerate() {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT id FROM cases WHERE tenant_id = $1 AND id = $2")
                    .bind(&actor.tenant_id)
                    .bind(c)
                    .fetch_optional(self.pool())
                    .await?;
            if found.is_none() {
                return Err(Error::invalid(format!("case_ids[{i}]"), "no such case"));
            }
        }
        for (i, c) in links.conversation_ids.iter().enumerate() {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT id FROM conversations WHERE tenant_id = $1 AND id = $2")
                    .bind(&actor.tenant_id)
                    .bind(c)
                    .fetch_optional(self.pool())
                    .await?;
            if found.is_none() {
                return Err(Error::invalid(
                    format!("conversation_ids[{i}]"),
                    "no such conversation",
                ));
            }
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let mut added = Vec::new();
        for (kind, ids) in [
            ("case", &links.case_ids),
            ("conversation", &links.conversation_ids),
        ] {
            for item in ids {
                let exists: Option<(String,)> = sqlx::query_as(
                    "SELECT item_id FROM incident_links WHERE incident_id = $1 AND kind = $2 AND item_id = $3",
                )
                .bind(id)
                .bind(kind)
                .bind(item)
                .fetch_optional(&mut *tx)
                .await?;
                if exists.is_some() {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO incident_links (tenant_id, incident_id, kind, item_id, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&actor.tenant_id)
                .bind(id)
                .bind(kind)
                .bind(item)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
                added.push(serde_json::json!({"kind": kind, "id": item}));
            }
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "incident.link",
                entity_kind: "incident",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: Some(serde_json::json!({ "added": added })),
            },
        )
        .await?;
        let event = incident_event(
            &actor.tenant_id,
            "incident.linked",
            &serde_json::json!({"incident_id": id, "added": added, "title": inc.title, "status": inc.status}),
        );
        self.commit_audited(tx, audited, [event]).await?;
        // Linked cases wait on engineering (each its own audited transition).
        for c in &links.case_ids {
            let case = self.case(&Actor::system(&actor.tenant_id), c).await?;
            if matches!(
                case.status,
                CaseStatus::New | CaseStatus::Open | CaseStatus::PendingCustomer
            ) {
                let reason = format!("linked to incident {}", inc.title);
                self.transition_case(actor, c, CaseStatus::OnHold, Some(&reason))
                    .await?;
            }
        }
        self.incident_links(actor, id).await
    }

    /// Moves an incident through its status machine ([`transition`]); the change, its
    /// timeline entry, audit and event in one transaction. Resolving publishes
    /// `incident.resolved` with the linked cases to resolve or follow up.
    pub async fn set_incident_status(
        &self,
        actor: &Actor,
        id: &str,
        to: IncidentStatus,
    ) -> Result<Incident> {
        let before = self.incident(actor, id).await?;
        let now = self.now();
        let (state, happened) = transition(before.state(), Command::SetStatus(to), now)?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE incidents SET status = $1, resolved_at = $2, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND status = $6",
        )
        .bind(state.status.as_str())
        .bind(state.resolved_at.map(|t| t.0))
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(before.status.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict {
                entity: "incident",
                field: "status".into(),
                detail: Some("changed concurrently; reload and retry".into()),
            });
        }
        let text = format!(
            "Status: {} → {}",
            before.status.as_str(),
            state.status.as_str()
        );
        let entry = insert_entry(
            &mut tx, actor, id, "status", &text, false, "parley", None, now,
        )
        .await?;
        let after = Incident {
            status: state.status,
            resolved_at: state.resolved_at,
            updated_at: now,
            ..before.clone()
        };
        slack::queue_post(&mut tx, &actor.tenant_id, &after, &text, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "incident.transition",
                entity_kind: "incident",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let mut events = vec![incident_event(
            &actor.tenant_id,
            "incident.status_changed",
            &serde_json::json!({"incident": after, "entry": entry}),
        )];
        for h in happened {
            match h {
                Transitioned::Resolved => {
                    let cases: Vec<(String,)> = sqlx::query_as(
                        "SELECT item_id FROM incident_links WHERE tenant_id = $1 AND incident_id = $2 AND kind = 'case'",
                    )
                    .bind(&actor.tenant_id)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let ids: Vec<String> = cases.into_iter().map(|(c,)| c).collect();
                    events.push(incident_event(
                        &actor.tenant_id,
                        "incident.resolved",
                        &serde_json::json!({"incident_id": id, "linked_case_ids": ids}),
                    ));
                }
                Transitioned::Reopened => events.push(incident_event(
                    &actor.tenant_id,
                    "incident.reopened",
                    &serde_json::json!({"incident_id": id}),
                )),
                Transitioned::StatusChanged { .. } => {}
            }
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(after)
    }

    /// After resolving: resolves every linked case that is still active (`resolve`) or
    /// reopens them for a follow-up (`open`). Returns the cases changed.
    pub async fn settle_incident_cases(
        &self,
        actor: &Actor,
        id: &str,
        to: CaseStatus,
    ) -> Result<Vec<String>> {
        if !matches!(to, CaseStatus::Resolved | CaseStatus::Open) {
            return Err(Error::invalid("action", "must be resolve or follow_up"));
        }
        let inc = self.incident(actor, id).await?;
        if inc.status.is_open() {
            return Err(Error::InvalidTransition {
                entity: "incident",
                from: inc.status.as_str().into(),
                to: "settled".into(),
            });
        }
        let mut changed = Vec::new();
        for l in self.incident_links(actor, id).await? {
            if l.kind != "case" {
                continue;
            }
            let case = self.case(&Actor::system(&actor.tenant_id), &l.id).await?;
            if case.status != to && crate::sla::check_transition(case.status, to).is_ok() {
                let reason = format!("incident {} resolved", inc.title);
                self.transition_case(actor, &l.id, to, Some(&reason))
                    .await?;
                changed.push(l.id);
            }
        }
        Ok(changed)
    }

    /// Adds an internal note (any role) or a public update (agents and above: engineers
    /// never message customers). A public update is fanned out at once to every affected
    /// customer ([`Store::resume_incident_fanouts`] finishes one a restart interrupted).
    pub async fn post_incident_update(
        &self,
        actor: &Actor,
        id: &str,
        new: NewUpdate,
    ) -> Result<PostedUpdate> {
        let text = check_text(&new.text)?;
        if new.public && actor.role < Role::Agent {
            return Err(Error::Forbidden {
                what: "messaging customers",
            });
        }
        let inc = self.incident(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let (kind, public) = if new.public {
            ("update", true)
        } else {
            ("note", false)
        };
        let entry =
            insert_entry(&mut tx, actor, id, kind, &text, public, "parley", None, now).await?;
        if public {
            sqlx::query(
                "UPDATE incident_entries SET fanout_done = 0 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&actor.tenant_id)
            .bind(&entry.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE incidents SET last_public_update_at = $1, cadence_alerted_for = NULL, updated_at = $1
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        } else {
            slack::queue_post(&mut tx, &actor.tenant_id, &inc, &text, now).await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: if public {
                    "incident.update"
                } else {
                    "incident.note"
                },
                entity_kind: "incident",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&entry),
            },
        )
        .await?;
        let event = incident_event(
            &actor.tenant_id,
            "incident.entry_added",
            &serde_json::json!({"incident_id": id, "entry": entry}),
        );
        self.commit_audited(tx, audited, [event]).await?;
        let deliveries = if public {
            self.fan_out(&actor.tenant_id, &inc, &entry.id, &text)
                .await?
        } else {
            vec![]
        };
        Ok(PostedUpdate { entry, deliveries })
    }

    /// Finishes every public update whose fan-out a restart interrupted (all tenants).
    /// Run at start-up; returns how many updates it finished.
    pub async fn resume_incident_fanouts(&self) -> Result<usize> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, incident_id, id FROM incident_entries
             WHERE fanout_done = 0 ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        let n = rows.len();
        for (tenant, incident_id, entry_id) in rows {
            let sys = Actor::system(&tenant);
            let inc = self.incident(&sys, &incident_id).await?;
            let (text,): (String,) =
                sqlx::query_as("SELECT text FROM incident_entries WHERE id = $1")
                    .bind(&entry_id)
                    .fetch_one(self.pool())
                    .await?;
            self.fan_out(&tenant, &inc, &entry_id, &text).await?;
        }
        Ok(n)
    }

    /// The affected customers of an incident and, for each, the conversation they last
    /// used: (customer, name, conversation, channel kind). Customers with no
    /// conversation at all (a case from a phone call) are not reachable here.
    async fn affected_targets(
        &self,
        tenant_id: &str,
        incident_id: &str,
    ) -> Result<Vec<(String, String, String, String)>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT cu.id, cu.name, c.id, ch.kind, c.last_message_at
             FROM customers cu
             JOIN conversations c ON c.tenant_id = cu.tenant_id AND c.customer_id = cu.id
             JOIN channels ch ON ch.id = c.channel_id
             WHERE cu.tenant_id = $1 AND cu.erased_at IS NULL AND cu.id IN (
                 SELECT k.customer_id FROM incident_links l
                   JOIN cases k ON k.tenant_id = l.tenant_id AND k.id = l.item_id
                  WHERE l.tenant_id = $1 AND l.incident_id = $2 AND l.kind = 'case'
                 UNION
                 SELECT cv.customer_id FROM incident_links l
                   JOIN conversations cv ON cv.tenant_id = l.tenant_id AND cv.id = l.item_id
                  WHERE l.tenant_id = $1 AND l.incident_id = $2 AND l.kind = 'conversation')
             ORDER BY cu.id, c.last_message_at DESC, c.id",
        )
        .bind(tenant_id)
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<(String, String, String, String)> = Vec::new();
        for (cust, name, conv, kind, _) in rows {
            if out.last().is_some_and(|l| l.0 == cust) {
                continue;
            }
            out.push((cust, name, conv, kind));
        }
        Ok(out)
    }

    /// Sends public update `entry_id` to every affected customer not yet reached: the
    /// (update, customer) row first (fixing the conversation), then the message through
    /// [`Store::reply`] with a client id derived from the row (a repeat stores nothing),
    /// then the row's message id; finally the update is marked done.
    async fn fan_out(
        &self,
        tenant_id: &str,
        inc: &Incident,
        entry_id: &str,
        text: &str,
    ) -> Result<Vec<UpdateDelivery>> {
        let sys = Actor::system(tenant_id);
        let targets = self.affected_targets(tenant_id, &inc.id).await?;
        let done: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT customer_id, conversation_id, message_id FROM incident_update_deliveries
             WHERE tenant_id = $1 AND entry_id = $2",
        )
        .bind(tenant_id)
        .bind(entry_id)
        .fetch_all(self.pool())
        .await?;
        let done: std::collections::HashMap<String, (String, Option<String>)> =
            done.into_iter().map(|(c, v, m)| (c, (v, m))).collect();
        for (customer, name, conv, kind) in targets {
            let conv = match done.get(&customer) {
                Some((_, Some(_))) => continue,
                Some((conv, None)) => conv.clone(),
                None => {
                    sqlx::query(
                        "INSERT INTO incident_update_deliveries
                            (tenant_id, entry_id, customer_id, conversation_id, channel, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(tenant_id)
                    .bind(entry_id)
                    .bind(&customer)
                    .bind(&conv)
                    .bind(&kind)
                    .bind(self.now().0)
                    .execute(self.pool())
                    .await?;
                    conv
                }
            };
            let message = self
                .reply(
                    &sys,
                    &conv,
                    NewReply {
                        text: personalise(&name, &inc.title, text),
                        private: false,
                        client_id: Some(update_client_id(entry_id, &customer)),
                        reply_to: None,
                        ..Default::default()
                    },
                )
                .await?;
            sqlx::query(
                "UPDATE incident_update_deliveries SET message_id = $1
                 WHERE tenant_id = $2 AND entry_id = $3 AND customer_id = $4",
            )
            .bind(&message.id)
            .bind(tenant_id)
            .bind(entry_id)
            .bind(&customer)
            .execute(self.pool())
            .await?;
        }
        sqlx::query("UPDATE incident_entries SET fanout_done = 1 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(entry_id)
            .execute(self.pool())
            .await?;
        self.update_deliveries(&sys, &inc.id, Some(entry_id)).await
    }

    /// Raises `incident.update_overdue` once per missed update of every open incident
    /// (all tenants) to its communications owner and the supervisors. Returns the
    /// incidents alerted. Run every minute by the binary; tests call it in virtual time.
    pub async fn check_incident_cadence(&self) -> Result<Vec<String>> {
        let now = self.now();
        /// (tenant, id, severity, status, started, last public update, alerted for,
        /// comms owner, title)
        type CadenceRow = (
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<String>,
            String,
        );
        let rows: Vec<CadenceRow> = sqlx::query_as(
            "SELECT tenant_id, id, severity, status, started_at, last_public_update_at,
                        cadence_alerted_for, comms_owner_id, title
                 FROM incidents WHERE status IN ('investigating', 'identified', 'monitoring')",
        )
        .fetch_all(self.pool())
        .await?;
        let mut alerted = Vec::new();
        for (tenant, id, sev, status, started, last, alerted_for, comms, title) in rows {
            let c = cadence(
                Priority::parse(&sev)?,
                IncidentStatus::parse(&status)?,
                Timestamp(started),
                last.map(Timestamp),
                now,
            );
            let Some(due) = c.due_at else { continue };
            if !c.overdue || alerted_for == Some(due.0) {
                continue;
            }
            let sys = Actor::system(&tenant);
            let mut tx = self.write_tx().await?;
            let done = sqlx::query(
                "UPDATE incidents SET cadence_alerted_for = $1
                 WHERE tenant_id = $2 AND id = $3 AND (cadence_alerted_for IS NULL OR cadence_alerted_for <> $1)",
            )
            .bind(due.0)
            .bind(&tenant)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                continue;
            }
            let audited = audit::write(
                &mut tx,
                &sys,
                now,
                Record {
                    action: "incident.update_overdue",
                    entity_kind: "incident",
                    entity_id: &id,
                    subject_customer_id: None,
                    before: None,
                    after: Some(serde_json::json!({"due_at": due})),
                },
            )
            .await?;
            let mut e = DomainEvent::new(
                &tenant,
                "incident.update_overdue",
                &serde_json::json!({"incident_id": id, "title": title, "due_at": due, "comms_owner_id": comms}),
            );
            // Supervisors and admins always; of the agents, the communications owner.
            e.only_users = Some(comms.into_iter().collect());
            self.commit_audited(tx, audited, [e]).await?;
            alerted.push(id);
        }
        Ok(alerted)
    }

    /// Cadence compliance of an incident: public updates made on time vs late (an
    /// update is late when it came after the due time counted from the one before).
    pub async fn incident_cadence_report(&self, actor: &Actor, id: &str) -> Result<(u32, u32)> {
        let inc = self.incident(actor, id).await?;
        let Some(every) = cadence_minutes(inc.severity) else {
            return Ok((0, 0));
        };
        let times: Vec<(i64,)> = sqlx::query_as(
            "SELECT created_at FROM incident_entries
             WHERE tenant_id = $1 AND incident_id = $2 AND kind = 'update' AND public = 1
             ORDER BY created_at",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let (mut on_time, mut late) = (0, 0);
        let mut prev = inc.started_at;
        for (t,) in times {
            if Timestamp(t) > prev.plus_minutes(every) {
                late += 1;
            } else {
                on_time += 1;
            }
            prev = Timestamp(t);
        }
        Ok((on_time, late))
    }

    /// Open incidents a conversation is linked to (directly, or through its customer's
    /// linked cases or conversations): the banner in the inbox.
    pub async fn incidents_for_conversation(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Vec<Incident>> {
        let conv = self.conversation(actor, conversation_id).await?;
        self.open_incidents_of_customer(&actor.tenant_id, &conv.customer_id)
            .await
    }

    async fn open_incidents_of_customer(
        &self,
        tenant_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Incident>> {
        let cols = INCIDENT_COLS
            .split(", ")
            .map(|c| format!("i.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT {cols} FROM incidents i
             JOIN incident_links l ON l.incident_id = i.id AND l.tenant_id = i.tenant_id
             LEFT JOIN cases k ON l.kind = 'case' AND k.tenant_id = l.tenant_id AND k.id = l.item_id
             LEFT JOIN conversations c ON l.kind = 'conversation' AND c.tenant_id = l.tenant_id AND c.id = l.item_id
             WHERE i.tenant_id = $1 AND i.status IN ('investigating', 'identified', 'monitoring')
               AND (k.customer_id = $2 OR c.customer_id = $2)
             ORDER BY i.created_at"
        )))
        .bind(tenant_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(incident_of).collect()
    }

    /// A customer who writes during an incident gets its current status at once: after
    /// an inbound message on `conversation_id`, replies (once per public update and
    /// conversation, through [`Store::reply`]) with the latest public update of each open
    /// incident the customer is affected by, or a holding line before the first one.
    /// Returns the messages queued.
    pub async fn incident_auto_status(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<crate::conversations::Message>> {
        let sys = Actor::system(tenant_id);
        let conv = self.conversation(&sys, conversation_id).await?;
        let mut out = Vec::new();
        for inc in self
            .open_incidents_of_customer(tenant_id, &conv.customer_id)
            .await?
        {
            let last: Option<(String, String)> = sqlx::query_as(
                "SELECT id, text FROM incident_entries
                 WHERE tenant_id = $1 AND incident_id = $2 AND kind = 'update' AND public = 1
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(tenant_id)
            .bind(&inc.id)
            .fetch_optional(self.pool())
            .await?;
            let (key, text) = match last {
                Some((entry, text)) => (
                    format!("incident-status:{entry}"),
                    format!(
                        "We are aware of a problem (\"{}\") and working on it. Latest update: {text}",
                        inc.title
                    ),
                ),
                None => (
                    format!("incident-status:{}:start", inc.id),
                    format!(
                        "We are aware of a problem (\"{}\") and working on it. We will keep you posted here.",
                        inc.title
                    ),
                ),
            };
            let m = self
                .reply(
                    &sys,
                    &conv.id,
                    NewReply {
                        text,
                        private: false,
                        client_id: Some(key),
                        reply_to: None,
                        ..Default::default()
                    },
                )
                .await?;
            out.push(m);
        }
        Ok(out)
    }

    /// Adds a note that came from elsewhere (a Slack message): idempotent on
    /// `external_id` per incident. Returns the entry, or `None` for a repeat.
    pub async fn add_external_incident_note(
        &self,
        tenant_id: &str,
        incident_id: &str,
        author_id: Option<&str>,
        text: &str,
        source: &'static str,
        external_id: &str,
    ) -> Result<Option<IncidentEntry>> {
        let text = check_text(text)?;
        let actor = Actor {
            tenant_id: tenant_id.to_owned(),
            user_id: author_id.map(str::to_owned),
            role: Role::Engineer,
        };
        self.incident(&actor, incident_id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let entry = match insert_entry(
            &mut tx,
            &actor,
            incident_id,
            "note",
            &text,
            false,
            source,
            Some(external_id),
            now,
        )
        .await
        {
            Ok(e) => e,
            Err(Error::Conflict { .. }) => {
                tx.rollback().await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let audited = audit::write(
            &mut tx,
            &actor,
            now,
            Record {
                action: "incident.note",
                entity_kind: "incident",
                entity_id: incident_id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&entry),
            },
        )
        .await?;
        let event = incident_event(
            tenant_id,
            "incident.entry_added",
            &serde_json::json!({"incident_id": incident_id, "entry": entry}),
        );
        self.commit_audited(tx, audited, [event]).await?;
        Ok(Some(entry))
    }
}

/// What recurrence detection suggests (`GET /api/v1/incidents/suggestions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Suggestions {
    /// Bursts of similar inbound messages across customers: open an incident and link
    /// these conversations.
    pub bursts: Vec<recurrence::Burst>,
    /// Customers back with the same problem (repeat contact: priority up).
    pub repeats: Vec<recurrence::Repeat>,
    /// Resolved incidents whose symptoms are back: reopen them.
    pub reopens: Vec<recurrence::Reopen>,
}

impl Store {
    /// Runs recurrence detection ([`recurrence`]) over the tenant's inbound messages of
    /// the last `repeat_days` (at most 5,000, newest) and the incidents resolved in
    /// that window. Bursts look at the last 24 hours only.
    pub async fn incident_suggestions(
        &self,
        actor: &Actor,
        p: recurrence::Params,
    ) -> Result<Suggestions> {
        let now = self.now();
        let since = now.plus_minutes(-p.repeat_days * 24 * 60);
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT m.conversation_id, c.customer_id, m.text, m.created_at
             FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
             WHERE m.tenant_id = $1 AND m.direction = 'inbound' AND m.created_at >= $2
             ORDER BY m.created_at DESC LIMIT 5000",
        )
        .bind(&actor.tenant_id)
        .bind(since.0)
        .fetch_all(self.pool())
        .await?;
        let msgs: Vec<recurrence::Inbound> = rows
            .into_iter()
            .map(
                |(conversation_id, customer_id, text, at)| recurrence::Inbound {
                    conversation_id,
                    customer_id,
                    text,
                    at: Timestamp(at),
                },
            )
            .collect();
        let day_ago = now.plus_minutes(-24 * 60);
        let recent: Vec<recurrence::Inbound> =
            msgs.iter().filter(|m| m.at >= day_ago).cloned().collect();
        // Conversations already linked to an open incident are not news.
        let linked: Vec<(String,)> = sqlx::query_as(
            "SELECT l.item_id FROM incident_links l JOIN incidents i ON i.id = l.incident_id
             WHERE l.tenant_id = $1 AND l.kind = 'conversation'
               AND i.status IN ('investigating', 'identified', 'monitoring')",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        let linked: std::collections::HashSet<String> = linked.into_iter().map(|(c,)| c).collect();
        let fresh: Vec<recurrence::Inbound> = recent
            .into_iter()
            .filter(|m| !linked.contains(&m.conversation_id))
            .collect();
        let resolved: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, title, resolved_at FROM incidents
             WHERE tenant_id = $1 AND status IN ('resolved', 'post_mortem') AND resolved_at >= $2",
        )
        .bind(&actor.tenant_id)
        .bind(since.0)
        .fetch_all(self.pool())
        .await?;
        let mut symptoms = Vec::new();
        for (id, title, resolved_at) in resolved {
            let notes: Vec<(String,)> = sqlx::query_as(
                "SELECT text FROM incident_entries WHERE tenant_id = $1 AND incident_id = $2 AND kind <> 'status'",
            )
            .bind(&actor.tenant_id)
            .bind(&id)
            .fetch_all(self.pool())
            .await?;
            let mut text = title;
            for (n,) in notes {
                text.push(' ');
                text.push_str(&n);
            }
            symptoms.push((id, text, Timestamp(resolved_at.unwrap_or(0))));
        }
        Ok(Suggestions {
            bursts: recurrence::bursts(&fresh, p),
            repeats: recurrence::repeats(&msgs, p),
            reopens: recurrence::reopens(&symptoms, &msgs, p),
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_entry(
    tx: &mut crate::store::Tx,
    actor: &Actor,
    incident_id: &str,
    kind: &str,
    text: &str,
    public: bool,
    source: &str,
    external_id: Option<&str>,
    now: Timestamp,
) -> Result<IncidentEntry> {
    let entry = IncidentEntry {
        id: new_id(),
        kind: kind.to_owned(),
        text: text.to_owned(),
        public,
        author_id: actor.user_id.clone(),
        source: source.to_owned(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO incident_entries (id, tenant_id, incident_id, kind, text, public, author_id,
                                       source, external_id, fanout_done, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10)",
    )
    .bind(&entry.id)
    .bind(&actor.tenant_id)
    .bind(incident_id)
    .bind(&entry.kind)
    .bind(&entry.text)
    .bind(flag(public))
    .bind(entry.author_id.as_deref())
    .bind(&entry.source)
    .bind(external_id)
    .bind(now.0)
    .execute(&mut **tx)
    .await
    .map_err(|e| Error::from_unique(e, "incident_entry", "external_id"))?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentStatus::*;

    const ALL: [IncidentStatus; 5] = [Investigating, Identified, Monitoring, Resolved, PostMortem];

    #[test]
    fn transition_table() {
        let allowed = [
            (Investigating, Identified),
            (Investigating, Monitoring),
            (Investigating, Resolved),
            (Identified, Investigating),
            (Identified, Monitoring),
            (Identified, Resolved),
            (Monitoring, Investigating),
            (Monitoring, Identified),
            (Monitoring, Resolved),
            (Resolved, PostMortem),
            (Resolved, Investigating),
            (Resolved, Identified),
        ];
        let s = |status| IncidentState {
            status,
            resolved_at: None,
        };
        for from in ALL {
            for to in ALL {
                let got = transition(s(from), Command::SetStatus(to), Timestamp(5));
                assert_eq!(
                    got.is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn resolving_stamps_and_offers_follow_up_reopening_clears() {
        let t = Timestamp(1_000);
        let (st, ev) = transition(
            IncidentState {
                status: Monitoring,
                resolved_at: None,
            },
            Command::SetStatus(Resolved),
            t,
        )
        .unwrap();
        assert_eq!(st.resolved_at, Some(t));
        assert_eq!(
            ev,
            vec![
                Transitioned::StatusChanged {
                    from: Monitoring,
                    to: Resolved
                },
                Transitioned::Resolved
            ]
        );
        let (st2, ev) = transition(st, Command::SetStatus(Identified), Timestamp(2_000)).unwrap();
        assert_eq!(st2.resolved_at, None);
        assert!(ev.contains(&Transitioned::Reopened));
        let (st3, _) = transition(st, Command::SetStatus(PostMortem), Timestamp(3_000)).unwrap();
        assert_eq!(st3.resolved_at, Some(t));
    }

    #[test]
    fn cadence_in_virtual_time() {
        let t0 = Timestamp(0);
        // P0: due an hour after the start, then an hour after each update.
        let c = cadence(Priority::P0, Investigating, t0, None, t0.plus_minutes(59));
        assert_eq!(c.due_at, Some(t0.plus_minutes(60)));
        assert!(!c.overdue);
        assert!(cadence(Priority::P0, Investigating, t0, None, t0.plus_minutes(61)).overdue);
        let c = cadence(
            Priority::P0,
            Identified,
            t0,
            Some(t0.plus_minutes(50)),
            t0.plus_minutes(61),
        );
        assert_eq!(c.due_at, Some(t0.plus_minutes(110)));
        assert!(!c.overdue);
        // P1 every 4 hours; P3 none; a resolved incident owes nothing.
        assert_eq!(
            update_due(Priority::P1, Monitoring, t0, None),
            Some(t0.plus_minutes(240))
        );
        assert_eq!(update_due(Priority::P3, Investigating, t0, None), None);
        assert_eq!(update_due(Priority::P0, Resolved, t0, None), None);
    }

    #[test]
    fn personalised_text() {
        assert_eq!(
            personalise("Ann Lee", "Login outage", "Fixed soon."),
            "Hi Ann, an update on \"Login outage\": Fixed soon."
        );
        assert_eq!(personalise("  ", "X", "y"), "Hello, an update on \"X\": y");
    }
}
