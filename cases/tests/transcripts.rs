//! Call transcripts and speech settings, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use parley_cases::customers::{Consent, NewCustomer, RawIdentity};
use parley_cases::timeline::NewInteraction;
use parley_cases::transcripts::{SpeechSettings, TranscriptSegment};
use parley_cases::{Actor, Role};

fn seg(speaker: &str, start: i64, text: &str, sentiment: f64) -> TranscriptSegment {
    TranscriptSegment {
        speaker: speaker.into(),
        start_ms: start,
        end_ms: start + 1500,
        text: text.into(),
        sentiment,
        live: true,
    }
}

async fn call_interaction(h: &common::Harness, a: &Actor, transcript: &str) -> (String, String) {
    let c = h
        .store
        .create_customer(
            a,
            NewCustomer {
                name: "Ann".into(),
                identities: vec![RawIdentity {
                    kind: "phone".into(),
                    value: "+15550123".into(),
                }],
                consent: Consent::default(),
            },
        )
        .await
        .unwrap();
    let body = serde_json::json!({ "summary": "Call", "transcript": transcript }).to_string();
    let i = h
        .store
        .add_interaction(
            a,
            &c.id,
            NewInteraction {
                kind: "call".into(),
                channel: "voice".into(),
                direction: "inbound".into(),
                body,
                attachments: vec![],
                case_id: None,
                occurred_at: None,
                sentiment: Some(-0.4),
                intent: Some("cancel".into()),
                tags: vec!["transcribed".into()],
            },
        )
        .await
        .unwrap();
    (c.id, i.id)
}

on_both!(speech_settings_default_off_then_set_and_audited, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("other").await;
    let s = h.store.speech_settings(&a).await.unwrap();
    assert!(!s.transcription && s.require_consent);
    assert!(s.alert_phrases.contains(&"lawyer".to_owned()));
    let mut events = h.store.subscribe();
    let set = h
        .store
        .set_speech_settings(
            &a,
            SpeechSettings {
                transcription: true,
                require_consent: false,
                alert_phrases: vec!["  Cancel   My Account ".into(), "refund".into(), "".into()],
                ..SpeechSettings::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set.alert_phrases, vec!["cancel my account", "refund"]);
    assert!(!set.require_consent);
    assert_eq!(h.store.speech_settings(&a).await.unwrap(), set);
    // Updating again replaces.
    let off = h
        .store
        .set_speech_settings(
            &a,
            SpeechSettings {
                transcription: false,
                require_consent: true,
                alert_phrases: vec![],
                ..SpeechSettings::default()
            },
        )
        .await
        .unwrap();
    assert!(!h.store.speech_settings(&a).await.unwrap().transcription);
    assert!(off.alert_phrases.is_empty());
    // Another tenant is untouched.
    assert!(!h.store.speech_settings(&b).await.unwrap().transcription);
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "speech.settings_changed");
    assert!(e.visible_to(&a.tenant_id, Role::Supervisor, None));
    assert!(!e.visible_to(&a.tenant_id, Role::Agent, None));
    let log = h
        .store
        .audit_log(&a, &parley_cases::audit::AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(
        log.items
            .iter()
            .filter(|e| e.action == "speech_settings.update")
            .count(),
        2
    );
});

