//! Telephony: users' SIP accounts, trunks, phone numbers, and a window on the running
//! SIP stack (per-call SIP traces, counters) through [`crate::SipInspector`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Role;
use parley_cases::telephony::{
    NewPhoneNumber, PhoneNumber, SipAccount, SipAccountPatch, Trunk, TrunkInput,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Supervisor};
use crate::{AppState, SipBan, SipCounter, SipRegistration, SipTraceEntry};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_sip_account, set_sip_account))
        .routes(routes!(list_trunks, create_trunk))
        .routes(routes!(get_trunk, update_trunk, delete_trunk))
        .routes(routes!(list_numbers, create_number))
        .routes(routes!(delete_number))
        .routes(routes!(sip_trace))
        .routes(routes!(sip_metrics))
        .routes(routes!(sip_registrations))
        .routes(routes!(list_sip_bans))
        .routes(routes!(lift_sip_ban))
}

/// A user's extension and whether a SIP password is set (supervisors see anyone, agents
/// themselves).
#[utoipa::path(get, path = "/users/{id}/sip", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = SipAccount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_sip_account(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SipAccount>> {
    if a.user.id != id {
        a.require(Role::Supervisor)?;
    }
    Ok(axum::Json(s.store.sip_account(&a.actor, &id).await?))
}

/// Sets a user's extension and/or SIP password. Admins may set both for anyone; a user
/// may change their own SIP password (not their extension), giving their web password
/// again as `current_password` (403 without it). The password is kept only as digest
/// HA1 values; phones registered with the old one are unregistered.
#[utoipa::path(put, path = "/users/{id}/sip", tag = "telephony", security(("bearer" = [])), request_body = SipAccountPatch,
    responses((status = 200, body = SipAccount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_sip_account(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<SipAccountPatch>,
) -> ApiResult<axum::Json<SipAccount>> {
    let is_admin = a.require(Role::Admin).is_ok();
    // The SRTP policy is the admin's (a user must not turn encryption off for their
    // own phones).
    if !is_admin && (a.user.id != id || body.extension.is_some() || body.srtp.is_some()) {
        return Err(ApiError::forbidden(Role::Admin));
    }
    // Changing one's own SIP password needs the web password again (admins too, for
    // their own): a bearer token alone must not be enough to take over a phone line.
    if a.user.id == id && body.password.is_some() {
        s.login_attempt(format!("sip-password:{id}"))
            .map_err(ApiError::rate_limited)?;
        let confirmed = match body.current_password.as_deref() {
            Some(p) => s.store.confirm_password(&a.actor, p).await?,
            None => false,
        };
        if !confirmed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "reauthentication_required",
                "current_password: your web password is required to change your own SIP password",
            )
            .with_field("current_password"));
        }
    }
    Ok(axum::Json(
        s.store.set_sip_account(&a.actor, &id, body).await?,
    ))
}

/// The tenant's SIP trunks (admin).
#[utoipa::path(get, path = "/trunks", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<Trunk>), (status = 403, body = ErrorBody)))]
async fn list_trunks(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<Vec<Trunk>>> {
    Ok(axum::Json(s.store.list_trunks(&a.actor).await?))
}

/// Creates a trunk (admin). Inbound calls are accepted from `inbound_addresses` and/or
/// with digest credentials; outbound calls go to `outbound_target` with `caller_id`.
#[utoipa::path(post, path = "/trunks", tag = "telephony", security(("bearer" = [])), request_body = TrunkInput,
    responses((status = 201, body = Trunk), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_trunk(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<TrunkInput>,
) -> ApiResult<(StatusCode, axum::Json<Trunk>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_trunk(&a.actor, body).await?),
    ))
}

/// One trunk (admin).
#[utoipa::path(get, path = "/trunks/{id}", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Trunk), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_trunk(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Trunk>> {
    Ok(axum::Json(s.store.trunk(&a.actor, &id).await?))
}

/// Replaces a trunk's settings (admin); without `inbound_password` the stored digest is
/// kept as long as `inbound_username` is unchanged.
#[utoipa::path(put, path = "/trunks/{id}", tag = "telephony", security(("bearer" = [])), request_body = TrunkInput,
    responses((status = 200, body = Trunk), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_trunk(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<TrunkInput>,
) -> ApiResult<axum::Json<Trunk>> {
    Ok(axum::Json(s.store.update_trunk(&a.actor, &id, body).await?))
}

/// Deletes a trunk and its numbers (admin).
#[utoipa::path(delete, path = "/trunks/{id}", tag = "telephony", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_trunk(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_trunk(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's phone numbers (admin).
#[utoipa::path(get, path = "/numbers", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<PhoneNumber>), (status = 403, body = ErrorBody)))]
async fn list_numbers(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<Vec<PhoneNumber>>> {
    Ok(axum::Json(s.store.list_numbers(&a.actor).await?))
}

/// Adds an E.164 number to a trunk (admin).
#[utoipa::path(post, path = "/numbers", tag = "telephony", security(("bearer" = [])), request_body = NewPhoneNumber,
    responses((status = 201, body = PhoneNumber), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewPhoneNumber>,
) -> ApiResult<(StatusCode, axum::Json<PhoneNumber>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_number(&a.actor, body).await?),
    ))
}

