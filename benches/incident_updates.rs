//! Incident public-update benchmark (issue #21): one public update to N affected
//! customers (default 10,000, each with a web-chat conversation linked to the incident).
//!
//! Prints: the time until every customer's message is queued (the fan-out through
//! `Store::reply` into the delivery outbox), the delivery throughput through the outbox
//! (the delivery worker's round — `due_deliveries` + the web-chat adapter — run here in
//! process), and the restart check: a second update's fan-out is aborted midway (the
//! task dropped at an await, as a crash would), a fresh store on the same database
//! resumes it (`resume_incident_fanouts`), and every customer must hold exactly one
//! message of each update.
//!
//! ```text
//! cargo bench --bench incident_updates
//! PARLEY_BENCH_CUSTOMERS=1000 cargo bench --bench incident_updates   # quicker
//! ```

use std::time::{Duration, Instant};

use parley_cases::conversations::delivery::{ChannelAdapter, WebChatAdapter};
use parley_cases::conversations::{InboundMessage, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::incidents::{NewIncident, NewLinks, NewUpdate};
use parley_cases::sla::Priority;
use parley_cases::{Actor, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn drain(store: &Store) -> usize {
    let mut sent = 0;
    loop {
        let due = store.due_deliveries(100).await.expect("due deliveries");
        if due.is_empty() {
            return sent;
        }
        for d in &due {
            WebChatAdapter.send(store, d).await.expect("web chat send");
            sent += 1;
        }
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(store.pool())
        .await
        .expect("count");
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_usize("PARLEY_BENCH_CUSTOMERS", 10_000);
    let dir = std::env::temp_dir().join(format!("parley-bench-incidents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open_sqlite_dir(&dir).await.expect("open");
    store.migrate().await.expect("migrate");
    let tenant = store.create_tenant("bench").await.expect("tenant");
    let sys = Actor::system(&tenant.id);
    let queue = serde_json::from_value(serde_json::json!({"name": "chat"})).expect("queue");
    store.create_queue(&sys, queue).await.expect("queue");
    let channel = store.web_chat_channel(&sys).await.expect("channel").id;

    let t = Instant::now();
    let mut convs = Vec::with_capacity(n);
    for i in 0..n {
        let got = store
            .ingest(
                &sys,
                InboundMessage {
                    channel_id: channel.clone(),
                    thread_key: format!("v{i}"),
                    sender: Sender {
                        identity: Some(RawIdentity {
                            kind: "web_chat".into(),
                            value: format!("v{i}"),
                        }),
                        name: Some(format!("Customer {i}")),
                        ..Default::default()
                    },
                    text: "checkout fails".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("ingest");
        convs.push(got.conversation.id);
    }
    println!(
        "setup: {n} customers with a web-chat conversation in {:.1?}",
        t.elapsed()
    );
    // The setup's own work items and events are not part of the measure.
    let inc = store
        .create_incident(
            &sys,
            NewIncident {
                title: "Checkout down".into(),
                severity: Priority::P0,
                owner_id: None,
                comms_owner_id: None,
                services: vec![],
            },
        )
        .await
        .expect("incident");
    let t = Instant::now();
    for chunk in convs.chunks(1000) {
        store
            .link_incident(
                &sys,
                &inc.id,
                NewLinks {
                    case_ids: vec![],
                    conversation_ids: chunk.to_vec(),
                },
            )
            .await
            .expect("link");
    }
    println!("linked {n} conversations in {:.1?}", t.elapsed());

    // 1. Time to queue.
    let t = Instant::now();
    let posted = store
        .post_incident_update(
            &sys,
            &inc.id,
            NewUpdate {
                text: "A fix is being deployed.".into(),
                public: true,
            },
        )
        .await
        .expect("update");
    let queued = t.elapsed();
    assert_eq!(posted.deliveries.len(), n);
    println!(
        "public update queued for {n} customers in {queued:.2?} ({:.0} customers/s)",
        n as f64 / queued.as_secs_f64()
    );

    // 2. Delivery throughput through the outbox.
    let t = Instant::now();
    let sent = drain(&store).await;
    let took = t.elapsed();
    assert_eq!(sent, n);
    println!(
        "delivered {sent} through the outbox (web chat) in {took:.2?} ({:.0} messages/s)",
        sent as f64 / took.as_secs_f64()
    );

    // 3. A restart in the middle of a fan-out: abort it, resume on a fresh store.
    let s2 = store.clone();
    let id = inc.id.clone();
    let task = tokio::spawn(async move {
        s2.post_incident_update(
            &Actor::system(&s2_tenant(&s2, &id).await),
            &id,
            NewUpdate {
                text: "Second update.".into(),
                public: true,
            },
        )
        .await
    });
    // Let it get part of the way.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let done = count(
            &store,
            "SELECT COUNT(*) FROM messages WHERE text LIKE '%Second update.%'",
        )
        .await;
        if done as usize >= n / 3 || task.is_finished() {
            break;
        }
    }
    task.abort();
    let _ = task.await;
    let partial = count(
        &store,
        "SELECT COUNT(*) FROM messages WHERE text LIKE '%Second update.%'",
    )
    .await;
    store.close().await;
    let url = format!("sqlite://{}", dir.join("parley.db").display());
    let fresh = Store::connect(&url).await.expect("reopen");
    let t = Instant::now();
    let resumed = fresh.resume_incident_fanouts().await.expect("resume");
    let took = t.elapsed();
    let second = count(
        &fresh,
        "SELECT COUNT(*) FROM messages WHERE text LIKE '%Second update.%'",
    )
    .await;
    let per_conv_max = count(
        &fresh,
        "SELECT COALESCE(MAX(k), 0) FROM (SELECT COUNT(*) AS k FROM messages
          WHERE text LIKE '%Second update.%' GROUP BY conversation_id) AS x",
    )
    .await;
    assert_eq!(second as usize, n, "nobody lost");
    assert_eq!(per_conv_max, 1, "nobody twice");
    println!(
        "restart midway: {partial} of {n} queued when aborted; {resumed} update resumed in {took:.2?}; \
         {second} messages, at most {per_conv_max} per customer"
    );
    let sent = drain(&fresh).await;
    println!("after the restart, {sent} more delivered");
    fresh.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tenant of the incident (the task only has the store).
async fn s2_tenant(store: &Store, incident_id: &str) -> String {
    let (t,): (String,) = sqlx::query_as("SELECT tenant_id FROM incidents WHERE id = $1")
        .bind(incident_id)
        .fetch_one(store.pool())
        .await
        .expect("tenant");
    t
}
