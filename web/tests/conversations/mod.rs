//! The agents' conversation API (issue #17): list with filters, one conversation with
//! its messages, replies and private notes (413 over the limit), status (409 from
//! closed), assignment (agents only to themselves), who sees what. Part of the `api`
//! test binary.

use axum::http::{Method, StatusCode};
use parley_cases::Actor;
use parley_cases::conversations::{InboundMessage, MAX_TEXT_BYTES, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::{Role, Store};
use serde_json::json;

use crate::T;

async fn visitor_writes(store: &Store, tenant_id: &str, visitor: &str, text: &str) -> String {
    let sys = Actor::system(tenant_id);
    let ch = store.web_chat_channel(&sys).await.unwrap();
    store
        .ingest(
            &sys,
            InboundMessage {
                channel_id: ch.id,
                thread_key: visitor.into(),
                sender: Sender {
                    identity: Some(RawIdentity {
                        kind: "web_chat".into(),
                        value: visitor.into(),
                    }),
                    ..Default::default()
                },
                text: text.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .conversation
        .id
}

#[tokio::test]
async fn agents_list_read_reply_note_resolve_and_assign_conversations() {
    let t = T::new().await;
    let agent = t.login("acme", Role::Agent).await;
    let sup = t.login("acme", Role::Supervisor).await;
    let other = t.login("globex", Role::Admin).await;
    let (a, _) = t.store.actor_for_token(&agent).await.unwrap();
    let (s, _) = t.store.actor_for_token(&sup).await.unwrap();
    let agent_id = a.user_id.clone().unwrap();
    let sup_id = s.user_id.clone().unwrap();
    let c1 = visitor_writes(&t.store, &a.tenant_id, "v1", "<img src=x onerror=alert(1)>").await;
    let c2 = visitor_writes(&t.store, &a.tenant_id, "v2", "hello").await;

    // Both unassigned without a team: the agent sees both, newest first.
    let (st, v) = t
        .call(Method::GET, "/api/v1/conversations", Some(&agent), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![c2.as_str(), c1.as_str()]);
    assert_eq!(v["items"][0]["channel"], "web_chat");
    assert_eq!(v["items"][0]["status"], "open");

    // One conversation with its messages: the script is data, not markup.
    let (st, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{c1}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["id"], c1.as_str());
    assert_eq!(v["messages"][0]["text"], "<img src=x onerror=alert(1)>");
    assert_eq!(
        v["messages"][0]["html"],
        "&lt;img src=x onerror=alert(1)&gt;"
    );
    assert_eq!(v["messages"][0]["author"], "customer");

    // A reply (queued for delivery), the same client id again, a note, too long.
    let uri = format!("/api/v1/conversations/{c1}/messages");
    let (st, r) = t
        .call(
            Method::POST,
            &uri,
            Some(&agent),
            Some(json!({"text": "Hi!", "client_id": "k1"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    assert_eq!(
        (
            r["seq"].as_i64(),
            r["status"].as_str(),
            r["private"].as_bool()
        ),
        (Some(2), Some("queued"), Some(false))
    );
    let (st, again) = t
        .call(
            Method::POST,
            &uri,
            Some(&agent),
            Some(json!({"text": "Hi!", "client_id": "k1"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(again["id"], r["id"]);
    let (st, n) = t
        .call(
            Method::POST,
            &uri,
            Some(&agent),
            Some(json!({"text": "VIP", "private": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{n}");
    assert_eq!(
        (n["status"].as_str(), n["direction"].as_str()),
        (Some("note"), Some("internal"))
    );
    let (st, e) = t
        .call(
            Method::POST,
            &uri,
            Some(&agent),
            Some(json!({"text": "x".repeat(MAX_TEXT_BYTES + 1)})),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_TEXT_BYTES.to_string())
    );
    let (st, _) = t
        .call(
            Method::POST,
            &uri,
            Some(&agent),
            Some(json!({"text": "  "})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{c1}?after=1"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    // The customer does not see the queued reply nor the note.
    let seen = t
        .store
        .visitor_messages(&Actor::system(&a.tenant_id), &c1, 0, None)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);

    // Assignment: the agent takes c1, may not give c2 to the supervisor; the
    // supervisor gives c2 to themselves, and the agent no longer sees it.
    let (st, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{c1}/assign"),
            Some(&agent),
            Some(json!({"user_id": agent_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["assignee_id"], agent_id.as_str());
    let (st, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{c2}/assign"),
            Some(&agent),
            Some(json!({"user_id": sup_id})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{c2}/assign"),
            Some(&sup),
            Some(json!({"user_id": sup_id})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{c2}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/conversations?assignee=me",
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/conversations?assignee=unassigned",
            Some(&sup),
            None,
        )
        .await;
    assert!(v["items"].as_array().unwrap().is_empty());

    // Status: resolved, filters by it, closed is final for agents (409), bad values 422.
    let status = format!("/api/v1/conversations/{c1}/status");
    let (st, v) = t
        .call(
            Method::POST,
            &status,
            Some(&agent),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("resolved"))
    );
    let (_, v) = t
        .call(
            Method::GET,
            "/api/v1/conversations?status=resolved&channel=web_chat",
            Some(&sup),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["id"], c1.as_str());
    let (st, _) = t
        .call(
            Method::POST,
            &status,
            Some(&agent),
            Some(json!({"status": "snoozed"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = t
        .call(
            Method::POST,
            &status,
            Some(&agent),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = t
        .call(
            Method::POST,
            &status,
            Some(&agent),
            Some(json!({"status": "open"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = t
        .call(
            Method::POST,
            &status,
            Some(&agent),
            Some(json!({"status": "gone"})),
        )
        .await;
    assert!(st.is_client_error());
    let (st, _) = t
        .call(
            Method::GET,
            "/api/v1/conversations?status=gone",
            Some(&agent),
            None,
        )
        .await;
    assert!(st.is_client_error());

    // Another tenant: nothing.
    let (st, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{c1}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = t
        .call(Method::GET, "/api/v1/conversations", Some(&other), None)
        .await;
    assert!(v["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn attachments_download_as_files_for_those_who_see_the_conversation() {
    let mut t = T::new().await;
    let store = t.store.clone().with_files_dir(&t.dir);
    t.app = parley_web::app(parley_web::AppState::new(
        store.clone(),
        parley_web::WebConfig::default(),
    ));
    let agent = t.login("acme", Role::Agent).await;
    let other = t.login("globex", Role::Admin).await;
    let (a, _) = t.store.actor_for_token(&agent).await.unwrap();
    let sys = Actor::system(&a.tenant_id);
    let ch = store.web_chat_channel(&sys).await.unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot really a picture";
    let att = store
        .store_attachment(&sys, &ch.id, "my <shot>.png", "image/png", png)
        .await
        .unwrap();
    let got = store
        .ingest(
            &sys,
            InboundMessage {
                channel_id: ch.id,
                thread_key: "v1".into(),
                sender: Sender {
                    identity: Some(RawIdentity {
                        kind: "web_chat".into(),
                        value: "v1".into(),
                    }),
                    ..Default::default()
                },
                attachments: vec![att],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let uri = format!(
        "/api/v1/conversations/{}/attachments/{}",
        got.conversation.id, got.message.attachments[0].id
    );
    let req = axum::http::Request::builder()
        .uri(&uri)
        .header("authorization", format!("Bearer {agent}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(t.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"myshot.png\""
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], &png[..]);
    let (st, _) = t.call(Method::GET, &uri, Some(&other), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = t
        .call(
            Method::GET,
            &format!(
                "/api/v1/conversations/{}/attachments/nope",
                got.conversation.id
            ),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// A router that completes work items as the real one does (stores the new state).
struct CompletingRouter(Store);

impl parley_web::AcdView for CompletingRouter {
    fn queue_metrics(&self, _tenant_id: &str) -> Vec<parley_cases::routing::QueueMetrics> {
        vec![]
    }
    fn agent_presence(&self, _tenant_id: &str) -> Vec<(String, parley_cases::routing::Presence)> {
        vec![]
    }
    fn work_item(
        &self,
        actor: Actor,
        item: String,
        action: parley_cases::work_items::WorkAction,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), parley_cases::Error>> + Send + 'static>,
    > {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .work_item_progress(&actor, &item, action.target(), actor.user_id.as_deref())
                .await?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn resolving_a_routed_conversation_completes_its_work_item() {
    use parley_cases::work_items::WorkItemState;
    let mut t = T::new().await;
    t.app = parley_web::app(
        parley_web::AppState::new(t.store.clone(), parley_web::WebConfig::default())
            .with_acd(std::sync::Arc::new(CompletingRouter(t.store.clone()))),
    );
    let agent = t.login("acme", Role::Agent).await;
    let (a, _) = t.store.actor_for_token(&agent).await.unwrap();
    let sys = Actor::system(&a.tenant_id);
    let q: parley_cases::queues::QueueInput =
        serde_json::from_value(json!({"name": "chat"})).unwrap();
    t.store.create_queue(&sys, q).await.unwrap();
    let conv = visitor_writes(&t.store, &a.tenant_id, "v1", "hello").await;
    let item = t
        .store
        .conversation(&sys, &conv)
        .await
        .unwrap()
        .work_item_id
        .unwrap();
    t.store
        .work_item_progress(&sys, &item, WorkItemState::Assigned, a.user_id.as_deref())
        .await
        .unwrap();
    let (st, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/status"),
            Some(&agent),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        t.store.work_item(&sys, &item).await.unwrap().state,
        WorkItemState::Completed
    );
}
