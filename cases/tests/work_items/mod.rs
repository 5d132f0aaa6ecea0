//! Routed work items (tasks, chats, emails, messages): create with validation, the
//! router's state changes stored in order, audited and published to the agent
//! concerned, agents' lists, the open ones for a restart; tenant-isolated. On both
//! backends; part of the `storage` test binary.

use parley_cases::audit::AuditFilter;
use parley_cases::queues::QueueInput;
use parley_cases::routing::WorkKind;
use parley_cases::sla::{Priority, SlaPolicy};
use parley_cases::work_items::{NewWorkItem, WorkItemFilter, WorkItemState};
use parley_cases::{Actor, Error, Role};

use crate::common;
use crate::customer;
use crate::on_both;
use crate::user;

fn new(kind: &str, queue: &str, priority: Option<&str>, title: &str) -> NewWorkItem {
    serde_json::from_value(serde_json::json!({
        "kind": kind, "queue": queue, "priority": priority, "title": title,
    }))
    .unwrap()
}

on_both!(
    work_items_are_validated_progressed_audited_and_published,
    |h| {
        let acme = h.tenant("acme").await;
        let other = h.tenant("other").await;
        let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "back" })).unwrap();
        let back = h.store.create_queue(&acme, q).await.unwrap();
        let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
        let bob = user(&h.store, &acme, "bob@acme.test", Role::Agent).await;
        let (ann_id, bob_id) = (ann.user_id.clone().unwrap(), bob.user_id.clone().unwrap());
        let cust = customer(&h.store, &acme, "Cleo", &[("email", "cleo@example.com")]).await;
        h.store
            .set_sla_policy(
                &acme,
                SlaPolicy {
                    priority: Priority::P1,
                    first_response_minutes: 30,
                    resolution_minutes: 240,
                },
            )
            .await
            .unwrap();

        // Validation: kind, title, priority, the tenant's queue and customer.
        for (bad, field) in [
            (new("call", "back", None, "x"), "kind"),
            (new("task", "back", None, "  "), "title"),
            (new("task", "back", Some("P9"), "x"), "priority"),
        ] {
            assert!(
                matches!(h.store.create_work_item(&acme, bad).await, Err(Error::Invalid { field: f, .. }) if f == field),
                "{field}"
            );
        }
        assert!(matches!(
            h.store
                .create_work_item(&other, new("task", "back", None, "x"))
                .await,
            Err(Error::NotFound { entity: "queue" })
        ));
        let mut foreign = new("task", "back", None, "x");
        foreign.customer_id = Some("nobody".into());
        assert!(matches!(
            h.store.create_work_item(&acme, foreign).await,
            Err(Error::NotFound { .. })
        ));

        // Created by name or id, queued, P2 by default; P1 gets the SLA's due time.
        let mut events = h.store.subscribe();
        let mut with_customer = new("task", "back", Some("P1"), "Refund order 42");
        with_customer.customer_id = Some(cust.id.clone());
        let a = h
            .store
            .create_work_item(&acme, with_customer)
            .await
            .unwrap();
        assert_eq!(
            (a.kind, a.state, a.priority, a.queue_id.as_str()),
            (
                WorkKind::Task,
                WorkItemState::Queued,
                Priority::P1,
                back.id.as_str()
            )
        );
        assert_eq!(
            a.sla_due_at.map(|t| t.0),
            Some(a.created_at.0 + 30 * 60_000)
        );
        let e = events.recv().await.unwrap();
        assert_eq!(
            (e.kind, e.min_role),
            ("work_item.created", Role::Supervisor)
        );
        let b = h
            .store
            .create_work_item(&acme, new("email", &back.id, None, "Where is my parcel?"))
            .await
            .unwrap();
        assert_eq!(
            (b.kind, b.priority, b.sla_due_at),
            (WorkKind::Email, Priority::P2, None)
        );
        let _ = events.recv().await.unwrap();

        // The router offers A to Ann (only Ann is told), Ann declines (back in the queue,
        // Ann told), it is offered to Bob, who accepts and completes it.
        let sys = Actor::system(&acme.tenant_id);
        let steps = [
            (
                &sys,
                WorkItemState::Offered,
                Some(&ann_id),
                "work_item.offered",
                &ann_id,
            ),
            (
                &ann,
                WorkItemState::Queued,
                None,
                "work_item.revoked",
                &ann_id,
            ),
            (
                &sys,
                WorkItemState::Offered,
                Some(&bob_id),
                "work_item.offered",
                &bob_id,
            ),
            (
                &bob,
                WorkItemState::Assigned,
                Some(&bob_id),
                "work_item.assigned",
                &bob_id,
            ),
        ];
        for (actor, state, agent, kind, told) in steps {
            let w = h
                .store
                .work_item_progress(actor, &a.id, state, agent.map(String::as_str))
                .await
                .unwrap();
            assert_eq!((w.state, w.agent_id.as_ref()), (state, agent));
            let e = events.recv().await.unwrap();
            assert_eq!(e.kind, kind);
            assert_eq!(e.only_users.as_deref(), Some(&[told.clone()][..]));
            assert_eq!(e.customer_id.as_deref(), Some(cust.id.as_str()));
        }
        // Bob's open items; Ann has none; the open items for a restart.
        let mine = |id: &str| WorkItemFilter {
            agent_id: Some(id.to_owned()),
            ..Default::default()
        };
        let bobs = h
            .store
            .list_work_items(&acme, &mine(&bob_id))
            .await
            .unwrap();
        assert_eq!(
            bobs.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            [a.id.as_str()]
        );
        assert!(
            h.store
                .list_work_items(&acme, &mine(&ann_id))
                .await
                .unwrap()
                .is_empty()
        );
        let open = h.store.open_work_items().await.unwrap();
        assert_eq!(
            open.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            [a.id.as_str(), b.id.as_str()]
        );
        assert_eq!(open[0].tenant_id, acme.tenant_id);

        let done = h
            .store
            .work_item_progress(&bob, &a.id, WorkItemState::Completed, Some(&bob_id))
            .await
            .unwrap();
        assert_eq!(done.state, WorkItemState::Completed);
        assert!(done.completed_at.is_some());
        assert_eq!(events.recv().await.unwrap().kind, "work_item.completed");
        // Closed: no further change.
        assert!(matches!(
            h.store
                .work_item_progress(&sys, &a.id, WorkItemState::Queued, None)
                .await,
            Err(Error::InvalidTransition { .. })
        ));
        assert!(
            h.store
                .list_work_items(&acme, &mine(&bob_id))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            h.store
                .list_work_items(
                    &acme,
                    &WorkItemFilter {
                        state: Some(WorkItemState::Completed),
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
                .len(),
            1
        );

        // Every state change is audited, by whoever made it.
        let log = h
            .store
            .audit_log(
                &acme,
                &AuditFilter {
                    entity_id: Some(a.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut actions: Vec<(&str, Option<&str>)> = log
            .items
            .iter()
            .map(|e| (e.action.as_str(), e.actor_id.as_deref()))
            .collect();
        actions.sort_unstable();
        let mut want = vec![
            ("work_item.create", acme.user_id.as_deref()),
            ("work_item.state", None),
            ("work_item.state", None),
            ("work_item.state", Some(ann_id.as_str())),
            ("work_item.state", Some(bob_id.as_str())),
            ("work_item.state", Some(bob_id.as_str())),
        ];
        want.sort_unstable();
        assert_eq!(actions, want);

        // Tenants never mix.
        assert!(matches!(
            h.store.work_item(&other, &a.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(
            h.store
                .list_work_items(&other, &WorkItemFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        let _ = common::T0;
    }
);
