//! The route × role matrix (issue #13): every route of the OpenAPI document and every
//! live-call control, called by an anonymous client, an agent, a supervisor and an
//! admin of the tenant that owns the data (`acme`), and by an admin of another tenant
//! (`globex`), each with the status class it must get. The table must cover every
//! documented route: a new route without a row fails [`every_route_and_call_control_by_role`].
//! Part of the `api` test binary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use parley_cases::callbacks::NewCallback;
use parley_cases::{Actor, Role, Timestamp};
use parley_web::{
    AppState, CallCommand, CallControl, CallControlError, LiveCall, LiveLeg, SipCounter,
    SipInspector, SipTraceEntry, WebConfig, app,
};
use serde_json::{Value, json};

use crate::T;

/// What a role must get. `U`: 401; `F`: 403; `N`: 404 (another tenant's data, or a call
/// the agent is not on, does not exist for them); `A`: allowed (2xx, or 409/422 when the
/// state of the world refuses after authorisation); `O`: allowed in the caller's own
/// tenant, with nothing of the owning tenant's in the answer; `R`: refused as a
/// reference to nothing (404, or 422 naming the field that refers to another tenant's
/// record, worded as for a record that does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    U,
    F,
    N,
    A,
    O,
    R,
}

/// The order of the expectation columns.
const ROLES: [&str; 5] = [
    "anonymous",
    "agent",
    "supervisor",
    "admin",
    "other-tenant admin",
];

fn expects(code: &str) -> [Expect; 5] {
    let mut out = [Expect::U; 5];
    assert_eq!(code.len(), 5, "{code}");
    for (i, c) in code.chars().enumerate() {
        out[i] = match c {
            'U' => Expect::U,
            'F' => Expect::F,
            'N' => Expect::N,
            'A' => Expect::A,
            'O' => Expect::O,
            'R' => Expect::R,
            _ => panic!("bad expectation {code}"),
        };
    }
    out
}

/// The call-1 of `acme`, its agent being the tenant's agent.
struct FakeCalls {
    tenant: String,
    agent: String,
}

impl FakeCalls {
    fn call(&self) -> LiveCall {
        LiveCall {
            id: "call-1".into(),
            state: "talking".into(),
            direction: "inbound".into(),
            customer_number: "+15550100777".into(),
            started_at: Timestamp(0),
            answered_at: Some(Timestamp(1000)),
            duration_s: 10,
            talk_s: Some(9),
            agent_user_id: Some(self.agent.clone()),
            held: false,
            muted: false,
            recording_paused: false,
            disposition: None,
            legs: vec![LiveLeg {
                role: "agent".into(),
                user_id: Some(self.agent.clone()),
                address: "1001".into(),
                state: "up".into(),
                mode: "full".into(),
            }],
        }
    }
}

impl CallControl for FakeCalls {
    fn list(&self, tenant_id: &str) -> Vec<LiveCall> {
        if tenant_id == self.tenant {
            vec![self.call()]
        } else {
            Vec::new()
        }
    }

    fn get(&self, tenant_id: &str, call_id: &str) -> Option<LiveCall> {
        (tenant_id == self.tenant && call_id == "call-1").then(|| self.call())
    }

    fn originate<'a>(
        &'a self,
        tenant_id: &'a str,
        _agent_user_id: &'a str,
        _agent_extension: &'a str,
        _number: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, CallControlError>> + Send + 'a>,
    > {
        let ok = tenant_id == self.tenant;
        Box::pin(async move {
            if ok {
                Ok("call-1".into())
            } else {
                Err(CallControlError::Refused("no trunk".into()))
            }
        })
    }

    fn command<'a>(
        &'a self,
        tenant_id: &'a str,
        call_id: &'a str,
        _command: CallCommand,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), CallControlError>> + Send + 'a>,
    > {
        let found = self.get(tenant_id, call_id).is_some();
        Box::pin(async move {
            if found {
                Ok(())
            } else {
                Err(CallControlError::NotFound)
            }
        })
    }
}

/// A SIP stack remembering one call (`sip-1`) of `acme`.
struct FakeSip {
    tenant: String,
}

impl SipInspector for FakeSip {
    fn call_trace(&self, tenant_id: &str, call_id: &str) -> Option<Vec<SipTraceEntry>> {
        (tenant_id == self.tenant && call_id == "sip-1").then(|| {
            vec![SipTraceEntry {
                at: Timestamp(0),
                direction: "in".into(),
                transport: "udp".into(),
                peer: "192.0.2.1:5060".into(),
                summary: "INVITE sip:+15550111@parley SIP/2.0".into(),
                message: "INVITE sip:+15550111@parley SIP/2.0\r\n\r\n".into(),
            }]
        })
    }

    fn counters(&self) -> Vec<SipCounter> {
        vec![SipCounter {
            name: "sip_requests_in_total".into(),
            value: 1,
        }]
    }
}

const WAV: &[u8] = include_bytes!("../fixtures/prompts/tone.wav");

/// A row body meaning "the WAV fixture as `audio/wav`" (prompt uploads are not JSON).
const WAV_BODY: &str = "<wav fixture>";

/// A flow with a webhook whose header carries a secret.
fn flow_doc(id: &str) -> Value {
    json!({
        "version": 1, "id": id, "start": "hook",
        "nodes": {
            "hook": {"type": "http", "method": "POST",
                     "url": "https://crm.example/lookup?key=s3cret-key&n={{caller_number}}",
                     "headers": {"Authorization": "Bearer s3cret-token"},
                     "body": "{\"api_key\": \"s3cret-body\"}",
                     "next": "bye", "on_error": "bye"},
            "bye": {"type": "hangup"}
        }
    })
}

/// The fixtures of `acme` the rows refer to, by placeholder name.
struct World {
    ids: BTreeMap<&'static str, String>,
}

