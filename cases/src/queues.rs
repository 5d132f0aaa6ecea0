//! ACD storage: queues and their routing settings, agents' own presence (persisted and
//! audited), the tenant's call-recording policy, and call detail records (CDRs) with
//! per-queue and per-agent statistics over a time range.
//!
//! Routing itself is the pure router of `parley-routing` (over the types of
//! [`crate::routing`]); its runtime that owns it loads
//! queues and agents from here ([`Store::routing_queues`], [`Store::routing_agents`])
//! and follows `queue.*` and `agent.presence_changed` [`DomainEvent`]s.
//!
//! Agents' skills are the directory's (`user_skills`, proficiency 1..=5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::outbox::Audited;
use crate::routing::{
    AgentConfig, AgentStatus, Channel, MaxWaitAction, Presence, QueueConfig, SkillRequirement,
    Strategy,
};
use crate::types::{Actor, Role, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// A queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Queue {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Unique name in the tenant (an IVR `enqueue` node names a queue by id or name).
    pub name: String,
    /// Agent selection.
    pub strategy: Strategy,
    /// Required skills (skill ids) with minimum proficiency.
    pub skills: Vec<SkillRequirement>,
    /// Service level threshold, seconds.
    pub sl_threshold_s: u32,
    /// Queue waiting calls move to after `overflow_after_s`.
    pub overflow_queue_id: Option<String>,
    /// Seconds before overflow.
    pub overflow_after_s: Option<u32>,
    /// Maximum total wait, seconds.
    pub max_wait_s: Option<u32>,
    /// What happens at the maximum wait.
    pub max_wait_action: MaxWaitAction,
    /// Wrap-up after each call, seconds.
    pub wrap_up_s: u32,
    /// Ring time per agent, seconds.
    pub ring_timeout_s: u32,
    /// Missed offers in a row that set an agent away (0: never).
    pub max_missed_offers: u32,
    /// Priority points per minute waited.
    pub priority_aging_per_min: u32,
    /// Seconds between position / estimated-wait announcements (0: none).
    pub announce_interval_s: u32,
    /// DTMF key for a callback that keeps the caller's place (none: no callbacks).
    pub callback_key: Option<String>,
    /// Items are assigned at once, without an offer the agent accepts.
    #[serde(default)]
    pub auto_assign: bool,
    /// A customer's item goes to the agent who last handled one of theirs within this
    /// many seconds, when that agent is free (0: off).
    #[serde(default)]
    pub sticky_window_s: u32,
    /// Items overflowing into this queue take this channel's capacity (a chat queue
    /// overflowing into an `async` email queue); none keeps theirs.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl Queue {
    /// The router's view of this queue.
    pub fn routing(&self) -> QueueConfig {
        QueueConfig {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            name: self.name.clone(),
            strategy: self.strategy,
            skills: self.skills.clone(),
            sl_threshold_s: self.sl_threshold_s,
            overflow: self.overflow_queue_id.clone().zip(self.overflow_after_s),
            max_wait_s: self.max_wait_s,
            max_wait_action: self.max_wait_action,
            wrap_up_s: self.wrap_up_s,
            ring_timeout_s: self.ring_timeout_s,
            max_missed_offers: self.max_missed_offers,
            priority_aging_per_min: self.priority_aging_per_min,
            auto_assign: self.auto_assign,
            sticky_window_s: self.sticky_window_s,
            channel: self.channel,
        }
    }
}

/// Input of [`Store::create_queue`] and [`Store::update_queue`] (a full replacement;
/// absent fields take their defaults).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    /// Unique name in the tenant.
    pub name: String,
    /// Default `longest_idle`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Required skills (ids of the tenant's skills).
    #[serde(default)]
    pub skills: Vec<SkillRequirement>,
    /// Default 20.
    pub sl_threshold_s: Option<u32>,
    /// Overflow target queue.
    pub overflow_queue_id: Option<String>,
    /// Seconds before overflow (required with `overflow_queue_id`).
    pub overflow_after_s: Option<u32>,
    /// Maximum total wait, seconds.
    pub max_wait_s: Option<u32>,
    /// Default `voicemail`.
    #[serde(default)]
    pub max_wait_action: MaxWaitAction,
    /// Default 10.
    pub wrap_up_s: Option<u32>,
    /// Default 15.
    pub ring_timeout_s: Option<u32>,
    /// Default 3.
    pub max_missed_offers: Option<u32>,
    /// Default 0.
    pub priority_aging_per_min: Option<u32>,
    /// Default 30 (0: no announcements).
    pub announce_interval_s: Option<u32>,
    /// One of `0-9`, `*`, `#`.
    pub callback_key: Option<String>,
    /// Assign without an offer; default false.
    #[serde(default)]
    pub auto_assign: bool,
    /// Sticky routing window, seconds (at most 30 days); default 0 (off).
    pub sticky_window_s: Option<u32>,
    /// `voice`, `chat` or `async`: the channel items overflowing into this queue take.
    pub channel: Option<Channel>,
}

