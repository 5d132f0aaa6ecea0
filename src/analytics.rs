//! The analytics fold's task (issue #22): keeps the KPI rollups up to date from the
//! outbox (cases/src/analytics.rs): `Store::analytics_follow` on every committed event
//! that can yield a fact and at least once a second (lagged subscribers), and
//! `Store::analytics_catch_up` (which also reads the last seconds again, for late
//! commits) at start-up — a restart resumes from the checkpoint — and every 10 s.

use std::time::Duration;

use parley_cases::Store;
use tokio::sync::broadcast::error::RecvError;

/// The longest wait between rounds.
const TICK: Duration = Duration::from_secs(1);
/// How often late commits are looked for.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Runs the fold until the task is aborted.
pub(crate) async fn run(store: Store) {
    let mut events = store.subscribe();
    let mut last_catch_up: Option<tokio::time::Instant> = None;
    loop {
        let full = last_catch_up.is_none_or(|t| t.elapsed() >= CATCH_UP);
        let done = if full {
            last_catch_up = Some(tokio::time::Instant::now());
            store.analytics_catch_up().await
        } else {
            store.analytics_follow().await
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "analytics rollups not updated; trying again");
        }
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(e)
                        if e.kind.starts_with("call.")
                            || e.kind.starts_with("conversation.")
                            || e.kind.starts_with("interaction.")
                            || e.kind.starts_with("callback.") =>
                    {
                        return;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
    }
}
