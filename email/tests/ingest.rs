//! The email channel against the store (issue #18), on SQLite and PostgreSQL, in
//! virtual time: threading in the pinned order (In-Reply-To, References right to left,
//! the reply token, a `[#1234]` case reference, same sender + subject within the
//! window; a reply-all by someone else does not join a customer's conversation), bounces
//! marking the outbound message failed, loops and repeats dropped, malformed mail stored
//! raw and flagged, automatic mail tagged.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../cases/tests/common/mod.rs"]
mod common;

use parley_cases::conversations::email::ThreadRule;
use parley_cases::conversations::{MessageStatus, NewChannel, NewReply};
use parley_cases::{Actor, Store};
use parley_email::EmailConfig;
use parley_email::channel::{Outcome, ingest_raw};
use serde_json::json;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

async fn channel(s: &Store, a: &Actor) -> (parley_cases::conversations::Channel, EmailConfig) {
    let settings = json!({"address": "support@example.com", "thread_window_minutes": 60});
    let cfg = EmailConfig::from_json(&settings).unwrap();
    let nc: NewChannel = serde_json::from_value(json!({
        "kind": "email", "name": "Support mail", "settings": settings
    }))
    .unwrap();
    (s.create_channel(a, nc).await.unwrap(), cfg)
}

fn mail(from: &str, to: &str, id: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn stored(o: &Outcome) -> (String, String, Option<ThreadRule>, bool) {
    match o {
        Outcome::Stored {
            conversation_id,
            message_id,
            rule,
            duplicate,
        } => (
            conversation_id.clone(),
            message_id.clone(),
            *rule,
            *duplicate,
        ),
        other => panic!("not stored: {other:?}"),
    }
}

on_both!(threading_follows_the_pinned_order, |h| {
    let a = h.tenant("acme").await;
    let (ch, cfg) = channel(&h.store, &a).await;
    let t = a.tenant_id.clone();
    let s = &h.store;
    let alice = "Alice <alice@customer.example>";
    let sup = "support@example.com";

    // A first message opens a conversation.
    let first = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(alice, sup, "a1@c", "Order 42 broken", "", "It broke."),
    )
    .await
    .unwrap();
    let (conv, _, rule, dup) = stored(&first);
    assert_eq!((rule, dup), (None, false));
    // The same message again (IMAP re-read after a crash): nothing new.
    let again = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(alice, sup, "a1@c", "Order 42 broken", "", "It broke."),
    )
    .await
    .unwrap();
    assert!(stored(&again).3);

    // The agent answers; the reply is recorded with its Message-ID as the adapter does.
    let reply = s
        .reply(
            &a,
            &conv,
            NewReply {
                text: "We are on it".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let th = s.email_thread(&a, &conv).await.unwrap().unwrap();
    assert_eq!(th.customer_address, "alice@customer.example");
    s.record_email(
        &a,
        &ch.id,
        &conv,
        &reply.id,
        &parley_cases::conversations::email::EmailRecord {
            header_message_id: "r1@example.com".into(),
            outbound: true,
            from: Some(sup.into()),
            to: vec!["alice@customer.example".into()],
            ..Default::default()
        },
        &th.subject,
    )
    .await
    .unwrap();

    // 1. In-Reply-To (another subject: the header wins).
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(
            alice,
            sup,
            "a2@c",
            "thanks",
            "In-Reply-To: <r1@example.com>\r\n",
            "ok",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (stored(&o).0, stored(&o).2),
        (conv.clone(), Some(ThreadRule::InReplyTo))
    );
    // 2. References only, right to left (the unknown newest id is skipped).
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(
            alice,
            sup,
            "a3@c",
            "other",
            "References: <r1@example.com> <unknown@x>\r\n",
            "more",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (stored(&o).0, stored(&o).2),
        (conv.clone(), Some(ThreadRule::References))
    );
    // 3. Only the reply token (a client that drops the headers), even from a new address.
    let token_to = format!("reply+{}@example.com", th.reply_token);
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(
            "Alice <alice@home.example>",
            &token_to,
            "a4@c",
            "new topic",
            "",
            "from home",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (stored(&o).0, stored(&o).2),
        (conv.clone(), Some(ThreadRule::ReplyToken))
    );
    // 5. Same sender, same normalised subject, within the window.
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(alice, sup, "a5@c", "RE: Fwd: order 42  BROKEN", "", "again"),
    )
    .await
    .unwrap();
    assert_eq!(
        (stored(&o).0, stored(&o).2),
        (conv.clone(), Some(ThreadRule::SenderSubject))
    );
    // …but not after the window (60 minutes here) has passed.
    h.clock.advance_minutes(61);
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(alice, sup, "a6@c", "Order 42 broken", "", "a week later"),
    )
    .await
    .unwrap();
    assert_ne!(stored(&o).0, conv);
    assert_eq!(stored(&o).2, None);

    // A reply-all by someone else to the customer's own mail does not join her
    // conversation (a newsletter reply-all from many senders merges nobody)…
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(
            "Bob <bob@other.example>",
            sup,
            "b1@o",
            "Re: Order 42 broken",
            "In-Reply-To: <a1@c>\r\nReferences: <a1@c>\r\n",
            "me too",
        ),
    )
    .await
    .unwrap();
    let bob = stored(&o).0;
    assert_ne!(bob, conv);
    // …nor does the same subject from another sender.
    let o = ingest_raw(
        s,
        &t,
        &ch,
        &cfg,
        &mail(
            "Carol <carol@other.example>",
            sup,
            "c1@o",
            "Order 42 broken",
            "",
            "hi",
        ),
    )
    .await
    .unwrap();
    assert!(stored(&o).0 != conv && stored(&o).0 != bob);
});

