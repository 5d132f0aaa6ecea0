//! The per-call lookup cache (issue #15: each call made four-plus database round trips
//! before it was answered and re-read every published flow of its tenant), on both
//! backends. Part of the `storage` test binary.
//!
//! A "call" here is what the SIP call task reads before answering: the dialled number's
//! route and trunk, the number's IVR route, the tenant's published flows and calendars,
//! its SIP agents and its realm.

use std::sync::Arc;

use parley_cases::directory::UserPatch;
use parley_cases::lookups::{FlowSet, LOOKUP_TTL_MS};
use parley_cases::telephony::{NewPhoneNumber, SipAccountPatch, TrunkInput};
use parley_cases::{Actor, Role, Store};

use crate::common;
use crate::on_both;
use crate::user;

fn flow(id: &str, greeting: &str) -> String {
    format!(
        r#"{{"version": 1, "id": "{id}", "start": "hi", "nodes": {{"hi": {{"type": "play", "prompts": [{{"tts": "{greeting}"}}], "next": "bye"}}, "bye": {{"type": "hangup"}}}}}}"#
    )
}

/// What one inbound call reads; the answers that the tests compare.
#[derive(Debug, PartialEq)]
struct Seen {
    trunk_addresses: Vec<String>,
    flow_id: Option<String>,
    flow_versions: Vec<(String, i64)>,
    agents: Vec<(String, String)>,
    realm: String,
}

async fn call(s: &Store, dialled: &str) -> (Seen, Arc<FlowSet>) {
    let route = s.route_number(dialled).await.unwrap().unwrap();
    let ivr = s.inbound_route(&route.number.number).await.unwrap();
    let actor = Actor::system(&route.number.tenant_id);
    let set = s.flow_set(&actor).await.unwrap();
    let agents = s.sip_users(&actor).await.unwrap();
    let realm = s.sip_realm(&actor).await.unwrap();
    let seen = Seen {
        trunk_addresses: route.trunk.inbound_addresses.clone(),
        flow_id: ivr.map(|r| r.flow_id),
        flow_versions: set
            .versions
            .iter()
            .map(|v| (v.flow_id.clone(), v.version))
            .collect(),
        agents,
        realm,
    };
    (seen, set)
}

fn sip(ext: &str) -> SipAccountPatch {
    SipAccountPatch {
        extension: Some(ext.into()),
        password: Some("sip secret 123".into()),
        current_password: None,
        srtp: None,
    }
}

