//! Knowledge base (issue #20 part B) on both backends: articles per tenant with
//! versions, drafts and publishing, audited and published as events; the Markdown
//! import; the revision search indexes watch; and the web-chat bot's hold on a
//! conversation — not routed while the bot answers (its answers go through the reply
//! path and the delivery outbox as `bot` messages), routed when it hands off. Part of
//! the `storage` test binary.

use parley_cases::Error;
use parley_cases::audit::AuditFilter;
use parley_cases::conversations::{AuthorKind, InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::kb::{ArticleStatus, BotAttempt, KbSettings, NewArticle};
use parley_cases::queues::QueueInput;

use crate::common;
use crate::on_both;

fn article(slug: &str, body: &str, status: Option<ArticleStatus>) -> NewArticle {
    NewArticle {
        slug: slug.into(),
        title: format!("Title of {slug}"),
        body: body.into(),
        tags: vec!["Router".into(), "router".into(), "wifi".into()],
        status,
    }
}

fn visitor_message(channel: &str, visitor: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel_id: channel.into(),
        thread_key: visitor.into(),
        sender: Sender {
            customer_id: None,
            identity: Some(RawIdentity {
                kind: "web_chat".into(),
                value: visitor.into(),
            }),
            name: Some("Visitor".into()),
        },
        text: text.into(),
        ..Default::default()
    }
}

on_both!(
    articles_are_versioned_published_and_audited_per_tenant,
    |h| {
        let a = h.tenant("acme").await;
        let other = h.tenant("globex").await;
        let mut events = h.store.subscribe();
        let rev0 = h.store.kb_revision(&a).await.unwrap();
        let reset = h
            .store
            .create_kb_article(
                &a,
                article("Router-Reset", "Hold **Reset** for 15 s.", None),
            )
            .await
            .unwrap();
        // Published by default; slug lowercased, tags normalised and deduplicated.
        assert_eq!(reset.slug, "router-reset");
        assert_eq!(reset.status, ArticleStatus::Published);
        assert_eq!(reset.tags, ["router", "wifi"]);
        assert_eq!(events.recv().await.unwrap().kind, "kb_article.created");
        let rev1 = h.store.kb_revision(&a).await.unwrap();
        assert_ne!(rev0, rev1);
        // A draft is not published; the same slug is a conflict in the tenant only.
        let draft = h
            .store
            .create_kb_article(
                &a,
                article("dns", "Use 198.51.100.53.", Some(ArticleStatus::Draft)),
            )
            .await
            .unwrap();
        assert_eq!(draft.status, ArticleStatus::Draft);
        assert!(matches!(
            h.store
                .create_kb_article(&a, article("dns", "again", None))
                .await,
            Err(Error::Conflict { .. })
        ));
        h.store
            .create_kb_article(&other, article("dns", "Theirs", None))
            .await
            .unwrap();
        let published = h.store.published_kb_articles(&a).await.unwrap();
        assert_eq!(
            published
                .iter()
                .map(|p| p.slug.as_str())
                .collect::<Vec<_>>(),
            ["router-reset"]
        );
        // Saving makes a new draft version; customers keep the published one.
        let v2 = h
            .store
            .update_kb_article(
                &a,
                "router-reset",
                article("router-reset", "Hold Reset for 20 s.", None),
            )
            .await
            .unwrap();
        assert_eq!((v2.version, v2.published_version), (2, Some(1)));
        assert_eq!(v2.status, ArticleStatus::Changed);
        let p = h.store.published_kb_articles(&a).await.unwrap();
        assert_eq!(p[0].body, "Hold **Reset** for 15 s.");
        assert_ne!(h.store.kb_revision(&a).await.unwrap(), rev1);
        // Publishing the latest, then rolling back to version 1.
        let pub2 = h
            .store
            .publish_kb_article(&a, "router-reset", None)
            .await
            .unwrap();
        assert_eq!(pub2.status, ArticleStatus::Published);
        assert_eq!(
            h.store.published_kb_articles(&a).await.unwrap()[0].version,
            2
        );
        h.store
            .publish_kb_article(&a, "router-reset", Some(1))
            .await
            .unwrap();
        assert_eq!(
            h.store.published_kb_articles(&a).await.unwrap()[0].body,
            "Hold **Reset** for 15 s."
        );
        assert!(matches!(
            h.store
                .publish_kb_article(&a, "router-reset", Some(9))
                .await,
            Err(Error::Invalid { .. })
        ));
        // The slug is an address: it does not move.
        assert!(matches!(
            h.store
                .update_kb_article(&a, "router-reset", article("other", "x", None))
                .await,
            Err(Error::Invalid { .. })
        ));
        let versions = h
            .store
            .kb_article_versions(&a, "router-reset")
            .await
            .unwrap();
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            [2, 1]
        );
        // Unpublished: gone for customers, kept for editors.
        h.store
            .unpublish_kb_article(&a, "router-reset")
            .await
            .unwrap();
        assert!(h.store.published_kb_articles(&a).await.unwrap().is_empty());
        assert_eq!(h.store.kb_articles(&a).await.unwrap().len(), 2);
        // Another tenant's article does not exist for them.
        assert!(matches!(
            h.store.kb_article(&other, "router-reset").await,
            Err(Error::NotFound { .. })
        ));
        // Bad input stores nothing.
        for bad in [
            article("", "x", None),
            article("ok", "   ", None),
            NewArticle {
                tags: vec!["no spaces".into()],
                ..article("ok", "x", None)
            },
        ] {
            assert!(matches!(
                h.store.create_kb_article(&a, bad).await,
                Err(Error::Invalid { .. })
            ));
        }
        let audit = h
            .store
            .audit_log(&a, &AuditFilter::default())
            .await
            .unwrap()
            .items;
        let actions: Vec<&str> = audit
            .iter()
            .filter(|r| r.action.starts_with("kb_article."))
            .map(|r| r.action.as_str())
            .collect();
        assert_eq!(actions.len(), 6, "{actions:?}");
    }
);

