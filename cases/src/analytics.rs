//! Analytics (issue #22; migration 0029; definitions in docs/metrics.md).
//!
//! **Rollups, maintained incrementally.** [`Store::analytics_catch_up`] reads committed
//! events from the outbox in commit-time order after its checkpoint, turns each into
//! facts ([`fold::facts_of`], pure), inserts each fact under its deterministic key
//! (a fact already there is skipped: replays never count twice) and adds the new facts'
//! measures to their 15-minute and day rollup rows ([`fold::fold_into`]), then moves
//! the checkpoint — all in one transaction. A restart resumes from the checkpoint. It
//! re-reads the last [`REREAD_MS`] before the checkpoint, because a transaction can
//! commit after a later-stamped one; the fact keys make that harmless. The binary runs
//! [`Store::analytics_follow`] (no re-read) on every committed event and every second,
//! and the catch-up at start-up and every 10 s (src/analytics.rs).
//!
//! **Reports read rollups only** ([`Store::analytics_kpis`]); drill-down lists the facts
//! of a range ([`Store::analytics_drilldown`]). Saved reports are the report builder's
//! definitions, private or shared with the tenant ([`Store::save_report`]).

pub mod fold;
pub mod history;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::store::Tx;
use crate::types::new_id;
use crate::{Actor, Error, Result, Role, Store, Timestamp};
use fold::{Fact, MEASURES, Measures, RES_BIN_EDGES_S, RES_BINS, RollupKey, m};

/// The fold's consumer name in `analytics_checkpoint`.
const CONSUMER: &str = "rollups";

/// How far before its checkpoint the fold reads again (late commits).
pub const REREAD_MS: i64 = 5_000;

/// Outbox rows read per transaction.
const BATCH: i64 = 1_000;

/// The event kinds that yield facts (the outbox is filtered on them).
const KINDS: [&str; 7] = [
    "call.ended",
    "conversation.opened",
    "conversation.message",
    "conversation.status_changed",
    "conversation.updated",
    "interaction.csat",
    "callback.changed",
];

/// What a report is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Channel (`voice`, `web_chat`, `email`, …).
    Channel,
    /// Queue.
    #[default]
    Queue,
    /// Team.
    Team,
    /// Agent.
    Agent,
    /// Intent.
    Intent,
    /// Priority.
    Priority,
    /// UTC day.
    Day,
    /// UTC hour.
    Hour,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Queue => "queue_id",
            GroupBy::Team => "team_id",
            GroupBy::Agent => "agent_id",
            GroupBy::Intent => "intent",
            GroupBy::Priority => "priority",
            GroupBy::Day => "CAST((bucket / 86400000) * 86400000 AS TEXT)",
            GroupBy::Hour => "CAST((bucket / 3600000) * 3600000 AS TEXT)",
        }
    }
}

/// Filters and grouping of a KPI report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KpiQuery {
    /// From (inclusive).
    pub from: Timestamp,
    /// To (exclusive).
    pub to: Timestamp,
    /// Grouping.
    #[serde(default)]
    pub group_by: GroupBy,
    /// One channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// One queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// One team.
    #[serde(default)]
    pub team: Option<String>,
    /// One agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// One priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// Service level's abandon switch: `false` (default) counts abandons (short ones
    /// excluded) in the denominator; `true` counts answered calls only.
    #[serde(default)]
    pub sl_answered_only: bool,
}

/// A metric's definition (docs/metrics.md has the long form).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct MetricDef {
    /// Id (`aht_s`, …), the anchor in docs/metrics.md.
    pub id: &'static str,
    /// Name.
    pub name: &'static str,
    /// Unit: `count`, `s`, `ratio`, `score`.
    pub unit: &'static str,
    /// The formula over rollup measures.
    pub formula: &'static str,
}

