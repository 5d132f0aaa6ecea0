//! The HTTP server loop, with the limits a public address needs: connections per
//! source address and in all (surplus ones are closed as soon as they are accepted),
//! and a deadline for each request's header (hyper's `header_read_timeout`, which
//! `axum::serve` leaves without a timer, so a client trickling a header one byte at a
//! time could hold a connection forever). WebSocket upgrades are served as before.
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
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
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            per_source: 64,
            total: 4096,
            header_timeout: Duration::from_secs(10),
        }
    }
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
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        let (mut stop, alive) = (stop_rx.clone(), alive.clone());
        tokio::spawn(async move {
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
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
