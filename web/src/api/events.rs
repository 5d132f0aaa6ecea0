//! `GET /api/v1/events`: a WebSocket pushing the tenant's timeline and case changes.
//!
//! Authenticate with `Authorization: Bearer …` or, from browsers (which cannot set
//! headers on a WebSocket), `?access_token=…`. Each event is one JSON text frame:
//! `{"type": "timeline.appended", "customer_id": …, "case_id": …, "data": {…}}`. A
//! subscriber that falls behind gets `{"type": "lagged", "missed": N}` and should
//! reload what it shows. The token is re-checked every 30 s; once expired or revoked the
//! socket closes with code 4001. Supervisors and admins who connect with `?live=1` also
//! get the live wallboard every 2 s: `{"type": "analytics.live", "data": …}` (the
//! object `GET /analytics/live` returns).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use parley_cases::{Actor, DomainEvent, Role, Store};
use tokio::sync::broadcast;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer;

pub(crate) async fn events(
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
    let (actor, _) = s
        .store
        .actor_for_token(&token)
        .await
        .map_err(|_| ApiError::unauthenticated())?;
    // Authentication comes first: an anonymous caller learns nothing, not even that this
    // route wants a WebSocket.
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
    let rx = s.store.subscribe();
    let store = s.store.clone();
    // Supervisors who ask (`?live=1`) get the live wallboard pushed (no polling).
    let wants_live = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "live" && v == "1");
    let live = (wants_live && actor.role >= Role::Supervisor).then(|| Live {
        state: s.clone(),
        every: LIVE_EVERY,
    });
    Ok(ws.on_upgrade(move |socket: WebSocket| async move {
        let _slot = slot;
        let (sink, stream) = socket.split();
        pump(
            sink,
            stream,
            rx,
            actor,
            TokenCheck {
                store,
                token,
                every: Duration::from_secs(30),
            },
            live,
        )
        .await;
    }))
}

/// How often the live wallboard is pushed to a supervisor's socket.
const LIVE_EVERY: Duration = Duration::from_secs(2);

/// The live wallboard feed of a supervisor's socket (`analytics.live`).
pub(crate) struct Live {
    state: AppState,
    every: Duration,
}

pub(crate) struct TokenCheck {
    store: Store,
    token: String,
    every: Duration,
}

/// Forwards the events `actor` may see until the client leaves or the token dies.
/// Generic over the socket halves so it can be tested without a server.
pub(crate) async fn pump<Tx, Rx, E>(
    mut sink: Tx,
    mut stream: Rx,
    mut events: broadcast::Receiver<DomainEvent>,
    actor: Actor,
    check: TokenCheck,
    live: Option<Live>,
) where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let mut recheck = tokio::time::interval(check.every);
    recheck.tick().await;
    let mut live_tick = tokio::time::interval(live.as_ref().map_or(LIVE_EVERY, |l| l.every));
    live_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = live_tick.tick(), if live.is_some() => {
                let Some(l) = &live else { continue };
                let Ok(snap) = crate::api::analytics::live_snapshot(&l.state, &actor).await else { continue };
                let text = serde_json::json!({"type": "analytics.live", "data": snap}).to_string();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            ev = events.recv() => {
                let text = match ev {
                    Ok(e) if e.visible_to_user(&actor) => match serde_json::to_string(&e) {
                        Ok(t) => t,
                        Err(_) => continue,
                    },
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => format!("{{\"type\":\"lagged\",\"missed\":{n}}}"),
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Pings are answered by the WebSocket layer; clients send nothing else.
                Some(Ok(_)) => {}
            },
            _ = recheck.tick() => {
                if check.store.actor_for_token(&check.token).await.is_err() {
                    let frame = CloseFrame { code: 4001, reason: "token expired or revoked".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
    }
}
