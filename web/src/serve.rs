//! The HTTP server loop, with the limits a public address needs: connections per
//! source address and in all (surplus ones are closed as soon as they are accepted),
//! a deadline for each request's header (hyper's `header_read_timeout`, which
//! `axum::serve` leaves without a timer, so a client trickling a header one byte at a
//! time could hold a connection forever), a deadline for each request's body (a body
//! still arriving when it passes is answered `408` and the connection closed: hyper has
//! no body timeout, so a client trickling a body held its connection as long as it
//! liked), and an idle timeout (a connection on which nothing was read or written for
//! that long is closed once its request in flight, if any, is answered — or dropped
//! after a second idle period, when the client does not read its answer). WebSocket
//! upgrades are served as before (once upgraded, the socket is the WebSocket's).
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let limits = parley_web::serve::HttpLimits::default();
//! parley_web::serve::serve(listener, app, limits, std::future::pending()).await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse as _;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Limits of the HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once from one IP address.
    pub per_source: usize,
    /// Connections open at once in all.
    pub total: usize,
    /// Time a client has to send a request's complete header.
    pub header_timeout: Duration,
    /// Time a client has to send a request's complete body, counted from its header
    /// (a body still arriving then: `408`, connection closed).
    pub body_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed (a
    /// request in flight is answered first).
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            per_source: 64,
            total: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// When a connection last read or wrote a byte (ms since `base`), shared between its
/// socket wrapper and the task that closes it when idle.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A socket that records its activity.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request body's deadline passed before the body had arrived.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within its deadline")]
struct BodyTimeout;

/// A request body with a deadline: past it, reading fails and `expired` is set (the
/// connection then answers `408` and closes).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(f) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn request_timeout() -> axum::response::Response {
    let mut r = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({"error": {
            "code": "request_timeout",
            "message": "the request body did not arrive in time"
        }})),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

type Counts = Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>;

/// An admitted connection's place; dropping it frees the place. The counts are
/// behind a `std` mutex held for one map operation, never across an `.await`.
struct Permit {
    ip: IpAddr,
    counts: Counts,
}

fn admit(counts: &Counts, limits: &HttpLimits, ip: IpAddr) -> Option<Permit> {
    let mut g = counts.lock().unwrap_or_else(|e| e.into_inner());
    let (per, total) = &mut *g;
    let n = per.get(&ip).copied().unwrap_or(0);
    if *total >= limits.total || n >= limits.per_source {
        return None;
    }
    per.insert(ip, n + 1);
    *total += 1;
    Some(Permit {
        ip,
        counts: counts.clone(),
    })
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (per, total) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then lets
/// the connections in flight finish (the caller bounds how long it waits). Handlers
/// get the peer address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let counts: Counts = Arc::new(Mutex::new((HashMap::new(), 0)));
    // Shutdown: connections are told through `stop`; each holds a clone of `alive`, so
    // `drained` ends when the last one has finished.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (alive, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    // HTTP/1.1 only, as `axum::serve` was built here (no HTTP/2 feature).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = admit(&counts, &limits, peer.ip()) else {
            tracing::debug!(%peer, "HTTP connection refused: connection cap reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let expired = Arc::new(AtomicBool::new(false));
            let req = req.map(|inner| {
                axum::body::Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    expired: expired.clone(),
                })
            });
            let app = app.clone();
            async move {
                let res = app.oneshot(req).await;
                // Whatever the handler made of the failed read (400, 413…), the client
                // is told it was too slow, and the connection is closed.
                if expired.load(Ordering::Relaxed) {
                    tracing::debug!(%peer, "HTTP request body timed out");
                    return Ok(request_timeout());
                }
                res
            }
        });
        let activity = Activity::new();
        let io = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        let (mut stop, alive) = (stop_rx.clone(), alive.clone());
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            tokio::pin!(conn);
            let r = loop {
                let quiet_until = activity.last() + idle;
                tokio::select! {
                    r = conn.as_mut() => break r,
                    _ = stop.changed() => {
                        // Finish the request in flight, then close.
                        conn.as_mut().graceful_shutdown();
                        break conn.await;
                    }
                    () = tokio::time::sleep_until(quiet_until) => {
                        if activity.last() + idle <= Instant::now() {
                            // Idle: closed now, or after the request in flight — which
                            // gets one more idle period (a client that stopped reading
                            // its answer would otherwise hold the connection for ever);
                            // then the connection is dropped.
                            tracing::debug!(%peer, "HTTP connection idle: closing");
                            conn.as_mut().graceful_shutdown();
                            break tokio::time::timeout(idle, conn.as_mut())
                                .await
                                .unwrap_or(Ok(()));
                        }
                    }
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop((permit, alive));
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive);
    let _ = drained.recv().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_source_and_in_all_and_freed_on_drop() {
        let counts: Counts = Arc::new(Mutex::new((HashMap::new(), 0)));
        let limits = HttpLimits {
            per_source: 1,
            total: 2,
            ..HttpLimits::default()
        };
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let c: IpAddr = [192, 0, 2, 3].into();
        let pa = admit(&counts, &limits, a);
        assert!(pa.is_some());
        assert!(admit(&counts, &limits, a).is_none(), "per source");
        let pb = admit(&counts, &limits, b);
        assert!(pb.is_some());
        assert!(admit(&counts, &limits, c).is_none(), "in all");
        drop(pa);
        assert!(admit(&counts, &limits, c).is_some());
        drop(pb);
        assert_eq!(counts.lock().unwrap_or_else(|e| e.into_inner()).1, 0);
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Serves a router with an echo route under short body and idle timeouts (and a
    /// header timeout far beyond the test's patience, so it cannot be what closes).
    async fn server() -> SocketAddr {
        let app = Router::new()
            .route("/echo", axum::routing::post(|b: String| async move { b }))
            .route("/hello", axum::routing::get(|| async { "hi" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(600),
            body_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        tokio::spawn(serve(listener, app, limits, std::future::pending()));
        addr
    }

    /// Reads until the server closes the connection (EOF or reset); `None` when it is
    /// still open after `patience` (the test's guard, not a measured duration).
    async fn until_closed(s: &mut tokio::net::TcpStream, patience: Duration) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let read_all = async {
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(patience, read_all).await.ok()?;
        Some(got)
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_answered_408_and_the_connection_closed() {
        let addr = server().await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
            .await
            .unwrap();
        let got = until_closed(&mut s, Duration::from_secs(20))
            .await
            .expect("connection still open");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }

    /// Slowloris: one byte of body now and then keeps the socket busy but the body
    /// never completes; the body deadline closes it all the same.
    #[tokio::test]
    async fn a_trickled_body_does_not_hold_the_connection() {
        let addr = server().await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            .await
            .unwrap();
        let mut closed = false;
        for _ in 0..200 {
            if s.write_all(b"x").await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Err(_) => continue, // nothing yet: trickle on
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                    closed = until_closed(&mut s, Duration::from_secs(20))
                        .await
                        .is_some();
                    break;
                }
            }
        }
        assert!(closed, "a trickled body held its connection");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let addr = server().await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        // The answer comes, then (no further request) the connection is closed.
        let got = until_closed(&mut s, Duration::from_secs(20))
            .await
            .expect("idle keep-alive connection still open");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("hi"), "{text}");
    }
}
