//! The one HTTP error type: `{"error": {"code", "message", "field"?}}` with the right
//! status, never leaking internals (database errors are logged, not returned).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_cases::Error as CoreError;
use serde::Serialize;

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    details: Option<serde_json::Value>,
    retry_after_secs: Option<u64>,
}

/// The JSON body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine- and human-readable error details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid`, `forbidden`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The offending field (JSON path), when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Structured details, e.g. the validator's `errors` of an invalid IVR flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
            retry_after_secs: None,
        }
    }

    /// The error as it appears in a body (per-item results of batch operations).
    pub(crate) fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
            field: self.field.clone(),
            details: self.details.clone(),
        }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Attaches structured details (shown as `error.details`).
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// 401: missing, malformed, expired or revoked credentials.
    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(needed: parley_cases::Role) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {needed} role"),
        )
    }

    /// 429 with Retry-After.
    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many attempts; slow down",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// 400 for a malformed request (syntax).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 500 that hides its cause (logged here).
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The field at fault, if one is named.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        match e {
            CoreError::Invalid { field, reason } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {reason}"),
            )
            .with_field(field),
            CoreError::NotFound { entity } => ApiError::not_found(entity),
            CoreError::Conflict {
                entity,
                field,
                detail,
            } => {
                let msg =
                    detail.unwrap_or_else(|| format!("{entity} with this {field} already exists"));
                ApiError::new(StatusCode::CONFLICT, "conflict", msg).with_field(field)
            }
            CoreError::InvalidTransition { entity, from, to } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("cannot move {entity} from {from} to {to}"),
            )
            .with_field("status"),
            CoreError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "wrong tenant, email or password",
            ),
            CoreError::Forbidden { what } => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("your role may not access this {what}"),
            ),
            CoreError::TooLarge { what, limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("{what} is larger than the limit of {limit} bytes"),
            ),
            CoreError::UnsupportedType { content_type } => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                format!("files of type {content_type} are not accepted"),
            ),
            e @ CoreError::ReplyWindowClosed { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reply_window_closed",
                e.to_string(),
            )
            .with_field("text"),
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
                details: self.details,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<parley_knowledge::Error> for ApiError {
    fn from(e: parley_knowledge::Error) -> ApiError {
        match e {
            parley_knowledge::Error::Store(e) => e.into(),
            other => ApiError::internal(&other),
        }
    }
}
