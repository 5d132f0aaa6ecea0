//! Speech settings (the AI toggle) and stored transcripts over HTTP. Part of the `api`
//! test binary.

use axum::http::{Method, StatusCode};
use parley_cases::Role;
use parley_cases::transcripts::TranscriptSegment;
use serde_json::json;

use crate::T;

#[tokio::test]
async fn admins_switch_transcription_on_and_agents_read_transcripts() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let (s, v) = t
        .call(Method::GET, "/api/v1/speech/settings", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["transcription"], false);
    assert_eq!(v["require_consent"], true);
    let body = json!({"transcription": true, "require_consent": false, "alert_phrases": ["Lawyer", "cancel my account"]});
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/speech/settings",
            Some(&agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/speech/settings",
            Some(&admin),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alert_phrases"], json!(["lawyer", "cancel my account"]));
    let (_, v) = t
        .call(Method::GET, "/api/v1/speech/settings", Some(&agent), None)
        .await;
    assert_eq!(v["transcription"], true);
    // Another tenant is not affected.
    let other = t.login("globex", Role::Admin).await;
    let (_, v) = t
        .call(Method::GET, "/api/v1/speech/settings", Some(&other), None)
        .await;
    assert_eq!(v["transcription"], false);
    // A stored transcript (as the call task leaves it) reads back in order.
    let tenant = t.store.tenant_by_name("acme").await.unwrap().unwrap().id;
    let actor = parley_cases::Actor::system(tenant);
    let c = t
        .store
        .create_customer(
            &actor,
            parley_cases::customers::NewCustomer {
                name: "Ann".into(),
                identities: vec![parley_cases::customers::RawIdentity {
                    kind: "phone".into(),
                    value: "+15550199".into(),
                }],
                consent: Default::default(),
            },
        )
        .await
        .unwrap();
    let i = t
        .store
        .add_interaction(
            &actor,
            &c.id,
            parley_cases::timeline::NewInteraction {
                kind: "call".into(),
                channel: "voice".into(),
                direction: "inbound".into(),
                body: "{}".into(),
                attachments: vec![],
                case_id: None,
                occurred_at: None,
                sentiment: None,
                intent: None,
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let segs = vec![TranscriptSegment {
        speaker: "caller".into(),
        start_ms: 100,
        end_ms: 900,
        text: "hello".into(),
        sentiment: 0.0,
        live: true,
    }];
    t.store.save_transcript(&actor, &i.id, &segs).await.unwrap();
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/interactions/{}/transcript", i.id),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["text"], "hello");
    assert_eq!(v[0]["speaker"], "caller");
    // Another tenant's interaction does not exist for it.
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/interactions/{}/transcript", i.id),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_queue_switches_transcription_off_admins_only_tenant_scoped() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let other = t.login("globex", Role::Admin).await;
    let (s, q) = t
        .call(
            Method::POST,
            "/api/v1/queues",
            Some(&admin),
            Some(json!({"name": "support"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q}");
    let path = format!("/api/v1/queues/{}/speech", q["id"].as_str().unwrap());
    let (s, v) = t.call(Method::GET, &path, Some(&agent), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"transcription": true}));
    let off = json!({"transcription": false});
    let (s, _) = t
        .call(Method::PUT, &path, Some(&agent), Some(off.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [
        json!({"transcription": "no"}),
        json!({"transcription": false, "x": 1}),
    ] {
        let (s, v) = t.call(Method::PUT, &path, Some(&admin), Some(bad)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    let (s, v) = t
        .call(Method::PUT, &path, Some(&admin), Some(off.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, off);
    let (_, v) = t.call(Method::GET, &path, Some(&agent), None).await;
    assert_eq!(v, off);
    // Another tenant's queue does not exist for this one.
    let (s, _) = t.call(Method::GET, &path, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call(Method::PUT, &path, Some(&other), Some(off)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
