//! The conversation engine behind the chat tests, and what an agent does to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parley_cases::{Error, Store, Timestamp};
use parley_web::chat::{BoxFuture, ChatBackend, ChatConversation, ChatMessage};
use tokio::sync::broadcast;

/// What the agent side does in the tests.
pub(crate) trait AgentSide: Send + Sync {
    fn reply<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()>;
    fn resolve<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
}

/// The backend the chat tests run against, and its agent side.
pub(crate) async fn test_backend(_store: &Store) -> (Arc<dyn ChatBackend>, Arc<dyn AgentSide>) {
    let m = Arc::new(Mem::default());
    (m.clone(), m)
}

#[derive(Default)]
struct Conv {
    tenant: String,
    status: String,
    csat: Option<u8>,
    messages: Vec<(ChatMessage, Option<String>)>,
}

/// An in-memory stand-in for the engine (this test file's double only).
struct Mem {
    convs: Mutex<HashMap<String, Conv>>,
    tx: broadcast::Sender<String>,
}

impl Default for Mem {
    fn default() -> Self {
        Mem {
            convs: Mutex::default(),
            tx: broadcast::channel(64).0,
        }
    }
}

impl Mem {
    fn push(&self, id: &str, author: &str, text: String, client_id: Option<String>) -> ChatMessage {
        let mut convs = self.convs.lock().unwrap();
        let c = convs.get_mut(id).unwrap();
        if let Some(cid) = &client_id
            && let Some((m, _)) = c.messages.iter().find(|(_, k)| k.as_ref() == Some(cid))
        {
            return m.clone();
        }
        let m = ChatMessage {
            id: format!("{id}-m{}", c.messages.len() + 1),
            seq: c.messages.len() as i64 + 1,
            author: author.into(),
            text,
            created_at: Timestamp(0),
        };
        c.messages.push((m.clone(), client_id));
        drop(convs);
        let _ = self.tx.send(id.to_owned());
        m
    }
}

impl AgentSide for Mem {
    fn reply<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.push(id, "agent", text.into(), None);
        })
    }
    fn resolve<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.convs.lock().unwrap().get_mut(id).unwrap().status = "resolved".into();
            let _ = self.tx.send(id.to_owned());
        })
    }
}

impl ChatBackend for Mem {
    fn open<'a>(
        &'a self,
        tenant_id: &'a str,
        _name: Option<String>,
        _email: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<String>> {
        Box::pin(async move {
            let mut convs = self.convs.lock().unwrap();
            let id = format!("conv-{}", convs.len() + 1);
            convs.insert(
                id.clone(),
                Conv {
                    tenant: tenant_id.into(),
                    status: "open".into(),
                    ..Conv::default()
                },
            );
            Ok(id)
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
            self.conversation(tenant_id, conversation_id).await?;
            Ok(self.push(conversation_id, "customer", text, client_id))
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
            let convs = self.convs.lock().unwrap();
            let c = convs
                .get(conversation_id)
                .filter(|c| c.tenant == tenant_id)
                .ok_or(Error::NotFound {
                    entity: "conversation",
                })?;
            Ok(c.messages
                .iter()
                .map(|(m, _)| m.clone())
                .filter(|m| m.seq > after)
                .take(limit as usize)
                .collect())
        })
    }

    fn conversation<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, parley_cases::Result<ChatConversation>> {
        Box::pin(async move {
            let convs = self.convs.lock().unwrap();
            let c = convs
                .get(conversation_id)
                .filter(|c| c.tenant == tenant_id)
                .ok_or(Error::NotFound {
                    entity: "conversation",
                })?;
            Ok(ChatConversation {
                id: conversation_id.into(),
                status: c.status.clone(),
                csat: c.csat,
            })
        })
    }

    fn rate<'a>(
        &'a self,
        tenant_id: &'a str,
        conversation_id: &'a str,
        score: u8,
        _comment: Option<String>,
    ) -> BoxFuture<'a, parley_cases::Result<()>> {
        Box::pin(async move {
            let mut convs = self.convs.lock().unwrap();
            let c = convs
                .get_mut(conversation_id)
                .filter(|c| c.tenant == tenant_id)
                .ok_or(Error::NotFound {
                    entity: "conversation",
                })?;
            if c.status != "resolved" {
                return Err(Error::InvalidTransition {
                    entity: "conversation",
                    from: c.status.clone(),
                    to: "rated".into(),
                });
            }
            c.csat = Some(score);
            Ok(())
        })
    }

    fn changes(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }
}
