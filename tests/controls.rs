//! Live-call controls end to end: the real `parley` binary on loopback, a caller through
//! the demo IVR (press 1), agents' and a supervisor's phones that register with sipp and
//! answer with real UDP SIP/RTP peers of this test. Every peer sends its own tone
//! (caller 350 Hz, agent 1000 Hz, second agent 1300 Hz, supervisor 1900 Hz) and decodes
//! what it receives, so each check is on the RTP that leg really got: which tones are in
//! it (Goertzel level), never how long anything took.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parley_media_core::g711::{ulaw_decode, ulaw_encode};
use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_sip_proto::dialog::{Dialog, new_branch, random_token};
use parley_sip_proto::message::{Headers, Method, Request, SipMessage, Via};
use parley_sip_proto::offer_answer::{LocalCapabilities, build_offer, parse_sdp, sdp_to_bytes};
use serde_json::{Value, json};

const CALLER_HZ: f32 = 350.0;
const AGENT_HZ: f32 = 1000.0;
const AGENT2_HZ: f32 = 1300.0;
const SUPERVISOR_HZ: f32 = 1900.0;
/// The hold music's two tones (parley_calls::HOLD_MUSIC).
const MUSIC_HZ: [f32; 2] = [523.25, 659.25];
/// A tone we send has amplitude 6000; heard means well above what leaks between
/// frequencies, not heard means far below.
const HEARD: f32 = 1200.0;
const NOT_HEARD: f32 = 250.0;

// ---------------------------------------------------------------------------
// Parley and sipp: the shared kit (tests/common/).

mod common;
use common::parley::Parley;
use common::sipp::{check, invites_at, register};
use common::wait::eventually_true;

/// How long a condition on live audio or call state may take (generous: the 2 shared
/// cores of CI run several calls at once).
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// RTP: a tone sender / receiver per leg.

/// One RTP stream of a peer: sends a tone (or RFC 4733 digits) every 20 ms to the
/// current remote and keeps the decoded audio it receives.
struct Rtp {
    remote: Arc<Mutex<Option<SocketAddr>>>,
    heard: Arc<Mutex<Vec<i16>>>,
    digits: Arc<Mutex<VecDeque<char>>>,
    stop: Arc<AtomicBool>,
}

impl Rtp {
    fn start(socket: UdpSocket, freq: f32, ssrc: u32) -> Rtp {
        let rtp = Rtp {
            remote: Arc::default(),
            heard: Arc::default(),
            digits: Arc::default(),
            stop: Arc::default(),
        };
        let (remote, heard, digits, stop) = (
            rtp.remote.clone(),
            rtp.heard.clone(),
            rtp.digits.clone(),
            rtp.stop.clone(),
        );
        socket.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            use parley_media_core::dtmf::DtmfSender;
            let (mut seq, mut ts, mut phase) = (1u16, 0u32, 0f32);
            let mut dtmf: Option<DtmfSender> = None;
            let t0 = Instant::now();
            let mut tick = 0u32;
            let mut out = [0u8; 1500];
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let to = *remote.lock().unwrap();
                let now = Instant::now();
                if dtmf.as_ref().is_none_or(|d| !d.is_busy())
                    && let Some(d) = digits.lock().unwrap().pop_front()
                {
                    let mut s = DtmfSender::new(8000, Duration::from_millis(20));
                    s.start(now, d, Duration::from_millis(120), ts).unwrap();
                    dtmf = Some(s);
                }
                if let Some(to) = to {
                    let mut send = |pt: u8, marker: bool, payload: &[u8], ts: u32| {
                        let n = RtpHeader {
                            marker,
                            payload_type: pt,
                            sequence: seq,
                            timestamp: ts,
                            ssrc,
                            ..RtpHeader::default()
                        }
                        .write(payload, &mut out)
                        .unwrap();
                        seq = seq.wrapping_add(1);
                        let _ = socket.send_to(&out[..n], to);
                    };
                    match dtmf.as_mut().filter(|d| d.is_busy()) {
                        Some(d) => {
                            while let Some(p) = d.poll_packet(now) {
                                send(101, p.marker, &p.payload, p.timestamp);
                            }
                        }
                        None => {
                            let frame: Vec<u8> = (0..160)
                                .map(|_| {
                                    phase += std::f32::consts::TAU * freq / 8000.0;
                                    if phase > std::f32::consts::TAU {
                                        phase -= std::f32::consts::TAU;
                                    }
                                    ulaw_encode((phase.sin() * 6000.0) as i16)
                                })
                                .collect();
                            send(0, false, &frame, ts);
                        }
                    }
                }
                ts = ts.wrapping_add(160);
                while let Ok((n, _)) = socket.recv_from(&mut buf) {
                    if let Ok(p) = RtpPacket::parse(&buf[..n])
                        && p.payload_type() == 0
                    {
                        let mut h = heard.lock().unwrap();
                        h.extend(p.payload().iter().map(|&b| ulaw_decode(b)));
                        let len = h.len();
                        if len > 8000 * 30 {
                            h.drain(..len - 8000 * 10);
                        }
                    }
                }
                tick += 1;
                let next = t0 + Duration::from_millis(20) * tick;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        rtp
    }

