//! IVR administration over HTTP: drafts, validation, publish, versions, rollback,
//! export/import, simulation, calendars, numbers, prompt uploads. Part of the `api`
//! test binary.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use parley_cases::Role;
use parley_web::{AppState, WebConfig};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::{T, uuid_like};

const DEMO_FLOW: &str = include_str!("../../../ivr/tests/fixtures/flows/demo.json");
const WAV: &[u8] = include_bytes!("../fixtures/prompts/tone.wav");
const FLAC: &[u8] = include_bytes!("../fixtures/prompts/tone.flac");
const OGG: &[u8] = include_bytes!("../fixtures/prompts/tone.ogg");
const MP3: &[u8] = include_bytes!("../fixtures/prompts/tone.mp3");

/// A test app whose storage root is a fresh temporary directory.
struct Ivr {
    t: T,
    root: std::path::PathBuf,
}

impl Ivr {
    async fn new() -> Ivr {
        Ivr::with_limit(1 << 20).await
    }

    async fn with_limit(max_prompt_bytes: usize) -> Ivr {
        let root = std::env::temp_dir().join(format!("parley-ivr-root-{}", uuid_like()));
        let t = T::with_config(WebConfig {
            data_dir: root.clone(),
            max_prompt_bytes,
            ..WebConfig::default()
        })
        .await;
        Ivr { t, root }
    }

    /// Sends raw bytes; returns status, headers' content type and the body.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let res = self
            .t
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, ct, bytes)
    }

    async fn post_doc(&self, uri: &str, token: &str, doc: &str) -> (StatusCode, Value) {
        self.doc(Method::POST, uri, token, doc).await
    }

    async fn doc(&self, m: Method, uri: &str, token: &str, doc: &str) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(m, uri, token, Some("application/json"), doc.into())
            .await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn upload(&self, token: &str, name: &str, ct: &str, bytes: &[u8]) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(
                Method::POST,
                &format!("/api/v1/ivr/prompts?name={name}"),
                token,
                Some(ct),
                bytes.to_vec(),
            )
            .await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    fn stored_files(&self) -> usize {
        walk(&self.root.join("prompts"))
    }
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { 1 }
    })
    .sum()
}

impl Drop for Ivr {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn simple(id: &str, greeting: &str, next: &str) -> String {
    json!({
        "version": 1, "id": id, "name": format!("Flow {id}"), "start": "hi",
        "nodes": {
            "hi": {"type": "play", "prompts": [{"tts": greeting}], "next": next},
            "bye": {"type": "hangup"}
        }
    })
    .to_string()
}

#[tokio::test]
async fn flow_drafts_validate_publish_roll_back_and_export() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;

