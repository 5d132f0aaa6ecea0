//! IVR administration storage (flows, versions, rollback, calendars, routes, prompts),
//! on both backends. Part of the `storage` test binary.

use parley_cases::audit::AuditFilter;
use parley_cases::flows::{FlowEventKind, NewPrompt, new_prompt_id};
use parley_cases::{Actor, Error, Role};

use crate::common;
use crate::on_both;
use crate::user;

fn doc(id: &str, greeting: &str) -> String {
    format!(
        r#"{{"version": 1, "id": "{id}", "start": "hi", "nodes": {{"hi": {{"type": "play", "prompts": [{{"tts": "{greeting}"}}], "next": "bye"}}, "bye": {{"type": "hangup"}}}}}}"#
    )
}

fn prompt(id: &str, name: &str) -> NewPrompt {
    NewPrompt {
        id: id.to_owned(),
        name: name.to_owned(),
        content_type: "audio/wav".into(),
        duration_ms: 1500,
        size_bytes: 24_044,
        storage_path: format!("prompts/t/{id}.wav"),
    }
}

on_both!(flow_drafts_publish_as_immutable_versions, |h| {
    let s = &h.store;
    let sys = h.tenant("acme").await;
    let admin = user(s, &sys, "admin@acme.test", Role::Admin).await;
    let v1 = doc("main", "Hello");
    let f = s
        .create_flow(&admin, "main", "Main line", &v1)
        .await
        .unwrap();
    assert_eq!((f.current_version, f.draft.as_str()), (None, v1.as_str()));
    // Same id again: conflict on id.
    match s.create_flow(&admin, "main", "Again", &v1).await {
        Err(Error::Conflict { field, .. }) => assert_eq!(field, "id"),
        other => panic!("{other:?}"),
    }
    // The document's id must match.
    match s
        .update_flow_draft(&admin, "main", "Main", &doc("other", "x"))
        .await
    {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "id"),
        other => panic!("{other:?}"),
    }

    let p1 = s.publish_flow(&admin, "main", &v1, &[]).await.unwrap();
    assert_eq!(p1.version, 1);
    assert_eq!(p1.published_by, admin.user_id);
    h.clock.advance_minutes(1);
    // Edit the draft: version 1 keeps its exact text.
    let v2 = doc("main", "Hello again");
    s.update_flow_draft(&admin, "main", "Main line", &v2)
        .await
        .unwrap();
    // Publishing something other than the stored draft is a conflict (stale validation).
    match s.publish_flow(&admin, "main", &v1, &[]).await {
        Err(Error::Conflict { field, .. }) => assert_eq!(field, "draft"),
        other => panic!("{other:?}"),
    }
    let p2 = s.publish_flow(&admin, "main", &v2, &[]).await.unwrap();
    assert_eq!(p2.version, 2);
    assert_eq!(
        s.flow_version(&admin, "main", 1).await.unwrap().definition,
        v1
    );
    let versions = s.flow_versions(&admin, "main").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(
        s.flow(&admin, "main").await.unwrap().current_version,
        Some(2)
    );
    let published = s.published_flows(&admin).await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].definition, v2);

    // Rollback to 1: current again, recorded as an event, nothing deleted.
    h.clock.advance_minutes(1);
    let f = s.rollback_flow(&admin, "main", 1).await.unwrap();
    assert_eq!(f.current_version, Some(1));
    assert_eq!(s.published_flows(&admin).await.unwrap()[0].definition, v1);
    assert_eq!(s.flow_versions(&admin, "main").await.unwrap().len(), 2);
    // The draft is untouched by a rollback.
    assert_eq!(s.flow(&admin, "main").await.unwrap().draft, v2);
    match s.rollback_flow(&admin, "main", 1).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "version"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.rollback_flow(&admin, "main", 7).await,
        Err(Error::NotFound { .. })
    ));
    let events = s.flow_events(&admin, "main").await.unwrap();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.kind, e.version, e.from_version))
        .collect();
    assert_eq!(
        summary,
        [
            (FlowEventKind::Publish, 1, None),
            (FlowEventKind::Publish, 2, Some(1)),
            (FlowEventKind::Rollback, 1, Some(2)),
        ]
    );
    assert!(events.iter().all(|e| e.actor_id == admin.user_id));

    // Audited, with a digest of the draft rather than the draft itself.
    let log = s
        .audit_log(
            &admin,
            &AuditFilter {
                entity_id: Some("main".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<_> = log.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ivr_flow.rollback",
            "ivr_flow.publish",
            "ivr_flow.update_draft",
            "ivr_flow.publish",
            "ivr_flow.create"
        ]
    );
    let after = log.items[0].after.as_ref().unwrap();
    assert_eq!(after["current_version"], 1);
    assert_eq!(after["draft_sha256"].as_str().unwrap().len(), 64);

    // Another tenant sees none of it.
    let other = h.tenant("globex").await;
    assert!(matches!(
        s.flow(&other, "main").await,
        Err(Error::NotFound { .. })
    ));
    assert!(s.list_flows(&other).await.unwrap().is_empty());
    assert!(s.published_flows(&other).await.unwrap().is_empty());
    assert!(matches!(
        s.publish_flow(&other, "main", &v2, &[]).await,
        Err(Error::NotFound { .. })
    ));
});

