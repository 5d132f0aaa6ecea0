//! The delivery outbox across `kill -9` (issue #17): an agent's reply stored `queued`
//! by a Parley that is then killed (SIGKILL) before sending it is delivered on the next
//! start exactly once; and replies in flight when Parley is killed mid-stream are each
//! delivered exactly once after the restart. The real binary on loopback, SQLite.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use parley_cases::conversations::{InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Actor, Store};
use serde_json::json;

mod common;
use common::parley::{Parley, temp_dir};

/// `parley serve` (plus `--demo` the first time) on `dir`, its delivery worker held
/// when `paused`.
fn start(dir: &Path, args: &[&str], paused: bool) -> Parley {
    let o = Parley::options("delivery").dir(dir).args(args);
    if paused {
        o.env("PARLEY_DELIVERY_PAUSED", "true").start()
    } else {
        o.start()
    }
}

/// How many times each reply was made visible to the visitor, and its `sent` records.
async fn deliveries(store: &Store, sys: &Actor, conv: &str, id: &str) -> (usize, usize, usize) {
    let seen = store
        .visitor_messages(sys, conv, 0, Some(500))
        .await
        .unwrap()
        .iter()
        .filter(|m| m.id == id)
        .count();
    let sent = store
        .message_status_events(sys, id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.status == MessageStatus::Sent)
        .count();
    let published = store
        .outbox_events(&sys.tenant_id)
        .await
        .unwrap()
        .iter()
        .filter(|(e, _)| e.kind == "conversation.visitor_message" && e.data["id"] == id)
        .count();
    (seen, sent, published)
}

async fn wait_all_sent(store: &Store, sys: &Actor, conv: &str, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = store
            .conversation_messages(sys, conv, 0, Some(500))
            .await
            .unwrap();
        let pending: Vec<_> = msgs
            .iter()
            .filter(|m| ids.contains(&m.id) && m.status != MessageStatus::Sent)
            .map(|m| (m.seq, m.status))
            .collect();
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered after restart: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_delivered_exactly_once_across_kill_9() {
    let dir = temp_dir("delivery");

    // 1. Replies are stored, then Parley dies before sending (its worker is held).
    let mut server = start(&dir, &["serve", "--demo"], true);
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.join("data/parley.db").display()
    ))
    .await
    .unwrap();
    let tenant = store.tenant_by_name("demo").await.unwrap().unwrap();
    let sys = Actor::system(&tenant.id);
    let channel = store.web_chat_channel(&sys).await.unwrap();
    let conv = store
        .ingest(
            &sys,
            InboundMessage {
                channel_id: channel.id,
                thread_key: "visitor-kill9".into(),
                sender: Sender {
                    identity: Some(RawIdentity {
                        kind: "web_chat".into(),
                        value: "visitor-kill9".into(),
                    }),
                    ..Default::default()
                },
                text: "Is anyone there?".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .conversation
        .id;
    let api = server.api();
    let token = api
        .login("demo", "admin@demo.parley.test", &server.admin_password)
        .await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    let (s, r) = api
        .call_as(
            "POST",
            &path,
            Some(&token),
            Some(json!({"text": "Yes, hello!"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let first = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["status"], "queued");
    server.kill();
    let due = store.due_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1, "stored, not sent, when killed");
    assert_eq!(deliveries(&store, &sys, &conv, &first).await, (0, 0, 0));

    // 2. The next start sends it, once.
    let mut server = start(&dir, &["serve"], false);
    let api = server.api();
    wait_all_sent(&store, &sys, &conv, std::slice::from_ref(&first)).await;
    assert_eq!(deliveries(&store, &sys, &conv, &first).await, (1, 1, 1));

    // 3. Replies in flight when Parley is killed mid-stream: each delivered once.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (api, path, token) = (api.clone(), path.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let (s, r) = api
                .call_as(
                    "POST",
                    &path,
                    Some(&token),
                    Some(json!({"text": format!("reply {i}"), "client_id": format!("k{i}")})),
                )
                .await;
            assert_eq!(s, 201, "{r}");
            r["id"].as_str().unwrap().to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    server.kill();
    let server = start(&dir, &["serve"], false);
    wait_all_sent(&store, &sys, &conv, &ids).await;
    for id in &ids {
        assert_eq!(deliveries(&store, &sys, &conv, id).await, (1, 1, 1), "{id}");
    }
    assert!(store.due_deliveries(10).await.unwrap().is_empty());
    drop(server);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
