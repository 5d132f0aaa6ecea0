//! Unit tests of the interpreter's edges (the data-driven suite is in `tests/`).

use jiff::Timestamp;
use serde_json::json;

use crate::interp::{MAX_BUFFER, MAX_HOPS};
use crate::*;

fn flow(v: serde_json::Value) -> Flow {
    serde_json::from_value(v).unwrap()
}

fn menu_flow() -> Flow {
    flow(json!({
        "version": 1, "id": "m", "start": "intro",
        "nodes": {
            "intro": {"type": "play", "prompts": [{"tts": "Hi"}], "barge_in": true, "next": "menu"},
            "menu": {"type": "menu", "prompts": [{"file": "menu.wav"}],
                     "choices": [{"digit": "1", "next": "one"}, {"digit": "2", "next": "two"}],
                     "on_max_retries": "bye"},
            "one": {"type": "transfer", "target": {"number": "+1555{{caller_number}}"}},
            "two": {"type": "voicemail", "max_length_s": 30},
            "bye": {"type": "hangup", "cause": "no_choice"}
        }
    }))
}

fn t0() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

fn start(env: &Env, id: &str) -> (CallState, Vec<Action>) {
    let call = CallInfo {
        caller_number: "0123".into(),
        ..Default::default()
    };
    step(env, CallState::new(id.into(), &call), Event::Start, t0())
}

fn digits(d: &str) -> Event {
    Event::Digits { digits: d.into() }
}

#[test]
fn events_before_start_and_after_end_are_ignored() {
    let env = Env::new([menu_flow()]);
    let s = CallState::new("m".into(), &CallInfo::default());
    let (s, a) = step(&env, s, digits("1"), t0());
    assert!(a.is_empty());
    assert_eq!(s.status, interp::Status::NotStarted);
    let (s, _) = step(&env, s, Event::Start, t0());
    let (s, a) = step(&env, s, Event::HangUp, t0());
    assert_eq!(
        a,
        vec![Action::FlowEnded {
            reason: EndReason::CallerHangup
        }]
    );
    for e in [
        digits("1"),
        Event::PlaybackDone,
        Event::Start,
        Event::HangUp,
    ] {
        let (_, a) = step(&env, s.clone(), e, t0());
        assert!(a.is_empty());
    }
}

#[test]
fn stale_timer_is_ignored_and_live_timer_reprompts() {
    let env = Env::new([menu_flow()]);
    let (s, _) = start(&env, "m");
    let (s, _) = step(&env, s, Event::PlaybackDone, t0()); // intro done → menu prompt
    let (s, a) = step(&env, s, Event::PlaybackDone, t0()); // menu prompt done → timer
    let Some(Action::StartTimer { id, at }) = a.first().cloned() else {
        panic!("{a:?}")
    };
    assert_eq!(at, t0() + jiff::SignedDuration::from_millis(5000));
    let (s, a) = step(&env, s, Event::TimerFired { id: id + 100 }, t0());
    assert!(a.is_empty());
    let (_, a) = step(&env, s, Event::TimerFired { id }, t0());
    assert!(
        matches!(&a[0], Action::Play { barge_in: true, .. }),
        "{a:?}"
    );
}

#[test]
fn barge_in_play_passes_keys_to_the_menu_and_non_dtmf_is_dropped() {
    let env = Env::new([menu_flow()]);
    let (s, _) = start(&env, "m");
    let (s, a) = step(&env, s, digits("x1"), t0());
    assert_eq!(a[0], Action::StopPlayback);
    assert!(
        a.contains(&Action::Transfer {
            target: model::TransferTarget::Number("+15550123".into())
        }),
        "{a:?}"
    );
    assert!(s.is_ended());
}

#[test]
fn type_ahead_buffer_is_bounded() {
    let env = Env::new([flow(json!({
        "version": 1, "id": "w", "start": "h",
        "nodes": {
            "h": {"type": "http", "method": "GET", "url": "https://x/", "next": "h", "on_error": "h"}
        }
    }))]);
    let (s, _) = start(&env, "w");
    let (s, _) = step(&env, s, digits(&"1".repeat(100)), t0());
    assert_eq!(s.buffer.len(), MAX_BUFFER);
}

