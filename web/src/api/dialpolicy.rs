//! The tenant's outbound dial policy (toll fraud): `GET` for supervisors and admins,
//! `PUT` for admins (validated, audited as `dial_policy.update`). The decision itself is
//! `parley_cases::dialpolicy`; every path that dials out consults it, and a refused dial
//! answers `403 {"error":{"code":"dial_policy", …}}` here (see `docs/dial-policy.md`).

use axum::extract::State;
use parley_cases::dialpolicy::DialPolicy;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Json, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy))
}

/// The tenant's dial policy (the default until an admin sets one).
#[utoipa::path(get, path = "/dial-policy", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = DialPolicy), (status = 403, body = ErrorBody)))]
async fn get_policy(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<DialPolicy>> {
    Ok(axum::Json(s.store.dial_policy(&a.actor).await?))
}

/// Replaces the tenant's dial policy (admin; fields left out take their defaults).
#[utoipa::path(put, path = "/dial-policy", tag = "telephony", security(("bearer" = [])),
    request_body = DialPolicy,
    responses((status = 200, body = DialPolicy), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_policy(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<DialPolicy>,
) -> ApiResult<axum::Json<DialPolicy>> {
    Ok(axum::Json(s.store.set_dial_policy(&a.actor, body).await?))
}