// Issue 16: a tenant names the speech model (and language) its calls are transcribed
// with; stored by migration 0018, validated, defaulting to `auto` and detection.
on_both!(speech_settings_name_the_tenants_model_and_language, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("other").await;
    let s = h.store.speech_settings(&a).await.unwrap();
    assert_eq!((s.model.as_str(), s.language.as_deref()), ("auto", None));
    let set = h
        .store
        .set_speech_settings(
            &a,
            SpeechSettings {
                transcription: true,
                model: " whisper-base-q8_0 ".into(),
                language: Some("ES".into()),
                ..SpeechSettings::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set.model, "whisper-base-q8_0");
    assert_eq!(set.language.as_deref(), Some("es"));
    assert_eq!(h.store.speech_settings(&a).await.unwrap(), set);
    assert_eq!(h.store.speech_settings(&b).await.unwrap().model, "auto");
    // "auto" (or empty) as a language means detection.
    let detect = h
        .store
        .set_speech_settings(
            &a,
            SpeechSettings {
                language: Some("auto".into()),
                ..set.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(detect.language, None);
    assert_eq!(h.store.speech_settings(&a).await.unwrap().language, None);
    for bad in [
        SpeechSettings {
            model: "../../etc/passwd".into(),
            ..set.clone()
        },
        SpeechSettings {
            model: "".into(),
            ..set.clone()
        },
        SpeechSettings {
            language: Some("spanish".into()),
            ..set.clone()
        },
        SpeechSettings {
            language: Some("e1".into()),
            ..set.clone()
        },
    ] {
        let e = h.store.set_speech_settings(&a, bad.clone()).await;
        assert!(e.is_err(), "{bad:?} accepted");
    }
    assert_eq!(h.store.speech_settings(&a).await.unwrap().language, None);
    // Settings written before the columns existed read as auto / detected: JSON
    // without the fields too.
    let old: SpeechSettings = serde_json::from_str(
        r#"{"transcription":true,"require_consent":false,"alert_phrases":[]}"#,
    )
    .unwrap();
    assert_eq!((old.model.as_str(), old.language), ("auto", None));
});

on_both!(transcript_segments_are_stored_searchable_and_erased, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("other").await;
    let (customer, id) = call_interaction(
        h,
        &a,
        "Caller: I want to cancel my account\nAgent: I can help with that",
    )
    .await;
    let segs = vec![
        seg("caller", 900, "I want to cancel my account", -0.3),
        seg("agent", 3000, "I can help with that", 0.4),
    ];
    assert_eq!(h.store.save_transcript(&a, &id, &segs).await.unwrap(), 2);
    assert_eq!(h.store.transcript(&a, &id).await.unwrap(), segs);
    // Tenant isolation: the other tenant sees nothing and cannot write to it.
    // Another tenant's interaction does not exist for it (regression: it was an empty
    // transcript, unlike every other cross-tenant read).
    assert!(matches!(
        h.store.transcript(&b, &id).await,
        Err(parley_cases::Error::NotFound { .. })
    ));
    assert!(h.store.save_transcript(&b, &id, &segs).await.is_err());
    // Bad speakers are refused.
    assert!(
        h.store
            .save_transcript(&a, &id, &[seg("robot", 0, "x", 0.0)])
            .await
            .is_err()
    );
    // The transcript text is in the interaction body: full-text search finds it.
    let hits = h
        .store
        .search_interactions(&a, "cancel account", None)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].intent.as_deref(), Some("cancel"));
    // GDPR erasure removes the segments with the bodies.
    h.store.erase_customer(&a, &customer).await.unwrap();
    assert!(h.store.transcript(&a, &id).await.unwrap().is_empty());
});

on_both!(live_segments_and_alerts_are_published_not_stored, |h| {
    let a = h.tenant("acme").await;
    let mut events = h.store.subscribe();
    let s = seg("caller", 100, "I will call my lawyer", -0.2);
    h.store
        .publish_transcript_segment(&a, "call-1", Some("cust-1"), &["agent-1".into()], &s)
        .unwrap();
    h.store.publish_transcript_alert(
        &a,
        "call-1",
        &serde_json::json!({"kind": "phrase", "phrase": "lawyer"}),
    );
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "transcript.segment");
    assert_eq!(e.customer_id.as_deref(), Some("cust-1"));
    assert_eq!(e.data["segment"]["text"], "I will call my lawyer");
    assert_eq!(e.data["call_id"], "call-1");
    assert!(e.visible_to(&a.tenant_id, Role::Agent, Some("agent-1")));
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "transcript.alert");
    assert!(!e.visible_to(&a.tenant_id, Role::Agent, Some("agent-1")));
    assert!(e.visible_to(&a.tenant_id, Role::Supervisor, Some("sup-1")));
    assert!(
        h.store
            .publish_transcript_segment(&a, "call-1", None, &[], &seg("robot", 0, "x", 0.0))
            .is_err()
    );
});

