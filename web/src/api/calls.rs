//! Live calls through [`crate::CallControl`]: the list of calls in progress with their
//! legs and modes, agent controls on a call the agent is on (hold, mute, blind and warm
//! transfer, conference, hang-up, disposition) and supervisor controls (listen,
//! whisper, barge, take over: the supervisor's registered phone is rung and joined to
//! the call in that mode), and the PCI pause of recording and transcription. Every
//! control used is written to the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Role;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Authed, Json};
use crate::{AppState, CallCommand, CallControlError, CallTarget, LiveCall, MonitorMode};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls, click_to_call))
        .routes(routes!(get_call))
        .routes(routes!(call_action))
}

/// Who a transfer, consultation or conference reaches: exactly one of the fields.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetBody {
    /// A user of the tenant (their extension rings; they become the call's agent).
    user_id: Option<String>,
    /// An extension.
    extension: Option<String>,
    /// A phone number (E.164, or national in the tenant's dial-policy country), dialled
    /// through the tenant's trunk with its caller ID.
    number: Option<String>,
}

/// A control on a live call. Agent actions need the agent on the call (or a
/// supervisor); `listen`, `whisper`, `barge` and `take_over` need a supervisor.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum CallAction {
    /// The caller hears music on hold, the agent silence.
    Hold,
    /// Back to talking.
    Unhold,
    /// Nobody hears the agent.
    Mute,
    /// The agent is heard again.
    Unmute,
    /// Ends the call.
    Hangup,
    /// Blind transfer: the agent leaves now, the caller hears ringback until the
    /// target answers (back to the IVR flow when nobody does).
    Transfer {
        /// Where to.
        target: TargetBody,
    },
    /// Warm transfer, step one: the caller is held, the target rung and, on answer,
    /// talks with the agent.
    Consult {
        /// Where to.
        target: TargetBody,
    },
    /// Warm transfer, step two: the agent leaves, the caller talks with the target.
    CompleteTransfer,
    /// Ends the consultation; the caller is back with the agent.
    CancelConsult,
    /// Conference: the target joins the call.
    AddParty {
        /// Who.
        target: TargetBody,
    },
    /// The call's disposition code (stored with the call on the customer's timeline).
    Disposition {
        /// 1 to 64 characters.
        code: String,
    },
    /// Supervisor: hear both parties, heard by nobody (your phone rings first).
    Listen,
    /// Supervisor: heard by the agent only.
    Whisper,
    /// Supervisor: heard by both.
    Barge,
    /// Supervisor (already in the call): replace the agent, who is hung up.
    TakeOver,
    /// PCI pause (agent on the call or supervisor): every leg that records or is
    /// transcribed pauses (silence in the recording, no transcript), legs added later
    /// too, until `resume_recording`. Idempotent; the pauses are listed on the call's
    /// timeline entry (`controls.recording_pauses`).
    PauseRecording,
    /// Ends a PCI pause. Idempotent.
    ResumeRecording,
}

impl CallAction {
    fn audit_name(&self) -> &'static str {
        match self {
            CallAction::Hold => "call.hold",
            CallAction::Unhold => "call.unhold",
            CallAction::Mute => "call.mute",
            CallAction::Unmute => "call.unmute",
            CallAction::Hangup => "call.hangup",
            CallAction::Transfer { .. } => "call.transfer",
            CallAction::Consult { .. } => "call.consult",
            CallAction::CompleteTransfer => "call.transfer_complete",
            CallAction::CancelConsult => "call.consult_cancel",
            CallAction::AddParty { .. } => "call.add_party",
            CallAction::Disposition { .. } => "call.disposition",
            CallAction::Listen => "call.listen",
            CallAction::Whisper => "call.whisper",
            CallAction::Barge => "call.barge",
            CallAction::TakeOver => "call.take_over",
            CallAction::PauseRecording => "call.recording_pause",
            CallAction::ResumeRecording => "call.recording_resume",
        }
    }

    fn supervisor_only(&self) -> bool {
        matches!(
            self,
            CallAction::Listen | CallAction::Whisper | CallAction::Barge | CallAction::TakeOver
        )
    }
}

/// A click-to-call request.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCall {
    /// The customer's number (E.164, or national in the tenant's dial-policy country).
    number: String,
}

