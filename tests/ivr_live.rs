//! IVR nodes on live calls, end to end: the real `parley` binary on loopback
//! (ephemeral ports), real sipp callers and trunk peers (tests/sipp/), and a real HTTP
//! server started by the test for webhooks. Each test publishes its own flow on the demo
//! number +15550100 and reads the call back from the caller's timeline.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

#[path = "common/recording.rs"]
mod recording;

/// A sipp caller dialling the demo number with `scenario_file`.
mod common;
use common::parley::{Parley, TempDir};
use common::sipp::{check, free_port, invites_at, sipp_within};
use common::wait::{eventually, wait_until};

/// sipp with the 40 s bound of these tests (IVR flows with prompts), one call.
fn sipp(scenario_file: &str, port: u16, target: Option<SocketAddr>) -> Command {
    sipp_within(scenario_file, port, 1, target, 40)
}

/// A sipp caller dialling the demo number.
fn caller(p: &Parley, scenario_file: &str) -> Output {
    sipp(scenario_file, free_port(), Some(p.sip))
        .args(["-s", "15550100"])
        .output()
        .unwrap()
}

/// Imports, publishes and routes `flow` to +15550100.
fn publish(p: &Parley, admin: &str, flow: Value) {
    let id = flow["id"].as_str().unwrap().to_owned();
    p.http("POST", "/api/v1/ivr/import", Some(admin), Some(flow));
    p.http(
        "POST",
        &format!("/api/v1/ivr/flows/{id}/publish"),
        Some(admin),
        None,
    );
    p.http(
        "PUT",
        "/api/v1/ivr/numbers/%2B15550100",
        Some(admin),
        Some(json!({ "flow_id": id })),
    );
}

/// The newest call interactions on the timeline of the caller +15550123, once there are
/// `n` of them (bounded wait).
fn calls(p: &Parley, token: &str, n: usize) -> Vec<Value> {
    let mut last = Vec::new();
    wait_until(
        &format!("{n} calls on the caller's timeline"),
        Duration::from_secs(15),
        || {
            let (code, c) = p.request(
                "GET",
                "/api/v1/customers/lookup?kind=phone&value=%2B15550123",
                Some(token),
                None,
            );
            if code != 200 {
                return None;
            }
            let id = c["id"].as_str().unwrap().to_owned();
            let tl = p.http(
                "GET",
                &format!("/api/v1/customers/{id}/timeline"),
                Some(token),
                None,
            );
            last = tl["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == "call")
                .cloned()
                .collect();
            (last.len() >= n).then(|| last.clone())
        },
    )
    .unwrap_or_else(|e| panic!("{e}, found {last:#?}"))
}

fn trail(call: &Value) -> Vec<Value> {
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    body["ivr_trail"].as_array().unwrap().clone()
}

fn nodes(trail: &[Value]) -> Vec<String> {
    trail
        .iter()
        .filter_map(|e| e["node"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------
// Webhooks against a real HTTP server.

/// An axum server on 127.0.0.1 (ephemeral port) in its own thread: `POST /crm` records
/// the request and answers an account; `POST /slow` answers after 5 s.
/// (URI, body) of each request the CRM server got.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn crm_server() -> (SocketAddr, Seen) {
    use axum::routing::post;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/crm",
                    post(move |uri: axum::http::Uri, body: String| {
                        let log = log.clone();
                        async move {
                            log.lock().unwrap().push((uri.to_string(), body));
                            axum::Json(json!({"account": {"tier": "gold", "name": "Ada"}}))
                        }
                    }),
                )
                .route(
                    "/slow",
                    post(|| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        axum::Json(json!({}))
                    }),
                );
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), seen)
}

fn webhook_flow(url: &str, timeout_ms: u64) -> Value {
    json!({
        "version": 1, "id": "crm", "start": "lookup",
        "nodes": {
            "lookup": {
                "type": "http", "method": "POST", "url": url,
                "headers": {"x-parley-test": "1"},
                "body": "{\"number\": \"{{caller_number}}\"}",
                "timeout_ms": timeout_ms,
                "response": {"tier": "/account/tier"},
                "next": "tiered", "on_error": "sorry"
            },
            "tiered": {
                "type": "branch",
                "rules": [{"when": {"equals": {"var": "tier", "value": "gold"}}, "next": "gold"}],
                "default": "sorry"
            },
            "gold": {"type": "play", "prompts": [{"tts": "Welcome, gold member."}], "next": "bye"},
            "sorry": {"type": "play", "prompts": [{"tts": "Sorry."}], "next": "bye"},
            "bye": {"type": "hangup"}
        }
    })
}