// Regression: every agent of the tenant received every call's live transcript.
on_both!(transcript_segments_reach_only_the_agents_on_the_call, |h| {
    let a = h.tenant("acme").await;
    let b = h.tenant("other").await;
    let mut events = h.store.subscribe();
    let s = seg("caller", 0, "my card number is", 0.0);
    h.store
        .publish_transcript_segment(&a, "call-1", None, &["agent-1".into()], &s)
        .unwrap();
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "transcript.segment");
    // (role, user) -> sees it
    let cases = [
        (Role::Agent, Some("agent-1"), true),
        (Role::Agent, Some("agent-2"), false),
        (Role::Agent, None, false),
        (Role::Supervisor, Some("sup-1"), true),
        (Role::Admin, Some("admin-1"), true),
    ];
    for (role, user, want) in cases {
        assert_eq!(
            e.visible_to(&a.tenant_id, role, user),
            want,
            "{role} {user:?}"
        );
    }
    // Another tenant's admin, even with a listed user id, sees nothing.
    assert!(!e.visible_to(&b.tenant_id, Role::Admin, Some("agent-1")));
    assert!(!e.visible_to(&b.tenant_id, Role::Agent, Some("agent-1")));
    // A call with no agent yet (IVR): supervisors only.
    h.store
        .publish_transcript_segment(&a, "call-2", None, &[], &s)
        .unwrap();
    let e = events.recv().await.unwrap();
    assert!(!e.visible_to(&a.tenant_id, Role::Agent, Some("agent-1")));
    assert!(e.visible_to(&a.tenant_id, Role::Supervisor, Some("sup-1")));
});

on_both!(
    the_per_queue_toggle_defaults_on_is_set_audited_and_tenant_scoped,
    |h| {
        let a = h.tenant("acme").await;
        let b = h.tenant("other").await;
        let q = h
            .store
            .create_queue(
                &a,
                serde_json::from_value(serde_json::json!({"name": "support"})).unwrap(),
            )
            .await
            .unwrap();
        // No setting: the queue follows the tenant.
        assert!(h.store.queue_transcription(&a, &q.id).await.unwrap());
        assert!(
            !h.store
                .set_queue_transcription(&a, &q.id, false)
                .await
                .unwrap()
        );
        assert!(!h.store.queue_transcription(&a, &q.id).await.unwrap());
        // Set again (upsert), then back on.
        h.store
            .set_queue_transcription(&a, &q.id, false)
            .await
            .unwrap();
        h.store
            .set_queue_transcription(&a, &q.id, true)
            .await
            .unwrap();
        assert!(h.store.queue_transcription(&a, &q.id).await.unwrap());
        // Another tenant cannot switch it, and an unknown queue is not found.
        assert!(matches!(
            h.store.set_queue_transcription(&b, &q.id, false).await,
            Err(parley_cases::Error::NotFound { .. })
        ));
        assert!(h.store.queue_transcription(&a, &q.id).await.unwrap());
        assert!(
            h.store
                .set_queue_transcription(&a, "nope", false)
                .await
                .is_err()
        );
        let log = h
            .store
            .audit_log(&a, &parley_cases::audit::AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(
            log.items
                .iter()
                .filter(|e| e.action == "queue_speech.update")
                .count(),
            3
        );
        // Deleting the queue removes its setting.
        h.store
            .set_queue_transcription(&a, &q.id, false)
            .await
            .unwrap();
        h.store.delete_queue(&a, &q.id).await.unwrap();
    }
);

// Regression: a fresh install's first call to the demo number showed no transcript,
// because the demo tenant kept the default settings (transcription off, consent
// required from a customer record the caller does not have).
on_both!(demo_tenant_transcribes_its_callers, |h| {
    parley_cases::demo::seed_demo(&h.store)
        .await
        .unwrap()
        .unwrap();
    let route = h.store.route_number("15550100").await.unwrap().unwrap();
    let actor = Actor::system(&route.number.tenant_id);
    let s = h.store.speech_settings(&actor).await.unwrap();
    assert!(s.transcription, "the demo transcribes calls");
    assert!(!s.require_consent, "the demo's callers consent");
    assert!(s.alert_phrases.contains(&"lawyer".to_owned()));
});
