//! The storage suite: every test runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod acd;
mod analytics;
mod automation;
mod callbacks;
mod canned;
mod channels;
mod common;
mod conversations;
mod flows;
mod incidents;
mod kb;
mod lookups;
mod mentions;
mod outbox;
mod portal;
mod recordings;
mod surveys;
mod triage;
mod work_items;

use parley_cases::cases::{CaseFilter, CasePatch, NewCase};
use parley_cases::customers::{Consent, NewCustomer, RawIdentity};
use parley_cases::directory::{NewUser, UserPatch};
use parley_cases::sla::{CaseStatus, Priority, SlaPolicy};
use parley_cases::timeline::NewInteraction;
use parley_cases::{Actor, Error, Role, Store};
use serde_json::json;

fn ident(kind: &str, value: &str) -> RawIdentity {
    RawIdentity {
        kind: kind.into(),
        value: value.into(),
    }
}

async fn customer(
    s: &Store,
    a: &Actor,
    name: &str,
    ids: &[(&str, &str)],
) -> parley_cases::customers::Customer {
    s.create_customer(
        a,
        NewCustomer {
            name: name.into(),
            identities: ids.iter().map(|(k, v)| ident(k, v)).collect(),
            consent: Consent::default(),
        },
    )
    .await
    .unwrap()
}

fn msg(kind: &str, channel: &str, direction: &str, body: &str) -> NewInteraction {
    NewInteraction {
        kind: kind.into(),
        channel: channel.into(),
        direction: direction.into(),
        body: body.into(),
        attachments: vec![],
        case_id: None,
        occurred_at: None,
        sentiment: None,
        intent: None,
        tags: vec![],
    }
}

async fn user(s: &Store, a: &Actor, email: &str, role: Role) -> Actor {
    let u = s
        .create_user(
            a,
            NewUser {
                email: email.into(),
                name: email.into(),
                role,
                password: "long enough pw".into(),
            },
        )
        .await
        .unwrap();
    Actor {
        tenant_id: a.tenant_id.clone(),
        user_id: Some(u.id),
        role,
    }
}

on_both!(migrations_are_idempotent_and_ready, |h| {
    assert!(h.store.ready().await.unwrap());
    h.store.migrate().await.unwrap();
    assert!(h.store.ready().await.unwrap());
});

