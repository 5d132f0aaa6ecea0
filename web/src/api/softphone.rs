//! `GET /api/v1/softphone`: the browser softphone's signalling WebSocket.
//!
//! Authenticate with `Authorization: Bearer …` or `?access_token=…` (any role). Frames
//! are JSON text, tagged by `type`: the browser sends [`SoftphoneCommand`]s (`dial`,
//! `answer`, `hangup`; each carrying the browser's complete SDP offer where media is
//! set up), the server sends [`SoftphoneEvent`]s (`ready`, `incoming`, `dialing`,
//! `ringing`, `sdp`, `answered`, `hungup`, `dtmf`, `error`). Without a softphone
//! service (no media engine) the route answers 503 after authentication. The token is
//! re-checked every 30 s; once expired or revoked the socket closes with code 4001 and
//! the session's calls end.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer;
use crate::softphone::{SoftphoneCommand, SoftphoneEvent};

pub(crate) async fn softphone(
    State(s): State<AppState>,
    parts: Parts,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = bearer(&parts)
        .map(str::to_owned)
        .or_else(|| {
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(ApiError::unauthenticated)?;
    let (actor, _user) = s
        .store
        .actor_for_token(&token)
        .await
        .map_err(|_| ApiError::unauthenticated())?;
    let Some(phone) = s.softphone.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "softphone_unavailable",
            "this server has no media engine for the browser softphone",
        ));
    };
    let ws = ws.map_err(|e| ApiError::new(e.status(), "websocket_required", e.body_text()))?;
    let slot = s
        .websocket_slot(actor.user_id.as_deref().unwrap_or_default())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_websockets",
                "too many open WebSockets for this user",
            )
        })?;
    let ws = ws
        .max_message_size(crate::MAX_WEBSOCKET_MESSAGE)
        .max_frame_size(crate::MAX_WEBSOCKET_MESSAGE);
    let store = s.store.clone();
    Ok(ws.on_upgrade(move |socket: WebSocket| async move {
        let _slot = slot;
        let session = phone.open(&actor);
        let (mut sink, mut stream) = socket.split();
        let (commands, mut events) = (session.commands, session.events);
        let mut recheck = tokio::time::interval(Duration::from_secs(30));
        recheck.tick().await;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    let Ok(text) = serde_json::to_string(&ev) else { continue };
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        match serde_json::from_str::<SoftphoneCommand>(t.as_str()) {
                            Ok(cmd) => {
                                if commands.send(cmd).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                let ev = SoftphoneEvent::Error { message: format!("bad message: {e}") };
                                if let Ok(text) = serde_json::to_string(&ev)
                                    && sink.send(Message::Text(text.into())).await.is_err()
                                {
                                    break;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = recheck.tick() => {
                    if store.actor_for_token(&token).await.is_err() {
                        let frame = CloseFrame { code: 4001, reason: "token expired or revoked".into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
            }
        }
    }))
}
