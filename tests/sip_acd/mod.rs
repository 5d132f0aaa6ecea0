//! Voice ACD end to end (part of the `sip` test binary): the demo flow's option 1
//! enqueues the caller in queue `sales` (skill `sales`); real sipp phones are the
//! agents, the caller is the test's own UAC. The router picks the longest-idle agent
//! with the skill, re-routes on no answer, bridges the media, and the call lands on the
//! caller's timeline and in the call records with queue, wait, agents and talk time.

use super::*;

/// Like `http`, for answers that may have no body (204).
fn send(p: &Parley, method: &str, path: &str, token: &str, body: Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", p.http),
            )
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{method} {path}: {}",
            res.status()
        );
    });
}

/// The demo tenant comes with queues `sales` and `support`, skills of those names that
/// both demo agents have, and the agents available (issue 14). These tests build their
/// own ACD set-up in that tenant: this deletes the demo's queues, takes every skill off
/// every user and sets everyone offline.
pub(super) fn bare_acd(p: &Parley, admin: &str) {
    let queues = p.http("GET", "/api/v1/queues", Some(admin), None);
    for q in queues.as_array().unwrap() {
        let id = q["id"].as_str().unwrap();
        send(
            p,
            "DELETE",
            &format!("/api/v1/queues/{id}"),
            admin,
            Value::Null,
        );
    }
    let users = p.http("GET", "/api/v1/users", Some(admin), None);
    for u in users.as_array().unwrap() {
        let uid = u["id"].as_str().unwrap();
        let skills = p.http(
            "GET",
            &format!("/api/v1/users/{uid}/skills"),
            Some(admin),
            None,
        );
        for k in skills.as_array().unwrap() {
            let sid = k["skill_id"].as_str().unwrap();
            send(
                p,
                "DELETE",
                &format!("/api/v1/users/{uid}/skills/{sid}"),
                admin,
                Value::Null,
            );
        }
        send(
            p,
            "PUT",
            &format!("/api/v1/users/{uid}/presence"),
            admin,
            json!({"status": "offline"}),
        );
    }
}

/// The id of skill `name`: the demo's, or a new one.
fn skill_id(p: &Parley, admin: &str, name: &str) -> String {
    let skills = p.http("GET", "/api/v1/skills", Some(admin), None);
    if let Some(k) = skills
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
    {
        return k["id"].as_str().unwrap().to_owned();
    }
    let k = p.http(
        "POST",
        "/api/v1/skills",
        Some(admin),
        Some(json!({"name": name})),
    );
    k["id"].as_str().unwrap().to_owned()
}

struct Agent {
    id: String,
    ext: String,
    pw: String,
}

/// The two demo agents plus a third one (extension 1003) made over the API.
fn agents(p: &Parley, admin: &str) -> Vec<Agent> {
    let mut out = Vec::new();
    for (i, email) in ["agent1@demo.parley.test", "agent2@demo.parley.test"]
        .iter()
        .enumerate()
    {
        let (ext, pw) = p.agent(i);
        out.push(Agent {
            id: p.user_id(admin, email),
            ext,
            pw,
        });
    }
    let u = p.http("POST",
        "/api/v1/users",
        Some(admin),
        Some(
            json!({"email": "agent3@demo.parley.test", "name": "Cid Agent", "role": "agent", "password": "long enough pw"}),
        ),
    );
    let id = u["id"].as_str().unwrap().to_owned();
    p.http(
        "PUT",
        &format!("/api/v1/users/{id}/sip"),
        Some(admin),
        Some(json!({"extension": "1003", "password": "third sip pw"})),
    );
    out.push(Agent {
        id,
        ext: "1003".into(),
        pw: "third sip pw".into(),
    });
    out
}

