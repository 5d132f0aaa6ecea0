//! The delivery outbox across `kill -9` (issue #17): an agent's reply stored `queued`
//! by a Parley that is then killed (SIGKILL) before sending it is delivered on the next
//! start exactly once; and replies in flight when Parley is killed mid-stream are each
//! delivered exactly once after the restart. The real binary on loopback, SQLite.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parley_cases::conversations::{InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Actor, Store};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_parley");

struct Server {
    child: Child,
    base: String,
    admin_password: String,
}

// The child is owned by the returned Server, whose Drop kills and reaps it.
#[allow(clippy::zombie_processes)]
fn start(dir: &Path, args: &[&str], paused: bool) -> Server {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("PARLEY_DATA_DIR", dir.join("data"))
        .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
        .env("PARLEY_SIP_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL");
    if paused {
        c.env("PARLEY_DELIVERY_PAUSED", "true");
    } else {
        c.env_remove("PARLEY_DELIVERY_PAUSED");
    }
    let mut child = c.args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_password = String::new();
    loop {
        let line = lines
            .next()
            .expect("parley exited before listening")
            .unwrap();
        if line.contains("admin@demo.parley.test") {
            admin_password = line.rsplit(' ').next().unwrap().to_owned();
        }
        if let Some(rest) = line.strip_prefix("Parley listening on ") {
            let base = rest.split(' ').next().unwrap().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Server {
                child,
                base,
                admin_password,
            };
        }
    }
}

impl Server {
    /// `kill -9`: no shutdown, no flush.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(base: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http.post(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let s = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
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
    let dir = std::env::temp_dir().join(format!("parley-delivery-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Replies are stored, then Parley dies before sending (its worker is held).
    let server = start(&dir, &["serve", "--demo"], true);
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
    let (s, v) = call(
        &server.base,
        "/api/v1/auth/login",
        None,
        Some(json!({"tenant": "demo", "email": "admin@demo.parley.test", "password": server.admin_password})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/conversations/{conv}/messages");
    let (s, r) = call(
        &server.base,
        &path,
        Some(&token),
        Some(json!({"text": "Yes, hello!"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let first = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["status"], "queued");
    server.kill9();
    let due = store.due_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1, "stored, not sent, when killed");
    assert_eq!(deliveries(&store, &sys, &conv, &first).await, (0, 0, 0));

    // 2. The next start sends it, once.
    let server = start(&dir, &["serve"], false);
    wait_all_sent(&store, &sys, &conv, std::slice::from_ref(&first)).await;
    assert_eq!(deliveries(&store, &sys, &conv, &first).await, (1, 1, 1));

    // 3. Replies in flight when Parley is killed mid-stream: each delivered once.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (base, path, token) = (server.base.clone(), path.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let (s, r) = call(
                &base,
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
    server.kill9();
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