on_both!(a_folder_of_markdown_is_imported_once, |h| {
    let a = h.tenant("acme").await;
    let files: Vec<(String, String)> = parley_cases::kb::DEMO_ARTICLES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    let first = h.store.import_kb_articles(&a, &files).await.unwrap();
    assert_eq!(first.len(), 12);
    assert!(first.iter().all(|x| x.status == ArticleStatus::Published));
    let rev = h.store.kb_revision(&a).await.unwrap();
    // The same files again change nothing.
    h.store.import_kb_articles(&a, &files).await.unwrap();
    assert_eq!(h.store.kb_revision(&a).await.unwrap(), rev);
    // A bad file is refused by name, before anything is stored.
    let b = h.tenant("b").await;
    let bad = vec![
        files[0].clone(),
        ("broken.md".to_owned(), "no front matter".to_owned()),
    ];
    match h.store.import_kb_articles(&b, &bad).await {
        Err(Error::Invalid { field, .. }) => assert!(field.starts_with("broken.md"), "{field}"),
        other => panic!("{other:?}"),
    }
    assert!(h.store.kb_articles(&b).await.unwrap().is_empty());
});

on_both!(the_bot_holds_a_chat_until_it_hands_off, |h| {
    let a = h.tenant("acme").await;
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
    h.store.create_queue(&a, q).await.unwrap();
    let ch = h.store.web_chat_channel(&a).await.unwrap().id;
    // Bot off (the default): a chat is routed at once.
    assert!(!h.store.kb_settings(&a).await.unwrap().bot_enabled);
    let routed = h
        .store
        .ingest(&a, visitor_message(&ch, "v-off", "hello"))
        .await
        .unwrap();
    assert!(routed.work_item.is_some());
    // Bot on: the chat waits for the bot, not routed.
    h.store
        .set_kb_settings(&a, KbSettings { bot_enabled: true })
        .await
        .unwrap();
    let held = h
        .store
        .ingest(
            &a,
            visitor_message(&ch, "v-bot", "How do I reset my router?"),
        )
        .await
        .unwrap();
    assert!(held.work_item.is_none());
    let conv = held.conversation.id.clone();
    // The bot's answer: a `bot` message queued in the delivery outbox, its attempt kept.
    let m = h
        .store
        .bot_reply(
            &a,
            &conv,
            "Hold Reset for 15 s.",
            Some(BotAttempt {
                question: "How do I reset my router?".into(),
                slugs: vec!["router-reset".into()],
                at: h.store.now(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(m.author, AuthorKind::Bot);
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(h.store.due_deliveries(10).await.unwrap().len(), 1);
    let state = h.store.conversation_bot(&a, &conv).await.unwrap().unwrap();
    assert_eq!(state.state, "active");
    assert_eq!(state.tried[0].slugs, ["router-reset"]);
    // Still held on the next message.
    let again = h
        .store
        .ingest(&a, visitor_message(&ch, "v-bot", "that didn't help"))
        .await
        .unwrap();
    assert!(again.work_item.is_none());
    // Hand-off: routed now, once; the customer is still waiting for a person.
    let mut events = h.store.subscribe();
    let item = h
        .store
        .bot_handoff(&a, &conv, "the customer asked for a person")
        .await
        .unwrap()
        .expect("routed");
    loop {
        let e = events.recv().await.unwrap();
        if e.kind == "work_item.created" {
            assert_eq!(e.data["id"], item.id.as_str());
            break;
        }
    }
    assert!(
        h.store
            .bot_handoff(&a, &conv, "again")
            .await
            .unwrap()
            .is_none()
    );
    let state = h.store.conversation_bot(&a, &conv).await.unwrap().unwrap();
    assert_eq!(state.state, "handed_off");
    assert_eq!(
        state.handoff_reason.as_deref(),
        Some("the customer asked for a person")
    );
    assert_eq!(state.tried.len(), 1);
    let c = h.store.conversation(&a, &conv).await.unwrap();
    assert_eq!(c.work_item_id.as_deref(), Some(item.id.as_str()));
    assert!(c.waiting_since.is_some());
    // After the hand-off the bot no longer holds it: nothing else to route, no new item.
    let later = h
        .store
        .ingest(&a, visitor_message(&ch, "v-bot", "hello?"))
        .await
        .unwrap();
    assert!(later.work_item.is_none());
    assert_eq!(
        later.conversation.work_item_id.as_deref(),
        Some(item.id.as_str())
    );
    let audit = h
        .store
        .audit_log(&a, &AuditFilter::default())
        .await
        .unwrap()
        .items;
    assert!(audit.iter().any(|r| r.action == "conversation.bot_handoff"));
});
