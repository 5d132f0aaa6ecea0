//! Automation rules end to end (issue #23): the real binary with the demo tenant; an
//! admin adds a rule over the API, a new web chat that matches it is assigned, tagged
//! and answered from a canned response by the rules runtime, the rule's execution log
//! shows the run and a dry run finds it; after `kill -9` and a restart the runtime
//! resumes from its stored position: the next chat is handled and nothing is applied
//! twice.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::parley::Parley;
use common::wait::eventually;

/// Opens a web chat in the demo tenant as `name` and writes `text`; the conversation id.
fn chat(p: &Parley, name: &str, text: &str) -> String {
    let v = p.http(
        "POST",
        "/chat/v1/demo/conversations",
        None,
        Some(json!({"name": name, "email": format!("{}@example.com", name.to_lowercase())})),
    );
    let id = v["conversation_id"].as_str().unwrap().to_owned();
    let token = v["visitor_token"].as_str().unwrap().to_owned();
    p.http(
        "POST",
        &format!("/chat/v1/conversations/{id}/messages"),
        Some(&token),
        Some(json!({"text": text, "client_id": "m1"})),
    );
    id
}

/// The conversation once the rule has acted on it (assignee, tags and the reply).
fn handled(p: &Parley, admin: &str, id: &str, assignee: &str) -> Value {
    eventually(
        "the rule acted on the chat",
        Duration::from_secs(20),
        || {
            let (s, v) = p.request(
                "GET",
                &format!("/api/v1/conversations/{id}"),
                Some(admin),
                None,
            );
            let replied = v["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["author"] == "system"));
            (s == 200
                && v["assignee_id"] == assignee
                && v["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "billing"))
                && replied)
                .then_some(v)
        },
    )
}

fn rule_replies(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "system")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_matching_chat_is_assigned_tagged_and_answered_and_the_runtime_resumes_after_kill_9() {
    let mut p = Parley::start("automation");
    let admin = p.admin_token();
    let alice = p.user_id(&admin, "agent1@demo.parley.test");
    let rule = p.http(
        "POST",
        "/api/v1/rules",
        Some(&admin),
        Some(json!({
            "name": "Refunds to Alice",
            "trigger": {"type": "event", "kinds": ["conversation.message"]},
            "conditions": [
                {"type": "field", "field": "message.author", "op": "eq", "value": "customer"},
                {"type": "field", "field": "message.text", "op": "contains", "value": ["refund", "invoice"]}
            ],
            "actions": [
                {"type": "assign_user", "user_id": alice},
                {"type": "add_tags", "tags": ["billing"]},
                {"type": "reply_template", "shortcut": "welcome"}
            ]
        })),
    );
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    // A rule that does not read is refused naming the field.
    let (s, v) = p.request(
        "POST",
        "/api/v1/rules",
        Some(&admin),
        Some(
            json!({"name": "bad", "trigger": {"type": "event", "kinds": ["x"]},
                    "actions": [{"type": "set_priority", "priority": "soon"}]}),
        ),
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "actions[0].priority", "{v}");

    let first = chat(&p, "Vera", "Where is my refund?");
    let other = chat(&p, "Olga", "Just saying hello");
    let v = handled(&p, &admin, &first, &alice);
    // The template is filled in for the customer.
    assert_eq!(rule_replies(&v).len(), 1);
    assert!(rule_replies(&v)[0].starts_with("Hi Vera"), "{v}");
    // The actions are applied before the run is logged (the batch's finishing
    // transaction): seen under load in the merged suite, the log read between the two
    // was empty.
    let log = eventually("the rule's run logged", Duration::from_secs(10), || {
        let log = p.http(
            "GET",
            &format!("/api/v1/rules/{rule_id}/log"),
            Some(&admin),
            None,
        );
        log.as_array().filter(|l| !l.is_empty()).cloned()
    });
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "applied");
    assert_eq!(log[0]["subject"], format!("conversation:{first}"));
    // The chat that does not match is left alone.
    let o = p.http(
        "GET",
        &format!("/api/v1/conversations/{other}"),
        Some(&admin),
        None,
    );
    assert!(o["assignee_id"].is_null(), "{o}");
    // A dry run over the last events finds the rule firing on the refund message.
    let dry = p.http(
        "POST",
        "/api/v1/rules/dry-run",
        Some(&admin),
        Some(json!({"limit": 200})),
    );
    assert!(
        dry["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["fired"][0]["rule_id"] == rule_id.as_str()),
        "{dry}"
    );

    // kill -9 and restart: the runtime resumes from its stored position.
    p.kill();
    p.relaunch();
    let admin = p.admin_token();
    let third = chat(&p, "Tom", "A question about my invoice");
    let v = handled(&p, &admin, &third, &alice);
    assert_eq!(rule_replies(&v).len(), 1);
    // Nothing was applied twice to the first chat.
    let v = p.http(
        "GET",
        &format!("/api/v1/conversations/{first}"),
        Some(&admin),
        None,
    );
    assert_eq!(rule_replies(&v).len(), 1, "{v}");
    // Logged after its actions applied (see above).
    let log = eventually("the second run logged", Duration::from_secs(10), || {
        let log = p.http(
            "GET",
            &format!("/api/v1/rules/{rule_id}/log"),
            Some(&admin),
            None,
        );
        log.as_array().filter(|l| l.len() >= 2).cloned()
    });
    assert_eq!(log.len(), 2, "{log:?}");
}

/// What the local subscriber received: (path, headers of interest, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, String)>>>;

/// A local webhook receiver: `/ok` answers 204; `/flaky` answers 500 twice, then 204.
async fn receiver() -> (String, Received) {
    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    let got: Received = Default::default();
    let flaky = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    async fn hook(
        State((got, flaky)): State<(Received, std::sync::Arc<std::sync::atomic::AtomicUsize>)>,
        uri: Uri,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        got.lock().unwrap().push((
            uri.path().to_owned(),
            h("parley-signature"),
            h("parley-delivery"),
            body,
        ));
        if uri.path() == "/flaky" && flaky.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        StatusCode::NO_CONTENT
    }
    let app = Router::new()
        .route("/ok", axum::routing::post(hook))
        .route("/flaky", axum::routing::post(hook))
        .with_state((got.clone(), flaky));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

fn verify(secret: &str, header: &str, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some((t, v1)) = header.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == v1
}

#[test]
fn webhook_subscribers_get_signed_events_and_a_failing_one_is_retried() {
    // The receiver runs on a runtime of its own; the test drives Parley blocking.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, got) = rt.block_on(receiver());
    let p = Parley::options("webhooks")
        .env("PARLEY_HTTP_ALLOW", "127.0.0.1/32")
        .start();
    let admin = p.admin_token();
    let sub = |path: &str| {
        p.http(
            "POST",
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": format!("{base}/{path}"), "event_types": ["conversation.opened"]})),
        )
    };
    let ok = sub("ok");
    let flaky = sub("flaky");
    let secret = ok["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let again = p.http(
        "GET",
        &format!("/api/v1/webhooks/{}", ok["id"].as_str().unwrap()),
        Some(&admin),
        None,
    );
    assert!(again.get("secret").is_none(), "{again}");

    let conv = chat(&p, "Wendy", "hello");
    // The good subscriber gets the event once, signed with its secret.
    let first = eventually("the event delivered", Duration::from_secs(20), || {
        got.lock().unwrap().iter().find(|r| r.0 == "/ok").cloned()
    });
    let body: Value = serde_json::from_str(&first.3).unwrap();
    assert_eq!(body["type"], "conversation.opened");
    assert_eq!(body["data"]["id"], conv.as_str());
    assert!(verify(&secret, &first.1, &first.3), "signature {}", first.1);
    assert!(!verify("whsec_wrong", &first.1, &first.3));
    // The failing one is retried with backoff (2 s, then 4 s) until it takes it.
    let deliveries = |id: &Value| {
        p.http(
            "GET",
            &format!("/api/v1/webhooks/{}/deliveries", id.as_str().unwrap()),
            Some(&admin),
            None,
        )
    };
    let log = eventually(
        "the flaky subscriber served",
        Duration::from_secs(30),
        || {
            let d = deliveries(&flaky["id"]);
            (d[0]["status"] == "delivered").then_some(d)
        },
    );
    assert_eq!(log[0]["attempts"], 3, "{log}");
    assert_eq!(
        got.lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == "/flaky")
            .count(),
        3
    );
    // The same delivery id on every attempt (receivers drop repeats).
    let ids: std::collections::BTreeSet<String> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == "/flaky")
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(ids.len(), 1);
    // Replay from the log: sent again, same delivery id.
    let d = deliveries(&ok["id"]);
    let id = d[0]["id"].as_str().unwrap().to_owned();
    p.http(
        "POST",
        &format!("/api/v1/webhooks/deliveries/{id}/replay"),
        Some(&admin),
        None,
    );
    eventually("the replay delivered", Duration::from_secs(20), || {
        (got.lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == "/ok" && r.2 == id)
            .count()
            == 2)
            .then_some(())
    });
    assert_eq!(
        got.lock().unwrap().iter().filter(|r| r.0 == "/ok").count(),
        2
    );
}
