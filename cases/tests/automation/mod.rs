//! Automation rules' storage (issue #23) on both backends: per-tenant admin CRUD,
//! audited and published; a bad rule is refused naming its field and stores nothing;
//! the event stream read from a stored position (resumed after a reopen, each event
//! finished once, its run log written once); events caused inside `caused_by_rules`
//! carry the rule chain. Part of the `storage` test binary.

use parley_cases::automation::{NewAutomationRule, NewRuleRun, caused_by_rules};
use parley_cases::{Error, Role};
use serde_json::json;

use crate::common;
use crate::on_both;
use crate::user;

fn new_rule(name: &str, position: i64) -> NewAutomationRule {
    serde_json::from_value(json!({
        "name": name,
        "position": position,
        "trigger": {"type": "event", "kinds": ["conversation.message"]},
        "conditions": [{"type": "field", "field": "message.text", "op": "contains", "value": "refund"}],
        "actions": [{"type": "add_tags", "tags": ["billing"]}]
    }))
    .unwrap()
}

on_both!(
    automation_rules_are_a_per_tenant_audited_admin_library,
    |h| {
        let a = h.tenant("acme").await;
        let other = h.tenant("globex").await;
        let mut events = h.store.subscribe();
        let second = h
            .store
            .create_automation_rule(&a, new_rule("second", 20))
            .await
            .unwrap();
        let first = h
            .store
            .create_automation_rule(&a, new_rule("first", 10))
            .await
            .unwrap();
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.kind, "automation_rule.created");
        // Admins only.
        assert!(ev.visible_to(&a.tenant_id, Role::Admin, None));
        assert!(!ev.visible_to(&a.tenant_id, Role::Supervisor, None));
        let names: Vec<String> = h
            .store
            .list_automation_rules(&a)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["first", "second"]);
        assert!(
            h.store
                .list_automation_rules(&other)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            h.store.automation_rule(&other, &first.id).await,
            Err(Error::NotFound { .. })
        ));
        // A bad rule names its field and stores nothing.
        let mut bad = new_rule("bad", 1);
        bad.actions = json!([{"type": "set_priority", "priority": "urgent"}]);
        match h.store.create_automation_rule(&a, bad).await {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "actions[0].priority"),
            other => panic!("{other:?}"),
        }
        // Agents and supervisors may not write rules.
        let sup = user(&h.store, &a, "ann@acme.test", Role::Supervisor).await;
        assert!(matches!(
            h.store.create_automation_rule(&sup, new_rule("x", 1)).await,
            Err(Error::Forbidden { .. })
        ));
        let mut off = new_rule("second, off", 20);
        off.enabled = false;
        let updated = h
            .store
            .update_automation_rule(&a, &second.id, off)
            .await
            .unwrap();
        assert!(!updated.enabled);
        // The runtime's set: enabled rules of every tenant, as the core reads them.
        let all = h.store.all_automation_rules().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, first.id);
        assert_eq!(all[0].tenant_id, a.tenant_id);
        h.store
            .delete_automation_rule(&a, &second.id)
            .await
            .unwrap();
        let audit = h
            .store
            .audit_log(&a, &parley_cases::audit::AuditFilter::default())
            .await
            .unwrap();
        let actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
        for want in [
            "automation_rule.create",
            "automation_rule.update",
            "automation_rule.delete",
        ] {
            assert!(actions.contains(&want), "{actions:?}");
        }
    }
);

