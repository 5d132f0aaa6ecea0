//! Awaiting a condition with a deadline instead of a hand-written sleep loop: the
//! condition is polled every 100 ms until it yields a value or the deadline passes; a
//! timeout names what was awaited (and, where given, the state last seen).

use std::fmt;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// A condition that did not hold within its deadline.
#[derive(Debug)]
pub(crate) struct TimedOut {
    /// What was awaited, as the caller named it.
    pub(crate) what: String,
    /// The deadline it was given.
    pub(crate) within: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.within, self.what
        )
    }
}

impl std::error::Error for TimedOut {}

/// Polls `f` until it returns `Some`, for at most `within`; the value, or a
/// [`TimedOut`] naming `what`.
pub(crate) fn wait_until<T>(
    what: &str,
    within: Duration,
    f: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    wait_every(what, within, POLL, f)
}

/// [`wait_until`] polling every `period` (e.g. 20 ms where `f` also sends a media
/// frame each time).
pub(crate) fn wait_every<T>(
    what: &str,
    within: Duration,
    period: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                within,
            });
        }
        std::thread::sleep(period);
    }
}

/// [`wait_until`] that panics with the timeout's message: the value `f` yielded.
pub(crate) fn eventually<T>(what: &str, within: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_until(what, within, f).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `cond` holds; a timeout panics naming `what` and `state()` as last seen.
pub(crate) fn eventually_true(
    what: &str,
    within: Duration,
    mut cond: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    if let Err(e) = wait_until(what, within, || cond().then_some(())) {
        panic!("{e}; last seen: {}", state());
    }
}

/// [`wait_until`] for async conditions (tests on a tokio runtime).
pub(crate) async fn wait_until_async<T, F, Fut>(
    what: &str,
    within: Duration,
    mut f: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                within,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_until_async`] that panics with the timeout's message.
pub(crate) async fn eventually_async<T, F, Fut>(what: &str, within: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until_async(what, within, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Awaits `fut` for at most `limit`; a timeout panics naming `what`.
pub(crate) async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        panic!(
            "{}",
            TimedOut {
                what: what.to_owned(),
                within: limit,
            }
        )
    })
}
