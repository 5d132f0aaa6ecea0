//! The call application's shared state beside its call tasks: the live-call registry,
//! the running call tasks (shutdown waits for them) and the dial policy's counters,
//! with the SIP runtime's counters (see `parley_signaling::trace`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parley_signaling::trace::Counters;
pub(crate) use parley_signaling::trace::bump;

/// Shared, read-mostly state of the call application.
#[derive(Debug)]
pub(crate) struct Observability {
    /// The SIP runtime's counters (calls answered, failed, …).
    pub(crate) counters: Arc<Counters>,
    /// Live calls and their control channels (see `call::control`).
    pub(crate) calls: crate::call::control::Registry,
    /// Call tasks still running (shutdown waits for them to store their records).
    pub(crate) call_tasks: CallTasks,
    /// Outbound dial counters (the dial policy's caps), shared by every dialling path.
    pub(crate) dial: crate::dial::DialGate,
}

impl Observability {
    pub(crate) fn new(counters: Arc<Counters>) -> Arc<Observability> {
        Arc::new(Observability {
            counters,
            calls: Default::default(),
            call_tasks: CallTasks::default(),
            dial: Default::default(),
        })
    }

    /// Registers a call task; keep the value for as long as the task runs.
    pub(crate) fn call_task(self: &Arc<Self>) -> CallTask {
        self.call_tasks.live.fetch_add(1, Ordering::SeqCst);
        CallTask(self.clone())
    }
}

/// Counts the running call tasks, so that shutdown can wait until every call stored
/// its record. Each task holds a [`CallTask`] from its start to its very end.
#[derive(Debug, Default)]
pub(crate) struct CallTasks {
    live: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl CallTasks {
    /// How many call tasks run.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Resolves once no call task runs.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A running call task's share of [`CallTasks`] (released when the task ends).
#[derive(Debug)]
pub(crate) struct CallTask(Arc<Observability>);

impl Drop for CallTask {
    fn drop(&mut self) {
        if self.0.call_tasks.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.call_tasks.idle.notify_waiters();
        }
    }
}
