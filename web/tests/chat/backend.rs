//! The conversation engine behind the chat tests (the real one, `StoreChat` over the
//! test's store), and what an agent does to it.

use std::sync::Arc;

use parley_cases::conversations::{ConversationStatus, NewReply};
use parley_cases::{Actor, Store};
use parley_web::chat::{BoxFuture, ChatBackend, StoreChat};

/// What the agent side does in the tests.
pub(crate) trait AgentSide: Send + Sync {
    /// Replies, and delivers the reply as the delivery worker does for web chat.
    fn reply<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()>;
    /// Resolves the conversation.
    fn resolve<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
}

/// The backend the chat tests run against.
pub(crate) fn test_backend(store: &Store) -> Arc<dyn ChatBackend> {
    Arc::new(StoreChat::new(store.clone()))
}

/// `user` (a supervisor of `acme`, who sees every conversation) as the agent side.
pub(crate) fn agent_side(store: &Store, user: Actor) -> Arc<dyn AgentSide> {
    Arc::new(Agent {
        store: store.clone(),
        user,
    })
}

struct Agent {
    store: Store,
    user: Actor,
}

impl Agent {
    async fn actor(&self) -> Actor {
        self.user.clone()
    }
}

impl AgentSide for Agent {
    fn reply<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let actor = self.actor().await;
            let m = self
                .store
                .reply(
                    &actor,
                    id,
                    NewReply {
                        text: text.into(),
                        ..NewReply::default()
                    },
                )
                .await
                .unwrap();
            assert!(
                self.store
                    .delivery_sent(&actor.tenant_id, &m.id, None)
                    .await
                    .unwrap()
            );
        })
    }

    fn resolve<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let actor = self.actor().await;
            self.store
                .set_conversation_status(&actor, id, ConversationStatus::Resolved, None)
                .await
                .unwrap();
        })
    }
}
