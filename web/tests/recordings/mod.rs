//! Recordings over HTTP: decrypted streaming with Range, authorisation, retention.

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use parley_cases::customers::{Consent, NewCustomer, RawIdentity};
use parley_cases::timeline::{Attachment, NewInteraction};
use parley_cases::{Actor, Role};
use parley_web::{AppState, WebConfig, app};
use serde_json::json;
use tower::ServiceExt as _;

use crate::{T, uuid_like};

async fn get(
    app: &Router,
    uri: &str,
    token: Option<&str>,
    range: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(r) = range {
        req = req.header(header::RANGE, r);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

/// Regression (issue #14: "Attachments: voicemail.wav" could not be played, and
/// recordings were plain files nobody could fetch through the API): a sealed
/// recording streams decrypted, whole or by range, to authorised users only.
#[tokio::test]
async fn sealed_recordings_stream_decrypted_with_ranges_to_authorised_users_only() {
    let root = std::env::temp_dir().join(format!("parley-web-rec-{}", uuid_like()));
    let keys = Arc::new(parley_vault::KeyRing::new(1, [9; 32]));
    let cfg = WebConfig {
        data_dir: root.clone(),
        recording_keys: Some(keys.clone()),
        ..WebConfig::default()
    };
    let t = T::with_config(cfg.clone()).await;
    let store = t.store.clone().with_files_dir(&root);
    let app = app(AppState::new(store.clone(), cfg));
    let acme = store.tenant_by_name("acme").await.unwrap().unwrap();
    let a = Actor::system(&acme.id);
    let c = store
        .create_customer(
            &a,
            NewCustomer {
                name: "Rita Recorded".into(),
                identities: vec![RawIdentity {
                    kind: "phone".into(),
                    value: "+15550133".into(),
                }],
                consent: Consent::default(),
            },
        )
        .await
        .unwrap();
    // 2.5 s of 8 kHz stereo: several 16 KiB chunks.
    let mut plain = parley_vault::wav_header(2, 8000).to_vec();
    plain.extend((0..80_000u32).map(|i| (i * 7 % 251) as u8));
    let rel = format!("recordings/{}/call-web.wav", acme.id);
    std::fs::create_dir_all(root.join(&rel).parent().unwrap()).unwrap();
    let mut w = parley_vault::create(&root.join(&rel), &keys).unwrap();
    w.write_all(&plain).unwrap();
    w.finish().unwrap();
    assert_ne!(std::fs::read(root.join(&rel)).unwrap()[..4], *b"RIFF");
    let i = store
        .add_interaction(
            &a,
            &c.id,
            NewInteraction {
                kind: "call".into(),
                channel: "voice".into(),
                direction: "inbound".into(),
                body: "{}".into(),
                attachments: vec![Attachment {
                    name: "call-recording.wav".into(),
                    content_type: "audio/wav".into(),
                    size: plain.len() as u64,
                    location: Some(rel.clone()),
                }],
                case_id: None,
                occurred_at: None,
                sentiment: None,
                intent: None,
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let uri = format!("/api/v1/interactions/{}/attachments/0", i.id);
    let sup = t.login("acme", Role::Supervisor).await;
    // The whole file, decrypted, its WAV sizes filled in.
    let (s, h, body) = get(&app, &uri, Some(&sup), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::CONTENT_LENGTH], plain.len().to_string().as_str());
    assert_eq!(body.len(), plain.len());
    assert_eq!(&body[44..], &plain[44..]);
    let data = u32::from_le_bytes(body[40..44].try_into().unwrap());
    assert_eq!(data as usize, plain.len() - 44);
    // A range across a chunk boundary.
    let (s, h, body) = get(&app, &uri, Some(&sup), Some("bytes=16000-17999")).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes 16000-17999/{}", plain.len()).as_str()
    );
    assert_eq!(body, &plain[16000..18000]);
    let (s, _, body) = get(&app, &uri, Some(&sup), Some("bytes=-100")).await;
    assert_eq!(
        (s, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &plain[plain.len() - 100..])
    );
    let (s, h, _) = get(&app, &uri, Some(&sup), Some("bytes=999999-")).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes */{}", plain.len()).as_str()
    );
    // Who may listen.
    let (s, _, _) = get(&app, &uri, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let agent = t.login("acme", Role::Agent).await;
    let (s, _, _) = get(&app, &uri, Some(&agent), None).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "an agent with no call or case of this customer"
    );
    let globex = t.login("globex", Role::Supervisor).await;
    let (s, _, _) = get(&app, &uri, Some(&globex), None).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's recording does not exist"
    );
    let (s, _, _) = get(
        &app,
        &format!("/api/v1/interactions/{}/attachments/1", i.id),
        Some(&sup),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Each play is audited.
    let audit = store
        .audit_log(&a, &Default::default())
        .await
        .unwrap()
        .items;
    let plays = audit
        .iter()
        .filter(|e| e.action == "recording.download")
        .count();
    assert_eq!(
        plays, 1,
        "the full GET; ranges not from 0 are the same play"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn recording_retention_is_set_by_admins_only() {
    let t = T::new().await;
    let sup = t.login("acme", Role::Supervisor).await;
    let admin = t.login("acme", Role::Admin).await;
    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/recordings/retention",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({ "days": null })));
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/recordings/retention",
            Some(&sup),
            Some(json!({ "days": 7 })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/recordings/retention",
            Some(&admin),
            Some(json!({ "days": 0 })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/recordings/retention",
            Some(&admin),
            Some(json!({ "days": 90 })),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({ "days": 90 })));
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/recordings/retention",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(v, json!({ "days": 90 }));
}