#[test]
fn runtime_errors_hang_up_instead_of_panicking() {
    // Unknown sub-flow.
    let env = Env::new([flow(json!({
        "version": 1, "id": "a", "start": "s",
        "nodes": {"s": {"type": "sub_flow", "flow": "missing", "next": "s"}}
    }))]);
    let (s, a) = start(&env, "a");
    assert!(s.is_ended());
    assert_eq!(
        a[0],
        Action::Hangup {
            cause: "ivr_error".into()
        }
    );
    assert!(matches!(
        &a[1],
        Action::FlowEnded { reason: EndReason::Error { message } } if message.contains("missing")
    ));

    // A spin that the validator would have rejected.
    let env = Env::new([flow(json!({
        "version": 1, "id": "a", "start": "x",
        "nodes": {
            "x": {"type": "set", "variable": "v", "value": "1", "next": "y"},
            "y": {"type": "branch", "rules": [], "default": "x"}
        }
    }))]);
    let (s, a) = start(&env, "a");
    assert!(s.is_ended());
    assert!(matches!(
        a.last(),
        Some(Action::FlowEnded { reason: EndReason::Error { message } }) if message.contains(&MAX_HOPS.to_string())
    ));

    // Endless sub-flow recursion.
    let env = Env::new([flow(json!({
        "version": 1, "id": "r", "start": "s",
        "nodes": {"s": {"type": "sub_flow", "flow": "r", "next": "s"}}
    }))]);
    let (_, a) = start(&env, "r");
    assert!(
        matches!(a.last(), Some(Action::FlowEnded { reason: EndReason::Error { message } }) if message.contains("nesting")),
        "{a:?}"
    );
}

#[test]
fn state_survives_serialisation_mid_call() {
    let env = Env::new([menu_flow()]);
    let (s, _) = start(&env, "m");
    let (s, _) = step(&env, s, Event::PlaybackDone, t0());
    let json = serde_json::to_string(&s).unwrap();
    let restored: CallState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, s);
    let (s1, a1) = step(&env, s, digits("2"), t0());
    let (s2, a2) = step(&env, restored, digits("2"), t0());
    assert_eq!((s1, a1.clone()), (s2, a2));
    // Voicemail without greeting records at once.
    assert!(a1.iter().any(|a| matches!(
        a,
        Action::RecordVoicemail {
            max_length_s: 30,
            beep: true,
            ..
        }
    )));
}

#[test]
fn trail_records_nodes_and_inputs() {
    let env = Env::new([menu_flow()]);
    let (s, _) = start(&env, "m");
    let (s, _) = step(&env, s, Event::PlaybackDone, t0());
    let later = t0() + jiff::SignedDuration::from_secs(3);
    let (s, _) = step(&env, s, digits("9"), later);
    let trail = serde_json::to_value(&s.trail).unwrap();
    assert_eq!(trail[0]["type"], "node");
    assert_eq!(trail[0]["node"], "intro");
    assert_eq!(trail[1]["node"], "menu");
    assert_eq!(
        trail[2],
        json!({"at": "1970-01-01T00:00:03Z", "type": "digits", "digits": "9"})
    );
    assert_eq!(trail[3]["type"], "no_match");
}

/// Regression (issue 14): the caller's timeline showed node ids; the trail now carries
/// each node's designer label (and none when the node has no label).
#[test]
fn trail_carries_node_labels() {
    let env = Env::new([flow(json!({
        "version": 1, "id": "l", "start": "hi",
        "nodes": {
            "hi": {"type": "play", "label": "Greeting", "prompts": [{"tts": "Hi"}], "next": "bye"},
            "bye": {"type": "hangup"}
        }
    }))]);
    let (s, _) = start(&env, "l");
    let (s, _) = step(&env, s, Event::PlaybackDone, t0());
    let trail = serde_json::to_value(&s.trail).unwrap();
    assert_eq!(trail[0]["node"], "hi");
    assert_eq!(trail[0]["label"], "Greeting");
    assert_eq!(trail[1]["node"], "bye");
    assert!(trail[1].get("label").is_none(), "{trail}");
}

#[test]
fn queue_outcome_without_exit_hangs_up_and_return_completes() {
    let env = Env::new([flow(json!({
        "version": 1, "id": "q", "start": "q",
        "nodes": {"q": {"type": "enqueue", "queue": "sales", "on_answered": "done"},
                  "done": {"type": "return"}}
    }))]);
    let (s, _) = start(&env, "q");
    let (_, a) = step(
        &env,
        s.clone(),
        Event::QueueResult {
            outcome: QueueOutcome::Timeout,
        },
        t0(),
    );
    assert_eq!(
        a[0],
        Action::Hangup {
            cause: "queue_timeout".into()
        }
    );
    let (_, a) = step(
        &env,
        s,
        Event::QueueResult {
            outcome: QueueOutcome::Answered,
        },
        t0(),
    );
    assert_eq!(
        a,
        vec![Action::FlowEnded {
            reason: EndReason::Completed
        }]
    );
}

