//! The delivery worker: sends agents' replies waiting in the delivery outbox
//! (`message_deliveries`, written in the reply's transaction) through their channel's
//! adapter, with retries and backoff (`parley_cases::conversations::delivery`).
//!
//! One task per process (it also reopens snoozed conversations whose time came). It wakes on every `conversation.message` event (a new reply)
//! and at least once a second (retries that came due), takes up to 100 due replies,
//! oldest first, and sends them one after the other. A reply is sent only while its
//! row is pending; the outcome is recorded in one transaction (web chat: the send *is*
//! that transaction), so after a crash (`kill -9`) anywhere a reply is sent on the next
//! start, and only once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parley_cases::Store;
use parley_cases::Timestamp;
use parley_cases::conversations::ChannelKind;
use parley_cases::conversations::delivery::{ChannelAdapter, Sent, WebChatAdapter, retry_after_ms};

/// Replies taken per round.
const BATCH: u32 = 100;
/// The longest wait between rounds (retries coming due).
const TICK: Duration = Duration::from_secs(1);

/// The adapters of the channels Parley can send on today.
pub(crate) fn adapters() -> HashMap<ChannelKind, Arc<dyn ChannelAdapter>> {
    let mut m: HashMap<ChannelKind, Arc<dyn ChannelAdapter>> = HashMap::new();
    let web: Arc<dyn ChannelAdapter> = Arc::new(WebChatAdapter);
    m.insert(web.kind(), web);
    let email: Arc<dyn ChannelAdapter> = Arc::new(parley_email::channel::EmailAdapter);
    m.insert(email.kind(), email);
    // Messaging providers (issue #19).
    for a in crate::messaging::ProviderAdapter::all() {
        m.insert(a.kind(), a);
    }
    m
}

/// Runs the worker until the task is aborted.
pub(crate) async fn run(store: Store, adapters: HashMap<ChannelKind, Arc<dyn ChannelAdapter>>) {
    let mut events = store.subscribe();
    loop {
        if let Err(e) = round(&store, &adapters).await {
            tracing::warn!(error = %e, "delivery round failed; trying again");
        }
        // Snoozed conversations whose time came are open again.
        if let Err(e) = store.wake_snoozed_conversations().await {
            tracing::warn!(error = %e, "snoozed conversations not woken");
        }
        // Wake on a new message, or after the tick.
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(e) if e.kind == "conversation.message" => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
    }
}

/// Sends every reply due now; returns how many were handed to an adapter.
pub(crate) async fn round(
    store: &Store,
    adapters: &HashMap<ChannelKind, Arc<dyn ChannelAdapter>>,
) -> parley_cases::Result<usize> {
    let mut sent = 0;
    loop {
        let due = store.due_deliveries(BATCH).await?;
        let n = due.len();
        for d in &due {
            let Some(adapter) = adapters.get(&d.channel.kind) else {
                store
                    .delivery_failed(
                        &d.tenant_id,
                        &d.message.id,
                        &format!(
                            "Parley cannot send on {} channels yet",
                            d.channel.kind.as_str()
                        ),
                        None,
                    )
                    .await?;
                continue;
            };
            sent += 1;
            match adapter.send(store, d).await {
                Ok(Sent::Recorded) => {}
                Ok(Sent::Provider(id)) => {
                    store
                        .delivery_sent(&d.tenant_id, &d.message.id, id.as_deref())
                        .await?;
                }
                Err(e) => {
                    // A channel may give up sooner (`max_attempts` in its settings).
                    let max = d
                        .channel
                        .settings
                        .get("max_attempts")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(i64::MAX);
                    let retry = if e.retryable && d.attempts + 1 < max {
                        retry_after_ms(d.attempts).map(|ms| Timestamp(store.now().0 + ms))
                    } else {
                        None
                    };
                    tracing::warn!(message = %d.message.id, reason = %e.reason, retry = retry.is_some(), "reply not delivered");
                    store
                        .delivery_failed(&d.tenant_id, &d.message.id, &e.reason, retry)
                        .await?;
                }
            }
        }
        if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(sent);
        }
    }
}
