//! Login, logout, the current user.

use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::StatusCode;
use parley_cases::Timestamp;
use parley_cases::directory::User;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Staff};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Login request.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginRequest {
    /// Tenant name, e.g. `demo`.
    tenant: String,
    /// Email.
    email: String,
    /// Password.
    password: String,
}

/// A bearer token.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// Expiry.
    expires_at: Timestamp,
    /// Who logged in.
    user: User,
}

/// Exchanges credentials for a bearer token. Rate-limited per account and per client
/// address; failures do not say which part was wrong.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let account = format!("acct:{}:{}", req.tenant, req.email.trim().to_lowercase());
    s.login_attempt(account).map_err(ApiError::rate_limited)?;
    if let Some(axum::Extension(ConnectInfo(addr))) = peer {
        // A client address gets a few times the per-account budget (NAT, shared offices).
        for i in 0..3 {
            if s.login_attempt(format!("ip:{}:{i}", addr.ip())).is_ok() {
                break;
            } else if i == 2 {
                return Err(ApiError::rate_limited(60));
            }
        }
    }
    let user = s
        .store
        .authenticate(&req.tenant, &req.email, &req.password)
        .await?;
    let ttl = s.config.token_ttl.as_secs();
    let t = s.store.issue_token(&user, ttl).await?;
    Ok(axum::Json(LoginResponse {
        token: t.token,
        expires_at: t.expires_at,
        user,
    }))
}

/// Revokes the token used for this request.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(s): State<AppState>, Staff(a): Staff) -> ApiResult<StatusCode> {
    s.store.revoke_token(&a.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user behind the token.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(Staff(a): Staff) -> axum::Json<User> {
    axum::Json(a.user)
}