    /// Level (amplitude) of `freq` in the last second received.
    fn level(&self, freq: f32) -> f32 {
        let h = self.heard.lock().unwrap();
        let w = &h[h.len().saturating_sub(8000)..];
        goertzel(w, freq)
    }

    /// RMS of the last second received.
    fn rms(&self) -> f32 {
        let h = self.heard.lock().unwrap();
        let w = &h[h.len().saturating_sub(8000)..];
        if w.is_empty() {
            return 0.0;
        }
        (w.iter().map(|&x| f32::from(x).powi(2)).sum::<f32>() / w.len() as f32).sqrt()
    }

    /// Forgets what was received (so that the next second is all new).
    fn clear(&self) {
        self.heard.lock().unwrap().clear();
    }

    fn received(&self) -> usize {
        self.heard.lock().unwrap().len()
    }
}

impl Drop for Rtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Forgets what the streams received and waits for a new second of audio on each.
fn fresh(streams: &[&Rtp]) {
    for r in streams {
        r.clear();
    }
    eventually_true(
        "a new second of audio",
        WAIT,
        || streams.iter().all(|r| r.received() >= 8000),
        String::new,
    );
}

/// Amplitude of `freq` in `x` (Goertzel).
fn goertzel(x: &[i16], freq: f32) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (std::f32::consts::TAU * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0f32, 0f32);
    for &v in x {
        let s = f32::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / x.len() as f32
}

// ---------------------------------------------------------------------------
// Phones: a UAS on a UDP socket of this test (the Contact a sipp REGISTER put in
// Parley's location service), answering every INVITE with PCMU on its RTP stream.

