//! Recordings and voicemail: the audio of an interaction's attachment (decrypted as it
//! is streamed, HTTP Range for seeking players), and the tenant's retention.
//!
//! Who may listen: supervisors and admins any recording of their tenant; agents those
//! of calls they answered or placed and of customers with a case assigned to them
//! ([`parley_cases::Store::recording_for_download`]). Each play (a request from byte
//! 0) is audited.

use std::io::{Read as _, Seek as _, SeekFrom};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use parley_cases::recordings::RecordingRetention;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(attachment))
        .routes(routes!(get_retention, put_retention))
}

/// Bytes read per piece of a streamed response.
const PIECE: u64 = 64 * 1024;

/// A single byte range of a file of `len` bytes: `Ok(None)` without a usable Range
/// header (the whole file), `Err(())` when it cannot be satisfied (416).
pub(crate) fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    // Several ranges: RFC 9110 allows answering with the whole representation.
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// The audio of an interaction's attachment (a call recording or voicemail), decrypted
/// as it is streamed. `Range: bytes=…` answers 206 with that part (players seek).
#[utoipa::path(get, path = "/interactions/{id}/attachments/{index}", tag = "recordings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interaction id"), ("index" = usize, Path, description = "Position in the interaction's attachments, from 0")),
    responses(
        (status = 200, description = "The whole file", content_type = "audio/wav"),
        (status = 206, description = "The requested range"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, description = "The range is outside the file")))]
async fn attachment(
    State(s): State<AppState>,
    a: Authed,
    Path((id, index)): Path<(String, usize)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rec = s.store.recording_for_download(&a.actor, &id, index).await?;
    let keys = s.config.recording_keys.clone();
    let path = rec.path.clone();
    let opened = tokio::task::spawn_blocking(move || match &keys {
        Some(ring) => parley_vault::open(&path, ring),
        None => {
            let f = std::fs::File::open(&path)?;
            let n = f.metadata()?.len();
            Ok(parley_vault::VaultFile::Plain(f, n))
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let mut file = match opened {
        Ok(f) => f,
        Err(parley_vault::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("attachment"));
        }
        Err(e) => {
            tracing::error!(file = %rec.path.display(), error = %e, "a stored recording cannot be opened");
            return Err(ApiError::internal(&e));
        }
    };
    let len = file.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match parse_range(range, len) {
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Err(()) => {
            let mut res = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
    };
    if start == 0 {
        s.store
            .audit_recording_download(&a.actor, &id, &rec)
            .await?;
    }
    let count = if len == 0 { 0 } else { end - start + 1 };
    // One blocking reader per response, a few pieces ahead of the client.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = count;
        while left > 0 {
            let mut buf = vec![0u8; PIECE.min(left) as usize];
            if let Err(e) = file.read_exact(&mut buf) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            left -= buf.len() as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // the client went away
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut res = Response::new(Body::from_stream(stream));
    *res.status_mut() = status;
    let h = res.headers_mut();
    let ct = HeaderValue::from_str(&rec.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    // Attachment names are ours (`voicemail.wav`, `call-recording.wav`); anything
    // else is left out rather than escaped.
    if rec
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", rec.name))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The tenant's recording retention (supervisors).
#[utoipa::path(get, path = "/recordings/retention", tag = "recordings", security(("bearer" = [])),
    responses((status = 200, body = RecordingRetention), (status = 403, body = ErrorBody)))]
async fn get_retention(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<RecordingRetention>> {
    Ok(axum::Json(s.store.recording_retention(&a.actor).await?))
}

/// Sets the tenant's recording retention (admins; audited): recordings and voicemail
/// older than `days` are deleted (checked hourly); `null` keeps them.
#[utoipa::path(put, path = "/recordings/retention", tag = "recordings", security(("bearer" = [])),
    request_body = RecordingRetention,
    responses((status = 200, body = RecordingRetention), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_retention(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<RecordingRetention>,
) -> ApiResult<axum::Json<RecordingRetention>> {
    Ok(axum::Json(
        s.store.set_recording_retention(&a.actor, body).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-"), 100), Ok(Some((0, 99))));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), Ok(Some((10, 19))));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Ok(Some((0, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=20-10"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=x-"), 100), Err(()));
    }
}