/// An agent's stored presence (their own choice; what they are doing right now is the
/// router's [`Presence`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AgentPresence {
    /// The agent.
    pub user_id: String,
    /// `offline`, `available` or `away`.
    pub status: String,
    /// Why away.
    pub reason: Option<String>,
    /// Since.
    pub updated_at: Timestamp,
}

impl AgentPresence {
    /// As the router's status.
    pub fn routing(&self) -> AgentStatus {
        match self.status.as_str() {
            "available" => AgentStatus::Available,
            "away" => AgentStatus::Away {
                reason: self.reason.clone().unwrap_or_default(),
            },
            _ => AgentStatus::Offline,
        }
    }
}

/// A presence change request.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PresenceInput {
    /// `offline`, `available` or `away`.
    pub status: String,
    /// Why away (e.g. `break`, `lunch`, `training`).
    pub reason: Option<String>,
}

/// The tenant's call-recording policy for queue calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordingPolicy {
    /// No recording.
    #[default]
    Off,
    /// Record answered queue calls.
    On,
    /// Record, and tell the caller first.
    Announce,
    /// Record only customers who opted in (`consent.recording`); no notice.
    Consent,
}

impl RecordingPolicy {
    fn as_str(self) -> &'static str {
        match self {
            RecordingPolicy::Off => "off",
            RecordingPolicy::On => "on",
            RecordingPolicy::Announce => "announce",
            RecordingPolicy::Consent => "consent",
        }
    }

    fn parse(s: &str) -> RecordingPolicy {
        match s {
            "on" => RecordingPolicy::On,
            "announce" => RecordingPolicy::Announce,
            "consent" => RecordingPolicy::Consent,
            _ => RecordingPolicy::Off,
        }
    }

    /// Whether the caller hears "This call may be recorded." when queued (before the
    /// customer's consent matters: the notice is the legal basis).
    pub fn announces(self) -> bool {
        self == RecordingPolicy::Announce
    }
}

/// `agent.profile_changed`: a user's routing profile (active, extension, skills) may
/// have changed; the ACD reloads that agent at once (supervisors may see it too).
/// `call.ended`: a call record stored (for supervisors; on the customer when known).
pub(crate) fn call_ended_event(tenant_id: &str, rec: &CallRecord) -> DomainEvent {
    let mut e = DomainEvent::new(tenant_id, "call.ended", rec).min_role(Role::Supervisor);
    if let Some(c) = &rec.customer_id {
        e = e.customer(c);
    }
    e
}

pub(crate) fn agent_changed(tenant_id: &str, user_id: &str) -> DomainEvent {
    let mut e = DomainEvent::new(
        tenant_id,
        "agent.profile_changed",
        &serde_json::json!({ "user_id": user_id }),
    );
    e.min_role = Role::Supervisor;
    e
}

/// Whether a call is recorded, and why (see [`recording_decision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RecordingDecision {
    /// Record the call.
    pub record: bool,
    /// Why: `policy_on` (the tenant asserts a legal basis), `announced` (the caller
    /// heard the notice), `customer_consented`; or why not: `policy_off`,
    /// `no_consent` (policy `consent` and the customer has not opted in).
    pub reason: &'static str,
}

/// The one place a call's recording is decided, from the tenant's policy and the
/// customer's opt-in (`customers.consent_recording`; `false` for an unknown caller):
/// `off` never records, `on` and `announce` record everyone (the tenant asserts a
/// legal basis; `announce` plays the notice first), `consent` records only customers
/// who opted in.
pub fn recording_decision(policy: RecordingPolicy, customer_consent: bool) -> RecordingDecision {
    let (record, reason) = match policy {
        RecordingPolicy::Off => (false, "policy_off"),
        RecordingPolicy::On => (true, "policy_on"),
        RecordingPolicy::Announce => (true, "announced"),
        RecordingPolicy::Consent if customer_consent => (true, "customer_consented"),
        RecordingPolicy::Consent => (false, "no_consent"),
    };
    RecordingDecision { record, reason }
}

