//! The customer portal over HTTP (issue #17): a sign-in link goes to the pluggable
//! sender (never in the response), redeems once into a session; the stream shows the
//! customer's conversations without internal notes; the customer writes; signing out
//! ends the session; the page is served at `/portal/{tenant}`. Part of the `api` test
//! binary.

use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use parley_cases::conversations::{NewReply, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::portal::PortalLink;
use parley_cases::{Actor, Role};
use parley_web::chat::BoxFuture;
use parley_web::portal::LinkSender;
use parley_web::{AppState, WebConfig, app};
use serde_json::json;

use crate::T;

/// Keeps every link it is asked to send, as an inbox would.
#[derive(Default)]
struct Outbox(Mutex<Vec<(String, String)>>);

impl LinkSender for Outbox {
    fn send(&self, _tenant: &str, link: &PortalLink, path: &str) -> BoxFuture<'static, ()> {
        self.0
            .lock()
            .unwrap()
            .push((link.email.clone(), path.to_owned()));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_customer_signs_in_with_the_emailed_link_reads_and_writes() {
    let mut t = T::new().await;
    let outbox = Arc::new(Outbox::default());
    t.app = app(
        AppState::new(t.store.clone(), WebConfig::default()).with_portal_sender(outbox.clone())
    );
    let acme = t.store.tenant_by_name("acme").await.unwrap().unwrap();
    let sys = Actor::system(&acme.id);
    // A chat by a visitor who gave their address, with an agent's reply and a note.
    let ch = t.store.web_chat_channel(&sys).await.unwrap();
    let sender = Sender {
        customer_id: None,
        identity: Some(RawIdentity {
            kind: "web_chat".into(),
            value: "visitor-1".into(),
        }),
        name: Some("Zoe".into()),
    };
    let (conv, _) = t
        .store
        .find_or_open_conversation(&sys, &ch.id, "visitor-1", &sender)
        .await
        .unwrap();
    t.store
        .claim_contact(
            &sys,
            &conv.customer_id,
            "email",
            "zoe@example.com",
            "web_chat",
            Some(&conv.id),
        )
        .await
        .unwrap();
    let sup = t.login("acme", Role::Supervisor).await;
    let (sup_user, _) = t.store.actor_for_token(&sup).await.unwrap();
    for (text, private) in [
        ("We are on it", false),
        ("internal: check the refund", true),
    ] {
        t.store
            .reply(
                &sup_user,
                &conv.id,
                NewReply {
                    text: text.into(),
                    private,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    // The page.
    let (s, page) = t.call(Method::GET, "/portal/acme", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("/assets/portal/portal.js"));

    // Sign-in: 202, the link goes to the sender only.
    let (s, v) = t
        .call(
            Method::POST,
            "/portal/v1/acme/login",
            None,
            Some(json!({"email": "Zoe@Example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(
        !v.to_string().contains("pl_"),
        "no token in the answer: {v}"
    );
    let (email, path) = outbox.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(email, "zoe@example.com");
    let token = path
        .strip_prefix("/portal/acme#token=")
        .expect(&path)
        .to_owned();
    // Not an address: 422; an unknown tenant: 404.
    let (s, _) = t
        .call(
            Method::POST,
            "/portal/v1/acme/login",
            None,
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            Method::POST,
            "/portal/v1/nosuch/login",
            None,
            Some(json!({"email": "a@b.c"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = t
        .call(
            Method::POST,
            "/portal/v1/acme/session",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let session = v["session_token"].as_str().unwrap().to_owned();
    assert_eq!(v["customer_id"], conv.customer_id.as_str());
    // Spent.
    let (s, _) = t
        .call(
            Method::POST,
            "/portal/v1/acme/session",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, v) = t
        .call(Method::GET, "/portal/v1/stream", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let convs = v["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{v}");
    assert!(!v.to_string().contains("internal: check the refund"), "{v}");
    // Staff tokens are not portal sessions, and portal sessions are not staff tokens.
    let (s, _) = t
        .call(Method::GET, "/portal/v1/stream", Some(&sup), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .call(Method::GET, "/api/v1/conversations", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, m) = t
        .call(
            Method::POST,
            "/portal/v1/messages",
            Some(&session),
            Some(json!({"text": "<img src=x onerror=alert(1)>", "conversation_id": conv.id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["conversation_id"], conv.id.as_str());
    let (s, _) = t
        .call(
            Method::POST,
            "/portal/v1/messages",
            Some(&session),
            Some(json!({"text": "x".repeat(parley_cases::conversations::MAX_TEXT_BYTES + 1)})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = t
        .call(
            Method::POST,
            "/portal/v1/messages",
            Some(&session),
            Some(json!({"text": "hi", "conversation_id": "not-mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = t
        .call(Method::POST, "/portal/v1/logout", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(Method::GET, "/portal/v1/stream", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
