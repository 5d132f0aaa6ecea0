//! The transactional outbox (issue #15): a mutation's change, audit record and events
//! commit together; the relay publishes after the commit, at-least-once, and what a
//! crash left unpublished goes out when the store is opened again. On both backends.
//! Part of the `storage` test binary.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parley_cases::audit::AuditFilter;
use parley_cases::customers::RawIdentity;
use parley_cases::outbox::{EventSink, SinkFuture};
use parley_cases::sla::{Priority, SlaPolicy};
use parley_cases::telephony::{NewPhoneNumber, TrunkInput};
use parley_cases::{Actor, DomainEvent, Error, Role, Store};
use serde_json::json;
use tokio::sync::broadcast;

use crate::common;
use crate::on_both;
use crate::{customer, user};

/// A sink that is down: the relay leaves its events in the outbox.
#[derive(Debug, Default)]
struct DownSink {
    refused: AtomicUsize,
}

impl EventSink for DownSink {
    fn deliver<'a>(&'a self, events: &'a [DomainEvent]) -> SinkFuture<'a> {
        self.refused.fetch_add(events.len(), Ordering::SeqCst);
        Box::pin(async { Err(Error::SinkUnavailable { sink: "down" }) })
    }
}

/// A sink that, when handed an event, reads the outbox through another connection:
/// the event must already be committed there (with its change), not yet published.
#[derive(Debug)]
struct WitnessSink {
    other: Store,
    seen: std::sync::Mutex<Vec<(String, bool, bool)>>,
}

impl EventSink for WitnessSink {
    fn deliver<'a>(&'a self, events: &'a [DomainEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            for e in events {
                let rows = self.other.outbox_events(&e.tenant_id).await?;
                let row = rows.iter().find(|(x, _)| x.id == e.id);
                let team_committed = match e.kind {
                    "team.created" => {
                        let id = e.data["id"].as_str().unwrap_or_default().to_owned();
                        let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM teams WHERE id = $1")
                            .bind(id)
                            .fetch_one(self.other.pool())
                            .await?;
                        n.0 == 1
                    }
                    _ => false,
                };
                self.seen.lock().unwrap().push((
                    e.kind.to_owned(),
                    row.is_some_and(|(_, published)| !published),
                    team_committed,
                ));
            }
            Ok(())
        })
    }
}

fn drain(rx: &mut broadcast::Receiver<DomainEvent>) -> Vec<DomainEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