/// Every metric a KPI row carries, in order.
pub const METRICS: [MetricDef; 22] = [
    def(
        "contacts",
        "Contacts",
        "count",
        "calls + conversations opened",
    ),
    def(
        "offered",
        "Offered",
        "count",
        "contacts that entered a queue",
    ),
    def(
        "answered",
        "Answered",
        "count",
        "queued calls an agent answered",
    ),
    def(
        "abandoned",
        "Abandoned",
        "count",
        "queued calls the caller left before an answer (short abandons included)",
    ),
    def(
        "short_abandoned",
        "Short abandons",
        "count",
        "abandoned after waiting < 5 s",
    ),
    def(
        "abandonment_rate",
        "Abandonment rate",
        "ratio",
        "(abandoned - short_abandoned) / (queued calls - short_abandoned)",
    ),
    def(
        "service_level",
        "Service level",
        "ratio",
        "sl_met / (answered + abandoned - short_abandoned); switch: sl_met / answered",
    ),
    def(
        "asa_s",
        "Average speed of answer",
        "s",
        "sum(wait of answered) / answered",
    ),
    def(
        "aht_s",
        "Average handle time",
        "s",
        "(talk + hold + after-call work) / answered",
    ),
    def(
        "transfers",
        "Transfers",
        "count",
        "answered agent legs after the first",
    ),
    def(
        "callbacks_requested",
        "Callbacks requested",
        "count",
        "queued calls ending in a callback request",
    ),
    def(
        "callbacks_kept",
        "Callbacks kept",
        "count",
        "callbacks that connected",
    ),
    def(
        "first_responses",
        "First responses",
        "count",
        "conversations given a first public human reply",
    ),
    def(
        "frt_avg_s",
        "First response time (average)",
        "s",
        "sum(first reply - creation) / first_responses",
    ),
    def("resolved", "Resolved", "count", "resolutions"),
    def(
        "resolution_avg_s",
        "Resolution time (average)",
        "s",
        "sum(resolved_at - created_at) / resolved",
    ),
    def(
        "resolution_median_s",
        "Resolution time (median, to its bin)",
        "s",
        "upper edge of the bin holding the median resolution",
    ),
    def(
        "fcr",
        "First contact resolution",
        "ratio",
        "(resolved - reopened within 7 days) / resolved",
    ),
    def(
        "csat",
        "CSAT",
        "ratio",
        "scores of 4-5 / scores (1-5 scale)",
    ),
    def("csat_responses", "CSAT responses", "count", "scores given"),
    def(
        "nps",
        "NPS",
        "score",
        "100 * (promoters 9-10 - detractors 0-6) / answers",
    ),
    def(
        "volume_share",
        "Share of volume",
        "ratio",
        "contacts of the row / contacts of the report",
    ),
];

const fn def(
    id: &'static str,
    name: &'static str,
    unit: &'static str,
    formula: &'static str,
) -> MetricDef {
    MetricDef {
        id,
        name,
        unit,
        formula,
    }
}

/// One named metric's value in a row.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct MetricValue {
    /// The definition's id (see `definitions`, docs/metrics.md).
    pub id: &'static str,
    /// The value (None: no denominator, e.g. no answered call).
    pub value: Option<f64>,
}

/// One row of a KPI report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KpiRow {
    /// The group's key: an id, a channel, a priority, or the day's/hour's start
    /// (RFC 3339); '' for contacts without one (e.g. unanswered calls by agent).
    pub key: String,
    /// A readable label (queue, team or agent name; the key otherwise).
    pub label: String,
    /// The metrics, in the order of `definitions`.
    pub metrics: Vec<MetricValue>,
}

/// A KPI report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KpiReport {
    /// The query answered.
    pub query: KpiQuery,
    /// Rollup grain read (seconds: 900 or 86400).
    pub grain_s: i64,
    /// One row per group, by key.
    pub rows: Vec<KpiRow>,
    /// All rows together.
    pub total: KpiRow,
    /// The definitions of the metrics.
    pub definitions: Vec<MetricDef>,
}

