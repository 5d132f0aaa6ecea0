//! The browser softphone without a browser: the real `parley` binary, its signalling
//! WebSocket, a synthetic WebRTC client (`parley_media::webrtc::client`, a second
//! `webrtc` peer) as the browser, and a real sipp caller. The Chromium version of these
//! tests is tests/browser/softphone.spec.mjs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parley_media::webrtc::WebRtcConfig;
use parley_media::webrtc::client::Client;
use serde_json::{Value, json};
use tokio::net::UdpSocket;

mod common;
use common::parley::Parley;
use common::wait::{eventually_async, wait_until_async};
use common::ws;

/// Sends 20 ms Opus frames of a tone from the synthetic browser until stopped.
fn talk(client: Arc<Client>, stop: Arc<std::sync::atomic::AtomicBool>) {
    talk_from(client, stop, 0);
}

/// [`talk`] with RTP sequence numbers from `first` (after packets sent before).
fn talk_from(client: Arc<Client>, stop: Arc<std::sync::atomic::AtomicBool>, first: u32) {
    tokio::spawn(async move {
        let mut enc =
            opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut n = first;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let x = (n * 960 + i) as f32 / 48000.0;
                    ((x * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
                })
                .collect();
            let mut buf = vec![0u8; 400];
            let len = enc.encode(&pcm, &mut buf).unwrap();
            let _ = client
                .send(111, n as u16, n * 960, n == first, &buf[..len])
                .await;
            n += 1;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_requires_a_token() {
    let p = Parley::start("auth");
    let r = tokio_tungstenite::connect_async(p.ws_url("/api/v1/softphone", "bogus")).await;
    assert!(r.is_err(), "a bogus token must not open the softphone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_caller_presses_1_and_the_browser_device_answers_with_media_both_ways() {
    let p = Parley::start("ivr");
    let admin = p.token_async("admin@demo.parley.test").await;
    let (code, cal) = api_send(
        &p,
        &admin,
        "PUT",
        "/ivr/calendars/main",
        json!({"time_zone": "UTC", "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "00:00", "close": "23:59:59.999"}], "holidays": []}),
    )
    .await;
    assert_eq!(code, 200, "{cal}");
    let token = p.token_async("agent1@demo.parley.test").await;
    let mut ws = ws::connect(&p, "/api/v1/softphone", &token).await;
    let ready = ws::next_of(&mut ws, "ready").await;
    assert_eq!(ready["extension"], "1001", "{ready}");

    // The caller: sipp for SIP, our RTP peer for media (PCMU + RFC 4733).
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/sipp_ivr_caller.xml"
    );
    let sip_port = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut sipp = tokio::process::Command::new("sipp")
        .args(["-sf", scenario, "-s", "15550100", "-key", "rtpport"])
        .arg(rtp_port.to_string())
        .args([
            "-m",
            "1",
            "-d",
            "15000",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-p",
        ])
        .arg(sip_port.to_string())
        .arg(p.sip.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The greeting tells us Parley's RTP address (symmetric RTP).
    let mut buf = [0u8; 2048];
    let mut remote = None;
    for _ in 0..25 {
        let (_, from) = tokio::time::timeout(Duration::from_secs(20), rtp.recv_from(&mut buf))
            .await
            .expect("the IVR sends RTP")
            .unwrap();
        remote = Some(from);
    }
    let remote = remote.unwrap();
    let pkt = |pt: u8, seq: u16, ts: u32, payload: &[u8]| {
        let mut v = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        v[2..4].copy_from_slice(&seq.to_be_bytes());
        v[4..8].copy_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(payload);
        v
    };
    for k in 0..6u16 {
        let end = if k >= 3 { 0x80 } else { 0 };
        let dur = 160 * (k.min(3) + 1);
        let b = pkt(101, k + 1, 0, &[1, end | 10, (dur >> 8) as u8, dur as u8]);
        rtp.send_to(&b, remote).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let incoming = ws::next_of(&mut ws, "incoming").await;
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    assert_eq!(incoming["to"], "1001");

    // The "browser" answers with its offer; the server answers it.
    let mut client = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws,
        json!({"type": "answer", "call_id": call_id, "sdp": client.offer_sdp()}),
    )
    .await;
    let sdp = ws::next_of(&mut ws, "sdp").await;
    client.accept(sdp["sdp"].as_str().unwrap()).await.unwrap();
    ws::next_of(&mut ws, "answered").await;
    assert!(client.connected(Duration::from_secs(20)).await);
    let client = Arc::new(client);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    talk(client.clone(), stop.clone());

    // The caller talks (PCMU tone) and counts what reaches it from the browser.
    let heard = Arc::new(AtomicU64::new(0));
    let rtp = Arc::new(rtp);
    let (rtp2, heard2, stop2) = (rtp.clone(), heard.clone(), stop.clone());
    tokio::spawn(async move {
        let tone: Vec<u8> = (0..160u32)
            .map(|i| if i % 20 < 10 { 0x20 } else { 0xa0 })
            .collect();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut n = 0u32;
        let mut buf = [0u8; 2048];
        while !stop2.load(Ordering::Relaxed) {
            tick.tick().await;
            let mut v = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
            v[2..4].copy_from_slice(&((n + 100) as u16).to_be_bytes());
            v[4..8].copy_from_slice(&(n * 160 + 8000).to_be_bytes());
            v.extend_from_slice(&tone);
            let _ = rtp2.send_to(&v, remote).await;
            while let Ok((len, _)) = rtp2.try_recv_from(&mut buf) {
                // Loud PCMU samples (the browser's tone, transcoded from Opus).
                if len > 12 && buf[12..len].iter().filter(|b| (**b & 0x7f) < 0x50).count() > 40 {
                    heard2.fetch_add(1, Ordering::Relaxed);
                }
            }
            n += 1;
        }
    });
    // A timeout is reported by the asserts below, with what each side received.
    let (heard_ref, client_ref) = (&heard, &client);
    let _ = wait_until_async("media both ways", Duration::from_secs(15), || async move {
        (heard_ref.load(Ordering::Relaxed) >= 25
            && client_ref.received.packets.load(Ordering::Relaxed) >= 100)
            .then_some(())
    })
    .await;
    let got = client.received.packets.load(Ordering::Relaxed);
    let heard = heard.load(Ordering::Relaxed);
    assert!(
        got >= 100,
        "the browser received {got} packets from the caller"
    );
    assert!(
        heard >= 25,
        "the caller heard {heard} loud packets from the browser"
    );

    // The browser hangs up: Parley gets BYE, the caller returns to the flow.
    ws::send(&mut ws, json!({"type": "hangup", "call_id": call_id})).await;
    let h = ws::next_of(&mut ws, "hungup").await;
    assert_eq!(h["call_id"], call_id.as_str());
    stop.store(true, Ordering::Relaxed);
    client.close().await;
    let out = tokio::time::timeout(Duration::from_secs(40), sipp.wait())
        .await
        .expect("sipp ends")
        .unwrap();
    assert!(out.success(), "sipp caller: {out:?}");
}

async fn api_get(p: &Parley, token: &str, path: &str) -> (u16, Value) {
    p.api()
        .call_as("GET", &format!("/api/v1{path}"), Some(token), None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_calls_a_colleague_by_extension_and_its_keypad_reaches_them() {
    let p = Parley::start("ext");
    let admin = p.token_async("admin@demo.parley.test").await;
    let customers = api_get(&p, &admin, "/customers?limit=100").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    let tok1 = p.token_async("agent1@demo.parley.test").await;
    let tok2 = p.token_async("agent2@demo.parley.test").await;
    let mut ws1 = ws::connect(&p, "/api/v1/softphone", &tok1).await;
    let mut ws2 = ws::connect(&p, "/api/v1/softphone", &tok2).await;
    let ext1 = ws::next_of(&mut ws1, "ready").await["extension"]
        .as_str()
        .unwrap()
        .to_owned();
    let ext2 = ws::next_of(&mut ws2, "ready").await["extension"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(ext1, ext2);

    // Bad numbers are refused with a reason, and nothing is placed.
    for (number, why) in [
        (ext1.as_str(), "own extension"),
        ("12ab", "neither"),
        ("1999", "no user has extension 1999"),
    ] {
        let c = Client::offer(&WebRtcConfig::default()).await.unwrap();
        ws::send(
            &mut ws1,
            json!({"type": "dial", "number": number, "sdp": c.offer_sdp()}),
        )
        .await;
        let e = ws::next_msg(&mut ws1).await;
        assert_eq!(e["type"], "error", "{e}");
        assert!(e["message"].as_str().unwrap().contains(why), "{e}");
        c.close().await;
    }

    // Agent 1's browser dials agent 2's extension: its device answers at once, then
    // agent 2's browser rings with the same live call.
    let mut c1 = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws1,
        json!({"type": "dial", "number": ext2, "sdp": c1.offer_sdp()}),
    )
    .await;
    let dialing = ws::next_of(&mut ws1, "dialing").await;
    let id1 = dialing["call_id"].as_str().unwrap().to_owned();
    let live = dialing["live_call_id"].as_str().unwrap().to_owned();
    let sdp = ws::next_of(&mut ws1, "sdp").await;
    assert_eq!(sdp["call_id"], id1.as_str());
    c1.accept(sdp["sdp"].as_str().unwrap()).await.unwrap();
    ws::next_of(&mut ws1, "answered").await;
    assert!(c1.connected(Duration::from_secs(20)).await);
    let incoming = ws::next_of(&mut ws2, "incoming").await;
    assert_eq!(incoming["live_call_id"], live.as_str(), "{incoming}");
    assert_eq!(incoming["from"], ext1.as_str(), "{incoming}");
    let id2 = incoming["call_id"].as_str().unwrap().to_owned();
    let mut c2 = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws2,
        json!({"type": "answer", "call_id": id2, "sdp": c2.offer_sdp()}),
    )
    .await;
    let sdp = ws::next_of(&mut ws2, "sdp").await;
    c2.accept(sdp["sdp"].as_str().unwrap()).await.unwrap();
    ws::next_of(&mut ws2, "answered").await;
    assert!(c2.connected(Duration::from_secs(20)).await);

    // The live call: agent 1's, outbound, talking to the extension.
    let (pr, tok1r, liver) = (&p, &tok1, &live);
    let state = eventually_async(
        "the live call talking",
        Duration::from_secs(10),
        || async move {
            let (code, c) = api_get(pr, tok1r, &format!("/calls/{liver}")).await;
            assert_eq!(code, 200, "{c}");
            (c["state"] == "talking").then_some(c)
        },
    )
    .await;
    assert_eq!(state["direction"], "outbound", "{state}");
    assert_eq!(state["customer_number"], ext2.as_str(), "{state}");
    let (_, audit) = api_get(&p, &admin, &format!("/audit?entity_id={live}&limit=50")).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "call.dial"),
        "the browser's call is audited: {audit}"
    );

    // Agent 1 presses 5 (RFC 4733, telephone-event/48000 on 110): it travels through
    // both devices and the call to agent 2's browser.
    for k in 0..6u16 {
        let end = if k >= 3 { 0x80 } else { 0 };
        let dur = 960 * (k.min(3) + 1);
        let payload = [5u8, end | 10, (dur >> 8) as u8, dur as u8];
        c1.send(110, k, 0, k == 0, &payload).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let digit = ws::next_of(&mut ws2, "dtmf").await;
    assert_eq!(digit["digit"], "5", "{digit}");
    assert_eq!(digit["call_id"], id2.as_str(), "{digit}");

    // Both talk; both receive.
    let (c1, c2) = (Arc::new(c1), Arc::new(c2));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    talk_from(c1.clone(), stop.clone(), 10);
    talk(c2.clone(), stop.clone());
    let (c1r, c2r) = (&c1, &c2);
    let _ = wait_until_async("media both ways", Duration::from_secs(10), || async move {
        (c1r.received.packets.load(Ordering::Relaxed) >= 100
            && c2r.received.packets.load(Ordering::Relaxed) >= 100)
            .then_some(())
    })
    .await;
    assert!(c1.received.packets.load(Ordering::Relaxed) >= 100);
    assert!(c2.received.packets.load(Ordering::Relaxed) >= 100);

    // Agent 1 hangs up: agent 2's browser hears it; a call between colleagues is on no
    // customer's timeline.
    ws::send(&mut ws1, json!({"type": "hangup", "call_id": id1})).await;
    let h = ws::next_of(&mut ws2, "hungup").await;
    assert_eq!(h["call_id"], id2.as_str());
    stop.store(true, Ordering::Relaxed);
    c1.close().await;
    c2.close().await;
    eventually_async("the live call gone", Duration::from_secs(5), || async move {
        (api_get(pr, tok1r, &format!("/calls/{liver}")).await.0 == 404).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = api_get(&p, &admin, "/customers?limit=100").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, customers, "no customer made of an internal call");
}

/// Regression: a call the browser placed that the far end refused ended in the browser
/// with cause `normal`; the call task now says why in the BYE (RFC 3326 `Reason`) and
/// the browser is told `declined` (busy, no answer likewise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_call_from_the_browser_ends_with_the_far_ends_reason() {
    let p = Parley::start("declined");
    let tok1 = p.token_async("agent1@demo.parley.test").await;
    let tok2 = p.token_async("agent2@demo.parley.test").await;
    let mut ws1 = ws::connect(&p, "/api/v1/softphone", &tok1).await;
    let mut ws2 = ws::connect(&p, "/api/v1/softphone", &tok2).await;
    ws::next_of(&mut ws1, "ready").await;
    let ext2 = ws::next_of(&mut ws2, "ready").await["extension"]
        .as_str()
        .unwrap()
        .to_owned();

    let c1 = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws1,
        json!({"type": "dial", "number": ext2, "sdp": c1.offer_sdp()}),
    )
    .await;
    let id1 = ws::next_of(&mut ws1, "dialing").await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sdp = ws::next_of(&mut ws1, "sdp").await;
    c1.accept(sdp["sdp"].as_str().unwrap()).await.unwrap();
    // Agent 2's browser rings and declines (603).
    let id2 = ws::next_of(&mut ws2, "incoming").await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws::send(&mut ws2, json!({"type": "hangup", "call_id": id2})).await;
    let h = ws::next_of(&mut ws1, "hungup").await;
    assert_eq!(h["call_id"], id1.as_str(), "{h}");
    assert_eq!(h["cause"], "declined", "{h}");
    c1.close().await;
}

async fn api_send(p: &Parley, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    p.api()
        .call_as(method, &format!("/api/v1{path}"), Some(token), Some(body))
        .await
}

/// The INVITE request-URIs a silent carrier socket received (retransmissions folded),
/// waiting up to `wait` for the first.
async fn invites_at(carrier: &UdpSocket, wait: Duration) -> Vec<String> {
    let mut buf = vec![0u8; 65535];
    let mut uris: Vec<String> = Vec::new();
    let mut wait = wait;
    while let Ok(Ok((n, _))) = tokio::time::timeout(wait, carrier.recv_from(&mut buf)).await {
        wait = Duration::from_millis(300);
        let msg = String::from_utf8_lossy(&buf[..n]);
        if let Some(uri) = msg.lines().next().and_then(|l| l.strip_prefix("INVITE ")) {
            let uri = uri.trim_end_matches(" SIP/2.0").to_owned();
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    uris
}

/// The dial policy on the browser softphone: a satellite number (+881) is refused
/// with the rule before anything rings, and over the tenant's concurrency cap (agent
/// 2's browser call ringing at a carrier that never answers) agent 1's call is refused
/// too; the carrier sees no INVITE for them. (Regression: the browser dialled anything.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_softphone_is_refused_blocked_numbers_and_calls_over_the_cap() {
    let p = Parley::start("dialpolicy");
    let admin = p.token_async("admin@demo.parley.test").await;
    let carrier = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let (code, v) = api_send(
        &p,
        &admin,
        "POST",
        "/trunks",
        json!({"name": "carrier", "outbound_target": format!("127.0.0.1:{carrier_port}"),
               "caller_id": "+15550100"}),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let tok1 = p.token_async("agent1@demo.parley.test").await;
    let tok2 = p.token_async("agent2@demo.parley.test").await;
    let mut ws1 = ws::connect(&p, "/api/v1/softphone", &tok1).await;
    let mut ws2 = ws::connect(&p, "/api/v1/softphone", &tok2).await;
    ws::next_of(&mut ws1, "ready").await;
    ws::next_of(&mut ws2, "ready").await;

    let c = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws1,
        json!({"type": "dial", "number": "+881612345678", "sdp": c.offer_sdp()}),
    )
    .await;
    let e = ws::next_msg(&mut ws1).await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("blocked_prefix"),
        "{e}"
    );
    c.close().await;
    assert_eq!(
        invites_at(&carrier, Duration::from_millis(500)).await,
        Vec::<String>::new()
    );

    let (code, v) = api_send(
        &p,
        &admin,
        "PUT",
        "/dial-policy",
        json!({"max_concurrent_per_tenant": 1}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let c2 = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws2,
        json!({"type": "dial", "number": "+12015550123", "sdp": c2.offer_sdp()}),
    )
    .await;
    ws::next_of(&mut ws2, "dialing").await;
    let sdp = ws::next_of(&mut ws2, "sdp").await;
    c2.accept(sdp["sdp"].as_str().unwrap()).await.unwrap();
    let ringing = invites_at(&carrier, Duration::from_secs(20)).await;
    assert_eq!(ringing.len(), 1, "{ringing:?}");
    assert!(ringing[0].starts_with("sip:+12015550123@"), "{ringing:?}");
    let c1 = Client::offer(&WebRtcConfig::default()).await.unwrap();
    ws::send(
        &mut ws1,
        json!({"type": "dial", "number": "+12015550124", "sdp": c1.offer_sdp()}),
    )
    .await;
    let e = ws::next_msg(&mut ws1).await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("tenant_concurrency"),
        "{e}"
    );
    let later = invites_at(&carrier, Duration::from_millis(500)).await;
    assert!(
        later.iter().all(|u| u.starts_with("sip:+12015550123@")),
        "{later:?}"
    );
    c1.close().await;
    c2.close().await;
}
