//! Wiring of the email channel (issue #18): one IMAP reader per email channel that has
//! a mailbox (started, restarted on a settings change, stopped when the channel goes:
//! the list is read every few seconds) and, when `PARLEY_SMTP_ADDR` is set, Parley's
//! own SMTP/LMTP receiver. Replies leave through the delivery outbox
//! (`parley_email::channel::EmailAdapter`, registered in `delivery::adapters`).

use std::collections::HashMap;
use std::time::Duration;

use parley_cases::Store;
use parley_email::EmailConfig;
use parley_email::imap::Reader;
use tokio::task::JoinHandle;

/// How often the channel list is read.
const RESCAN: Duration = Duration::from_secs(3);

/// Keeps one reader per email channel with a mailbox, until the task is aborted.
pub(crate) async fn readers(store: Store, poll: Duration) {
    let mut running: HashMap<String, (String, JoinHandle<()>)> = HashMap::new();
    loop {
        match store.email_channels().await {
            Ok(list) => {
                let mut seen = Vec::new();
                for (tenant, ch) in list {
                    // The whole configuration: the mailbox password is a sealed secret.
                    let Ok(full) = store.channel_config(&ch) else {
                        tracing::warn!(channel = %ch.id, "email: the channel's secrets cannot be opened");
                        continue;
                    };
                    let Ok(cfg) = EmailConfig::from_json(&full) else {
                        continue;
                    };
                    if cfg.imap.is_none() {
                        continue;
                    }
                    // A change of settings or of a secret restarts the reader.
                    let fingerprint = {
                        use sha2::Digest as _;
                        let d = sha2::Sha256::digest(full.to_string().as_bytes());
                        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    };
                    seen.push(ch.id.clone());
                    if running.get(&ch.id).is_some_and(|(f, _)| *f == fingerprint) {
                        continue;
                    }
                    if let Some((_, old)) = running.remove(&ch.id) {
                        old.abort();
                    }
                    tracing::info!(channel = %ch.id, "email: reading the mailbox");
                    let id = ch.id.clone();
                    let mut reader = Reader::new(store.clone(), tenant, ch, cfg);
                    reader.poll = poll;
                    running.insert(id, (fingerprint, tokio::spawn(reader.run())));
                }
                running.retain(|id, (_, h)| {
                    let keep = seen.contains(id);
                    if !keep {
                        h.abort();
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!(error = %e, "email: channels not read"),
        }
        tokio::time::sleep(RESCAN).await;
    }
}