impl KpiReport {
    /// The report as CSV: `key,label,<metric ids…>`, a row per group, then `total`.
    /// Numbers as in JSON (no value: empty).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("key,label");
        for d in &self.definitions {
            out.push(',');
            out.push_str(d.id);
        }
        out.push('\n');
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            out.push_str(&csv_field(&r.key));
            out.push(',');
            out.push_str(&csv_field(&r.label));
            for v in &r.metrics {
                out.push(',');
                if let Some(x) = v.value {
                    let _ = write!(out, "{x}");
                }
            }
            out.push('\n');
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    // Cells starting with a formula character are prefixed (spreadsheet injection).
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| round3(n as f64 / d as f64))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The metrics of a sum of rollups (`all_contacts`: the report's, for shares).
pub fn metrics_of(t: &Measures, all_contacts: i64, sl_answered_only: bool) -> Vec<MetricValue> {
    let g = |i| t.get(i);
    let offered_calls_short = g(m::SHORT_ABANDONED);
    let answered = g(m::ANSWERED);
    let abandoned = g(m::ABANDONED);
    let sl_den = if sl_answered_only {
        answered
    } else {
        answered + abandoned - offered_calls_short
    };
    let resolved = g(m::RESOLVED);
    let median = median_bin(t);
    let values: [(&'static str, Option<f64>); 22] = [
        ("contacts", Some(g(m::CONTACTS) as f64)),
        ("offered", Some(g(m::OFFERED) as f64)),
        ("answered", Some(answered as f64)),
        ("abandoned", Some(abandoned as f64)),
        ("short_abandoned", Some(offered_calls_short as f64)),
        (
            "abandonment_rate",
            ratio(
                abandoned - offered_calls_short,
                g(m::CALLS_OFFERED) - offered_calls_short,
            ),
        ),
        ("service_level", ratio(g(m::SL_MET), sl_den)),
        (
            "asa_s",
            ratio(g(m::WAIT_ANSWERED_MS), answered).map(|v| round3(v / 1000.0)),
        ),
        (
            "aht_s",
            ratio(g(m::TALK_MS) + g(m::HOLD_MS) + g(m::WRAP_MS), answered)
                .map(|v| round3(v / 1000.0)),
        ),
        ("transfers", Some(g(m::TRANSFERS) as f64)),
        (
            "callbacks_requested",
            Some(g(m::CALLBACKS_REQUESTED) as f64),
        ),
        ("callbacks_kept", Some(g(m::CALLBACKS_KEPT) as f64)),
        ("first_responses", Some(g(m::FRT_N) as f64)),
        (
            "frt_avg_s",
            ratio(g(m::FRT_MS), g(m::FRT_N)).map(|v| round3(v / 1000.0)),
        ),
        ("resolved", Some(resolved as f64)),
        (
            "resolution_avg_s",
            ratio(g(m::RESOLUTION_MS), resolved).map(|v| round3(v / 1000.0)),
        ),
        ("resolution_median_s", median),
        ("fcr", ratio(resolved - g(m::REOPENED), resolved)),
        ("csat", ratio(g(m::CSAT_POSITIVE), g(m::CSAT_N))),
        ("csat_responses", Some(g(m::CSAT_N) as f64)),
        (
            "nps",
            ratio(
                100 * (g(m::NPS_PROMOTERS) - g(m::NPS_DETRACTORS)),
                g(m::NPS_N),
            )
            .map(|v| (v * 10.0).round() / 10.0),
        ),
        ("volume_share", ratio(g(m::CONTACTS), all_contacts)),
    ];
    values
        .into_iter()
        .map(|(id, value)| MetricValue { id, value })
        .collect()
}

/// The upper edge (s) of the resolution bin holding the median: the smallest edge E
/// with at least half of the resolutions ≤ E. None without resolutions or when the
/// median is in the open last bin (over 7 days).
fn median_bin(t: &Measures) -> Option<f64> {
    let n = t.get(m::RESOLVED);
    if n == 0 {
        return None;
    }
    let mut acc = 0;
    for b in 0..RES_BINS {
        acc += t.get(m::RES_B0 + b);
        if 2 * acc >= n {
            return RES_BIN_EDGES_S.get(b).map(|e| *e as f64);
        }
    }
    None
}

/// A fact as drill-down lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FactRow {
    /// `call`, `conversation`, `first_response`, `resolution`, `reopen`, `csat`, `nps`,
    /// `callback_kept`.
    pub kind: String,
    /// When it counts.
    pub at: Timestamp,
    /// Channel.
    pub channel: String,
    /// Queue id ('' none).
    pub queue_id: String,
    /// Agent id ('' none).
    pub agent_id: String,
    /// Team id ('' none).
    pub team_id: String,
    /// Priority ('' none).
    pub priority: String,
    /// `call_record`, `conversation`, `interaction`, `callback`.
    pub ref_kind: String,
    /// Its id.
    pub ref_id: String,
    /// Duration (ms) or score.
    pub value: Option<i64>,
    /// Outcome, survey.
    pub detail: String,
}

/// Filters of a drill-down.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DrillQuery {
    /// From (inclusive).
    pub from: Timestamp,
    /// To (exclusive).
    pub to: Timestamp,
    /// Only facts of this kind.
    pub kind: Option<String>,
    /// One channel.
    pub channel: Option<String>,
    /// One queue ('' for none).
    pub queue: Option<String>,
    /// One agent ('' for none).
    pub agent: Option<String>,
    /// One team.
    pub team: Option<String>,
    /// One priority.
    pub priority: Option<String>,
    /// At most this many (1..=1000, default 200).
    pub limit: Option<u32>,
}

