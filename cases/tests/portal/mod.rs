//! The customer's own side (issue #17): the web chat's pre-chat email kept as an
//! unverified claim (never an identity, never a merge), transcript requests, and the
//! customer portal's one-time sign-in link — redeemed once, proving the address and
//! only then joining the visitors who claimed it — its stream (no internal notes) and
//! writing through the one ingestion path. On both backends; part of the `storage`
//! test binary.

use parley_cases::conversations::{NewReply, Sender};
use parley_cases::customers::RawIdentity;
use parley_cases::identity::IdentityKind;
use parley_cases::{Actor, Error, Role, Store};

use crate::common;
use crate::customer;
use crate::on_both;
use crate::user;

/// A web chat visitor who typed `email` in the pre-chat form: their conversation id
/// and customer id.
async fn visitor(s: &Store, sys: &Actor, key: &str, email: &str) -> (String, String) {
    let ch = s.web_chat_channel(sys).await.unwrap();
    let sender = Sender {
        customer_id: None,
        identity: Some(RawIdentity {
            kind: "web_chat".into(),
            value: key.into(),
        }),
        name: Some(format!("Visitor {key}")),
    };
    let (conv, _) = s
        .find_or_open_conversation(sys, &ch.id, key, &sender)
        .await
        .unwrap();
    s.claim_contact(
        sys,
        &conv.customer_id,
        "email",
        email,
        "web_chat",
        Some(&conv.id),
    )
    .await
    .unwrap();
    (conv.id, conv.customer_id)
}

on_both!(a_claimed_email_is_kept_unverified_and_never_merges, |h| {
    let acme = h.tenant("acme").await;
    let sys = Actor::system(&acme.tenant_id);
    let owner = customer(&h.store, &acme, "Maria", &[("email", "maria@example.com")]).await;
    let (conv, cust) = visitor(&h.store, &sys, "v1", " Maria@Example.com ").await;
    // Not merged into the owner of the address, and not an identity.
    assert_ne!(cust, owner.id);
    let c = h.store.customer(&sys, &cust).await.unwrap();
    assert!(
        c.identities.iter().all(|i| i.kind != IdentityKind::Email),
        "{c:?}"
    );
    let claims = h.store.claims(&sys, &cust).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].value, "maria@example.com");
    assert_eq!(claims[0].conversation_id.as_deref(), Some(conv.as_str()));
    assert!(claims[0].verified_at.is_none());
    // Idempotent.
    h.store
        .claim_contact(&sys, &cust, "email", "maria@example.com", "web_chat", None)
        .await
        .unwrap();
    assert_eq!(h.store.claims(&sys, &cust).await.unwrap().len(), 1);
    // Not an address: refused.
    assert!(matches!(
        h.store
            .claim_contact(&sys, &cust, "email", "not an address", "web_chat", None)
            .await,
        Err(Error::Invalid { .. })
    ));
    // The transcript goes to the claimed address unless another is given.
    let r = h.store.request_transcript(&sys, &conv, None).await.unwrap();
    assert_eq!(r.email, "maria@example.com");
    let r = h
        .store
        .request_transcript(&sys, &conv, Some("Other@Example.com"))
        .await
        .unwrap();
    assert_eq!(r.email, "other@example.com");
    assert_eq!(
        h.store
            .transcript_requests(&sys, &conv)
            .await
            .unwrap()
            .len(),
        2
    );
    // A visitor who gave no address: nowhere to send it.
    let ch = h.store.web_chat_channel(&sys).await.unwrap();
    let anon = Sender {
        customer_id: None,
        identity: Some(RawIdentity {
            kind: "web_chat".into(),
            value: "v-anon".into(),
        }),
        name: None,
    };
    let (anon_conv, _) = h
        .store
        .find_or_open_conversation(&sys, &ch.id, "v-anon", &anon)
        .await
        .unwrap();
    assert!(matches!(
        h.store.request_transcript(&sys, &anon_conv.id, None).await,
        Err(Error::Invalid { field, .. }) if field == "email"
    ));
});

