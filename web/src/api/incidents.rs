//! Incidents (issue #21): problem records, their links to cases and conversations,
//! internal notes and public updates (fanned out to every affected customer through
//! the delivery outbox), the status machine, recurrence suggestions, the Slack swarm
//! and the tenant's Slack connection.
//!
//! Who may do what: every signed-in role, engineers included, reads incidents, links
//! items, writes notes and moves the status; public updates need an agent or above
//! (engineers never message customers); suggestions are for agents and above (they
//! point at customers' conversations); the Slack connection is the admins'.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Role;
use parley_cases::incidents::slack::{
    DEFAULT_API_BASE_URL, SlackIntegration, SlackIntegrationInfo,
};
use parley_cases::incidents::{
    Incident, IncidentLink, IncidentStatus, IncidentView, NewIncident, NewLinks, NewUpdate,
    PostedUpdate, Suggestions, recurrence,
};
use parley_cases::sla::CaseStatus;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Query, Staff};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, create_incident))
        .routes(routes!(suggestions))
        .routes(routes!(get_incident))
        .routes(routes!(link_items))
        .routes(routes!(post_update))
        .routes(routes!(set_status))
        .routes(routes!(settle_cases))
        .routes(routes!(swarm))
        .routes(routes!(conversation_incidents))
        .routes(routes!(put_slack))
}

/// The id of what was created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Created {
    /// Id.
    id: String,
}

/// The incident list's filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncidentQuery {
    /// `investigating`, `identified`, `monitoring`, `resolved` or `post_mortem`.
    #[param(value_type = Option<String>)]
    status: Option<IncidentStatus>,
}

/// The tenant's incidents, newest first (at most 500).
#[utoipa::path(get, path = "/incidents", tag = "incidents", security(("bearer" = [])),
    params(IncidentQuery),
    responses((status = 200, body = Vec<Incident>), (status = 401, body = ErrorBody)))]
async fn list_incidents(
    State(s): State<AppState>,
    Staff(a): Staff,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<axum::Json<Vec<Incident>>> {
    Ok(axum::Json(
        s.store.list_incidents(&a.actor, q.status).await?,
    ))
}

/// Opens an incident (status `investigating`). A P0 or P1 incident swarms in Slack when
/// the tenant has connected it.
#[utoipa::path(post, path = "/incidents", tag = "incidents", security(("bearer" = [])), request_body = NewIncident,
    responses((status = 201, body = Created), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_incident(
    State(s): State<AppState>,
    Staff(a): Staff,
    Json(body): Json<NewIncident>,
) -> ApiResult<(StatusCode, axum::Json<Created>)> {
    let inc = s.store.create_incident(&a.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id: inc.id })))
}

/// An incident with its linked items, timeline (notes, public updates, status
/// changes), cadence and the delivery results of its public updates per customer.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    responses((status = 200, body = IncidentView), (status = 404, body = ErrorBody)))]
async fn get_incident(
    State(s): State<AppState>,
    Staff(a): Staff,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<IncidentView>> {
    Ok(axum::Json(s.store.incident_view(&a.actor, &id).await?))
}

/// Links cases and conversations (in bulk); linked cases go on hold. Returns every link.
#[utoipa::path(post, path = "/incidents/{id}/links", tag = "incidents", security(("bearer" = [])), request_body = NewLinks,
    responses((status = 200, body = Vec<IncidentLink>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link_items(
    State(s): State<AppState>,
    Staff(a): Staff,
    Path(id): Path<String>,
    Json(body): Json<NewLinks>,
) -> ApiResult<axum::Json<Vec<IncidentLink>>> {
    Ok(axum::Json(
        s.store.link_incident(&a.actor, &id, body).await?,
    ))
}

/// Adds an internal note (`public: false`) or a public update (`public: true`: one
/// message per affected customer on the conversation they last used, through the
/// delivery outbox; agents and above). Returns the entry and the deliveries per customer.
#[utoipa::path(post, path = "/incidents/{id}/updates", tag = "incidents", security(("bearer" = [])), request_body = NewUpdate,
    responses((status = 201, body = PostedUpdate), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn post_update(
    State(s): State<AppState>,
    Staff(a): Staff,
    Path(id): Path<String>,
    Json(body): Json<NewUpdate>,
) -> ApiResult<(StatusCode, axum::Json<PostedUpdate>)> {
    if body.public {
        a.require(Role::Agent)?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.post_incident_update(&a.actor, &id, body).await?),
    ))
}

/// A status change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    /// `investigating`, `identified`, `monitoring`, `resolved` or `post_mortem`.
    status: IncidentStatus,
}

/// Moves the incident through its status machine (409 for a move it does not allow).
#[utoipa::path(post, path = "/incidents/{id}/status", tag = "incidents", security(("bearer" = [])), request_body = StatusBody,
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_status(
    State(s): State<AppState>,
    Staff(a): Staff,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> ApiResult<axum::Json<Incident>> {
    Ok(axum::Json(
        s.store
            .set_incident_status(&a.actor, &id, body.status)
            .await?,
    ))
}

/// What to do with the linked cases of a resolved incident.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettleBody {
    /// `resolve` (resolve them all) or `follow_up` (reopen them for an agent).
    action: String,
}

/// The changed cases.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Settled {
    /// Case ids changed.
    case_ids: Vec<String>,
}