/// A saved report of the report builder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SavedReport {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Its author.
    #[serde(default)]
    pub owner_id: String,
    /// Name.
    pub name: String,
    /// Shared with the tenant's supervisors (else the author's only).
    #[serde(default)]
    pub shared: bool,
    /// The metric ids shown (empty: all).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Dimension.
    #[serde(default)]
    pub group_by: GroupBy,
    /// Period preset (`today`, `7d`, `30d`, `90d`, …), free text for the UI.
    #[serde(default)]
    pub period: String,
    /// Filters: `channel`, `queue`, `team`, `agent`, `priority` → value.
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    /// Created.
    #[serde(default)]
    pub created_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Definition {
    metrics: Vec<String>,
    group_by: GroupBy,
    period: String,
    filters: BTreeMap<String, String>,
}

fn measure_cols() -> String {
    MEASURES.join(", ")
}

impl Store {
    /// Folds every committed event after the checkpoint into facts and rollups (see the
    /// module), first reading again the last [`REREAD_MS`] before the checkpoint (events
    /// committed late). Run at start-up and every few seconds. Returns how many new
    /// facts were counted.
    pub async fn analytics_catch_up(&self) -> Result<usize> {
        self.analytics_rounds(true).await
    }

    /// Folds the events committed after the checkpoint, without reading any again (the
    /// cheap step run on every event; [`Store::analytics_catch_up`] covers late commits).
    pub async fn analytics_follow(&self) -> Result<usize> {
        self.analytics_rounds(false).await
    }

    async fn analytics_rounds(&self, reread: bool) -> Result<usize> {
        let (mut total, mut more) = self.analytics_round(reread).await?;
        while more {
            let (n, m) = self.analytics_round(false).await?;
            total += n;
            more = m;
        }
        Ok(total)
    }

