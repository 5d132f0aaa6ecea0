//! Provider webhooks (issue #19) against a local provider server (axum on
//! 127.0.0.1:0 serving the Graph API's media shapes): a good WhatsApp webhook → one
//! message on the right customer's timeline; a wrong or missing signature → 401 and
//! nothing stored; the same webhook 5 times → one message; the verification
//! handshake; a media URL answering 404 → the message kept, saying so; a receipt
//! before its message → kept and applied once the provider id is recorded; Telegram's
//! secret token and Twilio's signature over the public URL. Payloads are fixtures
//! (`web/tests/fixtures/messaging`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use parley_cases::conversations::MessageStatus;
use parley_cases::{Actor, Role};
use parley_messaging::signature;
use parley_web::WebConfig;
use serde_json::{Value, json};

use crate::T;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/messaging/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A provider API on loopback: Graph's `GET /{version}/{media_id}` pointing at a media
/// URL that answers 404.
async fn provider() -> SocketAddr {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/{version}/{media_id}",
            get(move |axum::extract::Path((_v, id)): axum::extract::Path<(String, String)>| async move {
                axum::Json(json!({"url": format!("http://{addr}/media/{id}"), "mime_type": "image/jpeg", "id": id}))
            }),
        )
        .route("/media/{id}", get(|| async { StatusCode::NOT_FOUND }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn post_hook(
    t: &T,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    t.raw(req.body(Body::from(body.to_vec())).unwrap()).await
}

async fn whatsapp_messages(t: &T, admin: &str) -> Vec<Value> {
    let (_, list) = t
        .call(
            Method::GET,
            "/api/v1/conversations?channel=whatsapp",
            Some(admin),
            None,
        )
        .await;
    let mut out = vec![];
    for c in list["items"].as_array().unwrap() {
        let (_, d) = t
            .call(
                Method::GET,
                &format!("/api/v1/conversations/{}", c["id"].as_str().unwrap()),
                Some(admin),
                None,
            )
            .await;
        out.extend(d["messages"].as_array().unwrap().iter().cloned());
    }
    out
}

#[tokio::test]
async fn whatsapp_webhooks_are_verified_deduplicated_and_applied() {
    let t = T::with_config(WebConfig::default()).await;
    let admin = t.login("acme", Role::Admin).await;
    let api = provider().await;
    let (s, ch) = t
        .call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"kind": "whatsapp", "name": "WA", "config": {
            "phone_number_id": "106540352242922", "access_token": "EAAG", "app_secret": "app-secret",
            "verify_token": "verify-me", "api_base_url": format!("http://{api}")}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ch}");
    let id = ch["id"].as_str().unwrap();
    let path = format!("/hooks/v1/whatsapp/{id}");

    // The subscription handshake.
    let (s, v) = t
        .call(
            Method::GET,
            &format!(
                "{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
            ),
            None,
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!(1158201444)));
    let (s, _) = t
        .call(
            Method::GET,
            &format!("{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Missing or wrong signature: 401, nothing stored.
    let body = fixture("whatsapp_text.json");
    let (s, _) = post_hook(&t, &path, &body, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let wrong = signature::meta_header("not-the-secret", &body);
    let (s, _) = post_hook(&t, &path, &body, &[(signature::META_HEADER, wrong)]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(whatsapp_messages(&t, &admin).await.is_empty());

    // The good one, five times: one message, on Sheena's timeline.
    let good = signature::meta_header("app-secret", &body);
    for _ in 0..5 {
        let (s, v) = post_hook(&t, &path, &body, &[(signature::META_HEADER, good.clone())]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let msgs = whatsapp_messages(&t, &admin).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["text"], "Does it come in another color?");
    let (s, c) = t
        .call(
            Method::GET,
            "/api/v1/customers/lookup?kind=whatsapp&value=%2B16505551234",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "Sheena Nelson");

    // Media answering 404: the message is kept and says so.
    let img = fixture("whatsapp_image.json");
    let (s, v) = post_hook(
        &t,
        &path,
        &img,
        &[(
            signature::META_HEADER,
            signature::meta_header("app-secret", &img),
        )],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let msgs = whatsapp_messages(&t, &admin).await;
    let kept = msgs
        .iter()
        .find(|m| m["text"].as_str().unwrap().contains("The broken part"))
        .expect("kept");
    assert!(
        kept["text"]
            .as_str()
            .unwrap()
            .contains("attachment not downloaded: HTTP 404"),
        "{kept}"
    );

    // Location and an interactive reply become text.
    let li = fixture("whatsapp_location_interactive.json");
    let (s, _) = post_hook(
        &t,
        &path,
        &li,
        &[(
            signature::META_HEADER,
            signature::meta_header("app-secret", &li),
        )],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let texts: Vec<String> = whatsapp_messages(&t, &admin)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("Philz Coffee")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "Yes, please"), "{texts:?}");

    // A receipt before its message: kept, then applied when the reply's provider id
    // is recorded.
    let st = fixture("whatsapp_status_delivered.json");
    let (s, _) = post_hook(
        &t,
        &path,
        &st,
        &[(
            signature::META_HEADER,
            signature::meta_header("app-secret", &st),
        )],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let conv = msgs[0]["conversation_id"].as_str().unwrap();
    let (s, reply) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&admin),
            Some(json!({"text": "Yes, in blue."})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{reply}");
    let acme = t.store.tenant_by_name("acme").await.unwrap().unwrap();
    let reply_id = reply["id"].as_str().unwrap();
    assert!(
        t.store
            .delivery_sent(&acme.id, reply_id, Some("wamid.OUTBOUND1"))
            .await
            .unwrap()
    );
    let events = t
        .store
        .message_status_events(&Actor::system(&acme.id), reply_id)
        .await
        .unwrap();
    assert_eq!(
        events.last().unwrap().status,
        MessageStatus::Delivered,
        "{events:?}"
    );

    // A disabled channel takes no webhook.
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/channels/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post_hook(&t, &path, &body, &[(signature::META_HEADER, good)]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn telegram_secret_token_and_twilio_signature_over_the_public_url() {
    let t = T::with_config(WebConfig {
        public_url: Some("https://parley.example.com".into()),
        ..WebConfig::default()
    })
    .await;
    let admin = t.login("acme", Role::Admin).await;
    let (_, tg) = t
        .call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"kind": "telegram", "name": "Bot", "config": {
            "bot_token": "123:abc", "secret_token": "tg-secret", "api_base_url": "http://127.0.0.1:9"}})))
        .await;
    let path = format!("/hooks/v1/telegram/{}", tg["id"].as_str().unwrap());
    let body = fixture("telegram_text.json");
    let (s, _) = post_hook(
        &t,
        &path,
        &body,
        &[(signature::TELEGRAM_HEADER, "nope".into())],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for _ in 0..3 {
        let (s, v) = post_hook(
            &t,
            &path,
            &body,
            &[(signature::TELEGRAM_HEADER, "tg-secret".into())],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, list) = t
        .call(
            Method::GET,
            "/api/v1/conversations?channel=telegram",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    let (_, sms) = t
        .call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"kind": "sms", "name": "Texts", "config": {
            "account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "auth_token": "twilio-token", "from": "+15005550006"}})))
        .await;
    let path = format!("/hooks/v1/sms/{}", sms["id"].as_str().unwrap());
    let form = fixture("twilio_sms.form");
    let form = String::from_utf8(form).unwrap().trim().as_bytes().to_vec();
    let params: Vec<(String, String)> = form_urlencoded::parse(&form)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sig = signature::twilio_header(
        "twilio-token",
        &format!("https://parley.example.com{path}"),
        &params,
    );
    let bad = signature::twilio_header("twilio-token", &format!("http://localhost{path}"), &params);
    let post_form = |sig: String| {
        Request::builder()
            .method(Method::POST)
            .uri(&path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TWILIO_HEADER, sig)
            .body(Body::from(form.clone()))
            .unwrap()
    };
    let (s, _) = t.raw(post_form(bad)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "signed over another URL");
    let (s, v) = t.raw(post_form(sig)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, c) = t
        .call(
            Method::GET,
            "/api/v1/customers/lookup?kind=phone&value=%2B14155552671",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "an SMS sender is found by phone: {c}");
}