impl World {
    fn fill(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (k, v) in &self.ids {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// Strings of `acme`'s that must never appear in an answer to another tenant.
    fn secrets(&self) -> Vec<&str> {
        self.ids
            .iter()
            .filter(|(k, _)| !matches!(**k, "call" | "sip_call" | "version" | "ivr_number"))
            .map(|(_, v)| v.as_str())
            .chain(["Ann Acme", "acme.test"])
            .collect()
    }
}

async fn ok(t: &T, m: Method, uri: &str, tok: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (s, v) = t.call(m.clone(), uri, Some(tok), body).await;
    assert!(s.is_success(), "setup {m} {uri}: {s} {v}");
    v
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

async fn world(t: &T, admin: &str, agent: &str) -> World {
    let mut ids = BTreeMap::new();
    let users = ok(t, Method::GET, "/api/v1/users", admin, Value::Null).await;
    for u in users["items"].as_array().or(users.as_array()).unwrap() {
        let key = match u["email"].as_str().unwrap() {
            "agent@acme.test" => "agent",
            "supervisor@acme.test" => "supervisor",
            "admin@acme.test" => "admin",
            _ => continue,
        };
        ids.insert(key, id(u));
    }
    let me = ok(t, Method::GET, "/api/v1/me", agent, Value::Null).await;
    assert_eq!(me["id"].as_str(), ids.get("agent").map(String::as_str));
    for (key, name, phone) in [
        ("customer", "Ann Acme", "+15550100777"),
        ("customer2", "Ann Acme Two", "+15550100778"),
        ("customer3", "Ann Acme Three", "+15550100779"),
    ] {
        let c = ok(
            t,
            Method::POST,
            "/api/v1/customers",
            admin,
            json!({"name": name, "identities": [{"kind": "phone", "value": phone}]}),
        )
        .await;
        ids.insert(key, id(&c));
    }
    let c = ids["customer"].clone();
    let i = ok(t, Method::POST, &format!("/api/v1/customers/{c}/interactions"), admin, json!({"kind": "message", "channel": "web_chat", "direction": "inbound", "body": "hello there"})).await;
    ids.insert("interaction", id(&i));
    for key in ["case", "case2"] {
        let k = ok(
            t,
            Method::POST,
            "/api/v1/cases",
            admin,
            json!({"title": "Broken", "customer_id": c, "priority": "P1"}),
        )
        .await;
        ids.insert(key, id(&k));
    }
    let team = ok(
        t,
        Method::POST,
        "/api/v1/teams",
        admin,
        json!({"name": "Tier 1"}),
    )
    .await;
    ids.insert("team", id(&team));
    let skill = ok(
        t,
        Method::POST,
        "/api/v1/skills",
        admin,
        json!({"name": "german"}),
    )
    .await;
    ids.insert("skill", id(&skill));
    let ct = ok(
        t,
        Method::POST,
        "/api/v1/case-types",
        admin,
        json!({"name": "Bug", "fields": []}),
    )
    .await;
    ids.insert("case_type", id(&ct));
    for (key, shortcut) in [("canned", "hello"), ("canned2", "bye")] {
        let c = ok(
            t,
            Method::POST,
            "/api/v1/canned-responses",
            admin,
            json!({"shortcut": shortcut, "title": "Hello", "body": "Hi {{customer.first_name}}"}),
        )
        .await;
        ids.insert(key, id(&c));
    }
    ok(
        t,
        Method::POST,
        "/api/v1/kb/articles",
        admin,
        json!({"slug": "router-reset", "title": "Reset the router", "body": "Hold the reset button for 15 seconds.", "tags": ["router"]}),
    )
    .await;
    let task = ok(
        t,
        Method::POST,
        &format!("/api/v1/cases/{}/tasks", ids["case"]),
        admin,
        json!({"title": "Send the engineer"}),
    )
    .await;
    ids.insert("task", id(&task));
    for key in ["webhook", "webhook2"] {
        let w = ok(
            t,
            Method::POST,
            "/api/v1/webhooks",
            admin,
            json!({"url": "https://hooks.example.com/parley", "event_types": ["conversation.opened"]}),
        )
        .await;
        ids.insert(key, id(&w));
    }
    for key in ["rule", "rule2"] {
        let r = ok(t, Method::POST, "/api/v1/rules", admin, rule_body(key)).await;
        ids.insert(key, id(&r));
    }
    // Channels (issue #19).
    for (key, name) in [("channel", "Support bot"), ("channel2", "Old bot")] {
        let c = ok(
            t,
            Method::POST,
            "/api/v1/channels",
            admin,
            json!({"kind": "telegram", "name": name, "config": {"bot_token": "1:x", "secret_token": "s"}}),
        )
        .await;
        ids.insert(key, id(&c));
    }
    for (key, name) in [("trunk", "carrier"), ("trunk2", "old carrier")] {
        let tr = ok(
            t,
            Method::POST,
            "/api/v1/trunks",
            admin,
            json!({"name": name, "inbound_addresses": ["192.0.2.1"], "caller_id": "+15550111"}),
        )
        .await;
        ids.insert(key, id(&tr));
    }
    for (key, n) in [("number", "+15550111"), ("number2", "+15550112")] {
        let num = ok(
            t,
            Method::POST,
            "/api/v1/numbers",
            admin,
            json!({"number": n, "trunk_id": ids["trunk"]}),
        )
        .await;
        ids.insert(key, id(&num));
    }
    ids.insert("ivr_number", "%2B15550111".into());
    ok(
        t,
        Method::PUT,
        "/api/v1/ivr/calendars/main",
        admin,
        json!({"time_zone": "UTC"}),
    )
    .await;
    ok(t, Method::POST, "/api/v1/ivr/flows", admin, flow_doc("f1")).await;
    ok(
        t,
        Method::POST,
        "/api/v1/ivr/flows/f1/publish",
        admin,
        Value::Null,
    )
    .await;
    ids.insert("version", "1".into());
    ok(
        t,
        Method::PUT,
        "/api/v1/ivr/numbers/%2B15550111",
        admin,
        json!({"flow_id": "f1"}),
    )
    .await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/ivr/prompts?name=hello")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "audio/wav")
        .body(Body::from(WAV))
        .unwrap();
    let (s, p) = t.raw(req).await;
    assert!(s.is_success(), "prompt upload: {s} {p}");
    ids.insert("prompt", id(&p));
    for (key, name) in [("queue", "sales"), ("queue2", "old")] {
        let q = ok(
            t,
            Method::POST,
            "/api/v1/queues",
            admin,
            json!({"name": name}),
        )
        .await;
        ids.insert(key, id(&q));
    }
    // Extensions: the agent is called for click-to-call, supervisors' phones for listen.
    for (who, ext) in [("agent", "1001"), ("supervisor", "1009"), ("admin", "1010")] {
        ok(
            t,
            Method::PUT,
            &format!("/api/v1/users/{}/sip", ids[who]),
            admin,
            // The admin sets their own SIP password too: that needs their web password.
            json!({"extension": ext, "password": "a sip password", "current_password": crate::PW}),
        )
        .await;
    }
    let (acme_id, _) = t.store.actor_for_token(admin).await.unwrap();
    let cb = t
        .store
        .create_callback(
            &Actor::system(&acme_id.tenant_id),
            NewCallback {
                queue_id: ids["queue"].clone(),
                customer_id: c.clone(),
                item: "item-1".into(),
                number: "+15550100777".into(),
                since: Timestamp(0),
                priority: 0,
            },
        )
        .await
        .unwrap();
    ids.insert("callback", cb.id);
    let wi = t
        .store
        .create_work_item(
            &Actor::system(&acme_id.tenant_id),
            serde_json::from_value(
                json!({"kind": "task", "queue": "sales", "title": "Check the order"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    ids.insert("work_item", wi.id);
    let acme_sys = Actor::system(&acme_id.tenant_id);
    let chat = t.store.web_chat_channel(&acme_sys).await.unwrap();
    let conv = t
        .store
        .ingest(
            &acme_sys,
            parley_cases::conversations::InboundMessage {
                channel_id: chat.id,
                thread_key: "visitor-1".into(),
                sender: parley_cases::conversations::Sender {
                    customer_id: Some(c.clone()),
                    ..Default::default()
                },
                text: "Where is my parcel?".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ids.insert("conversation", conv.conversation.id);
    let inc = ok(
        t,
        Method::POST,
        "/api/v1/incidents",
        admin,
        json!({"title": "Outage", "severity": "P2"}),
    )
    .await;
    ids.insert("incident", id(&inc));
    ids.insert("call", "call-1".into());
    ids.insert("sip_call", "sip-1".into());
    World { ids }
}

/// (method, OpenAPI path, concrete path with `{fixture}` placeholders, body, expectations
/// for anonymous / agent / supervisor / admin / other-tenant admin). Rows that destroy a
/// fixture use their own (`customer3`, `trunk2`, …) and come after the rows that read it.
#[rustfmt::skip]
fn table() -> Vec<(Method, &'static str, &'static str, Value, &'static str)> {
    use Method as M;
    let flow = flow_doc("f1");
    vec![
        // The public web chat (issue #17): opening a conversation is for anyone; the
        // rest wants a visitor token, which no staff token is.
        (M::POST, "/chat/v1/{tenant}/conversations", "/chat/v1/acme/conversations", json!({"name": "Vi"}), "AAAAA"),
        (M::GET, "/chat/v1/{tenant}/config", "/chat/v1/acme/config", json!(null), "AAAAA"),
        (M::POST, "/chat/v1/conversations/{id}/messages", "/chat/v1/conversations/c-1/messages", json!({"text": "hi"}), "UUUUU"),
        (M::GET, "/chat/v1/conversations/{id}/messages", "/chat/v1/conversations/c-1/messages", json!(null), "UUUUU"),
        (M::GET, "/chat/v1/conversations/{id}", "/chat/v1/conversations/c-1", json!(null), "UUUUU"),
        (M::POST, "/chat/v1/conversations/{id}/csat", "/chat/v1/conversations/c-1/csat", json!({"score": 5}), "UUUUU"),
        (M::POST, "/chat/v1/conversations/{id}/read", "/chat/v1/conversations/c-1/read", json!({"seq": 1}), "UUUUU"),
        (M::POST, "/chat/v1/conversations/{id}/transcript", "/chat/v1/conversations/c-1/transcript", json!({}), "UUUUU"),
        (M::GET, "/chat/v1/conversations/{id}/ws", "/chat/v1/conversations/c-1/ws", json!(null), "UUUUU"),
        // The customer portal: asking for a sign-in link is for anyone (202 whatever the
        // address); the rest wants a portal session, which no staff token is.
        (M::POST, "/portal/v1/{tenant}/login", "/portal/v1/acme/login", json!({"email": "someone@example.com"}), "AAAAA"),
        (M::POST, "/portal/v1/{tenant}/session", "/portal/v1/acme/session", json!({"token": "pl_nope"}), "UUUUU"),
        (M::GET, "/portal/v1/stream", "/portal/v1/stream", json!(null), "UUUUU"),
        (M::POST, "/portal/v1/messages", "/portal/v1/messages", json!({"text": "hi"}), "UUUUU"),
        (M::POST, "/portal/v1/logout", "/portal/v1/logout", json!(null), "UUUUU"),
        (M::POST, "/auth/login", "/auth/login", json!({"tenant": "acme", "email": "agent@acme.test", "password": crate::PW}), "AAAAA"),
        (M::GET, "/me", "/me", json!(null), "UAAAO"),
        // Directory
        (M::GET, "/users", "/users", json!(null), "UFAAO"),
        (M::POST, "/users", "/users", json!({"email": "new-user@example.test", "name": "New", "role": "agent", "password": "0123456789"}), "UFFAO"),
        (M::GET, "/users/{id}", "/users/{agent}", json!(null), "UAAAN"),
        (M::PATCH, "/users/{id}", "/users/{agent}", json!({"name": "Agent A"}), "UFFAN"),
        (M::GET, "/users/{id}/skills", "/users/{agent}/skills", json!(null), "UAAAN"),
        (M::PUT, "/users/{id}/skills/{skill_id}", "/users/{agent}/skills/{skill}", json!({"proficiency": 3}), "UFFAN"),
        (M::GET, "/teams", "/teams", json!(null), "UAAAO"),
        (M::POST, "/teams", "/teams", json!({"name": "Tier 2"}), "UFFAO"),
        (M::PUT, "/teams/{id}/members/{user_id}", "/teams/{team}/members/{agent}", json!(null), "UFFAN"),
        (M::GET, "/skills", "/skills", json!(null), "UAAAO"),
        (M::POST, "/skills", "/skills", json!({"name": "french"}), "UFFAO"),
        // Customers and the timeline
        (M::GET, "/customers", "/customers", json!(null), "UAAAO"),
        (M::POST, "/customers", "/customers", json!({"name": "Bea"}), "UAAAO"),
        (M::GET, "/customers/lookup", "/customers/lookup?kind=phone&value=%2B15550100777", json!(null), "UAAAN"),
        (M::GET, "/customers/{id}", "/customers/{customer}", json!(null), "UAAAN"),
        (M::PATCH, "/customers/{id}", "/customers/{customer}", json!({"name": "Ann Acme"}), "UAAAN"),
        (M::POST, "/customers/{id}/identities", "/customers/{customer}/identities", json!({"identities": [{"kind": "email", "value": "ann@example.com"}]}), "UAAAN"),
        (M::GET, "/customers/{id}/timeline", "/customers/{customer}/timeline", json!(null), "UAAAN"),
        (M::POST, "/customers/{id}/interactions", "/customers/{customer}/interactions", json!({"kind": "message", "channel": "web_chat", "direction": "inbound", "body": "again"}), "UAAAN"),
        (M::POST, "/customers/{id}/notes", "/customers/{customer}/notes", json!({"body": "called back"}), "UAAAN"),
        (M::GET, "/customers/{id}/export", "/customers/{customer}/export", json!(null), "UFFAN"),
        (M::GET, "/interactions/search", "/interactions/search?q=hello", json!(null), "UAAAO"),
        (M::GET, "/interactions/{id}/transcript", "/interactions/{interaction}/transcript", json!(null), "UAAAN"),
        // Cases
        (M::GET, "/cases", "/cases", json!(null), "UAAAO"),
        (M::POST, "/cases", "/cases", json!({"title": "Another", "customer_id": "{customer}", "priority": "P2"}), "UAAAR"),
        (M::GET, "/cases/{id}", "/cases/{case}", json!(null), "UAAAN"),
        (M::PATCH, "/cases/{id}", "/cases/{case}", json!({"title": "Broken still"}), "UAAAN"),
        (M::POST, "/cases/{id}/transitions", "/cases/{case}/transitions", json!({"status": "open"}), "UAAAN"),
        (M::GET, "/cases/{id}/events", "/cases/{case}/events", json!(null), "UAAAN"),
        (M::GET, "/cases/{id}/interactions", "/cases/{case}/interactions", json!(null), "UAAAN"),
        (M::POST, "/cases/{id}/tags", "/cases/{case}/tags", json!({"add": ["vip"], "remove": []}), "UAAAN"),
        // Batches answer 200 with an outcome per item: another tenant's admin gets the
        // item refused as not found (its own id echoed, nothing else).
        (M::GET, "/cases/{id}/tasks", "/cases/{case}/tasks", json!(null), "UAAAN"),
        (M::POST, "/cases/{id}/tasks", "/cases/{case}/tasks", json!({"title": "Call back"}), "UAAAN"),
        (M::GET, "/tasks", "/tasks", json!(null), "UAAAO"),
        (M::GET, "/tasks/{id}", "/tasks/{task}", json!(null), "UAAAN"),
        (M::PATCH, "/tasks/{id}", "/tasks/{task}", json!({"status": "done"}), "UAAAN"),
        (M::POST, "/cases/batch", "/cases/batch", json!({"ids": ["{case}"], "action": {"type": "tag", "add": ["bulk"]}}), "UAAAA"),
        (M::POST, "/conversations/batch", "/conversations/batch", json!({"ids": ["{conversation}"], "action": {"type": "tag", "add": ["bulk"]}}), "UAAAA"),
        (M::POST, "/cases/{id}/links", "/cases/{case}/links", json!({"case_id": "{case2}", "kind": "relates_to"}), "UAAAR"),
        // Administration
        (M::GET, "/case-types", "/case-types", json!(null), "UAAAO"),
        (M::POST, "/case-types", "/case-types", json!({"name": "Question", "fields": []}), "UFFAO"),
        (M::PUT, "/case-types/{id}", "/case-types/{case_type}", json!({"name": "Bug", "fields": []}), "UFFAN"),
        (M::GET, "/canned-responses", "/canned-responses", json!(null), "UAAAO"),
        (M::GET, "/colleagues", "/colleagues", json!(null), "UAAAO"),
        (M::GET, "/kb/articles", "/kb/articles", json!(null), "UAAAO"),
        (M::POST, "/kb/articles", "/kb/articles", json!({"slug": "dns", "title": "DNS", "body": "Use 198.51.100.53.", "tags": []}), "UFFAO"),
        (M::GET, "/kb/articles/{slug}", "/kb/articles/router-reset", json!(null), "UAAAN"),
        (M::PUT, "/kb/articles/{slug}", "/kb/articles/router-reset", json!({"slug": "router-reset", "title": "Reset the router", "body": "Hold reset for 15 s.", "tags": ["router"]}), "UFFAN"),
        (M::GET, "/kb/articles/{slug}/versions", "/kb/articles/router-reset/versions", json!(null), "UAAAN"),
        (M::POST, "/kb/articles/{slug}/unpublish", "/kb/articles/router-reset/unpublish", json!(null), "UFFAN"),
        (M::POST, "/kb/articles/{slug}/publish", "/kb/articles/router-reset/publish", json!({}), "UFFAN"),
        (M::GET, "/kb/search", "/kb/search?q=router", json!(null), "UAAAO"),
        (M::GET, "/kb/settings", "/kb/settings", json!(null), "UAAAO"),
        (M::PUT, "/kb/settings", "/kb/settings", json!({"bot_enabled": false}), "UFFAO"),
        (M::POST, "/ai/answer", "/ai/answer", json!({"question": "How do I reset the router?"}), "UAAAO"),
        (M::POST, "/canned-responses", "/canned-responses", json!({"shortcut": "thanks", "title": "Thanks", "body": "Thank you, {{customer.name}}."}), "UFFAO"),
        (M::GET, "/canned-responses/{id}", "/canned-responses/{canned}", json!(null), "UAAAN"),
        (M::PUT, "/canned-responses/{id}", "/canned-responses/{canned}", json!({"shortcut": "hello", "title": "Hello", "body": "Hello {{customer.name}}"}), "UFFAN"),
        // Automation rules (admins)
        (M::GET, "/rules", "/rules", json!(null), "UFFAO"),
        (M::POST, "/rules", "/rules", rule_body("new"), "UFFAO"),
        (M::POST, "/rules/dry-run", "/rules/dry-run", json!({"limit": 10}), "UFFAO"),
        (M::GET, "/rules/{id}", "/rules/{rule}", json!(null), "UFFAN"),
        (M::PUT, "/rules/{id}", "/rules/{rule}", rule_body("renamed"), "UFFAN"),
        (M::GET, "/rules/{id}/log", "/rules/{rule}/log", json!(null), "UFFAN"),
        (M::GET, "/webhooks", "/webhooks", json!(null), "UFFAO"),
        (M::POST, "/webhooks", "/webhooks", json!({"url": "https://hooks.example.com/x", "event_types": ["*"]}), "UFFAO"),
        (M::GET, "/webhooks/{id}", "/webhooks/{webhook}", json!(null), "UFFAN"),
        (M::PUT, "/webhooks/{id}", "/webhooks/{webhook}", json!({"url": "https://hooks.example.com/y", "event_types": ["case.created"]}), "UFFAN"),
        (M::GET, "/webhooks/{id}/deliveries", "/webhooks/{webhook}/deliveries", json!(null), "UFFAN"),
        // No delivery exists in this world: found by nobody.
        (M::POST, "/webhooks/deliveries/{id}/replay", "/webhooks/deliveries/none/replay", json!(null), "UFFNN"),
        (M::GET, "/sla-policies", "/sla-policies", json!(null), "UAAAO"),
        (M::PUT, "/sla-policies/{priority}", "/sla-policies/P1", json!({"first_response_minutes": 30, "resolution_minutes": 300}), "UFFAO"),
        (M::GET, "/audit", "/audit", json!(null), "UFAAO"),
        // IVR
        (M::GET, "/ivr/flows", "/ivr/flows", json!(null), "UFAAO"),
        (M::POST, "/ivr/flows", "/ivr/flows", flow_doc("f2"), "UFFAO"),
        (M::GET, "/ivr/flows/{id}", "/ivr/flows/f1", json!(null), "UFAAN"),
        (M::PUT, "/ivr/flows/{id}", "/ivr/flows/f1", flow.clone(), "UFFAN"),
        (M::POST, "/ivr/import", "/ivr/import", flow_doc("f3"), "UFFAO"),
        (M::POST, "/ivr/flows/{id}/validate", "/ivr/flows/f1/validate", json!(null), "UFAAN"),
        (M::POST, "/ivr/flows/{id}/publish", "/ivr/flows/f1/publish", json!(null), "UFFAN"),
        (M::GET, "/ivr/flows/{id}/versions", "/ivr/flows/f1/versions", json!(null), "UFAAN"),
        (M::GET, "/ivr/flows/{id}/versions/{version}", "/ivr/flows/f1/versions/{version}", json!(null), "UFAAN"),
        (M::POST, "/ivr/flows/{id}/rollback", "/ivr/flows/f1/rollback", json!({"version": 1}), "UFFAN"),
        (M::GET, "/ivr/flows/{id}/events", "/ivr/flows/f1/events", json!(null), "UFAAN"),
        (M::GET, "/ivr/flows/{id}/export", "/ivr/flows/f1/export", json!(null), "UFAAN"),
        (M::POST, "/ivr/flows/{id}/simulate", "/ivr/flows/f1/simulate", json!({"script": {"steps": ["hangup"]}}), "UFAAN"),
        (M::GET, "/ivr/calendars", "/ivr/calendars", json!(null), "UFAAO"),
        (M::PUT, "/ivr/calendars/{name}", "/ivr/calendars/main", json!({"time_zone": "UTC"}), "UFFAO"),
        (M::GET, "/ivr/numbers", "/ivr/numbers", json!(null), "UFAAO"),
        (M::PUT, "/ivr/numbers/{number}", "/ivr/numbers/{ivr_number}", json!({"flow_id": "f1"}), "UFFAR"),
        (M::GET, "/ivr/prompts", "/ivr/prompts", json!(null), "UFAAO"),
        (M::POST, "/ivr/prompts", "/ivr/prompts?name=greeting", json!(WAV_BODY), "UFFAO"),
        (M::GET, "/ivr/prompts/{id}", "/ivr/prompts/{prompt}", json!(null), "UFAAN"),
        (M::GET, "/ivr/prompts/{id}/audio", "/ivr/prompts/{prompt}/audio", json!(null), "UFAAN"),
        // Telephony
        (M::GET, "/users/{id}/sip", "/users/{agent}/sip", json!(null), "UAAAN"),
        (M::PUT, "/users/{id}/sip", "/users/{agent}/sip", json!({"extension": "1001"}), "UFFAN"),
        (M::GET, "/trunks", "/trunks", json!(null), "UFFAO"),
        (M::POST, "/trunks", "/trunks", json!({"name": "new carrier", "inbound_addresses": ["192.0.2.7"]}), "UFFAO"),
        (M::GET, "/trunks/{id}", "/trunks/{trunk}", json!(null), "UFFAN"),
        (M::PUT, "/trunks/{id}", "/trunks/{trunk}", json!({"name": "carrier", "inbound_addresses": ["192.0.2.1"], "caller_id": "+15550111"}), "UFFAN"),
        (M::GET, "/numbers", "/numbers", json!(null), "UFFAO"),
        (M::POST, "/numbers", "/numbers", json!({"number": "+15550113", "trunk_id": "{trunk}"}), "UFFAR"),
        (M::GET, "/sip/calls/{call_id}/trace", "/sip/calls/{sip_call}/trace", json!(null), "UFAAN"),
        (M::GET, "/sip/metrics", "/sip/metrics", json!(null), "UFAAO"),
        (M::GET, "/sip/registrations", "/sip/registrations", json!(null), "UFAAO"),
        (M::GET, "/sip/bans", "/sip/bans", json!(null), "UFFAO"),
        // Server-wide figures: only the operator's metrics token, no tenant user.
        (M::GET, "/metrics", "/metrics", json!(null), "UFFFF"),
        // No source is banned: the admin's lift is "not found", the others are refused first.
        (M::DELETE, "/sip/bans/{addr}", "/sip/bans/192.0.2.1", json!(null), "UFFNN"),
        (M::GET, "/dial-policy", "/dial-policy", json!(null), "UFAAO"),
        (M::PUT, "/dial-policy", "/dial-policy", json!({"country": "US"}), "UFFAO"),
        (M::GET, "/recordings/retention", "/recordings/retention", json!(null), "UFAAO"),
        (M::PUT, "/recordings/retention", "/recordings/retention", json!({"days": 30}), "UFFAO"),
        // The world's interaction has no attachment: "not found" for everyone signed in.
        (M::GET, "/interactions/{id}/attachments/{index}", "/interactions/{interaction}/attachments/0", json!(null), "UNNNN"),
        // ACD
        (M::GET, "/queues", "/queues", json!(null), "UAAAO"),
        (M::POST, "/queues", "/queues", json!({"name": "support"}), "UFFAO"),
        (M::GET, "/queues/live", "/queues/live", json!(null), "UFAAO"),
        (M::GET, "/queues/{id}", "/queues/{queue}", json!(null), "UAAAN"),
        (M::PUT, "/queues/{id}", "/queues/{queue}", json!({"name": "sales"}), "UFFAN"),
        (M::GET, "/queues/{id}/speech", "/queues/{queue}/speech", json!(null), "UAAAN"),
        (M::PUT, "/queues/{id}/speech", "/queues/{queue}/speech", json!({"transcription": false}), "UFFAN"),
        (M::GET, "/agents/live", "/agents/live", json!(null), "UFAAO"),
        (M::GET, "/users/{id}/presence", "/users/{agent}/presence", json!(null), "UAAAN"),
        (M::PUT, "/users/{id}/presence", "/users/{agent}/presence", json!({"status": "available"}), "UAAAN"),
        (M::GET, "/users/{id}/capacity", "/users/{agent}/capacity", json!(null), "UAAAN"),
        (M::PUT, "/users/{id}/capacity", "/users/{agent}/capacity", json!({"chat": 4, "call_blocks_other_work": false}), "UFFAN"),
        (M::GET, "/call-records", "/call-records", json!(null), "UFAAO"),
        (M::GET, "/stats/queues", "/stats/queues", json!(null), "UFAAO"),
        (M::GET, "/stats/agents", "/stats/agents", json!(null), "UFAAO"),
        (M::GET, "/acd/recording", "/acd/recording", json!(null), "UFFAO"),
        (M::PUT, "/acd/recording", "/acd/recording", json!({"recording": "on"}), "UFFAO"),
        (M::GET, "/callbacks", "/callbacks", json!(null), "UFAAO"),
        // Analytics (supervisors): no report of the world's is named, so deleting one is
        // "not found" for those allowed to ask.
        (M::GET, "/analytics/kpis", "/analytics/kpis?group_by=agent&format=csv", json!(null), "UFAAO"),
        (M::GET, "/analytics/live", "/analytics/live", json!(null), "UFAAO"),
        (M::GET, "/analytics/drilldown", "/analytics/drilldown?from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z", json!(null), "UFAAO"),
        (M::GET, "/analytics/reports", "/analytics/reports", json!(null), "UFAAO"),
        (M::POST, "/analytics/reports", "/analytics/reports", json!({"name": "Service level", "metrics": ["service_level"], "group_by": "queue"}), "UFAAO"),
        (M::DELETE, "/analytics/reports/{id}", "/analytics/reports/none", json!(null), "UFNNN"),
        (M::POST, "/callbacks/{id}/cancel", "/callbacks/{callback}/cancel", json!(null), "UFAAN"),
        // Work items: no router runs here, so acting on one is refused (409) after the
        // checks; the agent sees only items offered or assigned to them.
        (M::GET, "/work-items", "/work-items", json!(null), "UAAAO"),
        (M::POST, "/work-items", "/work-items", json!({"kind": "task", "queue": "{queue}", "title": "Call back", "priority": "P1"}), "UFAAR"),
        (M::GET, "/work-items/{id}", "/work-items/{work_item}", json!(null), "UNAAN"),
        (M::POST, "/work-items/{id}/accept", "/work-items/{work_item}/accept", json!(null), "UNAAN"),
        (M::POST, "/work-items/{id}/decline", "/work-items/{work_item}/decline", json!(null), "UNAAN"),
        (M::POST, "/work-items/{id}/complete", "/work-items/{work_item}/complete", json!(null), "UNAAN"),
        // Conversations: the world's conversation is unassigned and has no team, so the
        // agent sees it; agents assign only to themselves.
        (M::GET, "/conversations", "/conversations", json!(null), "UAAAO"),
        (M::GET, "/conversations/{id}", "/conversations/{conversation}", json!(null), "UAAAN"),
        (M::GET, "/conversations/{id}/brief", "/conversations/{conversation}/brief", json!(null), "UAAAN"),
        (M::POST, "/conversations/{id}/draft", "/conversations/{conversation}/draft", json!({}), "UAAAN"),
        (M::POST, "/conversations/{id}/messages", "/conversations/{conversation}/messages", json!({"text": "On its way"}), "UAAAN"),
        (M::POST, "/conversations/{id}/status", "/conversations/{conversation}/status", json!({"status": "pending"}), "UAAAN"),
        // The world's conversation has no attachment: "not found" for everyone signed in.
        (M::GET, "/conversations/{id}/attachments/{attachment_id}", "/conversations/{conversation}/attachments/none", json!(null), "UNNNN"),
        (M::POST, "/conversations/{id}/assign", "/conversations/{conversation}/assign", json!({"user_id": "{agent}"}), "UAAAN"),
        (M::POST, "/conversations/{id}/typing", "/conversations/{conversation}/typing", json!(null), "UAAAN"),
        // The mail thread (empty for the world's web chat conversation).
        (M::GET, "/conversations/{id}/email", "/conversations/{conversation}/email", json!(null), "UAAAN"),
        // Triage (issue #20): anyone signed in triages a text and corrects what they
        // see; supervisors and admins define intents and read corrections.
        (M::POST, "/ai/triage", "/ai/triage", json!({"text": "My internet is down", "channel": "web_chat"}), "UAAAO"),
        (M::GET, "/ai/intents", "/ai/intents", json!(null), "UAAAO"),
        (M::POST, "/ai/intents", "/ai/intents", json!({"name": "solar", "description": "Solar panels", "examples": ["My solar panels stopped"]}), "UFAAO"),
        (M::GET, "/ai/corrections", "/ai/corrections", json!(null), "UFAAO"),
        // Channels (issue #19): everyone lists them (the inbox filter), admins write.
        (M::GET, "/channels", "/channels", json!(null), "UAAAO"),
        (M::POST, "/channels", "/channels", json!({"kind": "api", "name": "Shop", "config": {"signing_secret": "k"}}), "UFFAO"),
        (M::GET, "/channels/{id}", "/channels/{channel}", json!(null), "UAAAN"),
        (M::PATCH, "/channels/{id}", "/channels/{channel}", json!({"name": "Support bot"}), "UFFAN"),
        // Provider webhooks (issue #19): no staff token counts; Telegram has no GET
        // check, and a POST without the provider's signature is refused.
        (M::GET, "/hooks/v1/{kind}/{id}", "/hooks/v1/telegram/{channel}", json!(null), "NNNNN"),
        (M::POST, "/hooks/v1/{kind}/{id}", "/hooks/v1/telegram/{channel}", json!({"update_id": 1}), "UUUUU"),
        (M::GET, "/conversations/{id}/triage", "/conversations/{conversation}/triage", json!(null), "UAAAN"),
        (M::POST, "/conversations/{id}/triage", "/conversations/{conversation}/triage", json!({"intent": "sales", "priority": "P3"}), "UAAAN"),
        // Speech
        (M::GET, "/speech/settings", "/speech/settings", json!(null), "UAAAO"),
        (M::PUT, "/speech/settings", "/speech/settings", json!({"transcription": true, "require_consent": true, "alert_phrases": []}), "UFFAO"),
        // Live calls: the agent is the agent of call-1.
        (M::GET, "/calls", "/calls", json!(null), "UAAAO"),
        (M::POST, "/calls", "/calls", json!({"number": "+15550199"}), "UAAAO"),
        (M::GET, "/calls/{id}", "/calls/{call}", json!(null), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "hold"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "unhold"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "mute"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "unmute"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "transfer", "target": {"number": "+15550199"}}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "consult", "target": {"user_id": "{supervisor}"}}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "complete_transfer"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "cancel_consult"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "add_party", "target": {"extension": "1009"}}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "disposition", "code": "sold"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "pause_recording"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "resume_recording"}), "UAAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "listen"}), "UFAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "whisper"}), "UFAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "barge"}), "UFAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "take_over"}), "UFAAN"),
        (M::POST, "/calls/{id}/actions", "/calls/{call}/actions", json!({"action": "hangup"}), "UAAAN"),
        // Incidents (issue #21): every signed-in role reads and works them (engineers
        // too, see `engineer_expect`); public updates, suggestions and settling linked
        // cases are for agents and above; Slack is the admins'. The world's incident is
        // open, so settling its cases is refused (409) after the checks.
        (M::GET, "/incidents", "/incidents", json!(null), "UAAAO"),
        (M::POST, "/incidents", "/incidents", json!({"title": "Another outage", "severity": "P3"}), "UAAAO"),
        (M::GET, "/incidents/suggestions", "/incidents/suggestions", json!(null), "UAAAO"),
        (M::GET, "/incidents/{id}", "/incidents/{incident}", json!(null), "UAAAN"),
        (M::POST, "/incidents/{id}/links", "/incidents/{incident}/links", json!({"case_ids": [], "conversation_ids": ["{conversation}"]}), "UAAAN"),
        (M::POST, "/incidents/{id}/updates", "/incidents/{incident}/updates", json!({"text": "Looking into it", "public": false}), "UAAAN"),
        (M::POST, "/incidents/{id}/status", "/incidents/{incident}/status", json!({"status": "identified"}), "UAAAN"),
        (M::POST, "/incidents/{id}/cases", "/incidents/{incident}/cases", json!({"action": "resolve"}), "UAAAN"),
        (M::POST, "/incidents/{id}/swarm", "/incidents/{incident}/swarm", json!(null), "UAAAN"),
        (M::GET, "/conversations/{id}/incidents", "/conversations/{conversation}/incidents", json!(null), "UAAAN"),
        (M::PUT, "/integrations/slack", "/integrations/slack", json!({"bot_token": "xoxb-test", "signing_secret": "shh"}), "UFFAO"),
        // Slack's Events API: signed by Slack, never by a bearer token.
        (M::POST, "/hooks/v1/slack/{tenant}", "/hooks/v1/slack/acme", json!({"type": "url_verification", "challenge": "x"}), "UUUUU"),
        // Destructive rows last, on fixtures of their own.
        (M::POST, "/cases/{id}/merge", "/cases/{case2}/merge", json!({"into": "{case}"}), "UFAAN"),
        (M::POST, "/customers/{id}/merge", "/customers/{customer2}/merge", json!({"into": "{customer}"}), "UFAAN"),
        (M::POST, "/customers/{id}/erase", "/customers/{customer3}/erase", json!(null), "UFFAN"),
        (M::DELETE, "/users/{id}/skills/{skill_id}", "/users/{agent}/skills/{skill}", json!(null), "UFFAN"),
        (M::DELETE, "/teams/{id}/members/{user_id}", "/teams/{team}/members/{agent}", json!(null), "UFFAN"),
        (M::DELETE, "/ivr/numbers/{number}", "/ivr/numbers/{ivr_number}", json!(null), "UFFAN"),
        (M::DELETE, "/ivr/prompts/{id}", "/ivr/prompts/{prompt}", json!(null), "UFFAN"),
        (M::DELETE, "/numbers/{id}", "/numbers/{number2}", json!(null), "UFFAN"),
        (M::DELETE, "/trunks/{id}", "/trunks/{trunk2}", json!(null), "UFFAN"),
        (M::DELETE, "/queues/{id}", "/queues/{queue2}", json!(null), "UFFAN"),
        (M::DELETE, "/canned-responses/{id}", "/canned-responses/{canned2}", json!(null), "UFFAN"),
        (M::DELETE, "/channels/{id}", "/channels/{channel2}", json!(null), "UFFAN"),
        (M::DELETE, "/rules/{id}", "/rules/{rule2}", json!(null), "UFFAN"),
        (M::DELETE, "/webhooks/{id}", "/webhooks/{webhook2}", json!(null), "UFFAN"),
        (M::POST, "/auth/logout", "/auth/logout", json!(null), "UAAAO"),
    ]
}

