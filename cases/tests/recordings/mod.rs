//! Data at rest: erasure of files and numbers everywhere, recording retention on the
//! store's clock, calls a crash cut off, download authorisation, SQLite backup.

use std::path::{Path, PathBuf};

use parley_cases::callbacks::{CallbackState, NewCallback};
use parley_cases::cases::NewCase;
use parley_cases::dialpolicy::{DialOrigin, DialPath, Refusal};
use parley_cases::directory::NewUser;
use parley_cases::queues::{CallRecord, QueueInput};
use parley_cases::recordings::{LiveCall, RecordingRetention};
use parley_cases::timeline::{Attachment, NewInteraction};
use parley_cases::{Actor, Backend, Error, Role, Store, Timestamp};

use super::*;

const DAY: i64 = 86_400_000;

fn files_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("parley-files-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a file under `root` at `rel` and returns `rel`.
fn put(root: &Path, rel: &str) -> String {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"RIFF....WAVE sealed or not, bytes").unwrap();
    rel.to_owned()
}

fn call_with(attachments: Vec<Attachment>, body: &str, at: Option<Timestamp>) -> NewInteraction {
    NewInteraction {
        kind: "call".into(),
        channel: "voice".into(),
        direction: "inbound".into(),
        body: body.into(),
        attachments,
        case_id: None,
        occurred_at: at,
        sentiment: None,
        intent: None,
        tags: vec![],
    }
}

fn att(name: &str, loc: &str) -> Attachment {
    Attachment {
        name: name.into(),
        content_type: "audio/wav".into(),
        size: 33,
        location: Some(loc.into()),
    }
}

fn record(
    caller: &str,
    customer: Option<&str>,
    agent: Option<&str>,
    recording: Option<&str>,
    at: Timestamp,
) -> CallRecord {
    CallRecord {
        id: String::new(),
        call_id: format!("call-{}", uuid::Uuid::new_v4()),
        direction: "inbound".into(),
        caller: caller.into(),
        dialled: "+15550100".into(),
        customer_id: customer.map(Into::into),
        queue_id: None,
        agent_id: agent.map(Into::into),
        agents: vec![],
        started_at: at,
        enqueued_at: None,
        answered_at: None,
        ended_at: Timestamp(at.0 + 60_000),
        wait_ms: 0,
        talk_ms: 60_000,
        wrap_ms: 0,
        outcome: "answered".into(),
        hangup_side: None,
        hangup_cause: None,
        recording: recording.map(Into::into),
        sl_met: true,
    }
}

async fn count(s: &Store, sql: &str, t: &str, like: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(t)
        .bind(like)
        .fetch_one(s.pool())
        .await
        .unwrap();
    n
}

