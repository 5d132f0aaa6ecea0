//! Transcription of queued calls (part of the `speech` test binary): the demo flow
//! sends the caller straight to queue `sales`, a real sipp phone is the agent and
//! speaks its own espeak-ng sentence over RTP (sipp's `rtp_stream`), the caller is the
//! test's UAC playing another one. Both speakers are attributed, the PCI pause keeps a
//! span out of the transcript and the recording, and a queue can switch transcription
//! off for its calls.

use super::*;
use common::wait::eventually;

/// A bounded sipp run (loopback, explicit ports, a global timeout that fails it) in
/// `dir` (where its audio files are).
fn sipp(scenario: &str, port: u16, dir: &std::path::Path, timeout_s: u32) -> Command {
    let mut c = sipp_within(scenario, port, 1, None, timeout_s);
    c.current_dir(dir);
    c
}

/// The agent phone: a sipp UAS that answers, streams `agent.ul` and waits for BYE.
struct AgentPhone {
    child: Child,
    dir: PathBuf,
}

impl Drop for AgentPhone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A queued-call set-up: queue `sales` with one agent (a user made here, with a web
/// login and a SIP extension, not yet available) whose sipp phone will say
/// `agent_says`; the demo flow goes from its greeting straight to the queue; the tenant
/// transcribes (no consent needed) and records queue calls.
struct Queued {
    p: Parley,
    admin: String,
    sup: String,
    queue_id: String,
    agent_id: String,
    agent_token: String,
    phone: AgentPhone,
}

impl Queued {
    /// The agent becomes available; returns once the router has them free.
    fn staff(&self) {
        self.p.http(
            "PUT",
            &format!("/api/v1/users/{}/presence", self.agent_id),
            Some(&self.admin),
            Some(json!({"status": "available"})),
        );
        eventually(
            "the agent free in the router",
            Duration::from_secs(20),
            || {
                let v = self
                    .p
                    .http("GET", "/api/v1/queues/live", Some(&self.sup), None);
                (v[0]["agents_free"].as_u64() == Some(1)).then_some(())
            },
        );
    }
}

/// [`unstaffed`], then the agent is available.
fn queued(tag: &str, model: &str, agent_says: &str) -> Queued {
    let q = unstaffed(tag, model, agent_says);
    q.staff();
    q
}

#[allow(clippy::zombie_processes)] // the AgentPhone's Drop kills and reaps it
fn unstaffed(tag: &str, model: &str, agent_says: &str) -> Queued {
    let p = Parley::start_with(
        tag,
        &[
            ("PARLEY_SPEECH_MODEL", model),
            ("PARLEY_SPEECH_WORKERS", "1"),
        ],
    );
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.http(
        "PUT",
        "/api/v1/speech/settings",
        Some(&admin),
        Some(json!({"transcription": true, "require_consent": false, "alert_phrases": []})),
    );
    p.request(
        "PUT",
        "/api/v1/acd/recording",
        Some(&admin),
        Some(json!({"recording": "on"})),
    );
    // The demo's own queues, skills and available agents (issue 14) make way for this
    // set-up.
    for q in p
        .http("GET", "/api/v1/queues", Some(&admin), None)
        .as_array()
        .unwrap()
    {
        let id = q["id"].as_str().unwrap();
        assert_eq!(
            p.request(
                "DELETE",
                &format!("/api/v1/queues/{id}"),
                Some(&admin),
                None
            )
            .0,
            204
        );
    }
    for u in p
        .http("GET", "/api/v1/users", Some(&admin), None)
        .as_array()
        .unwrap()
    {
        let uid = u["id"].as_str().unwrap();
        let path = format!("/api/v1/users/{uid}/presence");
        p.request(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"status": "offline"})),
        );
    }
    let skills = p.http("GET", "/api/v1/skills", Some(&admin), None);
    let sid = skills
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "sales")
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| {
            let k = p.http(
                "POST",
                "/api/v1/skills",
                Some(&admin),
                Some(json!({"name": "sales"})),
            );
            k["id"].as_str().unwrap().to_owned()
        });
    let q = p.http(
        "POST",
        "/api/v1/queues",
        Some(&admin),
        Some(
            json!({"name": "sales", "skills": [{"skill": sid, "min_proficiency": 1}],
                    "ring_timeout_s": 20, "wrap_up_s": 1, "announce_interval_s": 0}),
        ),
    );
    let queue_id = q["id"].as_str().unwrap().to_owned();
    let u = p.http(
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(
            json!({"email": "speaker@demo.parley.test", "name": "Sam Agent", "role": "agent",
                    "password": "long enough pw"}),
        ),
    );
    let agent_id = u["id"].as_str().unwrap().to_owned();
    p.http(
        "PUT",
        &format!("/api/v1/users/{agent_id}/sip"),
        Some(&admin),
        Some(json!({"extension": "1009", "password": "agent sip pw"})),
    );
    let (code, _) = p.request(
        "PUT",
        &format!("/api/v1/users/{agent_id}/skills/{sid}"),
        Some(&admin),
        Some(json!({"proficiency": 3})),
    );
    assert!(code < 300, "skill: {code}");
    // The flow: greeting, then the queue.
    let flow = p.http("GET", "/api/v1/ivr/flows/demo", Some(&admin), None);
    let mut doc = match &flow["draft"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    doc["nodes"]["greeting"]["next"] = json!("sales_queue");
    prune_unreachable(&mut doc);
    p.http("PUT", "/api/v1/ivr/flows/demo", Some(&admin), Some(doc));
    p.http("POST", "/api/v1/ivr/flows/demo/publish", Some(&admin), None);
    // The agent's phone and what it will say (a second of silence first).
    let dir = temp_dir(&format!("{tag}-phone"));
    let mut audio = silence(1000);
    audio.extend(speak_ulaw(agent_says));
    audio.extend(silence(500));
    std::fs::write(dir.join("agent.ul"), audio).unwrap();
    let port = free_port();
    let child = sipp("uas_agent_speech.xml", port, &dir, 120)
        .spawn()
        .unwrap();
    let phone = AgentPhone { child, dir };
    let out = sipp("register.xml", free_port(), &phone.dir, 30)
        .args(["-s", "1009", "-au", "1009", "-ap", "agent sip pw"])
        .args(["-key", "contact_port", &port.to_string()])
        .arg(p.sip.to_string())
        .output()
        .unwrap();
    check("REGISTER 1009", &out);
    let agent_token = p.login("speaker@demo.parley.test", "long enough pw");
    Queued {
        p,
        admin,
        sup,
        queue_id,
        agent_id,
        agent_token,
        phone,
    }
}