#[test]
fn webhook_node_posts_to_a_real_server_and_branches_on_its_answer() {
    let (addr, seen) = crm_server();
    // The test's server is on loopback: allowed as an administrator would allow an
    // internal service.
    let p = Parley::start_with("webhook", &[("PARLEY_HTTP_ALLOW", "127.0.0.1/32")]);
    let admin = p.admin_token();
    publish(
        &p,
        &admin,
        webhook_flow(
            &format!("http://{addr}/crm?caller={{{{caller_number}}}}"),
            5000,
        ),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 1).remove(0);
    let t = trail(&call);
    let n = nodes(&t);
    assert!(n.contains(&"gold".to_owned()), "{t:#?}");
    assert!(
        t.iter()
            .any(|e| e["type"] == "webhook" && e["status"] == 200),
        "{t:#?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // The caller's number percent-encoded in the URL, JSON-escaped in the body.
    assert_eq!(seen[0].0, "/crm?caller=%2B15550123");
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(body["number"], "+15550123");
}

#[test]
fn webhook_timeout_and_a_refused_scheme_take_the_error_exit() {
    let (addr, _) = crm_server();
    let p = Parley::start_with("webhookslow", &[("PARLEY_HTTP_ALLOW", "127.0.0.1/32")]);
    let admin = p.admin_token();
    publish(
        &p,
        &admin,
        webhook_flow(&format!("http://{addr}/slow"), 500),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 1).remove(0);
    let t = trail(&call);
    let n = nodes(&t);
    assert!(n.contains(&"sorry".to_owned()), "{t:#?}");
    assert!(!n.contains(&"gold".to_owned()), "{t:#?}");
    assert!(t.iter().any(|e| e["type"] == "webhook_failed"), "{t:#?}");
    // A scheme other than http(s) is refused the same way (error exit).
    publish(&p, &admin, webhook_flow("file:///etc/passwd", 2000));
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let newest = calls(&p, &admin, 2).remove(0);
    let t = trail(&newest);
    assert!(
        t.iter().any(|e| e["type"] == "webhook_failed"
            && e["reason"].as_str().unwrap_or("").contains("not allowed")),
        "{t:#?}"
    );
}

/// Regression (SSRF, issue #13): a tenant's flow made Parley call services on its own
/// loopback interface. Without an allow-list the request is never sent and the flow
/// takes its error exit, the trail naming why.
#[test]
fn webhook_to_loopback_is_refused_without_an_allow_list() {
    let (addr, seen) = crm_server();
    let p = Parley::start("webhookssrf");
    let admin = p.admin_token();
    publish(
        &p,
        &admin,
        webhook_flow(&format!("http://{addr}/crm"), 5000),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 1).remove(0);
    let t = trail(&call);
    assert!(nodes(&t).contains(&"sorry".to_owned()), "{t:#?}");
    assert!(
        t.iter().any(|e| e["type"] == "webhook_failed"
            && e["reason"]
                .as_str()
                .unwrap_or("")
                .contains("loopback addresses are not reached")),
        "{t:#?}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the server was reached");
}

// ---------------------------------------------------------------------------
// Post-call survey.

#[test]
fn survey_answer_pressed_by_a_sipp_caller_is_stored_on_the_call() {
    let p = Parley::start("survey");
    let admin = p.admin_token();
    publish(
        &p,
        &admin,
        json!({
            "version": 1, "id": "rate", "start": "ask",
            "nodes": {
                "ask": {
                    "type": "survey", "survey": "csat", "scale": 5,
                    "prompts": [{"tts": "Please rate this call from one to five."}],
                    "timeout_ms": 8000, "next": "thanks"
                },
                "thanks": {"type": "play", "prompts": [{"tts": "Thank you."}], "next": "bye"},
                "bye": {"type": "hangup"}
            }
        }),
    );
    check("caller", caller(&p, "uac_ivr_survey.xml"));
    let call = calls(&p, &admin, 1).remove(0);
    assert_eq!(
        call["csat"],
        json!({"survey": "csat", "score": 4}),
        "{call:#}"
    );
    let t = trail(&call);
    assert!(t.iter().any(|e| e["digits"] == "4"), "{t:#?}");
}

// ---------------------------------------------------------------------------
// Transfers out through the tenant's trunk.

fn transfer_flow(target: Value) -> Value {
    json!({
        "version": 1, "id": "out", "start": "hi",
        "nodes": {
            "hi": {"type": "play", "prompts": [{"tts": "Connecting you."}], "next": "go"},
            "go": {"type": "transfer", "target": target}
        }
    })
}

fn transfer_outcomes(t: &[Value]) -> Vec<String> {
    t.iter()
        .filter(|e| e["type"] == "transfer")
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn transfer_to_a_number_dials_out_through_the_trunk_and_bridges() {
    let p = Parley::start("xferout");
    let admin = p.admin_token();
    let carrier_port = free_port();
    // The carrier checks the number, the trunk's caller ID and Parley's own offer,
    // echoes the media, and hangs up after two seconds.
    let carrier = sipp("uas_trunk_ivr.xml", carrier_port, None)
        .arg("-rtp_echo")
        .spawn()
        .unwrap();
    p.add_carrier(&admin, carrier_port);
    publish(&p, &admin, transfer_flow(json!({"number": "+15550199"})));
    let out = caller(&p, "uac_ivr_wait_bye.xml");
    let carrier = carrier.wait_with_output().unwrap();
    check("carrier", &carrier);
    check("caller", &out);
    let call = calls(&p, &admin, 1).remove(0);
    let t = trail(&call);
    assert_eq!(transfer_outcomes(&t), ["answered"], "{t:#?}");
}

#[test]
fn transfers_to_a_busy_trunk_or_a_foreign_sip_uri_are_noted_and_end_the_call() {
    let p = Parley::start("xferfail");
    let admin = p.admin_token();
    let carrier_port = free_port();
    p.add_carrier(&admin, carrier_port);
    // A SIP URI on the trunk's host and port is allowed; the carrier is busy.
    let carrier = sipp("uas_trunk_busy.xml", carrier_port, None)
        .spawn()
        .unwrap();
    publish(
        &p,
        &admin,
        transfer_flow(json!({"sip_uri": format!("sip:+15550199@127.0.0.1:{carrier_port}")})),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    check("busy carrier", carrier.wait_with_output().unwrap());
    let call = calls(&p, &admin, 1).remove(0);
    assert_eq!(transfer_outcomes(&trail(&call)), ["busy"], "{call:#}");
    // A SIP URI anywhere else is refused without sending anything there.
    let elsewhere = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    publish(
        &p,
        &admin,
        transfer_flow(json!({"sip_uri": format!("sip:+15550199@127.0.0.1:{port}")})),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 2).remove(0);
    assert_eq!(transfer_outcomes(&trail(&call)), ["refused"], "{call:#}");
    elsewhere.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(elsewhere.recv_from(&mut buf).is_err(), "nothing sent there");
}

fn transfer_detail(call: &Value) -> String {
    trail(call)
        .iter()
        .find(|e| e["type"] == "transfer")
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The dial policy on IVR transfers: a satellite number (+881) is refused without an
/// INVITE at the carrier, and over the tenant's concurrency cap (one transfer ringing
/// at a carrier that never answers) a second caller's transfer is refused too; both are
/// `refused` in the trail with the rule. (Regression: a flow could dial anything.)
#[test]
fn dial_policy_refuses_ivr_transfers_to_blocked_numbers_and_over_the_cap() {
    let p = Parley::start("xferpolicy");
    let admin = p.admin_token();
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    p.add_carrier(&admin, carrier_port);
    publish(
        &p,
        &admin,
        transfer_flow(json!({"number": "+881612345678"})),
    );
    check("caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 1).remove(0);
    assert_eq!(transfer_outcomes(&trail(&call)), ["refused"], "{call:#}");
    assert!(
        transfer_detail(&call).contains("blocked_prefix"),
        "{call:#}"
    );
    assert_eq!(
        invites_at(&carrier, Duration::from_millis(300)),
        Vec::<String>::new()
    );

    p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(json!({"max_concurrent_per_tenant": 1})),
    );
    publish(&p, &admin, transfer_flow(json!({"number": "+12015550123"})));
    let mut first = sipp("uac_ivr_wait_bye.xml", free_port(), Some(p.sip))
        .args(["-s", "15550100"])
        .spawn()
        .unwrap();
    let ringing = invites_at(&carrier, Duration::from_secs(20));
    assert_eq!(ringing.len(), 1, "{ringing:?}");
    assert!(ringing[0].starts_with("sip:+12015550123@"), "{ringing:?}");
    check("second caller", caller(&p, "uac_ivr_wait_bye.xml"));
    let call = calls(&p, &admin, 2).remove(0);
    assert_eq!(transfer_outcomes(&trail(&call)), ["refused"], "{call:#}");
    assert!(
        transfer_detail(&call).contains("tenant_concurrency"),
        "{call:#}"
    );
    let later = invites_at(&carrier, Duration::from_millis(300));
    assert!(
        later.iter().all(|u| u.starts_with("sip:+12015550123@")),
        "{later:?}"
    );
    let _ = first.kill();
    let _ = first.wait();
}

// ---------------------------------------------------------------------------
// Offers Parley answers with its own media: Opus-only, and INVITEs without SDP (echo
// test `43`, dialled from the demo trunk's address 127.0.0.1).

/// A raw UDP SIP caller: SIP and RTP sockets on loopback.
struct RawCaller {
    sip: UdpSocket,
    rtp: UdpSocket,
    to: SocketAddr,
    call_id: String,
    from_user: String,
    /// The user part of the request URI (43: the echo test).
    dial: String,
}

impl RawCaller {
    fn new(p: &Parley, tag: &str) -> RawCaller {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        RawCaller {
            sip,
            rtp,
            to: p.sip,
            call_id: format!("{tag}-{}@raw.test", std::process::id()),
            from_user: "+15550123".to_owned(),
            dial: "43".to_owned(),
        }
    }

    fn me(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn send(&self, msg: &str) {
        self.sip.send_to(msg.as_bytes(), self.to).unwrap();
    }

    fn recv_until(&self, done: impl Fn(&str) -> bool) -> String {
        let mut buf = [0u8; 65536];
        loop {
            let (n, _) = self.sip.recv_from(&mut buf).expect("no reply from parley");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if done(&text) {
                return text;
            }
        }
    }

    fn request(&self, method: &str, cseq: u32, to_tag: &str, sdp: &str) -> String {
        let me = self.me();
        let ct = if sdp.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_owned()
        };
        format!(
            "{method} sip:{dial}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{cseq}x;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag=raw1\r\nTo: <sip:{dial}@{to}>{to_tag}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\n{ct}\
             Content-Length: {len}\r\n\r\n{sdp}",
            to = self.to,
            ip = me.ip(),
            cid = self.call_id,
            user = self.from_user,
            dial = self.dial,
            len = sdp.len(),
        )
    }

    fn sdp(&self, formats: &str, rtpmaps: &str) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {formats}\r\n{rtpmaps}"
        )
    }

    /// INVITE with `sdp` (may be empty); returns (200 OK text, To tag param).
    fn invite(&self, sdp: &str) -> (String, String) {
        self.send(&self.request("INVITE", 1, "", sdp));
        let ok = self.recv_until(|r| r.starts_with("SIP/2.0 ") && !r.starts_with("SIP/2.0 1"));
        assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
        let to = ok
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))
            .unwrap();
        let tag = to[to.find(";tag=").unwrap()..].trim().to_owned();
        (ok, tag)
    }

    fn bye(&self, tag: &str) {
        self.send(&self.request("BYE", 3, tag, ""));
        let r = self.recv_until(|r| r.contains(" BYE\r\n") && r.starts_with("SIP/2.0 2"));
        if std::env::var_os("PARLEY_TEST_LOG").is_some() {
            eprintln!("BYE answered: {r}");
        }
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
    }
}