on_both!(
    erasure_removes_files_and_every_row_of_the_customers_numbers,
    |h| {
        let root = files_dir();
        let store = h.store.clone().with_files_dir(&root);
        let a = h.tenant("acme").await;
        let t = a.tenant_id.clone();
        let c = customer(
            &store,
            &a,
            "Vera Voicemail",
            &[("phone", "+15550177"), ("email", "vera@private.test")],
        )
        .await;
        let vm = put(&root, &format!("recordings/{t}/voicemail-aaaa.wav"));
        let rec = put(&root, &format!("recordings/{t}/call-bbbb.wav"));
        let tts = put(&root, "tts/00ff00ff00ff00ff.wav");
        let other = put(&root, &format!("recordings/{t}/call-other.wav"));
        store
            .add_interaction(
                &a,
                &c.id,
                call_with(
                    vec![att("voicemail.wav", &vm), att("call-recording.wav", &rec)],
                    r#"{"summary":"Callback requested","callback_request":{"number":"+15550177"}}"#,
                    None,
                ),
            )
            .await
            .unwrap();
        store
            .add_call_record(
                &a,
                record("+15550177", Some(&c.id), None, Some(&rec), h.store.now()),
            )
            .await
            .unwrap();
        // A call from their number filed nowhere (bare digits, as some trunks send them).
        store
            .add_call_record(&a, record("15550177", None, None, None, h.store.now()))
            .await
            .unwrap();
        // Someone else's call and recording stay.
        store
            .add_call_record(
                &a,
                record("+15550999", None, None, Some(&other), h.store.now()),
            )
            .await
            .unwrap();
        let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": "sales" })).unwrap();
        let sales = store.create_queue(&a, q).await.unwrap();
        let cb = store
            .create_callback(
                &a,
                NewCallback {
                    queue_id: sales.id.clone(),
                    customer_id: c.id.clone(),
                    item: "cb-item".into(),
                    number: "+15550177".into(),
                    since: h.store.now(),
                    priority: 0,
                },
            )
            .await
            .unwrap();
        store
            .open_live_call(
                &a,
                &LiveCall {
                    id: String::new(),
                    tenant_id: t.clone(),
                    call_id: "live-1".into(),
                    direction: "inbound".into(),
                    caller: "+15550177".into(),
                    dialled: "+15550100".into(),
                    queue_id: None,
                    agent_id: None,
                    started_at: h.store.now(),
                    answered_at: None,
                    recording: None,
                },
            )
            .await
            .unwrap();
        // Refused dials of their number, typed in other shapes (no customer attached:
        // the regression of #13, erasure did not find these), and someone else's.
        for typed in ["15550177", "+1 555-0177", "+1 (555) 0199"] {
            let origin = DialOrigin {
                tenant_id: t.clone(),
                user_id: None,
                role: None,
                path: DialPath::Callback,
            };
            store
                .audit_dial_refusal(&origin, typed, &Refusal::Unrecognised)
                .await
                .unwrap();
        }
        let before = count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE tenant_id = $1 AND caller LIKE $2",
            &t,
            "%5550177%",
        )
        .await;
        assert_eq!(before, 2);

        let mut events = store.subscribe();
        let receipt = store.erase_customer(&a, &c.id).await.unwrap();
        // The running ACD is told to drop the open callback from its router.
        let mut told = false;
        while let Ok(e) = events.try_recv() {
            told |= e.kind == "callback.changed"
                && e.data["item"] == "cb-item"
                && e.data["state"] == "cancelled"
                && !e.data.to_string().contains("5550177");
        }
        assert!(
            told,
            "callback.changed (cancelled) published for the router"
        );
        assert_eq!(receipt.files, 2, "voicemail and call recording");
        assert_eq!(receipt.tts_cache_files, 1);
        assert_eq!(receipt.callbacks, 1);
        for gone in [&vm, &rec, &tts] {
            assert!(!root.join(gone).exists(), "{gone} still on disk");
        }
        assert!(
            root.join(&other).exists(),
            "another caller's recording kept"
        );
        // No row anywhere holds their number or email.
        for like in ["%5550177%", "%vera@private.test%"] {
            for sql in [
                "SELECT COUNT(*) FROM call_records WHERE tenant_id = $1 AND (caller LIKE $2 OR dialled LIKE $2)",
                "SELECT COUNT(*) FROM callbacks WHERE tenant_id = $1 AND (number LIKE $2 OR COALESCE(last_error, '') LIKE $2)",
                "SELECT COUNT(*) FROM live_calls WHERE tenant_id = $1 AND (caller LIKE $2 OR dialled LIKE $2)",
                "SELECT COUNT(*) FROM audit_log WHERE tenant_id = $1 AND (COALESCE(before, '') LIKE $2 OR COALESCE(after, '') LIKE $2)",
                "SELECT COUNT(*) FROM interactions WHERE tenant_id = $1 AND (body LIKE $2 OR attachments LIKE $2)",
                "SELECT COUNT(*) FROM customer_identities WHERE tenant_id = $1 AND value LIKE $2",
            ] {
                assert_eq!(count(&store, sql, &t, like).await, 0, "{sql} {like}");
            }
        }
        // The refusals of their number keep their rule but not the number; the other
        // caller's keeps its number.
        let refused: Vec<(String,)> = sqlx::query_as(
            "SELECT after FROM audit_log WHERE tenant_id = $1 AND action = 'dial.refused'",
        )
        .bind(&t)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let numbers: Vec<String> = refused
            .iter()
            .map(|(a,)| {
                let v: serde_json::Value = serde_json::from_str(a).unwrap();
                assert_eq!(v["refusal"]["rule"], "unrecognised", "{v}");
                v["number"].as_str().unwrap().to_owned()
            })
            .collect();
        let mut numbers = numbers;
        numbers.sort();
        assert_eq!(numbers, ["+1 (555) 0199", "[erased]", "[erased]"]);
        // Neither the recording's location nor the full-text index keeps anything.
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM call_records WHERE tenant_id = $1 AND recording LIKE $2",
                &t,
                "%call-bbbb%",
            )
            .await,
            0
        );
        assert!(
            store
                .search_interactions(&a, "Callback", None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.callback(&a, &cb.id).await.unwrap().state,
            CallbackState::Cancelled,
            "nobody dials an erased customer"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
);

on_both!(
    retention_deletes_expired_recordings_on_the_store_clock,
    |h| {
        let root = files_dir();
        let store = h.store.clone().with_files_dir(&root);
        let a = h.tenant("acme").await;
        let t = a.tenant_id.clone();
        let agent = store
            .create_user(
                &a,
                NewUser {
                    email: "agent@acme.test".into(),
                    name: "Agent".into(),
                    role: Role::Agent,
                    password: "a long enough password".into(),
                },
            )
            .await
            .unwrap();
        let as_agent = Actor {
            tenant_id: t.clone(),
            user_id: Some(agent.id.clone()),
            role: Role::Agent,
        };
        assert!(matches!(
            store
                .set_recording_retention(&as_agent, RecordingRetention { days: Some(30) })
                .await,
            Err(Error::Forbidden { .. })
        ));
        assert!(matches!(
            store
                .set_recording_retention(&a, RecordingRetention { days: Some(0) })
                .await,
            Err(Error::Invalid { .. })
        ));
        store
            .set_recording_retention(&a, RecordingRetention { days: Some(30) })
            .await
            .unwrap();
        assert_eq!(store.recording_retention(&a).await.unwrap().days, Some(30));
        let c = customer(&store, &a, "Old Caller", &[("phone", "+15550144")]).await;
        let now = h.store.now();
        let old = put(&root, &format!("recordings/{t}/voicemail-old.wav"));
        let old_call = put(&root, &format!("recordings/{t}/call-old.wav"));
        let young = put(&root, &format!("recordings/{t}/voicemail-young.wav"));
        let old_i = store
            .add_interaction(
                &a,
                &c.id,
                call_with(
                    vec![att("voicemail.wav", &old)],
                    "{}",
                    Some(Timestamp(now.0 - 40 * DAY)),
                ),
            )
            .await
            .unwrap();
        store
            .add_interaction(
                &a,
                &c.id,
                call_with(
                    vec![att("voicemail.wav", &young)],
                    "{}",
                    Some(Timestamp(now.0 - DAY)),
                ),
            )
            .await
            .unwrap();
        store
            .add_call_record(
                &a,
                record(
                    "+15550144",
                    Some(&c.id),
                    None,
                    Some(&old_call),
                    Timestamp(now.0 - 40 * DAY),
                ),
            )
            .await
            .unwrap();
        let r = store.purge_expired_recordings().await.unwrap();
        assert_eq!((r.files, r.interactions, r.call_records), (2, 1, 1));
        assert!(!root.join(&old).exists() && !root.join(&old_call).exists());
        assert!(root.join(&young).exists());
        // The timeline says a recording existed; it is no longer downloadable.
        let tl = store.timeline(&a, &c.id, None, None).await.unwrap().items;
        let purged = tl.iter().find(|i| i.id == old_i.id).unwrap();
        assert_eq!(purged.attachments[0].name, "voicemail.wav");
        assert_eq!(purged.attachments[0].location, None);
        assert!(matches!(
            store.recording_for_download(&a, &old_i.id, 0).await,
            Err(Error::NotFound { .. })
        ));
        // Nothing more today; 30 days on (the store's clock), the young one goes too.
        assert_eq!(store.purge_expired_recordings().await.unwrap().files, 0);
        h.clock.advance_minutes(30 * 24 * 60);
        assert_eq!(store.purge_expired_recordings().await.unwrap().files, 1);
        assert!(!root.join(&young).exists());
        let audit = serde_json::to_string(
            &store
                .audit_log(&a, &Default::default())
                .await
                .unwrap()
                .items,
        )
        .unwrap();
        assert!(audit.contains("recordings.purge") && audit.contains("recordings.retention"));
        let _ = std::fs::remove_dir_all(&root);
    }
);

on_both!(
    a_call_cut_off_by_a_crash_is_closed_with_server_restart_and_its_recording_linked,
    |h| {
        let root = files_dir();
        let store = h.store.clone().with_files_dir(&root);
        let a = h.tenant("acme").await;
        let t = a.tenant_id.clone();
        let c = customer(&store, &a, "Cut Off", &[("phone", "+15550155")]).await;
        let rec = put(&root, &format!("recordings/{t}/call-cut.wav"));
        let started = h.store.now();
        let id = store
            .open_live_call(
                &a,
                &LiveCall {
                    id: String::new(),
                    tenant_id: t.clone(),
                    call_id: "crash-1".into(),
                    direction: "inbound".into(),
                    caller: "+15550155".into(),
                    dialled: "+15550100".into(),
                    queue_id: None,
                    agent_id: None,
                    started_at: started,
                    answered_at: None,
                    recording: None,
                },
            )
            .await
            .unwrap();
        h.clock.advance_minutes(1);
        store
            .update_live_call(
                &a,
                &id,
                Some("q1"),
                Some(("agent-1", h.store.now())),
                Some(&rec),
            )
            .await
            .unwrap();
        h.clock.advance_minutes(2);
        store
            .update_live_call(&a, &id, None, None, None)
            .await
            .unwrap();
        // "kill -9": nothing ends the row. At the next start:
        let cut = store.interrupted_calls().await.unwrap();
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].recording.as_deref(), Some(rec.as_str()));
        assert_eq!(cut[0].agent_id.as_deref(), Some("agent-1"));
        let closed = store
            .close_interrupted_call(&cut[0], Some((rec.clone(), 12_345)))
            .await
            .unwrap();
        assert_eq!(closed.outcome, "server_restart");
        assert_eq!(closed.hangup_cause.as_deref(), Some("server_restart"));
        assert_eq!(closed.recording.as_deref(), Some(rec.as_str()));
        assert_eq!(closed.customer_id.as_deref(), Some(c.id.as_str()));
        assert_eq!((closed.talk_ms, closed.wait_ms), (120_000, 60_000));
        assert!(
            store.interrupted_calls().await.unwrap().is_empty(),
            "closed once"
        );
        let records = store.call_records(&a, &Default::default()).await.unwrap();
        assert!(
            records
                .iter()
                .any(|r| r.call_id == "crash-1" && r.outcome == "server_restart")
        );
        // On the caller's timeline, with the recording downloadable.
        let tl = store.timeline(&a, &c.id, None, None).await.unwrap().items;
        assert_eq!(tl.len(), 1);
        assert_eq!(tl[0].attachments[0].location.as_deref(), Some(rec.as_str()));
        assert_eq!(tl[0].attachments[0].size, 12_345);
        let dl = store
            .recording_for_download(&a, &tl[0].id, 0)
            .await
            .unwrap();
        assert_eq!(dl.path, root.join(&rec));
        let _ = std::fs::remove_dir_all(&root);
    }
);

