//! Incidents (issue #21) on both backends: the status machine stored with its timeline
//! and audit, links (cases go on hold), public updates fanned out once per affected
//! customer on the conversation they last used (through the delivery outbox), a restart
//! in the middle of a fan-out losing and duplicating nothing, engineers kept from
//! messaging customers, the cadence alert in virtual time, the automatic status reply,
//! recurrence suggestions on fixtures, and the Slack outbox and event de-duplication.
//! Part of the `storage` test binary.

use parley_cases::cases::NewCase;
use parley_cases::conversations::{InboundMessage, NewChannel, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::incidents::recurrence::{self, Inbound};
use parley_cases::incidents::slack::{SlackAction, SlackIntegration};
use parley_cases::incidents::{IncidentStatus, NewIncident, NewLinks, NewUpdate};
use parley_cases::queues::QueueInput;
use parley_cases::sla::{CaseStatus, Priority};
use parley_cases::{Actor, Error, Role, Store, Timestamp};

use crate::common;
use crate::on_both;
use crate::user;

fn new_incident(title: &str, severity: Priority) -> NewIncident {
    NewIncident {
        title: title.into(),
        severity,
        owner_id: None,
        comms_owner_id: None,
        services: vec!["login".into()],
    }
}

/// A customer writing on `channel` (thread `thread`): returns (customer, conversation).
async fn write(s: &Store, a: &Actor, channel: &str, thread: &str, text: &str) -> (String, String) {
    let kind = if thread.contains('@') {
        "email"
    } else {
        "web_chat"
    };
    let got = s
        .ingest(
            a,
            InboundMessage {
                channel_id: channel.into(),
                thread_key: thread.into(),
                sender: Sender {
                    customer_id: None,
                    identity: Some(RawIdentity {
                        kind: kind.into(),
                        value: thread.into(),
                    }),
                    name: Some(format!("Cust {thread}")),
                },
                text: text.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (got.conversation.customer_id, got.conversation.id)
}

async fn setup(s: &Store, a: &Actor) -> (String, String) {
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "chat" })).unwrap();
    s.create_queue(a, q).await.unwrap();
    let chat = s.web_chat_channel(a).await.unwrap().id;
    let email = s
        .create_channel(
            a,
            NewChannel {
                kind: "email".into(),
                name: "Support mail".into(),
                queue: Some("chat".into()),
                team_id: None,
                settings: None,
            },
        )
        .await
        .unwrap()
        .id;
    (chat, email)
}

async fn count(s: &Store, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(s.pool())
        .await
        .unwrap();
    n
}

