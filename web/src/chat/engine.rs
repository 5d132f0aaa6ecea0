//! [`ChatBackend`] over the conversation engine in `parley_cases`
//! (`cases/src/conversations.rs`): a visitor is a `web_chat` identity (a random visitor
//! id, which is also the conversation's thread key on the tenant's web-chat channel);
//! their messages go through the one ingestion path ([`Store::ingest`]); they read
//! [`Store::visitor_messages`] (no notes; agents' replies once delivered). Every call
//! acts as the tenant's system actor: the visitor token already proved which
//! conversation of which tenant the visitor may reach.

use parley_cases::conversations::{AuthorKind, InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Actor, DomainEvent, Store};
use tokio::sync::broadcast;

use super::{BoxFuture, ChatBackend, ChatConversation, ChatMessage};

/// A change id meaning "anything may have changed" (the store's event stream lagged).
pub(crate) const EVERYTHING: &str = "*";

/// The web chat over the store.
pub struct StoreChat {
    store: Store,
    changes: broadcast::Sender<String>,
    agent_typing: broadcast::Sender<String>,
}

impl StoreChat {
    /// The backend over `store`. Spawns the task that turns the store's committed
    /// events into conversation ids (it ends when the store's event stream closes).
    pub fn new(store: Store) -> StoreChat {
        let (tx, _) = broadcast::channel(4096);
        let (typing_tx, _) = broadcast::channel(1024);
        let mut events = store.subscribe();
        let out = tx.clone();
        let typing = typing_tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => {
                        if let Some(id) = concerns(&e) {
                            let _ = out.send(id);
                        } else if let Some(id) = agent_typing(&e) {
                            let _ = typing.send(id);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = out.send(EVERYTHING.to_owned());
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        StoreChat {
            store,
            changes: tx,
            agent_typing: typing_tx,
        }
    }
}

/// The conversation whose visitor-visible state an event changed.
fn concerns(e: &DomainEvent) -> Option<String> {
    let key = match e.kind {
        "conversation.visitor_message" => "conversation_id",
        "conversation.status_changed" | "conversation.updated" => "id",
        _ => return None,
    };
    e.data.get(key)?.as_str().map(str::to_owned)
}

/// The conversation where an agent is typing, from a `conversation.typing` event.
fn agent_typing(e: &DomainEvent) -> Option<String> {
    if e.kind != "conversation.typing" || e.data.get("author")?.as_str()? != "agent" {
        return None;
    }
    e.data.get("conversation_id")?.as_str().map(str::to_owned)
}

fn to_chat(m: parley_cases::conversations::VisitorMessage) -> ChatMessage {
    ChatMessage {
        id: m.id,
        seq: m.seq,
        author: m.author.as_str().to_owned(),
        text: m.text,
        created_at: m.created_at,
    }
}

fn visitor_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ChatBackend for StoreChat {
    fn open<'a>(
        &'a self,
        tenant_id: &'a str,
        name: Option<String>,
        email: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<String>> {
        // The typed email is an unverified claim: it never becomes an identity (that
        // would merge the visitor into whoever owns the address). It is kept on the
        // customer as a claim (the conversation can continue by email; the portal's
        // emailed link proves it later).
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            let channel = self.store.web_chat_channel(&actor).await?;
            let visitor = visitor_id();
            let sender = Sender {
                customer_id: None,
                identity: Some(RawIdentity {
                    kind: "web_chat".into(),
                    value: visitor.clone(),
                }),
                name,
            };
            let (conv, _) = self
                .store
                .find_or_open_conversation(&actor, &channel.id, &visitor, &sender)
                .await?;
            if let Some(email) = email {
                self.store
                    .claim_contact(
                        &actor,
                        &conv.customer_id,
                        "email",
                        &email,
                        "web_chat",
                        Some(&conv.id),
                    )
                    .await?;
            }
            Ok(conv.id)
        })
    }

    fn send<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        text: String,
        client_id: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<ChatMessage>> {
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            let conv = self.store.conversation(&actor, conversation_id).await?;
            let done = self
                .store
                .ingest(
                    &actor,
                    InboundMessage {
                        channel_id: conv.channel_id,
                        thread_key: conv.thread_key,
                        sender: Sender {
                            customer_id: Some(conv.customer_id),
                            ..Sender::default()
                        },
                        text,
                        client_id,
                        ..InboundMessage::default()
                    },
                )
                .await?;
            Ok(to_chat(parley_cases::conversations::VisitorMessage::of(
                &done.message,
            )))
        })
    }

    fn after<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'a, parley_cases::Result<Vec<ChatMessage>>> {
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            Ok(self
                .store
                .visitor_messages(&actor, conversation_id, after, Some(limit))
                .await?
                .into_iter()
                .map(to_chat)
                .collect())
        })
    }

    fn conversation<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, parley_cases::Result<ChatConversation>> {
        Box::pin(async move {
            let c = self
                .store
                .conversation(&Actor::system(tenant_id), conversation_id)
                .await?;
            Ok(ChatConversation {
                id: c.id,
                status: c.status.as_str().to_owned(),
                csat: c.csat.map(|x| x.score),
            })
        })
    }

    fn rate<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        score: u8,
        comment: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<()>> {
        Box::pin(async move {
            self.store
                .set_conversation_csat(
                    &Actor::system(tenant_id),
                    conversation_id,
                    score,
                    comment.as_deref(),
                )
                .await?;
            Ok(())
        })
    }

    fn read_up_to<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        seq: i64,
    ) -> BoxFuture<'a, parley_cases::Result<()>> {
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            // The receipt covers the last page of messages before `seq` (a visitor
            // reads as they go; older replies were receipted then).
            let from = seq.saturating_sub(200).max(0);
            let unread: Vec<String> = self
                .store
                .visitor_messages(&actor, conversation_id, from, Some(200))
                .await?
                .into_iter()
                .filter(|m| m.seq <= seq && m.author != AuthorKind::Customer)
                .map(|m| m.id)
                .collect();
            let msgs = self
                .store
                .conversation_messages(&actor, conversation_id, from, Some(200))
                .await?;
            for m in msgs {
                if unread.contains(&m.id)
                    && matches!(m.status, MessageStatus::Sent | MessageStatus::Delivered)
                {
                    self.store
                        .message_status(&actor, &m.id, MessageStatus::Read)
                        .await?;
                }
            }
            Ok(())
        })
    }

    fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    fn typing<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, parley_cases::Result<()>> {
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            self.store
                .publish_typing(&actor, conversation_id, AuthorKind::Customer)
                .await
        })
    }

    fn request_transcript<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        email: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<String>> {
        Box::pin(async move {
            let actor = Actor::system(tenant_id);
            Ok(self
                .store
                .request_transcript(&actor, conversation_id, email.as_deref())
                .await?
                .email)
        })
    }

    fn agent_typing(&self) -> broadcast::Receiver<String> {
        self.agent_typing.subscribe()
    }
}
