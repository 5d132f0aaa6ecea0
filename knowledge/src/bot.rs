//! The web-chat bot: one task reading the store's committed events. For each
//! customer message of a web-chat conversation the tenant's bot holds (its bot is on,
//! nobody is assigned, it has not handed off), it answers from the published articles
//! — a `bot` message through the same reply path and delivery outbox as an agent's
//! ([`Store::bot_reply`]) — or hands the conversation to its queue with the reason
//! ([`Store::bot_handoff`]; ingestion did not route it while the bot held it). The
//! customer saying it did not help, or asking for a person, hands off too. The bot says
//! it hands off only when it spoke before or the customer asked for a person; on a first
//! message it cannot answer it stays silent (the customer simply waits for a person).
//!
//! It never runs inside an HTTP request: the visitor's message is stored and
//! acknowledged first (`Store::ingest`), the bot answers from the event.

use std::sync::Arc;

use parley_cases::conversations::{AuthorKind, ChannelKind, Conversation};
use parley_cases::kb::BotAttempt;
use parley_cases::{Actor, DomainEvent, Store};
use tokio::sync::broadcast::error::RecvError;

use crate::answer::{self, HandoffReason};
use crate::{Answer, Knowledge, Result};

/// What the bot says when it hands off.
pub const HANDOFF_TEXT: &str = "I'm passing you to a member of our team; they can see this conversation, so you won't need to repeat yourself.";

/// Runs the bot until the store's event stream closes.
pub async fn run(store: Store, knowledge: Arc<Knowledge>) {
    let mut events = store.subscribe();
    loop {
        match events.recv().await {
            Ok(e) => {
                if let Err(err) = on_event(&store, &knowledge, &e).await {
                    tracing::warn!(error = %err, "knowledge bot: could not handle a message");
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "knowledge bot: lagged behind the events");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Handles one committed event (only customer messages on web chat concern the bot).
pub async fn on_event(store: &Store, knowledge: &Knowledge, e: &DomainEvent) -> Result<()> {
    if e.kind != "conversation.message" {
        return Ok(());
    }
    let (Ok(conv), Ok(msg)) = (
        serde_json::from_value::<ConvView>(e.data["conversation"].clone()),
        serde_json::from_value::<MsgView>(e.data["message"].clone()),
    ) else {
        return Ok(());
    };
    if msg.author != AuthorKind::Customer || conv.channel != ChannelKind::WebChat {
        return Ok(());
    }
    let actor = Actor::system(&e.tenant_id);
    handle_message(store, knowledge, &actor, &conv.id, &msg.text).await
}

/// The bot's turn after a customer's `text` in conversation `conversation_id`.
pub async fn handle_message(
    store: &Store,
    knowledge: &Knowledge,
    actor: &Actor,
    conversation_id: &str,
    text: &str,
) -> Result<()> {
    if !store.kb_settings(actor).await?.bot_enabled {
        return Ok(());
    }
    let conv = store.conversation(actor, conversation_id).await?;
    let state = store.conversation_bot(actor, &conv.id).await?;
    if conv.assignee_id.is_some() || state.as_ref().is_some_and(|s| s.state != "active") {
        return Ok(());
    }
    // Whether the bot has answered here before (then it says when it steps back; on a
    // first message that it hands off, the customer simply waits for a person).
    let spoke = state.as_ref().is_some_and(|s| !s.tried.is_empty());
    let answer = match knowledge.answer(store, actor, text).await {
        Ok(a) => a,
        Err(err) => {
            // Unsure is a hand-off, never silence.
            tracing::warn!(error = %err, "knowledge bot: answering failed; handing off");
            return hand_off(
                store,
                actor,
                &conv,
                "the bot could not search the articles",
                spoke,
            )
            .await;
        }
    };
    if answer.handoff {
        let reason = answer.reason.unwrap_or(HandoffReason::NoArticle);
        let notify = spoke || reason == HandoffReason::AskedForPerson;
        return hand_off(store, actor, &conv, reason.describe(), notify).await;
    }
    store
        .bot_reply(
            actor,
            &conv.id,
            &reply_text(&answer),
            Some(BotAttempt {
                question: answer::truncate(text, 500).to_owned(),
                slugs: answer.citations.iter().map(|c| c.slug.clone()).collect(),
                at: store.now(),
            }),
        )
        .await?;
    Ok(())
}

/// The bot's message for an answer: the passage, then where it comes from.
pub fn reply_text(a: &Answer) -> String {
    let mut out = a.answer.clone();
    for c in &a.citations {
        out.push_str(&format!(
            "\n\nFrom our help article \"{}\" (/help/{}).",
            c.title, c.slug
        ));
    }
    out.push_str("\n\nDid that help? If not, write \"agent\" and a person will take over.");
    out
}

async fn hand_off(
    store: &Store,
    actor: &Actor,
    conv: &Conversation,
    reason: &str,
    notify: bool,
) -> Result<()> {
    if notify {
        store.bot_reply(actor, &conv.id, HANDOFF_TEXT, None).await?;
    }
    store.bot_handoff(actor, &conv.id, reason).await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct ConvView {
    id: String,
    channel: ChannelKind,
}

#[derive(serde::Deserialize)]
struct MsgView {
    author: AuthorKind,
    text: String,
}