on_both!(
    incident_lifecycle_links_and_public_updates_exactly_once,
    |h| {
        let acme = h.tenant("acme").await;
        let (chat, email) = setup(&h.store, &acme).await;
        let agent = user(&h.store, &acme, "comms@acme.test", Role::Agent).await;
        let eng = user(&h.store, &acme, "eng@acme.test", Role::Engineer).await;

        // Three customers: two on web chat, one who wrote on chat first and then by email
        // (their last-used conversation is the email one).
        let (c1, v1) = write(&h.store, &acme, &chat, "vis-1", "cannot log in").await;
        let (c2, v2) = write(&h.store, &acme, &chat, "vis-2", "login broken").await;
        let (c3, v3chat) = write(&h.store, &acme, &chat, "vis-3", "login fails").await;
        h.clock.advance_minutes(1);
        let case3 = h
            .store
            .create_case(
                &acme,
                serde_json::from_value::<NewCase>(serde_json::json!({
                    "title": "Login fails", "customer_id": c3, "priority": "P1"
                }))
                .unwrap(),
            )
            .await
            .unwrap();

        let mut events = h.store.subscribe();
        let inc = h
            .store
            .create_incident(&eng, new_incident("Login outage", Priority::P0))
            .await
            .unwrap();
        assert_eq!(inc.status, IncidentStatus::Investigating);
        assert_eq!(inc.comms_owner_id, None, "an engineer is not a comms owner");
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.kind, "incident.created");
        assert_eq!(ev.min_role, Role::Engineer);

        // Link: conversations of c1, c2; c3 through their case (which goes on hold).
        let links = h
            .store
            .link_incident(
                &agent,
                &inc.id,
                NewLinks {
                    case_ids: vec![case3.id.clone()],
                    conversation_ids: vec![v1.clone(), v2.clone()],
                },
            )
            .await
            .unwrap();
        assert_eq!(links.len(), 3);
        let case = h.store.case(&acme, &case3.id).await.unwrap();
        assert_eq!(case.status, CaseStatus::OnHold);
        // Linking again changes nothing; an unknown id is refused, naming it, linking nothing.
        h.store
            .link_incident(
                &agent,
                &inc.id,
                NewLinks {
                    case_ids: vec![],
                    conversation_ids: vec![v1.clone()],
                },
            )
            .await
            .unwrap();
        match h
            .store
            .link_incident(
                &agent,
                &inc.id,
                NewLinks {
                    case_ids: vec![],
                    conversation_ids: vec![v2.clone(), "nope".into()],
                },
            )
            .await
        {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "conversation_ids[1]"),
            other => panic!("{other:?}"),
        }
        // Customer 3 writes by email afterwards: that is the channel they last used.
        h.clock.advance_minutes(1);
        let (c3b, v3mail) = write(&h.store, &acme, &email, "c3@example.com", "still broken").await;
        // (A different identity is a different customer unless merged: merge it in by
        // linking the case's customer's conversation instead.)
        assert_ne!(c3b, c3);
        let _ = v3mail;

        // Engineers never message customers.
        assert!(matches!(
            h.store
                .post_incident_update(
                    &eng,
                    &inc.id,
                    NewUpdate {
                        text: "We found it".into(),
                        public: true
                    }
                )
                .await,
            Err(Error::Forbidden { .. })
        ));
        // An engineer's note is fine (and stays internal).
        let note = h
            .store
            .post_incident_update(
                &eng,
                &inc.id,
                NewUpdate {
                    text: "Rolled back auth deploy".into(),
                    public: false,
                },
            )
            .await
            .unwrap();
        assert!(note.deliveries.is_empty());

        let queued_before = count(&h.store, "SELECT COUNT(*) FROM message_deliveries").await;
        let posted = h
            .store
            .post_incident_update(
                &agent,
                &inc.id,
                NewUpdate {
                    text: "Logins fail for some users; a fix is rolling out.".into(),
                    public: true,
                },
            )
            .await
            .unwrap();
        let mut got: Vec<(String, String)> = posted
            .deliveries
            .iter()
            .map(|d| (d.customer_id.clone(), d.conversation_id.clone()))
            .collect();
        got.sort();
        let mut want = vec![
            (c1.clone(), v1.clone()),
            (c2.clone(), v2.clone()),
            (c3.clone(), v3chat.clone()),
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(
            posted
                .deliveries
                .iter()
                .all(|d| d.status.as_deref() == Some("queued"))
        );
        assert_eq!(
            count(&h.store, "SELECT COUNT(*) FROM message_deliveries").await - queued_before,
            3,
            "one outbox row per customer"
        );
        // Personalised, on the conversation (and so the timeline).
        let msgs = h
            .store
            .conversation_messages(&acme, &v1, 0, None)
            .await
            .unwrap();
        let last = msgs.last().unwrap();
        assert!(
            last.text
                .starts_with("Hi Cust, an update on \"Login outage\""),
            "{}",
            last.text
        );

        // A restart in the middle of the next update: the update is stored, one customer's
        // row written without its message. Resuming sends the rest once.
        h.clock.advance_minutes(10);
        let view = h.store.incident_view(&acme, &inc.id).await.unwrap();
        assert_eq!(view.affected_customers, 3);
        assert_eq!(view.deliveries.len(), 3);
        assert_eq!(
            view.timeline.iter().filter(|e| e.kind == "update").count(),
            1
        );
        assert_eq!(
            view.cadence.due_at,
            Some(posted.entry.created_at.plus_minutes(60))
        );

        let second = h
            .store
            .post_incident_update(
                &agent,
                &inc.id,
                NewUpdate {
                    text: "Fixed for most.".into(),
                    public: true,
                },
            )
            .await
            .unwrap();
        // Simulate the crash: forget one customer's message and the done flag.
        let victim = &second.deliveries[0];
        sqlx::query("UPDATE incident_update_deliveries SET message_id = NULL WHERE entry_id = $1 AND customer_id = $2")
        .bind(&second.entry.id)
        .bind(&victim.customer_id)
        .execute(h.store.pool())
        .await
        .unwrap();
        sqlx::query(
            "DELETE FROM incident_update_deliveries WHERE entry_id = $1 AND customer_id = $2",
        )
        .bind(&second.entry.id)
        .bind(&second.deliveries[1].customer_id)
        .execute(h.store.pool())
        .await
        .unwrap();
        sqlx::query("UPDATE incident_entries SET fanout_done = 0 WHERE id = $1")
            .bind(&second.entry.id)
            .execute(h.store.pool())
            .await
            .unwrap();
        let before = count(&h.store, "SELECT COUNT(*) FROM message_deliveries").await;
        let reopened = h.reopen().await;
        assert_eq!(reopened.resume_incident_fanouts().await.unwrap(), 1);
        assert_eq!(reopened.resume_incident_fanouts().await.unwrap(), 0);
        assert_eq!(
            count(&h.store, "SELECT COUNT(*) FROM message_deliveries").await,
            before,
            "nothing sent twice"
        );
        let view = h.store.incident_view(&acme, &inc.id).await.unwrap();
        assert_eq!(view.deliveries.len(), 6);
        assert!(view.deliveries.iter().all(|d| d.message_id.is_some()));
        reopened.close().await;

        // A customer who writes during the incident gets the current status, once per update.
        write(&h.store, &acme, &chat, "vis-2", "any news?").await;
        let auto = h
            .store
            .incident_auto_status(&acme.tenant_id, &v2)
            .await
            .unwrap();
        assert_eq!(auto.len(), 1);
        assert!(auto[0].text.contains("Fixed for most."), "{}", auto[0].text);
        let again = h
            .store
            .incident_auto_status(&acme.tenant_id, &v2)
            .await
            .unwrap();
        assert_eq!(again[0].id, auto[0].id, "the same status is not sent twice");
        let banner = h
            .store
            .incidents_for_conversation(&acme, &v2)
            .await
            .unwrap();
        assert_eq!(banner.len(), 1);

        // Status machine: bad move refused; resolve; settle the linked case.
        assert!(matches!(
            h.store
                .set_incident_status(&eng, &inc.id, IncidentStatus::PostMortem)
                .await,
            Err(Error::InvalidTransition { .. })
        ));
        h.store
            .set_incident_status(&eng, &inc.id, IncidentStatus::Identified)
            .await
            .unwrap();
        let resolved = h
            .store
            .set_incident_status(&agent, &inc.id, IncidentStatus::Resolved)
            .await
            .unwrap();
        assert!(resolved.resolved_at.is_some());
        let changed = h
            .store
            .settle_incident_cases(&agent, &inc.id, CaseStatus::Resolved)
            .await
            .unwrap();
        assert_eq!(changed, vec![case3.id.clone()]);
        let view = h.store.incident_view(&acme, &inc.id).await.unwrap();
        assert_eq!(
            view.timeline.iter().filter(|e| e.kind == "status").count(),
            2
        );
        assert_eq!(view.cadence.due_at, None);
        // Every mutation audited.
        let audited = count(
            &h.store,
            "SELECT COUNT(*) FROM audit_log WHERE entity_kind = 'incident'",
        )
        .await;
        assert!(audited >= 7, "{audited}");
        // Another tenant sees nothing.
        let globex = h.tenant("globex").await;
        assert!(matches!(
            h.store.incident(&globex, &inc.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(
            h.store
                .list_incidents(&globex, None)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both!(missed_update_alerts_comms_owner_once_in_virtual_time, |h| {
    let acme = h.tenant("acme").await;
    let comms = user(&h.store, &acme, "comms@acme.test", Role::Agent).await;
    let inc = h
        .store
        .create_incident(&comms, new_incident("Billing run", Priority::P0))
        .await
        .unwrap();
    assert_eq!(inc.comms_owner_id, comms.user_id);
    let mut events = h.store.subscribe();
    h.clock.advance_minutes(59);
    assert!(h.store.check_incident_cadence().await.unwrap().is_empty());
    h.clock.advance_minutes(2);
    assert_eq!(
        h.store.check_incident_cadence().await.unwrap(),
        vec![inc.id.clone()]
    );
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.kind, "incident.update_overdue");
    assert!(ev.visible_to_user(&comms));
    let other_agent = user(&h.store, &acme, "other@acme.test", Role::Agent).await;
    assert!(!ev.visible_to_user(&other_agent));
    let sup = user(&h.store, &acme, "sup@acme.test", Role::Supervisor).await;
    assert!(ev.visible_to_user(&sup));
    // Once per missed update.
    h.clock.advance_minutes(30);
    assert!(h.store.check_incident_cadence().await.unwrap().is_empty());
    // An update (nobody affected yet) restarts the clock; missing the next one alerts again.
    h.store
        .post_incident_update(
            &comms,
            &inc.id,
            NewUpdate {
                text: "Still on it".into(),
                public: true,
            },
        )
        .await
        .unwrap();
    h.clock.advance_minutes(61);
    assert_eq!(h.store.check_incident_cadence().await.unwrap().len(), 1);
    assert_eq!(
        h.store
            .incident_cadence_report(&comms, &inc.id)
            .await
            .unwrap(),
        (0, 1),
        "the one update came late"
    );
});

on_both!(slack_outbox_and_event_dedup, |h| {
    let acme = h.tenant("acme").await;
    // Without a Slack connection nothing is queued.
    let quiet = h
        .store
        .create_incident(&acme, new_incident("Quiet", Priority::P0))
        .await
        .unwrap();
    assert!(h.store.due_slack_calls(10).await.unwrap().is_empty());
    assert!(!h.store.swarm_incident(&acme, &quiet.id).await.unwrap());
    h.store
        .set_slack_integration(
            &acme,
            SlackIntegration {
                bot_token_sealed: "plain:xoxb-1".into(),
                signing_secret_sealed: "plain:s".into(),
                api_base_url: "http://127.0.0.1:9/".into(),
                invitees: vec!["eng@acme.test".into()],
            },
        )
        .await
        .unwrap();
    // The audit log never holds the secrets.
    let leaked = count(
        &h.store,
        "SELECT COUNT(*) FROM audit_log WHERE after LIKE '%xoxb%'",
    )
    .await;
    assert_eq!(leaked, 0);
    let p1 = h
        .store
        .create_incident(&acme, new_incident("Payments down", Priority::P1))
        .await
        .unwrap();
    let p3 = h
        .store
        .create_incident(&acme, new_incident("Typo", Priority::P3))
        .await
        .unwrap();
    h.store
        .post_incident_update(
            &acme,
            &p1.id,
            NewUpdate {
                text: "Looking at the gateway".into(),
                public: false,
            },
        )
        .await
        .unwrap();
    let due = h.store.due_slack_calls(10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(
        matches!(&due[0].action, SlackAction::Swarm { brief } if brief.contains("Payments down"))
    );
    assert!(
        matches!(&due[1].action, SlackAction::Post { text } if text == "Looking at the gateway")
    );
    // "Swarm" on the P3 queues it; twice does not.
    assert!(h.store.swarm_incident(&acme, &p3.id).await.unwrap());
    assert!(!h.store.swarm_incident(&acme, &p3.id).await.unwrap());
    // A failed call waits; a done one is gone.
    h.store
        .slack_call_failed(&due[0].id, "down", Some(h.store.now().plus_minutes(1)))
        .await
        .unwrap();
    h.store.slack_call_done(&due[1].id).await.unwrap();
    assert_eq!(h.store.due_slack_calls(10).await.unwrap().len(), 1);
    h.clock.advance_minutes(2);
    assert_eq!(h.store.due_slack_calls(10).await.unwrap().len(), 2);
    // The channel maps back to its incident; Slack notes are idempotent per message.
    h.store
        .set_incident_slack_channel(&acme.tenant_id, &p1.id, "C123", "inc-payments-down")
        .await
        .unwrap();
    assert_eq!(
        h.store
            .incident_by_slack_channel(&acme.tenant_id, "C123")
            .await
            .unwrap(),
        Some(p1.id.clone())
    );
    assert!(
        h.store
            .slack_event_first_seen(&acme.tenant_id, "Ev1")
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .slack_event_first_seen(&acme.tenant_id, "Ev1")
            .await
            .unwrap()
    );
    let n1 = h
        .store
        .add_external_incident_note(
            &acme.tenant_id,
            &p1.id,
            None,
            "on it",
            "slack",
            "slack:C123:1.1",
        )
        .await
        .unwrap();
    assert!(n1.is_some());
    let n2 = h
        .store
        .add_external_incident_note(
            &acme.tenant_id,
            &p1.id,
            None,
            "on it",
            "slack",
            "slack:C123:1.1",
        )
        .await
        .unwrap();
    assert!(n2.is_none());
});

/// Recurrence fixtures: `cases/tests/fixtures/recurrence.json`.
#[test]
fn recurrence_on_fixtures() {
    #[derive(serde::Deserialize)]
    struct Fixture {
        messages: Vec<(String, String, String, i64)>,
        burst_conversations: Vec<String>,
        repeat_customers: Vec<String>,
        resolved: Vec<(String, String, i64)>,
        reopen: Vec<(String, Vec<String>)>,
    }
    let f: Fixture = serde_json::from_str(include_str!("../fixtures/recurrence.json")).unwrap();
    let msgs: Vec<Inbound> = f
        .messages
        .into_iter()
        .map(|(conversation_id, customer_id, text, minute)| Inbound {
            conversation_id,
            customer_id,
            text,
            at: Timestamp(minute * 60_000),
        })
        .collect();
    let p = recurrence::Params::default();
    let bursts = recurrence::bursts(&msgs, p);
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    assert_eq!(bursts[0].conversation_ids, f.burst_conversations);
    let mut repeats: Vec<String> = recurrence::repeats(&msgs, p)
        .into_iter()
        .map(|r| r.customer_id)
        .collect();
    repeats.sort();
    assert_eq!(repeats, f.repeat_customers);
    let resolved: Vec<(String, String, Timestamp)> = f
        .resolved
        .into_iter()
        .map(|(id, s, m)| (id, s, Timestamp(m * 60_000)))
        .collect();
    let reopens: Vec<(String, Vec<String>)> = recurrence::reopens(&resolved, &msgs, p)
        .into_iter()
        .map(|r| (r.incident_id, r.conversation_ids))
        .collect();
    assert_eq!(reopens, f.reopen);
}
