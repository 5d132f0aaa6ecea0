//! Callback requests (kept across restarts): create, progress, cancel, list; audited,
//! on the customer's timeline, tenant-isolated. On both backends; part of the
//! `storage` test binary.

use parley_cases::Error;
use parley_cases::audit::AuditFilter;
use parley_cases::callbacks::{CallbackFilter, CallbackState, NewCallback};
use parley_cases::queues::QueueInput;

use crate::common;
use crate::customer;
use crate::on_both;

fn new_cb(queue_id: &str, customer_id: &str, item: &str, since_s: i64) -> NewCallback {
    NewCallback {
        queue_id: queue_id.into(),
        customer_id: customer_id.into(),
        item: item.into(),
        number: "+15550123".into(),
        since: parley_cases::Timestamp(common::T0.0 - since_s * 1000),
        priority: 2,
    }
}

on_both!(callbacks_keep_their_place_progress_and_cancel, |h| {
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "sales" })).unwrap();
    let sales = h.store.create_queue(&acme, q).await.unwrap();
    let ann = customer(&h.store, &acme, "Ann", &[("phone", "+15550123")]).await;
    let bob = customer(&h.store, &acme, "Bob", &[("phone", "+15550124")]).await;

    // Validation: the queue and the customer must be the tenant's; a number is needed.
    assert!(matches!(
        h.store
            .create_callback(&other, new_cb(&sales.id, &ann.id, "i", 0))
            .await,
        Err(Error::NotFound { .. })
    ));
    let mut bad = new_cb(&sales.id, &ann.id, "i", 0);
    bad.number = "  ".into();
    assert!(matches!(
        h.store.create_callback(&acme, bad).await,
        Err(Error::Invalid { field, .. }) if field == "number"
    ));

    // Bob waited 30 s, Ann 60 s: Ann's place is first.
    let b = h
        .store
        .create_callback(&acme, new_cb(&sales.id, &bob.id, "2/call-b", 30))
        .await
        .unwrap();
    let a = h
        .store
        .create_callback(&acme, new_cb(&sales.id, &ann.id, "1/call-a", 60))
        .await
        .unwrap();
    assert_eq!(a.state, CallbackState::Waiting);
    assert_eq!(a.since.0, common::T0.0 - 60_000);
    assert_eq!(a.priority, 2);
    let open = h.store.open_callbacks().await.unwrap();
    assert_eq!(
        open.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [a.id.as_str(), b.id.as_str()]
    );
    assert!(
        h.store
            .list_callbacks(&other, &CallbackFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        h.store.callback(&other, &a.id).await,
        Err(Error::NotFound { .. })
    ));

    // Ann's is dialled, fails once (back to waiting, keeping the place), then connects.
    let d = h
        .store
        .callback_progress(&acme, &a.id, CallbackState::Dialling, 1, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.state, d.attempts), (CallbackState::Dialling, 1));
    // Dialling cannot be cancelled.
    assert!(matches!(
        h.store.cancel_callback(&acme, &a.id).await,
        Err(Error::InvalidTransition { .. })
    ));
    h.store
        .callback_progress(&acme, &a.id, CallbackState::Waiting, 1, Some("busy"))
        .await
        .unwrap();
    let w = h.store.callback(&acme, &a.id).await.unwrap();
    assert_eq!(w.last_error.as_deref(), Some("busy"));
    assert_eq!(w.since, a.since);
    h.store
        .callback_progress(&acme, &a.id, CallbackState::Connected, 2, None)
        .await
        .unwrap();
    // A closed callback stays closed.
    assert_eq!(
        h.store
            .callback_progress(&acme, &a.id, CallbackState::Waiting, 3, None)
            .await
            .unwrap(),
        None
    );
    let done = h.store.callback(&acme, &a.id).await.unwrap();
    assert_eq!((done.state, done.attempts), (CallbackState::Connected, 2));

    // Bob's is cancelled; then it cannot be cancelled again.
    let c = h.store.cancel_callback(&acme, &b.id).await.unwrap();
    assert_eq!(c.state, CallbackState::Cancelled);
    assert!(matches!(
        h.store.cancel_callback(&acme, &b.id).await,
        Err(Error::InvalidTransition { .. })
    ));
    assert!(h.store.open_callbacks().await.unwrap().is_empty());

    // Filters.
    let f = CallbackFilter {
        state: Some(CallbackState::Cancelled),
        ..Default::default()
    };
    let l = h.store.list_callbacks(&acme, &f).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, b.id);
    let f = CallbackFilter {
        queue_id: Some("nope".into()),
        ..Default::default()
    };
    assert!(h.store.list_callbacks(&acme, &f).await.unwrap().is_empty());

    // Audited: create and complete for Ann's, create and cancel for Bob's.
    for (id, want) in [
        (&a.id, ["callback.complete", "callback.create"]),
        (&b.id, ["callback.cancel", "callback.create"]),
    ] {
        let log = h
            .store
            .audit_log(
                &acme,
                &AuditFilter {
                    entity_id: Some(id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut actions: Vec<&str> = log.items.iter().map(|e| e.action.as_str()).collect();
        actions.sort_unstable();
        assert_eq!(actions, want);
    }
    // On the timelines: requested and connected for Ann, requested and cancelled for Bob.
    for (cust, want) in [
        (&ann.id, ["Callback connected", "Callback requested"]),
        (&bob.id, ["Callback cancelled", "Callback requested"]),
    ] {
        let t = h.store.timeline(&acme, cust, None, None).await.unwrap();
        let mut s: Vec<String> = t
            .items
            .iter()
            .map(|i| {
                let v: serde_json::Value = serde_json::from_str(&i.body).unwrap();
                v["summary"].as_str().unwrap().to_owned()
            })
            .collect();
        s.sort_unstable();
        assert_eq!(s, want);
    }
});

on_both!(a_callback_links_to_the_call_it_was_asked_in, |h| {
    let acme = h.tenant("acme").await;
    let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "sales" })).unwrap();
    let sales = h.store.create_queue(&acme, q).await.unwrap();
    let ann = customer(&h.store, &acme, "Ann", &[("phone", "+15550123")]).await;
    let cb = h
        .store
        .create_callback(&acme, new_cb(&sales.id, &ann.id, "1/x", 0))
        .await
        .unwrap();
    let call = h
        .store
        .add_interaction(&acme, &ann.id, crate::msg("call", "voice", "inbound", "{}"))
        .await
        .unwrap();
    h.store
        .link_callback_interaction(&acme, &cb.id, &call.id)
        .await
        .unwrap();
    assert_eq!(
        h.store
            .callback(&acme, &cb.id)
            .await
            .unwrap()
            .interaction_id,
        Some(call.id.clone())
    );
    assert!(matches!(
        h.store
            .link_callback_interaction(&acme, &cb.id, "nope")
            .await,
        Err(Error::NotFound { .. })
    ));
});
