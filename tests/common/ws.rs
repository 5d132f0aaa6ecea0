//! Parley's WebSockets (`/api/v1/events`, `/api/v1/softphone`) as a test client: the
//! next frame of a type (with a deadline), or every frame collected in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::parley::Parley;
use super::wait;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path` (e.g. `/api/v1/events`) as the user of `token`.
pub(crate) async fn connect(p: &Parley, path: &str, token: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(p.ws_url(path, token))
        .await
        .unwrap_or_else(|e| panic!("WebSocket {path}: {e}"));
    ws
}

/// The next JSON frame, whatever its type (30 s at most).
pub(crate) async fn next_msg(ws: &mut Ws) -> Value {
    let fut = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).unwrap();
            }
        }
        panic!("socket closed before the next frame");
    };
    wait::within("the next WebSocket frame", Duration::from_secs(30), fut).await
}

/// The next frame of type `ty` (30 s at most), skipping others; an `error` frame fails.
pub(crate) async fn next_of(ws: &mut Ws, ty: &str) -> Value {
    let fut = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == ty {
                    return v;
                }
                assert_ne!(v["type"], "error", "{v}");
            }
        }
        panic!("socket closed before {ty}");
    };
    wait::within(&format!("a {ty} frame"), Duration::from_secs(30), fut).await
}

/// The next frame of type `ty` (30 s at most), skipping all others (errors included).
pub(crate) async fn next_event(ws: &mut Ws, ty: &str) -> Value {
    let fut = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == ty {
                    return v;
                }
            }
        }
        panic!("event stream closed before {ty}");
    };
    wait::within(&format!("a {ty} event"), Duration::from_secs(30), fut).await
}

/// Sends `v` as a text frame.
pub(crate) async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Every JSON frame of the events WebSocket (as `token`'s user), collected by a
/// background thread; returns once the socket is open.
pub(crate) fn events(p: &Parley, token: &str) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = p.ws_url("/api/v1/events", token);
    let out = Arc::clone(&seen);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        super::http::block_on(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            ready_tx.send(()).unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if let Ok(t) = m.into_text()
                    && let Ok(v) = serde_json::from_str::<Value>(&t)
                {
                    out.lock().unwrap().push(v);
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the events WebSocket opened within 10 s");
    seen
}

/// The collected events of type `kind`.
pub(crate) fn of_type(seen: &Arc<Mutex<Vec<Value>>>, kind: &str) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}
