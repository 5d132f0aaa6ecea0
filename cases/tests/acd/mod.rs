//! ACD storage (queues, presence, recording policy, call records and their statistics),
//! on both backends. Part of the `storage` test binary.

use parley_cases::audit::AuditFilter;
use parley_cases::queues::{
    AgentLeg, CallRecord, CallRecordFilter, PresenceInput, QueueInput, RecordingPolicy,
};
use parley_cases::routing::{AgentStatus, Channel, MaxWaitAction, SkillRequirement, Strategy};
use parley_cases::telephony::SipAccountPatch;
use parley_cases::{Error, Role, Timestamp};

use crate::common;
use crate::on_both;
use crate::user;

fn queue(name: &str) -> QueueInput {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}

fn cdr(
    queue: &str,
    agent: Option<&str>,
    start_s: i64,
    wait_s: i64,
    talk_s: i64,
    outcome: &str,
) -> CallRecord {
    let started = common::T0.0 + start_s * 1000;
    CallRecord {
        call_id: format!("call-{start_s}"),
        direction: "inbound".into(),
        caller: "+15550100".into(),
        dialled: "+15550199".into(),
        queue_id: Some(queue.into()),
        agent_id: agent.map(Into::into),
        agents: agent
            .map(|a| {
                vec![AgentLeg {
                    agent_id: a.into(),
                    outcome: "answered".into(),
                    offered_at: Timestamp(started),
                    talk_ms: talk_s * 1000,
                }]
            })
            .unwrap_or_default(),
        started_at: Timestamp(started),
        enqueued_at: Some(Timestamp(started)),
        answered_at: agent.map(|_| Timestamp(started + wait_s * 1000)),
        ended_at: Timestamp(started + (wait_s + talk_s) * 1000),
        wait_ms: wait_s * 1000,
        talk_ms: talk_s * 1000,
        wrap_ms: if agent.is_some() { 10_000 } else { 0 },
        outcome: outcome.into(),
        hangup_side: Some("caller".into()),
        hangup_cause: Some("normal_clearing".into()),
        sl_met: agent.is_some() && wait_s <= 20,
        ..CallRecord::default()
    }
}