/// Calls the demo number and plays silence until the agent is bridged; returns the
/// live call's id.
fn call_until_bridged(
    q: &Queued,
    uac: &ProtoUac,
    remote: SocketAddr,
    player: &mut Player,
) -> String {
    // Greeting, queue, ring, answer: bounded by 60 s of audio.
    wait_every(
        "the agent bridged",
        Duration::from_secs(60),
        Duration::ZERO,
        || {
            player.play(uac, remote, &silence(200));
            let calls = q.p.http("GET", "/api/v1/calls", Some(&q.sup), None);
            calls
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["state"] == "talking")
                .map(|c| c["id"].as_str().unwrap().to_owned())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The caller's stored call, waited for with a budget below the speech finish's
/// 60 s safety net: it is stored as soon as the last segments are done.
fn stored_promptly(p: &Parley, tok: &str) -> Value {
    p.stored_call(tok, "%2B15550123", Duration::from_secs(30))
}

fn segments_of(p: &Parley, tok: &str, call: &Value) -> Vec<Value> {
    let id = call["id"].as_str().unwrap();
    p.http(
        "GET",
        &format!("/api/v1/interactions/{id}/transcript"),
        Some(tok),
        None,
    )
    .as_array()
    .unwrap()
    .clone()
}

fn words_of(segs: &[Value], speaker: &str) -> String {
    segs.iter()
        .filter(|s| s["speaker"] == speaker)
        .map(|s| s["text"].as_str().unwrap_or_default().to_lowercase())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn a_bridged_queue_call_attributes_caller_and_agent_live_and_stored() {
    let Some(model) = model() else { return };
    let q = queued(
        "speechboth",
        &model,
        "I can reset your router for you right now.",
    );
    let seen = ws::events(&q.p, &q.sup);
    let seen_by_agent = ws::events(&q.p, &q.agent_token);
    let uac = ProtoUac::new(q.p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut player = Player { seq: 1, ts: 0 };
    let id = call_until_bridged(&q, &uac, remote, &mut player);
    let mut audio = silence(500);
    audio.extend(speak_ulaw("My internet connection is not working."));
    audio.extend(silence(1500));
    player.play(&uac, remote, &audio);
    // Live: both speakers' segments over the WebSocket (bounded: 90 s of audio).
    let live_of = |speaker: &str| -> String {
        ws::of_type(&seen, "transcript.segment")
            .iter()
            .filter(|e| e["data"]["segment"]["speaker"] == speaker)
            .map(|e| {
                e["data"]["segment"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    // A timeout is reported by the asserts below, with what was heard.
    let _ = wait_every(
        "both speakers' live transcripts",
        Duration::from_secs(90),
        Duration::ZERO,
        || {
            if live_of("caller").contains("connection") && live_of("agent").contains("router") {
                return Some(());
            }
            player.play(&uac, remote, &silence(500));
            None
        },
    );
    let (caller, agent) = (live_of("caller"), live_of("agent"));
    assert!(
        caller.contains("connection") && caller.contains("working"),
        "caller: {caller} / agent: {agent}"
    );
    assert!(
        agent.contains("router") && agent.contains("right now"),
        "agent: {agent}"
    );
    assert!(!caller.contains("router"), "{caller}");
    assert!(!agent.contains("connection"), "{agent}");
    // Segments name the live call (as `GET /calls` does), and the agent on the call
    // receives them too.
    let segs = ws::of_type(&seen, "transcript.segment");
    assert!(
        segs.iter().all(|e| e["data"]["call_id"] == id.as_str()),
        "{segs:?}"
    );
    // (the agent desktop shows the segments of the calls `GET /calls` gives the agent)
    let mine = q.p.http("GET", "/api/v1/calls", Some(&q.agent_token), None);
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{mine}"
    );
    let agent_saw = ws::of_type(&seen_by_agent, "transcript.segment");
    assert!(
        agent_saw
            .iter()
            .any(|e| e["data"]["segment"]["speaker"] == "caller")
            && agent_saw
                .iter()
                .any(|e| e["data"]["segment"]["speaker"] == "agent"),
        "{agent_saw:?}"
    );
    uac.hang_up(&mut dialog);
    // Stored (promptly: the end of the call waits on the streams' last segments).
    let call = stored_promptly(&q.p, &q.sup);
    let segs = segments_of(&q.p, &q.sup, &call);
    let (caller, agent) = (words_of(&segs, "caller"), words_of(&segs, "agent"));
    assert!(caller.contains("connection"), "{segs:?}");
    assert!(agent.contains("router"), "{segs:?}");
    assert!(!caller.contains("router") && !agent.contains("connection"));
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let transcript = body["transcript"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        transcript.contains("caller: ") && transcript.contains("agent: "),
        "{body:#}"
    );
    assert_eq!(body["queue"]["queue"], "sales", "{body:#}");
    assert!(
        call["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "transcribed")
    );
}

#[test]
fn pci_pause_keeps_a_span_out_of_the_transcript_and_the_recording() {
    let Some(model) = model() else { return };
    let q = queued("speechpci", &model, "Thank you for calling.");
    let uac = ProtoUac::new(q.p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut player = Player { seq: 1, ts: 0 };
    let id = call_until_bridged(&q, &uac, remote, &mut player);
    let action = |tok: &str, what: &str| {
        q.p.request(
            "POST",
            &format!("/api/v1/calls/{id}/actions"),
            Some(tok),
            Some(json!({ "action": what })),
        )
    };
    // Another agent, not on the call, cannot pause it.
    q.p.http(
        "POST",
        "/api/v1/users",
        Some(&q.admin),
        Some(
            json!({"email": "other@demo.parley.test", "name": "Other", "role": "agent",
                    "password": "long enough pw"}),
        ),
    );
    let other = q.p.login("other@demo.parley.test", "long enough pw");
    assert_eq!(action(&other, "pause_recording").0, 404);
    // The agent on the call pauses (twice: idempotent).
    let (code, live) = action(&q.agent_token, "pause_recording");
    assert_eq!(code, 200, "{live}");
    assert_eq!(live["recording_paused"], true, "{live}");
    assert_eq!(action(&q.agent_token, "pause_recording").0, 200);
    let mut audio = silence(1000);
    audio.extend(speak_ulaw("My card number is four one two three."));
    audio.extend(silence(1500));
    player.play(&uac, remote, &audio);
    // A supervisor resumes.
    let (code, live) = action(&q.sup, "resume_recording");
    assert_eq!(code, 200, "{live}");
    assert_eq!(live["recording_paused"], false, "{live}");
    assert_eq!(action(&q.sup, "resume_recording").0, 200);
    let mut audio = silence(500);
    audio.extend(speak_ulaw("What time does the store open tomorrow?"));
    audio.extend(silence(2000));
    player.play(&uac, remote, &audio);
    uac.hang_up(&mut dialog);
    let call = stored_promptly(&q.p, &q.sup);
    let segs = segments_of(&q.p, &q.sup, &call);
    let caller = words_of(&segs, "caller");
    assert!(
        caller.contains("store") && caller.contains("tomorrow"),
        "{segs:?}"
    );
    assert!(
        !caller.contains("card") && !caller.contains("four") && !caller.contains("4123"),
        "{segs:?}"
    );
    // The timeline entry lists the one pause (the repeats changed nothing).
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let pauses = body["controls"]["recording_pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 1, "{body:#}");
    let (from, to) = (
        pauses[0]["from_ms"].as_i64().unwrap(),
        pauses[0]["to_ms"].as_i64().unwrap(),
    );
    let events: Vec<&str> = body["controls"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("recording."))
        .collect();
    assert_eq!(events, ["recording.pause", "recording.resume"], "{body:#}");
    // The recording counted the pause (as long as the call task saw it, give or take
    // the media path's frame timing) and holds silence over it.
    let paused_ms = body["queue"]["recording_paused_ms"].as_i64().unwrap();
    assert!(paused_ms > 0, "{body:#}");
    assert!(
        (paused_ms - (to - from)).abs() < 1000,
        "{paused_ms} ms paused in the recording, {} ms by the controls",
        to - from
    );
    let location = body["queue"]["recording"].as_str().unwrap();
    let mut wav = crate::recording::wav(&q.p.dir.join("data"), location);
    let rate = i64::from(wav.spec().sample_rate);
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let answered = body["controls"]["answered_at_ms"].as_i64().unwrap();
    // Inside the pause (half a second in from either end): only zeros, both channels.
    let at = |ms: i64| usize::try_from((ms - answered).max(0) * rate / 1000 * 2).unwrap();
    let span = &samples[at(from + 500).min(samples.len())..at(to - 500).min(samples.len())];
    assert!(span.len() as i64 > rate, "{} samples", span.len());
    assert!(span.iter().all(|&s| s == 0), "audio in the paused span");
    // And the caller's speech after the pause is in it.
    let after = &samples[at(to + 300).min(samples.len())..];
    assert!(after.iter().step_by(2).any(|&s| s.abs() > 1000));
    // Every use was audited, the repeats too.
    let log = q.p.http(
        "GET",
        &format!("/api/v1/audit?entity_id={id}"),
        Some(&q.sup),
        None,
    );
    let uses = |a: &str| {
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == a)
            .count()
    };
    assert_eq!(uses("call.recording_pause"), 2, "{log}");
    assert_eq!(uses("call.recording_resume"), 2, "{log}");
}

#[test]
fn a_queue_with_transcription_off_leaves_no_transcript_while_the_tenant_is_on() {
    let Some(model) = model() else { return };
    let q = queued("speechqoff", &model, "I can reset your router for you.");
    let path = format!("/api/v1/queues/{}/speech", q.queue_id);
    assert_eq!(
        q.p.http("GET", &path, Some(&q.sup), None)["transcription"],
        true
    );
    // Agents may not switch it; unknown queues are 404.
    let (code, _) = q.p.request(
        "PUT",
        &path,
        Some(&q.agent_token),
        Some(json!({"transcription": false})),
    );
    assert_eq!(code, 403);
    let (code, _) = q.p.request(
        "PUT",
        "/api/v1/queues/nope/speech",
        Some(&q.admin),
        Some(json!({"transcription": false})),
    );
    assert_eq!(code, 404);
    let set = q.p.http(
        "PUT",
        &path,
        Some(&q.admin),
        Some(json!({"transcription": false})),
    );
    assert_eq!(set["transcription"], false);
    assert_eq!(
        q.p.http("GET", "/api/v1/speech/settings", Some(&q.sup), None)["transcription"],
        true
    );
    let seen = ws::events(&q.p, &q.sup);
    let uac = ProtoUac::new(q.p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut player = Player { seq: 1, ts: 0 };
    call_until_bridged(&q, &uac, remote, &mut player);
    let mut audio = silence(500);
    audio.extend(speak_ulaw("My internet connection is not working."));
    audio.extend(silence(3000));
    player.play(&uac, remote, &audio);
    uac.hang_up(&mut dialog);
    let call = stored_promptly(&q.p, &q.sup);
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["queue"]["queue"], "sales", "{body:#}");
    assert!(body.get("transcript").is_none(), "{body:#}");
    assert!(segments_of(&q.p, &q.sup, &call).is_empty());
    assert!(ws::of_type(&seen, "transcript.segment").is_empty());
    assert_eq!(q.p.counter(&q.admin, "speech_live_segments_total"), 0);
    // The switch is audited.
    let log = q.p.http(
        "GET",
        &format!("/api/v1/audit?entity_id={}", q.queue_id),
        Some(&q.admin),
        None,
    );
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "queue_speech.update"),
        "{log}"
    );
}

#[test]
fn a_pci_pause_before_the_agent_answers_covers_the_agent_leg_and_the_recording() {
    let Some(model) = model() else { return };
    let q = unstaffed(
        "speechpci2",
        &model,
        "I can reset your router for you right now.",
    );
    let uac = ProtoUac::new(q.p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut player = Player { seq: 1, ts: 0 };
    // The caller waits in the queue (nobody available); a supervisor pauses the call.
    let id = wait_every(
        "the call listed",
        Duration::from_secs(30),
        Duration::ZERO,
        || {
            player.play(&uac, remote, &silence(200));
            let calls = q.p.http("GET", "/api/v1/calls", Some(&q.sup), None);
            calls
                .as_array()
                .unwrap()
                .first()
                .map(|c| c["id"].as_str().unwrap().to_owned())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/api/v1/calls/{id}/actions");
    let (code, live) = q.p.request(
        "POST",
        &path,
        Some(&q.sup),
        Some(json!({"action": "pause_recording"})),
    );
    assert_eq!(code, 200, "{live}");
    // The agent answers while paused: their leg, tapped now, and the recording, started
    // now, start paused; the agent's sentence leaves no transcript.
    q.staff();
    call_until_bridged(&q, &uac, remote, &mut player);
    player.play(&uac, remote, &silence(6000));
    let (code, live) = q.p.request(
        "POST",
        &path,
        Some(&q.sup),
        Some(json!({"action": "resume_recording"})),
    );
    assert_eq!(code, 200, "{live}");
    let mut audio = silence(500);
    audio.extend(speak_ulaw("What time does the store open tomorrow?"));
    audio.extend(silence(2000));
    player.play(&uac, remote, &audio);
    uac.hang_up(&mut dialog);
    let call = stored_promptly(&q.p, &q.sup);
    let segs = segments_of(&q.p, &q.sup, &call);
    assert!(words_of(&segs, "caller").contains("store"), "{segs:?}");
    assert!(words_of(&segs, "agent").is_empty(), "{segs:?}");
    // The recording was paused from its start (the answer) to the resume.
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let pause = &body["controls"]["recording_pauses"][0];
    let answered = body["controls"]["answered_at_ms"].as_i64().unwrap();
    let paused_ms = body["queue"]["recording_paused_ms"].as_i64().unwrap();
    let expected = pause["to_ms"].as_i64().unwrap() - answered;
    assert!(
        (paused_ms - expected).abs() < 1000,
        "{paused_ms} ms paused in the recording, {expected} ms from answer to resume: {body:#}"
    );
}