    async fn analytics_round(&self, reread: bool) -> Result<(usize, bool)> {
        let mut tx = self.write_tx().await?;
        let cp: Option<(i64, String)> = sqlx::query_as(
            "SELECT created_at, event_id FROM analytics_checkpoint WHERE consumer = $1",
        )
        .bind(CONSUMER)
        .fetch_optional(&mut *tx)
        .await?;
        let (cp_at, cp_id) = cp.unwrap_or((i64::MIN / 2, String::new()));
        let kinds: Vec<String> = (0..KINDS.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT id, created_at, event FROM outbox
             WHERE (created_at > $1 OR (created_at = $1 AND id > $2)) AND kind IN ({})
             ORDER BY created_at, id LIMIT $3",
            kinds.join(", ")
        );
        // Re-reading starts REREAD_MS before the checkpoint (late commits; facts already
        // counted are skipped by their keys) and may read up to 20 batches at once.
        let (start, after_id, limit) = if reread {
            (cp_at.saturating_sub(REREAD_MS), String::new(), BATCH * 20)
        } else {
            (cp_at, cp_id.clone(), BATCH)
        };
        let mut q = sqlx::query_as::<_, (String, i64, String)>(sqlx::AssertSqlSafe(sql))
            .bind(start)
            .bind(after_id)
            .bind(limit);
        for k in KINDS {
            q = q.bind(k);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let more = i64::try_from(rows.len()).unwrap_or(0) == limit;
        let mut rollups: HashMap<(String, RollupKey), Measures> = HashMap::new();
        let mut teams: HashMap<(String, String), String> = HashMap::new();
        let mut counted = 0;
        let mut last: Option<(i64, String)> = None;
        for (id, at, text) in rows {
            let e = crate::outbox::stored_event(&text)?;
            for mut f in fold::facts_of(&e, Timestamp(at)) {
                if f.dims.team_id.is_empty() && !f.dims.agent_id.is_empty() {
                    f.dims.team_id =
                        team_of(&mut tx, &mut teams, &e.tenant_id, &f.dims.agent_id).await?;
                }
                if insert_fact(&mut tx, &e.tenant_id, &f).await? {
                    counted += 1;
                    for g in fold::GRAINS_S {
                        let key = RollupKey {
                            grain_s: g,
                            bucket: fold::bucket_of(f.at, g),
                            dims: f.dims.clone(),
                        };
                        fold::fold(rollups.entry((e.tenant_id.clone(), key)).or_default(), &f);
                    }
                }
            }
            if last.as_ref().is_none_or(|l| (at, &id) > (l.0, &l.1)) {
                last = Some((at, id));
            }
        }
        for ((tenant, key), meas) in &rollups {
            upsert_rollup(&mut tx, tenant, key, meas).await?;
        }
        if let Some((at, id)) = last
            && (at > cp_at || (at == cp_at && id > cp_id))
        {
            sqlx::query(
                "INSERT INTO analytics_checkpoint (consumer, created_at, event_id, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (consumer) DO UPDATE SET created_at = excluded.created_at,
                    event_id = excluded.event_id, updated_at = excluded.updated_at",
            )
            .bind(CONSUMER)
            .bind(at)
            .bind(&id)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if counted > 0 {
            metrics::counter!("parley_analytics_facts_total").increment(counted as u64);
        }
        Ok((counted, more))
    }

    /// A KPI report over the rollups (supervisors and admins).
    pub async fn analytics_kpis(&self, actor: &Actor, q: &KpiQuery) -> Result<KpiReport> {
        if actor.role < Role::Supervisor && actor.user_id.is_some() {
            return Err(Error::Forbidden { what: "analytics" });
        }
        if q.to <= q.from {
            return Err(Error::invalid("to", "must be after from"));
        }
        let day = 86_400_000;
        let grain_s = if q.group_by != GroupBy::Hour && q.from.0 % day == 0 && q.to.0 % day == 0 {
            86_400
        } else {
            900
        };
        let key = q.group_by.column();
        let sums: Vec<String> = MEASURES
            .iter()
            .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
            .collect();
        let sql = format!(
            "SELECT {key} AS k, {} FROM analytics_rollups
             WHERE tenant_id = $1 AND grain_s = $2 AND bucket >= $3 AND bucket < $4
               AND ($5 IS NULL OR channel = $5) AND ($6 IS NULL OR queue_id = $6)
               AND ($7 IS NULL OR team_id = $7) AND ($8 IS NULL OR agent_id = $8)
               AND ($9 IS NULL OR priority = $9)
             GROUP BY k ORDER BY k",
            sums.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&actor.tenant_id)
            .bind(grain_s)
            .bind(q.from.0)
            .bind(q.to.0)
            .bind(q.channel.as_deref())
            .bind(q.queue.as_deref())
            .bind(q.team.as_deref())
            .bind(q.agent.as_deref())
            .bind(q.priority.as_deref())
            .fetch_all(self.pool())
            .await?;
        let mut groups: Vec<(String, Measures)> = Vec::with_capacity(rows.len());
        let mut total = Measures::default();
        for r in rows {
            use sqlx::Row as _;
            let k: String = r.try_get(0)?;
            let mut meas = Measures::default();
            for i in 0..MEASURES.len() {
                let v: Option<i64> = r.try_get(i + 1)?;
                meas.0[i] = v.unwrap_or(0);
            }
            total.add(&meas);
            groups.push((k, meas));
        }
        let labels = self.labels(actor, q.group_by).await?;
        let all = total.get(m::CONTACTS);
        let rows = groups
            .into_iter()
            .map(|(k, meas)| {
                let key = match q.group_by {
                    GroupBy::Day | GroupBy::Hour => k
                        .parse::<i64>()
                        .map(|ms| Timestamp(ms).to_string())
                        .unwrap_or(k),
                    _ => k,
                };
                KpiRow {
                    label: labels.get(&key).cloned().unwrap_or_else(|| {
                        if key.is_empty() {
                            "(none)".into()
                        } else {
                            key.clone()
                        }
                    }),
                    metrics: metrics_of(&meas, all, q.sl_answered_only),
                    key,
                }
            })
            .collect();
        Ok(KpiReport {
            query: q.clone(),
            grain_s,
            rows,
            total: KpiRow {
                key: "total".into(),
                label: "Total".into(),
                metrics: metrics_of(&total, all, q.sl_answered_only),
            },
            definitions: METRICS.to_vec(),
        })
    }

    async fn labels(&self, actor: &Actor, by: GroupBy) -> Result<HashMap<String, String>> {
        let sql = match by {
            GroupBy::Queue => "SELECT id, name FROM queues WHERE tenant_id = $1",
            GroupBy::Agent => "SELECT id, name FROM users WHERE tenant_id = $1",
            GroupBy::Team => "SELECT id, name FROM teams WHERE tenant_id = $1",
            _ => return Ok(HashMap::new()),
        };
        let rows: Vec<(String, String)> = sqlx::query_as(sql)
            .bind(&actor.tenant_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// The facts behind a bar: those counted in `[from, to)` with the filters, oldest
    /// first (supervisors and admins).
    pub async fn analytics_drilldown(&self, actor: &Actor, q: &DrillQuery) -> Result<Vec<FactRow>> {
        if actor.role < Role::Supervisor && actor.user_id.is_some() {
            return Err(Error::Forbidden { what: "analytics" });
        }
        if q.to <= q.from {
            return Err(Error::invalid("to", "must be after from"));
        }
        let limit = i64::from(q.limit.unwrap_or(200).clamp(1, 1000));
        let rows: Vec<FactDbRow> = sqlx::query_as(
            "SELECT kind, at, channel, queue_id, agent_id, team_id, priority, ref_kind, ref_id, value, detail
             FROM analytics_facts
             WHERE tenant_id = $1 AND at >= $2 AND at < $3
               AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR channel = $5)
               AND ($6 IS NULL OR queue_id = $6) AND ($7 IS NULL OR agent_id = $7)
               AND ($8 IS NULL OR team_id = $8) AND ($9 IS NULL OR priority = $9)
             ORDER BY at, fact_key LIMIT $10",
        )
        .bind(&actor.tenant_id)
        .bind(q.from.0)
        .bind(q.to.0)
        .bind(q.kind.as_deref())
        .bind(q.channel.as_deref())
        .bind(q.queue.as_deref())
        .bind(q.agent.as_deref())
        .bind(q.team.as_deref())
        .bind(q.priority.as_deref())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(FactDbRow::into_row).collect())
    }

    /// Saves a report definition (supervisors and admins; audited).
    pub async fn save_report(&self, actor: &Actor, r: SavedReport) -> Result<SavedReport> {
        let Some(owner) = actor.user_id.clone() else {
            return Err(Error::Forbidden {
                what: "saving a report without a user",
            });
        };
        if actor.role < Role::Supervisor {
            return Err(Error::Forbidden { what: "analytics" });
        }
        let name = r.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(Error::invalid("name", "1 to 120 characters"));
        }
        for mid in &r.metrics {
            if !METRICS.iter().any(|d| d.id == mid) {
                return Err(Error::invalid("metrics", format!("unknown metric {mid}")));
            }
        }
        for k in r.filters.keys() {
            if !["channel", "queue", "team", "agent", "priority"].contains(&k.as_str()) {
                return Err(Error::invalid("filters", format!("unknown filter {k}")));
            }
        }
        let now = self.now();
        let saved = SavedReport {
            id: new_id(),
            owner_id: owner,
            name,
            created_at: now,
            ..r
        };
        let definition = serde_json::to_string(&Definition {
            metrics: saved.metrics.clone(),
            group_by: saved.group_by,
            period: saved.period.clone(),
            filters: saved.filters.clone(),
        })
        .map_err(|source| Error::Corrupt {
            what: "analytics_reports.definition",
            source,
        })?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO analytics_reports (id, tenant_id, owner_id, name, shared, definition, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&saved.id)
        .bind(&actor.tenant_id)
        .bind(&saved.owner_id)
        .bind(&saved.name)
        .bind(i64::from(saved.shared))
        .bind(definition)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "analytics.report_saved",
                entity_kind: "analytics_report",
                entity_id: &saved.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&saved),
            },
        )
        .await?;
        let mut ev = DomainEvent::new(&actor.tenant_id, "analytics.report_saved", &saved)
            .min_role(Role::Supervisor);
        if !saved.shared {
            ev.only_users = Some(vec![saved.owner_id.clone()]);
        }
        self.commit_audited(tx, audited, [ev]).await?;
        Ok(saved)
    }

    /// The reports the actor sees: their own and those shared, by name.
    pub async fn reports(&self, actor: &Actor) -> Result<Vec<SavedReport>> {
        if actor.role < Role::Supervisor && actor.user_id.is_some() {
            return Err(Error::Forbidden { what: "analytics" });
        }
        let rows: Vec<(String, String, String, i64, String, i64)> = sqlx::query_as(
            "SELECT id, owner_id, name, shared, definition, created_at FROM analytics_reports
             WHERE tenant_id = $1 AND (shared = 1 OR owner_id = $2) ORDER BY name, id",
        )
        .bind(&actor.tenant_id)
        .bind(actor.user_id.as_deref().unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, owner_id, name, shared, def, created)| {
                let d: Definition =
                    serde_json::from_str(&def).map_err(|source| Error::Corrupt {
                        what: "analytics_reports.definition",
                        source,
                    })?;
                Ok(SavedReport {
                    id,
                    owner_id,
                    name,
                    shared: shared != 0,
                    metrics: d.metrics,
                    group_by: d.group_by,
                    period: d.period,
                    filters: d.filters,
                    created_at: Timestamp(created),
                })
            })
            .collect()
    }

    /// Deletes a saved report (its author, or an admin; audited).
    pub async fn delete_report(&self, actor: &Actor, id: &str) -> Result<()> {
        let visible = self.reports(actor).await?;
        let Some(r) = visible.into_iter().find(|r| r.id == id) else {
            return Err(Error::NotFound {
                entity: "analytics_report",
            });
        };
        if actor.role < Role::Admin && actor.user_id.as_deref() != Some(r.owner_id.as_str()) {
            return Err(Error::Forbidden {
                what: "another user's report",
            });
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM analytics_reports WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "analytics.report_deleted",
                entity_kind: "analytics_report",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&r),
                after: None,
            },
        )
        .await?;
        let ev = DomainEvent::new(
            &actor.tenant_id,
            "analytics.report_deleted",
            &serde_json::json!({ "id": id }),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [ev]).await?;
        Ok(())
    }
}

