//! Channels (issue #19): provider configuration checked per kind, secrets sealed under
//! the store's key ring (readable after a restart with the same ring only), merge
//! patches that keep unmentioned secrets, removal that disables a channel with
//! conversations, and the webhook lookup by id. On both backends; part of the
//! `storage` test binary.

use std::sync::Arc;

use parley_cases::conversations::channels::{ChannelPatch, Removed};
use parley_cases::conversations::{InboundMessage, NewChannel, Sender};
use parley_cases::{Error, Role};
use serde_json::json;

use crate::common;
use crate::on_both;
use crate::user;

fn ring() -> Arc<parley_vault::KeyRing> {
    Arc::new(parley_vault::KeyRing::new(1, [0x42; 32]))
}

on_both!(
    channel_secrets_are_sealed_patched_and_channels_disabled_not_deleted,
    |h| {
        let store = h.store.clone().with_secret_keys(ring());
        let acme = h.tenant("acme").await;
        let ann = user(&store, &acme, "ann@acme.test", Role::Agent).await;
        let new = || NewChannel {
            kind: "whatsapp".into(),
            name: "WhatsApp".into(),
            queue: None,
            team_id: None,
            settings: Some(json!({"phone_number_id": "106", "access_token": "tok-1",
            "app_secret": "sec-1", "verify_token": "ver-1"})),
        };
        let e = store.create_channel(&ann, new()).await.unwrap_err();
        assert!(matches!(e, Error::Forbidden { .. }), "{e}");
        let ch = store.create_channel(&acme, new()).await.unwrap();
        assert_eq!(
            ch.secret_fields,
            vec!["access_token", "app_secret", "verify_token"]
        );
        assert_eq!(ch.settings, json!({"phone_number_id": "106"}));
        let (raw,): (Option<String>,) =
            sqlx::query_as("SELECT secrets FROM channels WHERE id = $1")
                .bind(&ch.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(!raw.unwrap().contains("tok-1"));

        // Readable with the same ring after a reopen; not with another one.
        let again = h.reopen().await.with_secret_keys(ring());
        let (tenant, found) = again.webhook_channel(&ch.id).await.unwrap().unwrap();
        assert_eq!(tenant, acme.tenant_id);
        assert_eq!(
            again.channel_config(&found).unwrap()["access_token"],
            "tok-1"
        );
        let other = h
            .reopen()
            .await
            .with_secret_keys(Arc::new(parley_vault::KeyRing::new(1, [1; 32])));
        let e = other.channel_config(&found).unwrap_err();
        assert!(matches!(e, Error::Secrets { .. }), "{e}");
        assert!(again.webhook_channel("nope").await.unwrap().is_none());

        // A merge patch keeps the secrets it does not mention.
        let patched = store
            .update_channel(
                &acme,
                &ch.id,
                ChannelPatch {
                    config: Some(
                        json!({"access_token": "tok-2", "api_base_url": "http://127.0.0.1:1"}),
                    ),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let full = store.channel_config(&patched).unwrap();
        assert_eq!(full["access_token"], "tok-2");
        assert_eq!(full["app_secret"], "sec-1");
        assert_eq!(full["api_base_url"], "http://127.0.0.1:1");
        let e = store
            .update_channel(
                &acme,
                &ch.id,
                ChannelPatch {
                    config: Some(json!({"nonsense": 1})),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "config.nonsense"),
            "{e}"
        );

        // Removal: disabled (kept) once it has a conversation.
        store
            .ingest(
                &acme,
                InboundMessage {
                    channel_id: ch.id.clone(),
                    thread_key: "+15550100777".into(),
                    sender: Sender {
                        identity: Some(parley_cases::customers::RawIdentity {
                            kind: "whatsapp".into(),
                            value: "+15550100999".into(),
                        }),
                        ..Default::default()
                    },
                    text: "hi".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.remove_channel(&acme, &ch.id).await.unwrap(),
            Removed::Disabled
        );
        assert!(!store.channel(&acme, &ch.id).await.unwrap().enabled);
        let back = store
            .update_channel(
                &acme,
                &ch.id,
                ChannelPatch {
                    enabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(back.enabled);
        let spare = store
            .create_channel(
                &acme,
                NewChannel {
                    kind: "api".into(),
                    name: "Shop".into(),
                    queue: None,
                    team_id: None,
                    settings: Some(json!({"signing_secret": "k"})),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.remove_channel(&acme, &spare.id).await.unwrap(),
            Removed::Deleted
        );
        assert!(store.webhook_channel(&spare.id).await.unwrap().is_none());
    }
);