/// Trunk, number, agent with an extension, flow `main` published and routed.
async fn world(h: &common::Harness) -> (Actor, Actor, String) {
    let s = &h.store;
    let acme = h.tenant("acme").await;
    let admin = user(s, &acme, "admin@acme.test", Role::Admin).await;
    let ann = user(s, &acme, "ann@acme.test", Role::Agent).await;
    s.set_sip_account(&acme, ann.user_id.as_deref().unwrap(), sip("1001"))
        .await
        .unwrap();
    let t = s
        .create_trunk(
            &acme,
            TrunkInput {
                name: "carrier".into(),
                inbound_addresses: vec!["192.0.2.1".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    s.create_number(
        &acme,
        NewPhoneNumber {
            number: "+15550100".into(),
            trunk_id: t.id.clone(),
        },
    )
    .await
    .unwrap();
    for id in ["main", "other"] {
        s.create_flow(&admin, id, id, &flow(id, "Hello"))
            .await
            .unwrap();
        s.publish_flow(&admin, id, &flow(id, "Hello"), &[])
            .await
            .unwrap();
    }
    s.set_route(&admin, "+15550100", "main").await.unwrap();
    (acme, admin, t.id)
}

on_both!(a_second_call_reads_nothing_from_the_database, |h| {
    let s = &h.store;
    world(h).await;
    let before = s.lookup_db_reads();
    let (first, set1) = call(s, "15550100").await;
    let first_reads = s.lookup_db_reads() - before;
    // Number + trunk, IVR route, flows + calendars, agents, realm.
    assert_eq!(first_reads, 7, "first call");
    assert_eq!(first.flow_id.as_deref(), Some("main"));
    assert_eq!(first.agents.len(), 1);
    let before = s.lookup_db_reads();
    for _ in 0..10 {
        let (again, set) = call(s, "15550100").await;
        assert_eq!(again, first);
        // The same shared set: flows are parsed once per publication, not per call.
        assert!(Arc::ptr_eq(&set, &set1));
    }
    assert_eq!(s.lookup_db_reads() - before, 0, "ten more calls");
    let parses = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..3 {
        let n = set1.parsed(|set| {
            parses.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            set.versions.len()
        });
        assert_eq!(n.as_deref(), Some(&2));
    }
    assert_eq!(parses.into_inner(), 1);
});

on_both!(a_change_takes_effect_on_the_next_call, |h| {
    let s = &h.store;
    let (acme, admin, trunk) = world(h).await;
    let (mut want, set0) = call(s, "15550100").await;

    // Trunk addresses.
    s.update_trunk(
        &acme,
        &trunk,
        TrunkInput {
            name: "carrier".into(),
            inbound_addresses: vec!["192.0.2.2".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    want.trunk_addresses = vec!["192.0.2.2".into()];
    assert_eq!(call(s, "15550100").await.0, want, "trunk changed");

    // The number's IVR route.
    s.set_route(&admin, "+15550100", "other").await.unwrap();
    want.flow_id = Some("other".into());
    assert_eq!(call(s, "15550100").await.0, want, "route changed");

    // A new version of a flow: a new set, parsed again.
    s.update_flow_draft(&admin, "other", "other", &flow("other", "Hello again"))
        .await
        .unwrap();
    s.publish_flow(&admin, "other", &flow("other", "Hello again"), &[])
        .await
        .unwrap();
    want.flow_versions = vec![("main".into(), 1), ("other".into(), 2)];
    let (seen, set) = call(s, "15550100").await;
    assert_eq!(seen, want, "flow published");
    assert!(!Arc::ptr_eq(&set, &set0));
    s.rollback_flow(&admin, "other", 1).await.unwrap();
    want.flow_versions = vec![("main".into(), 1), ("other".into(), 1)];
    assert_eq!(call(s, "15550100").await.0, want, "flow rolled back");

    // Agents: a new extension, then a deactivated user.
    let bob = user(s, &acme, "bob@acme.test", Role::Agent).await;
    let bob_id = bob.user_id.clone().unwrap();
    s.set_sip_account(&acme, &bob_id, sip("1002"))
        .await
        .unwrap();
    let (seen, _) = call(s, "15550100").await;
    assert_eq!(seen.agents.len(), 2, "agent added");
    s.update_user(
        &acme,
        &bob_id,
        UserPatch {
            name: None,
            role: None,
            active: Some(false),
            password: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(call(s, "15550100").await.0, want, "agent deactivated");

    // The route removed, then the number.
    s.delete_route(&admin, "+15550100").await.unwrap();
    want.flow_id = None;
    assert_eq!(call(s, "15550100").await.0, want, "route removed");
    let n = s.list_numbers(&acme).await.unwrap().remove(0);
    s.delete_number(&acme, &n.id).await.unwrap();
    assert!(s.route_number("15550100").await.unwrap().is_none());
});

on_both!(entries_expire_for_changes_made_elsewhere, |h| {
    let s = &h.store;
    world(h).await;
    call(s, "15550100").await;
    let before = s.lookup_db_reads();
    call(s, "15550100").await;
    assert_eq!(s.lookup_db_reads(), before);
    // Another node on the same database changes nothing here: the time-to-live
    // bounds how long this one trusts what it read.
    const { assert!(LOOKUP_TTL_MS <= 60_000) };
    h.clock.advance_minutes(1);
    call(s, "15550100").await;
    assert_eq!(s.lookup_db_reads() - before, 7);
});

// Issue #13: each outbound dial read the tenant's dial policy (and the dialling user's
// role) from the database. Now from the cache: a second dial reads nothing, and a
// policy or role change is seen by the next dial.
on_both!(
    a_dial_reads_its_policy_from_the_cache_and_sees_a_change_next,
    |h| {
        use parley_cases::dialpolicy::DialPolicy;
        let s = &h.store;
        let (acme, admin, _) = world(h).await;
        let ann = user(s, &acme, "ann2@acme.test", Role::Agent).await;
        let ann_id = ann.user_id.clone().unwrap();
        let dial = || async {
            let role = s.user_role_cached(&acme.tenant_id, &ann_id).await.unwrap();
            let policy = s.dial_policy_cached(&acme.tenant_id).await.unwrap();
            (role, policy.max_calls_per_minute)
        };
        let default_rate = DialPolicy::default().max_calls_per_minute;
        assert_eq!(dial().await, (Some(Role::Agent), default_rate));
        let before = s.lookup_db_reads();
        for _ in 0..5 {
            assert_eq!(dial().await, (Some(Role::Agent), default_rate));
        }
        assert_eq!(s.lookup_db_reads() - before, 0, "five more dials");
        assert_eq!(
            s.user_role_cached(&acme.tenant_id, "no-such-user")
                .await
                .unwrap(),
            None
        );

        s.set_dial_policy(
            &admin,
            DialPolicy {
                max_calls_per_minute: 7,
                ..DialPolicy::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(dial().await, (Some(Role::Agent), 7), "policy changed");
        s.update_user(
            &acme,
            &ann_id,
            UserPatch {
                name: None,
                role: Some(Role::Supervisor),
                active: None,
                password: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(dial().await, (Some(Role::Supervisor), 7), "role changed");
        // Another tenant's policy is its own.
        let beta = h.tenant("beta").await;
        assert_eq!(
            s.dial_policy_cached(&beta.tenant_id)
                .await
                .unwrap()
                .max_calls_per_minute,
            default_rate
        );
    }
);

// Issue #13: a call passing the caller's SDP through read each rung phone's SRTP policy
// from the database (one round trip per phone per call). Now from the cache: a second
// call reads nothing, and an admin's change is seen by the next call.
on_both!(
    a_phones_srtp_policy_comes_from_the_cache_and_a_change_is_seen_next,
    |h| {
        use parley_cases::telephony::SrtpPolicy;
        let s = &h.store;
        let (acme, admin, _) = world(h).await;
        let ann = user(s, &acme, "ann3@acme.test", Role::Agent).await;
        let ann_id = ann.user_id.clone().unwrap();
        let srtp = || s.user_srtp_cached(&acme.tenant_id, &ann_id);
        let first = srtp().await.unwrap();
        let before = s.lookup_db_reads();
        for _ in 0..5 {
            assert_eq!(srtp().await.unwrap(), first);
        }
        assert_eq!(s.lookup_db_reads() - before, 0, "five more calls");

        s.set_sip_account(
            &admin,
            &ann_id,
            SipAccountPatch {
                srtp: Some(SrtpPolicy::Required),
                ..SipAccountPatch::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            srtp().await.unwrap(),
            SrtpPolicy::Required,
            "policy changed"
        );
        assert!(
            s.user_srtp_cached(&acme.tenant_id, "no-such-user")
                .await
                .is_err(),
            "an unknown user is an error, not a default"
        );
    }
);
