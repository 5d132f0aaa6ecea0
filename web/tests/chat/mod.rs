//! The public web-chat API (`/chat/v1`, issue #17): every pinned route and every
//! bad-input case. Part of the `api` test binary.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use parley_web::chat::ChatSecret;
use parley_web::{AppState, WebConfig, app};
use serde_json::{Value, json};

use crate::T;

pub(crate) mod backend;

pub(crate) use backend::test_backend;

/// The test's app with the web chat attached, and `acme`'s supervisor as the agent.
pub(crate) async fn chat_t() -> (T, Arc<dyn backend::AgentSide>) {
    let mut t = T::new().await;
    let sup = t.login("acme", parley_cases::Role::Supervisor).await;
    let (user, _) = t.store.actor_for_token(&sup).await.unwrap();
    let agent = backend::agent_side(&t.store, user);
    t.app = app(AppState::new(t.store.clone(), WebConfig::default())
        .with_chat(test_backend(&t.store), ChatSecret::new([1; 32])));
    (t, agent)
}

async fn open(t: &T, tenant: &str, body: Value) -> (String, String) {
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/chat/v1/{tenant}/conversations"),
            None,
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["conversation_id"].as_str().unwrap().to_owned(),
        v["visitor_token"].as_str().unwrap().to_owned(),
    )
}