#[test]
fn flow_parse_errors_are_structured() {
    let e = Flow::from_json(r#"{"version": 2, "id": "a", "start": "x", "nodes": {}}"#).unwrap_err();
    assert_eq!(
        e,
        Error::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    let e = Flow::from_json("{\n  \"version\": 1,\n  \"id\": ").unwrap_err();
    assert!(matches!(e, Error::Json { line: 3, .. }), "{e:?}");
    let e = Flow::from_json(
        r#"{"version": 1, "id": "a", "start": "x", "nodes": {"x": {"type": "teleport"}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("teleport"), "{e}");
}

#[test]
fn check_reports_all_errors() {
    let f = flow(json!({
        "version": 1, "id": "bad", "start": "a",
        "nodes": {"a": {"type": "play", "prompts": [], "next": "zz"}}
    }));
    let Err(Error::Invalid { flow, errors }) = check(&f, &ValidationOptions::default()) else {
        panic!()
    };
    assert_eq!(flow, FlowId::from("bad"));
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e.node == Some("a".into())));
}

#[test]
fn simulate_rejects_unknown_flow_and_parses_cli_style_json() {
    let env = Env::new([menu_flow()]);
    assert_eq!(
        simulate(&env, &Script::new("nope")).unwrap_err(),
        Error::UnknownFlow {
            flow: "nope".into()
        }
    );
    let script: Script = serde_json::from_value(json!({
        "flow": "m", "steps": [{"digits": "2"}, {"wait": 100}, "hangup"]
    }))
    .unwrap();
    let trace = simulate(&env, &script).unwrap();
    assert!(trace.ended);
    let back: Trace = serde_json::from_value(serde_json::to_value(&trace).unwrap()).unwrap();
    assert_eq!(back, trace);
}

/// Random events never panic and the call always ends on hang-up.
#[test]
fn random_events_never_panic() {
    let demo = Flow::from_json(include_str!("../tests/fixtures/flows/demo.json")).unwrap();
    let mut env = Env::new([demo, menu_flow()]);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        env.speech_available = round % 2 == 0;
        let id = if round % 3 == 0 { "m" } else { "demo" };
        let mut s = CallState::new(id.into(), &CallInfo::default());
        let mut now = t0();
        s.handle(&env, Event::Start, now);
        for _ in 0..60 {
            now += jiff::SignedDuration::from_millis((next() % 7000) as i64);
            let e = match next() % 9 {
                0 => Event::PlaybackDone,
                1 => digits(["1", "2", "3", "9", "#", "55*", "x"][(next() % 7) as usize]),
                2 => Event::TimerFired { id: next() % 12 },
                3 => Event::QueueResult {
                    outcome: [
                        QueueOutcome::Answered,
                        QueueOutcome::Abandoned,
                        QueueOutcome::Timeout,
                        QueueOutcome::Callback,
                    ][(next() % 4) as usize],
                },
                4 => Event::RecordingDone,
                5 => Event::SpeechResult {
                    text: "sales please".into(),
                    confidence: 0.9,
                },
                6 => Event::WebhookResult {
                    id: next() % 12,
                    status: 200,
                    json: json!({}),
                },
                7 => Event::QueueStatus {
                    queue: "sales".into(),
                    state: QueueState::default(),
                },
                _ => Event::CustomerFailed {
                    id: next() % 12,
                    reason: "x".into(),
                },
            };
            s.handle(&env, e, now);
            assert!(s.buffer.len() <= MAX_BUFFER);
        }
        s.handle(&env, Event::HangUp, now);
        assert!(s.is_ended());
    }
}

#[test]
fn trace_display_is_one_line_per_entry() {
    let env = Env::new([menu_flow()]);
    let script =
        Script::from_json(r#"{"flow": "m", "steps": [{"barge": "2"}, "hangup"]}"#).unwrap();
    let text = simulate(&env, &script).unwrap().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "      0 ms  event   start");
    assert_eq!(lines[1], "      0 ms  node    m/intro");
    assert!(
        lines.contains(&"      0 ms  action  stop_playback"),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&"      0 ms  ended"));
    assert!(matches!(
        Script::from_json("{\"flow\": 1}"),
        Err(Error::Json { line: 1, .. })
    ));
}

#[test]
fn node_typos_are_rejected_but_designer_fields_are_kept() {
    let ok = Flow::from_json(
        r#"{"version": 1, "id": "a", "start": "p", "nodes": {"p": {"type": "play",
            "label": "Greeting", "ui": {"x": 10, "y": 20},
            "prompts": [{"tts": "Hi"}], "next": "p"}}}"#,
    )
    .unwrap();
    let node = &ok.nodes[&NodeId::from("p")];
    assert_eq!(node.label.as_deref(), Some("Greeting"));
    assert_eq!(node.ui, Some(json!({"x": 10, "y": 20})));
    assert_eq!(Flow::from_json(&ok.to_json()).unwrap(), ok);
    let e = Flow::from_json(
        r#"{"version": 1, "id": "a", "start": "p", "nodes": {"p": {"type": "play",
            "prompts": [{"tts": "Hi"}], "barge": true, "next": "p"}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("barge"), "{e}");
}

