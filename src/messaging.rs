//! The messaging channels' delivery adapters (issue #19): one [`ProviderAdapter`] per
//! kind (WhatsApp, Messenger, Instagram, Telegram, SMS, X, `api`), registered in
//! [`crate::delivery::adapters`]. Each builds its provider's request with
//! `parley_messaging` from the channel's configuration (secrets opened by the store),
//! sends it, and reads the answer: the provider's message id (later receipts name it),
//! or an error that is retried (429, 5xx, no answer) or final (the provider's code and
//! text, shown on the message). A WhatsApp reply stored as a template is sent as that
//! template; an SMS to a number that texted STOP is not sent.

use std::sync::Arc;
use std::time::Duration;

use parley_cases::Store;
use parley_cases::conversations::ChannelKind;
use parley_cases::conversations::delivery::{
    ChannelAdapter, Delivery, SendError, SendFuture, Sent,
};
use parley_messaging::client::Client;
use parley_messaging::{api, meta, telegram, twilio, whatsapp, x};

/// The kinds sent through a provider API.
pub(crate) const KINDS: [ChannelKind; 7] = [
    ChannelKind::Whatsapp,
    ChannelKind::Messenger,
    ChannelKind::Instagram,
    ChannelKind::Telegram,
    ChannelKind::Sms,
    ChannelKind::X,
    ChannelKind::Api,
];

/// Largest provider answer read.
const MAX_ANSWER: usize = 256 << 10;

/// Sends replies on one messaging kind.
pub(crate) struct ProviderAdapter {
    kind: ChannelKind,
    client: Client,
}

impl ProviderAdapter {
    /// The adapters of every messaging kind, sharing one HTTP client.
    pub(crate) fn all() -> Vec<Arc<dyn ChannelAdapter>> {
        let client = Client::new(Duration::from_secs(15));
        KINDS
            .iter()
            .map(|&kind| {
                Arc::new(ProviderAdapter {
                    kind,
                    client: client.clone(),
                }) as Arc<dyn ChannelAdapter>
            })
            .collect()
    }

    async fn deliver(&self, store: &Store, d: &Delivery) -> Result<Sent, SendError> {
        let fail = |retryable: bool, reason: String| SendError { retryable, reason };
        let config = store
            .channel_config(&d.channel)
            .map_err(|e| fail(false, e.to_string()))?;
        let to = d.thread_key.as_str();
        let text = d.message.text.as_str();
        let bad_config = |e: parley_messaging::Error| fail(false, e.to_string());
        let req = match self.kind {
            ChannelKind::Whatsapp => {
                let template = store
                    .message_template(&d.tenant_id, &d.message.id)
                    .await
                    .map_err(|e| fail(true, e.to_string()))?;
                match template {
                    Some(t) => whatsapp::send_template(&config, to, &t.name, &t.language, &t.params),
                    None => whatsapp::send_text(&config, to, text),
                }
            }
            ChannelKind::Messenger | ChannelKind::Instagram => {
                // The human-agent tag only past the standard window, where enabled.
                let tagged = config.get("human_agent_tag").and_then(serde_json::Value::as_bool)
                    == Some(true)
                    && store
                        .last_inbound_at(&d.tenant_id, &d.message.conversation_id)
                        .await
                        .ok()
                        .flatten()
                        .is_none_or(|t| store.now().0 - t.0 >= meta::WINDOW_MS);
                meta::send_text(&config, to, text, tagged)
            }
            ChannelKind::Telegram => telegram::send_message(&config, to, text),
            ChannelKind::Sms => {
                let out = store
                    .sms_opted_out(&d.tenant_id, &d.channel.id, to)
                    .await
                    .map_err(|e| fail(true, e.to_string()))?;
                if out {
                    return Err(fail(false, "the customer opted out of SMS (STOP); not sent".into()));
                }
                twilio::send_message(&config, to, text, None)
            }
            ChannelKind::X => x::send_message(&config, to, text),
            ChannelKind::Api => {
                let atts: Vec<serde_json::Value> = d
                    .message
                    .attachments
                    .iter()
                    .map(|a| serde_json::json!({"name": a.name, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}))
                    .collect();
                api::send_message(&config, &d.message.id, to, text, &atts)
            }
            ChannelKind::WebChat | ChannelKind::Email => {
                return Err(fail(false, "not a messaging provider channel".into()));
            }
        }
        .map_err(bad_config)?;
        let answer = self.client.send(&req, MAX_ANSWER).await;
        let read = match self.kind {
            ChannelKind::Whatsapp => whatsapp::read_send(&answer),
            ChannelKind::Messenger | ChannelKind::Instagram => meta::read_send(&answer),
            ChannelKind::Telegram => telegram::read_send(&answer),
            ChannelKind::Sms => twilio::read_send(&answer),
            ChannelKind::X => x::read_send(&answer),
            _ => api::read_send(&answer, &d.message.id),
        };
        match read {
            Ok(id) => {
                if self.kind == ChannelKind::Whatsapp {
                    self.mark_read(store, d, &config).await;
                }
                Ok(Sent::Provider((!id.is_empty()).then_some(id)))
            }
            Err(e) => Err(fail(e.retryable, e.reason)),
        }
    }

    /// WhatsApp: the customer's last message is marked read once an agent answered it
    /// (best effort; `"mark_read": false` in the configuration turns it off).
    async fn mark_read(&self, store: &Store, d: &Delivery, config: &serde_json::Value) {
        if config.get("mark_read").and_then(serde_json::Value::as_bool) == Some(false) {
            return;
        }
        let last = store
            .last_inbound_provider_id(&d.tenant_id, &d.message.conversation_id)
            .await;
        if let Ok(Some(id)) = last
            && let Ok(req) = whatsapp::mark_read(config, &id)
        {
            let r = self.client.send(&req, MAX_ANSWER).await;
            if r.status != 200 {
                tracing::debug!(status = r.status, "WhatsApp mark-as-read not accepted");
            }
        }
    }
}

impl ChannelAdapter for ProviderAdapter {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn send<'a>(&'a self, store: &'a Store, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(self.deliver(store, d))
    }
}