async fn send(t: &T, id: &str, token: &str, body: Value) -> (StatusCode, Value) {
    t.call(
        Method::POST,
        &format!("/chat/v1/conversations/{id}/messages"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_visitor_opens_writes_and_reads_back_in_seq_order() {
    let (t, agent) = chat_t().await;
    let (id, token) = open(
        &t,
        "acme",
        json!({"name": "Vera", "email": "vera@example.com"}),
    )
    .await;
    let (s, v) = send(
        &t,
        &id,
        &token,
        json!({"text": "hello", "client_id": "c-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["seq"], 1);
    let first = v["id"].clone();
    // The same client id again: the same message, not a second one.
    let (s, v) = send(
        &t,
        &id,
        &token,
        json!({"text": "hello", "client_id": "c-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!((v["id"].clone(), v["seq"].clone()), (first, json!(1)));
    agent.reply(&id, "hi Vera, how can I help?").await;
    let (s, v) = send(&t, &id, &token, json!({"text": "my order"})).await;
    assert_eq!((s, v["seq"].clone()), (StatusCode::CREATED, json!(3)));

    let (s, v) = t
        .call(
            Method::GET,
            &format!("/chat/v1/conversations/{id}/messages?after=0"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got: Vec<(i64, String, String)> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["id"].is_string() && m["created_at"].is_string(), "{m}");
            (
                m["seq"].as_i64().unwrap(),
                m["author"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "customer".into(), "hello".into()),
            (2, "agent".into(), "hi Vera, how can I help?".into()),
            (3, "customer".into(), "my order".into()),
        ]
    );
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/v1/conversations/{id}/messages?after=2"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    assert_eq!(v["status"], "open");
}

#[tokio::test]
async fn a_long_poll_is_answered_when_the_agent_replies() {
    let (t, agent) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    let app = t.app.clone();
    let uri = format!("/chat/v1/conversations/{id}/messages?after=0&wait=20");
    let tok = token.clone();
    let poll = tokio::spawn(async move {
        let req = Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {tok}"))
            .body(Body::empty())
            .unwrap();
        let res = tower::ServiceExt::oneshot(app, req).await.unwrap();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    });
    // The poll is waiting (nothing to answer yet) …
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!poll.is_finished());
    // … and the agent's reply answers it, long before its 20 s.
    agent.reply(&id, "still there?").await;
    let v = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the long-poll was not woken")
        .unwrap();
    assert_eq!(v["messages"][0]["text"], "still there?");
    assert_eq!(v["messages"][0]["author"], "agent");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_pinned_codes() {
    let (t, _) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    let (other_id, other_token) = open(&t, "acme", json!({})).await;

    // Over-limit text: 413 naming the limit; nothing stored.
    let long = "x".repeat(parley_web::chat::MAX_TEXT_CHARS + 1);
    let (s, v) = send(&t, &id, &token, json!({ "text": long })).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("4000"),
        "{v}"
    );
    // Bad tokens: 401.
    for bad in [
        "",
        "nonsense",
        &format!("{token}x"),
        &token.replace("v1.", "v2."),
    ] {
        let (s, v) = send(&t, &id, bad, json!({"text": "hi"})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}: {v}");
    }
    // A token signed with another secret: 401.
    let (s, _) = send(
        &t,
        &id,
        &other_token.replace('A', "B"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Another visitor's conversation: 404, whatever the route.
    let (s, v) = send(&t, &other_id, &token, json!({"text": "hi"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    for uri in [
        format!("/chat/v1/conversations/{other_id}/messages"),
        format!("/chat/v1/conversations/{other_id}"),
    ] {
        let (s, _) = t.call(Method::GET, &uri, Some(&token), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
    }
    // Empty text and malformed bodies.
    let (s, _) = send(&t, &id, &token, json!({"text": "   "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = send(&t, &id, &token, json!({"txt": "hi"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Unknown tenant; an email that is not one.
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/v1/nobody/conversations",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .call(
            Method::POST,
            "/chat/v1/acme/conversations",
            None,
            Some(json!({"email": "not an email"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("email"))
    );
    // Nothing of the refused messages was stored.
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/v1/conversations/{id}/messages"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(v["messages"], json!([]));
}

#[tokio::test]
async fn a_flooding_visitor_gets_429_and_others_do_not() {
    let (t, _) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    let (other_id, other_token) = open(&t, "acme", json!({})).await;
    let mut refused = 0;
    for i in 0..40 {
        let (s, v) = send(&t, &id, &token, json!({"text": format!("spam {i}")})).await;
        match s {
            StatusCode::CREATED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}: {v}"),
        }
    }
    assert!(refused >= 10, "only {refused} of 40 refused");
    let (s, v) = send(&t, &other_id, &other_token, json!({"text": "hello"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn every_visitor_route_wants_a_visitor_token() {
    let (t, _) = chat_t().await;
    let (id, _) = open(&t, "acme", json!({})).await;
    let staff = t.login("acme", parley_cases::Role::Admin).await;
    for (m, uri, body) in [
        (
            Method::POST,
            format!("/chat/v1/conversations/{id}/messages"),
            json!({"text": "x"}),
        ),
        (
            Method::GET,
            format!("/chat/v1/conversations/{id}/messages"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/chat/v1/conversations/{id}"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/chat/v1/conversations/{id}/csat"),
            json!({"score": 5}),
        ),
        (
            Method::GET,
            format!("/chat/v1/conversations/{id}/ws"),
            Value::Null,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        for tok in [None, Some(staff.as_str())] {
            let (s, v) = t.call(m.clone(), &uri, tok, body.clone()).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {uri} {tok:?}: {v}");
        }
    }
}

#[tokio::test]
async fn cors_is_open_on_the_chat_api_and_closed_on_the_agent_api() {
    let (t, _) = chat_t().await;
    let preflight = |uri: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(uri)
            .header(header::ORIGIN, "http://shop.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let res = tower::ServiceExt::oneshot(
        t.app.clone(),
        preflight("/chat/v1/conversations/x/messages"),
    )
    .await
    .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let res = tower::ServiceExt::oneshot(
        t.app.clone(),
        Request::builder()
            .uri("/chat/widget.js")
            .header(header::ORIGIN, "http://shop.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // Never on the agents' API.
    for uri in ["/api/v1/auth/login", "/api/v1/me"] {
        let res = tower::ServiceExt::oneshot(t.app.clone(), preflight(uri))
            .await
            .unwrap();
        assert!(
            !res.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn csat_after_resolution() {
    let (t, agent) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    let uri = format!("/chat/v1/conversations/{id}/csat");
    let csat = |score: Value| {
        t.call(
            Method::POST,
            &uri,
            Some(&token),
            Some(json!({"score": score, "comment": "quick and kind"})),
        )
    };
    let (s, v) = csat(json!(5)).await;
    assert_eq!(s, StatusCode::CONFLICT, "not resolved yet: {v}");
    agent.resolve(&id).await;
    for bad in [json!(0), json!(6)] {
        let (s, _) = csat(bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (s, v) = csat(json!(5)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/chat/v1/conversations/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["status"].clone(), v["csat"].clone()),
        (json!("resolved"), json!(5))
    );
}

#[tokio::test]
async fn the_websocket_carries_history_then_new_messages_and_resumes_after_a_seq() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let (t, agent) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    send(&t, &id, &token, json!({"text": "one"})).await;
    send(&t, &id, &token, json!({"text": "two"})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    async fn next_message(
        ws: &mut (
                 impl futures_util::Stream<
            Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>,
        > + Unpin
             ),
    ) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("no frame")
                .unwrap()
                .unwrap();
            if let WsMessage::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v.get("type").is_none() {
                    return v;
                }
            }
        }
    }

    let url = format!("ws://{addr}/chat/v1/conversations/{id}/ws?token={token}&after=1");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let m = next_message(&mut ws).await;
    assert_eq!(
        (m["seq"].clone(), m["text"].clone()),
        (json!(2), json!("two"))
    );
    agent.reply(&id, "three").await;
    let m = next_message(&mut ws).await;
    assert_eq!(
        (m["seq"].clone(), m["author"].clone(), m["text"].clone()),
        (json!(3), json!("agent"), json!("three"))
    );
    drop(ws);
    // Reconnect after the last seen seq: nothing again, nothing lost.
    send(&t, &id, &token, json!({"text": "four"})).await;
    let url = format!("ws://{addr}/chat/v1/conversations/{id}/ws?token={token}&after=3");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let m = next_message(&mut ws).await;
    assert_eq!(
        (m["seq"].clone(), m["text"].clone()),
        (json!(4), json!("four"))
    );
    // Another visitor's token cannot open it.
    let (_, other_token) = open(&t, "acme", json!({})).await;
    let url = format!("ws://{addr}/chat/v1/conversations/{id}/ws?token={other_token}");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn a_read_receipt_marks_the_agents_replies_read() {
    let (t, agent) = chat_t().await;
    let (id, token) = open(&t, "acme", json!({})).await;
    send(&t, &id, &token, json!({"text": "hi"})).await;
    agent.reply(&id, "hello!").await;
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/chat/v1/conversations/{id}/read"),
            Some(&token),
            Some(json!({"seq": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let t_id = t.store.tenant_by_name("acme").await.unwrap().unwrap().id;
    let msgs = t
        .store
        .conversation_messages(&parley_cases::Actor::system(t_id), &id, 0, None)
        .await
        .unwrap();
    let statuses: Vec<&str> = msgs.iter().map(|m| m.status.as_str()).collect();
    assert_eq!(statuses, ["received", "read"]);
}

#[tokio::test]
async fn opening_conversations_is_limited_per_source_address() {
    use axum::extract::ConnectInfo;
    let (t, _) = chat_t().await;
    let open_from = |ip: [u8; 4]| {
        Request::builder()
            .method(Method::POST)
            .uri("/chat/v1/acme/conversations")
            .extension(ConnectInfo(std::net::SocketAddr::from((ip, 40000))))
            .body(Body::empty())
            .unwrap()
    };
    let mut refused = 0;
    for _ in 0..parley_web::chat::OPENS_PER_MINUTE + 5 {
        let (s, v) = t.raw(open_from([192, 0, 2, 1])).await;
        match s {
            StatusCode::CREATED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}: {v}"),
        }
    }
    assert!(refused >= 4, "only {refused} refused");
    let (s, v) = t.raw(open_from([192, 0, 2, 2])).await;
    assert_eq!(s, StatusCode::CREATED, "another address is not slowed: {v}");
}

/// Typing hints both ways over the visitor's WebSocket, never stored: the visitor's
/// `{"type": "typing"}` reaches the agents as `conversation.typing` (author
/// `customer`), throttled to one per 2 s; an agent's `POST …/typing` reaches the
/// widget as `{"type": "typing", "author": "agent"}`; no message is added.
#[tokio::test]
async fn typing_hints_go_both_ways_throttled_and_are_not_stored() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let (t, _agent) = chat_t().await;
    let sup = t.login("acme", parley_cases::Role::Supervisor).await;
    let (id, token) = open(&t, "acme", json!({})).await;
    send(&t, &id, &token, json!({"text": "hello"})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut events = t.store.subscribe();
    let url = format!("ws://{addr}/chat/v1/conversations/{id}/ws?token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    // Visitor → agents: three hints in a burst make one event.
    for _ in 0..3 {
        ws.send(WsMessage::Text(r#"{"type":"typing"}"#.into()))
            .await
            .unwrap();
    }
    let typing = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.kind == "conversation.typing" {
                return e;
            }
        }
    })
    .await
    .expect("no typing event");
    assert_eq!(typing.data["conversation_id"], id.as_str());
    assert_eq!(typing.data["author"], "customer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut more = 0;
    while let Ok(e) = events.try_recv() {
        more += usize::from(e.kind == "conversation.typing");
    }
    assert_eq!(more, 0, "throttled: one hint per 2 s");

    // Agent → visitor.
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/typing"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(WsMessage::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "typing" {
                    return v;
                }
            }
        }
    })
    .await
    .expect("no typing frame");
    assert_eq!(frame["author"], "agent");
    // Nothing stored: the conversation still holds the one message.
    let (_, msgs) = t
        .call(
            Method::GET,
            &format!("/chat/v1/conversations/{id}/messages"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 1, "{msgs}");
    // Another tenant's agent cannot type into it.
    let other = t.login("globex", parley_cases::Role::Supervisor).await;
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/typing"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
