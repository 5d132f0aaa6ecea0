//! Canned responses (issue 17, the inbox's reply templates) on both backends: the
//! library is per tenant, shortcuts are unique, bad templates store nothing, every change
//! is audited and published. Part of the `storage` test binary.

use parley_cases::Error;
use parley_cases::audit::AuditFilter;
use parley_cases::canned::NewCannedResponse;

use crate::common;
use crate::on_both;

fn new(shortcut: &str, body: &str) -> NewCannedResponse {
    NewCannedResponse {
        shortcut: shortcut.into(),
        title: format!("Title of {shortcut}"),
        body: body.into(),
    }
}

on_both!(canned_responses_are_a_per_tenant_audited_library, |h| {
    let a = h.tenant("acme").await;
    let other = h.tenant("globex").await;
    let mut events = h.store.subscribe();
    let hi = h
        .store
        .create_canned_response(&a, new("Hi", "Hello {{customer.first_name}}"))
        .await
        .unwrap();
    assert_eq!(hi.shortcut, "hi");
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.kind, "canned_response.created");
    assert_eq!(ev.data["body"], "Hello {{customer.first_name}}");
    // The same shortcut is a conflict in the tenant, free in another.
    assert!(matches!(
        h.store.create_canned_response(&a, new("hi", "again")).await,
        Err(Error::Conflict { .. })
    ));
    h.store
        .create_canned_response(&other, new("hi", "Hallo"))
        .await
        .unwrap();
    // A bad template stores nothing.
    assert!(matches!(
        h.store
            .create_canned_response(&a, new("bye", "Bye {{customer.ssn}}"))
            .await,
        Err(Error::Invalid { .. })
    ));
    let bye = h
        .store
        .create_canned_response(&a, new("bye", "Bye {{ customer.name }}"))
        .await
        .unwrap();
    let list = h.store.list_canned_responses(&a).await.unwrap();
    assert_eq!(
        list.iter().map(|c| c.shortcut.as_str()).collect::<Vec<_>>(),
        ["bye", "hi"]
    );
    assert_eq!(
        h.store.list_canned_responses(&other).await.unwrap().len(),
        1
    );
    // Another tenant's template does not exist for them.
    assert!(matches!(
        h.store.canned_response(&other, &hi.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.store.delete_canned_response(&other, &hi.id).await,
        Err(Error::NotFound { .. })
    ));
    // Renaming onto a taken shortcut is a conflict and changes nothing.
    assert!(matches!(
        h.store
            .update_canned_response(&a, &bye.id, new("hi", "x"))
            .await,
        Err(Error::Conflict { .. })
    ));
    let upd = h
        .store
        .update_canned_response(&a, &bye.id, new("goodbye", "Goodbye {{agent.name}}"))
        .await
        .unwrap();
    assert_eq!(h.store.canned_response(&a, &bye.id).await.unwrap(), upd);
    h.store.delete_canned_response(&a, &hi.id).await.unwrap();
    assert_eq!(h.store.list_canned_responses(&a).await.unwrap(), vec![upd]);
    let audit = h
        .store
        .audit_log(&a, &AuditFilter::default())
        .await
        .unwrap()
        .items;
    let actions: Vec<&str> = audit
        .iter()
        .filter(|r| r.action.starts_with("canned_response."))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    for x in [
        "canned_response.create",
        "canned_response.update",
        "canned_response.delete",
    ] {
        assert!(actions.contains(&x), "{x} in {actions:?}");
    }
});
