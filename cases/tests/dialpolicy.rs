//! The outbound dial policy's storage, on SQLite and PostgreSQL: the default until set,
//! an audited replacement kept per tenant, validation, refusals audited and the burst
//! alert published to admins only.
#![allow(clippy::unwrap_used)]

mod common;

use parley_cases::audit::AuditFilter;
use parley_cases::dialpolicy::{
    DialOrigin, DialOverride, DialPath, DialPolicy, NumberKind, Refusal,
};
use parley_cases::{Error, Role};

on_both!(policy_is_per_tenant_audited_and_validated, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("beta").await;
    assert_eq!(
        h.store.dial_policy(&a).await.unwrap(),
        DialPolicy::default()
    );
    let mut events = h.store.subscribe();
    let p = DialPolicy {
        country: "gb".into(),
        international: true,
        allow_prefixes: vec!["+33".into()],
        block_types: vec![NumberKind::PremiumRate, NumberKind::Mobile],
        max_concurrent_per_tenant: 3,
        overrides: vec![DialOverride {
            role: Some(Role::Agent),
            international: Some(false),
            ..DialOverride::default()
        }],
        ..DialPolicy::default()
    };
    let saved = h.store.set_dial_policy(&a, p.clone()).await.unwrap();
    assert_eq!(saved.country, "GB");
    assert_eq!(h.store.dial_policy(&a).await.unwrap(), saved);
    // Another tenant keeps the default.
    assert_eq!(
        h.store.dial_policy(&b).await.unwrap(),
        DialPolicy::default()
    );
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "dial_policy.changed");
    assert!(!e.visible_to(&a.tenant_id, Role::Supervisor, None));
    assert!(e.visible_to(&a.tenant_id, Role::Admin, None));
    // Replaced, not merged.
    let again = DialPolicy {
        max_calls_per_minute: 5,
        ..DialPolicy::default()
    };
    assert_eq!(
        h.store.set_dial_policy(&a, again.clone()).await.unwrap(),
        again
    );
    let log = h
        .store
        .audit_log(&a, &AuditFilter::default())
        .await
        .unwrap();
    let updates: Vec<_> = log
        .items
        .iter()
        .filter(|e| e.action == "dial_policy.update")
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].before.as_ref().unwrap()["country"], "GB");
    assert_eq!(
        updates[0].after.as_ref().unwrap()["max_calls_per_minute"],
        5
    );
    // Invalid documents are refused with the field.
    let bad = DialPolicy {
        block_prefixes: vec!["881".into()],
        ..DialPolicy::default()
    };
    match h.store.set_dial_policy(&a, bad).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "prefixes"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.store.dial_policy(&a).await.unwrap(), again);
});

on_both!(refusals_are_audited_and_bursts_alert_admins, |h| {
    let a = h.tenant("acme").await;
    let origin = DialOrigin {
        tenant_id: a.tenant_id.clone(),
        user_id: None,
        role: None,
        path: DialPath::IvrTransfer,
    };
    let r = Refusal::BlockedPrefix {
        prefix: "+881".into(),
    };
    h.store
        .audit_dial_refusal(&origin, "+881612345678", &r)
        .await
        .unwrap();
    let mut events = h.store.subscribe();
    h.store
        .alert_dial_refusals(&a.tenant_id, 5, 60, &r)
        .await
        .unwrap();
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "dial.refusal_burst");
    assert_eq!(e.data["refusals"], 5);
    assert_eq!(e.data["last_rule"], "blocked_prefix");
    assert!(!e.visible_to(&a.tenant_id, Role::Supervisor, None));
    let log = h
        .store
        .audit_log(&a, &AuditFilter::default())
        .await
        .unwrap();
    let refused = log
        .items
        .iter()
        .find(|e| e.action == "dial.refused")
        .unwrap();
    assert_eq!(refused.entity_kind, "dial");
    assert_eq!(refused.entity_id, "ivr_transfer");
    let after = refused.after.as_ref().unwrap();
    assert_eq!(after["refusal"]["rule"], "blocked_prefix");
    assert_eq!(after["number"], "+881612345678");
    assert!(log.items.iter().any(|e| e.action == "dial.refusal_burst"));
});

// #13: the daily spend estimate — rate table, currency and cap kept with the policy; the
// day's tally of finished calls kept per tenant and per UTC day; a refusal on the cap
// audited with its rule.
on_both!(daily_spend_tally_is_per_tenant_and_day, |h| {
    use parley_cases::dialpolicy::{DAY_MS, DialCounters, DialRate};
    let a = h.tenant("acme").await;
    let b = h.tenant("beta").await;
    let p = DialPolicy {
        rates: vec![DialRate {
            prefix: "+1".into(),
            per_minute_milli: 20,
        }],
        currency: "USD".into(),
        daily_spend_cap_milli: 100,
        ..DialPolicy::default()
    };
    let saved = h.store.set_dial_policy(&a, p.clone()).await.unwrap();
    assert_eq!(saved, p);
    assert_eq!(
        h.store.dial_policy(&a).await.unwrap().daily_spend_cap_milli,
        100
    );
    let now = h.store.now().0;
    let t = &a.tenant_id;
    assert_eq!(h.store.dial_spend_on(t, now).await.unwrap(), 0);
    h.store.add_dial_spend(t, now, 40).await.unwrap();
    h.store.add_dial_spend(t, now, 25).await.unwrap();
    h.store.add_dial_spend(&b.tenant_id, now, 7).await.unwrap();
    assert_eq!(h.store.dial_spend_on(t, now).await.unwrap(), 65);
    assert_eq!(h.store.dial_spend_on(&b.tenant_id, now).await.unwrap(), 7);
    // The next UTC day starts afresh.
    let tomorrow = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
    assert_eq!(h.store.dial_spend_on(t, tomorrow).await.unwrap(), 0);
    // With the stored tally the decision refuses a call whose first minute passes the cap.
    let origin = DialOrigin {
        tenant_id: t.clone(),
        user_id: None,
        role: None,
        path: DialPath::ClickToCall,
    };
    let mut c = DialCounters::default();
    let spent = h.store.dial_spend_on(t, now).await.unwrap();
    let ok = c.admit(&p, "+1 201 555 0123", &origin, now, spent).unwrap();
    let r = c
        .admit(&p, "+1 201 555 0124", &origin, now, spent)
        .unwrap_err();
    assert_eq!(r.rule(), "daily_spend");
    h.store
        .audit_dial_refusal(&origin, "+1 201 555 0124", &r)
        .await
        .unwrap();
    let cost = c.release(t, None, ok.call, now + 61_000);
    assert_eq!(cost, 40, "two started minutes");
    let log = h
        .store
        .audit_log(&a, &AuditFilter::default())
        .await
        .unwrap();
    let refused = log
        .items
        .iter()
        .find(|e| e.action == "dial.refused")
        .unwrap();
    let after = refused.after.as_ref().unwrap();
    assert_eq!(after["refusal"]["rule"], "daily_spend");
    assert_eq!(after["refusal"]["cap_milli"], 100);
    assert_eq!(after["refusal"]["estimate_milli"], 85);
});