on_both!(queues_crud_validation_and_routing_view, |h| {
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let es = h.store.create_skill(&acme, "spanish").await.unwrap();
    let overflow = h
        .store
        .create_queue(&acme, queue("overflow"))
        .await
        .unwrap();
    let mut input = queue("sales");
    input.strategy = Strategy::MostSkilled;
    input.skills = vec![SkillRequirement {
        skill: es.id.clone(),
        min_proficiency: 3,
    }];
    input.overflow_queue_id = Some(overflow.id.clone());
    input.overflow_after_s = Some(60);
    input.max_wait_s = Some(300);
    input.max_wait_action = MaxWaitAction::Callback;
    input.callback_key = Some("5".into());
    let q = h.store.create_queue(&acme, input.clone()).await.unwrap();
    assert_eq!(q.wrap_up_s, 10);
    assert_eq!(q.ring_timeout_s, 15);
    assert_eq!(h.store.queue_by_ref(&acme, "sales").await.unwrap().id, q.id);
    assert_eq!(h.store.queue_by_ref(&acme, &q.id).await.unwrap(), q);
    let r = q.routing();
    assert_eq!(r.overflow, Some((overflow.id.clone(), 60)));
    assert_eq!(r.strategy, Strategy::MostSkilled);
    // Names are unique per tenant; other tenants see nothing.
    assert!(matches!(
        h.store.create_queue(&acme, queue("sales")).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        h.store.queue(&other, &q.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(h.store.list_queues(&other).await.unwrap().is_empty());
    // Validation names the field.
    let mut bad = queue("bad");
    bad.callback_key = Some("x".into());
    assert!(matches!(
        h.store.create_queue(&acme, bad).await,
        Err(Error::Invalid { field, .. }) if field == "callback_key"
    ));
    let mut bad = queue("bad");
    bad.skills = vec![SkillRequirement {
        skill: "nope".into(),
        min_proficiency: 1,
    }];
    assert!(matches!(
        h.store.create_queue(&acme, bad).await,
        Err(Error::NotFound { .. })
    ));
    // Update, then delete the overflow target: the reference goes with it.
    input.wrap_up_s = Some(5);
    let q2 = h.store.update_queue(&acme, &q.id, input).await.unwrap();
    assert_eq!(q2.wrap_up_s, 5);
    h.store.delete_queue(&acme, &overflow.id).await.unwrap();
    let q3 = h.store.queue(&acme, &q.id).await.unwrap();
    assert_eq!(q3.overflow_queue_id, None);
    assert_eq!(h.store.routing_queues().await.unwrap().len(), 1);
    let log = h
        .store
        .audit_log(
            &acme,
            &AuditFilter {
                entity_id: Some(q.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log.items.len(), 2);
});

on_both!(presence_is_stored_audited_and_published, |h| {
    let acme = h.tenant("acme").await;
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    let uid = ann.user_id.clone().unwrap();
    let es = h.store.create_skill(&acme, "spanish").await.unwrap();
    h.store
        .set_user_skill(&acme, &uid, &es.id, Some(4))
        .await
        .unwrap();
    assert_eq!(
        h.store.presence(&acme, &uid).await.unwrap().status,
        "offline"
    );
    // Without an extension the phone cannot ring: an agent is still routed, chat-only
    // (issue #15), with no voice capacity; an admin without one is not routed.
    user(&h.store, &acme, "adm@acme.test", Role::Admin).await;
    let agents = h
        .store
        .routing_agents(Some(&acme.tenant_id), None)
        .await
        .unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].0.id, uid);
    assert_eq!(agents[0].0.capacity.get(&Channel::Voice), Some(&0));
    assert_eq!(agents[0].0.capacity.get(&Channel::Chat), Some(&3));
    h.store
        .set_sip_account(
            &acme,
            &uid,
            SipAccountPatch {
                extension: Some("1001".into()),
                password: None,
                current_password: None,
                srtp: None,
            },
        )
        .await
        .unwrap();
    let mut events = h.store.subscribe();
    let p = h
        .store
        .set_presence(
            &ann,
            &uid,
            PresenceInput {
                status: "away".into(),
                reason: Some("lunch".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(p.reason.as_deref(), Some("lunch"));
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "agent.presence_changed");
    assert_eq!(e.data["status"], "away");
    let agents = h.store.routing_agents(None, Some(&uid)).await.unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].0.skills.get(&es.id), Some(&4));
    assert_eq!(agents[0].0.skills.get("spanish"), Some(&4));
    assert_eq!(
        agents[0].1,
        AgentStatus::Away {
            reason: "lunch".into()
        }
    );
    h.store
        .set_presence(
            &ann,
            &uid,
            PresenceInput {
                status: "available".into(),
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.store
            .routing_agents(Some(&acme.tenant_id), None)
            .await
            .unwrap()[0]
            .1,
        AgentStatus::Available
    );
    assert!(matches!(
        h.store
            .set_presence(
                &ann,
                &uid,
                PresenceInput {
                    status: "busy".into(),
                    reason: None
                }
            )
            .await,
        Err(Error::Invalid { .. })
    ));
    let log = h
        .store
        .audit_log(
            &acme,
            &AuditFilter {
                entity_id: Some(uid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        log.items
            .iter()
            .filter(|a| a.action == "agent.presence")
            .count(),
        2
    );
    // Recording policy.
    assert_eq!(
        h.store.recording_policy(&acme).await.unwrap(),
        RecordingPolicy::Off
    );
    h.store
        .set_recording_policy(&acme, RecordingPolicy::Announce)
        .await
        .unwrap();
    assert_eq!(
        h.store.recording_policy(&acme).await.unwrap(),
        RecordingPolicy::Announce
    );
    // `consent` is stored (the migration widened the check) and read back.
    h.store
        .set_recording_policy(&acme, RecordingPolicy::Consent)
        .await
        .unwrap();
    assert_eq!(
        h.store.recording_policy(&acme).await.unwrap(),
        RecordingPolicy::Consent
    );
});

on_both!(call_records_and_stats_per_queue_and_agent, |h| {
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    for rec in [
        cdr("q1", Some("ann"), 0, 10, 100, "answered"),
        cdr("q1", Some("ann"), 100, 30, 200, "answered"),
        cdr("q1", Some("bob"), 200, 20, 60, "answered"),
        cdr("q1", None, 300, 45, 0, "abandoned"),
        cdr("q2", Some("bob"), 400, 5, 40, "answered"),
        cdr("q1", Some("ann"), 5000, 1, 1, "answered"), // outside the range below
    ] {
        h.store.add_call_record(&acme, rec).await.unwrap();
    }
    let from = common::T0;
    let to = Timestamp(common::T0.0 + 1000 * 1000);
    let q = h.store.call_stats(&acme, from, to, false).await.unwrap();
    assert_eq!(q.len(), 2);
    let q1 = &q[0];
    assert_eq!(
        (q1.id.as_str(), q1.offered, q1.answered, q1.abandoned),
        ("q1", 4, 3, 1)
    );
    assert_eq!(q1.asa_s, Some(20.0));
    assert_eq!(q1.aht_s, Some(130.0)); // (100 + 200 + 60) / 3 + 10 wrap-up
    assert_eq!(q1.abandonment_rate, Some(0.25));
    assert_eq!(q1.service_level, Some(0.5)); // 10 s and 20 s within 20 s, of 4
    let a = h.store.call_stats(&acme, from, to, true).await.unwrap();
    assert_eq!(
        a.iter()
            .map(|s| (s.id.as_str(), s.answered))
            .collect::<Vec<_>>(),
        [("ann", 2), ("bob", 2)]
    );
    assert!(
        h.store
            .call_stats(&other, from, to, false)
            .await
            .unwrap()
            .is_empty()
    );
    let list = h
        .store
        .call_records(
            &acme,
            &CallRecordFilter {
                agent_id: Some("ann".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert!(list[0].started_at > list[1].started_at);
    assert_eq!(list[0].agents[0].agent_id, "ann");
    let ranged = h
        .store
        .call_records(
            &acme,
            &CallRecordFilter {
                from: Some(from),
                to: Some(to),
                queue_id: Some("q1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ranged.len(), 4);
});

on_both!(routing_profile_changes_are_published_for_the_router, |h| {
    let acme = h.tenant("acme").await;
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    let uid = ann.user_id.clone().unwrap();
    let es = h.store.create_skill(&acme, "spanish").await.unwrap();
    let mut events = h.store.subscribe();
    h.store
        .set_user_skill(&acme, &uid, &es.id, Some(4))
        .await
        .unwrap();
    h.store
        .set_sip_account(
            &acme,
            &uid,
            SipAccountPatch {
                extension: Some("1001".into()),
                password: None,
                current_password: None,
                srtp: None,
            },
        )
        .await
        .unwrap();
    h.store
        .set_user_skill(&acme, &uid, &es.id, None)
        .await
        .unwrap();
    h.store
        .update_user(
            &acme,
            &uid,
            parley_cases::directory::UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for _ in 0..4 {
        let e = events.recv().await.unwrap();
        assert_eq!(e.kind, "agent.profile_changed");
        assert_eq!(e.data["user_id"], uid.as_str());
        assert!(e.visible_to(&acme.tenant_id, Role::Supervisor, None));
        assert!(!e.visible_to(&acme.tenant_id, Role::Agent, None));
    }
    // Deactivated: no longer a routing agent (the router drops them on the event).
    assert!(
        h.store
            .routing_agents(None, Some(&uid))
            .await
            .unwrap()
            .is_empty()
    );
});

// Regression (issue 14): the demo tenant had no queues, so the demo flow's `enqueue`
// nodes found none (`outcome: no_queue`, no agent on the call record, nothing on the
// wallboard), and its calendar kept the line closed outside New York office hours.
on_both!(
    demo_seed_has_the_flows_queues_and_skills_and_available_agents,
    |h| {
        parley_cases::demo::seed_demo(&h.store)
            .await
            .unwrap()
            .unwrap();
        let t = h.store.tenant_by_name("demo").await.unwrap().unwrap();
        let sys = parley_cases::Actor::system(&t.id);
        let queues = h.store.list_queues(&sys).await.unwrap();
        let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["chat", "sales", "support"]);
        let skills = h.store.list_skills(&sys).await.unwrap();
        // The web chat channel routes through the chat queue (issue #17).
        let web = h.store.web_chat_channel(&sys).await.unwrap();
        assert_eq!(web.queue_id.as_deref(), Some(queues[0].id.as_str()));
        for q in &queues {
            if q.name != "chat" {
                assert_eq!(q.callback_key.as_deref(), Some("9"));
            }
            // Each queue requires the skill of its own name (what the flow's node asks for).
            let [req] = q.skills.as_slice() else {
                panic!("{q:?}")
            };
            let skill = skills.iter().find(|s| s.id == req.skill).unwrap();
            assert_eq!(skill.name, q.name);
            // The router takes the flow's queue by name.
            assert_eq!(h.store.queue_by_ref(&sys, &q.name).await.unwrap().id, q.id);
        }
        // Both agents (the ones with extensions) can take both queues' calls and start
        // available, so the first call rings whoever is logged in.
        let agents = h.store.routing_agents(Some(&t.id), None).await.unwrap();
        assert_eq!(agents.len(), 2);
        for (cfg, status) in &agents {
            assert_eq!(*status, AgentStatus::Available, "{}", cfg.id);
            for q in &queues {
                let (by_id, by_name) = (q.skills[0].skill.as_str(), q.name.as_str());
                assert!(cfg.skills.get(by_id).is_some_and(|p| *p >= 1), "{cfg:?}");
                assert!(cfg.skills.get(by_name).is_some_and(|p| *p >= 1), "{cfg:?}");
            }
        }
        // The demo calendar is open every day, all day (close "00:00" = midnight).
        let cals = h.store.calendars(&sys).await.unwrap();
        let main: serde_json::Value = serde_json::from_str(&cals[0].definition).unwrap();
        assert_eq!(
            main["weekly"],
            serde_json::json!([{
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "open": "00:00",
                "close": "00:00"
            }])
        );
    }
);

// The screen pop (issue 14): a call ringing one agent is published for that agent (and
// supervisors), carrying the caller's customer, before anyone answers.
on_both!(
    call_offered_goes_to_the_ringing_agent_and_supervisors,
    |h| {
        let acme = h.tenant("acme").await;
        let alice = user(&h.store, &acme, "alice@acme.test", Role::Agent).await;
        let bob = user(&h.store, &acme, "bob@acme.test", Role::Agent).await;
        let sup = user(&h.store, &acme, "sup@acme.test", Role::Supervisor).await;
        let other = h.tenant("globex").await;
        let mut rx = h.store.subscribe();
        let offer = parley_cases::queues::CallOffered {
            call_id: "c1".into(),
            agent_id: alice.user_id.clone().unwrap(),
            caller: "+15550123".into(),
            queue_id: "q1".into(),
            queue: "sales".into(),
            customer_id: Some("cust1".into()),
        };
        h.store.publish_call_offered(&acme.tenant_id, &offer);
        let e = rx.recv().await.unwrap();
        assert_eq!(e.kind, "call.offered");
        assert_eq!(e.customer_id.as_deref(), Some("cust1"));
        assert_eq!(e.data["agent_id"], serde_json::json!(alice.user_id));
        assert_eq!(e.data["queue"], "sales");
        assert!(e.visible_to_user(&alice));
        assert!(e.visible_to_user(&sup));
        assert!(!e.visible_to_user(&bob), "another agent's ringing call");
        let outsider = parley_cases::Actor {
            role: Role::Admin,
            ..other
        };
        assert!(!e.visible_to_user(&outsider), "another tenant");
    }
);

// Issue #15: a queue's auto-assign, sticky window and overflow channel, and an agent's
// capacity per channel (with blending), are stored, validated, audited and reach the
// router's view (`Queue::routing`, `routing_agents`).
on_both!(channel_settings_and_capacity_reach_the_router, |h| {
    use parley_cases::agent_capacity::AgentCapacityInput;
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let mut input = queue("mail");
    input.auto_assign = true;
    input.sticky_window_s = Some(600);
    input.channel = Some(Channel::Async);
    let q = h.store.create_queue(&acme, input.clone()).await.unwrap();
    assert!(q.auto_assign);
    assert_eq!(h.store.queue(&acme, &q.id).await.unwrap(), q);
    let r = q.routing();
    assert!(r.auto_assign);
    assert_eq!(r.sticky_window_s, 600);
    assert_eq!(r.channel, Some(Channel::Async));
    // A queue without them: offers, no stickiness, items keep their channel.
    let plain = h.store.create_queue(&acme, queue("plain")).await.unwrap();
    let r = plain.routing();
    assert!(!r.auto_assign && r.sticky_window_s == 0 && r.channel.is_none());
    input.auto_assign = false;
    input.channel = Some(Channel::Chat);
    let q = h.store.update_queue(&acme, &q.id, input).await.unwrap();
    assert_eq!((q.auto_assign, q.channel), (false, Some(Channel::Chat)));
    let mut bad = queue("bad");
    bad.sticky_window_s = Some(30 * 86_400 + 1);
    assert!(matches!(
        h.store.create_queue(&acme, bad).await,
        Err(Error::Invalid { field, .. }) if field == "sticky_window_s"
    ));
    let bad: Result<QueueInput, _> =
        serde_json::from_value(serde_json::json!({"name": "x", "channel": "fax"}));
    assert!(bad.is_err());

    // Capacity: the defaults until set; a set one is what the router loads.
    let ann = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    let uid = ann.user_id.clone().unwrap();
    h.store
        .set_sip_account(
            &acme,
            &uid,
            SipAccountPatch {
                extension: Some("1001".into()),
                password: None,
                current_password: None,
                srtp: None,
            },
        )
        .await
        .unwrap();
    let cap = h.store.agent_capacity(&acme, &uid).await.unwrap();
    assert_eq!((cap.voice, cap.chat, cap.async_items), (1, 3, 5));
    assert!(cap.call_blocks_other_work && cap.updated_at.is_none());
    let agents = h.store.routing_agents(None, Some(&uid)).await.unwrap();
    assert_eq!(agents[0].0.capacity.get(&Channel::Chat), Some(&3));
    assert!(agents[0].0.call_blocks_other_work);
    let mut events = h.store.subscribe();
    let cap = h
        .store
        .set_agent_capacity(
            &acme,
            &uid,
            AgentCapacityInput {
                chat: Some(6),
                async_items: Some(0),
                call_blocks_other_work: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((cap.voice, cap.chat, cap.async_items), (1, 6, 0));
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "agent.profile_changed");
    assert_eq!(e.data["user_id"], uid.as_str());
    assert_eq!(h.store.agent_capacity(&acme, &uid).await.unwrap(), cap);
    let agents = h.store.routing_agents(None, Some(&uid)).await.unwrap();
    let cfg = &agents[0].0;
    assert_eq!(
        cfg.capacity
            .iter()
            .map(|(c, n)| (*c, *n))
            .collect::<Vec<_>>(),
        vec![(Channel::Voice, 1), (Channel::Chat, 6), (Channel::Async, 0)]
    );
    assert!(!cfg.call_blocks_other_work);
    // Over a channel's maximum: refused, naming the channel; nothing stored changes.
    let too_many = AgentCapacityInput {
        chat: Some(21),
        ..Default::default()
    };
    assert!(matches!(
        h.store.set_agent_capacity(&acme, &uid, too_many).await,
        Err(Error::Invalid { field, .. }) if field == "chat"
    ));
    assert_eq!(h.store.agent_capacity(&acme, &uid).await.unwrap(), cap);
    // Another tenant's user is not found.
    assert!(matches!(
        h.store.agent_capacity(&other, &uid).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.store
            .set_agent_capacity(&other, &uid, AgentCapacityInput::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    let log = h
        .store
        .audit_log(
            &acme,
            &AuditFilter {
                entity_id: Some(uid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(log.items.iter().any(|e| e.action == "agent.capacity"));
});