/// Click-to-call: Parley rings your registered phone; when you answer it dials
/// `number` through the tenant's trunk with the trunk's caller ID and bridges you. The
/// call lands on the customer's timeline (found by number, created if unknown) like an
/// inbound call. Audited as `call.click_to_call`.
#[utoipa::path(post, path = "/calls", tag = "calls", security(("bearer" = [])), request_body = NewCall,
    responses((status = 201, body = LiveCall), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn click_to_call(
    State(s): State<AppState>,
    a: Authed,
    Json(body): Json<NewCall>,
) -> ApiResult<(StatusCode, axum::Json<LiveCall>)> {
    let calls = s
        .calls
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "conflict", "no SIP stack runs"))?;
    // Read with the tenant's country (national formats), like every dialled number.
    let number = s
        .store
        .dial_policy_cached(&a.actor.tenant_id)
        .await?
        .normalize(&body.number)
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "number: not a phone number",
            )
            .with_field("number")
        })?;
    let acc = s.store.sip_account(&a.actor, &a.user.id).await?;
    let extension = acc.extension.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "you have no extension to be called on",
        )
    })?;
    let tenant = a.actor.tenant_id.clone();
    let id = calls
        .originate(&tenant, &a.user.id, &extension, &number)
        .await
        .map_err(control_error)?;
    s.store
        .audit_call_control(
            &a.actor,
            &id,
            "call.click_to_call",
            serde_json::json!({ "call_id": id, "number": number }),
        )
        .await?;
    let call = calls
        .get(&tenant, &id)
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok((StatusCode::CREATED, axum::Json(call)))
}

fn is_on(call: &LiveCall, user_id: &str) -> bool {
    call.agent_user_id.as_deref() == Some(user_id)
        || call
            .legs
            .iter()
            .any(|l| l.user_id.as_deref() == Some(user_id))
}

/// The tenant's live calls with their legs, durations and modes. Supervisors see every
/// call, agents the calls they are on.
#[utoipa::path(get, path = "/calls", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = Vec<LiveCall>)))]
async fn list_calls(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<Vec<LiveCall>>> {
    let Some(calls) = &s.calls else {
        return Ok(axum::Json(Vec::new()));
    };
    let all = calls.list(&a.actor.tenant_id);
    let sup = a.require(Role::Supervisor).is_ok();
    Ok(axum::Json(
        all.into_iter()
            .filter(|c| sup || is_on(c, &a.user.id))
            .collect(),
    ))
}

/// One live call (supervisors, or an agent on it).
#[utoipa::path(get, path = "/calls/{id}", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = LiveCall), (status = 404, body = ErrorBody)))]
async fn get_call(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LiveCall>> {
    let call = s
        .calls
        .as_ref()
        .and_then(|c| c.get(&a.actor.tenant_id, &id))
        .filter(|c| a.require(Role::Supervisor).is_ok() || is_on(c, &a.user.id))
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok(axum::Json(call))
}

async fn resolve(s: &AppState, a: &Authed, t: TargetBody) -> ApiResult<CallTarget> {
    match (t.user_id, t.extension, t.number) {
        (Some(user_id), None, None) => {
            let acc = s.store.sip_account(&a.actor, &user_id).await?;
            let extension = acc.extension.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "the user has no extension",
                )
                .with_field("target.user_id")
            })?;
            Ok(CallTarget::Extension {
                extension,
                user_id: Some(user_id),
            })
        }
        (None, Some(extension), None) => {
            let user_id = s
                .store
                .sip_users(&a.actor)
                .await?
                .into_iter()
                .find(|(_, e)| *e == extension)
                .map(|(u, _)| u);
            Ok(CallTarget::Extension { extension, user_id })
        }
        // Read with the tenant's country, as click-to-call and every dialled number
        // (`020 7946 0000` in a GB tenant is +442079460000); the dial policy itself
        // is applied by the SIP stack when the target is dialled.
        (None, None, Some(number)) => Ok(CallTarget::Number(
            s.store
                .dial_policy_cached(&a.actor.tenant_id)
                .await?
                .normalize(&number)
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        "target.number: not a phone number",
                    )
                    .with_field("target.number")
                })?,
        )),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give exactly one of user_id, extension, number",
        )
        .with_field("target")),
    }
}

fn target_label(t: &CallTarget) -> serde_json::Value {
    match t {
        CallTarget::Extension { extension, user_id } => {
            serde_json::json!({ "extension": extension, "user_id": user_id })
        }
        CallTarget::Number(n) => serde_json::json!({ "number": n }),
    }
}