/// A finished call, as the call task reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CallRecord {
    /// Id (set by the store).
    #[serde(default)]
    pub id: String,
    /// The SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Caller number.
    pub caller: String,
    /// Dialled number.
    pub dialled: String,
    /// The customer the call was filed under.
    pub customer_id: Option<String>,
    /// Queue (the last one, after overflow).
    pub queue_id: Option<String>,
    /// The agent who answered.
    pub agent_id: Option<String>,
    /// Every agent offered the call, in order, with their outcome and talk time.
    pub agents: Vec<AgentLeg>,
    /// Call start.
    pub started_at: Timestamp,
    /// Entered the queue.
    pub enqueued_at: Option<Timestamp>,
    /// An agent answered.
    pub answered_at: Option<Timestamp>,
    /// Call end.
    pub ended_at: Timestamp,
    /// Wait in queue, ms (until answer or the end).
    pub wait_ms: i64,
    /// Talk time with the agent, ms.
    pub talk_ms: i64,
    /// The agent's wrap-up after the call, ms.
    pub wrap_ms: i64,
    /// `answered`, `abandoned`, `timeout`, `callback`, `voicemail`, `no_queue`.
    pub outcome: String,
    /// `caller`, `agent` or `system`.
    pub hangup_side: Option<String>,
    /// Cause text (e.g. `normal_clearing`, `no_answer`, a Q.850 reason).
    pub hangup_cause: Option<String>,
    /// Recording path (relative to the data dir).
    pub recording: Option<String>,
    /// Answered within the queue's SL threshold.
    pub sl_met: bool,
}

/// One agent's part in a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AgentLeg {
    /// The agent.
    pub agent_id: String,
    /// `answered`, `no_answer`, `rejected`, `cancelled`.
    pub outcome: String,
    /// Offered at.
    pub offered_at: Timestamp,
    /// Talk time, ms.
    pub talk_ms: i64,
}

/// Filters of [`Store::call_records`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallRecordFilter {
    /// Started at or after (RFC 3339).
    pub from: Option<Timestamp>,
    /// Started before (RFC 3339).
    pub to: Option<Timestamp>,
    /// One queue.
    pub queue_id: Option<String>,
    /// One agent.
    pub agent_id: Option<String>,
    /// At most this many, newest first (1..=500, default 100).
    pub limit: Option<u32>,
}

/// Statistics of one queue or agent over a time range, from the CDRs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CallStats {
    /// The queue or agent id.
    pub id: String,
    /// Calls (that entered the queue / were offered to the agent).
    pub offered: i64,
    /// Answered.
    pub answered: i64,
    /// Abandoned by the caller before an answer.
    pub abandoned: i64,
    /// Average speed of answer: mean wait of answered calls, seconds.
    pub asa_s: Option<f64>,
    /// Average handle time: mean talk + wrap-up of answered calls, seconds.
    pub aht_s: Option<f64>,
    /// Abandoned ÷ offered.
    pub abandonment_rate: Option<f64>,
    /// Answered within the queue's threshold ÷ (answered + abandoned).
    pub service_level: Option<f64>,
}

/// The longest sticky-routing window: 30 days.
const MAX_STICKY_WINDOW_S: u32 = 30 * 86_400;