struct Phone {
    port: u16,
    rtp: Rtp,
    /// The last INVITE received, as text.
    last_invite: Arc<Mutex<String>>,
    invites: Arc<AtomicU32>,
    byes: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl Phone {
    fn new(freq: f32, ssrc: u32) -> Phone {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sip.local_addr().unwrap().port();
        let rtp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtp_port = rtp_sock.local_addr().unwrap().port();
        let rtp = Rtp::start(rtp_sock, freq, ssrc);
        let (invites, byes, stop) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let last_invite: Arc<Mutex<String>> = Arc::default();
        let (i2, b2, s2, remote, l2) = (
            invites.clone(),
            byes.clone(),
            stop.clone(),
            rtp.remote.clone(),
            last_invite.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            let tag = random_token(&mut rand::rng(), 10);
            while !s2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sip.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(SipMessage::Request(r)) = SipMessage::parse(&buf[..n]) else {
                    continue;
                };
                let reply = match r.method() {
                    Method::Invite => {
                        *l2.lock().unwrap() = String::from_utf8_lossy(&buf[..n]).into_owned();
                        i2.fetch_add(1, Ordering::Relaxed);
                        if let Ok(sdp) = parse_sdp(r.body()) {
                            let ip = sdp
                                .connection_information
                                .as_ref()
                                .and_then(|c| c.address.as_ref())
                                .and_then(|a| a.address.parse().ok());
                            let port = sdp
                                .media_descriptions
                                .first()
                                .map(|m| u16::try_from(m.media_name.port.value).unwrap());
                            if let (Some(ip), Some(port)) = (ip, port) {
                                *remote.lock().unwrap() = Some(SocketAddr::new(ip, port));
                            }
                        }
                        let mut ok = r.make_response(200, None, Some(&tag));
                        ok.headers
                            .push("Contact", format!("<sip:phone@127.0.0.1:{port}>"));
                        let body = format!(
                            "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                             t=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                        );
                        ok.set_body(Some("application/sdp"), body.into_bytes().into());
                        Some(ok)
                    }
                    Method::Bye => {
                        b2.fetch_add(1, Ordering::Relaxed);
                        *remote.lock().unwrap() = None;
                        Some(r.make_response(200, None, None))
                    }
                    Method::Ack => None,
                    _ => Some(r.make_response(200, None, None)),
                };
                if let Some(resp) = reply {
                    let _ = sip.send_to(&SipMessage::Response(resp).to_bytes(), from);
                }
            }
        });
        Phone {
            port,
            rtp,
            last_invite,
            invites,
            byes,
            stop,
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// The caller: INVITE to the demo number, then a tone on its RTP stream.

struct Caller {
    sip: UdpSocket,
    me: SocketAddr,
    to: SocketAddr,
    dialog: Dialog,
    rtp: Rtp,
}

impl Caller {
    fn via(me: SocketAddr) -> Via {
        Via::new(
            "UDP",
            &me.ip().to_string(),
            Some(me.port()),
            &new_branch(&mut rand::rng()),
        )
    }

    fn send(&self, r: &Request) {
        self.sip
            .send_to(&SipMessage::Request(r.clone()).to_bytes(), self.to)
            .unwrap();
    }

    fn call(to: SocketAddr, number: &str) -> Caller {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = sip.local_addr().unwrap();
        let mut rng = rand::rng();
        let mut h = Headers::new();
        h.push("Via", Caller::via(me).to_string());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:+15550177@{}>;tag={}",
                me.ip(),
                random_token(&mut rng, 10)
            ),
        );
        h.push("To", format!("<sip:{number}@{to}>"));
        h.push(
            "Call-ID",
            format!("{}@ctl.test", random_token(&mut rng, 16)),
        );
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:caller@{me}>"));
        h.push("Content-Type", "application/sdp");
        let mut caps = LocalCapabilities::new(me.ip(), rtp_sock.local_addr().unwrap().port());
        caps.codecs
            .retain(|c| c.clock_rate == 8000 && c.name != "PCMA");
        let invite = Request::new(
            Method::Invite,
            &format!("sip:{number}@{to}"),
            h,
            sdp_to_bytes(&build_offer(&caps)),
        )
        .unwrap();
        sip.send_to(&SipMessage::Request(invite.clone()).to_bytes(), to)
            .unwrap();
        let mut buf = vec![0u8; 65535];
        let ok = loop {
            let (n, _) = sip.recv_from(&mut buf).unwrap();
            if let SipMessage::Response(r) = SipMessage::parse(&buf[..n]).unwrap()
                && r.code() >= 200
            {
                break r;
            }
        };
        assert_eq!(ok.code(), 200, "{ok:?}");
        let sdp = parse_sdp(ok.body()).unwrap();
        let m = &sdp.media_descriptions[0];
        let ip = sdp.connection_information.as_ref().unwrap();
        let ip = ip.address.as_ref().unwrap().address.parse().unwrap();
        let remote = SocketAddr::new(ip, u16::try_from(m.media_name.port.value).unwrap());
        let dialog = Dialog::uac(&invite, &ok, &format!("sip:caller@{me}")).unwrap();
        let ack = dialog.create_ack(1, &Caller::via(me), None).unwrap();
        sip.send_to(&SipMessage::Request(ack).to_bytes(), to)
            .unwrap();
        let rtp = Rtp::start(rtp_sock, CALLER_HZ, 0xca11_e500);
        *rtp.remote.lock().unwrap() = Some(remote);
        Caller {
            sip,
            me,
            to,
            dialog,
            rtp,
        }
    }

    fn press(&self, digit: char) {
        self.rtp.digits.lock().unwrap().push_back(digit);
    }

    fn hang_up(&mut self) {
        let bye = self
            .dialog
            .create_request(Method::Bye, &Caller::via(self.me), None)
            .unwrap();
        self.send(&bye);
    }

    /// Waits for Parley's BYE (bounded) and answers it.
    fn expect_bye(&self) {
        let mut buf = vec![0u8; 65535];
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok((n, from)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            if let Ok(SipMessage::Request(r)) = SipMessage::parse(&buf[..n])
                && *r.method() == Method::Bye
            {
                let ok = r.make_response(200, None, None);
                self.sip
                    .send_to(&SipMessage::Response(ok).to_bytes(), from)
                    .unwrap();
                return;
            }
        }
        panic!("no BYE from Parley");
    }
}

// ---------------------------------------------------------------------------

struct Setup {
    p: Parley,
    admin: String,
    sup: String,
    sup_id: String,
    agent: Phone,
    caller: Caller,
    call_id: String,
}

/// Parley, agent 1001's phone registered, a caller through the IVR (1: sales) bridged
/// with it: the caller hears the agent's tone and the agent the caller's.
fn bridged_call(tag: &str) -> Setup {
    let p = Parley::start(tag);
    let admin = p.login("admin@demo.parley.test", &p.admin_password);
    p.open_all_week(&admin);
    let sup = p.login("supervisor@demo.parley.test", &p.supervisor_password);
    let sup_id = p.http("GET", "/api/v1/me", Some(&sup), None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The supervisor's phone: extension 1900 (registered later, after the bridge, so
    // that the queue does not ring it as an agent).
    p.http(
        "PUT",
        &format!("/api/v1/users/{sup_id}/sip"),
        Some(&admin),
        Some(json!({"extension": "1900", "password": "supervisor-sip-secret"})),
    );
    let (ext, pw) = p.agents[0].clone();
    let agent = Phone::new(AGENT_HZ, 0xa9e0_0001);
    check(
        "REGISTER",
        register(&p, &ext, &pw, agent.port, "register.xml"),
    );
    let caller = Caller::call(p.sip, "+15550100");
    eventually_true(
        "the greeting",
        WAIT,
        || caller.rtp.rms() > 300.0,
        || format!("{} samples", caller.rtp.received()),
    );
    caller.press('1');
    eventually_true(
        "the caller and the agent hearing each other",
        WAIT,
        || caller.rtp.level(AGENT_HZ) > HEARD && agent.rtp.level(CALLER_HZ) > HEARD,
        || {
            format!(
                "caller hears agent {:.0}, agent hears caller {:.0}",
                caller.rtp.level(AGENT_HZ),
                agent.rtp.level(CALLER_HZ)
            )
        },
    );
    let calls = p.http("GET", "/api/v1/calls", Some(&sup), None);
    let call = &calls[0];
    assert_eq!(call["state"], "talking", "{calls}");
    assert_eq!(call["customer_number"], "+15550177", "{calls}");
    assert!(call["agent_user_id"].is_string(), "{calls}");
    let roles: Vec<&str> = call["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["caller", "agent"]);
    let call_id = call["id"].as_str().unwrap().to_owned();
    Setup {
        p,
        admin,
        sup,
        sup_id,
        agent,
        caller,
        call_id,
    }
}

fn act(s: &Setup, body: Value) -> Value {
    s.p.http(
        "POST",
        &format!("/api/v1/calls/{}/actions", s.call_id),
        Some(&s.sup),
        Some(body),
    )
}

fn audit_actions(s: &Setup) -> Vec<String> {
    let v = s.p.http(
        "GET",
        &format!("/api/v1/audit?entity_id={}&limit=200", s.call_id),
        Some(&s.sup),
        None,
    );
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn levels(what: &str, rtp: &Rtp) -> String {
    format!(
        "{what}: caller {:.0} agent {:.0} agent2 {:.0} supervisor {:.0} music {:.0}/{:.0} rms {:.0}",
        rtp.level(CALLER_HZ),
        rtp.level(AGENT_HZ),
        rtp.level(AGENT2_HZ),
        rtp.level(SUPERVISOR_HZ),
        rtp.level(MUSIC_HZ[0]),
        rtp.level(MUSIC_HZ[1]),
        rtp.rms()
    )
}

#[test]
fn supervisor_listens_whispers_and_barges_and_hold_gives_the_caller_music() {
    let s = bridged_call("supervise");
    let supervisor = Phone::new(SUPERVISOR_HZ, 0x5e9e_0001);
    check(
        "REGISTER",
        register(
            &s.p,
            "1900",
            "supervisor-sip-secret",
            supervisor.port,
            "register.xml",
        ),
    );

    // Listen: the supervisor's phone rings, answers and hears both parties; nobody
    // hears the supervisor.
    act(&s, json!({"action": "listen"}));
    let (caller, agent) = (&s.caller.rtp, &s.agent.rtp);
    let sup = &supervisor.rtp;
    eventually_true(
        "the listening supervisor hearing both parties",
        WAIT,
        || sup.level(CALLER_HZ) > HEARD && sup.level(AGENT_HZ) > HEARD,
        || levels("supervisor", sup),
    );
    assert_eq!(supervisor.invites.load(Ordering::Relaxed), 1);
    // Nobody hears the supervisor, though it is sending.
    fresh(&[caller, agent]);
    assert!(
        caller.level(SUPERVISOR_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    assert!(
        agent.level(SUPERVISOR_HZ) < NOT_HEARD,
        "{}",
        levels("agent", agent)
    );
    let call = s.p.http(
        "GET",
        &format!("/api/v1/calls/{}", s.call_id),
        Some(&s.sup),
        None,
    );
    let sup_leg = call["legs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "supervisor")
        .cloned()
        .unwrap_or_else(|| panic!("no supervisor leg: {call}"));
    assert_eq!(sup_leg["mode"], "listen");
    assert_eq!(sup_leg["state"], "up");
    assert_eq!(sup_leg["user_id"], s.sup_id.as_str());

    // Whisper: the agent hears the supervisor, the caller does not.
    act(&s, json!({"action": "whisper"}));
    eventually_true(
        "the agent hearing the whisper",
        WAIT,
        || agent.level(SUPERVISOR_HZ) > HEARD,
        || levels("agent", agent),
    );
    fresh(&[caller]);
    assert!(
        caller.level(SUPERVISOR_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    assert!(
        caller.level(AGENT_HZ) > HEARD,
        "{}",
        levels("caller", caller)
    );
    assert!(
        sup.level(CALLER_HZ) > HEARD,
        "{}",
        levels("supervisor", sup)
    );
    // Still one supervisor leg: the mode changed on the same leg.
    assert_eq!(supervisor.invites.load(Ordering::Relaxed), 1);

    // Barge: both hear the supervisor.
    act(&s, json!({"action": "barge"}));
    eventually_true(
        "the caller hearing the barging supervisor",
        WAIT,
        || caller.level(SUPERVISOR_HZ) > HEARD,
        || levels("caller", caller),
    );
    assert!(
        agent.level(SUPERVISOR_HZ) > HEARD,
        "{}",
        levels("agent", agent)
    );

    // Back to listening, then hold: the caller hears music (and not the agent), the
    // agent hears silence.
    act(&s, json!({"action": "listen"}));
    eventually_true(
        "the supervisor silent again",
        WAIT,
        || caller.level(SUPERVISOR_HZ) < NOT_HEARD && agent.level(SUPERVISOR_HZ) < NOT_HEARD,
        || levels("caller", caller) + &levels(" / agent", agent),
    );
    let held = act(&s, json!({"action": "hold"}));
    assert_eq!(held["held"], true, "{held}");
    eventually_true(
        "hold music for the caller",
        WAIT,
        || caller.level(MUSIC_HZ[0]) > HEARD / 2.0 && caller.level(MUSIC_HZ[1]) > HEARD / 2.0,
        || levels("caller", caller),
    );
    fresh(&[caller, agent]);
    assert!(
        caller.level(MUSIC_HZ[0]) > HEARD && caller.level(MUSIC_HZ[1]) > HEARD,
        "{}",
        levels("caller", caller)
    );
    assert!(
        caller.level(AGENT_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    assert!(agent.rms() < NOT_HEARD, "{}", levels("agent", agent));
    act(&s, json!({"action": "unhold"}));
    eventually_true(
        "the caller hearing the agent again",
        WAIT,
        || caller.level(AGENT_HZ) > HEARD,
        || levels("caller", caller),
    );

    // Mute: the caller no longer hears the agent.
    act(&s, json!({"action": "mute"}));
    eventually_true(
        "the muted agent silent for the caller",
        WAIT,
        || caller.level(AGENT_HZ) < NOT_HEARD,
        || levels("caller", caller),
    );
    act(&s, json!({"action": "unmute"}));

    // A disposition code, then the agent hangs up through the API: every leg ends.
    // Take over: the (listening) supervisor replaces the agent, who is hung up.
    act(&s, json!({"action": "take_over"}));
    eventually_true(
        "the agent hung up",
        WAIT,
        || s.agent.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
    eventually_true(
        "the caller and the supervisor talking",
        WAIT,
        || caller.level(SUPERVISOR_HZ) > HEARD && sup.level(CALLER_HZ) > HEARD,
        || levels("caller", caller) + &levels(" / supervisor", sup),
    );
    fresh(&[caller]);
    assert!(
        caller.level(AGENT_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    let call = s.p.http(
        "GET",
        &format!("/api/v1/calls/{}", s.call_id),
        Some(&s.sup),
        None,
    );
    assert_eq!(call["agent_user_id"], s.sup_id.as_str(), "{call}");
    assert_eq!(call["legs"].as_array().unwrap().len(), 2, "{call}");

    act(&s, json!({"action": "disposition", "code": "sale"}));
    act(&s, json!({"action": "hangup"}));
    s.caller.expect_bye();
    eventually_true(
        "the agent's and the supervisor's phones hung up",
        WAIT,
        || {
            s.agent.byes.load(Ordering::Relaxed) >= 1
                && supervisor.byes.load(Ordering::Relaxed) >= 1
        },
        String::new,
    );
    let actions = audit_actions(&s);
    for a in [
        "call.listen",
        "call.whisper",
        "call.barge",
        "call.hold",
        "call.unhold",
        "call.mute",
        "call.unmute",
        "call.take_over",
        "call.disposition",
        "call.hangup",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
    // The call leaves the live list and lands on the caller's timeline with what the
    // controls did.
    eventually_true(
        "the call gone from /calls",
        WAIT,
        || s.p.http("GET", "/api/v1/calls", Some(&s.sup), None) == json!([]),
        String::new,
    );
    let mut body = Value::Null;
    eventually_true(
        "the call on the caller's timeline",
        WAIT,
        || {
            let (code, c) = s.p.request(
                "GET",
                "/api/v1/customers/lookup?kind=phone&value=%2B15550177",
                Some(&s.sup),
                None,
            );
            if code != 200 {
                return false;
            }
            let id = c["id"].as_str().unwrap();
            let tl = s.p.http(
                "GET",
                &format!("/api/v1/customers/{id}/timeline"),
                Some(&s.sup),
                None,
            );
            match tl["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["kind"] == "call")
            {
                Some(i) => {
                    body = serde_json::from_str(i["body"].as_str().unwrap()).unwrap();
                    true
                }
                None => false,
            }
        },
        String::new,
    );
    let controls = &body["controls"];
    assert_eq!(controls["disposition"], "sale", "{body}");
    assert_eq!(controls["call_id"], s.call_id.as_str());
    let events: Vec<&str> = controls["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for e in [
        "supervisor.listen",
        "supervisor.joined",
        "supervisor.whisper",
        "supervisor.barge",
        "hold",
        "supervisor.take_over",
        "hangup",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
}

#[test]
fn blind_and_warm_transfer_then_a_conference_party_through_the_trunk() {
    let mut s = bridged_call("transfer");
    let (ext2, pw2) = s.p.agents[1].clone();
    let agent2 = Phone::new(AGENT2_HZ, 0xa9e0_0002);
    check(
        "REGISTER",
        register(&s.p, &ext2, &pw2, agent2.port, "register.xml"),
    );
    let caller = &s.caller.rtp;

    // Blind: agent 1 is hung up at once, agent 2 rings and talks with the caller.
    act(
        &s,
        json!({"action": "transfer", "target": {"extension": ext2}}),
    );
    eventually_true(
        "the first agent hung up",
        WAIT,
        || s.agent.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
    eventually_true(
        "the caller hearing the second agent",
        WAIT,
        || caller.level(AGENT2_HZ) > HEARD && agent2.rtp.level(CALLER_HZ) > HEARD,
        || levels("caller", caller) + &levels(" / agent2", &agent2.rtp),
    );
    fresh(&[caller]);
    assert!(
        caller.level(AGENT_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    let call = s.p.http(
        "GET",
        &format!("/api/v1/calls/{}", s.call_id),
        Some(&s.sup),
        None,
    );
    assert_eq!(call["state"], "talking", "{call}");
    let agent_leg = call["legs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "agent")
        .cloned()
        .unwrap();
    assert_eq!(agent_leg["address"], ext2.as_str(), "{call}");
    assert!(call["agent_user_id"].is_string(), "{call}");

    // Warm: agent 2 consults agent 1 (the caller is held with music), then completes.
    let (ext1, _) = s.p.agents[0].clone();
    // A consultation first cancelled: agent 1 is hung up, the caller is back with agent 2.
    act(
        &s,
        json!({"action": "consult", "target": {"extension": ext1}}),
    );
    eventually_true(
        "agent 1 consulted",
        WAIT,
        || s.agent.rtp.level(AGENT2_HZ) > HEARD && caller.level(MUSIC_HZ[0]) > HEARD / 2.0,
        || levels("agent1", &s.agent.rtp) + &levels(" / caller", caller),
    );
    act(&s, json!({"action": "cancel_consult"}));
    eventually_true(
        "agent 1 hung up after the cancelled consultation",
        WAIT,
        || s.agent.byes.load(Ordering::Relaxed) >= 2,
        String::new,
    );
    eventually_true(
        "the caller back with agent 2",
        WAIT,
        || caller.level(AGENT2_HZ) > HEARD && agent2.rtp.level(CALLER_HZ) > HEARD,
        || levels("caller", caller),
    );
    // Then consulted again and completed.
    s.agent.rtp.clear();
    caller.clear();
    act(
        &s,
        json!({"action": "consult", "target": {"extension": ext1}}),
    );
    eventually_true(
        "agent 1 and agent 2 talking while the caller is held",
        WAIT,
        || {
            s.agent.rtp.level(AGENT2_HZ) > HEARD
                && agent2.rtp.level(AGENT_HZ) > HEARD
                && caller.level(MUSIC_HZ[0]) > HEARD / 2.0
        },
        || levels("agent1", &s.agent.rtp) + &levels(" / caller", caller),
    );
    fresh(&[caller, &s.agent.rtp]);
    assert!(
        s.agent.rtp.level(CALLER_HZ) < NOT_HEARD,
        "{}",
        levels("agent1", &s.agent.rtp)
    );
    assert!(
        caller.level(AGENT_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    act(&s, json!({"action": "complete_transfer"}));
    eventually_true(
        "agent 2 hung up",
        WAIT,
        || agent2.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
    eventually_true(
        "the caller talking with agent 1 again",
        WAIT,
        || caller.level(AGENT_HZ) > HEARD && s.agent.rtp.level(CALLER_HZ) > HEARD,
        || levels("caller", caller),
    );
    fresh(&[caller]);
    assert!(
        caller.level(AGENT2_HZ) < NOT_HEARD,
        "{}",
        levels("caller", caller)
    );
    // Conference: an external party through the trunk joins; everyone hears everyone.
    const PARTY_HZ: f32 = 1600.0;
    let party = Phone::new(PARTY_HZ, 0x9a27_0001);
    s.p.add_carrier(&s.admin, party.port);
    act(
        &s,
        json!({"action": "add_party", "target": {"number": "+15550188"}}),
    );
    eventually_true(
        "a three-way conference",
        WAIT,
        || {
            party.rtp.level(CALLER_HZ) > HEARD
                && party.rtp.level(AGENT_HZ) > HEARD
                && caller.level(PARTY_HZ) > HEARD
                && s.agent.rtp.level(PARTY_HZ) > HEARD
        },
        || levels("party", &party.rtp) + &levels(" / caller", caller),
    );
    let to_carrier = party.last_invite.lock().unwrap().clone();
    assert!(
        to_carrier.starts_with("INVITE sip:+15550188@"),
        "{to_carrier}"
    );
    let actions = audit_actions(&s);
    for a in [
        "call.transfer",
        "call.consult",
        "call.transfer_complete",
        "call.consult_cancel",
        "call.add_party",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
    s.caller.hang_up();
    eventually_true(
        "agent 1 and the party hung up after the caller",
        WAIT,
        || s.agent.byes.load(Ordering::Relaxed) >= 3 && party.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
}

#[test]
fn click_to_call_rings_the_agent_then_dials_the_customer_through_the_trunk() {
    const CUSTOMER_HZ: f32 = 700.0;
    let p = Parley::start("c2c");
    let admin = p.login("admin@demo.parley.test", &p.admin_password);
    let sup = p.login("supervisor@demo.parley.test", &p.supervisor_password);
    // The carrier: a phone of ours behind the trunk's outbound target.
    let customer = Phone::new(CUSTOMER_HZ, 0xc057_0001);
    p.add_carrier(&admin, customer.port);
    let (ext, pw) = p.agents[0].clone();
    let agent = Phone::new(AGENT_HZ, 0xa9e0_0001);
    check(
        "REGISTER",
        register(&p, &ext, &pw, agent.port, "register.xml"),
    );
    let (email, web_pw) = p.agent_logins[0].clone();
    let tok = p.login(&email, &web_pw);
    let me = p.http("GET", "/api/v1/me", Some(&tok), None);

    let call = p.http(
        "POST",
        "/api/v1/calls",
        Some(&tok),
        Some(json!({"number": "+1 555 0199"})),
    );
    assert_eq!(call["direction"], "outbound", "{call}");
    let id = call["id"].as_str().unwrap().to_owned();
    eventually_true(
        "the agent and the customer hearing each other",
        WAIT,
        || customer.rtp.level(AGENT_HZ) > HEARD && agent.rtp.level(CUSTOMER_HZ) > HEARD,
        || levels("customer", &customer.rtp) + &levels(" / agent", &agent.rtp),
    );
    // The agent's phone rang first and showed the customer's number; the carrier got
    // the number with the trunk's caller ID.
    let to_agent = agent.last_invite.lock().unwrap().clone();
    assert!(to_agent.contains("From: <sip:+15550199@"), "{to_agent}");
    let to_carrier = customer.last_invite.lock().unwrap().clone();
    assert!(
        to_carrier.starts_with("INVITE sip:+15550199@127.0.0.1:"),
        "{to_carrier}"
    );
    assert!(to_carrier.contains("From: <sip:+15550100@"), "{to_carrier}");
    let live = p.http("GET", &format!("/api/v1/calls/{id}"), Some(&tok), None);
    assert_eq!(live["state"], "talking", "{live}");
    assert_eq!(live["agent_user_id"], me["id"], "{live}");
    assert_eq!(live["customer_number"], "+15550199", "{live}");
    // Another agent does not see (or control) it.
    let (email2, web_pw2) = p.agent_logins[1].clone();
    let other = p.login(&email2, &web_pw2);
    assert_eq!(
        p.http("GET", "/api/v1/calls", Some(&other), None),
        json!([])
    );
    let (code, _) = p.request(
        "POST",
        &format!("/api/v1/calls/{id}/actions"),
        Some(&other),
        Some(json!({"action": "hold"})),
    );
    assert_eq!(code, 404);
    // An agent may not listen in.
    let (code, _) = p.request(
        "POST",
        &format!("/api/v1/calls/{id}/actions"),
        Some(&tok),
        Some(json!({"action": "listen"})),
    );
    assert_eq!(code, 403);
    // The agent holds the customer, then hangs up.
    p.http(
        "POST",
        &format!("/api/v1/calls/{id}/actions"),
        Some(&tok),
        Some(json!({"action": "hold"})),
    );
    eventually_true(
        "hold music for the customer",
        WAIT,
        || customer.rtp.level(MUSIC_HZ[0]) > HEARD / 2.0,
        || levels("customer", &customer.rtp),
    );
    p.http(
        "POST",
        &format!("/api/v1/calls/{id}/actions"),
        Some(&tok),
        Some(json!({"action": "hangup"})),
    );
    eventually_true(
        "both phones hung up",
        WAIT,
        || agent.byes.load(Ordering::Relaxed) >= 1 && customer.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
    // On the customer's timeline (the customer was created from the number).
    let mut found = Value::Null;
    eventually_true(
        "the call on the customer's timeline",
        WAIT,
        || {
            let (code, c) = p.request(
                "GET",
                "/api/v1/customers/lookup?kind=phone&value=%2B15550199",
                Some(&sup),
                None,
            );
            if code != 200 {
                return false;
            }
            let cid = c["id"].as_str().unwrap();
            let tl = p.http(
                "GET",
                &format!("/api/v1/customers/{cid}/timeline"),
                Some(&sup),
                None,
            );
            match tl["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["kind"] == "call")
            {
                Some(i) => {
                    found = i.clone();
                    true
                }
                None => false,
            }
        },
        String::new,
    );
    assert_eq!(found["direction"], "outbound", "{found}");
    let body: Value = serde_json::from_str(found["body"].as_str().unwrap()).unwrap();
    let events: Vec<&str> = body["controls"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for e in [
        "click_to_call",
        "agent.answered",
        "customer.answered",
        "hold",
        "hangup",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let audit = p.http(
        "GET",
        &format!("/api/v1/audit?entity_id={id}"),
        Some(&sup),
        None,
    );
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["call.click_to_call", "call.hold", "call.hangup"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

/// The dial policy (toll fraud) on the agent paths: transfer, consultation, conference
/// party and click-to-call to a blocked prefix or a premium number are refused with
/// 403 `dial_policy` naming the rule, and over the tenant's concurrency cap likewise;
/// the carrier never sees an INVITE for a refused number; refusals are audited and a
/// burst of them alerts the admins. (Regression: every path dialled any number.)
#[test]
fn dial_policy_refuses_agent_paths_to_blocked_numbers_and_over_the_cap() {
    let s = bridged_call("dialpolicy");
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    s.p.add_carrier(&s.admin, carrier_port);
    let refused = |code: u16, v: &Value, rule: &str| {
        assert_eq!(code, 403, "{v}");
        assert_eq!(v["error"]["code"], "dial_policy", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(rule),
            "{rule}: {v}"
        );
    };
    let action = |body: Value| {
        s.p.request(
            "POST",
            &format!("/api/v1/calls/{}/actions", s.call_id),
            Some(&s.sup),
            Some(body),
        )
    };
    // Satellite (+881) and premium rate (+1 900) destinations.
    for (number, rule) in [
        ("+881612345678", "blocked_prefix"),
        ("+1 900 555 0100", "blocked_type"),
    ] {
        for a in ["transfer", "consult", "add_party"] {
            let (code, v) = action(json!({"action": a, "target": {"number": number}}));
            refused(code, &v, rule);
        }
        let (code, v) = s.p.request(
            "POST",
            "/api/v1/calls",
            Some(&s.sup),
            Some(json!({ "number": number })),
        );
        refused(code, &v, rule);
    }
    // International is off by default.
    let (code, v) =
        action(json!({"action": "add_party", "target": {"number": "+44 20 7946 0000"}}));
    refused(code, &v, "international");
    assert_eq!(
        invites_at(&carrier, Duration::from_millis(300)),
        Vec::<String>::new(),
        "refused numbers dialled"
    );

    // One concurrent outbound call for the tenant: a party rings (the carrier never
    // answers), and every other path is over the cap.
    let (code, v) = s.p.request(
        "PUT",
        "/api/v1/dial-policy",
        Some(&s.admin),
        Some(json!({"max_concurrent_per_tenant": 1})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["country"], "US", "{v}");
    assert_eq!(v["max_concurrent_per_tenant"], 1, "{v}");
    let (code, v) = action(json!({"action": "add_party", "target": {"number": "+1 201 555 0123"}}));
    assert_eq!(code, 200, "{v}");
    for a in ["transfer", "consult", "add_party"] {
        let (code, v) = action(json!({"action": a, "target": {"number": "+12015550124"}}));
        refused(code, &v, "tenant_concurrency");
    }
    let (code, v) = s.p.request(
        "POST",
        "/api/v1/calls",
        Some(&s.sup),
        Some(json!({"number": "+12015550124"})),
    );
    refused(code, &v, "tenant_concurrency");
    let invites = invites_at(&carrier, Duration::from_millis(300));
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert!(invites[0].starts_with("sip:+12015550123@"), "{invites:?}");

    // Audited, and the burst alerted the admins.
    let log =
        s.p.http("GET", "/api/v1/audit?limit=200", Some(&s.admin), None);
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "dial.refused").count(),
        13,
        "{actions:?}"
    );
    assert!(actions.contains(&"dial.refusal_burst"), "{actions:?}");
    assert!(actions.contains(&"dial_policy.update"), "{actions:?}");
}

/// The dial policy's longest call: a click-to-call whose customer answered is hung up
/// (agent and customer both get a BYE) once `max_call_secs` have passed since the
/// customer was dialled. (Regression: an outbound call could last for ever.)
#[test]
fn dial_policy_max_call_secs_hangs_up_a_click_to_call() {
    const CUSTOMER_HZ: f32 = 700.0;
    let p = Parley::start("dialmax");
    let admin = p.login("admin@demo.parley.test", &p.admin_password);
    let customer = Phone::new(CUSTOMER_HZ, 0xc057_0002);
    p.add_carrier(&admin, customer.port);
    p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(json!({"max_call_secs": 3})),
    );
    let (ext, pw) = p.agents[0].clone();
    let agent = Phone::new(AGENT_HZ, 0xa9e0_0002);
    check(
        "REGISTER",
        register(&p, &ext, &pw, agent.port, "register.xml"),
    );
    let (email, web_pw) = p.agent_logins[0].clone();
    let tok = p.login(&email, &web_pw);
    p.http(
        "POST",
        "/api/v1/calls",
        Some(&tok),
        Some(json!({"number": "+1 201 555 0123"})),
    );
    eventually_true(
        "the agent and the customer hearing each other",
        WAIT,
        || customer.rtp.level(AGENT_HZ) > HEARD && agent.rtp.level(CUSTOMER_HZ) > HEARD,
        || levels("customer", &customer.rtp) + &levels(" / agent", &agent.rtp),
    );
    eventually_true(
        "both hung up by Parley at the policy's limit",
        WAIT,
        || customer.byes.load(Ordering::Relaxed) >= 1 && agent.byes.load(Ordering::Relaxed) >= 1,
        String::new,
    );
    eventually_true(
        "the call gone from the live calls",
        WAIT,
        || p.http("GET", "/api/v1/calls", Some(&tok), None) == json!([]),
        String::new,
    );
}
