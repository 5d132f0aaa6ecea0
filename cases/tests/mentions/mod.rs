//! @mentions in a conversation's internal notes (issue 17, the inbox): the note's
//! timeline entry records them, and `conversation.mentioned` reaches the mentioned
//! agent only — not the author, not another agent, nothing for a reply to the customer.
//! On both backends; part of the `storage` test binary.
//! Regression: a note's mention reached nobody who was not the conversation's assignee
//! (`conversation.message` goes to the assignee only).

use parley_cases::conversations::{InboundMessage, NewReply, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::queues::QueueInput;
use parley_cases::{DomainEvent, Role};

use crate::common;
use crate::on_both;
use crate::user;

fn seen_by(events: &[DomainEvent], a: &parley_cases::Actor, kind: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind == kind && e.visible_to_user(a))
        .count()
}

on_both!(a_notes_mentions_notify_the_mentioned_agent_only, |h| {
    let acme = h.tenant("acme").await;
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
    h.store.create_queue(&acme, q).await.unwrap();
    let ch = h.store.web_chat_channel(&acme).await.unwrap().id;
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    let bob = user(&h.store, &acme, "bob@acme.test", Role::Agent).await;
    let cat = user(&h.store, &acme, "cat@acme.test", Role::Agent).await;
    let got = h
        .store
        .ingest(
            &acme,
            InboundMessage {
                channel_id: ch,
                thread_key: "v1".into(),
                sender: Sender {
                    customer_id: None,
                    identity: Some(RawIdentity {
                        kind: "web_chat".into(),
                        value: "v1".into(),
                    }),
                    name: Some("Vera".into()),
                },
                text: "Where is my parcel?".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let conv = got.conversation.id.clone();
    h.store
        .assign_conversation(&acme, &conv, Some(ann.user_id.clone().unwrap().as_str()))
        .await
        .unwrap();
    let mut rx = h.store.subscribe();
    let note = h
        .store
        .reply(
            &ann,
            &conv,
            NewReply {
                text: "@bob can you check the courier? (not mail@cat.test)".into(),
                private: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A reply to the customer naming @cat mentions nobody.
    h.store
        .reply(
            &ann,
            &conv,
            NewReply {
                text: "Our @cat team is on it".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Events are relayed before the mutation returns: all of them are there.
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let mentioned: Vec<&DomainEvent> = events
        .iter()
        .filter(|e| e.kind == "conversation.mentioned")
        .collect();
    assert_eq!(mentioned.len(), 1, "{events:?}");
    let bob_id = bob.user_id.clone().unwrap();
    assert_eq!(mentioned[0].data["mentions"], serde_json::json!([bob_id]));
    assert_eq!(mentioned[0].data["message"]["id"], note.id.as_str());
    assert_eq!(mentioned[0].data["conversation"]["id"], conv.as_str());
    assert_eq!(seen_by(&events, &bob, "conversation.mentioned"), 1);
    assert_eq!(seen_by(&events, &cat, "conversation.mentioned"), 0);
    assert_eq!(seen_by(&events, &ann, "conversation.mentioned"), 0);
    // The note's timeline entry records the mention, like a customer note's.
    let page = h
        .store
        .timeline(&acme, &got.conversation.customer_id, None, None)
        .await
        .unwrap();
    let entry = page
        .items
        .iter()
        .find(|i| i.body.starts_with("@bob"))
        .unwrap();
    assert_eq!(entry.mentions, vec![bob_id]);
});