/// The text side of the live wallboard: open conversations, those waiting for a
/// reply and the longest wait, unassigned ones, and those whose first-response SLA
/// (the tenant's policy for their priority) is breached or has less than a quarter
/// of its time left.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct LiveText {
    /// Open or pending conversations.
    pub open: i64,
    /// Of which no agent holds.
    pub unassigned: i64,
    /// Waiting for an agent's reply.
    pub waiting: i64,
    /// The longest of those waits, seconds.
    pub longest_wait_s: i64,
    /// Waiting ones at risk of breaching their first-response SLA (or breached).
    pub sla_at_risk: i64,
    /// Of which already breached.
    pub sla_breached: i64,
}

/// Capacity of a set of agents, per channel (items at once).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CapacityTotals {
    /// Calls.
    pub voice: i64,
    /// Chats.
    pub chat: i64,
    /// Async items (email, messages, tasks).
    pub r#async: i64,
}

impl Store {
    /// The text side of the live wallboard (supervisors and admins).
    pub async fn analytics_live_text(&self, actor: &Actor) -> Result<LiveText> {
        if actor.role < Role::Supervisor && actor.user_id.is_some() {
            return Err(Error::Forbidden { what: "analytics" });
        }
        let now = self.now().0;
        let rows: Vec<(Option<String>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT c.assignee_id, c.waiting_since,
                    COALESCE(p.first_response_minutes, 0)
             FROM conversations c
             LEFT JOIN sla_policies p ON p.tenant_id = c.tenant_id AND p.priority = c.priority
             WHERE c.tenant_id = $1 AND c.status IN ('open', 'pending')",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        let mut live = LiveText::default();
        for (assignee, waiting_since, target_min) in rows {
            live.open += 1;
            live.unassigned += i64::from(assignee.is_none());
            if let Some(since) = waiting_since {
                live.waiting += 1;
                let waited = (now - since).max(0);
                live.longest_wait_s = live.longest_wait_s.max(waited / 1000);
                if target_min > 0 {
                    let target = target_min * 60_000;
                    if waited >= target {
                        live.sla_breached += 1;
                        live.sla_at_risk += 1;
                    } else if 4 * (target - waited) < target {
                        live.sla_at_risk += 1;
                    }
                }
            }
        }
        Ok(live)
    }

    /// The summed capacity of `agents` (stored, or the defaults 1 call, 3 chats, 5
    /// async items).
    pub async fn capacity_totals(
        &self,
        actor: &Actor,
        agents: &[String],
    ) -> Result<CapacityTotals> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, voice_capacity, chat_capacity, async_capacity FROM agent_capacity
             WHERE tenant_id = $1",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        let stored: HashMap<String, (i64, i64, i64)> = rows
            .into_iter()
            .map(|(u, v, c, a)| (u, (v, c, a)))
            .collect();
        let mut t = CapacityTotals::default();
        for a in agents {
            let (v, c, x) = stored.get(a).copied().unwrap_or((1, 3, 5));
            t.voice += v;
            t.chat += c;
            t.r#async += x;
        }
        Ok(t)
    }
}