/// The RTP address in an SDP body, and the m-line.
fn media_of(msg: &str) -> (SocketAddr, String) {
    let body = &msg[msg.find("\r\n\r\n").unwrap() + 4..];
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap()
        .trim();
    let m = body
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .unwrap()
        .to_owned();
    let port: u16 = m.split_whitespace().nth(1).unwrap().parse().unwrap();
    (SocketAddr::new(ip.parse().unwrap(), port), m)
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x0b0e_0c0du32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Sends `frames` paced at 20 ms and collects the payloads of type `pt` coming back.
fn talk(
    c: &RawCaller,
    remote: SocketAddr,
    pt: u8,
    frames: &[Vec<u8>],
    ts_step: u32,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    c.rtp.set_nonblocking(true).unwrap();
    let t0 = std::time::Instant::now();
    for (k, f) in frames.iter().enumerate() {
        let k16 = u16::try_from(k).unwrap();
        c.rtp
            .send_to(&rtp_packet(pt, k16, ts_step * u32::from(k16), f), remote)
            .unwrap();
        let next = t0 + Duration::from_millis(20) * (u32::from(k16) + 1);
        while std::time::Instant::now() < next {
            while let Ok((n, _)) = c.rtp.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7f == pt {
                    got.push(buf[12..n].to_vec());
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    c.rtp.set_nonblocking(false).unwrap();
    // The leg keeps sending (silence): drain for half a second only.
    let end = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < end
        && let Ok((n, _)) = c.rtp.recv_from(&mut buf)
    {
        if n > 12 && buf[1] & 0x7f == pt {
            got.push(buf[12..n].to_vec());
        }
    }
    got
}

#[test]
fn an_opus_only_offer_is_answered_with_opus_and_echoed() {
    let p = Parley::start("opusecho");
    let c = RawCaller::new(&p, "opus");
    let sdp = c.sdp(
        "96 97",
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 telephone-event/48000\r\n",
    );
    let (ok, tag) = c.invite(&sdp);
    let (remote, m) = media_of(&ok);
    assert!(
        m.ends_with("RTP/AVP 96 97"),
        "Opus and telephone-event answered: {m}\n{ok}"
    );
    assert!(ok.contains("a=rtpmap:96 opus/48000/2"), "{ok}");
    c.send(&c.request("ACK", 1, &tag, ""));
    // 2 s of a 440 Hz tone, Opus at 48 kHz (20 ms frames).
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let frames: Vec<Vec<u8>> = (0..100)
        .map(|k| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = f64::from(k * 960 + i) / 48000.0;
                    (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 400).unwrap()
        })
        .collect();
    let back = talk(&c, remote, 96, &frames, 960);
    let mut dec = opus::Decoder::new(48000, opus::Channels::Mono).unwrap();
    let mut loud = 0;
    for pkt in &back {
        let mut pcm = vec![0i16; 5760];
        let n = dec.decode(pkt, &mut pcm, false).unwrap();
        let energy = pcm[..n].iter().map(|s| i64::from(*s).abs()).sum::<i64>() / n.max(1) as i64;
        if energy > 500 {
            loud += 1;
        }
    }
    assert!(
        loud >= 25,
        "{loud} loud Opus frames echoed of {} received",
        back.len()
    );
    c.bye(&tag);
    // The echo call is on the caller's timeline with its quality figures (the final
    // report of a call shorter than the report interval).
    let admin = p.admin_token();
    let call = calls(&p, &admin, 1).remove(0);
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["service"], "echo", "{body:#}");
    let q = &body["quality"];
    assert!(q["packets_received"].as_u64().unwrap() >= 80, "{body:#}");
    assert!(q["mos"].as_f64().unwrap() > 3.0, "{body:#}");
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_the_ack_brings_the_answer() {
    let p = Parley::start("nosdp");
    let c = RawCaller::new(&p, "nosdp");
    let (ok, tag) = c.invite("");
    let (remote, m) = media_of(&ok);
    assert!(m.ends_with("RTP/AVP 0 101"), "PCMU offered: {m}\n{ok}");
    c.send(&c.request(
        "ACK",
        1,
        &tag,
        &c.sdp(
            "0 101",
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        ),
    ));
    let frames: Vec<Vec<u8>> = (0..50u8)
        .map(|k| {
            (0..160u8)
                .map(|i| 0x10 + (k.wrapping_mul(7).wrapping_add(i.wrapping_mul(3))) % 100)
                .collect()
        })
        .collect();
    let back = talk(&c, remote, 0, &frames, 160);
    let echoed = frames.iter().filter(|f| back.contains(f)).count();
    assert!(echoed >= 40, "{echoed} of 50 frames echoed");
    c.bye(&tag);
    // An ACK without an answer: Parley hangs up with a cause.
    let c = RawCaller::new(&p, "nosdp-noanswer");
    let (_, tag) = c.invite("");
    c.send(&c.request("ACK", 1, &tag, ""));
    let bye = c.recv_until(|r| r.starts_with("BYE "));
    assert!(bye.contains("cause=88"), "{bye}");
}

#[test]
fn an_anonymous_caller_is_filed_on_the_unknown_callers_customer() {
    let p = Parley::start("anon");
    let admin = p.admin_token();
    for (i, user) in ["anonymous", "Withheld"].iter().enumerate() {
        let mut c = RawCaller::new(&p, &format!("anon{i}"));
        c.from_user = (*user).to_owned();
        let (_, tag) = c.invite(&c.sdp("0", "a=rtpmap:0 PCMU/8000\r\n"));
        c.send(&c.request("ACK", 1, &tag, ""));
        c.bye(&tag);
    }
    let found = eventually(
        "both calls on the unknown callers' timeline",
        Duration::from_secs(10),
        || {
            let list = p.http("GET", "/api/v1/customers?q=Unknown", Some(&admin), None);
            let unknown: Vec<&Value> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"] == "Unknown callers")
                .collect();
            assert!(unknown.len() <= 1, "one per tenant: {list:#}");
            let id = unknown.first()?["id"].as_str().unwrap();
            let tl = p.http(
                "GET",
                &format!("/api/v1/customers/{id}/timeline"),
                Some(&admin),
                None,
            );
            let found = tl["items"].as_array().unwrap().clone();
            (found.len() >= 2).then_some(found)
        },
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    for call in &found {
        assert_eq!(call["kind"], "call");
        let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
        assert!(
            ["anonymous", "Withheld"].contains(&body["caller"].as_str().unwrap()),
            "{body:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// Recording format switch.

#[test]
fn voicemail_is_recorded_as_ogg_opus_when_configured() {
    let p = Parley::start_with("vmopus", &[("PARLEY_RECORDING_FORMAT", "opus")]);
    let admin = p.admin_token();
    // The demo flow, open around the clock: press 3 for voicemail.
    p.http(
        "PUT",
        "/api/v1/ivr/calendars/main",
        Some(&admin),
        Some(json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"],
                        "open": "00:00", "close": "23:59:59.999"}],
            "holidays": []
        })),
    );
    let out = sipp("uac_ivr_voicemail.xml", free_port(), Some(p.sip))
        .args(["-s", "15550100"])
        .output()
        .unwrap();
    check("caller", &out);
    let call = calls(&p, &admin, 1).remove(0);
    let att = &call["attachments"][0];
    assert_eq!(att["name"], "voicemail.opus", "{call:#}");
    assert_eq!(att["content_type"], "audio/ogg");
    let mut r = ogg::reading::PacketReader::new(recording::open(
        &p.dir.join("data"),
        att["location"].as_str().unwrap(),
    ));
    let head = r.read_packet().unwrap().unwrap();
    assert_eq!(&head.data[..8], b"OpusHead");
    let _tags = r.read_packet().unwrap().unwrap();
    let mut dec = opus::Decoder::new(48000, opus::Channels::Stereo).unwrap();
    let (mut frames, mut loud) = (0usize, 0usize);
    while let Some(pkt) = r.read_packet().unwrap() {
        let mut f = [0i16; 5760 * 2];
        let n = dec.decode(&pkt.data, &mut f, false).unwrap();
        frames += n;
        // The caller's channel (left) carries the talking from g711a.pcap.
        let left: i64 = f[..n * 2]
            .iter()
            .step_by(2)
            .map(|s| i64::from(*s).abs())
            .sum();
        if n > 0 && left / n as i64 > 200 {
            loud += 1;
        }
    }
    let secs = frames as f64 / 48000.0;
    assert!(secs >= 1.0, "voicemail of {secs} s");
    assert!(loud >= 10, "{loud} loud packets on the caller's channel");
}

// ---------------------------------------------------------------------------
// Speech barge-in on a live call.

/// 8 kHz mono samples of `text` spoken by espeak-ng (resampled by sox).
fn spoken(dir: &Path, text: &str) -> Vec<i16> {
    let raw = dir.join("speech-22k.wav");
    let wav = dir.join("speech-8k.wav");
    let st = Command::new("espeak-ng")
        .arg("-w")
        .arg(&raw)
        .arg("--")
        .arg(text)
        .status()
        .expect("espeak-ng is installed");
    assert!(st.success());
    let st = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .status()
        .expect("sox is installed");
    assert!(st.success());
    hound::WavReader::open(&wav)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_caller_speaking_over_a_barge_in_prompt_stops_it() {
    let p = Parley::start("speechbarge");
    let admin = p.admin_token();
    let long = "Welcome to the Parley test line. This announcement is deliberately long, \
                so that a caller who starts to speak can be heard cutting it short. \
                It goes on about opening hours, holidays, the weather, the many ways \
                to reach us, and why your call matters to us, for quite a while yet. \
                Please keep listening, or simply say what you need at any time.";
    publish(
        &p,
        &admin,
        json!({
            "version": 1, "id": "barge", "start": "intro",
            "nodes": {
                "intro": {"type": "play", "prompts": [{"tts": long}], "barge_in": true, "next": "after"},
                "after": {"type": "play", "prompts": [{"tts": "Okay."}], "next": "bye"},
                "bye": {"type": "hangup"}
            }
        }),
    );
    let dir = TempDir::new("speechbarge");
    let dir = dir.path();
    // How long the prompt is, in 20 ms packets (the same espeak-ng voice Parley uses).
    let prompt_packets = spoken(dir, long).len() / 160;
    assert!(prompt_packets > 500, "prompt of {prompt_packets} packets");
    let speech = spoken(
        dir,
        "Hello, I would like to talk to somebody about my order.",
    );

    let mut c = RawCaller::new(&p, "speechbarge");
    c.dial = "15550100".to_owned();
    let sdp = c.sdp(
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let (ok, tag) = c.invite(&sdp);
    let (remote, _) = media_of(&ok);
    c.send(&c.request("ACK", 1, &tag, ""));
    c.sip.set_nonblocking(true).unwrap();
    c.rtp.set_nonblocking(true).unwrap();
    // 1.5 s of silence, the caller speaks, then silence until Parley hangs up.
    let law = parley_media_core::g711::Law::Ulaw;
    let mut pcm = vec![0i16; 75 * 160];
    pcm.extend(&speech);
    let mut buf = [0u8; 65536];
    let mut heard = 0usize;
    let mut bye = None;
    let t0 = std::time::Instant::now();
    for k in 0..prompt_packets * 2 {
        let mut frame = [0i16; 160];
        if let Some(f) = pcm.get(k * 160..(k + 1) * 160) {
            frame.copy_from_slice(f);
        }
        let mut payload = [0u8; 160];
        law.encode(&frame, &mut payload).unwrap();
        let k32 = u32::try_from(k).unwrap();
        c.rtp
            .send_to(
                &rtp_packet(0, (k % 65536) as u16, 160 * k32, &payload),
                remote,
            )
            .unwrap();
        while let Ok((n, _)) = c.rtp.recv_from(&mut buf) {
            if n > 12 && buf[1] & 0x7f == 0 {
                heard += 1;
            }
        }
        if let Ok((n, _)) = c.sip.recv_from(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("BYE ") {
                bye = Some(msg);
                break;
            }
        }
        let next = t0 + Duration::from_millis(20) * (k32 + 1);
        if let Some(d) = next.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let bye = bye.expect("Parley hangs up after the flow");
    // Answer the BYE.
    let mut ok200 = String::from("SIP/2.0 200 OK\r\n");
    for l in bye.lines() {
        let lower = l.to_ascii_lowercase();
        if ["via:", "from:", "to:", "call-id:", "cseq:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            ok200.push_str(l);
            ok200.push_str("\r\n");
        }
    }
    ok200.push_str("Content-Length: 0\r\n\r\n");
    c.send(&ok200);
    // The caller heard much less than the whole prompt: speech stopped it.
    assert!(
        heard < prompt_packets / 2,
        "{heard} packets heard; the prompt alone is {prompt_packets}"
    );
    let call = calls(&p, &admin, 1).remove(0);
    let n = nodes(&trail(&call));
    assert!(
        n.iter().any(|x| x == "after"),
        "the flow went on after the prompt: {n:?}"
    );
}
