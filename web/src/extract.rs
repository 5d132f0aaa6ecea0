//! Request extractors: JSON bodies whose errors name the field, authenticated users with
//! role guards, query strings with clear errors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use parley_cases::directory::User;
use parley_cases::{Actor, Role};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body. Syntax errors are 400, shape errors 422 with the JSON path of the
/// offending field (`identities[0].kind`), a wrong content type 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "body_rejected", e.body_text()))?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON with the failing path reported.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let field = if path == "." { String::new() } else { path };
            let msg = if field.is_empty() {
                inner.to_string()
            } else {
                format!("{field}: {inner}")
            };
            let err = ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg);
            if field.is_empty() {
                err
            } else {
                err.with_field(field)
            }
        } else {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        }
    })
}

/// Query-string parameters; errors name the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!("query parameter {field}: {}", e.into_inner()),
                )
                .with_field(field)
            })
    }
}

/// The authenticated user behind the request's bearer token.
#[derive(Debug, Clone)]
pub struct Authed {
    /// Tenant-scoped actor for store calls.
    pub actor: Actor,
    /// The user.
    pub user: User,
    /// The bearer token (for logout).
    pub token: String,
}

impl Authed {
    /// Fails with 403 unless the user's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<(), ApiError> {
        if self.actor.role >= min {
            Ok(())
        } else {
            Err(ApiError::forbidden(min))
        }
    }
}

/// The bearer token of a request: `Authorization: Bearer …`.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Any authenticated user, engineers included (`Authed` refuses them): the routes an
/// engineer may use (their own account, incidents) take this.
#[derive(Debug, Clone)]
pub struct Staff(pub Authed);

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(Staff)
    }
}

/// An authenticated agent, supervisor or admin. Engineers (issue #21) are refused with
/// 403 here: they see incidents and their technical side only, so every route that is
/// not written for them stays closed to them.
impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let a = authenticate(parts, state).await?;
        a.require(Role::Agent)?;
        Ok(a)
    }
}

async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Authed, ApiError> {
    let token = bearer(parts)
        .ok_or_else(ApiError::unauthenticated)?
        .to_owned();
    let (actor, user) = state
        .store
        .actor_for_token(&token)
        .await
        .map_err(|e| match e {
            parley_cases::Error::Unauthenticated => ApiError::unauthenticated(),
            other => ApiError::from(other),
        })?;
    Ok(Authed { actor, user, token })
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Authed);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
                let a = Authed::from_request_parts(parts, state).await?;
                a.require($role)?;
                Ok($name(a))
            }
        }
    };
}

role_extractor!(
    /// An authenticated supervisor or admin.
    Supervisor,
    Role::Supervisor
);
role_extractor!(
    /// An authenticated admin.
    Admin,
    Role::Admin
);