fn check_queue(input: &QueueInput) -> Result<()> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::invalid("name", "must be 1 to 100 characters"));
    }
    for (i, s) in input.skills.iter().enumerate() {
        if !(1..=5).contains(&s.min_proficiency) {
            return Err(Error::invalid(
                format!("skills[{i}].min_proficiency"),
                "must be between 1 and 5",
            ));
        }
    }
    if input.overflow_queue_id.is_some() != input.overflow_after_s.is_some() {
        return Err(Error::invalid(
            "overflow_after_s",
            "overflow_queue_id and overflow_after_s go together",
        ));
    }
    if let Some(k) = &input.callback_key
        && !(k.len() == 1
            && k.chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#'))
    {
        return Err(Error::invalid("callback_key", "must be one of 0-9, * or #"));
    }
    if input.ring_timeout_s == Some(0) {
        return Err(Error::invalid("ring_timeout_s", "must be at least 1"));
    }
    if input
        .sticky_window_s
        .is_some_and(|s| s > MAX_STICKY_WINDOW_S)
    {
        return Err(Error::invalid(
            "sticky_window_s",
            "must be at most 2592000 (30 days)",
        ));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    id: String,
    tenant_id: String,
    name: String,
    strategy: String,
    skills: String,
    sl_threshold_s: i64,
    overflow_queue_id: Option<String>,
    overflow_after_s: Option<i64>,
    max_wait_s: Option<i64>,
    max_wait_action: String,
    wrap_up_s: i64,
    ring_timeout_s: i64,
    max_missed_offers: i64,
    priority_aging_per_min: i64,
    announce_interval_s: i64,
    callback_key: Option<String>,
    auto_assign: i64,
    sticky_window_s: i64,
    channel: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const QUEUE_COLS: &str = "id, tenant_id, name, strategy, skills, sl_threshold_s, overflow_queue_id, \
     overflow_after_s, max_wait_s, max_wait_action, wrap_up_s, ring_timeout_s, max_missed_offers, \
     priority_aging_per_min, announce_interval_s, callback_key, auto_assign, sticky_window_s, channel, \
     created_at, updated_at";

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl QueueRow {
    fn into_queue(self) -> Result<Queue> {
        Ok(Queue {
            strategy: Strategy::parse(&self.strategy).unwrap_or_default(),
            skills: from_json_text("queue.skills", &self.skills)?,
            sl_threshold_s: u32_of(self.sl_threshold_s),
            overflow_after_s: self.overflow_after_s.map(u32_of),
            max_wait_s: self.max_wait_s.map(u32_of),
            max_wait_action: MaxWaitAction::parse(&self.max_wait_action).unwrap_or_default(),
            wrap_up_s: u32_of(self.wrap_up_s),
            ring_timeout_s: u32_of(self.ring_timeout_s),
            max_missed_offers: u32_of(self.max_missed_offers),
            priority_aging_per_min: u32_of(self.priority_aging_per_min),
            announce_interval_s: u32_of(self.announce_interval_s),
            auto_assign: self.auto_assign != 0,
            sticky_window_s: u32_of(self.sticky_window_s),
            channel: self.channel.as_deref().and_then(Channel::parse),
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            overflow_queue_id: self.overflow_queue_id,
            callback_key: self.callback_key,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// A call ringing one agent (the screen pop): published as `call.offered` to that agent
/// (and to supervisors) when the router offers them the call, before they answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CallOffered {
    /// The live call's id (as in `GET /calls`).
    pub call_id: String,
    /// The agent whose phones ring.
    pub agent_id: String,
    /// The caller's number.
    pub caller: String,
    /// The queue the call was routed from.
    pub queue_id: String,
    /// That queue's name.
    pub queue: String,
    /// The caller's customer (found by number, created if new) the desktop opens; `None`
    /// for a caller without a usable number.
    pub customer_id: Option<String>,
}

fn presence_event(tenant_id: &str, p: &AgentPresence) -> DomainEvent {
    DomainEvent::new(tenant_id, "agent.presence_changed", p)
}

impl Store {
    /// Creates a queue (admin via the API).
    pub async fn create_queue(&self, actor: &Actor, input: QueueInput) -> Result<Queue> {
        check_queue(&input)?;
        self.check_queue_refs(actor, &input, None).await?;
        let now = self.now();
        let q = queue_of(new_id(), &actor.tenant_id, input, now, now);
        let mut tx = self.write_tx().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO queues ({QUEUE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        )))
        .bind(&q.id)
        .bind(&q.tenant_id)
        .bind(&q.name)
        .bind(q.strategy.as_str())
        .bind(json_text(&q.skills))
        .bind(i64::from(q.sl_threshold_s))
        .bind(&q.overflow_queue_id)
        .bind(q.overflow_after_s.map(i64::from))
        .bind(q.max_wait_s.map(i64::from))
        .bind(q.max_wait_action.as_str())
        .bind(i64::from(q.wrap_up_s))
        .bind(i64::from(q.ring_timeout_s))
        .bind(i64::from(q.max_missed_offers))
        .bind(i64::from(q.priority_aging_per_min))
        .bind(i64::from(q.announce_interval_s))
        .bind(&q.callback_key)
        .bind(i64::from(q.auto_assign))
        .bind(i64::from(q.sticky_window_s))
        .bind(q.channel.map(Channel::as_str))
        .bind(q.created_at.0)
        .bind(q.updated_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "queue", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "queue.create",
                entity_kind: "queue",
                entity_id: &q.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&q),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [DomainEvent::new(&actor.tenant_id, "queue.created", &q)],
        )
        .await?;
        Ok(q)
    }

    async fn check_queue_refs(
        &self,
        actor: &Actor,
        input: &QueueInput,
        id: Option<&str>,
    ) -> Result<()> {
        if let Some(o) = &input.overflow_queue_id {
            if Some(o.as_str()) == id {
                return Err(Error::invalid("overflow_queue_id", "must be another queue"));
            }
            self.require(actor, "queues", "overflow queue", o).await?;
        }
        for s in &input.skills {
            self.require(actor, "skills", "skill", &s.skill).await?;
        }
        Ok(())
    }

    /// One queue.
    pub async fn queue(&self, actor: &Actor, id: &str) -> Result<Queue> {
        let row: Option<QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLS} FROM queues WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or_else(|| Error::not_found("queue"))?.into_queue()
    }

    /// A queue by id or by name (what an IVR `enqueue` node holds).
    pub async fn queue_by_ref(&self, actor: &Actor, id_or_name: &str) -> Result<Queue> {
        let row: Option<QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLS} FROM queues WHERE tenant_id = $1 AND (id = $2 OR name = $2)
             ORDER BY id LIMIT 1"
        )))
        .bind(&actor.tenant_id)
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or_else(|| Error::not_found("queue"))?.into_queue()
    }

    /// The tenant's queues by name.
    pub async fn list_queues(&self, actor: &Actor) -> Result<Vec<Queue>> {
        let rows: Vec<QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLS} FROM queues WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(QueueRow::into_queue).collect()
    }

    /// Replaces a queue's settings.
    pub async fn update_queue(&self, actor: &Actor, id: &str, input: QueueInput) -> Result<Queue> {
        check_queue(&input)?;
        let before = self.queue(actor, id).await?;
        self.check_queue_refs(actor, &input, Some(id)).await?;
        let now = self.now();
        let q = queue_of(
            id.to_owned(),
            &actor.tenant_id,
            input,
            before.created_at,
            now,
        );
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE queues SET name = $3, strategy = $4, skills = $5, sl_threshold_s = $6,
                overflow_queue_id = $7, overflow_after_s = $8, max_wait_s = $9, max_wait_action = $10,
                wrap_up_s = $11, ring_timeout_s = $12, max_missed_offers = $13,
                priority_aging_per_min = $14, announce_interval_s = $15, callback_key = $16,
                auto_assign = $17, sticky_window_s = $18, channel = $19, updated_at = $20
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(&q.name)
        .bind(q.strategy.as_str())
        .bind(json_text(&q.skills))
        .bind(i64::from(q.sl_threshold_s))
        .bind(&q.overflow_queue_id)
        .bind(q.overflow_after_s.map(i64::from))
        .bind(q.max_wait_s.map(i64::from))
        .bind(q.max_wait_action.as_str())
        .bind(i64::from(q.wrap_up_s))
        .bind(i64::from(q.ring_timeout_s))
        .bind(i64::from(q.max_missed_offers))
        .bind(i64::from(q.priority_aging_per_min))
        .bind(i64::from(q.announce_interval_s))
        .bind(&q.callback_key)
        .bind(i64::from(q.auto_assign))
        .bind(i64::from(q.sticky_window_s))
        .bind(q.channel.map(Channel::as_str))
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "queue", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "queue.update",
                entity_kind: "queue",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&q),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [DomainEvent::new(&actor.tenant_id, "queue.updated", &q)],
        )
        .await?;
        Ok(q)
    }

    /// Deletes a queue (other queues overflowing into it stop overflowing).
    pub async fn delete_queue(&self, actor: &Actor, id: &str) -> Result<()> {
        let before = self.queue(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE queues SET overflow_queue_id = NULL, overflow_after_s = NULL
             WHERE tenant_id = $1 AND overflow_queue_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM queues WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "queue.delete",
                entity_kind: "queue",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [DomainEvent::new(
                &actor.tenant_id,
                "queue.deleted",
                &serde_json::json!({ "id": id }),
            )],
        )
        .await?;
        Ok(())
    }

    /// An agent's stored presence (`offline` when never set).
    pub async fn presence(&self, actor: &Actor, user_id: &str) -> Result<AgentPresence> {
        self.require(actor, "users", "user", user_id).await?;
        let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT status, reason, updated_at FROM agent_presence WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some((status, reason, at)) => AgentPresence {
                user_id: user_id.to_owned(),
                status,
                reason,
                updated_at: Timestamp(at),
            },
            None => AgentPresence {
                user_id: user_id.to_owned(),
                status: "offline".into(),
                reason: None,
                updated_at: Timestamp(0),
            },
        })
    }

    /// Sets an agent's presence (audited; publishes `agent.presence_changed`).
    pub async fn set_presence(
        &self,
        actor: &Actor,
        user_id: &str,
        input: PresenceInput,
    ) -> Result<AgentPresence> {
        let status = input.status.trim().to_ascii_lowercase();
        if !["offline", "available", "away"].contains(&status.as_str()) {
            return Err(Error::invalid(
                "status",
                "must be offline, available or away",
            ));
        }
        let reason = match status.as_str() {
            "away" => Some(
                input
                    .reason
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "away".into()),
            ),
            _ => None,
        };
        if reason.as_ref().is_some_and(|r| r.len() > 100) {
            return Err(Error::invalid("reason", "must be at most 100 bytes"));
        }
        let before = self.presence(actor, user_id).await?;
        let now = self.now();
        let p = AgentPresence {
            user_id: user_id.to_owned(),
            status,
            reason,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO agent_presence (user_id, tenant_id, status, reason, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
                updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&actor.tenant_id)
        .bind(&p.status)
        .bind(&p.reason)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "agent.presence",
                entity_kind: "user",
                entity_id: user_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&p),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [presence_event(&actor.tenant_id, &p)])
            .await?;
        Ok(p)
    }

    /// Publishes what an agent is doing right now (ringing, on a call, wrap-up), as the
    /// router reports it; not stored (their own status is, by [`Store::set_presence`]).
    pub fn publish_live_presence(&self, tenant_id: &str, user_id: &str, presence: &Presence) {
        let mut e = DomainEvent::new(
            tenant_id,
            "agent.activity",
            &serde_json::json!({ "user_id": user_id, "activity": presence }),
        );
        e.min_role = Role::Agent;
        self.publish([e]);
    }

    /// Publishes the screen pop of a call ringing `offer.agent_id` (`call.offered`, for
    /// that agent and the tenant's supervisors). Nothing is stored: the call's record and
    /// timeline entry come when it ends.
    pub fn publish_call_offered(&self, tenant_id: &str, offer: &CallOffered) {
        let mut e = DomainEvent::new(tenant_id, "call.offered", offer);
        if let Some(c) = &offer.customer_id {
            e = e.customer(c);
        }
        e.only_users = Some(vec![offer.agent_id.clone()]);
        self.publish([e]);
    }

    /// Every queue of every tenant, for the router at start.
    pub async fn routing_queues(&self) -> Result<Vec<Queue>> {
        let rows: Vec<QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLS} FROM queues ORDER BY tenant_id, name"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(QueueRow::into_queue).collect()
    }

    /// The routing profile and stored status of every active user of `tenant_id` who
    /// takes work, or of one user. Skills are keyed by both id and name.
    ///
    /// Who takes work: a user with an extension (their phone can ring), and every user
    /// with the `agent` role — an agent without an extension is a chat-only agent
    /// (issue #15): routable for chat, email and messaging work, with a voice capacity
    /// of 0 whatever their capacity row says, so no call or callback is offered to them.
    pub async fn routing_agents(
        &self,
        tenant_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<(AgentConfig, AgentStatus)>> {
        // Id, tenant, stored status and reason, the capacity row (voice, chat, async,
        // call blocks other work) when set, and whether the user has an extension.
        type UserRow = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
        );
        let users: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.tenant_id, p.status, p.reason, c.voice_capacity, c.chat_capacity,
                c.async_capacity, c.call_blocks_other_work,
                CAST(CASE WHEN u.extension IS NULL THEN 0 ELSE 1 END AS BIGINT) FROM users u
             LEFT JOIN agent_presence p ON p.user_id = u.id
             LEFT JOIN agent_capacity c ON c.user_id = u.id
             WHERE u.active = 1 AND (u.extension IS NOT NULL OR u.role = 'agent')
               AND ($1 IS NULL OR u.tenant_id = $1) AND ($2 IS NULL OR u.id = $2)
             ORDER BY u.id",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        let skills: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT us.user_id, us.skill_id, s.name, us.proficiency FROM user_skills us
             JOIN skills s ON s.id = us.skill_id
             WHERE ($1 IS NULL OR us.tenant_id = $1) AND ($2 IS NULL OR us.user_id = $2)",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        let mut by_user: BTreeMap<String, BTreeMap<String, u8>> = BTreeMap::new();
        // Keyed by id (queues name skills by id) and by name (IVR flows do).
        for (u, id, name, p) in skills {
            let p = u8::try_from(p.clamp(0, 5)).unwrap_or(0);
            let e = by_user.entry(u).or_default();
            e.insert(id, p);
            e.insert(name, p);
        }
        Ok(users
            .into_iter()
            .map(
                |(id, tenant, status, reason, voice, chat, async_items, blocks, phone)| {
                    let mut cfg = AgentConfig::new(&id, &tenant);
                    cfg.skills = by_user.remove(&id).unwrap_or_default();
                    if let (Some(voice), Some(chat), Some(async_items), Some(blocks)) =
                        (voice, chat, async_items, blocks)
                    {
                        let n = |v: i64| u32::try_from(v.max(0)).unwrap_or(0);
                        cfg.capacity = BTreeMap::from([
                            (Channel::Voice, n(voice)),
                            (Channel::Chat, n(chat)),
                            (Channel::Async, n(async_items)),
                        ]);
                        cfg.call_blocks_other_work = blocks != 0;
                    }
                    if phone == 0 {
                        // Chat-only: no phone to ring.
                        cfg.capacity.insert(Channel::Voice, 0);
                    }
                    let p = AgentPresence {
                        user_id: id,
                        status: status.unwrap_or_else(|| "offline".into()),
                        reason,
                        updated_at: Timestamp(0),
                    };
                    (cfg, p.routing())
                },
            )
            .collect())
    }

    /// The tenant's recording policy for queue calls.
    pub async fn recording_policy(&self, actor: &Actor) -> Result<RecordingPolicy> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT recording FROM acd_settings WHERE tenant_id = $1")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row
            .map(|r| RecordingPolicy::parse(&r.0))
            .unwrap_or_default())
    }

    /// Sets the tenant's recording policy (audited).
    pub async fn set_recording_policy(&self, actor: &Actor, policy: RecordingPolicy) -> Result<()> {
        let before = self.recording_policy(actor).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO acd_settings (tenant_id, recording, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET recording = excluded.recording, updated_at = excluded.updated_at",
        )
        .bind(&actor.tenant_id)
        .bind(policy.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "acd.recording_policy",
                entity_kind: "tenant",
                entity_id: &actor.tenant_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&policy),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "acd.recording_policy_changed", &policy)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// Stores a finished call's record (written by the call task as the system).
    pub async fn add_call_record(&self, actor: &Actor, mut rec: CallRecord) -> Result<CallRecord> {
        rec.id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO call_records (id, tenant_id, call_id, direction, caller, dialled, customer_id,
                queue_id, agent_id, agents, started_at, enqueued_at, answered_at, ended_at, wait_ms,
                talk_ms, wrap_ms, outcome, hangup_side, hangup_cause, recording, sl_met)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                $19, $20, $21, $22)",
        )
        .bind(&rec.id)
        .bind(&actor.tenant_id)
        .bind(&rec.call_id)
        .bind(&rec.direction)
        .bind(&rec.caller)
        .bind(&rec.dialled)
        .bind(&rec.customer_id)
        .bind(&rec.queue_id)
        .bind(&rec.agent_id)
        .bind(json_text(&rec.agents))
        .bind(rec.started_at.0)
        .bind(rec.enqueued_at.map(|t| t.0))
        .bind(rec.answered_at.map(|t| t.0))
        .bind(rec.ended_at.0)
        .bind(rec.wait_ms)
        .bind(rec.talk_ms)
        .bind(rec.wrap_ms)
        .bind(&rec.outcome)
        .bind(&rec.hangup_side)
        .bind(&rec.hangup_cause)
        .bind(&rec.recording)
        .bind(i64::from(rec.sl_met))
        .execute(&mut *tx)
        .await?;
        let event = call_ended_event(&actor.tenant_id, &rec);
        self.commit_audited(tx, Audited::own_record(), [event])
            .await?;
        Ok(rec)
    }

    /// Call detail records, newest first.
    pub async fn call_records(
        &self,
        actor: &Actor,
        f: &CallRecordFilter,
    ) -> Result<Vec<CallRecord>> {
        let limit = i64::from(f.limit.unwrap_or(100).clamp(1, 500));
        let rows: Vec<CdrRow> = sqlx::query_as(
            "SELECT id, call_id, direction, caller, dialled, customer_id, queue_id, agent_id, agents,
                started_at, enqueued_at, answered_at, ended_at, wait_ms, talk_ms, wrap_ms, outcome,
                hangup_side, hangup_cause, recording, sl_met
             FROM call_records
             WHERE tenant_id = $1 AND started_at >= $2 AND started_at < $3
               AND ($4 IS NULL OR queue_id = $4) AND ($5 IS NULL OR agent_id = $5)
             ORDER BY started_at DESC, id DESC LIMIT $6",
        )
        .bind(&actor.tenant_id)
        .bind(f.from.map(|t| t.0).unwrap_or(0))
        .bind(f.to.map(|t| t.0).unwrap_or(i64::MAX))
        .bind(f.queue_id.as_deref())
        .bind(f.agent_id.as_deref())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(CdrRow::into_record).collect()
    }

    /// ASA, AHT, abandonment and service level per queue (`by_agent = false`) or per
    /// answering agent (`true`) for calls started in `[from, to)`.
    pub async fn call_stats(
        &self,
        actor: &Actor,
        from: Timestamp,
        to: Timestamp,
        by_agent: bool,
    ) -> Result<Vec<CallStats>> {
        let key = if by_agent { "agent_id" } else { "queue_id" };
        let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(
            format!(
                "SELECT {key}, COUNT(*),
                    CAST(SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN outcome = 'abandoned' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN answered_at IS NOT NULL THEN wait_ms ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN answered_at IS NOT NULL THEN talk_ms + wrap_ms ELSE 0 END) AS BIGINT),
                    CAST(SUM(sl_met) AS BIGINT)
                 FROM call_records
                 WHERE tenant_id = $1 AND started_at >= $2 AND started_at < $3 AND {key} IS NOT NULL
                 GROUP BY {key} ORDER BY {key}"
            ),
        ))
        .bind(&actor.tenant_id)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, offered, answered, abandoned, wait, handle, sl)| {
                let ratio = |n: i64, d: i64| (d > 0).then(|| n as f64 / d as f64);
                CallStats {
                    id,
                    offered,
                    answered,
                    abandoned,
                    asa_s: ratio(wait, answered).map(|v| v / 1000.0),
                    aht_s: ratio(handle, answered).map(|v| v / 1000.0),
                    abandonment_rate: ratio(abandoned, offered),
                    service_level: ratio(sl, answered + abandoned),
                }
            })
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct CdrRow {
    id: String,
    call_id: String,
    direction: String,
    caller: String,
    dialled: String,
    customer_id: Option<String>,
    queue_id: Option<String>,
    agent_id: Option<String>,
    agents: String,
    started_at: i64,
    enqueued_at: Option<i64>,
    answered_at: Option<i64>,
    ended_at: i64,
    wait_ms: i64,
    talk_ms: i64,
    wrap_ms: i64,
    outcome: String,
    hangup_side: Option<String>,
    hangup_cause: Option<String>,
    recording: Option<String>,
    sl_met: i64,
}