on_both!(case_reference_in_the_subject, |h| {
    let a = h.tenant("acme").await;
    let (ch, cfg) = channel(&h.store, &a).await;
    let s = &h.store;
    let o = ingest_raw(
        s,
        &a.tenant_id,
        &ch,
        &cfg,
        &mail(
            "d@x.example",
            "support@example.com",
            "d1@x",
            "Printer",
            "",
            "jammed",
        ),
    )
    .await
    .unwrap();
    let conv = stored(&o).0;
    let case = s
        .create_case(
            &a,
            serde_json::from_value(json!({"title": "Printer jammed"})).unwrap(),
        )
        .await
        .unwrap();
    s.link_conversation_case(&a, &conv, &case.id).await.unwrap();
    let subject = format!("Something else [#{}]", case.number);
    let o = ingest_raw(
        s,
        &a.tenant_id,
        &ch,
        &cfg,
        &mail(
            "e@y.example",
            "support@example.com",
            "e1@y",
            &subject,
            "",
            "colleague here",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (stored(&o).0, stored(&o).2),
        (conv, Some(ThreadRule::CaseReference))
    );
});

on_both!(bounce_marks_the_reply_failed_and_loops_are_dropped, |h| {
    let a = h.tenant("acme").await;
    let (ch, cfg) = channel(&h.store, &a).await;
    let s = &h.store;
    let o = ingest_raw(
        s,
        &a.tenant_id,
        &ch,
        &cfg,
        &mail(
            "nobody@customer.example",
            "support@example.com",
            "n1@c",
            "help",
            "",
            "hi",
        ),
    )
    .await
    .unwrap();
    let conv = stored(&o).0;
    let reply = s
        .reply(
            &a,
            &conv,
            NewReply {
                text: "hello".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    s.record_email(
        &a,
        &ch.id,
        &conv,
        &reply.id,
        &parley_cases::conversations::email::EmailRecord {
            // The Message-ID the DSN fixture quotes.
            header_message_id: "0190abcd-reply@example.com".into(),
            outbound: true,
            ..Default::default()
        },
        "help",
    )
    .await
    .unwrap();
    let dsn = std::fs::read(format!("{CORPUS}/dsn_bounce.eml")).unwrap();
    let o = ingest_raw(s, &a.tenant_id, &ch, &cfg, &dsn).await.unwrap();
    assert_eq!(
        o,
        Outcome::Bounce {
            message_id: Some(reply.id.clone())
        }
    );
    let msgs = s.conversation_messages(&a, &conv, 0, None).await.unwrap();
    let m = msgs.iter().find(|m| m.id == reply.id).unwrap();
    assert_eq!(m.status, MessageStatus::Failed);
    assert!(
        m.failure_reason
            .as_deref()
            .unwrap()
            .contains("User unknown"),
        "{:?}",
        m.failure_reason
    );
    // The bounce opened no conversation (only the customer's one exists).
    assert_eq!(msgs.len(), 2);

    // Mail from our own address (a loop through a forwarding rule): dropped.
    let o = ingest_raw(
        s,
        &a.tenant_id,
        &ch,
        &cfg,
        &mail(
            "support@example.com",
            "support@example.com",
            "l1@e",
            "loop",
            "",
            "x",
        ),
    )
    .await
    .unwrap();
    assert_eq!(o, Outcome::OwnAddress);
});

on_both!(malformed_and_automatic_mail_are_stored_flagged, |h| {
    let a = h.tenant("acme").await;
    let files = std::env::temp_dir().join(format!("parley-email-files-{}", uuid::Uuid::new_v4()));
    let store = h.store.clone().with_files_dir(&files);
    let (ch, cfg) = channel(&store, &a).await;
    let s = &store;
    for (file, tag) in [
        ("malformed_mime.eml", None),
        ("out_of_office.eml", Some("auto-reply")),
        ("newsletter_bulk.eml", Some("bulk")),
    ] {
        let raw = std::fs::read(format!("{CORPUS}/{file}")).unwrap();
        let o = ingest_raw(s, &a.tenant_id, &ch, &cfg, &raw).await.unwrap();
        let (conv, msg, _, _) = stored(&o);
        let c = s.conversation(&a, &conv).await.unwrap();
        if let Some(tag) = tag {
            assert!(c.tags.iter().any(|t| t == tag), "{file}: {:?}", c.tags);
        }
        let em = s.email_messages(&a, &conv).await.unwrap();
        let e = em.iter().find(|e| e.message_id == msg).unwrap();
        assert!(e.raw_sha256.is_some(), "{file}: raw kept");
        if file == "malformed_mime.eml" {
            assert_eq!(e.malformed, 1);
        }
        // The original .eml is an attachment of the message (one click away).
        let msgs = s.conversation_messages(&a, &conv, 0, None).await.unwrap();
        let m = msgs.iter().find(|m| m.id == msg).unwrap();
        assert!(
            m.attachments.iter().any(|x| x.name == "original.eml"),
            "{file}"
        );
    }
    let _ = std::fs::remove_dir_all(files);
});
