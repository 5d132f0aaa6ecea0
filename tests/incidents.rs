//! Incidents end to end (issue #21), the real binary on loopback with SQLite:
//!
//! - the Slack swarm against a Slack-compatible server (tests/common/slack.rs): a P0
//!   incident creates a validly named channel (after Slack answered 503 once: the
//!   incident was never blocked), invites the on-call engineer found by email, posts
//!   the brief; a Slack reply comes back as an internal note by the Parley user with
//!   the Slack user's email; a Parley note and a status change reach Slack; a bad
//!   signature and a stale timestamp are refused; `url_verification` is answered; a
//!   retried event is taken once;
//! - proactive updates: 50 web-chat customers linked in bulk get one public update
//!   each, personalised, through the delivery worker, exactly once, also when Parley is
//!   killed (SIGKILL) with the update queued and started again.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use parley_cases::conversations::{InboundMessage, MessageStatus, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Actor, Store};
use serde_json::{Value, json};

mod common;
use common::parley::{Parley, temp_dir};
use common::slack::{BOT_TOKEN, SIGNING_SECRET, SlackServer};
use common::wait::eventually_async;

const WAIT: Duration = Duration::from_secs(20);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn timeline(api: &common::http::Api, id: &str) -> Value {
    api.ok("GET", &format!("/api/v1/incidents/{id}"), None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_swarm_both_ways() {
    let slack = SlackServer::start(&[
        ("U0ONCALL", "oncall@example.com"),
        ("U0ADMIN", "admin@demo.parley.test"),
    ])
    .await;
    let server = Parley::start("incidents-slack");
    let api = server.api();
    let token = api
        .login("demo", "admin@demo.parley.test", &server.admin_password)
        .await;
    let api = api.as_user(&token);
    let info = api
        .ok(
            "PUT",
            "/api/v1/integrations/slack",
            Some(json!({"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET,
                        "api_base_url": slack.base, "invitees": ["oncall@example.com", "nobody@example.com"]})),
        )
        .await;
    assert!(
        !info.to_string().contains(BOT_TOKEN) && !info.to_string().contains(SIGNING_SECRET),
        "secrets are write-only: {info}"
    );
    // Slack is down for the first attempt: the incident is created all the same.
    slack.fail_next("conversations.create", 1);
    let (s, created) = api
        .call(
            "POST",
            "/api/v1/incidents",
            Some(json!({"title": "Checkout errors (EU)", "severity": "P0"})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let channel = eventually_async("the swarm channel", WAIT, || async {
        timeline(&api, &id).await["slack_channel_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let brief = eventually_async("the brief", WAIT, || async {
        slack
            .calls_of("chat.postMessage")
            .into_iter()
            .find(|c| c["channel"] == channel.as_str())
    })
    .await;
    assert!(
        brief["text"]
            .as_str()
            .unwrap()
            .contains("[P0] Checkout errors (EU)"),
        "{brief}"
    );
    let creates = slack.calls_of("conversations.create");
    assert_eq!(creates.len(), 1, "the 503 is not recorded: {creates:?}");
    assert!(
        creates[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("inc-checkout-errors-eu-")
    );
    let invites = slack.calls_of("conversations.invite");
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0]["users"], "U0ONCALL");

    // Events: url_verification, refusals, a reply, its retry.
    let hook = format!("{}/hooks/v1/slack/demo", server.http);
    let (s, body) = slack
        .send_event(
            &hook,
            SIGNING_SECRET,
            unix_now(),
            &json!({"type": "url_verification", "challenge": "ch4ll3nge"}),
            None,
        )
        .await;
    assert_eq!((s, body.contains("ch4ll3nge")), (200, true), "{body}");
    let event = json!({"type": "event_callback", "event_id": "Ev0001", "team_id": "T1",
        "event": {"type": "message", "channel": channel, "user": "U0ADMIN",
                  "text": "Rolled back the payment gateway deploy", "ts": "1700000000.000200"}});
    let (s, _) = slack
        .send_event(&hook, "wrong secret", unix_now(), &event, None)
        .await;
    assert_eq!(s, 401, "bad signature");
    let (s, _) = slack
        .send_event(&hook, SIGNING_SECRET, unix_now() - 600, &event, None)
        .await;
    assert_eq!(s, 401, "stale timestamp");
    let (s, _) = slack
        .send_event(&hook, SIGNING_SECRET, unix_now(), &event, None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = slack
        .send_event(&hook, SIGNING_SECRET, unix_now(), &event, Some(1))
        .await;
    assert_eq!(s, 200, "a retry is acknowledged");
    let me = api.ok("GET", "/api/v1/me", None).await;
    let note = eventually_async("the Slack reply as a note", WAIT, || async {
        timeline(&api, &id).await["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == "slack")
            .cloned()
    })
    .await;
    assert_eq!(note["kind"], "note");
    assert_eq!(note["author_id"], me["id"], "mapped by email");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slack_notes = timeline(&api, &id).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "slack")
        .count();
    assert_eq!(slack_notes, 1, "the retry is taken once");

    // Parley → Slack: a note and a status change.
    api.ok(
        "POST",
        &format!("/api/v1/incidents/{id}/updates"),
        Some(json!({"text": "Gateway team paged", "public": false})),
    )
    .await;
    api.ok(
        "POST",
        &format!("/api/v1/incidents/{id}/status"),
        Some(json!({"status": "identified"})),
    )
    .await;
    for want in ["Gateway team paged", "investigating → identified"] {
        eventually_async(want, WAIT, || async {
            slack
                .calls_of("chat.postMessage")
                .into_iter()
                .find(|c| c["text"].as_str().is_some_and(|t| t.contains(want)))
        })
        .await;
    }
    // Our own posts come back from Slack as bot messages: ignored.
    let own = json!({"type": "event_callback", "event_id": "Ev0002",
        "event": {"type": "message", "channel": channel, "bot_id": "B1", "user": "U0BOT",
                  "text": "Gateway team paged", "ts": "1700000000.000300"}});
    let (s, _) = slack
        .send_event(&hook, SIGNING_SECRET, unix_now(), &own, None)
        .await;
    assert_eq!(s, 200);
}

async fn visitor_conversation(store: &Store, sys: &Actor, channel: &str, i: usize) -> String {
    store
        .ingest(
            sys,
            InboundMessage {
                channel_id: channel.into(),
                thread_key: format!("visitor-{i}"),
                sender: Sender {
                    identity: Some(RawIdentity {
                        kind: "web_chat".into(),
                        value: format!("visitor-{i}"),
                    }),
                    name: Some(format!("Customer{i} Lee")),
                    ..Default::default()
                },
                text: "The checkout page fails".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .conversation
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_update_reaches_every_customer_once_across_kill_9() {
    const N: usize = 50;
    let dir = temp_dir("incidents-updates");
    // Delivery held: the update is queued when Parley dies.
    let mut server = Parley::options("incidents-updates")
        .dir(&dir)
        .env("PARLEY_DELIVERY_PAUSED", "true")
        .start();
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.join("data/parley.db").display()
    ))
    .await
    .unwrap();
    let tenant = store.tenant_by_name("demo").await.unwrap().unwrap();
    let sys = Actor::system(&tenant.id);
    let channel = store.web_chat_channel(&sys).await.unwrap().id;
    let mut convs = Vec::new();
    for i in 0..N {
        convs.push(visitor_conversation(&store, &sys, &channel, i).await);
    }
    let api = server.api();
    let token = api
        .login("demo", "admin@demo.parley.test", &server.admin_password)
        .await;
    let api = api.as_user(&token);
    let inc = api
        .ok(
            "POST",
            "/api/v1/incidents",
            Some(json!({"title": "Checkout down", "severity": "P1"})),
        )
        .await;
    let id = inc["id"].as_str().unwrap().to_owned();
    let links = api
        .ok(
            "POST",
            &format!("/api/v1/incidents/{id}/links"),
            Some(json!({"case_ids": [], "conversation_ids": convs})),
        )
        .await;
    assert_eq!(links.as_array().unwrap().len(), N);
    let (s, posted) = api
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/updates"),
            Some(json!({"text": "Payments are failing; a fix is being deployed.", "public": true})),
        )
        .await;
    assert_eq!(s, 201, "{posted}");
    let deliveries = posted["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), N);
    assert!(
        deliveries
            .iter()
            .all(|d| d["channel"] == "web_chat" && d["status"] == "queued")
    );
    let password = server.admin_password.clone();
    server.kill();

    // Started again with delivery on: every customer gets it, once.
    let server = Parley::options("incidents-updates")
        .dir(&dir)
        .args(&["serve"])
        .start();
    let api = server.api();
    let token = api.login("demo", "admin@demo.parley.test", &password).await;
    let api = api.as_user(&token);
    for (i, conv) in convs.iter().enumerate() {
        let seen = eventually_async("the update delivered", WAIT, || async {
            let msgs = store
                .visitor_messages(&sys, conv, 0, Some(500))
                .await
                .unwrap();
            let updates: Vec<_> = msgs
                .into_iter()
                .filter(|m| m.text.contains("a fix is being deployed"))
                .collect();
            (!updates.is_empty()).then_some(updates)
        })
        .await;
        assert_eq!(seen.len(), 1, "exactly once for {conv}");
        assert!(
            seen[0].text.starts_with(&format!("Hi Customer{i},")),
            "personalised: {}",
            seen[0].text
        );
    }
    // On each timeline, sent (not failed, not twice).
    for conv in &convs {
        let sent = store
            .conversation_messages(&sys, conv, 0, Some(500))
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.text.contains("a fix is being deployed"))
            .map(|m| m.status)
            .collect::<Vec<_>>();
        assert_eq!(sent, vec![MessageStatus::Sent]);
    }
    let view = api
        .ok("GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    assert_eq!(view["affected_customers"], N);
}
