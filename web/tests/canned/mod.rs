//! Canned responses over HTTP (issue #17, the inbox's reply box): admins write the
//! library, every user reads it, bad templates are refused naming the field and store
//! nothing. Part of the `api` test binary.

use axum::http::{Method, StatusCode};
use parley_cases::Role;
use serde_json::json;

use crate::T;

#[tokio::test]
async fn admins_write_canned_responses_agents_read_them_and_bad_ones_are_refused() {
    let t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let other = t.login("globex", Role::Admin).await;
    let body = json!({"shortcut": "Refund", "title": "Refund on its way", "body": "Hi {{customer.first_name}}, the refund is on its way. {{ agent.first_name }}"});
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/canned-responses",
            Some(&agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, created) = t
        .call(
            Method::POST,
            "/api/v1/canned-responses",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["shortcut"], "refund", "shortcuts are lower case");
    let id = created["id"].as_str().unwrap().to_owned();
    // The same shortcut again is a conflict.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/canned-responses",
            Some(&admin),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Unknown placeholders, an unclosed one, an empty body: 422 naming the field.
    for (bad, field, words) in [
        (
            json!({"shortcut": "x", "title": "X", "body": "Hi {{customer.password}}"}),
            "body",
            "{{customer.password}}",
        ),
        (
            json!({"shortcut": "x", "title": "X", "body": "Hi {{customer.name"}),
            "body",
            "not closed",
        ),
        (
            json!({"shortcut": "x", "title": "X", "body": " "}),
            "body",
            "empty",
        ),
        (
            json!({"shortcut": "no spaces", "title": "X", "body": "Hi"}),
            "shortcut",
            "a-z",
        ),
        (
            json!({"shortcut": "x", "title": "", "body": "Hi"}),
            "title",
            "empty",
        ),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/canned-responses",
                Some(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert_eq!(v["error"]["field"], field, "{bad}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(words),
            "{bad}: {v}"
        );
    }
    // Agents read the library; nothing of the refused ones was stored.
    let (s, list) = t
        .call(Method::GET, "/api/v1/canned-responses", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["title"], "Refund on its way");
    // Another tenant sees none of it.
    let (s, list) = t
        .call(Method::GET, "/api/v1/canned-responses", Some(&other), None)
        .await;
    assert_eq!((s, list), (StatusCode::OK, json!([])));
    let uri = format!("/api/v1/canned-responses/{id}");
    let (s, _) = t.call(Method::GET, &uri, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Replace, then delete.
    let (s, v) = t
        .call(Method::PUT, &uri, Some(&admin), Some(json!({"shortcut": "refund", "title": "Refund", "body": "Dear {{customer.name}}, done."})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["body"], "Dear {{customer.name}}, done.");
    let (s, v) = t.call(Method::GET, &uri, Some(&agent), None).await;
    assert_eq!((s, &v["title"]), (StatusCode::OK, &json!("Refund")));
    let (s, _) = t.call(Method::DELETE, &uri, Some(&agent), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t.call(Method::DELETE, &uri, Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call(Method::GET, &uri, Some(&agent), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Every change is in the audit log.
    let (s, log) = t
        .call(
            Method::GET,
            &format!("/api/v1/audit?entity_id={id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "canned_response.create",
        "canned_response.update",
        "canned_response.delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn agents_see_their_colleagues_names_and_mention_handles_only() {
    let t = T::new().await;
    let agent = t.login("acme", Role::Agent).await;
    let (s, v) = t
        .call(Method::GET, "/api/v1/colleagues", Some(&agent), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v.as_array().unwrap();
    // Admin, supervisor, agent and engineer (engineers can be mentioned in notes).
    assert_eq!(list.len(), 4, "{v}");
    let sup = list.iter().find(|c| c["role"] == "supervisor").unwrap();
    assert_eq!(sup["handle"], "supervisor");
    assert_eq!(sup["name"], "supervisor of acme");
    assert!(
        !v.to_string().contains("@acme.test"),
        "no email address: {v}"
    );
    // Users of another tenant are not colleagues.
    assert!(!v.to_string().contains("globex"), "{v}");
}