/// Gives `actor`'s tenant the phone number `number` (on a trunk of its own); its id.
async fn hold(s: &parley_cases::Store, actor: &Actor, number: &str) -> String {
    use parley_cases::telephony::{NewPhoneNumber, TrunkInput};
    let trunk = match s.list_trunks(actor).await.unwrap().into_iter().next() {
        Some(t) => t,
        None => s
            .create_trunk(
                actor,
                TrunkInput {
                    name: "carrier".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
    };
    s.create_number(
        actor,
        NewPhoneNumber {
            number: number.into(),
            trunk_id: trunk.id,
        },
    )
    .await
    .unwrap()
    .id
}

on_both!(routes_map_numbers_to_published_flows, |h| {
    let s = &h.store;
    let a = h.tenant("acme").await;
    let b = h.tenant("globex").await;
    s.create_flow(&a, "main", "Main", &doc("main", "A"))
        .await
        .unwrap();
    // Not published yet: cannot be routed.
    match s.set_route(&a, "+15550100", "main").await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "flow_id"),
        other => panic!("{other:?}"),
    }
    match s.set_route(&a, "5550100", "main").await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "number"),
        other => panic!("{other:?}"),
    }
    s.publish_flow(&a, "main", &doc("main", "A"), &[])
        .await
        .unwrap();
    // A number the tenant does not hold cannot be routed (issue #13).
    match s.set_route(&a, "+1 555-0100", "main").await {
        Err(Error::Conflict { field, detail, .. }) => {
            assert_eq!(field, "number");
            assert_eq!(detail.as_deref(), Some("number not available"));
        }
        other => panic!("{other:?}"),
    }
    let number_a = hold(s, &a, "+15550100").await;
    let r = s.set_route(&a, "+1 555-0100", "main").await.unwrap();
    assert_eq!(r.number, "+15550100");
    let inbound = s.inbound_route("+1 (555) 0100").await.unwrap().unwrap();
    assert_eq!(
        (
            inbound.tenant_id.as_str(),
            inbound.flow_id.as_str(),
            inbound.version
        ),
        (a.tenant_id.as_str(), "main", 1)
    );
    assert_eq!(s.inbound_route("+15559999").await.unwrap(), None);
    assert_eq!(s.inbound_route("not a number").await.unwrap(), None);

    // Re-pointing within the tenant replaces the route.
    s.create_flow(&a, "night", "Night", &doc("night", "N"))
        .await
        .unwrap();
    s.publish_flow(&a, "night", &doc("night", "N"), &[])
        .await
        .unwrap();
    let r2 = s.set_route(&a, "+15550100", "night").await.unwrap();
    assert_eq!(r2.created_at, r.created_at);
    assert_eq!(
        s.inbound_route("+15550100").await.unwrap().unwrap().flow_id,
        "night"
    );

    // Another tenant cannot take the number.
    s.create_flow(&b, "main", "Main", &doc("main", "B"))
        .await
        .unwrap();
    s.publish_flow(&b, "main", &doc("main", "B"), &[])
        .await
        .unwrap();
    match s.set_route(&b, "+15550100", "main").await {
        Err(Error::Conflict { field, detail, .. }) => {
            assert_eq!(field, "number");
            assert_eq!(detail.as_deref(), Some("number not available"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.delete_route(&b, "+15550100").await,
        Err(Error::NotFound { .. })
    ));
    assert!(s.list_routes(&b).await.unwrap().is_empty());
    assert_eq!(s.list_routes(&a).await.unwrap().len(), 1);
    s.delete_route(&a, "+15550100").await.unwrap();
    assert_eq!(s.inbound_route("+15550100").await.unwrap(), None);
    // Released by its holder, the number can be taken and routed by the other tenant.
    s.delete_number(&a, &number_a).await.unwrap();
    hold(s, &b, "+15550100").await;
    s.set_route(&b, "+15550100", "main").await.unwrap();
    assert_eq!(
        s.inbound_route("+15550100")
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        b.tenant_id
    );
});