async fn audit_count(s: &Store, a: &Actor) -> usize {
    s.audit_log(
        a,
        &AuditFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items
    .len()
}

on_both!(a_failed_change_writes_neither_audit_record_nor_event, |h| {
    let s = &h.store;
    let a = h.tenant("acme").await;
    let q = json!({"name": "Sales"});
    s.create_queue(&a, serde_json::from_value(q.clone()).unwrap())
        .await
        .unwrap();
    let audits = audit_count(s, &a).await;
    let events = s.outbox_events(&a.tenant_id).await.unwrap().len();
    let mut rx = s.subscribe();
    // The same name again: the insert fails inside the transaction.
    let again = s.create_queue(&a, serde_json::from_value(q).unwrap()).await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    assert_eq!(audit_count(s, &a).await, audits, "no audit record");
    assert_eq!(
        s.outbox_events(&a.tenant_id).await.unwrap().len(),
        events,
        "no event in the outbox"
    );
    assert!(drain(&mut rx).is_empty(), "nothing published");
});

on_both!(
    an_event_is_in_the_outbox_with_its_change_before_it_is_published,
    |h| {
        let s = &h.store;
        let a = h.tenant("acme").await;
        let witness = Arc::new(WitnessSink {
            other: h.reopen().await,
            seen: Default::default(),
        });
        s.add_event_sink(witness.clone());
        let mut rx = s.subscribe();
        let team = s.create_team(&a, "Tier 1").await.unwrap();
        let seen = witness.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![("team.created".to_owned(), true, true)],
            "committed with the team, unpublished, when the relay delivered it"
        );
        // Published now: marked in the outbox, received with the same id.
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "team.created");
        assert_eq!(got[0].data["id"], team.id);
        let rows = s.outbox_events(&a.tenant_id).await.unwrap();
        let row = rows.iter().find(|(e, _)| e.id == got[0].id).unwrap();
        assert!(row.1, "marked published");
        assert_eq!(s.outbox_pending().await.unwrap(), 0);
        // Its audit record committed with it.
        let log = s
            .audit_log(
                &a,
                &AuditFilter {
                    entity_id: Some(team.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(log.items[0].action, "team.create");
        witness.other.close().await;
    }
);

on_both!(
    events_left_unpublished_by_a_crash_are_published_when_the_store_reopens,
    |h| {
        let s = &h.store;
        let a = h.tenant("acme").await;
        // The sink is down: the mutation commits, its event stays unpublished (as when
        // Parley dies between commit and publish).
        let down = Arc::new(DownSink::default());
        s.add_event_sink(down.clone());
        let skill = s.create_skill(&a, "french").await.unwrap();
        assert_eq!(down.refused.load(Ordering::SeqCst), 1);
        assert_eq!(s.outbox_pending().await.unwrap(), 1);
        let rows = s.outbox_events(&a.tenant_id).await.unwrap();
        let unpublished: Vec<_> = rows.iter().filter(|(_, published)| !published).collect();
        assert_eq!(unpublished.len(), 1);
        assert_eq!(unpublished[0].0.kind, "skill.created");
        let id = unpublished[0].0.id.clone();
        // "Restart": a new store on the same database (its sinks are up).
        let after = h.reopen().await;
        let mut rx = after.subscribe();
        assert_eq!(after.relay_outbox().await.unwrap(), 1);
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "skill.created");
        assert_eq!(got[0].id, id, "the same id: consumers can drop a duplicate");
        assert_eq!(got[0].tenant_id, a.tenant_id);
        assert_eq!(got[0].min_role, Role::Agent);
        assert_eq!(got[0].data["id"], skill.id);
        assert_eq!(after.outbox_pending().await.unwrap(), 0);
        // Published once: a second relay sends nothing.
        assert_eq!(after.relay_outbox().await.unwrap(), 0);
        assert!(drain(&mut rx).is_empty());
        after.close().await;
    }
);

on_both!(formerly_silent_mutations_publish_their_event, |h| {
    let s = &h.store;
    let sys = h.tenant("acme").await;
    let mut rx = s.subscribe();
    let admin = user(s, &sys, "admin@acme.test", Role::Admin).await;
    let agent = user(s, &sys, "agent@acme.test", Role::Agent).await;
    let team = s.create_team(&admin, "Tier 1").await.unwrap();
    s.set_team_member(&admin, &team.id, agent.user_id.as_deref().unwrap(), true)
        .await
        .unwrap();
    s.create_skill(&admin, "french").await.unwrap();
    let fields = serde_json::from_value(json!([{"key": "invoice", "type": "text"}])).unwrap();
    let ct = s.create_case_type(&admin, "Billing", fields).await.unwrap();
    let fields = serde_json::from_value(json!([{"key": "order", "type": "text"}])).unwrap();
    s.update_case_type(&admin, &ct.id, fields).await.unwrap();
    s.set_sla_policy(
        &admin,
        SlaPolicy {
            priority: Priority::P1,
            first_response_minutes: 60,
            resolution_minutes: 480,
        },
    )
    .await
    .unwrap();
    let c = customer(s, &admin, "Ann", &[("phone", "+15550100")]).await;
    s.add_identities(
        &admin,
        &c.id,
        &[RawIdentity {
            kind: "email".into(),
            value: "ann@example.test".into(),
        }],
    )
    .await
    .unwrap();
    let flow = |g: &str| {
        format!(
            r#"{{"version": 1, "id": "main", "start": "hi", "nodes": {{"hi": {{"type": "play", "prompts": [{{"tts": "{g}"}}], "next": "bye"}}, "bye": {{"type": "hangup"}}}}}}"#
        )
    };
    s.create_flow(&admin, "main", "Main", &flow("A"))
        .await
        .unwrap();
    s.update_flow_draft(&admin, "main", "Main", &flow("B"))
        .await
        .unwrap();
    s.publish_flow(&admin, "main", &flow("B"), &[])
        .await
        .unwrap();
    let trunk = s
        .create_trunk(
            &admin,
            TrunkInput {
                name: "carrier".into(),
                inbound_addresses: vec!["127.0.0.1".into()],
                inbound_username: Some("carrier-user".into()),
                inbound_password: Some("carrier secret 1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let n = s
        .create_number(
            &admin,
            NewPhoneNumber {
                number: "+15550100".into(),
                trunk_id: trunk.id.clone(),
            },
        )
        .await
        .unwrap();
    s.set_route(&admin, "+15550100", "main").await.unwrap();
    s.delete_route(&admin, "+15550100").await.unwrap();
    s.delete_number(&admin, &n.id).await.unwrap();
    s.delete_trunk(&admin, &trunk.id).await.unwrap();
    s.audit_call_control(&admin, "call-1", "call.hold", json!({}))
        .await
        .unwrap();
    let events = drain(&mut rx);
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind).collect();
    for k in [
        "user.created",
        "team.created",
        "team.member_added",
        "skill.created",
        "case_type.created",
        "case_type.updated",
        "sla_policy.changed",
        "customer.updated",
        "ivr_flow.created",
        "ivr_flow.draft_updated",
        "ivr_flow.published",
        "ivr_route.changed",
        "ivr_route.deleted",
        "trunk.created",
        "phone_number.created",
        "phone_number.deleted",
        "trunk.deleted",
        "audit.recorded",
    ] {
        assert!(kinds.contains(k), "{k} published; got {kinds:?}");
    }
    // No secret leaves in an event: the trunk's password is not in it.
    let t = events.iter().find(|e| e.kind == "trunk.created").unwrap();
    assert!(
        !t.data.to_string().contains("carrier secret 1"),
        "{}",
        t.data
    );
    assert_eq!(t.min_role, Role::Admin);
    // Every event published went through the outbox, with its id.
    let stored = s.outbox_events(&sys.tenant_id).await.unwrap();
    for e in &events {
        assert!(
            stored
                .iter()
                .any(|(x, published)| x.id == e.id && *published),
            "{} in the outbox",
            e.kind
        );
    }
});