on_both!(
    the_stream_resumes_from_its_position_and_finishes_each_event_once,
    |h| {
        let a = h.tenant("acme").await;
        // The first read places the cursor at the end (less the look-back): history is
        // not replayed. What it found (the tenant's creation) is finished.
        for e in h.store.automation_stream(100).await.unwrap() {
            assert_eq!(e.kind, "tenant.created");
            h.store.automation_finish(&e, &[]).await.unwrap();
        }
        let rule = h
            .store
            .create_automation_rule(&a, new_rule("r", 1))
            .await
            .unwrap();
        // An event caused by a rule carries the chain.
        caused_by_rules(vec![rule.id.clone()], async {
            h.store
                .create_canned_response(
                    &a,
                    serde_json::from_value(
                        json!({"shortcut": "hi", "title": "Hi", "body": "Hello"}),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
        })
        .await;
        let batch = h.store.automation_stream(100).await.unwrap();
        let kinds: Vec<&str> = batch.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["automation_rule.created", "canned_response.created"]
        );
        assert!(batch[0].caused_by.is_empty());
        assert_eq!(batch[1].caused_by, vec![rule.id.clone()]);
        // Finishing the first logs its run once (a second finish is a no-op).
        let run = NewRuleRun {
            rule_id: rule.id.clone(),
            subject: None,
            outcome: "applied",
            detail: json!([]),
        };
        h.store
            .automation_finish(&batch[0], std::slice::from_ref(&run))
            .await
            .unwrap();
        h.store.automation_finish(&batch[0], &[run]).await.unwrap();
        // After a reopen (a restart) only the unfinished event is read again.
        let store = h.reopen().await;
        let again = store.automation_stream(100).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, batch[1].id);
        store.automation_finish(&again[0], &[]).await.unwrap();
        assert!(store.automation_stream(100).await.unwrap().is_empty());
        let log = store.automation_rule_runs(&a, &rule.id, 50).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].event_id, batch[0].id);
        assert_eq!(log[0].outcome, "applied");
        // Dry runs read the tenant's last events, oldest first.
        let recent = store.recent_stream_events(&a, 10).await.unwrap();
        assert_eq!(recent.last().unwrap().kind, "canned_response.created");
    }
);

on_both!(tasks_on_cases_my_tasks_and_overdue_alerts, |h| {
    use parley_cases::cases::NewCase;
    use parley_cases::tasks::{NewTask, TaskPatch};
    let a = h.tenant("acme").await;
    let other = h.tenant("globex").await;
    let ann = user(&h.store, &a, "ann@acme.test", Role::Agent).await;
    let ann_id = ann.user_id.clone().unwrap();
    let case = h
        .store
        .create_case(
            &a,
            NewCase {
                title: "No internet".into(),
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
    let due = h.store.now().plus_minutes(30);
    let task = |title: &str, assignee: Option<&str>, due| NewTask {
        title: title.into(),
        description: "details".into(),
        assignee_id: assignee.map(str::to_owned),
        due_at: due,
        priority: None,
    };
    let t1 = h
        .store
        .create_task(
            &a,
            &case.id,
            task("Send an engineer", Some(&ann_id), Some(due)),
        )
        .await
        .unwrap();
    let t2 = h
        .store
        .create_task(&a, &case.id, task("Call back", Some(&ann_id), None))
        .await
        .unwrap();
    assert_eq!(t1.status, "open");
    // A bad task stores nothing; another tenant sees no case.
    match h
        .store
        .create_task(&a, &case.id, task(" ", None, None))
        .await
    {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "title"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.store
            .create_task(&other, &case.id, task("x", None, None))
            .await,
        Err(Error::NotFound { .. })
    ));
    // Ann's tasks: soonest due first, the undated last.
    let mine: Vec<String> = h
        .store
        .my_tasks(&ann)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(mine, vec![t1.id.clone(), t2.id.clone()]);
    let done = h
        .store
        .update_task(
            &ann,
            &t2.id,
            TaskPatch {
                status: Some("done".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(done.completed_at.is_some());
    assert_eq!(h.store.my_tasks(&ann).await.unwrap().len(), 1);
    // Overdue: one `task.overdue`, however often the scan runs.
    h.clock.advance_minutes(31);
    h.store.sla_scan().await.unwrap();
    h.store.sla_scan().await.unwrap();
    let overdue: Vec<_> = h
        .store
        .outbox_events(&a.tenant_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|(e, _)| e.kind == "task.overdue")
        .collect();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].0.data["task_id"], t1.id.as_str());
    assert_eq!(overdue[0].0.case_id.as_deref(), Some(case.id.as_str()));
});