async fn team_of(
    tx: &mut Tx,
    cache: &mut HashMap<(String, String), String>,
    tenant: &str,
    agent: &str,
) -> Result<String> {
    let k = (tenant.to_owned(), agent.to_owned());
    if let Some(t) = cache.get(&k) {
        return Ok(t.clone());
    }
    let t: Option<(String,)> = sqlx::query_as(
        "SELECT team_id FROM team_members WHERE tenant_id = $1 AND user_id = $2 ORDER BY team_id LIMIT 1",
    )
    .bind(tenant)
    .bind(agent)
    .fetch_optional(&mut **tx)
    .await?;
    let t = t.map(|t| t.0).unwrap_or_default();
    cache.insert(k, t.clone());
    Ok(t)
}

async fn insert_fact(tx: &mut Tx, tenant: &str, f: &Fact) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO analytics_facts (tenant_id, fact_key, kind, at, channel, queue_id, agent_id,
            team_id, priority, intent, ref_kind, ref_id, value, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (tenant_id, fact_key) DO NOTHING",
    )
    .bind(tenant)
    .bind(&f.key)
    .bind(f.kind)
    .bind(f.at.0)
    .bind(&f.dims.channel)
    .bind(&f.dims.queue_id)
    .bind(&f.dims.agent_id)
    .bind(&f.dims.team_id)
    .bind(&f.dims.priority)
    .bind(&f.dims.intent)
    .bind(f.ref_kind)
    .bind(&f.ref_id)
    .bind(f.value)
    .bind(&f.detail)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

