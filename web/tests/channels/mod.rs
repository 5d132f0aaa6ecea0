//! Channels over HTTP (issue #19): admins create, change and remove channels; the
//! configuration is checked per kind (a missing or unknown field is a 422 naming
//! `config.<field>`), secrets are write-only (`has_<field>`) and sealed at rest, the
//! webhook URL is `<public URL>/hooks/v1/<kind>/<id>`, and a channel with
//! conversations is disabled, not deleted. Part of the `api` test binary.

use axum::http::{Method, StatusCode};
use parley_cases::conversations::{InboundMessage, Sender};
use parley_cases::{Actor, Role};
use parley_web::WebConfig;
use serde_json::json;

use crate::T;

mod hooks;

fn whatsapp() -> serde_json::Value {
    json!({"kind": "whatsapp", "name": "WhatsApp support", "config": {
        "phone_number_id": "1065551234", "access_token": "EAAG-very-secret",
        "app_secret": "app-secret-42", "verify_token": "verify-me",
        "api_base_url": "http://127.0.0.1:9"}})
}

#[tokio::test]
async fn channels_are_checked_per_kind_and_their_secrets_are_never_shown() {
    let t = T::with_config(WebConfig {
        public_url: Some("https://parley.example.com/".into()),
        ..WebConfig::default()
    })
    .await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&agent),
            Some(whatsapp()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, ch) = t
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&admin),
            Some(whatsapp()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ch}");
    let id = ch["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ch["webhook_url"],
        json!(format!("https://parley.example.com/hooks/v1/whatsapp/{id}"))
    );
    assert_eq!(ch["config"]["phone_number_id"], "1065551234");
    assert_eq!(ch["config"]["has_access_token"], true);
    assert_eq!(ch["config"]["has_app_secret"], true);
    assert!(!ch.to_string().contains("very-secret"), "{ch}");
    assert!(!ch.to_string().contains("app-secret-42"), "{ch}");
    // Not in the list, not in the audit log, not in the database in the clear.
    let (_, list) = t
        .call(Method::GET, "/api/v1/channels", Some(&agent), None)
        .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str())
    );
    assert!(!list.to_string().contains("very-secret"));
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit", Some(&admin), None)
        .await;
    assert!(!audit.to_string().contains("very-secret"), "{audit}");
    let (_, raw) = t.store.webhook_channel(&id).await.unwrap().unwrap();
    assert!(!format!("{raw:?}").contains("very-secret"), "{raw:?}");
    // The store opens them for adapters.
    let acme = t.store.tenant_by_name("acme").await.unwrap().unwrap();
    let sys = Actor::system(&acme.id);
    let stored = t.store.channel(&sys, &id).await.unwrap();
    let full = t.store.channel_config(&stored).unwrap();
    assert_eq!(full["access_token"], "EAAG-very-secret");

    // Missing and unknown fields, unknown kinds: 422 naming the field; nothing stored.
    let mut missing = whatsapp();
    missing["name"] = json!("other");
    missing["config"]
        .as_object_mut()
        .unwrap()
        .remove("app_secret");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&admin),
            Some(missing),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "config.app_secret", "{v}");
    let mut unknown = whatsapp();
    unknown["name"] = json!("other");
    unknown["config"]["colour"] = json!("green");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&admin),
            Some(unknown),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "config.colour", "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&admin),
            Some(json!({"kind": "pigeon", "name": "p", "config": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "kind", "{v}");
    let (_, list) = t
        .call(Method::GET, "/api/v1/channels", Some(&admin), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Email's nested passwords are secrets too.
    let (s, email) = t
        .call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"kind": "email", "name": "Help desk", "config": {
            "address": "help@acme.test", "imap": {"host": "127.0.0.1", "port": 143, "user": "help", "password": "imap-pw"},
            "smtp_out": {"host": "127.0.0.1", "port": 25, "password": "smtp-pw"}}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{email}");
    assert_eq!(email["config"]["imap"]["has_password"], true);
    assert_eq!(email["config"]["imap"]["host"], "127.0.0.1");
    assert!(!email.to_string().contains("imap-pw"));
    assert!(email.get("webhook_url").is_none(), "{email}");

    // PATCH: a secret not given is kept, one given replaces, other fields merge.
    let (s, v) = t
        .call(Method::PATCH, &format!("/api/v1/channels/{id}"), Some(&admin), Some(json!({"name": "WA", "config": {"phone_number_id": "2000", "app_secret": "rotated"}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "WA");
    assert_eq!(v["config"]["phone_number_id"], "2000");
    let stored = t.store.channel(&sys, &id).await.unwrap();
    let full = t.store.channel_config(&stored).unwrap();
    assert_eq!(full["access_token"], "EAAG-very-secret");
    assert_eq!(full["app_secret"], "rotated");
    let (s, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/channels/{id}"),
            Some(&admin),
            Some(json!({"config": {"access_token": null}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a required secret cannot be removed: {v}"
    );
    assert_eq!(v["error"]["field"], "config.access_token", "{v}");

    // Another tenant does not see it.
    let other = t.login("globex", Role::Admin).await;
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/channels/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Removing: unused → gone; with a conversation → disabled, kept.
    let email_id = email["id"].as_str().unwrap();
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/channels/{email_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    t.store
        .ingest(
            &sys,
            InboundMessage {
                channel_id: id.clone(),
                thread_key: "+15550100999".into(),
                sender: Sender {
                    identity: Some(parley_cases::customers::RawIdentity {
                        kind: "whatsapp".into(),
                        value: "+15550100999".into(),
                    }),
                    ..Default::default()
                },
                text: "hello".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/channels/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/channels/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
}

#[tokio::test]
async fn without_a_public_url_the_webhook_url_is_the_address_the_request_came_to() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/channels")
        .header("host", "127.0.0.1:18080")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"kind": "telegram", "name": "Bot", "config": {"bot_token": "123:abc", "secret_token": "s3cr3t"}}).to_string(),
        ))
        .unwrap();
    let (s, v) = t.raw(req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        v["webhook_url"],
        json!(format!("http://127.0.0.1:18080/hooks/v1/telegram/{id}"))
    );
    assert_eq!(
        v["config"],
        json!({"has_bot_token": true, "has_secret_token": true})
    );
}
