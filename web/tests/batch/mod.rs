//! Batch operations (issue #23): 500 cases updated in one request, each audited; unknown
//! and other tenants' items refused per item; a templated message to several
//! conversations, filled for each customer; bad batches refused naming the field.
//! Part of the `api` test binary.

use axum::http::{Method, StatusCode};
use parley_cases::Actor;
use parley_cases::audit::AuditFilter;
use parley_cases::cases::NewCase;
use parley_cases::conversations::{InboundMessage, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::queues::QueueInput;
use parley_cases::sla::Priority;
use serde_json::json;

use crate::T;

async fn tenant(t: &T, name: &str) -> Actor {
    let admin = t.login(name, parley_cases::Role::Admin).await;
    let (a, _) = t.store.actor_for_token(&admin).await.unwrap();
    Actor::system(a.tenant_id)
}

fn new_case(n: usize) -> NewCase {
    NewCase {
        title: format!("Outage report {n}"),
        customer_id: None,
        case_type_id: None,
        priority: Some(Priority::P3),
        assignee_id: None,
        team_id: None,
        custom_fields: Default::default(),
        tags: vec![],
    }
}

#[tokio::test]
async fn a_batch_of_500_cases_is_applied_item_by_item() {
    let t = T::new().await;
    let acme = tenant(&t, "acme").await;
    let globex = tenant(&t, "globex").await;
    let mut ids = Vec::new();
    for n in 0..500 {
        ids.push(t.store.create_case(&acme, new_case(n)).await.unwrap().id);
    }
    let foreign = t.store.create_case(&globex, new_case(0)).await.unwrap().id;
    let sup = t.login("acme", parley_cases::Role::Supervisor).await;
    let mut all = ids.clone();
    all.push("no-such-case".into());
    all.push(foreign.clone());
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/cases/batch",
            Some(&sup),
            Some(json!({"ids": all, "action": {"type": "priority", "priority": "P1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["succeeded"], 500);
    assert_eq!(v["failed"], 2);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 502);
    assert!(results[..500].iter().all(|r| r["ok"] == true));
    // Another tenant's case is "not found", like an unknown one.
    for r in &results[500..] {
        assert_eq!(r["ok"], false);
        assert_eq!(r["error"]["code"], "not_found", "{r}");
    }
    assert_eq!(
        t.store.case(&globex, &foreign).await.unwrap().priority,
        Priority::P3
    );
    for id in [&ids[0], &ids[250], &ids[499]] {
        assert_eq!(
            t.store.case(&acme, id).await.unwrap().priority,
            Priority::P1
        );
    }
    // Audited per item.
    let mut updates = 0;
    let mut cursor = None;
    loop {
        let page = t
            .store
            .audit_log(
                &acme,
                &AuditFilter {
                    limit: Some(200),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        updates += page
            .items
            .iter()
            .filter(|e| e.action == "case.update")
            .count();
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(updates, 500);
    // Tags and status the same way.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/cases/batch",
            Some(&sup),
            Some(json!({"ids": &ids[..10], "action": {"type": "tag", "add": ["outage"]}})),
        )
        .await;
    assert_eq!(
        (s, v["succeeded"].clone()),
        (StatusCode::OK, json!(10)),
        "{v}"
    );
    assert!(
        t.store
            .case(&acme, &ids[3])
            .await
            .unwrap()
            .tags
            .contains(&"outage".to_owned())
    );
    // Bad batches are refused whole, naming the field.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/cases/batch",
            Some(&sup),
            Some(json!({"ids": vec!["x"; 1001], "action": {"type": "priority", "priority": "P1"}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("ids")),
        "{v}"
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/cases/batch",
            Some(&sup),
            Some(json!({"ids": ["x"], "action": {"type": "message", "text": "hi"}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("action.type")),
        "{v}"
    );
}

#[tokio::test]
async fn a_templated_message_goes_to_each_conversation_filled_for_its_customer() {
    let t = T::new().await;
    let acme = tenant(&t, "acme").await;
    let q: QueueInput = serde_json::from_value(json!({"name": "chat"})).unwrap();
    t.store.create_queue(&acme, q).await.unwrap();
    let ch = t.store.web_chat_channel(&acme).await.unwrap().id;
    let admin = t.login("acme", parley_cases::Role::Admin).await;
    let (s, v) = t
        .call(Method::POST, "/api/v1/canned-responses", Some(&admin),
              Some(json!({"shortcut": "outage", "title": "Outage", "body": "Hi {{customer.first_name}}, the outage is fixed."})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut convs = Vec::new();
    for name in ["Ann Lee", "Bo Kim", "Cy Ng"] {
        let got = t
            .store
            .ingest(
                &acme,
                InboundMessage {
                    channel_id: ch.clone(),
                    thread_key: name.into(),
                    sender: Sender {
                        customer_id: None,
                        identity: Some(RawIdentity {
                            kind: "web_chat".into(),
                            value: name.into(),
                        }),
                        name: Some(name.into()),
                    },
                    text: "Is the internet down?".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        convs.push(got.conversation.id);
    }
    let sup = t.login("acme", parley_cases::Role::Supervisor).await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/conversations/batch",
            Some(&sup),
            Some(json!({"ids": convs, "action": {"type": "message", "shortcut": "outage"}})),
        )
        .await;
    assert_eq!(
        (s, v["succeeded"].clone()),
        (StatusCode::OK, json!(3)),
        "{v}"
    );
    for (id, first) in convs.iter().zip(["Ann", "Bo", "Cy"]) {
        let (_, v) = t
            .call(
                Method::GET,
                &format!("/api/v1/conversations/{id}"),
                Some(&sup),
                None,
            )
            .await;
        let last = v["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last["text"],
            format!("Hi {first}, the outage is fixed."),
            "{v}"
        );
    }
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/conversations/batch",
            Some(&sup),
            Some(json!({"ids": convs, "action": {"type": "tag", "add": ["outage"]}})),
        )
        .await;
    assert_eq!(
        (s, v["succeeded"].clone()),
        (StatusCode::OK, json!(3)),
        "{v}"
    );
}