on_both!(any_identity_resolves_to_one_customer, |h| {
    let a = h.tenant("acme").await;
    let c = customer(
        &h.store,
        &a,
        "Ann",
        &[("phone", "+1 (555) 010-0100"), ("email", "Ann@Example.com")],
    )
    .await;
    for (k, v) in [
        ("phone", "+15550100100"),
        ("phone", "0015550100100"),
        ("email", "ann@example.COM "),
    ] {
        assert_eq!(
            h.store.lookup_customer(&a, k, v).await.unwrap().id,
            c.id,
            "{k} {v}"
        );
    }
    // The same identity cannot belong to two customers.
    let err = h
        .store
        .create_customer(
            &a,
            NewCustomer {
                name: "Other".into(),
                identities: vec![ident("email", "ann@example.com")],
                consent: Consent::default(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    // A failed create stores nothing.
    let page = h.store.list_customers(&a, None, None, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    // Bad identities name the field.
    let err = h
        .store
        .create_customer(
            &a,
            NewCustomer {
                name: "X".into(),
                identities: vec![ident("phone", "5550100")],
                consent: Consent::default(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid { ref field, .. } if field == "identities[0].value"),
        "{err:?}"
    );
});

on_both!(timeline_is_one_ordered_thread_with_cursor_pages, |h| {
    let a = h.tenant("acme").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let mut ids = vec![];
    for i in 0..7 {
        h.clock.advance_minutes(1);
        let (kind, channel) = if i % 2 == 0 {
            ("call", "voice")
        } else {
            ("message", "whatsapp")
        };
        ids.push(
            h.store
                .add_interaction(
                    &a,
                    &c.id,
                    msg(kind, channel, "inbound", &format!("entry {i}")),
                )
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = vec![];
    let mut cursor = None;
    loop {
        let page = h
            .store
            .timeline(&a, &c.id, Some(3), cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every entry exactly once");
});

on_both!(
    case_moves_through_its_statuses_and_every_step_is_recorded,
    |h| {
        let a = h.tenant("acme").await;
        let agent = user(&h.store, &a, "agent@acme.test", Role::Agent).await;
        h.store
            .set_sla_policy(
                &a,
                SlaPolicy {
                    priority: Priority::P1,
                    first_response_minutes: 60,
                    resolution_minutes: 480,
                },
            )
            .await
            .unwrap();
        let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
        let case = h
            .store
            .create_case(
                &agent,
                NewCase {
                    title: "Refund".into(),
                    customer_id: Some(c.id.clone()),
                    case_type_id: None,
                    priority: Some(Priority::P1),
                    assignee_id: agent.user_id.clone(),
                    team_id: None,
                    custom_fields: Default::default(),
                    tags: vec!["Billing".into()],
                },
            )
            .await
            .unwrap();
        assert_eq!(case.number, 1);
        assert_eq!(case.status, CaseStatus::New);
        assert_eq!(case.tags, vec!["billing"]);
        assert_eq!(
            case.sla.first_response_due_at,
            Some(common::T0.plus_minutes(60))
        );
        use CaseStatus::*;
        let path = [Open, PendingCustomer, OnHold, Resolved, Closed, Open];
        for to in path {
            h.clock.advance_minutes(5);
            let c = h
                .store
                .transition_case(&agent, &case.id, to, None)
                .await
                .unwrap();
            assert_eq!(c.status, to);
        }
        // Not allowed: open -> new; and nothing changes when refused.
        let err = h
            .store
            .transition_case(&agent, &case.id, New, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTransition { .. }));
        assert_eq!(h.store.case(&agent, &case.id).await.unwrap().status, Open);
        let events = h.store.case_events(&agent, &case.id).await.unwrap();
        let statuses: Vec<_> = events.iter().filter_map(|e| e.to_status.clone()).collect();
        assert_eq!(
            statuses,
            [
                "open",
                "pending_customer",
                "on_hold",
                "resolved",
                "closed",
                "open"
            ]
        );
        assert_eq!(events[0].kind, "created");
        let audit = h
            .store
            .audit_log(
                &a,
                &parley_cases::audit::AuditFilter {
                    entity_id: Some(case.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            audit
                .items
                .iter()
                .filter(|e| e.action == "case.transition")
                .count(),
            6
        );
        assert!(audit.items.iter().all(|e| e.actor_id == agent.user_id));
        // Pending customer (5 minutes) paused the resolution clock; reopen restarted it.
        let after = h.store.case(&agent, &case.id).await.unwrap();
        assert_eq!(
            after.sla.resolution_due_at,
            Some(common::T0.plus_minutes(30 + 480))
        );
        assert!(after.resolved_at.is_none() && after.closed_at.is_none());
    }
);

on_both!(tenants_are_isolated, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("globex").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    assert!(matches!(
        h.store.customer(&b, &c.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.store.lookup_customer(&b, "phone", "+15550100").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.store.timeline(&b, &c.id, None, None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        h.store
            .add_interaction(&b, &c.id, msg("call", "voice", "inbound", "x"))
            .await
            .is_err()
    );
    assert!(
        h.store
            .list_customers(&b, None, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The same phone may exist in both tenants as different customers.
    let other = customer(&h.store, &b, "Ann at Globex", &[("phone", "+15550100")]).await;
    assert_ne!(other.id, c.id);
    let case = h
        .store
        .create_case(
            &a,
            NewCase {
                title: "t".into(),
                customer_id: Some(c.id.clone()),
                case_type_id: None,
                priority: None,
                assignee_id: None,
                team_id: None,
                custom_fields: Default::default(),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        h.store.case(&b, &case.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        h.store
            .transition_case(&b, &case.id, CaseStatus::Open, None)
            .await
            .is_err()
    );
    assert!(
        h.store
            .list_cases(&b, &CaseFilter::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        h.store
            .search_interactions(&b, "anything", None)
            .await
            .unwrap()
            .is_empty()
    );
});

on_both!(merging_customers_moves_identities_and_timeline, |h| {
    let a = h.tenant("acme").await;
    let phone = customer(&h.store, &a, "Ann (phone)", &[("phone", "+15550100")]).await;
    let mail = customer(&h.store, &a, "Ann (mail)", &[("email", "ann@example.com")]).await;
    h.store
        .add_interaction(&a, &phone.id, msg("call", "voice", "inbound", "call one"))
        .await
        .unwrap();
    h.store
        .add_interaction(&a, &mail.id, msg("email", "email", "inbound", "mail one"))
        .await
        .unwrap();
    let merged = h
        .store
        .merge_customers(&a, &phone.id, &mail.id)
        .await
        .unwrap();
    assert_eq!(merged.identities.len(), 2);
    assert_eq!(
        h.store
            .lookup_customer(&a, "phone", "+15550100")
            .await
            .unwrap()
            .id,
        mail.id
    );
    let src = h.store.customer(&a, &phone.id).await.unwrap();
    assert_eq!(src.merged_into.as_deref(), Some(mail.id.as_str()));
    // Late traffic for the old id lands on the survivor; reads follow the merge.
    h.store
        .add_interaction(&a, &phone.id, msg("message", "sms", "inbound", "late sms"))
        .await
        .unwrap();
    let tl = h.store.timeline(&a, &phone.id, None, None).await.unwrap();
    let bodies: Vec<_> = tl.items.iter().map(|i| i.body.as_str()).collect();
    assert!(
        bodies.contains(&"call one")
            && bodies.contains(&"mail one")
            && bodies.contains(&"late sms")
    );
    assert!(
        tl.items
            .iter()
            .any(|i| i.body.contains("merged into this customer")),
        "merge recorded on the timeline"
    );
    assert!(
        h.store
            .merge_customers(&a, &phone.id, &mail.id)
            .await
            .is_err(),
        "cannot merge twice"
    );
});

on_both!(custom_fields_follow_the_case_type, |h| {
    let a = h.tenant("acme").await;
    let fields = serde_json::from_value(json!([
        {"key": "invoice", "type": "text", "required": true},
        {"key": "reason", "type": "enum", "values": ["double", "wrong"]}
    ]))
    .unwrap();
    let ct = h
        .store
        .create_case_type(&a, "Billing", fields)
        .await
        .unwrap();
    let mk = |cf: serde_json::Value| NewCase {
        title: "t".into(),
        customer_id: None,
        case_type_id: Some(ct.id.clone()),
        priority: None,
        assignee_id: None,
        team_id: None,
        custom_fields: cf.as_object().cloned().unwrap(),
        tags: vec![],
    };
    let err = h
        .store
        .create_case(&a, mk(json!({"reason": "double"})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid { ref field, .. } if field == "custom_fields.invoice"),
        "{err:?}"
    );
    let case = h
        .store
        .create_case(&a, mk(json!({"invoice": "I-1", "reason": "double"})))
        .await
        .unwrap();
    let err = h
        .store
        .update_case(
            &a,
            &case.id,
            CasePatch {
                custom_fields: json!({"reason": "other"}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { ref field, .. } if field == "custom_fields.reason"));
    let upd = h
        .store
        .update_case(
            &a,
            &case.id,
            CasePatch {
                custom_fields: json!({"reason": "wrong"}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        upd.custom_fields,
        json!({"invoice": "I-1", "reason": "wrong"})
            .as_object()
            .cloned()
            .unwrap()
    );
});

on_both!(case_list_filters_and_pages, |h| {
    let a = h.tenant("acme").await;
    let agent = user(&h.store, &a, "agent@acme.test", Role::Agent).await;
    let team = h.store.create_team(&a, "Tier 2").await.unwrap();
    for i in 0..9 {
        h.clock.advance_minutes(1);
        let c = h
            .store
            .create_case(
                &a,
                NewCase {
                    title: format!("case {i}"),
                    customer_id: None,
                    case_type_id: None,
                    priority: Some(if i % 3 == 0 {
                        Priority::P0
                    } else {
                        Priority::P3
                    }),
                    assignee_id: (i % 2 == 0).then(|| agent.user_id.clone().unwrap()),
                    team_id: (i == 4).then(|| team.id.clone()),
                    custom_fields: Default::default(),
                    tags: if i < 2 { vec!["vip".into()] } else { vec![] },
                },
            )
            .await
            .unwrap();
        if i >= 6 {
            h.store
                .transition_case(&a, &c.id, CaseStatus::Open, None)
                .await
                .unwrap();
        }
    }
    let count = |f: CaseFilter| {
        let (s, a) = (h.store.clone(), a.clone());
        async move { s.list_cases(&a, &f).await.unwrap().items.len() }
    };
    assert_eq!(count(CaseFilter::default()).await, 9);
    assert_eq!(
        count(CaseFilter {
            status: Some(CaseStatus::Open),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(CaseFilter {
            priority: Some(Priority::P0),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(CaseFilter {
            assignee_id: agent.user_id.clone(),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(CaseFilter {
            team_id: Some(team.id.clone()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(CaseFilter {
            tag: Some("VIP".into()),
            ..Default::default()
        })
        .await,
        2
    );
    let p1 = h
        .store
        .list_cases(
            &a,
            &CaseFilter {
                limit: Some(4),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p1.items[0].title, "case 8");
    let p2 = h
        .store
        .list_cases(
            &a,
            &CaseFilter {
                limit: Some(4),
                cursor: p1.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.items[0].title, "case 4");
    assert!(
        h.store
            .list_cases(
                &a,
                &CaseFilter {
                    cursor: Some("garbage".into()),
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
});

on_both!(full_text_search_finds_words_within_the_tenant, |h| {
    let a = h.tenant("acme").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    h.store
        .add_interaction(
            &a,
            &c.id,
            msg(
                "email",
                "email",
                "inbound",
                "My router keeps dropping the connection",
            ),
        )
        .await
        .unwrap();
    h.store
        .add_interaction(
            &a,
            &c.id,
            msg(
                "message",
                "web_chat",
                "inbound",
                "Billing question about invoice",
            ),
        )
        .await
        .unwrap();
    let hits = h
        .store
        .search_interactions(&a, "router connection", None)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].body.contains("router"));
    // Query syntax in user input is just words.
    assert_eq!(
        h.store
            .search_interactions(&a, "invoice\" OR NEAR(*", None)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        h.store
            .search_interactions(&a, "INVOICE", None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(h.store.search_interactions(&a, "  ", None).await.is_err());
});

on_both!(gdpr_export_then_erase, |h| {
    let a = h.tenant("acme").await;
    let c = customer(
        &h.store,
        &a,
        "Erin Private",
        &[("phone", "+15550199"), ("email", "erin@private.test")],
    )
    .await;
    h.store
        .add_interaction(
            &a,
            &c.id,
            msg(
                "email",
                "email",
                "inbound",
                "my secret address is 1 Main St",
            ),
        )
        .await
        .unwrap();
    let case = h
        .store
        .create_case(
            &a,
            NewCase {
                title: "Erin's refund".into(),
                customer_id: Some(c.id.clone()),
                case_type_id: None,
                priority: None,
                assignee_id: None,
                team_id: None,
                custom_fields: Default::default(),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let export = h.store.export_customer(&a, &c.id).await.unwrap();
    let doc = serde_json::to_string(&export).unwrap();
    assert!(
        doc.contains("Erin Private")
            && doc.contains("1 Main St")
            && doc.contains("erin@private.test")
            && doc.contains(&case.id)
    );
    assert!(!export.audit.is_empty());

    let receipt = h.store.erase_customer(&a, &c.id).await.unwrap();
    assert_eq!(receipt.identities, 2);
    let after = h.store.customer(&a, &c.id).await.unwrap();
    assert_eq!(after.name, parley_cases::gdpr::ERASED_NAME);
    assert!(after.identities.is_empty() && after.erased_at.is_some());
    assert!(
        h.store
            .lookup_customer(&a, "phone", "+15550199")
            .await
            .is_err()
    );
    assert!(
        h.store
            .search_interactions(&a, "secret", None)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing personal anywhere a user can read, audit log included; the erasure record remains.
    let export = serde_json::to_string(&h.store.export_customer(&a, &c.id).await.unwrap()).unwrap();
    let audit = serde_json::to_string(
        &h.store
            .audit_log(&a, &Default::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    for pii in ["Erin", "erin@private.test", "+15550199", "Main St"] {
        assert!(!export.contains(pii), "export still has {pii}");
        assert!(!audit.contains(pii), "audit still has {pii}");
    }
    assert!(audit.contains("customer.erase"));
    // The timeline keeps its shape: conversations change, they do not vanish.
    assert_eq!(
        h.store
            .timeline(&a, &c.id, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
});

on_both!(login_tokens_expire_and_revoke, |h| {
    let a = h.tenant("acme").await;
    let u = h
        .store
        .create_user(
            &a,
            NewUser {
                email: "Sup@Acme.test".into(),
                name: "Sup".into(),
                role: Role::Supervisor,
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        h.store
            .authenticate("acme", "sup@acme.test", "wrong password")
            .await,
        Err(Error::Unauthenticated)
    ));
    assert!(matches!(
        h.store
            .authenticate("nope", "sup@acme.test", "correct horse battery")
            .await,
        Err(Error::Unauthenticated)
    ));
    let user = h
        .store
        .authenticate("acme", "SUP@acme.test", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(user.id, u.id);
    let t = h.store.issue_token(&user, 3600).await.unwrap();
    let (actor, _) = h.store.actor_for_token(&t.token).await.unwrap();
    assert_eq!(
        (actor.role, actor.tenant_id.as_str()),
        (Role::Supervisor, a.tenant_id.as_str())
    );
    h.clock.advance_minutes(61);
    assert!(h.store.actor_for_token(&t.token).await.is_err(), "expired");
    let t2 = h.store.issue_token(&user, 3600).await.unwrap();
    h.store.revoke_token(&t2.token).await.unwrap();
    assert!(h.store.actor_for_token(&t2.token).await.is_err(), "revoked");
    let t3 = h.store.issue_token(&user, 3600).await.unwrap();
    h.store
        .update_user(
            &a,
            &u.id,
            UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        h.store.actor_for_token(&t3.token).await.is_err(),
        "deactivated"
    );
    assert!(
        h.store
            .authenticate("acme", "sup@acme.test", "correct horse battery")
            .await
            .is_err()
    );
    // Duplicate email in a tenant is a conflict.
    let dup = h
        .store
        .create_user(
            &a,
            NewUser {
                email: "sup@acme.test".into(),
                name: "x".into(),
                role: Role::Agent,
                password: "0123456789".into(),
            },
        )
        .await;
    assert!(matches!(dup, Err(Error::Conflict { .. })));
});

on_both!(sla_breaches_show_in_virtual_time, |h| {
    let a = h.tenant("acme").await;
    let agent = user(&h.store, &a, "agent@acme.test", Role::Agent).await;
    h.store
        .set_sla_policy(
            &a,
            SlaPolicy {
                priority: Priority::P0,
                first_response_minutes: 15,
                resolution_minutes: 240,
            },
        )
        .await
        .unwrap();
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let case = h
        .store
        .create_case(
            &a,
            NewCase {
                title: "down".into(),
                customer_id: Some(c.id.clone()),
                case_type_id: None,
                priority: Some(Priority::P0),
                assignee_id: None,
                team_id: None,
                custom_fields: Default::default(),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    h.clock.advance_minutes(10);
    assert!(
        !h.store
            .case(&a, &case.id)
            .await
            .unwrap()
            .sla
            .first_response_breached
    );
    h.clock.advance_minutes(10);
    assert!(
        h.store
            .case(&a, &case.id)
            .await
            .unwrap()
            .sla
            .first_response_breached
    );
    // A reply answers the first response (late, so it stays breached; the time is kept).
    let mut reply = msg("email", "email", "outbound", "On it");
    reply.case_id = Some(case.id.clone());
    h.store.add_interaction(&agent, &c.id, reply).await.unwrap();
    let now = h.store.case(&a, &case.id).await.unwrap();
    assert_eq!(
        now.sla.first_responded_at,
        Some(common::T0.plus_minutes(20))
    );
    // Raising priority on a case without breach moves due times.
    h.store
        .set_sla_policy(
            &a,
            SlaPolicy {
                priority: Priority::P3,
                first_response_minutes: 480,
                resolution_minutes: 4320,
            },
        )
        .await
        .unwrap();
    let p3 = h
        .store
        .update_case(
            &a,
            &case.id,
            CasePatch {
                priority: Some(Priority::P3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p3.sla.resolution_due_at,
        Some(common::T0.plus_minutes(4320))
    );
    assert!(!p3.sla.first_response_breached);
});

on_both!(notes_mention_users, |h| {
    let a = h.tenant("acme").await;
    let sup = user(&h.store, &a, "sam@acme.test", Role::Supervisor).await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let mut rx = h.store.subscribe();
    let note = h
        .store
        .add_interaction(
            &a,
            &c.id,
            msg(
                "note",
                "internal",
                "internal",
                "@sam please approve; cc @nobody",
            ),
        )
        .await
        .unwrap();
    assert_eq!(note.mentions, vec![sup.user_id.clone().unwrap()]);
    let tl = h.store.timeline(&a, &c.id, None, None).await.unwrap();
    assert_eq!(tl.items[0].mentions, note.mentions);
    let e = rx.recv().await.unwrap();
    assert_eq!(e.kind, "timeline.appended");
    assert!(
        e.visible_to(&a.tenant_id, Role::Agent, None) && !e.visible_to("other", Role::Admin, None)
    );
});

on_both!(case_merge_and_links, |h| {
    let a = h.tenant("acme").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let mk = |t: &str| NewCase {
        title: t.into(),
        customer_id: Some(c.id.clone()),
        case_type_id: None,
        priority: None,
        assignee_id: None,
        team_id: None,
        custom_fields: Default::default(),
        tags: vec![t.into()],
    };
    let one = h.store.create_case(&a, mk("one")).await.unwrap();
    let two = h.store.create_case(&a, mk("two")).await.unwrap();
    let three = h.store.create_case(&a, mk("three")).await.unwrap();
    let mut m = msg("message", "sms", "inbound", "about one");
    m.case_id = Some(one.id.clone());
    h.store.add_interaction(&a, &c.id, m).await.unwrap();
    let linked = h
        .store
        .link_cases(&a, &two.id, &three.id, "blocks")
        .await
        .unwrap();
    assert_eq!(linked.links.len(), 1);
    let three_now = h.store.case(&a, &three.id).await.unwrap();
    assert_eq!(
        serde_json::to_value(three_now.links[0].kind).unwrap(),
        json!("blocked_by")
    );
    let target = h.store.merge_cases(&a, &one.id, &two.id).await.unwrap();
    assert!(target.tags.contains(&"one".to_owned()) && target.tags.contains(&"two".to_owned()));
    assert_eq!(
        h.store.case_interactions(&a, &two.id).await.unwrap().len(),
        1
    );
    let src = h.store.case(&a, &one.id).await.unwrap();
    assert_eq!(
        (src.status, src.merged_into.as_deref()),
        (CaseStatus::Closed, Some(two.id.as_str()))
    );
    assert!(
        h.store
            .transition_case(&a, &one.id, CaseStatus::Open, None)
            .await
            .is_err(),
        "a merged case stays closed"
    );
});

on_both!(demo_seed_is_idempotent, |h| {
    let logins = parley_cases::demo::seed_demo(&h.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(logins.len(), 4);
    assert!(
        parley_cases::demo::seed_demo(&h.store)
            .await
            .unwrap()
            .is_none()
    );
    let admin = h
        .store
        .authenticate("demo", &logins[0].user.email, &logins[0].password)
        .await
        .unwrap();
    let actor = Actor {
        tenant_id: admin.tenant_id.clone(),
        user_id: Some(admin.id.clone()),
        role: admin.role,
    };
    assert_eq!(
        h.store
            .list_customers(&actor, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert_eq!(
        h.store
            .list_cases(&actor, &CaseFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
});

// Regression: the demo trunk trusted 127.0.0.1 on every server that had ever been
// seeded, demo mode or not.
on_both!(demo_trunk_trusts_loopback_only_in_demo_mode, |h| {
    use parley_cases::demo::{DEMO_TRUNK_SOURCE, seed_demo, set_demo_mode};
    // No demo tenant: nothing to do either way.
    assert!(!set_demo_mode(&h.store, false).await.unwrap());
    seed_demo(&h.store).await.unwrap().unwrap();
    let trusted = || async {
        h.store
            .trunk_tenants_for_source(DEMO_TRUNK_SOURCE)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(trusted().await, 1, "seeded for demo mode");
    // Started without --demo: the trust goes, audited; the number stays routed.
    assert!(set_demo_mode(&h.store, false).await.unwrap());
    assert_eq!(trusted().await, 0);
    let r = h.store.route_number("+15550100").await.unwrap().unwrap();
    assert!(r.trunk.inbound_addresses.is_empty());
    assert!(!set_demo_mode(&h.store, false).await.unwrap(), "idempotent");
    let system = Actor::system(&r.number.tenant_id);
    let log = h
        .store
        .audit_log(&system, &parley_cases::audit::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        log.items.iter().any(|e| e.action == "trunk.update"),
        "{:?}",
        log.items.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    // --demo again: trusted again.
    assert!(set_demo_mode(&h.store, true).await.unwrap());
    assert_eq!(trusted().await, 1);
    assert!(!set_demo_mode(&h.store, true).await.unwrap());
});

// Regression: expired and revoked login tokens stayed in the database for ever.
on_both!(expired_and_revoked_tokens_are_purged, |h| {
    let a = h.tenant("acme").await;
    h.store
        .create_user(
            &a,
            NewUser {
                email: "ag@acme.test".into(),
                name: "Ag".into(),
                role: Role::Agent,
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    let user = h
        .store
        .authenticate("acme", "ag@acme.test", "correct horse battery")
        .await
        .unwrap();
    let short = h.store.issue_token(&user, 60).await.unwrap();
    let long = h.store.issue_token(&user, 3600).await.unwrap();
    let revoked = h.store.issue_token(&user, 3600).await.unwrap();
    h.store.revoke_token(&revoked.token).await.unwrap();
    // Only the revoked one can go now.
    assert_eq!(h.store.purge_expired_tokens().await.unwrap(), 1);
    assert!(h.store.actor_for_token(&short.token).await.is_ok());
    h.clock.advance_minutes(2);
    assert_eq!(h.store.purge_expired_tokens().await.unwrap(), 1);
    assert!(
        h.store.actor_for_token(&long.token).await.is_ok(),
        "live tokens stay"
    );
    assert_eq!(h.store.purge_expired_tokens().await.unwrap(), 0);
    h.clock.advance_minutes(60);
    assert_eq!(h.store.purge_expired_tokens().await.unwrap(), 1);
    assert!(h.store.actor_for_token(&long.token).await.is_err());
});

on_both!(concurrent_transitions_never_lose_a_change, |h| {
    let a = h.tenant("acme").await;
    let case = h
        .store
        .create_case(
            &a,
            NewCase {
                title: "race".into(),
                customer_id: None,
                case_type_id: None,
                priority: None,
                assignee_id: None,
                team_id: None,
                custom_fields: Default::default(),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let (s1, s2) = (h.store.clone(), h.store.clone());
    let (a1, a2) = (a.clone(), a.clone());
    let (id1, id2) = (case.id.clone(), case.id.clone());
    let t1 =
        tokio::spawn(async move { s1.transition_case(&a1, &id1, CaseStatus::Open, None).await });
    let t2 = tokio::spawn(async move {
        s2.transition_case(&a2, &id2, CaseStatus::Resolved, None)
            .await
    });
    let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
    let final_status = h.store.case(&a, &case.id).await.unwrap().status;
    let events = h.store.case_events(&a, &case.id).await.unwrap();
    let changes = events.iter().filter(|e| e.kind == "status_changed").count();
    // Each successful transition is recorded exactly once and the last one wins.
    assert_eq!(changes, usize::from(r1.is_ok()) + usize::from(r2.is_ok()));
    assert!(changes >= 1);
    assert_eq!(
        events.last().unwrap().to_status.as_deref(),
        Some(final_status.as_str())
    );
});

// ---- telephony (issue #3): extensions, SIP credentials, trunks, numbers ----

mod telephony {
    use super::*;
    use parley_cases::telephony::{
        HashAlgorithm, NewPhoneNumber, SipAccountPatch, TrunkInput, digest_ha1,
    };

    fn patch(ext: Option<&str>, pw: Option<&str>) -> SipAccountPatch {
        SipAccountPatch {
            extension: ext.map(Into::into),
            password: pw.map(Into::into),
            current_password: None,
            srtp: None,
        }
    }

    // Issue #13: SRTP policy per trunk and per phone (migration 0013): stored, read
    // back by the SIP layer's lookups, kept when an update leaves it out.
    on_both!(srtp_policy_is_stored_per_trunk_and_per_phone, |h| {
        use parley_cases::telephony::SrtpPolicy;
        let acme = h.tenant("acme").await;
        let t = h
            .store
            .create_trunk(
                &acme,
                TrunkInput {
                    name: "secure".into(),
                    inbound_addresses: vec!["192.0.2.44".into()],
                    srtp: Some(SrtpPolicy::Required),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(t.srtp, SrtpPolicy::Required);
        let plain = h
            .store
            .create_trunk(
                &acme,
                TrunkInput {
                    name: "plain".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(plain.srtp, SrtpPolicy::Optional, "the default");
        // An update without the field keeps it; with it, changes it.
        let same = h
            .store
            .update_trunk(
                &acme,
                &t.id,
                TrunkInput {
                    name: "secure".into(),
                    inbound_addresses: vec!["192.0.2.44".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(same.srtp, SrtpPolicy::Required);
        assert_eq!(
            h.store.trunk(&acme, &t.id).await.unwrap().srtp,
            SrtpPolicy::Required
        );
        let off = h
            .store
            .update_trunk(
                &acme,
                &t.id,
                TrunkInput {
                    name: "secure".into(),
                    srtp: Some(SrtpPolicy::Off),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(off.srtp, SrtpPolicy::Off);
        assert_eq!(
            h.store
                .list_trunks(&acme)
                .await
                .unwrap()
                .iter()
                .find(|x| x.id == t.id)
                .unwrap()
                .srtp,
            SrtpPolicy::Off
        );
        // A user's phones.
        let ann = user(&h.store, &acme, "ann.srtp@acme.test", Role::Agent).await;
        let uid = ann.user_id.clone().unwrap();
        let acc = h
            .store
            .set_sip_account(&acme, &uid, patch(Some("1044"), Some("sip secret 123")))
            .await
            .unwrap();
        assert_eq!(acc.srtp, SrtpPolicy::Optional);
        let mut p = patch(None, None);
        p.srtp = Some(SrtpPolicy::Required);
        let acc = h.store.set_sip_account(&acme, &uid, p).await.unwrap();
        assert_eq!(acc.srtp, SrtpPolicy::Required);
        assert_eq!(acc.extension.as_deref(), Some("1044"));
        let c = h
            .store
            .sip_credentials("acme", "1044")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.srtp, SrtpPolicy::Required);
        assert_eq!(
            h.store.sip_account(&acme, &uid).await.unwrap().srtp,
            SrtpPolicy::Required
        );
    });

    on_both!(sip_credentials_are_stored_as_ha1_only, |h| {
        let acme = h.tenant("acme").await;
        let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
        let uid = ann.user_id.clone().unwrap();
        let acc = h
            .store
            .set_sip_account(&acme, &uid, patch(Some("1001"), Some("sip secret 123")))
            .await
            .unwrap();
        assert_eq!(acc.extension.as_deref(), Some("1001"));
        assert_eq!(acc.realm, "acme");
        assert!(acc.has_password);
        let c = h
            .store
            .sip_credentials("acme", "1001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.user_id, uid);
        assert_eq!(
            c.ha1_md5,
            digest_ha1(HashAlgorithm::Md5, "1001", "acme", "sip secret 123")
        );
        assert_eq!(
            c.ha1_sha256,
            digest_ha1(HashAlgorithm::Sha256, "1001", "acme", "sip secret 123")
        );
        // The password itself appears nowhere in the database row or the audit log.
        let row: (String,) = sqlx::query_as(
            "SELECT COALESCE(sip_ha1_md5, '') || COALESCE(sip_ha1_sha256, '') FROM users WHERE id = $1",
        )
        .bind(&uid)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
        assert!(!row.0.contains("sip secret"));
        let log = h
            .store
            .audit_log(
                &acme,
                &parley_cases::audit::AuditFilter {
                    entity_id: Some(uid.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let entry = log
            .items
            .iter()
            .find(|e| e.action == "user.set_sip_password")
            .unwrap();
        let text = serde_json::to_string(&entry).unwrap();
        assert!(!text.contains("sip secret") && !text.contains(&c.ha1_md5));
        // Unknown domain falls back to a unique extension; wrong extension finds nothing.
        assert!(
            h.store
                .sip_credentials("127.0.0.1", "1001")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            h.store
                .sip_credentials("acme", "1002")
                .await
                .unwrap()
                .is_none()
        );
    });

    on_both!(extensions_are_unique_per_tenant_and_digits, |h| {
        let acme = h.tenant("acme").await;
        let globex = h.tenant("globex").await;
        let a1 = user(&h.store, &acme, "a1@acme.test", Role::Agent).await;
        let a2 = user(&h.store, &acme, "a2@acme.test", Role::Agent).await;
        let g1 = user(&h.store, &globex, "g1@globex.test", Role::Agent).await;
        h.store
            .set_sip_account(
                &acme,
                a1.user_id.as_deref().unwrap(),
                patch(Some("1001"), Some("acme pw 123456")),
            )
            .await
            .unwrap();
        let dup = h
            .store
            .set_sip_account(
                &acme,
                a2.user_id.as_deref().unwrap(),
                patch(Some("1001"), None),
            )
            .await;
        assert!(
            matches!(dup, Err(Error::Conflict { ref field, .. }) if field == "extension"),
            "{dup:?}"
        );
        // Another tenant may use the same extension.
        h.store
            .set_sip_account(
                &globex,
                g1.user_id.as_deref().unwrap(),
                patch(Some("1001"), Some("globex pw 12345")),
            )
            .await
            .unwrap();
        let bad = h
            .store
            .set_sip_account(
                &acme,
                a2.user_id.as_deref().unwrap(),
                patch(Some("10a"), None),
            )
            .await;
        assert!(matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "extension"));
        // A password without an extension is refused; so is a foreign tenant's user.
        let no_ext = h
            .store
            .set_sip_account(
                &acme,
                a2.user_id.as_deref().unwrap(),
                patch(None, Some("long enough pw")),
            )
            .await;
        assert!(matches!(no_ext, Err(Error::Invalid { ref field, .. }) if field == "extension"));
        let foreign = h
            .store
            .set_sip_account(
                &acme,
                g1.user_id.as_deref().unwrap(),
                patch(Some("1003"), None),
            )
            .await;
        assert!(matches!(foreign, Err(Error::NotFound { .. })));
        // Ambiguous across tenants without a domain match: no credentials.
        assert!(
            h.store
                .sip_credentials("10.0.0.1", "1001")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.store
                .sip_credentials("globex", "1001")
                .await
                .unwrap()
                .is_some()
        );
        // Changing the extension of a user with a password needs the password again.
        let re = h
            .store
            .set_sip_account(
                &globex,
                g1.user_id.as_deref().unwrap(),
                patch(Some("2001"), None),
            )
            .await;
        assert!(matches!(re, Err(Error::Invalid { ref field, .. }) if field == "password"));
    });

    on_both!(trunks_and_numbers_route_inbound_calls, |h| {
        let acme = h.tenant("acme").await;
        let globex = h.tenant("globex").await;
        let t = h
            .store
            .create_trunk(
                &acme,
                TrunkInput {
                    name: "carrier".into(),
                    inbound_addresses: vec!["127.0.0.1".into(), " ::1 ".into()],
                    inbound_username: Some("carrier-user".into()),
                    inbound_password: Some("carrier secret 1".into()),
                    outbound_target: Some("127.0.0.1:5080".into()),
                    transport: Some("UDP".into()),
                    tls_ca_pem: None,
                    caller_id: Some("+1 555 0100".into()),
                    srtp: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(t.inbound_addresses, vec!["127.0.0.1", "::1"]);
        assert_eq!(t.caller_id.as_deref(), Some("+15550100"));
        assert!(t.has_inbound_password);
        let bad = h
            .store
            .create_trunk(
                &acme,
                TrunkInput {
                    name: "x".into(),
                    inbound_addresses: vec!["not-an-ip".into()],
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "inbound_addresses[0]")
        );
        let n = h
            .store
            .create_number(
                &acme,
                NewPhoneNumber {
                    number: "+1 (555) 0100".into(),
                    trunk_id: t.id.clone(),
                },
            )
            .await
            .unwrap();
        assert_eq!(n.number, "+15550100");
        let dup = h
            .store
            .create_number(
                &acme,
                NewPhoneNumber {
                    number: "+15550100".into(),
                    trunk_id: t.id.clone(),
                },
            )
            .await;
        assert!(matches!(dup, Err(Error::Conflict { .. })));
        // Another tenant cannot attach a number to acme's trunk.
        let foreign = h
            .store
            .create_number(
                &globex,
                NewPhoneNumber {
                    number: "+15550199".into(),
                    trunk_id: t.id.clone(),
                },
            )
            .await;
        assert!(matches!(foreign, Err(Error::NotFound { .. })));
        for dialled in ["15550100", "+15550100"] {
            let r = h.store.route_number(dialled).await.unwrap().unwrap();
            assert_eq!(r.trunk.id, t.id);
            assert_eq!(r.number.tenant_id, acme.tenant_id);
            let c = r.trunk_credentials.unwrap();
            assert_eq!(c.username, "carrier-user");
            assert_eq!(
                c.ha1_md5,
                digest_ha1(
                    HashAlgorithm::Md5,
                    "carrier-user",
                    "acme",
                    "carrier secret 1"
                )
            );
        }
        assert!(h.store.route_number("15550199").await.unwrap().is_none());
        // Trunk sources find their tenant (exact address, not a prefix).
        assert_eq!(
            h.store.trunk_tenants_for_source("::1").await.unwrap(),
            vec![acme.tenant_id.clone()]
        );
        assert!(
            h.store
                .trunk_tenants_for_source("127.0.0.10")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            h.store.trunk_source_addresses().await.unwrap(),
            vec!["127.0.0.1".to_owned(), "::1".to_owned()]
        );
        // Outbound targets, system-wide (keep-alive pings).
        assert_eq!(
            h.store.trunk_outbound_targets().await.unwrap(),
            vec![(
                t.id.clone(),
                "127.0.0.1:5080".to_owned(),
                "udp".to_owned(),
                None
            )]
        );
        assert!(
            h.store
                .route_number("not a number")
                .await
                .unwrap()
                .is_none()
        );
        // Update keeps the secret when the user name is unchanged.
        let u = h
            .store
            .update_trunk(
                &acme,
                &t.id,
                TrunkInput {
                    name: "carrier 2".into(),
                    inbound_addresses: vec![],
                    inbound_username: Some("carrier-user".into()),
                    transport: Some("tcp".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(u.has_inbound_password && u.transport == "tcp");
        assert_eq!(h.store.list_trunks(&acme).await.unwrap().len(), 1);
        assert!(h.store.list_trunks(&globex).await.unwrap().is_empty());
        assert_eq!(h.store.list_numbers(&acme).await.unwrap().len(), 1);
        h.store.delete_number(&acme, &n.id).await.unwrap();
        assert!(h.store.route_number("15550100").await.unwrap().is_none());
        h.store.delete_trunk(&acme, &t.id).await.unwrap();
        assert!(matches!(
            h.store.trunk(&acme, &t.id).await,
            Err(Error::NotFound { .. })
        ));
    });

    // Issue #13: before migration 0012 another tenant could add acme's number to its
    // own trunk; inbound routing then found two owners and refused the number, so the
    // squatter took acme's number out of service.
    on_both!(
        did_squatting_by_another_tenant_is_refused_without_revealing_the_owner,
        |h| {
            let acme = h.tenant("acme").await;
            let globex = h.tenant("globex").await;
            let trunk = |name: &str| TrunkInput {
                name: name.into(),
                inbound_addresses: vec![],
                ..Default::default()
            };
            let ta = h.store.create_trunk(&acme, trunk("a")).await.unwrap();
            let tg = h.store.create_trunk(&globex, trunk("g")).await.unwrap();
            let number = |n: &str, t: &str| NewPhoneNumber {
                number: n.into(),
                trunk_id: t.into(),
            };
            h.store
                .create_number(&acme, number("+15550100", &ta.id))
                .await
                .unwrap();
            // Globex tries the same number, in another spelling.
            let squat = h
                .store
                .create_number(&globex, number("+1 555 0100", &tg.id))
                .await;
            let own_dup = h
                .store
                .create_number(&acme, number("+15550100", &ta.id))
                .await;
            // The same answer for another tenant's number as for one's own duplicate.
            for r in [&squat, &own_dup] {
                match r {
                    Err(Error::Conflict { field, detail, .. }) => {
                        assert_eq!(field, "number");
                        assert_eq!(detail.as_deref(), Some("number not available"));
                    }
                    other => panic!("{other:?}"),
                }
            }
            // Acme's number still routes to acme.
            let r = h.store.route_number("+15550100").await.unwrap().unwrap();
            assert_eq!(r.number.tenant_id, acme.tenant_id);
            assert!(h.store.list_numbers(&globex).await.unwrap().is_empty());
            // Released by acme, the number is free for globex.
            let n = h.store.list_numbers(&acme).await.unwrap().remove(0);
            h.store.delete_number(&acme, &n.id).await.unwrap();
            h.store
                .create_number(&globex, number("+15550100", &tg.id))
                .await
                .unwrap();
        }
    );

    on_both!(demo_seed_has_telephony, |h| {
        let logins = parley_cases::demo::seed_demo(&h.store)
            .await
            .unwrap()
            .unwrap();
        let sip: Vec<_> = logins.iter().filter_map(|l| l.sip.clone()).collect();
        assert_eq!(sip.len(), 2);
        assert_eq!(sip[0].0, "1001");
        assert_eq!(sip[1].0, "1002");
        let c = h
            .store
            .sip_credentials("demo", "1001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.ha1_md5,
            digest_ha1(HashAlgorithm::Md5, "1001", "demo", &sip[0].1)
        );
        let r = h.store.route_number("15550100").await.unwrap().unwrap();
        assert_eq!(r.trunk.inbound_addresses, vec!["127.0.0.1"]);
        assert!(r.trunk_credentials.is_none());
        let actor = Actor::system(&r.number.tenant_id);
        assert_eq!(h.store.sip_users(&actor).await.unwrap().len(), 2);
    });
}

// Issue #13: trunks over TLS — `tls` stored (migration 0023) and shown as the
// transport, port 5061 by default, a pinned CA kept per trunk and validated, the
// keep-alive's target list carries both.
on_both!(a_trunk_over_tls_keeps_its_transport_and_pinned_ca, |h| {
    use parley_cases::telephony::TrunkInput;
    let acme = h.tenant("acme").await;
    let ca = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjZXJ0\n-----END CERTIFICATE-----\n";
    let t = h
        .store
        .create_trunk(
            &acme,
            TrunkInput {
                name: "secure".into(),
                outbound_target: Some("sip.carrier.example".into()),
                transport: Some("TLS".into()),
                tls_ca_pem: Some(ca.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.transport, "tls");
    assert_eq!(
        t.outbound_target.as_deref(),
        Some("sip.carrier.example:5061")
    );
    assert_eq!(t.tls_ca_pem.as_deref(), Some(ca.trim()));
    let read = h.store.trunk(&acme, &t.id).await.unwrap();
    assert_eq!(read.transport, "tls");
    assert_eq!(read.tls_ca_pem, t.tls_ca_pem);
    assert_eq!(
        h.store.trunk_outbound_targets().await.unwrap(),
        vec![(
            t.id.clone(),
            "sip.carrier.example:5061".to_owned(),
            "tls".to_owned(),
            Some(ca.trim().to_owned())
        )]
    );
    // A CA is only for TLS, and must be PEM certificates.
    for (transport, pem, why) in [
        ("udp", ca, "not tls"),
        ("tls", "not a certificate", "no PEM"),
        (
            "tls",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
            "not base64",
        ),
        ("tls", "-----BEGIN CERTIFICATE-----\nTUlJ\n", "unclosed"),
    ] {
        let bad = h
            .store
            .update_trunk(
                &acme,
                &t.id,
                TrunkInput {
                    name: "secure".into(),
                    outbound_target: Some("sip.carrier.example:5061".into()),
                    transport: Some(transport.into()),
                    tls_ca_pem: Some(pem.into()),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "tls_ca_pem"),
            "{why}: {bad:?}"
        );
    }
    assert_eq!(h.store.trunk(&acme, &t.id).await.unwrap().transport, "tls");
    // Back to TCP: the system roots question is gone with the CA.
    let u = h
        .store
        .update_trunk(
            &acme,
            &t.id,
            TrunkInput {
                name: "secure".into(),
                outbound_target: Some("sip.carrier.example:5060".into()),
                transport: Some("tcp".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u.transport.as_str(), u.tls_ca_pem), ("tcp", None));
    let read = h.store.trunk(&acme, &t.id).await.unwrap();
    assert_eq!((read.transport.as_str(), read.tls_ca_pem), ("tcp", None));
    // A host alone is only completed for TLS.
    let bad = h
        .store
        .create_trunk(
            &acme,
            TrunkInput {
                name: "plain".into(),
                outbound_target: Some("sip.carrier.example".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "outbound_target"));
});