on_both!(a_portal_link_signs_in_once_and_joins_the_claimants, |h| {
    let acme = h.tenant("acme").await;
    let sys = Actor::system(&acme.tenant_id);
    let agent = user(&h.store, &acme, "ann@acme.test", Role::Agent).await;
    // Two chats by someone who typed the same address; nobody owns it yet.
    let (c1, v1) = visitor(&h.store, &sys, "v1", "zoe@example.com").await;
    let (c2, v2) = visitor(&h.store, &sys, "v2", "zoe@example.com").await;
    for (c, text) in [(&c1, "first chat"), (&c2, "second chat")] {
        let conv = h.store.conversation(&sys, c).await.unwrap();
        h.store
            .ingest(
                &sys,
                parley_cases::conversations::InboundMessage {
                    channel_id: conv.channel_id,
                    thread_key: conv.thread_key,
                    sender: Sender {
                        customer_id: Some(conv.customer_id),
                        ..Sender::default()
                    },
                    text: text.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    h.store
        .reply(
            &agent,
            &c1,
            NewReply {
                text: "an internal note".into(),
                private: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let link = h
        .store
        .portal_request_link(&sys, "Zoe@Example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.email, "zoe@example.com");
    // A wrong token, or one of another tenant: refused.
    assert!(matches!(
        h.store.portal_redeem(&sys, "pl_wrong").await,
        Err(Error::Unauthenticated)
    ));
    let globex = h.tenant("globex").await;
    assert!(matches!(
        h.store
            .portal_redeem(&Actor::system(&globex.tenant_id), &link.token)
            .await,
        Err(Error::Unauthenticated)
    ));
    let s = h.store.portal_redeem(&sys, &link.token).await.unwrap();
    // Once only.
    assert!(matches!(
        h.store.portal_redeem(&sys, &link.token).await,
        Err(Error::Unauthenticated)
    ));
    // The oldest claimant now owns the address; the other is merged into them.
    assert_eq!(s.customer_id, v1);
    let c = h.store.customer(&sys, &v1).await.unwrap();
    assert!(
        c.identities
            .iter()
            .any(|i| i.kind == IdentityKind::Email && i.value == "zoe@example.com")
    );
    let merged = h.store.customer(&sys, &v2).await.unwrap();
    assert_eq!(merged.merged_into.as_deref(), Some(v1.as_str()));
    assert!(
        h.store.claims(&sys, &v1).await.unwrap()[0]
            .verified_at
            .is_some()
    );

    // The session: both conversations, no note.
    let session = h.store.portal_session(&s.token).await.unwrap();
    assert_eq!(session.customer_id, v1);
    let stream = h.store.portal_stream(&session).await.unwrap();
    assert_eq!(stream.conversations.len(), 2);
    let texts: Vec<&str> = stream
        .conversations
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.text.as_str()))
        .collect();
    assert!(
        texts.contains(&"first chat") && texts.contains(&"second chat"),
        "{texts:?}"
    );
    assert!(!texts.contains(&"an internal note"));
    // Writing: in one of theirs, or a new portal thread; never in someone else's.
    let m = h
        .store
        .portal_write(&session, Some(&c2), "more".into(), None)
        .await
        .unwrap();
    assert_eq!(m.conversation_id, c2);
    let fresh = h
        .store
        .portal_write(&session, None, "a new question".into(), Some("k1".into()))
        .await
        .unwrap();
    assert!(fresh.conversation_id != c1 && fresh.conversation_id != c2);
    let again = h
        .store
        .portal_write(&session, None, "a new question".into(), Some("k1".into()))
        .await
        .unwrap();
    assert_eq!(again.id, fresh.id);
    let (other, _) = visitor(&h.store, &sys, "v3", "someone@example.com").await;
    assert!(matches!(
        h.store
            .portal_write(&session, Some(&other), "hi".into(), None)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        h.store
            .portal_stream(&session)
            .await
            .unwrap()
            .conversations
            .len(),
        3
    );
    // Signing out ends it.
    h.store.portal_sign_out(&s.token).await.unwrap();
    assert!(matches!(
        h.store.portal_session(&s.token).await,
        Err(Error::Unauthenticated)
    ));
});

on_both!(
    portal_links_to_one_address_are_limited_and_an_owner_signs_in,
    |h| {
        let acme = h.tenant("acme").await;
        let sys = Actor::system(&acme.tenant_id);
        let owner = customer(&h.store, &acme, "Kim", &[("email", "kim@example.com")]).await;
        let (_, claimant) = visitor(&h.store, &sys, "v9", "kim@example.com").await;
        let mut links = Vec::new();
        for _ in 0..parley_cases::portal::PORTAL_LINKS_PER_HOUR {
            links.push(
                h.store
                    .portal_request_link(&sys, "kim@example.com")
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(
            h.store
                .portal_request_link(&sys, "kim@example.com")
                .await
                .unwrap()
                .is_none(),
            "the sixth link within the hour is not issued"
        );
        // The owner of the address signs in; the visitor who claimed it joins them.
        let s = h.store.portal_redeem(&sys, &links[0].token).await.unwrap();
        assert_eq!(s.customer_id, owner.id);
        assert_eq!(
            h.store
                .customer(&sys, &claimant)
                .await
                .unwrap()
                .merged_into
                .as_deref(),
            Some(owner.id.as_str())
        );
        // An address nobody has: a new customer with it.
        let link = h
            .store
            .portal_request_link(&sys, "new@example.com")
            .await
            .unwrap()
            .unwrap();
        let s = h.store.portal_redeem(&sys, &link.token).await.unwrap();
        let c = h.store.customer(&sys, &s.customer_id).await.unwrap();
        assert!(c.identities.iter().any(|i| i.value == "new@example.com"));
    }
);