/// Uses a control on a live call; answers with the call as it is then. The use is
/// audited (`call.hold`, `call.transfer`, `call.listen`, …, entity `call`).
#[utoipa::path(post, path = "/calls/{id}/actions", tag = "calls", security(("bearer" = [])),
    request_body = CallAction,
    responses((status = 200, body = LiveCall), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn call_action(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(action): Json<CallAction>,
) -> ApiResult<axum::Json<LiveCall>> {
    let calls = s.calls.clone().ok_or_else(|| ApiError::not_found("call"))?;
    let tenant = a.actor.tenant_id.clone();
    let call = calls
        .get(&tenant, &id)
        .ok_or_else(|| ApiError::not_found("call"))?;
    let sup = a.require(Role::Supervisor).is_ok();
    if action.supervisor_only() {
        a.require(Role::Supervisor)?;
    } else if !sup && call.agent_user_id.as_deref() != Some(a.user.id.as_str()) {
        // Agents control only the calls they are on (others' calls do not exist for them).
        return Err(ApiError::not_found("call"));
    }
    let audit_name = action.audit_name();
    let mut details = serde_json::json!({ "action": audit_name, "call_id": id });
    let cmd = match action {
        CallAction::Hold => CallCommand::Hold,
        CallAction::Unhold => CallCommand::Unhold,
        CallAction::Mute => CallCommand::Mute,
        CallAction::Unmute => CallCommand::Unmute,
        CallAction::Hangup => CallCommand::Hangup,
        CallAction::CompleteTransfer => CallCommand::CompleteTransfer,
        CallAction::CancelConsult => CallCommand::CancelConsult,
        CallAction::Transfer { target } => {
            let t = resolve(&s, &a, target).await?;
            details["target"] = target_label(&t);
            CallCommand::BlindTransfer(t)
        }
        CallAction::Consult { target } => {
            let t = resolve(&s, &a, target).await?;
            details["target"] = target_label(&t);
            CallCommand::Consult(t)
        }
        CallAction::AddParty { target } => {
            let t = resolve(&s, &a, target).await?;
            details["target"] = target_label(&t);
            CallCommand::AddParty(t)
        }
        CallAction::Disposition { code } => {
            let code = code.trim().to_owned();
            if code.is_empty() || code.chars().count() > 64 {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "a disposition code has 1 to 64 characters",
                )
                .with_field("code"));
            }
            details["code"] = serde_json::Value::String(code.clone());
            CallCommand::Disposition { code }
        }
        CallAction::Listen => monitor(&s, &a, MonitorMode::Listen).await?,
        CallAction::Whisper => monitor(&s, &a, MonitorMode::Whisper).await?,
        CallAction::Barge => monitor(&s, &a, MonitorMode::Barge).await?,
        CallAction::TakeOver => CallCommand::TakeOver {
            user_id: a.user.id.clone(),
        },
        CallAction::PauseRecording => CallCommand::PauseRecording,
        CallAction::ResumeRecording => CallCommand::ResumeRecording,
    };
    calls
        .command(&tenant, &id, cmd)
        .await
        .map_err(control_error)?;
    s.store
        .audit_call_control(&a.actor, &id, audit_name, details)
        .await?;
    let now = calls.get(&tenant, &id).unwrap_or(call);
    Ok(axum::Json(now))
}

/// A refused control as the API answers it: 404, 409 with the call's reason, or 403
/// `dial_policy` naming the rule that refused the number.
fn control_error(e: CallControlError) -> ApiError {
    match e {
        CallControlError::NotFound => ApiError::not_found("call"),
        CallControlError::Refused(reason) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", reason)
        }
        CallControlError::DialPolicy(r) => ApiError::new(
            StatusCode::FORBIDDEN,
            "dial_policy",
            format!("dial policy: {}: {r}", r.rule()),
        ),
    }
}

/// A supervisor joins (or switches mode) through the phone on their own extension.
async fn monitor(s: &AppState, a: &Authed, mode: MonitorMode) -> ApiResult<CallCommand> {
    let acc = s.store.sip_account(&a.actor, &a.user.id).await?;
    let extension = acc.extension.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "you have no extension to be called on",
        )
    })?;
    Ok(CallCommand::Supervise {
        user_id: a.user.id.clone(),
        extension,
        mode,
    })
}
