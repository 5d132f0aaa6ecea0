//! ACD over HTTP: queues (admin), presence (self / supervisor), live metrics through
//! `AcdView`, call records and statistics, recording policy. Part of the `api` test
//! binary.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use parley_cases::queues::CallRecord;
use parley_cases::routing::{Presence, QueueMetrics};
use parley_cases::{Actor, Role, Timestamp};
use parley_web::{AcdView, AppState, WebConfig, app};
use serde_json::json;

use crate::T;

struct FakeRouter;

impl AcdView for FakeRouter {
    fn queue_metrics(&self, tenant_id: &str) -> Vec<QueueMetrics> {
        vec![QueueMetrics {
            queue_id: format!("q-of-{tenant_id}"),
            name: "sales".into(),
            waiting: 2,
            callbacks: 1,
            longest_wait_s: 40,
            estimated_wait_s: 90,
            agents_staffed: 2,
            agents_free: 0,
            in_progress: 2,
            service_level: Some(0.8),
            abandonment_rate: Some(0.1),
            aht_s: 90,
            channels: vec![],
        }]
    }
    fn agent_presence(&self, _tenant_id: &str) -> Vec<(String, Presence)> {
        vec![("someone".into(), Presence::OnCall)]
    }
}

#[tokio::test]
async fn queues_presence_live_metrics_calls_and_stats() {
    let mut t = T::new().await;
    t.app =
        app(AppState::new(t.store.clone(), WebConfig::default()).with_acd(Arc::new(FakeRouter)));
    let admin = t.login("acme", Role::Admin).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    let other = t.login("globex", Role::Admin).await;

    // Queues: admin creates, agents read, validation names the field.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/queues",
            Some(&agent),
            Some(json!({"name": "sales"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, q) = t
        .call(
            Method::POST,
            "/api/v1/queues",
            Some(&admin),
            Some(json!({"name": "sales", "strategy": "round_robin", "callback_key": "5"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q}");
    assert_eq!(q["strategy"], "round_robin");
    let qid = q["id"].as_str().unwrap().to_owned();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/queues",
            Some(&admin),
            Some(json!({"name": "x", "ring_timeout_s": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "ring_timeout_s");
    let (s, v) = t
        .call(Method::GET, "/api/v1/queues", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/api/v1/queues/{qid}"),
            Some(&admin),
            Some(json!({"name": "sales", "wrap_up_s": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["wrap_up_s"], 3);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/queues/{qid}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Presence: an agent sets their own; not someone else's; a supervisor may.
    let (_, me) = t.call(Method::GET, "/api/v1/me", Some(&agent), None).await;
    let agent_id = me["id"].as_str().unwrap().to_owned();
    let (_, sme) = t.call(Method::GET, "/api/v1/me", Some(&sup), None).await;
    let sup_id = sme["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/{agent_id}/presence");
    let (s, v) = t
        .call(
            Method::PUT,
            &path,
            Some(&agent),
            Some(json!({"status": "away", "reason": "break"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "away");
    assert_eq!(v["reason"], "break");
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/api/v1/users/{sup_id}/presence"),
            Some(&agent),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::PUT,
            &path,
            Some(&sup),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "available");
    let (s, v) = t
        .call(
            Method::PUT,
            &path,
            Some(&agent),
            Some(json!({"status": "dancing"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Live figures: supervisors only, from the router.
    let (s, _) = t
        .call(Method::GET, "/api/v1/queues/live", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(Method::GET, "/api/v1/queues/live", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["waiting"], 2);
    assert_eq!(v[0]["estimated_wait_s"], 90);
    let (s, v) = t
        .call(Method::GET, "/api/v1/agents/live", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["presence"], "on_call");

    // Calls and statistics.
    let tenant = t.store.tenant_by_name("acme").await.unwrap().unwrap();
    let sys = Actor::system(&tenant.id);
    t.store
        .add_call_record(
            &sys,
            CallRecord {
                call_id: "c1".into(),
                direction: "inbound".into(),
                caller: "+15550100".into(),
                dialled: "+15550199".into(),
                queue_id: Some(qid.clone()),
                agent_id: Some(agent_id.clone()),
                started_at: Timestamp(1_767_603_600_000),
                answered_at: Some(Timestamp(1_767_603_610_000)),
                ended_at: Timestamp(1_767_603_670_000),
                wait_ms: 10_000,
                talk_ms: 60_000,
                outcome: "answered".into(),
                sl_met: true,
                ..CallRecord::default()
            },
        )
        .await
        .unwrap();
    let (s, _) = t
        .call(Method::GET, "/api/v1/call-records", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/call-records?queue_id={qid}"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["talk_ms"], 60_000);
    let range = "from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z";
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/stats/queues?{range}"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["id"], qid.as_str());
    assert_eq!(v[0]["asa_s"], 10.0);
    assert_eq!(v[0]["service_level"], 1.0);
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/stats/agents?{range}"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["id"], agent_id.as_str());
    assert_eq!(v[0]["aht_s"], 60.0);
    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/stats/queues?from=2026-01-06T00:00:00Z&to=2026-01-05T00:00:00Z",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/stats/queues?{range}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_array().unwrap().is_empty());

    // Recording policy: admin.
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/acd/recording",
            Some(&sup),
            Some(json!({"recording": "on"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/acd/recording",
            Some(&admin),
            Some(json!({"recording": "announce"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(Method::GET, "/api/v1/acd/recording", Some(&admin), None)
        .await;
    assert_eq!(v["recording"], "announce");
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/acd/recording",
            Some(&admin),
            Some(json!({"recording": "consent"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(Method::GET, "/api/v1/acd/recording", Some(&admin), None)
        .await;
    assert_eq!(v["recording"], "consent");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/acd/recording",
            Some(&admin),
            Some(json!({"recording": "sometimes"})),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    assert!(v["error"]["message"].is_string(), "{v}");

    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/queues/{qid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn callbacks_are_listed_filtered_and_cancelled_per_tenant() {
    use parley_cases::callbacks::NewCallback;
    use parley_cases::customers::NewCustomer;
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let agent = t.login("acme", Role::Agent).await;
    let other = t.login("globex", Role::Supervisor).await;
    let (_, q) = t
        .call(
            Method::POST,
            "/api/v1/queues",
            Some(&admin),
            Some(json!({"name": "sales"})),
        )
        .await;
    let qid = q["id"].as_str().unwrap().to_owned();
    let (_, me) = t.call(Method::GET, "/api/v1/me", Some(&admin), None).await;
    let acme = Actor::system(me["tenant_id"].as_str().unwrap());
    let ann = t
        .store
        .create_customer(
            &acme,
            NewCustomer {
                name: "Ann".into(),
                identities: vec![],
                consent: Default::default(),
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, since) in [(1, 2_000), (2, 1_000)] {
        let cb = t
            .store
            .create_callback(
                &acme,
                NewCallback {
                    queue_id: qid.clone(),
                    customer_id: ann.id.clone(),
                    item: format!("item-{i}"),
                    number: "+15550123".into(),
                    since: Timestamp(since),
                    priority: 0,
                },
            )
            .await
            .unwrap();
        ids.push(cb.id);
    }
    // Supervisors list them, oldest place first; agents may not; other tenants see none.
    let (s, v) = t
        .call(Method::GET, "/api/v1/callbacks", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let listed: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(v[0]["state"], "waiting");
    assert_eq!(v[0]["number"], "+15550123");
    assert_eq!(v[0]["queue_id"], qid.as_str());
    let (s, _) = t
        .call(Method::GET, "/api/v1/callbacks", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(Method::GET, "/api/v1/callbacks", Some(&other), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_array().unwrap().is_empty());
    let cancel = format!("/api/v1/callbacks/{}/cancel", ids[0]);
    let (s, v) = t.call(Method::POST, &cancel, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"]["message"].is_string());

    // Cancel one; again is a conflict with a JSON error.
    let (s, v) = t.call(Method::POST, &cancel, Some(&sup), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    let (s, v) = t.call(Method::POST, &cancel, Some(&sup), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "invalid_transition");

    // Filters by state and queue; a bad state is a 4xx with a JSON body.
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/callbacks?state=waiting",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], ids[1].as_str());
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/callbacks?queue_id={qid}&state=cancelled"),
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/callbacks?queue_id=nope",
            Some(&sup),
            None,
        )
        .await;
    assert!(v.as_array().unwrap().is_empty());
    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/callbacks?state=lost",
            Some(&sup),
            None,
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    assert!(v["error"]["message"].is_string(), "{v}");
}
