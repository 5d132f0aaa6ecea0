//! Analytics (issue #22; definitions in docs/metrics.md): KPI reports from the rollups
//! (JSON or CSV), the drill-down behind a bar, the live wallboard snapshot (also pushed
//! over the events WebSocket as `analytics.live` to supervisors), and the report
//! builder's saved reports. Supervisors and admins.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_cases::analytics::{
    CapacityTotals, DrillQuery, FactRow, GroupBy, KpiQuery, KpiReport, KpiRow, LiveText,
    SavedReport,
};
use parley_cases::routing::QueueMetrics;
use parley_cases::{Actor, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kpis))
        .routes(routes!(live))
        .routes(routes!(drilldown))
        .routes(routes!(list_reports, save_report))
        .routes(routes!(delete_report))
}

const DAY_MS: i64 = 86_400_000;

/// The KPI query (`from`/`to` default to the last 7 UTC days, today included).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KpiParams {
    /// From (RFC 3339, inclusive).
    #[param(value_type = Option<String>)]
    from: Option<Timestamp>,
    /// To (RFC 3339, exclusive).
    #[param(value_type = Option<String>)]
    to: Option<Timestamp>,
    /// `channel`, `queue` (default), `team`, `agent`, `intent`, `priority`, `day`, `hour`.
    #[param(value_type = Option<String>)]
    group_by: Option<GroupBy>,
    /// One channel (`voice`, `web_chat`, `email`, …).
    channel: Option<String>,
    /// One queue (id).
    queue: Option<String>,
    /// One team (id).
    team: Option<String>,
    /// One agent (user id).
    agent: Option<String>,
    /// One priority (`P0`..`P3`).
    priority: Option<String>,
    /// Service level over answered calls only (default: abandons count, short ones
    /// excluded).
    sl_answered_only: Option<bool>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn range(s: &AppState, from: Option<Timestamp>, to: Option<Timestamp>) -> (Timestamp, Timestamp) {
    let now = s.store.now().0;
    let to = to.unwrap_or(Timestamp(now - now.rem_euclid(DAY_MS) + DAY_MS));
    let from = from.unwrap_or(Timestamp(to.0 - 7 * DAY_MS));
    (from, to)
}

/// KPIs from the rollups (supervisor): rows of named metrics, grouped, with each
/// metric's definition (id, formula; docs/metrics.md). `format=csv` gives the same as
/// CSV (`key,label,<metric ids>`, a row per group, then `total`).
#[utoipa::path(get, path = "/analytics/kpis", tag = "analytics", security(("bearer" = [])), params(KpiParams),
    responses((status = 200, body = KpiReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn kpis(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(p): Query<KpiParams>,
) -> ApiResult<Response> {
    let (from, to) = range(&s, p.from, p.to);
    let q = KpiQuery {
        from,
        to,
        group_by: p.group_by.unwrap_or_default(),
        channel: p.channel,
        queue: p.queue,
        team: p.team,
        agent: p.agent,
        priority: p.priority,
        sl_answered_only: p.sl_answered_only.unwrap_or(false),
    };
    let report = s.store.analytics_kpis(&a.actor, &q).await?;
    match p.format.as_deref() {
        None | Some("json") => Ok(axum::Json(report).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"parley-kpis.csv\"",
                ),
            ],
            report.to_csv(),
        )
            .into_response()),
        Some(_) => Err(ApiError::from(parley_cases::Error::Invalid {
            field: "format".into(),
            reason: "json or csv".into(),
        })),
    }
}

/// Agents by what they are doing.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct AgentStates {
    available: u32,
    ringing: u32,
    on_call: u32,
    wrap_up: u32,
    away: u32,
    offline: u32,
}

/// The live wallboard over every channel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct LiveSnapshot {
    /// When taken.
    at: Timestamp,
    /// Contacts waiting in every queue and channel (calls, chats, emails, callbacks).
    waiting: u32,
    /// The longest wait in any queue, seconds.
    longest_wait_s: u64,
    /// Per queue, with per-channel figures (from the router).
    queues: Vec<QueueMetrics>,
    /// Routable agents by state.
    agents: AgentStates,
    /// Capacity of the agents not offline, per channel.
    capacity: CapacityTotals,
    /// Conversations: open, unassigned, waiting, longest wait, SLA at risk.
    conversations: LiveText,
    /// Today's KPIs so far (UTC day, from the rollups).
    today: KpiRow,
}