/// Queue `sales` with the given ring timeout; the skill `sales` with proficiency for
/// the agents listed.
fn sales_queue(p: &Parley, admin: &str, ring_timeout_s: u32, skilled: &[&Agent]) {
    bare_acd(p, admin);
    let sid = skill_id(p, admin, "sales");
    let sid = sid.as_str();
    for a in skilled {
        send(
            p,
            "PUT",
            &format!("/api/v1/users/{}/skills/{sid}", a.id),
            admin,
            json!({"proficiency": 3}),
        );
    }
    p.http(
        "POST",
        "/api/v1/queues",
        Some(admin),
        Some(
            json!({"name": "sales", "skills": [{"skill": sid, "min_proficiency": 2}],
                    "ring_timeout_s": ring_timeout_s, "wrap_up_s": 1, "announce_interval_s": 2,
                    "max_missed_offers": 3}),
        ),
    );
}

fn available(p: &Parley, admin: &str, a: &Agent) {
    p.http(
        "PUT",
        &format!("/api/v1/users/{}/presence", a.id),
        Some(admin),
        Some(json!({"status": "available"})),
    );
    // Idle times are compared in milliseconds.
    std::thread::sleep(Duration::from_millis(50));
}

/// Waits until the router sees `n` available agents in the tenant's queues.
fn wait_staffed(p: &Parley, token: &str, n: u64) {
    eventually(
        &format!("{n} free agents in the router"),
        Duration::from_secs(20),
        || {
            let v = p.http("GET", "/api/v1/queues/live", Some(token), None);
            (v[0]["agents_free"].as_u64() == Some(n)).then_some(())
        },
    );
}