impl CdrRow {
    fn into_record(self) -> Result<CallRecord> {
        Ok(CallRecord {
            agents: from_json_text("call_records.agents", &self.agents)?,
            id: self.id,
            call_id: self.call_id,
            direction: self.direction,
            caller: self.caller,
            dialled: self.dialled,
            customer_id: self.customer_id,
            queue_id: self.queue_id,
            agent_id: self.agent_id,
            started_at: Timestamp(self.started_at),
            enqueued_at: self.enqueued_at.map(Timestamp),
            answered_at: self.answered_at.map(Timestamp),
            ended_at: Timestamp(self.ended_at),
            wait_ms: self.wait_ms,
            talk_ms: self.talk_ms,
            wrap_ms: self.wrap_ms,
            outcome: self.outcome,
            hangup_side: self.hangup_side,
            hangup_cause: self.hangup_cause,
            recording: self.recording,
            sl_met: self.sl_met != 0,
        })
    }
}

fn queue_of(
    id: String,
    tenant_id: &str,
    i: QueueInput,
    created: Timestamp,
    updated: Timestamp,
) -> Queue {
    Queue {
        id,
        tenant_id: tenant_id.to_owned(),
        name: i.name.trim().to_owned(),
        strategy: i.strategy,
        skills: i.skills,
        sl_threshold_s: i.sl_threshold_s.unwrap_or(20),
        overflow_queue_id: i.overflow_queue_id,
        overflow_after_s: i.overflow_after_s,
        max_wait_s: i.max_wait_s,
        max_wait_action: i.max_wait_action,
        wrap_up_s: i.wrap_up_s.unwrap_or(10),
        ring_timeout_s: i.ring_timeout_s.unwrap_or(15),
        max_missed_offers: i.max_missed_offers.unwrap_or(3),
        priority_aging_per_min: i.priority_aging_per_min.unwrap_or(0),
        announce_interval_s: i.announce_interval_s.unwrap_or(30),
        callback_key: i.callback_key,
        auto_assign: i.auto_assign,
        sticky_window_s: i.sticky_window_s.unwrap_or(0),
        channel: i.channel,
        created_at: created,
        updated_at: updated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_follows_the_policy_and_the_customers_opt_in() {
        use RecordingPolicy::*;
        let cases = [
            (Off, false, false, "policy_off"),
            (Off, true, false, "policy_off"),
            (On, false, true, "policy_on"),
            (On, true, true, "policy_on"),
            (Announce, false, true, "announced"),
            (Announce, true, true, "announced"),
            (Consent, true, true, "customer_consented"),
            (Consent, false, false, "no_consent"),
        ];
        for (policy, consent, record, reason) in cases {
            assert_eq!(
                recording_decision(policy, consent),
                RecordingDecision { record, reason },
                "{policy:?} with consent {consent}"
            );
        }
        assert!(Announce.announces());
        assert!(!Consent.announces() && !On.announces() && !Off.announces());
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [
            RecordingPolicy::Off,
            RecordingPolicy::On,
            RecordingPolicy::Announce,
            RecordingPolicy::Consent,
        ] {
            assert_eq!(RecordingPolicy::parse(p.as_str()), p);
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(json, p.as_str());
        }
    }
}