async fn upsert_rollup(tx: &mut Tx, tenant: &str, k: &RollupKey, meas: &Measures) -> Result<()> {
    let n = MEASURES.len();
    let marks: Vec<String> = (0..n).map(|i| format!("${}", i + 10)).collect();
    let sets: Vec<String> = MEASURES
        .iter()
        .map(|c| format!("{c} = analytics_rollups.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO analytics_rollups (tenant_id, grain_s, bucket, channel, queue_id, agent_id,
            team_id, priority, intent, {})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {})
         ON CONFLICT (tenant_id, grain_s, bucket, channel, queue_id, agent_id, team_id, priority, intent)
         DO UPDATE SET {}",
        measure_cols(),
        marks.join(", "),
        sets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(k.grain_s)
        .bind(k.bucket)
        .bind(&k.dims.channel)
        .bind(&k.dims.queue_id)
        .bind(&k.dims.agent_id)
        .bind(&k.dims.team_id)
        .bind(&k.dims.priority)
        .bind(&k.dims.intent);
    for v in meas.0 {
        q = q.bind(v);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct FactDbRow {
    kind: String,
    at: i64,
    channel: String,
    queue_id: String,
    agent_id: String,
    team_id: String,
    priority: String,
    ref_kind: String,
    ref_id: String,
    value: Option<i64>,
    detail: String,
}

impl FactDbRow {
    fn into_row(self) -> FactRow {
        FactRow {
            kind: self.kind,
            at: Timestamp(self.at),
            channel: self.channel,
            queue_id: self.queue_id,
            agent_id: self.agent_id,
            team_id: self.team_id,
            priority: self.priority,
            ref_kind: self.ref_kind,
            ref_id: self.ref_id,
            value: self.value,
            detail: self.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_median_is_the_edge_of_its_bin() {
        let mut t = Measures::default();
        t.0[m::RESOLVED] = 3;
        t.0[m::RES_B0] = 1;
        t.0[m::RES_B0 + 3] = 2;
        assert_eq!(median_bin(&t), Some(3600.0));
        t.0[m::RES_B0] = 2;
        t.0[m::RES_B0 + 3] = 2;
        t.0[m::RESOLVED] = 4;
        assert_eq!(median_bin(&t), Some(300.0));
    }
}