/// An automation rule named `name` (tags refund messages).
fn rule_body(name: &str) -> Value {
    json!({
        "name": name,
        "trigger": {"type": "event", "kinds": ["conversation.message"]},
        "conditions": [{"type": "field", "field": "message.text", "op": "contains", "value": "refund"}],
        "actions": [{"type": "add_tags", "tags": ["billing"]}]
    })
}

fn fill_json(w: &World, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(w.fill(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(w, x)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_json(w, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn every_route_and_call_control_by_role() {
    let mut t = T::new().await;
    let (acme, agent_id) = {
        let agent = t.login("acme", Role::Agent).await;
        let (a, _) = t.store.actor_for_token(&agent).await.unwrap();
        (a.tenant_id, a.user_id.unwrap())
    };
    // Prompt uploads go under the test's own directory.
    let cfg = WebConfig {
        data_dir: t.dir.clone(),
        ..WebConfig::default()
    };
    t.app = app(AppState::new(t.store.clone(), cfg)
        .with_call_control(Arc::new(FakeCalls {
            tenant: acme.clone(),
            agent: agent_id,
        }))
        .with_sip(Arc::new(FakeSip { tenant: acme }))
        .with_chat(
            crate::chat::test_backend(&t.store),
            parley_web::chat::ChatSecret::random(),
        ));
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let other = t.login("globex", Role::Admin).await;
    let w = world(&t, &admin, &agent).await;

    // Coverage: every documented (method, path) has a row, and no row names a path
    // that is not documented.
    let doc = serde_json::to_value(parley_web::openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            documented.insert((
                m.to_uppercase(),
                path.trim_start_matches("/api/v1").to_owned(),
            ));
        }
    }
    let rows = table();
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(m, p, ..)| (m.to_string(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the matrix: {missing:?}"
    );
    let extra: Vec<_> = covered.difference(&documented).collect();
    assert!(extra.is_empty(), "rows for undocumented routes: {extra:?}");

    // An agent of the same tenant who is not on the call: the call does not exist for
    // them, whatever the control.
    let bystander = {
        let (s, v) = t.call(Method::POST, "/api/v1/users", Some(&admin), Some(json!({"email": "agent2@acme.test", "name": "Bystander", "role": "agent", "password": crate::PW}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"tenant": "acme", "email": "agent2@acme.test", "password": crate::PW})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    };
    let (s, v) = t
        .call(Method::GET, "/api/v1/calls", Some(&bystander), None)
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, _) = t
        .call(Method::GET, "/api/v1/calls/call-1", Some(&bystander), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for action in [
        "hold",
        "unhold",
        "mute",
        "unmute",
        "hangup",
        "complete_transfer",
        "cancel_consult",
        "pause_recording",
        "resume_recording",
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/calls/call-1/actions",
                Some(&bystander),
                Some(json!({"action": action})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}: {v}");
    }
    for action in ["listen", "whisper", "barge", "take_over"] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/calls/call-1/actions",
                Some(&bystander),
                Some(json!({"action": action})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{action}: {v}");
    }

    // Roles in the order of the columns; the owning tenant's admin goes last so that
    // the others never see a fixture it already changed.
    let tokens: [Option<&str>; 5] = [None, Some(&agent), Some(&sup), Some(&admin), Some(&other)];
    let order = [0, 4, 1, 2, 3];
    let secrets = w.secrets();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (m, tmpl, path, body, code) in &rows {
        // The public chat, portal and provider-hook APIs are not under /api/v1.
        let uri = if path.starts_with("/chat/")
            || path.starts_with("/portal/")
            || path.starts_with("/hooks/")
        {
            w.fill(path)
        } else {
            format!("/api/v1{}", w.fill(path))
        };
        let body = (!body.is_null()).then(|| fill_json(&w, body));
        let want = expects(code);
        for &i in &order {
            let (s, v) = if body.as_ref().and_then(Value::as_str) == Some(WAV_BODY) {
                let mut req = Request::builder()
                    .method(m.clone())
                    .uri(&uri)
                    .header(header::CONTENT_TYPE, "audio/wav");
                if let Some(tok) = tokens[i] {
                    req = req.header(header::AUTHORIZATION, format!("Bearer {tok}"));
                }
                t.raw(req.body(Body::from(WAV)).unwrap()).await
            } else {
                t.call(m.clone(), &uri, tokens[i], body.clone()).await
            };
            checked += 1;
            let allowed = s.is_success()
                || s == StatusCode::CONFLICT
                || s == StatusCode::UNPROCESSABLE_ENTITY;
            let good = match want[i] {
                Expect::U => s == StatusCode::UNAUTHORIZED,
                Expect::F => s == StatusCode::FORBIDDEN,
                Expect::N => s == StatusCode::NOT_FOUND,
                Expect::A => allowed,
                Expect::R => {
                    let text = v.to_string();
                    (s == StatusCode::NOT_FOUND || s == StatusCode::UNPROCESSABLE_ENTITY)
                        && !secrets.iter().any(|x| text.contains(*x))
                }
                Expect::O => {
                    let text = v.to_string();
                    let leak = secrets.iter().find(|x| text.contains(**x));
                    allowed && leak.is_none()
                }
            };
            if !good {
                failures.push(format!(
                    "{m} {tmpl} as {}: want {:?}, got {s} {}",
                    ROLES[i],
                    want[i],
                    truncate(&v)
                ));
            }
        }
    }
    // The engineer (issue #21), a sixth column derived per row: the public routes
    // answer them as anyone; of the staff API, only their own account and the
    // incidents' routes (`engineer_expect`); everything else is 403. Run last: the
    // engineer's logout ends their token.
    let engineer = t.login("acme", Role::Engineer).await;
    for (m, tmpl, path, body, code) in &rows {
        let public = path.starts_with("/chat/")
            || path.starts_with("/portal/")
            || path.starts_with("/hooks/")
            || *tmpl == "/auth/login";
        let want = if public {
            expects(code)[0]
        } else {
            engineer_expect(m, tmpl)
        };
        if body.as_str() == Some(WAV_BODY) {
            continue;
        }
        let uri = if path.starts_with("/chat/")
            || path.starts_with("/portal/")
            || path.starts_with("/hooks/")
        {
            w.fill(path)
        } else {
            format!("/api/v1{}", w.fill(path))
        };
        let body = (!body.is_null()).then(|| fill_json(&w, body));
        let (s, v) = t.call(m.clone(), &uri, Some(&engineer), body).await;
        checked += 1;
        let good = match want {
            Expect::U => s == StatusCode::UNAUTHORIZED,
            Expect::F => s == StatusCode::FORBIDDEN,
            Expect::A => {
                s.is_success() || s == StatusCode::CONFLICT || s == StatusCode::UNPROCESSABLE_ENTITY
            }
            Expect::N => s == StatusCode::NOT_FOUND,
            other => panic!("no engineer expectation {other:?}"),
        };
        if !good {
            failures.push(format!(
                "{m} {tmpl} as engineer: want {want:?}, got {s} {}",
                truncate(&v)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What an engineer gets on a staff route: their own account and the incidents'
/// routes that are not about customers; 403 on everything else.
fn engineer_expect(m: &Method, tmpl: &str) -> Expect {
    const ALLOWED: [(&str, &str); 9] = [
        ("GET", "/me"),
        ("POST", "/auth/logout"),
        ("GET", "/incidents"),
        ("POST", "/incidents"),
        ("GET", "/incidents/{id}"),
        ("POST", "/incidents/{id}/links"),
        ("POST", "/incidents/{id}/updates"),
        ("POST", "/incidents/{id}/status"),
        ("POST", "/incidents/{id}/swarm"),
    ];
    if ALLOWED.contains(&(m.as_str(), tmpl)) {
        Expect::A
    } else {
        Expect::F
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(200).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