    // Not a flow: 422 naming the field; bad JSON: 400; wrong media type: 415.
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 1, "id": "x", "start": 5, "nodes": {}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "start");
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 1, "id": "x", "start": "a", "nodes": {}, "colour": "red"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("colour"));
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 2, "id": "x", "start": "a", "nodes": {}}"#,
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("version"))
    );
    // Inside a node: the node is named (its fields are flattened by type).
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 1, "id": "x", "start": "hi", "nodes": {"hi": {"type": "play", "prompts": [], "next": 7}}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "nodes.hi.next", "{v}");
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 1, "id": "x", "start": "hi", "nodes": {"hi": {"type": "jump"}}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "nodes.hi.type", "{v}");
    let (s, v) = ivr
        .post_doc(
            "/api/v1/ivr/flows",
            &admin,
            r#"{"version": 1, "id": "x", "start": "m", "nodes": {"m": {"type": "menu", "prompts": [{"tts": "Hi"}], "choices": [{"digit": "1", "nxt": "m"}], "on_max_retries": "m"}}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "nodes.m.choices[0].nxt", "{v}");
    let (s, _) = ivr.post_doc("/api/v1/ivr/flows", &admin, "{").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = ivr
        .send(
            Method::POST,
            "/api/v1/ivr/flows",
            &admin,
            Some("text/plain"),
            simple("x", "hi", "bye").into(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A draft may be invalid; validation names the nodes; publishing it is 422.
    let broken = simple("main", "Hello", "nowhere");
    let (s, v) = ivr.post_doc("/api/v1/ivr/flows", &admin, &broken).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["current_version"].is_null()),
        (Some("main"), true)
    );
    assert_eq!(v["draft"]["nodes"]["hi"]["next"], "nowhere");
    let (s, v) = ivr.post_doc("/api/v1/ivr/flows", &admin, &broken).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/validate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    let dangling = errors
        .iter()
        .find(|e| e["kind"]["type"] == "dangling_exit")
        .unwrap();
    assert_eq!(dangling["node"], "hi");
    assert_eq!(dangling["kind"]["target"], "nowhere");
    assert!(dangling["message"].as_str().unwrap().contains("node `hi`"));
    assert!(
        errors
            .iter()
            .any(|e| e["node"] == "bye" && e["kind"]["type"] == "unreachable")
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_flow");
    assert!(
        v["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"] == "hi")
    );
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/ivr/flows/main/versions",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v, json!([]));

    // The path's id and the document's must agree.
    let (s, v) = ivr
        .doc(
            Method::PUT,
            "/api/v1/ivr/flows/main",
            &admin,
            &simple("other", "x", "bye"),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id")),
        "{v}"
    );

    // Fix, publish v1; change, publish v2.
    let v1 = simple("main", "Hello", "bye");
    let (s, _) = ivr
        .doc(Method::PUT, "/api/v1/ivr/flows/main", &admin, &v1)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/validate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v, json!({"valid": true, "errors": [], "warnings": []}));
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["version"].as_i64(), v["current"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(v["definition"]["nodes"]["hi"]["prompts"][0]["tts"], "Hello");
    let v2 = simple("main", "Hello again", "bye");
    ivr.doc(Method::PUT, "/api/v1/ivr/flows/main", &admin, &v2)
        .await;
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/ivr/flows/main/versions",
            Some(&admin),
            None,
        )
        .await;
    let list: Vec<(i64, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["version"].as_i64().unwrap(),
                x["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(list, [(2, true), (1, false)]);

    // Roll back to 1; the history shows it; rolling back to the current one is 422.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/rollback",
            Some(&admin),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(
        (s, v["current_version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/rollback",
            Some(&admin),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main/rollback",
            Some(&admin),
            Some(json!({"version": 9})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/ivr/flows/main/events",
            Some(&admin),
            None,
        )
        .await;
    let kinds: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("publish".to_owned(), 1),
            ("publish".to_owned(), 2),
            ("rollback".to_owned(), 1)
        ]
    );
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/ivr/flows/main/versions/2",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (
            v["current"].as_bool(),
            v["definition"]["nodes"]["hi"]["prompts"][0]["tts"].as_str()
        ),
        (Some(false), Some("Hello again"))
    );

    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/ivr/flows/main/versions/latest",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Export gives back the exact text; import creates or replaces.
    let (s, ct, body) = ivr
        .send(
            Method::GET,
            "/api/v1/ivr/flows/main/export?version=1",
            &admin,
            None,
            vec![],
        )
        .await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(String::from_utf8(body).unwrap(), v1);
    let (_, _, body) = ivr
        .send(
            Method::GET,
            "/api/v1/ivr/flows/main/export",
            &admin,
            None,
            vec![],
        )
        .await;
    assert_eq!(String::from_utf8(body).unwrap(), v2);
    let (s, v) = ivr.post_doc("/api/v1/ivr/import", &admin, &v1).await;
    assert_eq!(
        (s, v["draft"]["nodes"]["hi"]["prompts"][0]["tts"].as_str()),
        (StatusCode::OK, Some("Hello"))
    );
    let (s, v) = ivr
        .post_doc("/api/v1/ivr/import", &admin, &simple("copy", "Hi", "bye"))
        .await;
    assert_eq!(
        (s, v["name"].as_str()),
        (StatusCode::CREATED, Some("Flow copy"))
    );
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/flows", Some(&admin), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 2);

    // Numbers route only to published flows and only when the tenant holds them
    // (issue #13); another tenant cannot take one.
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/numbers/+15550123",
            Some(&admin),
            Some(json!({"flow_id": "main"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (StatusCode::CONFLICT, Some("number not available")),
        "not held yet: {v}"
    );
    let (s, trunk) = t
        .call(
            Method::POST,
            "/api/v1/trunks",
            Some(&admin),
            Some(json!({"name": "carrier", "inbound_addresses": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{trunk}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(&admin),
            Some(json!({"number": "+15550123", "trunk_id": trunk["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/numbers/+15550123",
            Some(&admin),
            Some(json!({"flow_id": "copy"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("flow_id"))
    );
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/numbers/555-0123",
            Some(&admin),
            Some(json!({"flow_id": "main"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("number"))
    );
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/numbers/+15550123",
            Some(&admin),
            Some(json!({"flow_id": "main"})),
        )
        .await;
    assert_eq!(
        (s, v["number"].as_str()),
        (StatusCode::OK, Some("+15550123")),
        "{v}"
    );
    let other = t.login("globex", Role::Admin).await;
    ivr.post_doc("/api/v1/ivr/flows", &other, &simple("main", "G", "bye"))
        .await;
    t.call(
        Method::POST,
        "/api/v1/ivr/flows/main/publish",
        Some(&other),
        None,
    )
    .await;
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/numbers/+15550123",
            Some(&other),
            Some(json!({"flow_id": "main"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (StatusCode::CONFLICT, Some("number not available"))
    );
    // Nor add it to a trunk of its own: the same answer, naming no tenant.
    let (_, gtrunk) = t
        .call(
            Method::POST,
            "/api/v1/trunks",
            Some(&other),
            Some(json!({"name": "carrier", "inbound_addresses": []})),
        )
        .await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(&other),
            Some(json!({"number": "+1 555 0123", "trunk_id": gtrunk["id"]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (StatusCode::CONFLICT, Some("number not available")),
        "{v}"
    );
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/numbers", Some(&admin), None)
        .await;
    assert_eq!(v[0]["flow_id"], "main");
    let (s, _) = t
        .call(
            Method::DELETE,
            "/api/v1/ivr/numbers/+15550123",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/numbers", Some(&admin), None)
        .await;
    assert_eq!(v, json!([]));

    // Another tenant's flows are invisible.
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/flows/copy", Some(&other), None)
        .await;
    assert_eq!(v["error"]["code"], "not_found");

    // Audited.
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/audit?entity_id=main",
            Some(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"ivr_flow.rollback") && actions.contains(&"ivr_flow.publish"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn roles_for_ivr_administration() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    ivr.post_doc("/api/v1/ivr/flows", &admin, &simple("main", "Hi", "bye"))
        .await;
    // Supervisors read, validate, simulate, export; they do not change anything.
    for (m, uri, body) in [
        (Method::GET, "/api/v1/ivr/flows", None),
        (Method::GET, "/api/v1/ivr/flows/main", None),
        (Method::POST, "/api/v1/ivr/flows/main/validate", None),
        (
            Method::POST,
            "/api/v1/ivr/flows/main/simulate",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/ivr/flows/main/export", None),
        (Method::GET, "/api/v1/ivr/prompts", None),
        (Method::GET, "/api/v1/ivr/numbers", None),
        (Method::GET, "/api/v1/ivr/calendars", None),
    ] {
        let (s, v) = t.call(m.clone(), uri, Some(&sup), body.clone()).await;
        assert!(s.is_success(), "supervisor {m} {uri}: {s} {v}");
        let (s, _) = t.call(m.clone(), uri, Some(&agent), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "agent {m} {uri}");
    }
    for (m, uri, body) in [
        (Method::POST, "/api/v1/ivr/flows/main/publish", None),
        (
            Method::POST,
            "/api/v1/ivr/flows/main/rollback",
            Some(json!({"version": 1})),
        ),
        (
            Method::PUT,
            "/api/v1/ivr/numbers/+15550100",
            Some(json!({"flow_id": "main"})),
        ),
        (
            Method::PUT,
            "/api/v1/ivr/calendars/main",
            Some(json!({"time_zone": "UTC"})),
        ),
        (Method::DELETE, "/api/v1/ivr/prompts/x", None),
    ] {
        for tok in [&sup, &agent] {
            let (s, _) = t.call(m.clone(), uri, Some(tok), body.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{m} {uri}");
        }
    }
    let (s, _) = ivr
        .post_doc("/api/v1/ivr/flows", &sup, &simple("x", "Hi", "bye"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = ivr.upload(&sup, "w", "audio/wav", WAV).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(ivr.stored_files(), 0);
}

#[tokio::test]
async fn simulation_runs_scripts_against_calendars_and_reports_bad_input() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let (s, v) = ivr.post_doc("/api/v1/ivr/flows", &admin, DEMO_FLOW).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The demo reads calendar `main`: without it the flow is invalid.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"] == "hours" && e["kind"]["type"] == "unknown_calendar")
    );
    // A calendar with a bad time zone or hours is 422.
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/calendars/main",
            Some(&admin),
            Some(json!({"time_zone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("time_zone"))
    );
    let (s, v) = t
        .call(Method::PUT, "/api/v1/ivr/calendars/main", Some(&admin), Some(json!({"time_zone": "UTC", "weekly": [{"days": ["mon"], "open": "17:00", "close": "09:00"}]})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let cal = json!({"time_zone": "America/New_York",
        "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:00"}],
        "holidays": [{"date": "2026-12-25", "name": "Christmas Day"}]});
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/calendars/main",
            Some(&admin),
            Some(cal),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Monday 10:00 in New York: press 1, an agent answers, the caller rates 4.
    let script = json!({"start_time": "2026-01-05T15:00:00Z", "call": {"caller_number": "+15550123"},
        "steps": [{"digits": "1"}, {"queue": "answered"}, {"digits": "4"}]});
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&admin),
            Some(json!({"script": script})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let trace = &v["trace"];
    assert_eq!(trace["ended"], true);
    assert_eq!(trace["variables"]["csat"], 4);
    assert_eq!(trace["variables"]["menu_choice"], "1");
    let nodes: Vec<&str> = trace["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        [
            "demo/greeting",
            "demo/hours",
            "demo/main_menu",
            "demo/sales_queue",
            "demo/survey",
            "demo/goodbye",
            "demo/end"
        ]
    );
    assert!(
        trace["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"]["type"] == "enqueue" && e["action"]["queue"] == "sales")
    );
    assert!(
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("enqueue"))
    );

    // Saturday: closed, straight to voicemail.
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&admin),
            Some(json!({"script": {"start_time": "2026-01-10T15:00:00Z"}})),
        )
        .await;
    let nodes: Vec<&str> = v["trace"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        [
            "demo/greeting",
            "demo/hours",
            "demo/closed",
            "demo/voicemail"
        ]
    );

    // Bad scripts name the field.
    for (body, field) in [
        (json!({"script": {"steps": [{"dance": 1}]}}), "script.steps"),
        (json!({"script": {"flow": "other"}}), "script.flow"),
        (
            json!({"script": {"start_time": "yesterday"}}),
            "script.start_time",
        ),
        (json!({"script": 7}), "script"),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/ivr/flows/demo/simulate",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(
            v["error"]["field"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
    // A version that does not exist.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&admin),
            Some(json!({"version": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Published: simulate the version.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&admin),
            Some(json!({"version": 1, "script": {"steps": ["hangup"]}})),
        )
        .await;
    assert_eq!(
        (s, v["trace"]["ended"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
}

#[tokio::test]
async fn prompts_are_decoded_stored_downloaded_and_protected() {
    let ivr = Ivr::with_limit(64 * 1024).await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let mut ids = Vec::new();
    for (ct, bytes, ext) in [
        ("audio/wav", WAV, "wav"),
        ("audio/flac", FLAC, "flac"),
        ("audio/ogg", OGG, "ogg"),
        ("audio/mpeg", MP3, "mp3"),
    ] {
        let (s, v) = ivr.upload(&admin, ext, ct, bytes).await;
        assert_eq!(s, StatusCode::CREATED, "{ct}: {v}");
        let ms = v["duration_ms"].as_i64().unwrap();
        assert!((450..=650).contains(&ms), "{ct}: {ms} ms");
        assert_eq!(v["size_bytes"].as_i64().unwrap(), bytes.len() as i64);
        assert_eq!(v["content_type"], ct);
        let path = v["storage_path"].as_str().unwrap();
        assert!(
            path.starts_with("prompts/") && path.ends_with(&format!(".{ext}")),
            "{path}"
        );
        assert_eq!(std::fs::read(ivr.root.join(path)).unwrap(), bytes);
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ivr.stored_files(), 4);

    // Not audio, the wrong kind of audio, a truncated file: 422, nothing stored.
    let header_only = &WAV[..44];
    for (ct, bytes) in [
        ("audio/wav", b"this is not audio at all".as_slice()),
        ("audio/mpeg", WAV),
        ("audio/flac", OGG),
        ("audio/wav", header_only),
        ("audio/ogg", b"".as_slice()),
    ] {
        let (s, v) = ivr.upload(&admin, "bad", ct, bytes).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{ct}: {v}");
        assert_eq!(v["error"]["code"], "undecodable_audio");
    }
    let (s, _) = ivr.upload(&admin, "bad", "text/plain", WAV).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, v) = ivr
        .upload(&admin, "big", "audio/wav", &vec![0u8; 65 * 1024])
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (s, _, v) = ivr
        .send(
            Method::POST,
            "/api/v1/ivr/prompts",
            &admin,
            Some("audio/wav"),
            WAV.to_vec(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&v)
    );
    assert_eq!(ivr.stored_files(), 4);
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/prompts", Some(&admin), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 4);

    // Download.
    let (s, ct, body) = ivr
        .send(
            Method::GET,
            &format!("/api/v1/ivr/prompts/{}/audio", ids[1]),
            &admin,
            None,
            vec![],
        )
        .await;
    assert_eq!(
        (s, ct.as_str(), body.as_slice()),
        (StatusCode::OK, "audio/flac", FLAC)
    );

    // A flow playing a missing prompt does not validate; one playing ids[0] publishes,
    // and then ids[0] cannot be deleted.
    let flow = |file: &str| {
        json!({"version": 1, "id": "welcome", "start": "hi", "nodes": {
            "hi": {"type": "play", "prompts": [{"file": file}], "next": "bye"},
            "bye": {"type": "hangup"}}})
        .to_string()
    };
    ivr.post_doc("/api/v1/ivr/flows", &admin, &flow("no-such-prompt"))
        .await;
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/welcome/validate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v["errors"][0]["node"], "hi");
    assert_eq!(v["errors"][0]["kind"]["type"], "unknown_prompt");
    ivr.doc(
        Method::PUT,
        "/api/v1/ivr/flows/welcome",
        &admin,
        &flow(&ids[0]),
    )
    .await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/welcome/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/ivr/prompts/{}", ids[0]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("welcome"));
    assert_eq!(ivr.stored_files(), 4);
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/ivr/prompts/{}", ids[3]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(ivr.stored_files(), 3);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/ivr/prompts/{}", ids[3]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another tenant cannot see or fetch them.
    let other = t.login("globex", Role::Admin).await;
    let (s, _, _) = ivr
        .send(
            Method::GET,
            &format!("/api/v1/ivr/prompts/{}/audio", ids[1]),
            &other,
            None,
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_seeded_demo_flow_is_published_valid_and_routed() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let logins = parley_cases::demo::seed_demo(&t.store)
        .await
        .unwrap()
        .unwrap();
    let admin = logins.iter().find(|l| l.user.role == Role::Admin).unwrap();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"tenant": "demo", "email": admin.user.email, "password": admin.password})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tok = v["token"].as_str().unwrap().to_owned();
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/numbers", Some(&tok), None)
        .await;
    assert_eq!(
        (v[0]["number"].as_str(), v[0]["flow_id"].as_str()),
        (Some("+15550100"), Some("demo"))
    );
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/flows/demo", Some(&tok), None)
        .await;
    assert_eq!(v["current_version"], 1);
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/validate",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(v, json!({"valid": true, "errors": [], "warnings": []}));
    // The demo answers at any hour: Christmas Day at 03:00 UTC (a Friday night in New
    // York) reaches the menu, and 1 the sales queue.
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/demo/simulate",
            Some(&tok),
            Some(json!({"version": 1, "script": {"start_time": "2026-12-25T03:00:00Z", "steps": [{"digits": "1"}]}})),
        )
        .await;
    let nodes: Vec<&str> = v["trace"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert_eq!(
        nodes[..4],
        [
            "demo/greeting",
            "demo/hours",
            "demo/main_menu",
            "demo/sales_queue"
        ],
        "{nodes:?}"
    );
}

/// Regression (issue 14): the designer's test call without a time simulated a fixed
/// Monday morning, so it showed the menu while real callers heard "closed".
#[tokio::test]
async fn a_test_call_without_a_time_is_a_call_made_now() {
    let mut ivr = Ivr::new().await;
    // Now: Saturday 2026-12-05 03:00 UTC.
    let clock = parley_cases::ManualClock::new(parley_cases::Timestamp(1_796_439_600_000));
    ivr.t.store = ivr.t.store.clone().with_clock(std::sync::Arc::new(clock));
    ivr.t.app = parley_web::app(AppState::new(
        ivr.t.store.clone(),
        WebConfig {
            data_dir: ivr.root.clone(),
            ..WebConfig::default()
        },
    ));
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let (s, v) = ivr.post_doc("/api/v1/ivr/flows", &admin, DEMO_FLOW).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cal = json!({"time_zone": "UTC",
        "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:00"}]});
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/ivr/calendars/main",
            Some(&admin),
            Some(cal),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let admin = admin.as_str();
    let third_node = |script: Value| async move {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/ivr/flows/demo/simulate",
                Some(admin),
                Some(json!({"script": script})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["trace"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["node"].as_str())
            .nth(2)
            .map(str::to_owned)
    };
    // Saturday night: closed.
    assert_eq!(third_node(json!({})).await.as_deref(), Some("demo/closed"));
    // A time given still wins: Monday 10:00 UTC is open.
    assert_eq!(
        third_node(json!({"start_time": "2026-12-07T10:00:00Z"}))
            .await
            .as_deref(),
        Some("demo/main_menu")
    );
}

#[tokio::test]
async fn publishing_a_sub_flow_that_breaks_a_published_caller_is_refused() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let pin = include_str!("../../../ivr/tests/fixtures/flows/pin.json");
    let main = include_str!("../../../ivr/tests/fixtures/flows/main_with_pin.json");
    // The caller cannot be published before its sub-flow.
    ivr.post_doc("/api/v1/ivr/flows", &admin, main).await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/main_with_pin/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"]["details"]["errors"][0]["kind"]["type"], "unknown_sub_flow",
        "{v}"
    );
    // pin v1 sets nothing (no caller yet, so it is fine); v2 is the real one.
    let lazy = json!({"version": 1, "id": "pin", "start": "done",
        "nodes": {"done": {"type": "return"}}})
    .to_string();
    ivr.post_doc("/api/v1/ivr/flows", &admin, &lazy).await;
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/pin/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    ivr.doc(Method::PUT, "/api/v1/ivr/flows/pin", &admin, pin)
        .await;
    for id in ["pin", "main_with_pin"] {
        let (s, v) = t
            .call(
                Method::POST,
                &format!("/api/v1/ivr/flows/{id}/publish"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{id}: {v}");
    }
    // Rolling pin back to v1 would break main_with_pin's `verify` node: refused.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/pin/rollback",
            Some(&admin),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"]["errors"][0]["flow"], "main_with_pin");
    // So would publishing such a draft.
    ivr.doc(Method::PUT, "/api/v1/ivr/flows/pin", &admin, &lazy)
        .await;
    let (_, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/pin/validate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v["valid"], false, "{v}");
    let e = &v["errors"][0];
    assert_eq!(
        (e["flow"].as_str(), e["node"].as_str()),
        (Some("main_with_pin"), Some("verify")),
        "{v}"
    );
    assert_eq!(e["kind"]["type"], "sub_flow_output_unset");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("calling flow `main_with_pin`, node `verify`"),
        "{e}"
    );
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/pin/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = t
        .call(Method::GET, "/api/v1/ivr/flows/pin", Some(&admin), None)
        .await;
    assert_eq!(v["current_version"], 2);
}

#[tokio::test]
async fn a_10_mib_flac_of_silence_is_refused_as_too_long_and_not_stored() {
    // Regression: the upload was decoded in full (two hours of audio decoded to
    // count its frames) and stored; playing it kept every sample in memory.
    let dir = std::env::temp_dir().join(format!("parley-silence-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("silence.flac");
    let ok = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&path)
        .args(["trim", "0", "7800"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "sox failed");
    let flac = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(flac.len() >= 10 << 20, "{} bytes", flac.len());
    let ivr = Ivr::with_limit(12 << 20).await;
    let admin = ivr.t.login("acme", Role::Admin).await;
    let (s, v) = ivr.upload(&admin, "silence", "audio/flac", &flac).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "audio_too_long", "{v}");
    assert_eq!(v["error"]["field"], "body");
    assert_eq!(ivr.stored_files(), 0);
    // A prompt within the limits is still taken.
    let (s, v) = ivr.upload(&admin, "tone", "audio/flac", FLAC).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// #13: the designer's validation lists transfer targets built from caller input as
/// warnings; the flow stays valid and publishable.
#[tokio::test]
async fn validation_warns_about_a_transfer_target_the_caller_typed() {
    let ivr = Ivr::new().await;
    let t = &ivr.t;
    let admin = t.login("acme", Role::Admin).await;
    let doc = r#"{"version": 1, "id": "steer", "start": "ask", "nodes": {
        "ask": {"type": "gather", "prompts": [{"tts": "Which number?"}], "variable": "typed",
                "max_len": 12, "next": "out", "on_invalid": "bye"},
        "out": {"type": "transfer", "target": {"number": "+{{typed}}"}},
        "bye": {"type": "hangup"}}}"#;
    let (s, v) = ivr.post_doc("/api/v1/ivr/flows", &admin, doc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/steer/validate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    let w = &v["warnings"][0];
    assert_eq!(w["node"], "out", "{v}");
    assert_eq!(w["kind"]["type"], "target_from_caller_input", "{v}");
    assert_eq!(w["kind"]["variable"], "typed", "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/ivr/flows/steer/publish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