/// Removes a phone number (admin).
#[utoipa::path(delete, path = "/numbers/{id}", tag = "telephony", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_number(&a.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SIP ladder of a call (every message in and out on all its legs, with times),
/// by the SIP Call-ID of any of its legs (supervisor). Kept in memory for recent calls.
#[utoipa::path(get, path = "/sip/calls/{call_id}/trace", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<SipTraceEntry>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn sip_trace(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(call_id): Path<String>,
) -> ApiResult<axum::Json<Vec<SipTraceEntry>>> {
    s.sip
        .as_ref()
        .and_then(|sip| sip.call_trace(&a.actor.tenant_id, &call_id))
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("call"))
}

/// Counters of the SIP stack since start (supervisor).
#[utoipa::path(get, path = "/sip/metrics", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<SipCounter>), (status = 403, body = ErrorBody)))]
async fn sip_metrics(
    State(s): State<AppState>,
    Supervisor(_a): Supervisor,
) -> ApiResult<axum::Json<Vec<SipCounter>>> {
    Ok(axum::Json(
        s.sip.as_ref().map(|sip| sip.counters()).unwrap_or_default(),
    ))
}

/// The phones and browsers registered to the tenant's extensions now: extension,
/// contact, source address, transport, user agent, seconds to expiry (supervisor).
#[utoipa::path(get, path = "/sip/registrations", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<SipRegistration>), (status = 403, body = ErrorBody)))]
async fn sip_registrations(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<SipRegistration>>> {
    Ok(axum::Json(
        s.sip
            .as_ref()
            .map(|sip| sip.registrations(&a.actor.tenant_id))
            .unwrap_or_default(),
    ))
}

/// Source addresses banned for failing SIP digest authentication repeatedly against
/// your tenant (admin). The ban list is server-wide — one SIP port serves every tenant,
/// so a ban protects all of them — but an admin sees only the bans of sources whose
/// failed attempts named a user (or the SIP domain) of their tenant (see SECURITY.md,
/// "SIP brute force and connection limits").
#[utoipa::path(get, path = "/sip/bans", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = Vec<SipBan>), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_sip_bans(
    State(s): State<AppState>,
    Admin(a): Admin,
) -> ApiResult<axum::Json<Vec<SipBan>>> {
    let Some(bans) = s.sip_bans.as_ref() else {
        return Ok(axum::Json(Vec::new()));
    };
    let all = bans.list().await.ok_or_else(sip_stopped)?;
    let tenant = &a.actor.tenant_id;
    Ok(axum::Json(
        all.into_iter()
            .filter_map(|b| {
                let last_user = b.tenants.get(tenant)?.clone();
                Some(SipBan {
                    address: b.address.to_string(),
                    expires_at: b.expires_at,
                    failures: b.failures,
                    last_user,
                })
            })
            .collect(),
    ))
}

/// Lifts the ban of a source address (admin, audited as `sip.ban_lift`). Only a ban
/// that concerns your tenant alone: 404 when the address is not banned or its source
/// did not attack your tenant, 409 when it also attacked other tenants (it then lapses
/// by itself).
#[utoipa::path(delete, path = "/sip/bans/{addr}", tag = "telephony", security(("bearer" = [])),
    params(("addr" = String, Path, description = "The banned IP address")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lift_sip_ban(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(addr): Path<String>,
) -> ApiResult<StatusCode> {
    let address: std::net::IpAddr = addr.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "addr: not an IP address",
        )
        .with_field("addr")
    })?;
    let Some(bans) = s.sip_bans.as_ref() else {
        return Err(ApiError::not_found("ban"));
    };
    let ban = bans
        .list()
        .await
        .ok_or_else(sip_stopped)?
        .into_iter()
        .find(|b| b.address == address && b.tenants.contains_key(&a.actor.tenant_id))
        .ok_or_else(|| ApiError::not_found("ban"))?;
    if ban.tenants.len() > 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "this source also attacked other tenants: its ban lapses by itself",
        ));
    }
    let lifted = bans.lift(address).await.ok_or_else(sip_stopped)?;
    if !lifted {
        return Err(ApiError::not_found("ban"));
    }
    s.store
        .audit_admin_action(
            &a.actor,
            "sip.ban_lift",
            "sip_ban",
            &address.to_string(),
            serde_json::json!({ "address": address.to_string() }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn sip_stopped() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the SIP stack is not running",
    )
}
