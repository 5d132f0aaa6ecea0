//! The incidents worker (issue #21), one task per process:
//!
//! - at start, finishes public updates whose fan-out a crash interrupted
//!   (`Store::resume_incident_fanouts`: each customer once);
//! - drains the Slack outbox (`slack_outbox`) through `parley-slack`: a swarm creates
//!   the incident's channel (a valid unique name), invites the tenant's invitees (looked
//!   up by email) and posts the brief; notes and status changes are posted into it.
//!   Failures are retried with the delivery outbox's backoff (2 s doubling, ≤ 10 min,
//!   8 attempts); Slack being down never blocks an incident;
//! - answers a customer who writes during an incident with its current status
//!   (`Store::incident_auto_status`, once per public update and conversation);
//! - every minute, raises the alert of a missed update (`Store::check_incident_cadence`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_cases::conversations::delivery::retry_after_ms;
use parley_cases::incidents::slack::{SlackAction, SlackCall};
use parley_cases::{Actor, Store, Timestamp};

/// Slack calls taken per round.
const BATCH: u32 = 50;
/// The longest wait between rounds.
const TICK: Duration = Duration::from_secs(1);
/// How often the update cadence is checked.
const CADENCE_EVERY: Duration = Duration::from_secs(60);

/// Runs the worker until the task is aborted.
pub(crate) async fn run(store: Store, keys: Arc<parley_vault::KeyRing>) {
    let mut events = store.subscribe();
    match store.resume_incident_fanouts().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(updates = n, "interrupted incident updates finished"),
        Err(e) => tracing::warn!(error = %e, "interrupted incident updates not finished"),
    }
    let mut last_cadence: Option<Instant> = None;
    loop {
        if let Err(e) = slack_round(&store, &keys).await {
            tracing::warn!(error = %e, "Slack round failed; trying again");
        }
        if last_cadence.is_none_or(|t| t.elapsed() >= CADENCE_EVERY) {
            last_cadence = Some(Instant::now());
            match store.check_incident_cadence().await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(incidents = ?ids, "incident updates overdue")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "incident cadence not checked"),
            }
        }
        // Wake on an inbound message (status reply) or a new Slack call, or the tick.
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(e) if e.kind == "conversation.message" => {
                        let inbound = e.data["message"]["direction"] == "inbound";
                        if let (true, Some(conv)) = (inbound, e.data["conversation"]["id"].as_str())
                            && let Err(err) = store.incident_auto_status(&e.tenant_id, conv).await
                        {
                            tracing::warn!(error = %err, "incident status not sent");
                        }
                    }
                    Ok(e) if e.kind.starts_with("incident.") => return,
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

async fn slack_round(store: &Store, keys: &parley_vault::KeyRing) -> parley_cases::Result<()> {
    for call in store.due_slack_calls(BATCH).await? {
        let outcome = make_call(store, keys, &call).await;
        match outcome {
            Ok(()) => store.slack_call_done(&call.id).await?,
            Err(Failure { error, retry }) => {
                let retry_at = retry
                    .then(|| retry_after_ms(call.attempts + 1))
                    .flatten()
                    .map(|ms| Timestamp(store.now().millis() + ms));
                tracing::warn!(incident = %call.incident_id, error = %error, retry = retry_at.is_some(), "Slack call failed");
                store.slack_call_failed(&call.id, &error, retry_at).await?;
            }
        }
    }
    Ok(())
}

struct Failure {
    error: String,
    retry: bool,
}

impl From<parley_slack::Error> for Failure {
    fn from(e: parley_slack::Error) -> Failure {
        Failure {
            retry: e.is_retryable(),
            error: e.to_string(),
        }
    }
}

impl From<parley_cases::Error> for Failure {
    fn from(e: parley_cases::Error) -> Failure {
        Failure {
            error: e.to_string(),
            retry: true,
        }
    }
}

async fn make_call(
    store: &Store,
    keys: &parley_vault::KeyRing,
    call: &SlackCall,
) -> Result<(), Failure> {
    let Some(integration) = store.slack_integration(&call.tenant_id).await? else {
        return Err(Failure {
            error: "Slack is no longer connected".into(),
            retry: false,
        });
    };
    let token = parley_slack::open_stored(Some(keys), &integration.bot_token_sealed)?;
    let slack = parley_slack::Client::new(&integration.api_base_url, &token)?;
    let sys = Actor::system(&call.tenant_id);
    let inc = store.incident(&sys, &call.incident_id).await?;
    match &call.action {
        SlackAction::Swarm { brief } => {
            let channel_id = match &inc.slack_channel_id {
                Some(c) => c.clone(),
                None => {
                    let mut name = parley_slack::channel_name(&inc.title, &inc.id);
                    if call.attempts > 0 {
                        // A channel made by an attempt that died before recording it
                        // holds the name: take another.
                        name = format!(
                            "{}-{}",
                            name.chars().take(76).collect::<String>(),
                            call.attempts
                        );
                    }
                    let ch = slack.create_channel(&name).await?;
                    store
                        .set_incident_slack_channel(&call.tenant_id, &inc.id, &ch.id, &ch.name)
                        .await?;
                    ch.id
                }
            };
            let mut users = Vec::new();
            for email in &integration.invitees {
                if let Some(u) = slack.lookup_by_email(email).await? {
                    users.push(u);
                }
            }
            if !users.is_empty() {
                match slack.invite(&channel_id, &users).await {
                    Err(parley_slack::Error::Api { error, .. })
                        if error == "already_in_channel" => {}
                    other => other?,
                }
            }
            slack.post_message(&channel_id, brief, None).await?;
        }
        SlackAction::Post { text } => match &inc.slack_channel_id {
            Some(c) => {
                slack.post_message(c, text, None).await?;
            }
            None => {
                return Err(Failure {
                    error: "the swarm channel is not made yet".into(),
                    retry: true,
                });
            }
        },
    }
    Ok(())
}