/// Calls the demo number, presses 1 (sales) and talks until `want` of our frames came
/// back through the bridged agent phone (which echoes), then hangs up.
fn call_sales_and_talk(p: &Parley, want: usize) -> usize {
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("+15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    let k = out.until_audible(&uac, remote, 10, &mut rx);
    out.digit(&uac, remote, '1', &mut rx);
    rx.clear();
    let mut sent = Vec::new();
    let mut echoed = 0;
    // Up to 60 s: queue announcements, a ring timeout, the answer, the echo.
    for i in 0..3000u16 {
        let f = k.wrapping_add(i);
        out.audio(&uac, remote, f, &mut rx);
        sent.push(pcmu_frame(f));
        std::thread::sleep(Duration::from_millis(20));
        if i % 25 == 0 {
            echoed = sent.iter().filter(|f| rx.contains(f)).count();
            if echoed >= want {
                break;
            }
        }
    }
    // Talk a little longer so the talk time is measurable.
    for i in 0..100u16 {
        out.audio(&uac, remote, k.wrapping_add(3000 + i), &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    uac.hang_up(&mut dialog);
    echoed
}

/// The call record of the call, once stored.
fn call_record(p: &Parley, sup: &str) -> Value {
    eventually("the call record", Duration::from_secs(10), || {
        let v = p.http("GET", "/api/v1/call-records", Some(sup), None);
        v.as_array().and_then(|a| a.first()).cloned()
    })
}

/// The caller's timeline entry for the call.
fn timeline_call(p: &Parley, sup: &str) -> Value {
    p.stored_call(sup, "%2B15550123", Duration::from_secs(10))
}

#[test]
fn acd_the_longest_idle_agent_with_the_skill_gets_the_call_and_it_lands_on_the_timeline() {
    let p = Parley::start_with("acdidle", &[]);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    // 1001: idle longest but without the skill; 1002 and 1003 have it, 1002 idle longer.
    sales_queue(&p, &admin, 15, &[&a[1], &a[2]]);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let mut phones = Vec::new();
    for (ag, port) in a.iter().zip([p1, p2, p3]) {
        // Every phone can answer; only the right one may ring.
        phones.push(uas("uas_bridge.xml", port, 1, &["-rtp_echo"]));
        check(
            &format!("REGISTER {}", ag.ext),
            register(&p, &ag.ext, &ag.pw, port, "register.xml"),
        );
    }
    for ag in &a {
        available(&p, &admin, ag);
    }
    // The tenant records queue calls.
    send(
        &p,
        "PUT",
        "/api/v1/acd/recording",
        &admin,
        json!({"recording": "on"}),
    );
    wait_staffed(&p, &sup, 2);
    let echoed = call_sales_and_talk(&p, 25);
    assert!(echoed >= 25, "{echoed} frames came back through the agent");
    let (status, err) = finished(&mut phones[1], Duration::from_secs(15));
    assert!(status.success(), "1002's phone: {status:?} {err}");
    let rec = call_record(&p, &sup);
    assert_eq!(rec["agent_id"], a[1].id.as_str(), "{rec}");
    assert_eq!(rec["outcome"], "answered");
    assert_eq!(
        rec["agents"].as_array().unwrap().len(),
        1,
        "only 1002 was offered: {rec}"
    );
    assert_eq!(rec["hangup_side"], "caller");
    assert!(rec["talk_ms"].as_i64().unwrap() > 0, "{rec}");
    assert!(rec["wait_ms"].as_i64().unwrap() >= 0);
    let e = timeline_call(&p, &sup);
    let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    // The existing format stays (summary, flow, IVR trail, quality) with the queue part.
    assert!(body["ivr_trail"].is_array(), "{body}");
    assert!(body.get("quality").is_some());
    let q = &body["queue"];
    assert_eq!(q["queue"], "sales", "{body}");
    assert_eq!(q["agent_id"], a[1].id.as_str());
    assert_eq!(q["outcome"], "answered");
    assert!(q["wait_s"].is_u64() && q["talk_s"].is_u64(), "{q}");
    assert_eq!(q["agents"][0]["outcome"], "answered");
    // The recording: on the record, attached to the timeline entry, a stereo WAV with
    // audio in it.
    let location = rec["recording"].as_str().expect("a recording");
    assert_eq!(q["recording"], location);
    let att = e["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "call-recording.wav")
        .expect("the recording attached");
    assert_eq!(att["location"], location);
    let wav = crate::recording::wav(&p.dir.join("data"), location);
    assert_eq!(wav.spec().channels, 2);
    assert!(
        wav.duration() > 8000,
        "at least a second recorded: {}",
        wav.duration()
    );
    // The others were never offered the call (the record lists every offer).
    for i in [0, 2] {
        let _ = phones[i].kill();
        let _ = phones[i].wait();
    }
    // The router's latency histogram is served with the SIP counters.
    assert!(p.counter(&sup, "acd_offers_total") >= 1);
    assert!(p.counter(&sup, "acd_route_steps_total") >= 1);
}

#[test]
fn acd_no_answer_re_routes_to_the_next_agent() {
    let p = Parley::start_with("acdnoans", &[]);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    // 1002 (idle longest of the skilled) rings out after 3 s; 1003 answers.
    sales_queue(&p, &admin, 3, &[&a[1], &a[2]]);
    let (p2, p3) = (free_port(), free_port());
    let mut ringing = uas("uas_ring_cancel.xml", p2, 1, &[]);
    let mut answering = uas("uas_bridge.xml", p3, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &a[1].ext, &a[1].pw, p2, "register.xml"),
    );
    check(
        "REGISTER 1003",
        register(&p, &a[2].ext, &a[2].pw, p3, "register.xml"),
    );
    available(&p, &admin, &a[1]);
    available(&p, &admin, &a[2]);
    wait_staffed(&p, &sup, 2);
    let echoed = call_sales_and_talk(&p, 25);
    assert!(echoed >= 25, "{echoed} frames came back through 1003");
    let (status, err) = finished(&mut ringing, Duration::from_secs(15));
    assert!(
        status.success(),
        "1002 was rung then cancelled: {status:?} {err}"
    );
    let (status, err) = finished(&mut answering, Duration::from_secs(15));
    assert!(status.success(), "1003 answered: {status:?} {err}");
    let rec = call_record(&p, &sup);
    let agents = rec["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{rec}");
    assert_eq!(agents[0]["agent_id"], a[1].id.as_str());
    assert_eq!(agents[0]["outcome"], "no_answer");
    assert_eq!(agents[1]["agent_id"], a[2].id.as_str());
    assert_eq!(agents[1]["outcome"], "answered");
    assert_eq!(rec["agent_id"], a[2].id.as_str());
    // Waited at least one ring timeout.
    assert!(rec["wait_ms"].as_i64().unwrap() >= 3000, "{rec}");
    // Stats for the day: one answered call in the queue.
    let stats = p.http(
        "GET",
        "/api/v1/stats/queues?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
        Some(&sup),
        None,
    );
    assert_eq!(stats[0]["answered"], 1, "{stats}");
}

#[test]
fn acd_max_wait_sends_the_caller_to_voicemail_and_records_the_timeout() {
    let p = Parley::start_with("acdmaxwait", &[]);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    // A shorter voicemail in the demo flow; queue `sales` waits 3 s at most. Nobody is
    // available.
    let flow = p.http("GET", "/api/v1/ivr/flows/demo", Some(&admin), None);
    let mut doc = match &flow["draft"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    doc["nodes"]["voicemail"]["max_length_s"] = json!(2);
    p.http("PUT", "/api/v1/ivr/flows/demo", Some(&admin), Some(doc));
    p.http("POST", "/api/v1/ivr/flows/demo/publish", Some(&admin), None);
    bare_acd(&p, &admin);
    p.http("POST",
        "/api/v1/queues",
        Some(&admin),
        Some(
            json!({"name": "sales", "max_wait_s": 3, "max_wait_action": "voicemail", "announce_interval_s": 1}),
        ),
    );
    let uac = ProtoUac::new(p.sip);
    let (_dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..25u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    out.digit(&uac, remote, '1', &mut rx);
    // Waiting (after the greeting and the menu): the live metrics show the call
    // (bounded: about 20 s).
    wait_every(
        "the waiting call in the live metrics",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || {
            let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
            if v[0]["waiting"] == 1 {
                return Some(());
            }
            out.audio(&uac, remote, 0, &mut rx);
            None
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut bye = None;
    uac.sip
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 65535];
    for k in 0..1500u16 {
        out.audio(&uac, remote, k, &mut rx);
        if let Ok((n, _)) = uac.sip.recv_from(&mut buf)
            && let Ok(SipMessage::Request(r)) = SipMessage::parse(&buf[..n])
            && r.method() == &Method::Bye
        {
            bye = Some(r);
            break;
        }
    }
    let bye = bye.expect("the flow ends after the voicemail");
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
    let rec = call_record(&p, &sup);
    assert_eq!(rec["outcome"], "timeout", "{rec}");
    assert_eq!(rec["hangup_cause"], "max_wait");
    assert!(rec["agent_id"].is_null());
    assert!(rec["wait_ms"].as_i64().unwrap() >= 3000, "{rec}");
    let e = timeline_call(&p, &sup);
    let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["queue"]["outcome"], "timeout", "{body}");
    let nodes: Vec<&str> = body["ivr_trail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert!(nodes.ends_with(&["sales_queue", "voicemail"]), "{nodes:?}");
}

/// Every call record once there are `n`, newest first.
fn call_records(p: &Parley, sup: &str, n: usize) -> Vec<Value> {
    eventually(
        &format!("{n} call records"),
        Duration::from_secs(15),
        || {
            let v = p.http("GET", "/api/v1/call-records", Some(sup), None);
            v.as_array().filter(|a| a.len() >= n).cloned()
        },
    )
}

#[test]
fn acd_consent_policy_records_the_opted_in_customer_and_not_the_unknown_caller() {
    let p = Parley::start_with("acdconsent", &[]);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    sales_queue(&p, &admin, 15, &[&a[1]]);
    let port = free_port();
    let mut phone = uas("uas_bridge.xml", port, 2, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &a[1].ext, &a[1].pw, port, "register.xml"),
    );
    available(&p, &admin, &a[1]);
    send(
        &p,
        "PUT",
        "/api/v1/acd/recording",
        &admin,
        json!({"recording": "consent"}),
    );
    wait_staffed(&p, &sup, 1);
    // 1. +15550123 is not a customer yet: not recorded.
    let echoed = call_sales_and_talk(&p, 25);
    assert!(echoed >= 25, "{echoed} frames came back through 1002");
    let first = call_records(&p, &sup, 1).remove(0);
    assert_eq!(first["outcome"], "answered", "{first}");
    assert!(first["recording"].is_null(), "{first}");
    let e = timeline_call(&p, &sup);
    let b: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    assert_eq!(b["queue"]["recorded"], false, "{b}");
    assert_eq!(b["queue"]["recording_reason"], "no_consent", "{b}");
    // 2. The customer the call created opts in: their next call is recorded, without
    // the notice.
    let (_, c) = p.try_get(
        "/api/v1/customers/lookup?kind=phone&value=%2B15550123",
        &sup,
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let c = p.http(
        "PATCH",
        &format!("/api/v1/customers/{cid}"),
        Some(&admin),
        Some(json!({"consent": {"recording": true, "marketing": false}})),
    );
    assert_eq!(c["consent"]["recording"], true, "{c}");
    wait_staffed(&p, &sup, 1);
    let echoed = call_sales_and_talk(&p, 25);
    assert!(echoed >= 25, "{echoed} frames came back through 1002");
    let (status, err) = finished(&mut phone, Duration::from_secs(15));
    assert!(status.success(), "1002's phone: {status:?} {err}");
    let recs = call_records(&p, &sup, 2);
    let second = recs
        .iter()
        .find(|r| r["call_id"] != first["call_id"])
        .unwrap();
    let location = second["recording"]
        .as_str()
        .unwrap_or_else(|| panic!("the opted-in customer's call is recorded: {second}"));
    let wav = crate::recording::wav(&p.dir.join("data"), location);
    assert_eq!(wav.spec().channels, 2);
    let t = p.http(
        "GET",
        &format!("/api/v1/customers/{cid}/timeline"),
        Some(&sup),
        None,
    );
    let mut reasons: Vec<(bool, String)> = t["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "call")
        .map(|e| {
            let b: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            (
                b["queue"]["recorded"].as_bool().unwrap(),
                b["queue"]["recording_reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            (false, "no_consent".to_owned()),
            (true, "customer_consented".to_owned())
        ]
    );
}

#[test]
fn acd_a_deactivated_agent_leaves_the_running_router_and_is_not_offered_the_next_call() {
    let p = Parley::start_with("acddeact", &[]);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    // 1002 is the only agent of `sales`; their phone would answer if rung.
    sales_queue(&p, &admin, 15, &[&a[1]]);
    let port = free_port();
    let mut phone = uas("uas_bridge.xml", port, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &a[1].ext, &a[1].pw, port, "register.xml"),
    );
    available(&p, &admin, &a[1]);
    wait_staffed(&p, &sup, 1);
    let routable = |p: &Parley| -> bool {
        p.http("GET", "/api/v1/agents/live", Some(&sup), None)
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["user_id"] == a[1].id.as_str())
    };
    assert!(routable(&p));
    // Deactivated over the API: the running router drops them (no restart).
    p.http(
        "PATCH",
        &format!("/api/v1/users/{}", a[1].id),
        Some(&admin),
        Some(json!({"active": false})),
    );
    eventually(
        "the deactivated agent to leave the router",
        Duration::from_secs(10),
        || (!routable(&p)).then_some(()),
    );
    // The next call waits with nobody staffed, and is offered to nobody.
    let (uac, mut dialog, remote, mut out) = callback::call_and_wait_in_sales(&p, &sup);
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..50u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
    assert_eq!(v[0]["waiting"], 1, "{v}");
    assert_eq!(v[0]["agents_staffed"], 0, "{v}");
    uac.hang_up(&mut dialog);
    let rec = call_record(&p, &sup);
    assert_eq!(rec["outcome"], "abandoned", "{rec}");
    assert!(
        rec["agents"].as_array().unwrap().is_empty(),
        "nobody was offered the call: {rec}"
    );
    let _ = phone.kill();
    let _ = phone.wait();
    // Reactivated: back in the router at once.
    p.http(
        "PATCH",
        &format!("/api/v1/users/{}", a[1].id),
        Some(&admin),
        Some(json!({"active": true})),
    );
    eventually(
        "the reactivated agent to be routable again",
        Duration::from_secs(10),
        || routable(&p).then_some(()),
    );
}

#[path = "callback.rs"]
mod callback;