on_both!(
    recording_download_is_authorised_by_role_call_and_assignment,
    |h| {
        let root = files_dir();
        let store = h.store.clone().with_files_dir(&root);
        let a = h.tenant("acme").await;
        let other = h.tenant("globex").await;
        let t = a.tenant_id.clone();
        let mut users = Vec::new();
        for (email, role) in [
            ("took@acme.test", Role::Agent),
            ("assigned@acme.test", Role::Agent),
            ("stranger@acme.test", Role::Agent),
            ("sup@acme.test", Role::Supervisor),
        ] {
            let u = store
                .create_user(
                    &a,
                    NewUser {
                        email: email.into(),
                        name: email.into(),
                        role,
                        password: "a long enough password".into(),
                    },
                )
                .await
                .unwrap();
            users.push(Actor {
                tenant_id: t.clone(),
                user_id: Some(u.id),
                role,
            });
        }
        let c = customer(&store, &a, "Listened To", &[("phone", "+15550166")]).await;
        let rec = put(&root, &format!("recordings/{t}/call-listen.wav"));
        let i = store
            .add_interaction(
                &a,
                &c.id,
                call_with(vec![att("call-recording.wav", &rec)], "{}", None),
            )
            .await
            .unwrap();
        store
            .add_call_record(
                &a,
                record(
                    "+15550166",
                    Some(&c.id),
                    users[0].user_id.as_deref(),
                    Some(&rec),
                    h.store.now(),
                ),
            )
            .await
            .unwrap();
        store
            .create_case(
                &a,
                NewCase {
                    title: "Follow up".into(),
                    customer_id: Some(c.id.clone()),
                    case_type_id: None,
                    priority: None,
                    assignee_id: users[1].user_id.clone(),
                    team_id: None,
                    custom_fields: Default::default(),
                    tags: vec![],
                },
            )
            .await
            .unwrap();
        for (who, ok) in [(0, true), (1, true), (2, false), (3, true)] {
            let r = store.recording_for_download(&users[who], &i.id, 0).await;
            match (ok, r) {
                (true, Ok(d)) => assert_eq!(d.path, root.join(&rec)),
                (false, Err(Error::Forbidden { .. })) => {}
                (_, r) => panic!("user {who}: {r:?}"),
            }
        }
        assert!(matches!(
            store.recording_for_download(&other, &i.id, 0).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.recording_for_download(&a, &i.id, 1).await,
            Err(Error::NotFound { .. })
        ));
        let dl = store
            .recording_for_download(&users[3], &i.id, 0)
            .await
            .unwrap();
        store
            .audit_recording_download(&users[3], &i.id, &dl)
            .await
            .unwrap();
        let audit = serde_json::to_string(
            &store
                .audit_log(&a, &Default::default())
                .await
                .unwrap()
                .items,
        )
        .unwrap();
        assert!(audit.contains("recording.download"));
        let _ = std::fs::remove_dir_all(&root);
    }
);

on_both!(
    backup_writes_a_consistent_copy_of_sqlite_and_points_postgres_to_pg_dump,
    |h| {
        let a = h.tenant("acme").await;
        let c = customer(&h.store, &a, "Backed Up", &[("phone", "+15550188")]).await;
        let dir = files_dir();
        let file = dir.join("backup.db");
        match h.store.backend() {
            Backend::Sqlite => {
                h.store.backup_sqlite(&file).await.unwrap();
                // A second backup never overwrites.
                assert!(matches!(
                    h.store.backup_sqlite(&file).await,
                    Err(Error::Invalid { .. })
                ));
                let copy = Store::connect(&format!("sqlite://{}", file.display()))
                    .await
                    .unwrap();
                assert!(copy.ready().await.unwrap(), "every migration in the copy");
                assert_eq!(copy.customer(&a, &c.id).await.unwrap().name, "Backed Up");
                copy.close().await;
            }
            Backend::Postgres => assert!(matches!(
                h.store.backup_sqlite(&file).await,
                Err(Error::Unsupported { .. })
            )),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
);
