//! Triage storage (issue #20; migration 0026): a hook's result stored with the message
//! in its transaction and its intent on the conversation, corrections kept with who and
//! when (and refused for unknown intents or unseen conversations), tenant intents
//! (supervisors and admins), a call's triage on its interaction. On both backends; part
//! of the `storage` test binary. The hook here is a fixed decision: the classifier is
//! `parley-ai`'s, tested there.

use std::sync::Arc;

use parley_cases::conversations::{Conversation, InboundMessage, Sender, Triage, TriageDecision};
use parley_cases::customers::RawIdentity;
use parley_cases::queues::QueueInput;
use parley_cases::sla::Priority;
use parley_cases::triage::{Entity, NewAiIntent, Sentiment, TriageCorrectionInput, TriageResult};
use parley_cases::{Error, Role};

use crate::common;
use crate::on_both;
use crate::user;

struct Fixed;

fn result(intent: &str, priority: Priority) -> TriageResult {
    TriageResult {
        intent: intent.into(),
        priority,
        noise: false,
        language: "en".into(),
        sentiment: Sentiment::Negative,
        sentiment_score: -0.6,
        entities: vec![Entity {
            kind: "invoice_number".into(),
            value: "INV-1".into(),
        }],
        confidence: 0.9,
        source: "model".into(),
    }
}

impl Triage for Fixed {
    fn triage(
        &self,
        tenant_id: &str,
        _c: Option<&Conversation>,
        m: &InboundMessage,
    ) -> TriageDecision {
        assert!(!tenant_id.is_empty());
        let r = if m.text.contains("down") {
            result("technical_support", Priority::P0)
        } else {
            result("how_to", Priority::P3)
        };
        TriageDecision {
            priority: Some(r.priority),
            result: Some(r),
            ..TriageDecision::default()
        }
    }
}

fn inbound(channel: &str, thread: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel_id: channel.into(),
        thread_key: thread.into(),
        sender: Sender {
            identity: Some(RawIdentity {
                kind: "web_chat".into(),
                value: thread.into(),
            }),
            ..Default::default()
        },
        text: text.into(),
        ..Default::default()
    }
}

on_both!(triage_results_corrections_and_intents_are_stored, |h| {
    let store = h.store.clone().with_triage(Arc::new(Fixed));
    let acme = h.tenant("acme").await;
    let other = h.tenant("globex").await;
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
    store.create_queue(&acme, q).await.unwrap();
    let ch = store.web_chat_channel(&acme).await.unwrap().id;
    let ann = user(&store, &acme, "ann@acme.test", Role::Agent).await;
    let sue = user(&store, &acme, "sue@acme.test", Role::Supervisor).await;

    // A new conversation takes triage's priority, even a low one; its intent is kept.
    let low = store
        .ingest(&acme, inbound(&ch, "v0", "where is the manual?"))
        .await
        .unwrap();
    assert_eq!(low.conversation.priority, Priority::P3);
    let got = store
        .ingest(&acme, inbound(&ch, "v1", "everything is down"))
        .await
        .unwrap();
    assert_eq!(got.conversation.priority, Priority::P0);
    assert_eq!(
        got.conversation.intent.as_deref(),
        Some("technical_support")
    );
    assert_eq!(
        got.work_item.as_ref().map(|w| w.priority),
        Some(Priority::P0)
    );
    let id = got.conversation.id.clone();
    let stored = store.conversation(&acme, &id).await.unwrap();
    assert_eq!(stored.intent.as_deref(), Some("technical_support"));
    let t = store.conversation_triage(&acme, &id).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].message_id, got.message.id);
    assert_eq!(t[0].triage, result("technical_support", Priority::P0));
    // Another tenant does not see it.
    assert!(matches!(
        store.conversation_triage(&other, &id).await,
        Err(Error::NotFound { .. })
    ));

    // A correction: who, when, before/after; the conversation follows.
    let (c, conv) = store
        .correct_triage(
            &ann,
            &id,
            TriageCorrectionInput {
                intent: "billing".into(),
                priority: Priority::P2,
                message_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(c.corrected_by, ann.user_id);
    assert_eq!(c.intent_before.as_deref(), Some("technical_support"));
    assert_eq!(c.priority_before, Some(Priority::P0));
    assert_eq!(c.text, "everything is down");
    assert_eq!(
        (conv.intent.as_deref(), conv.priority),
        (Some("billing"), Priority::P2)
    );
    let again = store.conversation(&acme, &id).await.unwrap();
    assert_eq!(
        (again.intent.as_deref(), again.priority),
        (Some("billing"), Priority::P2)
    );
    let list = store.triage_corrections(&acme, 10).await.unwrap();
    assert_eq!(list, vec![c.clone()]);
    assert!(
        store
            .triage_corrections(&other, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = store
        .correct_triage(
            &ann,
            &id,
            TriageCorrectionInput {
                intent: "solar".into(),
                priority: Priority::P2,
                message_id: None,
            },
        )
        .await;
    assert!(matches!(unknown, Err(Error::Invalid { .. })), "{unknown:?}");
    assert!(matches!(
        store
            .correct_triage(
                &other,
                &id,
                TriageCorrectionInput {
                    intent: "billing".into(),
                    priority: Priority::P2,
                    message_id: None,
                },
            )
            .await,
        Err(Error::NotFound { .. })
    ));

    // Tenant intents: supervisors and admins; not a default name; replaced by name.
    let solar = |examples: Vec<&str>| NewAiIntent {
        name: "solar".into(),
        description: "Solar panels".into(),
        examples: examples.into_iter().map(str::to_owned).collect(),
        priority: Some(Priority::P2),
    };
    assert!(matches!(
        store.save_ai_intent(&ann, solar(vec!["panels"])).await,
        Err(Error::Forbidden { .. })
    ));
    let mut billing = solar(vec!["x"]);
    billing.name = "billing".into();
    assert!(matches!(
        store.save_ai_intent(&sue, billing).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        store.save_ai_intent(&sue, solar(vec![" "])).await,
        Err(Error::Invalid { .. })
    ));
    let first = store
        .save_ai_intent(&sue, solar(vec!["my panels"]))
        .await
        .unwrap();
    let second = store
        .save_ai_intent(&sue, solar(vec!["my panels", "the inverter"]))
        .await
        .unwrap();
    assert_eq!(first.id, second.id);
    let listed = store.ai_intents(&acme).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].examples, vec!["my panels", "the inverter"]);
    assert!(store.ai_intents(&other).await.unwrap().is_empty());
    // Now the tenant's own intent is a valid correction.
    store
        .correct_triage(
            &ann,
            &id,
            TriageCorrectionInput {
                intent: "solar".into(),
                priority: Priority::P1,
                message_id: Some(got.message.id.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.ai_learning_tenants().await.unwrap(),
        vec![acme.tenant_id.clone()]
    );

    // A call's triage, on its interaction (here the message's).
    let interaction = got.message.interaction_id.clone().unwrap();
    assert_eq!(
        store.interaction_triage(&acme, &interaction).await.unwrap(),
        None
    );
    let r = result("complaint", Priority::P1);
    store
        .record_interaction_triage(&acme, &interaction, &r)
        .await
        .unwrap();
    store
        .record_interaction_triage(&acme, &interaction, &r)
        .await
        .unwrap();
    assert_eq!(
        store.interaction_triage(&acme, &interaction).await.unwrap(),
        Some(r)
    );
    assert_eq!(
        store
            .interaction_triage(&other, &interaction)
            .await
            .unwrap(),
        None
    );
});
