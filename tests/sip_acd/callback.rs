//! Callbacks end to end: a caller waiting in queue `sales` presses the queue's
//! `callback_key` (RFC 4733 from the test's UAC) and the call ends; when an agent
//! becomes available the router offers the callback item, the agent's phone (sipp)
//! rings and answers, the carrier behind the trunk (sipp) gets an INVITE to the
//! caller's number with the tenant's caller ID, and both are bridged. And the demo
//! flow's `callback` node (reached through `max_wait_action: callback`) queues a
//! callback item that keeps the caller's place.

use super::*;

/// Calls the demo number, hears the greeting, presses 1 (sales) and waits until the
/// router shows the call waiting.
pub(super) fn call_and_wait_in_sales(
    p: &Parley,
    sup: &str,
) -> (ProtoUac, Dialog, SocketAddr, RtpOut) {
    call_as_and_wait_in_sales(p, sup, "+15550123")
}

/// [`call_and_wait_in_sales`] from the caller number `from`.
fn call_as_and_wait_in_sales(
    p: &Parley,
    sup: &str,
    from: &str,
) -> (ProtoUac, Dialog, SocketAddr, RtpOut) {
    let uac = ProtoUac::new(p.sip);
    let (dialog, remote) = uac.call_as(from, "+15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..25u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    out.digit(&uac, remote, '1', &mut rx);
    wait_every(
        "the waiting call in the live metrics",
        Duration::from_secs(12),
        Duration::from_millis(20),
        || {
            if p.live_queue(sup, "sales")["waiting"] == 1 {
                return Some(());
            }
            out.audio(&uac, remote, 0, &mut rx);
            None
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (uac, dialog, remote, out)
}

/// Sends audio (and `digits`, when given, after half a second) until Parley's BYE,
/// which is answered.
fn until_bye(uac: &ProtoUac, remote: SocketAddr, out: &mut RtpOut, digits: &[(u16, char)]) {
    let mut rx: Vec<Vec<u8>> = Vec::new();
    uac.sip
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 65535];
    for k in 0..2500u16 {
        if let Some((_, d)) = digits.iter().find(|(at, _)| *at == k) {
            out.digit(uac, remote, *d, &mut rx);
        }
        out.audio(uac, remote, k, &mut rx);
        if let Ok((n, _)) = uac.sip.recv_from(&mut buf)
            && let Ok(SipMessage::Request(r)) = SipMessage::parse(&buf[..n])
            && r.method() == &Method::Bye
        {
            uac.sip
                .send_to(
                    &SipMessage::Response(r.make_response(200, None, None)).to_bytes(),
                    uac.to,
                )
                .unwrap();
            return;
        }
    }
    panic!("no BYE from Parley");
}

/// Every call entry on the caller's (+15550123) timeline once `n` are there.
fn timeline_calls(p: &Parley, sup: &str, n: usize) -> Vec<Value> {
    eventually(
        &format!("{n} calls on the caller's timeline"),
        Duration::from_secs(30),
        || {
            let (s, c) = p.try_get("/api/v1/customers/lookup?kind=phone&value=%2B15550123", sup);
            if s != 200 {
                return None;
            }
            let id = c["id"].as_str().unwrap();
            let t = p.http(
                "GET",
                &format!("/api/v1/customers/{id}/timeline"),
                Some(sup),
                None,
            );
            let calls: Vec<Value> = t["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "call")
                .cloned()
                .collect();
            (calls.len() >= n).then_some(calls)
        },
    )
}

/// The callback tests' carriers are sipp UAS scenarios that expect an INVITE first: the
/// trunk's OPTIONS keep-alive (retransmitted for 32 s after start-up) would abort them.
/// (Regression: `acd_callback_survives_a_restart…` failed whenever a keep-alive landed
/// before the callback's INVITE.)
const NO_KEEPALIVE: &[(&str, &str)] = &[("PARLEY_SIP_TRUNK_KEEPALIVE_SECS", "0")];

fn body(e: &Value) -> Value {
    serde_json::from_str(e["body"].as_str().unwrap()).unwrap()
}

/// Queue `sales` (skill `sales`, which agent `agent_id` has) with `*` for a callback,
/// and the tenant's trunk to a carrier on `carrier_port`.
fn sales_with_callback_key(p: &Parley, admin: &str, agent_id: &str, carrier_port: u16) {
    bare_acd(p, admin);
    let sid = skill_id(p, admin, "sales");
    let sid = sid.as_str();
    send(
        p,
        "PUT",
        &format!("/api/v1/users/{}/skills/{sid}", agent_id),
        admin,
        json!({"proficiency": 3}),
    );
    p.http(
        "POST",
        "/api/v1/queues",
        Some(admin),
        Some(
            json!({"name": "sales", "skills": [{"skill": sid, "min_proficiency": 2}],
                    "ring_timeout_s": 15, "wrap_up_s": 1, "announce_interval_s": 0,
                    "callback_key": "*"}),
        ),
    );
    p.add_carrier(admin, carrier_port);
}

#[test]
fn acd_callback_key_keeps_the_place_and_is_dialled_out_through_the_trunk() {
    let p = Parley::start_with("acdcallback", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    // The carrier behind the tenant's trunk.
    let carrier_port = free_port();
    let mut carrier = uas("uas_trunk_callback.xml", carrier_port, 1, &["-rtp_echo"]);
    sales_with_callback_key(&p, &admin, &a[1].id, carrier_port);
    // The agent's phone is registered but the agent is not available yet.
    let phone_port = free_port();
    let mut phone = uas("uas_bridge.xml", phone_port, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &a[1].ext, &a[1].pw, phone_port, "register.xml"),
    );

    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    // '*': a callback in place; Parley confirms and hangs up.
    until_bye(&uac, remote, &mut out, &[(5, '*')]);
    eventually(
        "the callback waiting in the queue",
        Duration::from_secs(10),
        || (p.live_queue(&sup, "sales")["callbacks"] == 1).then_some(()),
    );
    let recs = eventually("a call record", Duration::from_secs(10), || {
        let recs = p.http("GET", "/api/v1/call-records", Some(&sup), None);
        recs.as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(recs)
    });
    assert_eq!(recs[0]["outcome"], "callback", "{recs}");

    // The agent becomes available: their phone rings, answers, the carrier gets the
    // caller's number with the trunk's caller ID (checked by the scenario), answers,
    // talks and hangs up.
    available(&p, &admin, &a[1]);
    let (status, err) = finished(&mut carrier, Duration::from_secs(60));
    assert!(status.success(), "the carrier: {status:?} {err}");
    let (status, err) = finished(&mut phone, Duration::from_secs(20));
    assert!(status.success(), "1002's phone: {status:?} {err}");

    // Both calls on the caller's timeline: the request, and the callback connected.
    let calls = timeline_calls(&p, &sup, 2);
    let request = calls
        .iter()
        .map(body)
        .find(|b| b["summary"] == "Callback requested")
        .unwrap_or_else(|| panic!("the request on the timeline: {calls:?}"));
    assert_eq!(request["queue"]["outcome"], "callback", "{request}");
    assert_eq!(request["callback_request"]["number"], "+15550123");
    let placed = calls
        .iter()
        .find(|e| body(e)["summary"] == "Callback")
        .unwrap_or_else(|| panic!("the callback on the timeline: {calls:?}"));
    assert_eq!(placed["direction"], "outbound");
    let b = body(placed);
    assert_eq!(b["controls"]["callback"]["outcome"], "connected", "{b}");
    assert_eq!(b["controls"]["callback"]["attempt"], 1, "{b}");
    let events: Vec<&str> = b["controls"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for e in ["callback", "agent.answered", "customer.answered"] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    // The router is done with it.
    let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
    assert!(
        v.as_array().unwrap().iter().all(|q| q["callbacks"] == 0),
        "{v}"
    );
}

/// The stored callbacks (`GET /callbacks`) once one is in `state`.
fn callback_in(p: &Parley, sup: &str, state: &str) -> Value {
    let mut v = Value::Null;
    wait_until(
        &format!("a callback in state {state}"),
        Duration::from_secs(20),
        || {
            v = p.http("GET", "/api/v1/callbacks", Some(sup), None);
            v.as_array()
                .and_then(|a| a.iter().find(|c| c["state"] == state))
                .cloned()
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[test]
fn acd_callback_survives_a_restart_with_its_place_and_is_dialled_after_it() {
    let mut p = Parley::start_with("acdcbrestart", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    let carrier_port = free_port();
    sales_with_callback_key(&p, &admin, &a[1].id, carrier_port);
    // Nobody is available: the caller presses '*' for a callback and is hung up.
    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    until_bye(&uac, remote, &mut out, &[(5, '*')]);
    let before = callback_in(&p, &sup, "waiting");
    assert_eq!(before["number"], "+15550123", "{before}");
    assert_eq!(before["attempts"], 0);
    // The request's call links to it once filed on the timeline.
    eventually(
        "the callback linked to its call",
        Duration::from_secs(10),
        || {
            callback_in(&p, &sup, "waiting")["interaction_id"]
                .is_string()
                .then_some(())
        },
    );

    // Parley stops and starts again on the same database.
    p.restart();
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    let after = callback_in(&p, &sup, "waiting");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["since"], before["since"], "the place is kept");
    // Back in the router, with its original wait.
    eventually(
        "the callback restored in the router",
        Duration::from_secs(10),
        || (p.live_queue(&sup, "sales")["callbacks"] == 1).then_some(()),
    );

    // An agent becomes available: their phone rings, answers; the carrier gets the
    // caller's number with the trunk's caller ID, answers, talks and hangs up.
    let mut carrier = uas("uas_trunk_callback.xml", carrier_port, 1, &["-rtp_echo"]);
    let phone_port = free_port();
    let mut phone = uas("uas_bridge.xml", phone_port, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &a[1].ext, &a[1].pw, phone_port, "register.xml"),
    );
    available(&p, &admin, &a[1]);
    let (status, err) = finished(&mut carrier, Duration::from_secs(60));
    assert!(status.success(), "the carrier: {status:?} {err}");
    let (status, err) = finished(&mut phone, Duration::from_secs(20));
    assert!(status.success(), "1002's phone: {status:?} {err}");
    let done = callback_in(&p, &sup, "connected");
    assert_eq!(done["id"], before["id"]);
    assert_eq!(done["attempts"], 1, "{done}");
    // On the caller's timeline: the request, the callback call connected, and the
    // callback's own entries (requested, connected).
    let calls = timeline_calls(&p, &sup, 2);
    let placed = calls
        .iter()
        .map(body)
        .find(|b| b["summary"] == "Callback")
        .unwrap_or_else(|| panic!("the callback call on the timeline: {calls:?}"));
    assert_eq!(placed["controls"]["callback"]["outcome"], "connected");
    let customer = &done["customer_id"];
    let t = p.http(
        "GET",
        &format!("/api/v1/customers/{}/timeline", customer.as_str().unwrap()),
        Some(&sup),
        None,
    );
    let system: Vec<String> = t["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "system")
        .map(|e| body(e)["summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    for want in ["Callback requested", "Callback connected"] {
        assert!(system.iter().any(|s| s == want), "{want} in {system:?}");
    }
    let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
    assert!(
        v.as_array().unwrap().iter().all(|q| q["callbacks"] == 0),
        "{v}"
    );
    // Every call ended cleanly, the one Parley placed included: another restart
    // finds no call left in progress to close as `server_restart`.
    p.restart();
    let recs = p.http("GET", "/api/v1/call-records", Some(&sup), None);
    assert!(
        recs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] != "server_restart"),
        "{recs:#}"
    );
}

/// Queue `sales` sends its callers to the flow's callback node after 2 s (the node's
/// queue is `support`); nobody is available.
fn sales_overflowing_to_the_callback_node(p: &Parley, admin: &str) {
    bare_acd(p, admin);
    p.http("POST",
        "/api/v1/queues",
        Some(admin),
        Some(
            json!({"name": "sales", "max_wait_s": 2, "max_wait_action": "callback", "announce_interval_s": 0}),
        ),
    );
    p.http(
        "POST",
        "/api/v1/queues",
        Some(admin),
        Some(json!({"name": "support"})),
    );
}

#[test]
fn ivr_callback_node_queues_a_callback_that_keeps_the_place() {
    let p = Parley::start_with("ivrcallback", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    sales_overflowing_to_the_callback_node(&p, &admin);
    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    // The callback node's confirmation ("press 1 to confirm") comes after the max
    // wait; 1 is pressed a few times over ~10 s (the prompt allows barge-in or not).
    let presses: Vec<(u16, char)> = (1..8).map(|i| (i * 100, '1')).collect();
    until_bye(&uac, remote, &mut out, &presses);
    let support = eventually(
        "a callback in queue support",
        Duration::from_secs(10),
        || {
            let support = p.live_queue(&sup, "support");
            (support["callbacks"] == 1).then_some(support)
        },
    );
    // It kept the caller's place: its wait counts from when they entered `sales`.
    assert!(
        support["longest_wait_s"].as_u64().unwrap_or(0) >= 2,
        "{support}"
    );
    let calls = timeline_calls(&p, &sup, 1);
    let b = body(&calls[0]);
    assert_eq!(b["summary"], "Callback requested", "{b}");
    assert_eq!(b["callback_request"]["number"], "+15550123", "{b}");
    assert_eq!(b["callback_request"]["queue"], "support", "{b}");
    assert_eq!(b["callback_request"]["queued"], true, "{b}");
    assert_eq!(b["queue"]["outcome"], "callback", "{b}");
    let nodes: Vec<&str> = b["ivr_trail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert!(nodes.contains(&"callback"), "{nodes:?}");
    assert!(nodes.contains(&"callback_ok"), "{nodes:?}");
}

#[test]
fn acd_callback_to_a_busy_customer_is_retried_three_times_then_failed() {
    let p = Parley::start_with("acdcbretry", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    // The demo flow's `sales_queue` node asks for the skill `sales`.
    bare_acd(&p, &admin);
    let sid = skill_id(&p, &admin, "sales");
    let sid = sid.as_str();
    send(
        &p,
        "PUT",
        &format!("/api/v1/users/{}/skills/{sid}", a[0].id),
        &admin,
        json!({"proficiency": 3}),
    );
    p.http(
        "POST",
        "/api/v1/queues",
        Some(&admin),
        Some(
            json!({"name": "sales", "ring_timeout_s": 15, "wrap_up_s": 1,
                    "announce_interval_s": 0, "callback_key": "#"}),
        ),
    );
    // The carrier is busy for every attempt; the agent answers each one.
    let carrier_port = free_port();
    p.add_carrier(&admin, carrier_port);
    let phone_port = free_port();
    let mut phone = uas("uas_bridge.xml", phone_port, 3, &[]);
    check(
        "REGISTER 1001",
        register(&p, &a[0].ext, &a[0].pw, phone_port, "register.xml"),
    );
    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    until_bye(&uac, remote, &mut out, &[(5, '#')]);
    // (sipp's own 30 s limit starts now.)
    let mut carrier = uas("uas_trunk_busy.xml", carrier_port, 3, &[]);
    std::thread::sleep(Duration::from_millis(300));
    available(&p, &admin, &a[0]);
    let (status, err) = finished(&mut carrier, Duration::from_secs(90));
    if !status.success() {
        let live = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
        let tl: Vec<Value> = timeline_calls(&p, &sup, 1).iter().map(body).collect();
        panic!("the carrier saw 3 attempts: {status:?} {err}\n{live}\n{tl:?}");
    }
    let (status, err) = finished(&mut phone, Duration::from_secs(20));
    assert!(status.success(), "1001's phone: {status:?} {err}");
    // The request and three attempts on the timeline, none connected; then the
    // callback is dropped as failed.
    let calls = timeline_calls(&p, &sup, 4);
    let mut attempts: Vec<i64> = calls
        .iter()
        .map(body)
        .filter(|b| b["summary"] == "Callback")
        .map(|b| {
            assert_eq!(b["controls"]["callback"]["outcome"], "no_answer", "{b}");
            b["controls"]["callback"]["attempt"].as_i64().unwrap()
        })
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2, 3]);
    eventually(
        "no callback left in the queue",
        Duration::from_secs(5),
        || {
            let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
            (v[0]["callbacks"] == 0).then_some(())
        },
    );
}

/// The audit actions of the tenant, newest first.
fn audit_actions(p: &Parley, admin: &str) -> Vec<String> {
    let log = p.http("GET", "/api/v1/audit?limit=200", Some(admin), None);
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// The (path, number, rule) of every dial refusal audited.
fn dial_refusals(p: &Parley, admin: &str) -> Vec<(String, String, String)> {
    let log = p.http("GET", "/api/v1/audit?limit=200", Some(admin), None);
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "dial.refused")
        .map(|e| {
            let a = &e["after"];
            (
                a["path"].as_str().unwrap().to_owned(),
                a["number"].as_str().unwrap().to_owned(),
                a["refusal"]["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The dial policy at the IVR callback node: a caller who types a premium-rate number
/// (2, then 1 900 555 0100 #) gets no callback: nothing is stored or queued, and the
/// refusal is audited and noted with the request on the timeline. (Regression: any
/// typed number was stored, to be dialled later through the trunk.)
#[test]
fn ivr_callback_node_refuses_a_typed_premium_number() {
    let p = Parley::start_with("cbpremium", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    sales_overflowing_to_the_callback_node(&p, &admin);
    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    // At the callback node (after the 2 s wait): 2 (another number), then the number,
    // typed ahead of the prompts.
    let mut presses: Vec<(u16, char)> = vec![(250, '2')];
    for (i, d) in "19005550100#".chars().enumerate() {
        presses.push((300 + 15 * i as u16, d));
    }
    until_bye(&uac, remote, &mut out, &presses);
    let calls = timeline_calls(&p, &sup, 1);
    let b = body(&calls[0]);
    assert_eq!(b["callback_request"]["queued"], false, "{b}");
    assert_eq!(b["callback_request"]["refused"], "dial_policy", "{b}");
    // The caller hears that the number cannot be used, not the confirmation
    // (regression, #13: the flow went on to "Thank you. We will call you back at …"
    // although nothing was stored).
    let nodes: Vec<&str> = b["ivr_trail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert!(nodes.contains(&"callback_refused"), "{nodes:?}");
    assert!(!nodes.contains(&"callback_ok"), "{nodes:?}");
    assert_eq!(
        p.http("GET", "/api/v1/callbacks", Some(&sup), None),
        json!([])
    );
    let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
    assert!(
        v.as_array().unwrap().iter().all(|q| q["callbacks"] == 0),
        "{v}"
    );
    assert_eq!(
        dial_refusals(&p, &admin),
        [(
            "callback".into(),
            "19005550100".into(),
            "blocked_type".into()
        )]
    );
}

/// The dial policy on the queue's callback key: the number called back is the
/// caller's From, which anyone can spoof; a premium-rate From is refused (nothing
/// stored, the caller stays in the queue). (Regression: a spoofed From was stored and
/// dialled out through the trunk.)
#[test]
fn acd_callback_key_refuses_a_spoofed_premium_caller_number() {
    let p = Parley::start_with("cbspoof", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    sales_with_callback_key(&p, &admin, &a[1].id, free_port());
    let (uac, mut dialog, remote, mut out) = call_as_and_wait_in_sales(&p, &sup, "+19005550100");
    let mut rx: Vec<Vec<u8>> = Vec::new();
    out.digit(&uac, remote, '*', &mut rx);
    wait_every(
        "the refusal audited",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            out.audio(&uac, remote, 0, &mut rx);
            audit_actions(&p, &admin)
                .iter()
                .any(|a| a == "dial.refused")
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let sales = p.live_queue(&sup, "sales");
    assert_eq!(sales["callbacks"], 0, "{sales}");
    assert_eq!(sales["waiting"], 1, "still waiting: {sales}");
    assert_eq!(
        p.http("GET", "/api/v1/callbacks", Some(&sup), None),
        json!([])
    );
    assert_eq!(
        dial_refusals(&p, &admin),
        [(
            "callback".into(),
            "+19005550100".into(),
            "blocked_type".into()
        )]
    );
    uac.hang_up(&mut dialog);
}

/// Regression (issue #13: a callback being dialled when Parley died went back to
/// `waiting` and was dialled again, though the customer may already have talked to
/// the agent): after `kill -9` mid-dial it ends `failed` with `server_restart` and
/// stays out of the router.
#[test]
fn acd_callback_being_dialled_at_a_kill_9_is_not_dialled_twice() {
    let mut p = Parley::start_with("acdcbcrash", NO_KEEPALIVE);
    let admin = p.admin_token();
    let sup = p.supervisor_token();
    p.open_all_week(&admin);
    let a = agents(&p, &admin);
    sales_with_callback_key(&p, &admin, &a[1].id, free_port());
    let (uac, _dialog, remote, mut out) = call_and_wait_in_sales(&p, &sup);
    until_bye(&uac, remote, &mut out, &[(5, '*')]);
    let before = callback_in(&p, &sup, "waiting");
    // Killed while the callback is being dialled (its state written as the ACD
    // writes it when an agent is offered the item).
    p.kill();
    let db = p.dir.join("data/parley.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection as _;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            let n =
                sqlx::query("UPDATE callbacks SET state = 'dialling', attempts = 1 WHERE id = ?")
                    .bind(before["id"].as_str().unwrap())
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected();
            assert_eq!(n, 1);
            c.close().await.unwrap();
        });
    p.relaunch();
    let failed = callback_in(&p, &sup, "failed");
    assert_eq!(failed["id"], before["id"]);
    assert_eq!(failed["attempts"], 1, "not dialled again: {failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("server_restart"),
        "{failed}"
    );
    let v = p.http("GET", "/api/v1/queues/live", Some(&sup), None);
    let sales = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "sales")
        .cloned()
        .unwrap_or_default();
    assert_eq!(sales["callbacks"], 0, "not back in the router: {sales}");
}
