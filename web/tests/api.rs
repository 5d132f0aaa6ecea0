//! HTTP API tests: the router driven with `oneshot` (no server), plus the events
//! WebSocket over a real loopback socket.
#![allow(clippy::unwrap_used)]

mod acd;
mod analytics;
mod bans;
mod batch;
mod calls;
mod canned;
mod channels;
mod chat;
mod conversations;
mod flows;
mod matrix;
mod portal;
mod recordings;
mod speech;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use parley_cases::directory::NewUser;
use parley_cases::{Actor, Role, Store};
use parley_web::{AppState, WebConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct T {
    app: Router,
    store: Store,
    dir: std::path::PathBuf,
}

const PW: &str = "a test password";

impl T {
    async fn new() -> T {
        T::with_config(WebConfig::default()).await
    }

    async fn with_config(cfg: WebConfig) -> T {
        let dir = std::env::temp_dir().join(format!("parley-web-test-{}", uuid_like()));
        let store = Store::open_sqlite_dir(&dir).await.unwrap();
        store.migrate().await.unwrap();
        for tenant in ["acme", "globex"] {
            let t = store.create_tenant(tenant).await.unwrap();
            for role in [Role::Admin, Role::Supervisor, Role::Agent, Role::Engineer] {
                store
                    .create_user(
                        &Actor::system(&t.id),
                        NewUser {
                            email: format!("{role}@{tenant}.test"),
                            name: format!("{role} of {tenant}"),
                            role,
                            password: PW.into(),
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        T {
            app: app(AppState::new(store.clone(), cfg)),
            store,
            dir,
        }
    }

    async fn login(&self, tenant: &str, role: Role) -> String {
        let (s, v) = self.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"tenant": tenant, "email": format!("{role}@{tenant}.test"), "password": PW}))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }
}

impl Drop for T {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "P0" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_route_requires_a_token() {
    let t = T::new().await;
    let doc = serde_json::to_value(parley_web::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            // The public chat API authenticates visitors with its own token
            // (tests/chat: `every_visitor_route_wants_a_visitor_token`); a portal
            // sign-in is for anyone (the rest of the portal wants its session token);
            // provider webhooks are authenticated by the provider's signature
            // (tests/channels hooks, tests/incidents Slack).
            if path == "/api/v1/auth/login"
                || path.starts_with("/chat/v1/")
                || path.starts_with("/portal/v1/{tenant}/")
                || path.starts_with("/hooks/")
            {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (s, v) = t.call(m, &concrete(path), None, Some(json!({}))).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
            assert_eq!(v["error"]["code"], "unauthenticated");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} routes documented?");
    let (s, _) = t.call(Method::GET, "/api/v1/events", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t.call(Method::GET, "/api/v1/softphone", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_are_enforced() {
    let t = T::new().await;
    let agent = t.login("acme", Role::Agent).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let admin = t.login("acme", Role::Admin).await;
    let new_user =
        json!({"email": "new@acme.test", "name": "New", "role": "agent", "password": "0123456789"});
    // (method, uri, body, lowest role allowed)
    let cases: Vec<(Method, &str, Value, Role)> = vec![
        (Method::POST, "/api/v1/users", new_user.clone(), Role::Admin),
        (Method::GET, "/api/v1/users", json!(null), Role::Supervisor),
        (Method::GET, "/api/v1/audit", json!(null), Role::Supervisor),
        (
            Method::POST,
            "/api/v1/teams",
            json!({"name": "T"}),
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/v1/skills",
            json!({"name": "german"}),
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/v1/case-types",
            json!({"name": "Bug", "fields": []}),
            Role::Admin,
        ),
        (
            Method::PUT,
            "/api/v1/sla-policies/P1",
            json!({"first_response_minutes": 30, "resolution_minutes": 300}),
            Role::Admin,
        ),
        (Method::GET, "/api/v1/customers", json!(null), Role::Agent),
    ];
    for (m, uri, body, min) in cases {
        for (role, token) in [
            (Role::Agent, &agent),
            (Role::Supervisor, &sup),
            (Role::Admin, &admin),
        ] {
            let body = (!body.is_null()).then(|| body.clone());
            let (s, v) = t.call(m.clone(), uri, Some(token), body).await;
            if role >= min {
                assert!(s.is_success(), "{role} {m} {uri}: {s} {v}");
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{role} {m} {uri}: {v}");
                assert_eq!(v["error"]["code"], "forbidden");
            }
        }
        // Re-create conflicts aside, the admin's call succeeded once: nothing more to check.
        let _ = t.store.clone();
    }
}

#[tokio::test]
async fn another_tenants_data_is_404() {
    let t = T::new().await;
    let acme = t.login("acme", Role::Agent).await;
    let globex = t.login("globex", Role::Admin).await;
    let (s, c) = t
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&acme),
            Some(json!({"name": "Ann", "identities": [{"kind": "phone", "value": "+15550100"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = c["id"].as_str().unwrap();
    for uri in [
        format!("/api/v1/customers/{id}"),
        format!("/api/v1/customers/{id}/timeline"),
        format!("/api/v1/customers/{id}/export"),
        "/api/v1/customers/lookup?kind=phone&value=%2B15550100".to_owned(),
    ] {
        let (s, v) = t.call(Method::GET, &uri, Some(&globex), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}: {v}");
    }
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/customers/{id}/erase"),
            Some(&globex),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Still intact for its owner.
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("Ann")));
}

#[tokio::test]
async fn bad_input_gets_precise_errors_and_stores_nothing() {
    let t = T::with_config(WebConfig {
        max_body_bytes: 4096,
        ..WebConfig::default()
    })
    .await;
    let tok = t.login("acme", Role::Agent).await;
    let post = |body: Body, ct: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/customers")
            .header(header::AUTHORIZATION, format!("Bearer {tok}"))
            .header(header::CONTENT_TYPE, ct.to_owned())
            .body(body)
            .unwrap()
    };
    let (s, v) = t
        .raw(post(Body::from("{\"name\": "), "application/json"))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (s, v) = t
        .raw(post(
            Body::from("{\"name\": \"x\", \"identities\": [{\"kind\": \"phone\", \"value\": 5}]}"),
            "application/json",
        ))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "identities[0].value");
    let (s, v) = t
        .raw(post(
            Body::from(
                "{\"name\": \"x\", \"identities\": [{\"kind\": \"fax\", \"value\": \"1\"}]}",
            ),
            "application/json",
        ))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("identities[0].kind"))
    );
    let (s, _) = t
        .raw(post(
            Body::from("name=x"),
            "application/x-www-form-urlencoded",
        ))
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let (s, v) = t.raw(post(Body::from(big), "application/json")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"]["code"].is_string());
    let (s, v) = t
        .call(Method::GET, "/api/v1/cases?status=bogus", Some(&tok), None)
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let (s, v) = t.call(Method::GET, "/api/v1/nope", Some(&tok), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (_, list) = t
        .call(Method::GET, "/api/v1/customers", Some(&tok), None)
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing stored by rejected requests"
    );
}

#[tokio::test]
async fn login_is_rate_limited_and_logout_revokes() {
    let t = T::with_config(WebConfig {
        login_attempts_per_minute: 3,
        ..WebConfig::default()
    })
    .await;
    let bad = json!({"tenant": "acme", "email": "agent@acme.test", "password": "wrong password"});
    for _ in 0..3 {
        let (s, v) = t
            .call(Method::POST, "/api/v1/auth/login", None, Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bad.to_string()))
        .unwrap();
    let res = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get(header::RETRY_AFTER).is_some());
    // Other accounts are unaffected.
    let tok = t.login("acme", Role::Supervisor).await;
    let (s, me) = t.call(Method::GET, "/api/v1/me", Some(&tok), None).await;
    assert_eq!(
        (s, me["role"].as_str()),
        (StatusCode::OK, Some("supervisor"))
    );
    let (s, _) = t
        .call(Method::POST, "/api/v1/auth/logout", Some(&tok), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call(Method::GET, "/api/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn case_lifecycle_over_http_with_audit() {
    let t = T::new().await;
    let agent = t.login("acme", Role::Agent).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let (_, c) = t
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&agent),
            Some(json!({"name": "Ann"})),
        )
        .await;
    let (s, case) = t
        .call(
            Method::POST,
            "/api/v1/cases",
            Some(&agent),
            Some(
                json!({"title": "Broken", "customer_id": c["id"], "priority": "P1", "tags": ["x"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    for to in [
        "open",
        "pending_customer",
        "on_hold",
        "resolved",
        "closed",
        "open",
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                &format!("/api/v1/cases/{id}/transitions"),
                Some(&agent),
                Some(json!({"status": to})),
            )
            .await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some(to)), "{v}");
    }
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/cases/{id}/transitions"),
            Some(&agent),
            Some(json!({"status": "new"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    let (_, evs) = t
        .call(
            Method::GET,
            &format!("/api/v1/cases/{id}/events"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(evs.as_array().unwrap().len(), 7);
    let (s, audit) = t
        .call(
            Method::GET,
            &format!("/api/v1/audit?entity_id={id}"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "case.transition").count(),
        6
    );
    assert!(actions.contains(&"case.create"));
    let (_, list) = t
        .call(
            Method::GET,
            "/api/v1/cases?status=open&priority=P1&tag=x",
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn events_websocket_pushes_only_the_tenants_changes() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let t = T::new().await;
    let acme = t.login("acme", Role::Agent).await;
    let globex = t.login("globex", Role::Agent).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let connect = |tok: String, via_header: bool| async move {
        let url = if via_header {
            format!("ws://{addr}/api/v1/events")
        } else {
            format!("ws://{addr}/api/v1/events?access_token={tok}")
        };
        let mut req = url.into_client_request().unwrap();
        if via_header {
            req.headers_mut()
                .insert("authorization", format!("Bearer {tok}").parse().unwrap());
        }
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };
    let mut ws_acme = connect(acme.clone(), true).await;
    let mut ws_globex = connect(globex.clone(), false).await;
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?access_token=bogus"))
            .await
            .is_err()
    );

    let (_, c) = t
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&acme),
            Some(json!({"name": "Ann"})),
        )
        .await;
    let cid = c["id"].as_str().unwrap();
    let (s, _) = t.call(Method::POST, &format!("/api/v1/customers/{cid}/interactions"), Some(&acme), Some(json!({"kind": "message", "channel": "web_chat", "direction": "inbound", "body": "hi"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut kinds = vec![];
    while kinds.len() < 2 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws_acme.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_eq!(v["customer_id"], cid);
        kinds.push(v["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["customer.created", "timeline.appended"]);
    // globex heard nothing.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), ws_globex.next())
            .await
            .is_err()
    );
}

// Issue #13: before, one user (or a stolen token) could open any number of event
// sockets and send 64 MiB messages.
#[tokio::test]
async fn websockets_are_capped_per_user_and_large_client_messages_close_the_socket() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let t = T::new().await;
    let acme = t.login("acme", Role::Agent).await;
    let other = t.login("acme", Role::Supervisor).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(parley_web::serve::serve(
        listener,
        app,
        parley_web::serve::HttpLimits::default(),
        std::future::pending(),
    ));
    let url = |tok: &str| format!("ws://{addr}/api/v1/events?access_token={tok}");
    let mut open = Vec::new();
    for _ in 0..parley_web::MAX_WEBSOCKETS_PER_USER {
        open.push(
            tokio_tungstenite::connect_async(url(&acme))
                .await
                .unwrap()
                .0,
        );
    }
    match tokio_tungstenite::connect_async(url(&acme)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        other => panic!("a socket over the cap: {:?}", other.map(|_| ())),
    }
    // Another user is not affected; a closed socket frees its place.
    let _sup = tokio_tungstenite::connect_async(url(&other))
        .await
        .unwrap()
        .0;
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    let mut again = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url(&acme)).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut ws = again.expect("a freed place is reused");
    // A 1 MiB message from the client ends the socket.
    let _ = ws.send(Message::Text("x".repeat(1 << 20).into())).await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the oversized message closed the socket");
}

#[tokio::test]
async fn telephony_accounts_trunks_and_numbers() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let other_admin = t.login("globex", Role::Admin).await;
    let (_, me) = t.call(Method::GET, "/api/v1/me", Some(&agent), None).await;
    let agent_id = me["id"].as_str().unwrap().to_owned();
    let sip_path = format!("/api/v1/users/{agent_id}/sip");

    // Admin sets extension + password; the response never carries secrets.
    let (s, v) = t
        .call(
            Method::PUT,
            &sip_path,
            Some(&admin),
            Some(json!({"extension": "1001", "password": "sip password 1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["extension"], "1001");
    assert_eq!(v["realm"], "acme");
    assert_eq!(v["has_password"], true);
    assert!(!v.to_string().contains("sip password 1"));
    // The agent may change their own SIP password, not their extension, and only by
    // giving their web password again (issue #13: a stolen token alone must not be
    // enough to take over the phone line).
    for current in [None, Some("not my password")] {
        let (s, v) = t
            .call(
                Method::PUT,
                &sip_path,
                Some(&agent),
                Some(json!({"password": "another sip pw", "current_password": current})),
            )
            .await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::FORBIDDEN, Some("current_password")),
            "{v}"
        );
    }
    let (s, v) = t
        .call(
            Method::PUT,
            &sip_path,
            Some(&agent),
            Some(json!({"password": "another sip pw", "current_password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            &sip_path,
            Some(&agent),
            Some(json!({"extension": "1002"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            &sip_path,
            Some(&admin),
            Some(json!({"extension": "12x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "extension");
    let (s, _) = t.call(Method::GET, &sip_path, Some(&agent), None).await;
    assert_eq!(s, StatusCode::OK);
    // Another tenant's admin cannot see or touch it.
    let (s, _) = t
        .call(
            Method::PUT,
            &sip_path,
            Some(&other_admin),
            Some(json!({"extension": "1003"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Trunks: admin only.
    let body = json!({"name": "carrier", "inbound_addresses": ["127.0.0.1"], "outbound_target": "127.0.0.1:5080", "caller_id": "+15550100"});
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/trunks",
            Some(&agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, trunk) = t
        .call(
            Method::POST,
            "/api/v1/trunks",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{trunk}");
    let (s, _) = t
        .call(Method::POST, "/api/v1/trunks", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let tid = trunk["id"].as_str().unwrap();
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/api/v1/trunks/{tid}"),
            Some(&admin),
            Some(json!({"name": "carrier", "transport": "sctp"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "transport");
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/api/v1/trunks/{tid}"),
            Some(&admin),
            Some(json!({"name": "carrier 2", "transport": "tcp"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["transport"], "tcp");

    // Numbers.
    let (s, n) = t
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(&admin),
            Some(json!({"number": "+1 555 0100", "trunk_id": tid})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    assert_eq!(n["number"], "+15550100");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(&admin),
            Some(json!({"number": "5550100", "trunk_id": tid})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "number");
    let (s, v) = t
        .call(Method::GET, "/api/v1/numbers", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = t
        .call(Method::GET, "/api/v1/numbers", Some(&other_admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_array().unwrap().is_empty());
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/numbers/{}", n["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/trunks/{tid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/trunks/{tid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Without a SIP stack attached, traces are 404 and counters empty; agents are refused.
    let (s, _) = t
        .call(
            Method::GET,
            "/api/v1/sip/calls/abc/trace",
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let sup = t.login("acme", Role::Supervisor).await;
    let (s, _) = t
        .call(Method::GET, "/api/v1/sip/calls/abc/trace", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .call(Method::GET, "/api/v1/sip/metrics", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!([]));
}

/// The dial policy API: supervisors read, admins write (validated, per tenant,
/// audited); agents neither.
#[tokio::test]
async fn dial_policy_is_read_by_supervisors_and_written_by_admins_per_tenant() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    let other_admin = t.login("globex", Role::Admin).await;
    let (s, _) = t
        .call(Method::GET, "/api/v1/dial-policy", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(Method::GET, "/api/v1/dial-policy", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["country"], "US");
    assert_eq!(v["international"], false);
    assert_eq!(v["block_types"][0], "premium_rate");
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/dial-policy",
            Some(&sup),
            Some(json!({"international": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/dial-policy",
            Some(&admin),
            Some(json!({"country": "XX"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "country");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/dial-policy",
            Some(&admin),
            Some(json!({"block_types": ["premium_rate", "satellite_phone"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/dial-policy",
            Some(&admin),
            Some(json!({"country": "de", "allow_prefixes": ["+43"], "max_concurrent_per_user": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["country"], "DE");
    let (_, v) = t
        .call(Method::GET, "/api/v1/dial-policy", Some(&sup), None)
        .await;
    assert_eq!(v["allow_prefixes"], json!(["+43"]));
    let (_, v) = t
        .call(Method::GET, "/api/v1/dial-policy", Some(&other_admin), None)
        .await;
    assert_eq!(v["country"], "US", "another tenant keeps the default");
    let (_, log) = t
        .call(Method::GET, "/api/v1/audit", Some(&admin), None)
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "dial_policy.update"),
        "{log}"
    );
}

#[tokio::test]
async fn the_ui_is_served_offline_with_pages_assets_and_json_404s_elsewhere() {
    let t = T::new().await;
    let get = |uri: &str, etag: Option<&str>| {
        let mut b = Request::builder().method(Method::GET).uri(uri);
        if let Some(e) = etag {
            b = b.header("if-none-match", e);
        }
        let app = t.app.clone();
        let req = b.body(Body::empty()).unwrap();
        async move { app.oneshot(req).await.unwrap() }
    };
    for page in [
        "/",
        "/login",
        "/agent/customers/abc",
        "/admin/users",
        "/designer/demo",
    ] {
        let res = get(page, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let ct = res.headers()["content-type"].to_str().unwrap();
        assert!(ct.starts_with("text/html"), "{page}: {ct}");
        assert_eq!(res.headers()["cache-control"], "no-cache");
        assert!(res.headers().contains_key("content-security-policy"));
    }
    let res = get("/assets/pages/designer.js", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        get("/assets/pages/designer.js", Some(&etag)).await.status(),
        StatusCode::NOT_MODIFIED
    );
    let css = get("/assets/app.css", None).await;
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // Unknown assets, files with extensions and API paths stay JSON 404s.
    for uri in [
        "/assets/nope.js",
        "/assets/index.html",
        "/robots.txt",
        "/api/v1/nope",
    ] {
        let res = get(uri, None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        let ct = res.headers()["content-type"].to_str().unwrap();
        assert!(ct.starts_with("application/json"), "{uri}: {ct}");
    }
    // Only GET/HEAD reach the UI.
    let (s, v) = t
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri("/agent")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

/// Regression (issue #13): API answers, the docs and the bare softphone page had no
/// security headers (only the UI's static files had a CSP), and HSTS was never sent.
#[tokio::test]
async fn security_headers_are_on_every_response() {
    let t = T::new().await;
    let get = |app: Router, uri: &'static str, https: bool| async move {
        let mut req = Request::builder().uri(uri);
        if https {
            req = req.header("x-forwarded-proto", "https");
        }
        app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    };
    let uris = [
        "/",
        "/agent",
        "/assets/app.js",
        "/healthz",
        "/readyz",
        "/api/v1/customers",
        "/api/v1/openapi.json",
        "/api/v1/docs/",
        "/api/v1/nope",
        "/softphone-test.html",
        "/softphone.js",
    ];
    for uri in uris {
        let res = get(t.app.clone(), uri, false).await;
        let h = res.headers();
        let csp = h
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap_or_else(|| panic!("{uri}: no CSP"))
            .to_str()
            .unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self';",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{uri}: {csp}");
        }
        assert!(!csp.contains("unsafe-eval"), "{uri}: {csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{uri}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert!(
            h.get(header::STRICT_TRANSPORT_SECURITY).is_none(),
            "{uri}: HSTS over plain HTTP"
        );
        // Behind a TLS-terminating proxy: HSTS.
        let res = get(t.app.clone(), uri, true).await;
        assert_eq!(
            res.headers()[header::STRICT_TRANSPORT_SECURITY],
            parley_web::headers::HSTS_VALUE,
            "{uri}"
        );
    }
    // Only the UI's own inline-free pages: the app shell loads no inline script.
    let res = get(t.app.clone(), "/softphone-test.html", false).await;
    let html = res.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&html);
    assert!(
        html.contains("<script type=\"module\" src=\"/softphone-test.js\">"),
        "{html}"
    );
    // HSTS settings: always, off.
    for (hsts, https, want) in [
        (parley_web::Hsts::Always, false, true),
        (parley_web::Hsts::Off, true, false),
    ] {
        let cfg = WebConfig {
            hsts,
            ..WebConfig::default()
        };
        let app = app(AppState::new(t.store.clone(), cfg));
        let res = get(app, "/healthz", https).await;
        assert_eq!(
            res.headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY),
            want,
            "{hsts:?}"
        );
    }
}

/// Regression (issue #13): supervisors read flows with their webhooks' credentials.
#[tokio::test]
async fn supervisors_do_not_see_webhook_secrets() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let doc = json!({
        "version": 1, "id": "crm", "start": "hook",
        "nodes": {
            "hook": {"type": "http", "method": "POST",
                     "url": "https://bot:pa55word@crm.example/lookup?key=s3cret-key&n={{caller_number}}",
                     "headers": {"Authorization": "Bearer s3cret-token", "X-Api-Key": "s3cret-api"},
                     "body": "{\"api_key\": \"s3cret-body\"}",
                     "next": "bye", "on_error": "bye"},
            "bye": {"type": "hangup"}
        }
    });
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows",
            Some(&admin),
            Some(doc.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/crm/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let reads = [
        (Method::GET, "/api/v1/ivr/flows", None),
        (Method::GET, "/api/v1/ivr/flows/crm", None),
        (Method::GET, "/api/v1/ivr/flows/crm/versions/1", None),
        (Method::GET, "/api/v1/ivr/flows/crm/export", None),
        (Method::GET, "/api/v1/ivr/flows/crm/export?version=1", None),
        (
            Method::POST,
            "/api/v1/ivr/flows/crm/simulate",
            Some(json!({"script": {"steps": [{"wait": 100}]}})),
        ),
    ];
    for (m, uri, body) in reads {
        let (s, v) = t.call(m.clone(), uri, Some(&sup), body.clone()).await;
        assert!(s.is_success(), "{m} {uri}: {s} {v}");
        let text = v.to_string();
        for secret in ["s3cret", "pa55word", "bot:"] {
            assert!(!text.contains(secret), "{m} {uri} shows {secret}: {text}");
        }
        if uri != "/api/v1/ivr/flows/crm/simulate" {
            assert!(text.contains("[redacted]"), "{uri}: {text}");
            assert!(
                text.contains("crm.example/lookup?key=[redacted]&n=[redacted]"),
                "{uri}: {text}"
            );
        }
        // The admin sees the document as written.
        let (s, v) = t.call(m.clone(), uri, Some(&admin), body).await;
        assert!(s.is_success(), "{m} {uri}: {s} {v}");
        if uri != "/api/v1/ivr/flows/crm/simulate" {
            assert!(v.to_string().contains("s3cret-token"), "{uri}: {v}");
        }
    }
}

/// Regression (issue #13): every agent's events WebSocket received every call's live
/// transcript; now only the agents on the call (and supervisors) do.
#[tokio::test]
async fn transcript_events_reach_only_the_agents_on_the_call() {
    use futures_util::StreamExt as _;

    let t = T::new().await;
    let agent = t.login("acme", Role::Agent).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let other_agent = {
        let admin = t.login("acme", Role::Admin).await;
        let (s, v) = t.call(Method::POST, "/api/v1/users", Some(&admin), Some(json!({"email": "agent2@acme.test", "name": "Second", "role": "agent", "password": PW}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"tenant": "acme", "email": "agent2@acme.test", "password": PW})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    };
    let (actor, _) = t.store.actor_for_token(&agent).await.unwrap();
    let on_call = actor.user_id.clone().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let connect = |tok: String| async move {
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?access_token={tok}"))
            .await
            .unwrap()
            .0
    };
    let mut ws_agent = connect(agent).await;
    let mut ws_sup = connect(sup).await;
    let mut ws_other = connect(other_agent).await;
    let seg = parley_cases::transcripts::TranscriptSegment {
        speaker: "caller".into(),
        start_ms: 0,
        end_ms: 900,
        text: "my card number is".into(),
        sentiment: 0.0,
        live: true,
    };
    t.store
        .publish_transcript_segment(&actor, "call-1", None, &[on_call], &seg)
        .unwrap();
    for ws in [&mut ws_agent, &mut ws_sup] {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "transcript.segment");
        assert_eq!(v["data"]["segment"]["text"], "my card number is");
    }
    // The other agent heard nothing (a later event proves the socket is live).
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&t.login("acme", Role::Agent).await),
            Some(json!({"name": "Ann"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws_other.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "customer.created", "{v}");
}

/// `/readyz` keeps its status code for probes and says in its body which local AI
/// features are on, why the others are off, and which models are installed.
#[tokio::test]
async fn readyz_reports_ai_features_and_why_not() {
    let mut t = T::new().await;
    let (s, v) = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["features"], json!([]));
    let ai = parley_web::AiStatus {
        features: vec![parley_web::AiFeature {
            feature: "transcription".into(),
            on: false,
            detail: "no speech model: none installed".into(),
        }],
        models: vec![parley_web::AiModel {
            id: "whisper-tiny.en".into(),
            kind: "speech".into(),
            installed: false,
            path: "data/models/ggml-tiny.en.bin".into(),
        }],
    };
    t.app = app(AppState::new(t.store.clone(), WebConfig::default()).with_ai(ai));
    let (s, v) = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["features"][0]["feature"], "transcription");
    assert_eq!(v["features"][0]["on"], false);
    assert!(
        v["features"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no speech model")
    );
    assert_eq!(v["models"][0]["id"], "whisper-tiny.en");
    assert_eq!(v["models"][0]["installed"], false);
}