pub(crate) async fn live_snapshot(s: &AppState, actor: &Actor) -> ApiResult<LiveSnapshot> {
    let queues = s
        .acd
        .as_ref()
        .map(|acd| acd.queue_metrics(&actor.tenant_id))
        .unwrap_or_default();
    let presence = s
        .acd
        .as_ref()
        .map(|acd| acd.agent_presence(&actor.tenant_id))
        .unwrap_or_default();
    let mut agents = AgentStates::default();
    let mut working = Vec::new();
    for (user, p) in &presence {
        let slot = match p.name() {
            "available" => &mut agents.available,
            "ringing" => &mut agents.ringing,
            "on_call" => &mut agents.on_call,
            "wrap_up" => &mut agents.wrap_up,
            "away" => &mut agents.away,
            _ => &mut agents.offline,
        };
        *slot += 1;
        if p.name() != "offline" {
            working.push(user.clone());
        }
    }
    let now = s.store.now();
    let day = Timestamp(now.0 - now.0.rem_euclid(DAY_MS));
    let today = s
        .store
        .analytics_kpis(
            actor,
            &KpiQuery {
                from: day,
                to: Timestamp(day.0 + DAY_MS),
                group_by: GroupBy::Channel,
                ..KpiQuery::default()
            },
        )
        .await?
        .total;
    Ok(LiveSnapshot {
        at: now,
        waiting: queues.iter().map(|q| q.waiting + q.callbacks).sum(),
        longest_wait_s: queues.iter().map(|q| q.longest_wait_s).max().unwrap_or(0),
        queues,
        agents,
        capacity: s.store.capacity_totals(actor, &working).await?,
        conversations: s.store.analytics_live_text(actor).await?,
        today,
    })
}

/// The live wallboard over all channels (supervisor): waiting contacts and the
/// longest wait, queues with per-channel figures, agents by state and capacity,
/// conversations with SLA at risk, today's KPIs. The events WebSocket opened with
/// `?live=1` pushes the same object to supervisors every 2 s as
/// `{"type": "analytics.live", "data": …}`.
#[utoipa::path(get, path = "/analytics/live", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = LiveSnapshot), (status = 403, body = ErrorBody)))]
async fn live(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<LiveSnapshot>> {
    Ok(axum::Json(live_snapshot(&s, &a.actor).await?))
}

/// Filters of a drill-down.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DrillParams {
    /// From (RFC 3339, inclusive).
    #[param(value_type = String)]
    from: Timestamp,
    /// To (RFC 3339, exclusive).
    #[param(value_type = String)]
    to: Timestamp,
    /// `call`, `conversation`, `first_response`, `resolution`, `reopen`, `csat`, `nps`,
    /// `callback_kept`.
    kind: Option<String>,
    /// One channel.
    channel: Option<String>,
    /// One queue (id; empty: none).
    queue: Option<String>,
    /// One agent (user id; empty: none).
    agent: Option<String>,
    /// One team (id).
    team: Option<String>,
    /// One priority.
    priority: Option<String>,
    /// At most (1..=1000, default 200).
    limit: Option<u32>,
}

/// The calls and conversations behind a bar (supervisor): the facts counted in
/// `[from, to)` with the filters, oldest first, each naming what it is about
/// (`ref_kind`, `ref_id`).
#[utoipa::path(get, path = "/analytics/drilldown", tag = "analytics", security(("bearer" = [])), params(DrillParams),
    responses((status = 200, body = Vec<FactRow>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn drilldown(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Query(p): Query<DrillParams>,
) -> ApiResult<axum::Json<Vec<FactRow>>> {
    let q = DrillQuery {
        from: p.from,
        to: p.to,
        kind: p.kind,
        channel: p.channel,
        queue: p.queue,
        agent: p.agent,
        team: p.team,
        priority: p.priority,
        limit: p.limit,
    };
    Ok(axum::Json(s.store.analytics_drilldown(&a.actor, &q).await?))
}

/// The saved reports the user sees: their own and those shared (supervisor).
#[utoipa::path(get, path = "/analytics/reports", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = Vec<SavedReport>), (status = 403, body = ErrorBody)))]
async fn list_reports(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<SavedReport>>> {
    Ok(axum::Json(s.store.reports(&a.actor).await?))
}

/// Saves a report of the report builder: metrics, dimension, period, filters; `shared`
/// shows it to the tenant's supervisors (supervisor; audited).
#[utoipa::path(post, path = "/analytics/reports", tag = "analytics", security(("bearer" = [])), request_body = SavedReport,
    responses((status = 201, body = SavedReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_report(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Json(body): Json<SavedReport>,
) -> ApiResult<(StatusCode, axum::Json<SavedReport>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.save_report(&a.actor, body).await?),
    ))
}

/// Deletes a saved report (its author or an admin; audited).
#[utoipa::path(delete, path = "/analytics/reports/{id}", tag = "analytics", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_report(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_report(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