#[test]
fn simulation_of_a_zero_length_prompt_loop_terminates() {
    let env = Env::new([flow(json!({
        "version": 1, "id": "l", "start": "a",
        "nodes": {
            "a": {"type": "play", "prompts": [{"tts": "a"}], "next": "b"},
            "b": {"type": "play", "prompts": [{"tts": "b"}], "next": "a"}
        }
    }))]);
    let mut script = Script::new("l");
    script.prompt_ms = 0;
    script.steps = vec![ScriptStep::Digits("1".into()), ScriptStep::Wait(10)];
    let trace = simulate(&env, &script).unwrap();
    assert!(trace.truncated);
    assert!(!trace.ended);
}

#[test]
fn non_dtmf_input_keeps_the_gather_timer() {
    let env = Env::new([flow(json!({
        "version": 1, "id": "g", "start": "g",
        "nodes": {
            "g": {"type": "gather", "prompts": [{"tts": "PIN?"}], "variable": "pin",
                  "min_len": 4, "max_len": 4, "next": "ok", "on_invalid": "ok"},
            "ok": {"type": "hangup"}
        }
    }))]);
    let (s, _) = start(&env, "g");
    let (s, _) = step(&env, s, Event::PlaybackDone, t0());
    let timer = s.timer;
    assert!(timer.is_some());
    let (s, a) = step(&env, s, digits("xyz"), t0());
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(s.timer, timer);
    // Partial input restarts the inter-digit timer; it completes the input.
    let (s, a) = step(&env, s, digits("12"), t0());
    assert!(
        matches!(
            a[..],
            [Action::CancelTimer { .. }, Action::StartTimer { .. }]
        ),
        "{a:?}"
    );
    let id = s.timer.unwrap();
    let (s, a) = step(&env, s, Event::TimerFired { id }, t0());
    assert!(!s.vars.contains_key("pin"));
    assert!(
        matches!(&a[0], Action::Play { .. }),
        "too short → replay: {a:?}"
    );
}

#[test]
fn prompt_files_lists_each_uploaded_prompt_once() {
    let mut f = menu_flow();
    assert_eq!(
        f.prompt_files().into_iter().collect::<Vec<_>>(),
        ["menu.wav"]
    );
    if let Some(NodeKind::Menu(m)) = f.nodes.get_mut(&NodeId::from("menu")).map(|n| &mut n.kind) {
        m.invalid_prompts = vec![
            Prompt::File("oops.wav".into()),
            Prompt::File("menu.wav".into()),
        ];
    }
    assert_eq!(
        f.prompt_files().into_iter().collect::<Vec<_>>(),
        ["menu.wav", "oops.wav"]
    );
}

/// #13: a transfer target built from what the caller typed (a gather's digits, carried
/// on by a `set`) or from the spoofable caller number is flagged; fixed targets and
/// targets built from trusted variables are not, and warnings never block publishing.
#[test]
fn transfer_targets_built_from_caller_input_are_warned_about() {
    let f = flow(json!({
        "version": 1, "id": "w", "start": "ask",
        "nodes": {
            "ask": {"type": "gather", "prompts": [{"tts": "Number?"}], "variable": "typed",
                    "max_len": 12, "next": "copy", "on_invalid": "fixed"},
            "copy": {"type": "set", "variable": "dest", "value": "+{{typed}}", "next": "pick"},
            "pick": {"type": "menu", "prompts": [{"tts": "1 or 2"}],
                     "choices": [{"digit": "1", "next": "to_typed"}, {"digit": "2", "next": "to_caller"},
                                 {"digit": "3", "next": "to_trusted"}],
                     "on_max_retries": "fixed"},
            "to_typed": {"type": "transfer", "target": {"number": "{{dest}}"}},
            "to_caller": {"type": "transfer", "target": {"sip_uri": "sip:{{caller_number}}@trunk"}},
            "to_trusted": {"type": "transfer", "target": {"extension": "{{tenant_id}}"}},
            "fixed": {"type": "transfer", "target": {"number": "+15550123"}}
        }
    }));
    assert!(validate(&f, &ValidationOptions::default()).is_empty());
    let w = warnings(&f);
    let got: Vec<(String, String)> = w
        .iter()
        .map(|w| {
            let ValidationWarningKind::TargetFromCallerInput { variable } = &w.kind;
            (w.node.clone().unwrap().0, variable.clone())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("to_caller".to_owned(), "caller_number".to_owned()),
            ("to_typed".to_owned(), "dest".to_owned()),
        ]
    );
    assert!(
        w[1].to_string().starts_with("warning: node `to_typed`: "),
        "{}",
        w[1]
    );
}