on_both!(
    prompts_played_by_a_published_version_cannot_be_deleted,
    |h| {
        let s = &h.store;
        let a = h.tenant("acme").await;
        let id = new_prompt_id();
        let meta = s.create_prompt(&a, prompt(&id, "Welcome")).await.unwrap();
        assert_eq!(s.prompt(&a, &id).await.unwrap(), meta);
        let spare = s
            .create_prompt(&a, prompt(&new_prompt_id(), "Spare"))
            .await
            .unwrap();
        assert_eq!(s.list_prompts(&a).await.unwrap().len(), 2);

        let d = doc("main", "x");
        s.create_flow(&a, "main", "Main", &d).await.unwrap();
        // A missing prompt cannot be published.
        match s
            .publish_flow(&a, "main", &d, &["no-such-prompt".to_owned()])
            .await
        {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "prompts"),
            other => panic!("{other:?}"),
        }
        s.publish_flow(&a, "main", &d, &[id.clone(), id.clone()])
            .await
            .unwrap();
        match s.delete_prompt(&a, &id).await {
            Err(Error::Conflict { detail, .. }) => {
                assert!(detail.unwrap().contains("\"main\" version 1"))
            }
            other => panic!("{other:?}"),
        }
        // Publishing a later version without it does not free it: version 1 can come back.
        s.publish_flow(&a, "main", &d, &[]).await.unwrap();
        assert!(matches!(
            s.delete_prompt(&a, &id).await,
            Err(Error::Conflict { .. })
        ));
        // An unused prompt goes; another tenant cannot see or delete prompts.
        let other = h.tenant("globex").await;
        assert!(matches!(
            s.delete_prompt(&other, &spare.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(s.list_prompts(&other).await.unwrap().is_empty());
        assert_eq!(s.delete_prompt(&a, &spare.id).await.unwrap(), spare);
        assert!(matches!(
            s.prompt(&a, &spare.id).await,
            Err(Error::NotFound { .. })
        ));
        // Another tenant's flow cannot publish with this tenant's prompt.
        s.create_flow(&other, "main", "Main", &d).await.unwrap();
        assert!(matches!(
            s.publish_flow(&other, "main", &d, std::slice::from_ref(&id))
                .await,
            Err(Error::Invalid { .. })
        ));
    }
);

on_both!(calendars_are_per_tenant_and_replaceable, |h| {
    let s = &h.store;
    let a = h.tenant("acme").await;
    let b = h.tenant("globex").await;
    let c1 = r#"{"time_zone": "Europe/Paris", "weekly": []}"#;
    let c2 = r#"{"time_zone": "Europe/Paris", "weekly": [{"days": ["mon"], "open": "09:00", "close": "12:00"}]}"#;
    s.set_calendar(&a, "main", c1).await.unwrap();
    s.set_calendar(&a, "main", c2).await.unwrap();
    let cals = s.calendars(&a).await.unwrap();
    assert_eq!(cals.len(), 1);
    assert_eq!(cals[0].definition, c2);
    assert!(s.calendars(&b).await.unwrap().is_empty());
    match s.set_calendar(&a, "main", "[]").await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "calendar"),
        other => panic!("{other:?}"),
    }
    assert!(s.set_calendar(&a, "bad name", c1).await.is_err());
});

on_both!(demo_seed_publishes_and_routes_the_demo_flow, |h| {
    let s = &h.store;
    parley_cases::demo::seed_demo(s).await.unwrap().unwrap();
    let t = s.tenant_by_name("demo").await.unwrap().unwrap();
    let sys = Actor::system(&t.id);
    let route = s.inbound_route("+15550100").await.unwrap().unwrap();
    assert_eq!(
        (
            route.tenant_id.as_str(),
            route.flow_id.as_str(),
            route.version
        ),
        (t.id.as_str(), "demo", 1)
    );
    let published = s.published_flows(&sys).await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].definition, parley_cases::flows::DEMO_FLOW_JSON);
    let cals = s.calendars(&sys).await.unwrap();
    assert_eq!(
        cals.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["main"]
    );
});
