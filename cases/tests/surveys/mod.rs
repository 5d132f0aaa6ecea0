//! Post-call survey answers (CSAT) on call interactions, on both backends. Part of the
//! `storage` test binary.

use parley_cases::audit::AuditFilter;
use parley_cases::timeline::Csat;
use parley_cases::{Actor, Error};

use crate::common;
use crate::on_both;
use crate::{customer, msg};

on_both!(csat_is_stored_on_the_call_and_shown_on_the_timeline, |h| {
    let a = h.tenant("acme").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let call = h
        .store
        .add_interaction(&a, &c.id, msg("call", "voice", "inbound", "IVR call"))
        .await
        .unwrap();
    assert_eq!(call.csat, None);
    let mut events = h.store.subscribe();
    let csat = Csat {
        survey: "csat".into(),
        score: 4,
    };
    h.store
        .set_interaction_csat(&a, &call.id, &csat)
        .await
        .unwrap();
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.kind, "interaction.csat");
    assert_eq!(ev.customer_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(ev.data["score"], 4);
    let page = h.store.timeline(&a, &c.id, None, None).await.unwrap();
    assert_eq!(page.items[0].csat.as_ref(), Some(&csat));
    let json = serde_json::to_value(&page.items[0]).unwrap();
    assert_eq!(json["csat"]["score"], 4);
    assert_eq!(json["csat"]["survey"], "csat");
    // A second answer replaces the first; both are audited.
    let again = Csat {
        survey: "csat".into(),
        score: 2,
    };
    h.store
        .set_interaction_csat(&a, &call.id, &again)
        .await
        .unwrap();
    let page = h.store.timeline(&a, &c.id, None, None).await.unwrap();
    assert_eq!(page.items[0].csat.as_ref().map(|c| c.score), Some(2));
    let audit = h
        .store
        .audit_log(
            &a,
            &AuditFilter {
                entity_id: Some(call.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    let csats: Vec<_> = audit
        .iter()
        .filter(|r| r.action == "interaction.csat")
        .collect();
    assert_eq!(csats.len(), 2);
});

on_both!(csat_is_checked_and_tenant_scoped, |h| {
    let a = h.tenant("acme").await;
    let other = h.tenant("globex").await;
    let c = customer(&h.store, &a, "Ann", &[("phone", "+15550100")]).await;
    let call = h
        .store
        .add_interaction(&a, &c.id, msg("call", "voice", "inbound", "IVR call"))
        .await
        .unwrap();
    let note = h
        .store
        .add_interaction(&a, &c.id, msg("message", "whatsapp", "inbound", "hi"))
        .await
        .unwrap();
    let ok = Csat {
        survey: "csat".into(),
        score: 5,
    };
    for score in [0, 11] {
        let bad = Csat {
            survey: "csat".into(),
            score,
        };
        let e = h.store.set_interaction_csat(&a, &call.id, &bad).await;
        assert!(matches!(e, Err(Error::Invalid { .. })), "{score}: {e:?}");
    }
    let e = h.store.set_interaction_csat(&a, &note.id, &ok).await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // Another tenant cannot see or touch it: not found, not forbidden.
    let e = h.store.set_interaction_csat(&other, &call.id, &ok).await;
    assert!(matches!(e, Err(Error::NotFound { .. })), "{e:?}");
    let _: &Actor = &other;
    let page = h.store.timeline(&a, &c.id, None, None).await.unwrap();
    assert!(page.items.iter().all(|i| i.csat.is_none()));
});

on_both!(unknown_callers_share_one_customer_per_tenant, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("globex").await;
    let (x, y) = tokio::join!(
        h.store.unknown_caller_customer(&a),
        h.store.unknown_caller_customer(&a)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x, y, "concurrent first calls agree");
    assert_eq!(h.store.unknown_caller_customer(&a).await.unwrap(), x);
    let other = h.store.unknown_caller_customer(&b).await.unwrap();
    assert_ne!(other, x);
    let c = h.store.customer(&a, &x).await.unwrap();
    assert_eq!(c.name, parley_cases::callers::UNKNOWN_CALLERS);
    assert!(c.identities.is_empty());
    // A call can be filed on it.
    h.store
        .add_interaction(&a, &x, msg("call", "voice", "inbound", "anonymous call"))
        .await
        .unwrap();
    assert!(matches!(
        h.store.customer(&b, &x).await,
        Err(Error::NotFound { .. })
    ));
});
