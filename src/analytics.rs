//! The analytics fold's task (issue #22): keeps the KPI rollups up to date from the
//! outbox (`Store::analytics_catch_up`, cases/src/analytics.rs). It runs at start-up
//! (a restart resumes from the checkpoint), then on every committed event that can
//! yield a fact and at least once a second (late commits, lagged subscribers).

use std::time::Duration;

use parley_cases::Store;
use tokio::sync::broadcast::error::RecvError;

/// The longest wait between rounds.
const TICK: Duration = Duration::from_secs(1);

/// Runs the fold until the task is aborted.
pub(crate) async fn run(store: Store) {
    let mut events = store.subscribe();
    loop {
        if let Err(e) = store.analytics_catch_up().await {
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
