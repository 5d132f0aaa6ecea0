//! Conversations (issue #17): the one ingestion path (identity, open/reopen,
//! idempotency, triage, routing as a work item, timeline and search), agents' replies
//! through the delivery outbox, the customer's view, status/assign/CSAT/case links,
//! who sees what, and bad input that stores nothing. On both backends; part of the
//! `storage` test binary.

use parley_cases::cases::NewCase;
use parley_cases::conversations::{
    AssigneeFilter, AuthorKind, ChannelKind, ConversationFilter, ConversationStatus,
    InboundMessage, MessageStatus, NewAttachment, NewChannel, NewReply, Sender,
};
use parley_cases::customers::RawIdentity;
use parley_cases::queues::QueueInput;
use parley_cases::routing::WorkKind;
use parley_cases::sla::Priority;
use parley_cases::timeline::Direction;
use parley_cases::work_items::WorkItemState;
use parley_cases::{Actor, Error, Role, Store};

use crate::common;
use crate::on_both;
use crate::user;

fn visitor(id: &str) -> Sender {
    Sender {
        customer_id: None,
        identity: Some(RawIdentity {
            kind: "web_chat".into(),
            value: id.into(),
        }),
        name: Some(format!("Visitor {id}")),
    }
}

fn inbound(channel: &str, thread: &str, text: &str, client_id: Option<&str>) -> InboundMessage {
    InboundMessage {
        channel_id: channel.into(),
        thread_key: thread.into(),
        sender: visitor(thread),
        text: text.into(),
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

async fn chat_channel(s: &Store, admin: &Actor) -> String {
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
    s.create_queue(admin, q).await.unwrap();
    s.web_chat_channel(admin).await.unwrap().id
}

async fn count(s: &Store, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(s.pool())
        .await
        .unwrap();
    n
}

on_both!(ingestion_opens_routes_dedupes_replies_and_reopens, |h| {
    let acme = h.tenant("acme").await;
    let ch = chat_channel(&h.store, &acme).await;
    // The default channel is made once, routed through the queue named "chat".
    let again = h.store.web_chat_channel(&acme).await.unwrap();
    assert_eq!(again.id, ch);
    assert_eq!(again.kind, ChannelKind::WebChat);
    assert!(again.queue_id.is_some());
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;

    // First message: a new customer for the visitor, the conversation opened, routed
    // as a chat work item, on the timeline; triage raised the priority and tagged it.
    let mut events = h.store.subscribe();
    let first = h
        .store
        .ingest(
            &acme,
            inbound(&ch, "v1", "Urgent: my parcel never arrived", Some("c1")),
        )
        .await
        .unwrap();
    assert!(first.opened && !first.duplicate && !first.reopened);
    assert_eq!(first.message.seq, 1);
    assert_eq!(first.message.author, AuthorKind::Customer);
    assert_eq!(first.message.status, MessageStatus::Received);
    assert_eq!(first.conversation.status, ConversationStatus::Open);
    assert_eq!(first.conversation.priority, Priority::P1);
    assert_eq!(first.conversation.tags, vec!["urgent"]);
    assert_eq!(
        first.conversation.waiting_since,
        Some(first.message.created_at)
    );
    let item = first.work_item.clone().expect("routed");
    assert_eq!(
        (item.kind, item.state),
        (WorkKind::Chat, WorkItemState::Queued)
    );
    assert_eq!(item.priority, Priority::P1);
    assert_eq!(
        first.conversation.work_item_id.as_deref(),
        Some(item.id.as_str())
    );
    let customer = h
        .store
        .lookup_customer(&acme, "web_chat", "v1")
        .await
        .unwrap();
    assert_eq!(customer.id, first.conversation.customer_id);
    assert_eq!(customer.name, "Visitor v1");
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(e.kind);
    }
    for k in [
        "customer.created",
        "conversation.opened",
        "conversation.message",
        "conversation.visitor_message",
        "timeline.appended",
        "work_item.created",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let tl = h
        .store
        .timeline(&acme, &customer.id, None, None)
        .await
        .unwrap();
    assert_eq!(tl.items.len(), 1);
    assert_eq!(tl.items[0].body, "Urgent: my parcel never arrived");
    assert_eq!(Some(tl.items[0].id.clone()), first.message.interaction_id);
    let found = h
        .store
        .search_interactions(&acme, "parcel", None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    // The same client id again: the same message, nothing new.
    let n_messages = count(&h.store, "messages").await;
    let dup = h
        .store
        .ingest(
            &acme,
            inbound(&ch, "v1", "Urgent: my parcel never arrived", Some("c1")),
        )
        .await
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.message.id, first.message.id);
    assert_eq!(count(&h.store, "messages").await, n_messages);
    // A provider id is the key per channel.
    let mut p = inbound(&ch, "v1", "second", None);
    p.provider_message_id = Some("prov-1".into());
    let second = h.store.ingest(&acme, p.clone()).await.unwrap();
    assert_eq!(second.message.seq, 2);
    assert!(second.work_item.is_none(), "already routed");
    assert_eq!(
        second.conversation.waiting_since,
        first.conversation.waiting_since
    );
    let again = h.store.ingest(&acme, p).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.id, second.message.id);

    // The router assigns the work item to Ann: the conversation is hers.
    let sys = Actor::system(&acme.tenant_id);
    let ann_id = ann.user_id.clone().unwrap();
    h.store
        .work_item_progress(&sys, &item.id, WorkItemState::Assigned, Some(&ann_id))
        .await
        .unwrap();
    let conv = h
        .store
        .conversation(&ann, &first.conversation.id)
        .await
        .unwrap();
    assert_eq!(conv.assignee_id.as_deref(), Some(ann_id.as_str()));

    // Ann replies (queued, in the delivery outbox) and writes a note (never sent).
    let reply = h
        .store
        .reply(
            &ann,
            &conv.id,
            NewReply {
                text: "On its way <b>today</b>".into(),
                client_id: Some("a1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((reply.seq, reply.status), (3, MessageStatus::Queued));
    assert_eq!(reply.direction, Direction::Outbound);
    assert_eq!(reply.html, "On its way &lt;b&gt;today&lt;/b&gt;");
    let same = h
        .store
        .reply(
            &ann,
            &conv.id,
            NewReply {
                text: "On its way <b>today</b>".into(),
                client_id: Some("a1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same.id, reply.id);
    let note = h
        .store
        .reply(
            &ann,
            &conv.id,
            NewReply {
                text: "customer sounds upset".into(),
                private: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((note.status, note.private), (MessageStatus::Note, true));
    let conv = h.store.conversation(&ann, &conv.id).await.unwrap();
    assert_eq!(conv.waiting_since, None, "answered");
    assert_eq!(conv.last_seq, 4);

    // The customer sees their messages, not the queued reply nor the note.
    let seen = h
        .store
        .visitor_messages(&sys, &conv.id, 0, None)
        .await
        .unwrap();
    assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    // Agents see everything, after a seq.
    let all = h
        .store
        .conversation_messages(&ann, &conv.id, 1, None)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3, 4]);

    // Delivery: only the reply is due; once sent it is visible, a second send is
    // refused, and its statuses are recorded.
    let due = h.store.due_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, reply.id);
    assert_eq!(due[0].thread_key, "v1");
    assert!(
        h.store
            .delivery_sent(&acme.tenant_id, &reply.id, None)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .delivery_sent(&acme.tenant_id, &reply.id, None)
            .await
            .unwrap()
    );
    assert!(h.store.due_deliveries(10).await.unwrap().is_empty());
    let seen = h
        .store
        .visitor_messages(&sys, &conv.id, 2, None)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].seq, seen[0].author), (3, AuthorKind::Agent));
    h.store
        .message_status(&sys, &reply.id, MessageStatus::Read)
        .await
        .unwrap();
    let back = h
        .store
        .message_status(&sys, &reply.id, MessageStatus::Delivered)
        .await
        .unwrap();
    assert_eq!(back.status, MessageStatus::Read, "never backwards");
    let statuses: Vec<MessageStatus> = h
        .store
        .message_status_events(&ann, &reply.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Queued,
            MessageStatus::Sent,
            MessageStatus::Read
        ]
    );

    // CSAT only once resolved; a resolved conversation is reopened by the customer,
    // unassigned and routed again.
    assert!(matches!(
        h.store.set_conversation_csat(&sys, &conv.id, 5, None).await,
        Err(Error::InvalidTransition { .. })
    ));
    let resolved = h
        .store
        .set_conversation_status(&ann, &conv.id, ConversationStatus::Resolved, None)
        .await
        .unwrap();
    assert!(resolved.resolved_at.is_some());
    let rated = h
        .store
        .set_conversation_csat(&sys, &conv.id, 4, Some("quick"))
        .await
        .unwrap();
    assert_eq!(rated.csat.as_ref().map(|c| c.score), Some(4));
    assert!(
        h.store
            .set_conversation_csat(&sys, &conv.id, 6, None)
            .await
            .is_err()
    );
    h.store
        .work_item_progress(&ann, &item.id, WorkItemState::Completed, None)
        .await
        .unwrap();
    let back = h
        .store
        .ingest(&acme, inbound(&ch, "v1", "one more thing", None))
        .await
        .unwrap();
    assert!(back.reopened);
    assert_eq!(back.conversation.status, ConversationStatus::Open);
    assert_eq!(back.conversation.assignee_id, None);
    assert!(back.work_item.is_some());
    assert_ne!(back.work_item.unwrap().id, item.id);
    assert_eq!(back.conversation.csat.map(|c| c.score), Some(4));
    // Closed is final for agents; a customer message reopens it.
    h.store
        .set_conversation_status(&sys, &conv.id, ConversationStatus::Closed, None)
        .await
        .unwrap();
    assert!(matches!(
        h.store
            .set_conversation_status(&sys, &conv.id, ConversationStatus::Open, None)
            .await,
        Err(Error::InvalidTransition { .. })
    ));
    assert!(
        h.store
            .ingest(&acme, inbound(&ch, "v1", "hello?", None))
            .await
            .unwrap()
            .reopened
    );
    // Snoozed needs a future time, and wakes up.
    assert!(
        h.store
            .set_conversation_status(&sys, &conv.id, ConversationStatus::Snoozed, None)
            .await
            .is_err()
    );
    h.store
        .set_conversation_status(
            &sys,
            &conv.id,
            ConversationStatus::Snoozed,
            Some(h.store.now().plus_minutes(30)),
        )
        .await
        .unwrap();
    assert_eq!(h.store.wake_snoozed_conversations().await.unwrap(), 0);
    h.clock.advance_minutes(31);
    assert_eq!(h.store.wake_snoozed_conversations().await.unwrap(), 1);
    assert_eq!(
        h.store.conversation(&sys, &conv.id).await.unwrap().status,
        ConversationStatus::Open
    );

    // A case holds the conversation.
    let case = h
        .store
        .create_case(
            &sys,
            NewCase {
                title: "Lost parcel".into(),
                customer_id: Some(customer.id.clone()),
                case_type_id: None,
                priority: None,
                assignee_id: None,
                team_id: None,
                custom_fields: Default::default(),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let linked = h
        .store
        .link_conversation_case(&sys, &conv.id, &case.id)
        .await
        .unwrap();
    assert_eq!(linked.case_ids, vec![case.id.clone()]);
    let linked = h
        .store
        .link_conversation_case(&sys, &conv.id, &case.id)
        .await
        .unwrap();
    assert_eq!(linked.case_ids.len(), 1);
});

on_both!(agents_see_theirs_and_unassigned_in_their_teams, |h| {
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let ch = chat_channel(&h.store, &acme).await;
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    let bob = user(&h.store, &acme, "bob@acme.test", Role::Agent).await;
    let sup = user(&h.store, &acme, "sue@acme.test", Role::Supervisor).await;
    let team = h.store.create_team(&acme, "Billing").await.unwrap();
    h.store
        .set_team_member(&acme, &team.id, bob.user_id.as_ref().unwrap(), true)
        .await
        .unwrap();
    let billing = h
        .store
        .create_channel(
            &acme,
            NewChannel {
                kind: "web_chat".into(),
                name: "Billing chat".into(),
                queue: Some("chat".into()),
                team_id: Some(team.id.clone()),
                settings: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        h.store
            .create_channel(
                &ann,
                NewChannel {
                    kind: "web_chat".into(),
                    name: "x".into(),
                    queue: None,
                    team_id: None,
                    settings: None,
                },
            )
            .await,
        Err(Error::Forbidden { .. })
    ));

    let a = h
        .store
        .ingest(&acme, inbound(&ch, "va", "a", None))
        .await
        .unwrap();
    h.clock.advance_minutes(1);
    let mut events = h.store.subscribe();
    let b = h
        .store
        .ingest(&acme, inbound(&billing.id, "vb", "b", None))
        .await
        .unwrap();
    // Its events go to the team (and supervisors), not to agents who cannot open it.
    let mut told = 0;
    while let Ok(e) = events.try_recv() {
        if e.kind.starts_with("conversation.") && e.kind != "conversation.visitor_message" {
            assert!(!e.visible_to_user(&ann), "{}", e.kind);
            assert!(
                e.visible_to_user(&bob) && e.visible_to_user(&sup),
                "{}",
                e.kind
            );
            told += 1;
        }
    }
    assert_eq!(told, 2, "opened + message");
    h.clock.advance_minutes(1);
    let c = h
        .store
        .ingest(&acme, inbound(&ch, "vc", "c", None))
        .await
        .unwrap();
    let (a, b, c) = (a.conversation.id, b.conversation.id, c.conversation.id);
    // Agents take for themselves only.
    assert!(matches!(
        h.store
            .assign_conversation(&ann, &c, bob.user_id.as_deref())
            .await,
        Err(Error::Forbidden { .. })
    ));
    h.store
        .assign_conversation(&ann, &c, ann.user_id.as_deref())
        .await
        .unwrap();
    assert!(matches!(
        h.store.assign_conversation(&sup, &a, Some("nobody")).await,
        Err(Error::NotFound { .. })
    ));

    let ids = |p: parley_cases::Page<parley_cases::conversations::Conversation>| {
        p.items.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let all = ConversationFilter::default();
    // Ann: her own and the unassigned one without a team; not Billing's.
    assert_eq!(
        ids(h.store.list_conversations(&ann, &all).await.unwrap()),
        vec![c.clone(), a.clone()]
    );
    // Bob: Billing's and the one without a team; not Ann's.
    assert_eq!(
        ids(h.store.list_conversations(&bob, &all).await.unwrap()),
        vec![b.clone(), a.clone()]
    );
    assert!(matches!(
        h.store.conversation(&bob, &c).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.store
            .reply(
                &bob,
                &c,
                NewReply {
                    text: "hi".into(),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::NotFound { .. })
    ));
    // Supervisors see everything; filters; pages.
    assert_eq!(
        ids(h.store.list_conversations(&sup, &all).await.unwrap()),
        vec![c.clone(), b.clone(), a.clone()]
    );
    let mine = ConversationFilter {
        assignee: Some(AssigneeFilter::Me),
        ..Default::default()
    };
    assert_eq!(
        ids(h.store.list_conversations(&ann, &mine).await.unwrap()),
        vec![c.clone()]
    );
    let unassigned = ConversationFilter {
        assignee: Some(AssigneeFilter::Unassigned),
        ..Default::default()
    };
    assert_eq!(
        ids(h.store.list_conversations(&sup, &unassigned).await.unwrap()),
        vec![b.clone(), a.clone()]
    );
    let by_team = ConversationFilter {
        team_id: Some(team.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        ids(h.store.list_conversations(&sup, &by_team).await.unwrap()),
        vec![b.clone()]
    );
    h.store
        .set_conversation_status(&sup, &a, ConversationStatus::Pending, None)
        .await
        .unwrap();
    let pending = ConversationFilter {
        status: Some(ConversationStatus::Pending),
        channel: Some(ChannelKind::WebChat),
        ..Default::default()
    };
    assert_eq!(
        ids(h.store.list_conversations(&sup, &pending).await.unwrap()),
        vec![a.clone()]
    );
    let email = ConversationFilter {
        channel: Some(ChannelKind::Email),
        ..Default::default()
    };
    assert!(
        h.store
            .list_conversations(&sup, &email)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let page1 = h
        .store
        .list_conversations(
            &sup,
            &ConversationFilter {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.items.len(), 2);
    let page2 = h
        .store
        .list_conversations(
            &sup,
            &ConversationFilter {
                limit: Some(2),
                cursor: page1.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(page2), vec![a.clone()]);
    // Another tenant sees nothing of it.
    assert!(matches!(
        h.store.conversation(&other, &a).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        h.store
            .list_conversations(&other, &all)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        h.store.ingest(&other, inbound(&ch, "vx", "x", None)).await,
        Err(Error::NotFound { entity: "channel" })
    ));
});

on_both!(bad_input_stores_nothing_and_failed_deliveries_show, |h| {
    let acme = h.tenant("acme").await;
    let ch = chat_channel(&h.store, &acme).await;
    let (conv, created) = h
        .store
        .find_or_open_conversation(&acme, &ch, "v9", &visitor("v9"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(conv.last_seq, 0);
    let (same, created) = h
        .store
        .find_or_open_conversation(&acme, &ch, "v9", &visitor("v9"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same.id, conv.id);
    let before = (
        count(&h.store, "messages").await,
        count(&h.store, "interactions").await,
    );
    let too_long = "x".repeat(parley_cases::conversations::MAX_TEXT_BYTES + 1);
    let mut bad_att = inbound(&ch, "v9", "see file", None);
    bad_att.attachments = vec![NewAttachment {
        name: "a.png".into(),
        content_type: "image/png".into(),
        size: 10,
        sha256: "not-a-hash".into(),
    }];
    let mut no_sender = inbound(&ch, "v10", "hi", None);
    no_sender.sender = Sender::default();
    for (bad, field) in [
        (inbound(&ch, "v9", "   ", None), "text"),
        (inbound(&ch, "v9", &too_long, None), "text"),
        (inbound(&ch, "", "hi", None), "thread_key"),
        (bad_att, "attachments[0].sha256"),
        (no_sender, "sender"),
    ] {
        match h.store.ingest(&acme, bad).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(
        (
            count(&h.store, "messages").await,
            count(&h.store, "interactions").await
        ),
        before
    );
    // Script in a message is kept as text; its HTML is escaped.
    let xss = h
        .store
        .ingest(
            &acme,
            inbound(&ch, "v9", "<img src=x onerror=alert(1)>", None),
        )
        .await
        .unwrap();
    assert_eq!(xss.message.text, "<img src=x onerror=alert(1)>");
    assert_eq!(xss.message.html, "&lt;img src=x onerror=alert(1)&gt;");
    // Attachments are kept with the message.
    let mut with_file = inbound(&ch, "v9", "", None);
    with_file.attachments = vec![NewAttachment {
        name: "photo.png".into(),
        content_type: "image/png".into(),
        size: 1234,
        sha256: "ab".repeat(32),
    }];
    let f = h.store.ingest(&acme, with_file).await.unwrap();
    let seen = h
        .store
        .visitor_messages(&acme, &conv.id, xss.message.seq, None)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].attachments[0].name, "photo.png");
    assert_eq!(f.message.attachments[0].size, 1234);

    // A reply that cannot be delivered is retried, then failed with its reason.
    let r = h
        .store
        .reply(
            &acme,
            &conv.id,
            NewReply {
                text: "hello".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.author, AuthorKind::System);
    let retry = h.store.now().plus_minutes(1);
    h.store
        .delivery_failed(&acme.tenant_id, &r.id, "timeout", Some(retry))
        .await
        .unwrap();
    assert!(h.store.due_deliveries(10).await.unwrap().is_empty());
    h.clock.advance_minutes(1);
    let due = h.store.due_deliveries(10).await.unwrap();
    assert_eq!(due[0].attempts, 1);
    h.store
        .delivery_failed(&acme.tenant_id, &r.id, "mailbox full", None)
        .await
        .unwrap();
    let msgs = h
        .store
        .conversation_messages(&acme, &conv.id, r.seq - 1, None)
        .await
        .unwrap();
    assert_eq!(msgs[0].status, MessageStatus::Failed);
    assert_eq!(msgs[0].failure_reason.as_deref(), Some("mailbox full"));
    assert!(h.store.due_deliveries(10).await.unwrap().is_empty());
    assert!(matches!(
        h.store
            .reply(
                &acme,
                &conv.id,
                NewReply {
                    text: "".into(),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        h.store
            .reply(
                &acme,
                &conv.id,
                NewReply {
                    text: "x".into(),
                    reply_to: Some("nope".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Invalid { .. })
    ));
});

on_both!(
    attachments_are_checked_stored_by_hash_and_erased_with_the_customer,
    |h| {
        let acme = h.tenant("acme").await;
        let files = std::env::temp_dir().join(format!("parley-att-{}", uuid::Uuid::new_v4()));
        let store = h.store.clone().with_files_dir(&files);
        let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
        store.create_queue(&acme, q).await.unwrap();
        let ch = store
            .create_channel(
                &acme,
                NewChannel {
                    kind: "web_chat".into(),
                    name: "Small files".into(),
                    queue: Some("chat".into()),
                    team_id: None,
                    settings: Some(serde_json::json!({"max_attachment_bytes": 64})),
                },
            )
            .await
            .unwrap();
        let png = b"\x89PNG\r\n\x1a\n-a-tiny-picture";
        // Too large, a refused type, content that is not its type: nothing stored.
        assert!(matches!(
            store
                .store_attachment(&acme, &ch.id, "big.png", "image/png", &[0x89; 65])
                .await,
            Err(Error::TooLarge { limit: 64, .. })
        ));
        assert!(matches!(
            store
                .store_attachment(&acme, &ch.id, "a.zip", "application/zip", b"PK")
                .await,
            Err(Error::UnsupportedType { .. })
        ));
        assert!(matches!(
            store
                .store_attachment(
                    &acme,
                    &ch.id,
                    "x.png",
                    "image/png",
                    b"<svg onload=alert(1)>"
                )
                .await,
            Err(Error::UnsupportedType { .. })
        ));
        assert!(!files.exists());
        let att = store
            .store_attachment(&acme, &ch.id, "../../photo.png", "image/png; q=1", png)
            .await
            .unwrap();
        assert_eq!(
            (att.name.as_str(), att.content_type.as_str(), att.size),
            ("photo.png", "image/png", png.len() as i64)
        );
        let path = files.join(parley_cases::conversations::attachment_location(
            &acme.tenant_id,
            &att.sha256,
        ));
        assert_eq!(std::fs::read(&path).unwrap(), png);
        let mut m = inbound(&ch.id, "v1", "my screen", None);
        m.attachments = vec![att];
        let got = store.ingest(&acme, m).await.unwrap();
        let conv = got.conversation.id.clone();
        let att_id = got.message.attachments[0].id.clone();
        let (meta, p) = store
            .attachment_for_download(&acme, &conv, &att_id)
            .await
            .unwrap();
        assert_eq!((meta.name.as_str(), p), ("photo.png", path.clone()));
        assert!(
            store
                .visitor_attachment(&acme, &conv, &att_id)
                .await
                .is_ok()
        );
        let agent = user(&store, &acme, "ann@acme.test", Role::Agent).await;
        let other = h.tenant("other").await;
        assert!(matches!(
            store.attachment_for_download(&other, &conv, &att_id).await,
            Err(Error::NotFound { .. })
        ));
        // The agent's reply waits for delivery when the customer is erased.
        store
            .assign_conversation(&agent, &conv, agent.user_id.as_deref())
            .await
            .unwrap();
        let r = store
            .reply(
                &agent,
                &conv,
                NewReply {
                    text: "Thanks Ann".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

        let receipt = store
            .erase_customer(&acme, &got.conversation.customer_id)
            .await
            .unwrap();
        assert_eq!(receipt.messages, 2);
        assert!(receipt.files >= 1);
        assert!(!path.exists(), "the file is deleted");
        let sys = Actor::system(&acme.tenant_id);
        let after = store.conversation(&sys, &conv).await.unwrap();
        assert!(after.thread_key.starts_with("[erased]"));
        let msgs = store
            .conversation_messages(&sys, &conv, 0, None)
            .await
            .unwrap();
        assert!(
            msgs.iter()
                .all(|m| m.text.is_empty() && m.attachments.is_empty())
        );
        assert_eq!(
            msgs.iter().find(|m| m.id == r.id).unwrap().status,
            MessageStatus::Failed
        );
        assert!(
            store.due_deliveries(10).await.unwrap().is_empty(),
            "never sent to an erased customer"
        );
        assert!(
            store
                .search_interactions(&sys, "screen", None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.attachment_for_download(&sys, &conv, &att_id).await,
            Err(Error::NotFound { .. })
        ));
        let _ = std::fs::remove_dir_all(&files);
    }
);
