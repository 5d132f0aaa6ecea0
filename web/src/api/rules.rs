//! Automation rules (issue #23): the tenant's rules (admins), a dry run over the last
//! events of the stream, and each rule's execution log. The rules themselves are
//! `parley-rules` data; the runtime that applies them is the binary's
//! (`src/automation.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::automation::{AutomationRule, NewAutomationRule, RuleRun};
use parley_rules::{Calendars, Event, RuleSet, evaluate};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Json, Query};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(rule_log))
        .routes(routes!(dry_run))
}

/// The tenant's automation rules, in evaluation order (admin).
#[utoipa::path(get, path = "/rules", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = Vec<AutomationRule>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_rules(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<Vec<AutomationRule>>> {
    Ok(axum::Json(s.store.list_automation_rules(&a.actor).await?))
}

/// Adds a rule (admin). A rule that does not read is a 422 naming the field
/// (`actions[1].priority`).
#[utoipa::path(post, path = "/rules", tag = "automation", security(("bearer" = [])), request_body = NewAutomationRule,
    responses((status = 201, body = AutomationRule), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_rule(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewAutomationRule>,
) -> ApiResult<(StatusCode, axum::Json<AutomationRule>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_automation_rule(&a.actor, body).await?),
    ))
}

/// One rule (admin).
#[utoipa::path(get, path = "/rules/{id}", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = AutomationRule), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AutomationRule>> {
    Ok(axum::Json(s.store.automation_rule(&a.actor, &id).await?))
}

/// Replaces a rule (admin).
#[utoipa::path(put, path = "/rules/{id}", tag = "automation", security(("bearer" = [])), request_body = NewAutomationRule,
    responses((status = 200, body = AutomationRule), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_rule(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<NewAutomationRule>,
) -> ApiResult<axum::Json<AutomationRule>> {
    Ok(axum::Json(
        s.store.update_automation_rule(&a.actor, &id, body).await?,
    ))
}

/// Deletes a rule (admin); its execution log stays.
#[utoipa::path(delete, path = "/rules/{id}", tag = "automation", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_automation_rule(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many log entries or events.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LimitParams {
    /// 1..=500 (default 100).
    limit: Option<u32>,
}

/// A rule's execution log, newest first (admin).
#[utoipa::path(get, path = "/rules/{id}/log", tag = "automation", security(("bearer" = [])), params(LimitParams),
    responses((status = 200, body = Vec<RuleRun>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rule_log(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Query(q): Query<LimitParams>,
) -> ApiResult<axum::Json<Vec<RuleRun>>> {
    // 404 for a rule that is not the tenant's.
    s.store.automation_rule(&a.actor, &id).await?;
    Ok(axum::Json(
        s.store
            .automation_rule_runs(&a.actor, &id, q.limit.unwrap_or(100))
            .await?,
    ))
}

/// What to dry-run.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DryRunRequest {
    /// How many of the tenant's last events, 1..=1000 (default 100).
    #[serde(default)]
    limit: Option<u32>,
    /// A draft rule to try instead of the stored rules (not saved).
    #[serde(default)]
    rule: Option<NewAutomationRule>,
}

/// A rule that would have fired.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DryRunFired {
    /// The rule (`draft` for a draft rule).
    rule_id: String,
    /// Its name.
    rule_name: String,
    /// The actions it would have applied.
    #[schema(value_type = Vec<Object>)]
    actions: serde_json::Value,
}

/// One event of the dry run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DryRunEvent {
    /// Event id.
    event_id: String,
    /// Kind.
    kind: String,
    /// Rules that would have fired, in order.
    fired: Vec<DryRunFired>,
    /// Rules loop protection would have held back (`[rule_id, reason]`).
    #[schema(value_type = Vec<Object>)]
    blocked: serde_json::Value,
}

/// The dry run's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DryRunResult {
    /// How many events were evaluated.
    evaluated: usize,
    /// The events on which something would have fired, oldest first.
    events: Vec<DryRunEvent>,
}

/// Which rules would have fired on the tenant's last N events (admin): the stored
/// rules, or a draft given in the request. Nothing is applied or logged.
#[utoipa::path(post, path = "/rules/dry-run", tag = "automation", security(("bearer" = [])), request_body = DryRunRequest,
    responses((status = 200, body = DryRunResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dry_run(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<DryRunRequest>,
) -> ApiResult<axum::Json<DryRunResult>> {
    let tenant = a.actor.tenant_id.clone();
    let (rules, names) = match &body.rule {
        Some(draft) => {
            let r = draft.to_rule("draft", &tenant)?;
            let names = vec![("draft".to_owned(), r.name.clone())];
            (vec![r], names)
        }
        None => {
            let stored = s.store.list_automation_rules(&a.actor).await?;
            let names = stored
                .iter()
                .map(|r| (r.id.clone(), r.name.clone()))
                .collect();
            let rules = stored
                .iter()
                .filter_map(|r| r.to_rule(&tenant).ok())
                .collect();
            (rules, names)
        }
    };
    let set = RuleSet::new(rules);
    let cals = s.store.calendars(&a.actor).await?;
    let env = Calendars::from_documents(
        cals.iter()
            .map(|c| (c.name.as_str(), c.definition.as_str())),
    );
    let events = s
        .store
        .recent_stream_events(&a.actor, body.limit.unwrap_or(100))
        .await?;
    let now = s.store.now().0;
    let mut out = Vec::new();
    for e in &events {
        let facts = s.store.automation_facts(e).await?;
        let ev = Event {
            id: &e.id,
            tenant_id: &tenant,
            kind: &e.kind,
            at: e.created_at,
            facts: &facts,
            caused_by: &e.caused_by,
        };
        let r = evaluate(now, &set, &ev, &env);
        if r.fired.is_empty() && r.blocked.is_empty() {
            continue;
        }
        let name = |id: &str| {
            names
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        out.push(DryRunEvent {
            event_id: e.id.clone(),
            kind: e.kind.clone(),
            fired: r
                .fired
                .iter()
                .map(|f| DryRunFired {
                    rule_name: name(&f.rule_id),
                    rule_id: f.rule_id.clone(),
                    actions: serde_json::to_value(&f.actions).unwrap_or_default(),
                })
                .collect(),
            blocked: serde_json::to_value(&r.blocked).unwrap_or_default(),
        });
    }
    Ok(axum::Json(DryRunResult {
        evaluated: events.len(),
        events: out,
    }))
}
