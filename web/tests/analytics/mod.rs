//! Analytics over HTTP (issue #22): the KPI fixture day (cases/tests/fixtures/
//! analytics_day.json, hand-computed in docs/metrics.md) through `GET /analytics/kpis`
//! as JSON and as CSV, the drill-down behind a bar, the live snapshot and its push on
//! the events WebSocket (`?live=1`), saved reports. Part of the `api` test binary.

use axum::http::{Method, StatusCode};
use parley_cases::analytics::history::History;
use parley_cases::conversations::NewChannel;
use parley_cases::queues::QueueInput;
use parley_cases::{Actor, ManualClock, Role, Timestamp};
use serde_json::{Value, json};

use crate::T;

fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../../../cases/tests/fixtures/analytics_day.json"
    ))
    .unwrap()
}

/// acme gets the fixture's queues, agents, teams and channels, and its day.
async fn fixture_day(t: &T) {
    let s = &t.store;
    let acme = s.tenant_by_name("acme").await.unwrap().unwrap();
    let sys = Actor::system(&acme.id);
    for q in ["Sales", "Support"] {
        let q: QueueInput = serde_json::from_value(json!({ "name": q })).unwrap();
        s.create_queue(&sys, q).await.unwrap();
    }
    for (email, team) in [("ann@acme.test", "Blue"), ("bob@acme.test", "Red")] {
        let u = s
            .create_user(
                &sys,
                parley_cases::directory::NewUser {
                    email: email.into(),
                    name: email.into(),
                    role: Role::Agent,
                    password: "a test password".into(),
                },
            )
            .await
            .unwrap();
        let team = s.create_team(&sys, team).await.unwrap();
        s.set_team_member(&sys, &team.id, &u.id, true)
            .await
            .unwrap();
    }
    for (name, kind, queue) in [("Chat", "web_chat", "Support"), ("Mail", "email", "Sales")] {
        s.create_channel(
            &sys,
            NewChannel {
                kind: kind.into(),
                name: name.into(),
                queue: Some(queue.into()),
                team_id: None,
                settings: None,
            },
        )
        .await
        .unwrap();
    }
    let history: History = serde_json::from_value(fixture()["history"].clone()).unwrap();
    let clock = ManualClock::new(Timestamp(0));
    s.replay_history(&sys, &clock, &history).await.unwrap();
    assert_eq!(s.analytics_catch_up().await.unwrap(), 18);
}

const DAY: &str = "from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z";

fn metric(row: &Value, id: &str) -> Option<f64> {
    row["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no metric {id} in {row}"))["value"]
        .as_f64()
}

fn check(row: &Value, expected: &Value, what: &str) {
    for (id, want) in expected.as_object().unwrap() {
        assert_eq!(metric(row, id), want.as_f64(), "{what}.{id}");
    }
}

fn row<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == label || r["key"] == label)
        .unwrap_or_else(|| panic!("no row {label} in {report}"))
}

#[tokio::test]
async fn the_fixture_day_through_the_api_and_csv() {
    let t = T::new().await;
    fixture_day(&t).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    let exp = fixture()["expected"].clone();

    let (s, by_queue) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/kpis?{DAY}&group_by=queue"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{by_queue}");
    check(&by_queue["total"], &exp["total"], "total");
    for (q, want) in exp["queue"].as_object().unwrap() {
        check(row(&by_queue, q), want, q);
    }
    // Every metric in a row has its definition.
    let defs: Vec<&str> = by_queue["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(defs.contains(&"service_level") && defs.contains(&"frt_avg_s"));

    let (_, by_channel) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/kpis?{DAY}&group_by=channel"),
            Some(&sup),
            None,
        )
        .await;
    for (c, want) in exp["channel"].as_object().unwrap() {
        check(row(&by_channel, c), want, c);
    }
    let (_, answered_only) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/kpis?{DAY}&sl_answered_only=true"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(
        metric(&answered_only["total"], "service_level"),
        exp["service_level_answered_only"].as_f64()
    );

    // CSV: the same figures, one line per queue and the total.
    let (s, csv) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/kpis?{DAY}&group_by=queue&format=csv"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let csv_row = |label: &str| rows.iter().find(|r| r[1] == label).unwrap().clone();
    let mut expected_rows: Vec<(String, Value)> = vec![("Total".into(), exp["total"].clone())];
    for (q, want) in exp["queue"].as_object().unwrap() {
        expected_rows.push((q.clone(), want.clone()));
    }
    for (label, want) in expected_rows {
        let r = csv_row(&label);
        for (id, v) in want.as_object().unwrap() {
            let i = header.iter().position(|h| h == id).unwrap();
            let got = (!r[i].is_empty()).then(|| r[i].parse::<f64>().unwrap());
            assert_eq!(got, v.as_f64(), "csv {label}.{id}");
        }
    }

    // Drill-down: the 09:00 quarter of Sales is its first two calls.
    let sales = row(&by_queue, "Sales")["key"].as_str().unwrap().to_owned();
    let (s, facts) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/drilldown?from=2026-01-05T09:00:00Z&to=2026-01-05T09:15:00Z&queue={sales}"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{facts}");
    let facts = facts.as_array().unwrap();
    assert_eq!(facts.len(), 2);
    assert!(facts.iter().all(|f| f["ref_kind"] == "call_record"));

    // Agents may not read analytics.
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/analytics/kpis?{DAY}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::GET,
            "/api/v1/analytics/kpis?format=xlsx",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The live snapshot: everything resolved, nobody waiting.
    let (s, live) = t
        .call(Method::GET, "/api/v1/analytics/live", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{live}");
    assert_eq!(live["conversations"]["open"], 0);
    assert_eq!(live["waiting"], 0);

    // Saved reports: shared with the team.
    let (s, saved) = t
        .call(
            Method::POST,
            "/api/v1/analytics/reports",
            Some(&sup),
            Some(json!({"name": "Daily SL", "metrics": ["service_level", "asa_s"], "group_by": "queue", "period": "7d", "shared": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{saved}");
    let admin = t.login("acme", Role::Admin).await;
    let (_, list) = t
        .call(Method::GET, "/api/v1/analytics/reports", Some(&admin), None)
        .await;
    assert_eq!(list[0]["name"], "Daily SL");
    assert_eq!(list[0]["metrics"], json!(["service_level", "asa_s"]));
}

#[tokio::test]
async fn supervisors_get_the_live_wallboard_pushed_on_the_events_socket() {
    use futures_util::StreamExt as _;
    let t = T::new().await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/v1/events?access_token={sup}&live=1"
    ))
    .await
    .unwrap();
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "analytics.live");
    assert!(v["data"]["conversations"]["open"].is_number(), "{v}");
    assert!(v["data"]["today"]["metrics"].is_array(), "{v}");
    // An agent asking for it gets nothing of the kind.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/v1/events?access_token={agent}&live=1"
    ))
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(2500), ws.next())
            .await
            .is_err()
    );
}