/// After resolving: resolves or reopens (for a follow-up) every linked case (agents
/// and above; 409 while the incident is open).
#[utoipa::path(post, path = "/incidents/{id}/cases", tag = "incidents", security(("bearer" = [])), request_body = SettleBody,
    responses((status = 200, body = Settled), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn settle_cases(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<SettleBody>,
) -> ApiResult<axum::Json<Settled>> {
    let to = match body.action.as_str() {
        "resolve" => CaseStatus::Resolved,
        "follow_up" => CaseStatus::Open,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "action must be resolve or follow_up",
            )
            .with_field("action"));
        }
    };
    Ok(axum::Json(Settled {
        case_ids: s.store.settle_incident_cases(&a.actor, &id, to).await?,
    }))
}

/// Whether a swarm was queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Swarmed {
    /// False when Slack is not connected or the channel exists (or is on its way).
    queued: bool,
}

/// "Swarm": opens the incident's Slack channel (any severity).
#[utoipa::path(post, path = "/incidents/{id}/swarm", tag = "incidents", security(("bearer" = [])),
    responses((status = 200, body = Swarmed), (status = 404, body = ErrorBody)))]
async fn swarm(
    State(s): State<AppState>,
    Staff(a): Staff,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Swarmed>> {
    Ok(axum::Json(Swarmed {
        queued: s.store.swarm_incident(&a.actor, &id).await?,
    }))
}

/// Recurrence detection: bursts of similar inbound messages across customers (with
/// the conversations to link), repeat contacts, resolved incidents whose symptoms are
/// back. Agents and above.
#[utoipa::path(get, path = "/incidents/suggestions", tag = "incidents", security(("bearer" = [])),
    responses((status = 200, body = Suggestions), (status = 403, body = ErrorBody)))]
async fn suggestions(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Suggestions>> {
    Ok(axum::Json(
        s.store
            .incident_suggestions(&a.actor, recurrence::Params::default())
            .await?,
    ))
}

/// The open incidents a conversation's customer is affected by (the inbox's banner).
#[utoipa::path(get, path = "/conversations/{id}/incidents", tag = "incidents", security(("bearer" = [])),
    responses((status = 200, body = Vec<Incident>), (status = 404, body = ErrorBody)))]
async fn conversation_incidents(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Incident>>> {
    Ok(axum::Json(
        s.store.incidents_for_conversation(&a.actor, &id).await?,
    ))
}

/// A tenant's Slack workspace connection (secrets are write-only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlackBody {
    /// The bot token (`xoxb-…`).
    bot_token: String,
    /// The app's signing secret (verifies Events API requests).
    signing_secret: String,
    /// Where Web API calls go (default `https://slack.com`).
    #[serde(default)]
    api_base_url: Option<String>,
    /// Emails of the on-call engineers invited to every swarm channel.
    #[serde(default)]
    invitees: Vec<String>,
}

/// Connects the tenant's Slack workspace (admin). Events go to
/// `POST /hooks/v1/slack/{tenant}`.
#[utoipa::path(put, path = "/integrations/slack", tag = "incidents", security(("bearer" = [])), request_body = SlackBody,
    responses((status = 200, body = SlackIntegrationInfo), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_slack(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<SlackBody>,
) -> ApiResult<axum::Json<SlackIntegrationInfo>> {
    for (field, v) in [
        ("bot_token", &body.bot_token),
        ("signing_secret", &body.signing_secret),
    ] {
        if v.trim().is_empty() || v.len() > 512 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: 1 to 512 characters"),
            )
            .with_field(field));
        }
    }
    let integration = SlackIntegration {
        bot_token_sealed: crate::hooks::seal_secret(&s, body.bot_token.trim())?,
        signing_secret_sealed: crate::hooks::seal_secret(&s, body.signing_secret.trim())?,
        api_base_url: body
            .api_base_url
            .unwrap_or_else(|| DEFAULT_API_BASE_URL.to_owned()),
        invitees: body.invitees,
    };
    Ok(axum::Json(
        s.store.set_slack_integration(&a.actor, integration).await?,
    ))
}
