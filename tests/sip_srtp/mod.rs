//! SDES-SRTP on SIP legs (issue #13, Media), part of the `sip` test binary: a real
//! peer, Debian's `baresip` with `mediaenc=srtp-mand`, calls Parley's echo test;
//! its audio (a 440 Hz tone from a WAV file) must come back through Parley, which
//! has to decrypt it and encrypt it again, and baresip has to decrypt what Parley
//! sends. A trunk whose SRTP policy is `required` refuses a plain RTP/AVP offer
//! with 488, and still takes baresip's SRTP call.
//!
//! The baresip helpers are here (not shared): another test file drives baresip for
//! a different purpose.

use std::io::Read as _;
use std::time::Instant;

use parley_sip_proto::sdes::parse_crypto;

use super::*;

/// A baresip run in its own config folder: plays `tone.wav` into the call and dumps
/// what it decodes (module `sndfile`) to `dump-*-dec.wav`.
struct Baresip {
    dir: PathBuf,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 8 kHz mono S16LE (what baresip's `aufile` needs for PCMU): a tone of `freq` Hz.
fn write_tone(path: &Path, freq: f64, secs: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (8000.0 * secs) as usize;
    for i in 0..n {
        let v = (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin() * 8000.0;
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Relative power of `freq` in `pcm` (Goertzel), 0..=1 of the signal's power.
fn tone_share(pcm: &[i16], freq: f64, rate: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in pcm {
        let x = f64::from(x);
        let s = x + k * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    if energy == 0.0 {
        return 0.0;
    }
    (2.0 * power / (pcm.len() as f64 * energy)).min(1.0)
}

/// A SIP port for baresip: it binds UDP and TCP on the port and TLS on the next one,
/// whatever `sip_transports` says. Drawn from a per-process sequence below the
/// ephemeral range (32768+), so no socket the kernel hands out can take it between
/// this check and baresip's bind. A port from `bind(0)` could, and did: "SIP Transport
/// failed: Address already in use" under the full suite.
fn baresip_sip_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 500) * 16;
    loop {
        let n = u32::from(NEXT.fetch_add(2, Ordering::Relaxed)) % 16;
        let port = u16::try_from(10_000 + offset + n).unwrap();
        let free = (0..2).all(|i| {
            UdpSocket::bind(("127.0.0.1", port + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port + i)).is_ok()
        });
        if free {
            return port;
        }
    }
}

impl Baresip {
    fn new(tag: &str) -> Baresip {
        let dir = temp_dir(&format!("baresip-{tag}"));
        write_tone(&dir.join("tone.wav"), 440.0, 4.0);
        let port = baresip_sip_port();
        // An RTP port pair of its own (four free ports from the shared sequence).
        let rtp = free_media_port();
        let config = format!(
            "poll_method\t\tpoll\n\
             sip_listen\t\t127.0.0.1:{port}\n\
             sip_transports\t\tudp\n\
             audio_player\t\talsa,null\n\
             audio_source\t\taufile,{tone}\n\
             audio_alert\t\talsa,null\n\
             audio_srate\t\t8000\n\
             audio_channels\t\t1\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n\
             snd_path\t\t{dir}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\talsa.so\n\
             module\t\t\tsrtp.so\n\
             module\t\t\tsndfile.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\taccount.so\n",
            tone = dir.join("tone.wav").display(),
            dir = dir.display(),
            rtp_end = rtp + 3,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            "<sip:srtp-test@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n",
        )
        .unwrap();
        Baresip { dir }
    }

    /// Dials `uri`, runs for `secs` seconds with SIP tracing, returns its output.
    fn call(&self, uri: &str, secs: u32) -> String {
        let out = Command::new("baresip")
            .arg("-f")
            .arg(&self.dir)
            // Loopback only: without -n it puts the host's own address in its SDP.
            .args(["-4", "-n", "127.0.0.1", "-s", "-t", &secs.to_string()])
            .args(["-e", &format!("/dial {uri}")])
            .stdin(Stdio::null())
            .output()
            .expect("baresip is installed (apt install baresip)");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }

    /// The audio baresip decoded from the call (its `sndfile` dump).
    fn decoded(&self) -> Vec<i16> {
        let dump = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("-dec.wav"))
            });
        let Some(dump) = dump else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&dump)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        match hound::WavReader::new(std::io::Cursor::new(bytes)) {
            Ok(r) => r.into_samples::<i16>().filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The SDP body of the first `200 OK` to an INVITE in baresip's SIP trace.
fn answer_in_trace(trace: &str) -> Option<String> {
    let i = trace.find("SIP/2.0 200 OK")?;
    let rest = &trace[i..];
    let j = rest.find("v=0")?;
    let body = &rest[j..];
    let end = body.find("\n\n").unwrap_or(body.len());
    Some(body[..end].to_owned())
}

fn assert_srtp_echo(b: &Baresip, trace: &str) {
    let answer = answer_in_trace(trace).unwrap_or_else(|| panic!("no 200 OK answer:\n{trace}"));
    assert!(answer.contains("RTP/SAVP"), "answer: {answer}");
    let crypto = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=crypto:"))
        .unwrap_or_else(|| panic!("no a=crypto in the answer: {answer}"));
    parse_crypto(crypto).unwrap();
    let heard = b.decoded();
    // 4 s of tone sent; the echo is what baresip decrypted and decoded. Skip the
    // first half second (jitter buffers filling), then look at the tone.
    assert!(
        heard.len() > 8000,
        "baresip decoded {} samples:\n{trace}",
        heard.len()
    );
    // 50 ms blocks (22 periods of 440 Hz exactly): the loud ones must be the tone.
    // (Per block: jitter buffer gaps and concealment break the phase between blocks.)
    let blocks: Vec<&[i16]> = heard[4000..]
        .chunks_exact(400)
        .filter(|b| b.iter().filter(|s| s.unsigned_abs() > 2000).count() > 100)
        .collect();
    assert!(
        blocks.len() >= 40,
        "the echo is (mostly) silent: {} loud 50 ms blocks of {} samples",
        blocks.len(),
        heard.len()
    );
    let tonal = blocks
        .iter()
        .filter(|b| tone_share(b, 440.0, 8000.0) > 0.5)
        .count();
    // Audio that failed to decrypt would decode as noise (a share near 1/200); the
    // echo through a loaded machine's jitter buffers has some concealed blocks.
    assert!(
        tonal >= 30 && tonal * 10 >= blocks.len() * 6,
        "{tonal} of {} loud blocks are the 440 Hz tone",
        blocks.len()
    );
}

#[test]
fn baresip_with_mandatory_srtp_hears_its_audio_back_through_the_echo_test() {
    let p = Parley::start_with("srtp-echo", &[]);
    let b = Baresip::new("echo");
    let started = Instant::now();
    // From 127.0.0.1, the demo trunk's address: "43" is the echo test.
    let trace = b.call(&format!("sip:43@{}", p.sip), 6);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_srtp_echo(&b, &trace);
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_calls_answered_total") >= 1);
}

/// A plain RTP/AVP INVITE to `number` from a raw UDP socket; the final status.
fn plain_invite_status(p: &Parley, number: &str) -> u16 {
    let uac = ProtoUac::new(p.sip);
    let me = uac.me;
    let mut h = Headers::new();
    h.push("Via", uac.via().to_string());
    h.push("Max-Forwards", "70");
    let mut rng = rand::rng();
    let tag = parley_sip_proto::dialog::random_token(&mut rng, 10);
    let call_id = parley_sip_proto::dialog::random_token(&mut rng, 16);
    h.push("From", format!("<sip:plain@{}>;tag={tag}", me.ip()));
    h.push("To", format!("<sip:{number}@{}>", p.sip));
    h.push("Call-ID", format!("plain-{call_id}@uac.test"));
    h.push("CSeq", "1 INVITE");
    h.push("Contact", format!("<sip:plain@{me}>"));
    h.push("Content-Type", "application/sdp");
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        uac.rtp.local_addr().unwrap().port()
    );
    let invite = Request::new(
        Method::Invite,
        &format!("sip:{number}@{}", p.sip),
        h,
        bytes::Bytes::from(sdp),
    )
    .unwrap();
    uac.send(&invite);
    loop {
        if let SipMessage::Response(r) = uac.recv()
            && r.code() >= 200
        {
            if r.code() == 200 {
                // Not expected; end the call politely.
                let mut d =
                    parley_sip_proto::dialog::Dialog::uac(&invite, &r, &format!("sip:plain@{me}"))
                        .unwrap();
                uac.send(&d.create_ack(1, &uac.via(), None).unwrap());
                uac.hang_up(&mut d);
            }
            return r.code();
        }
    }
}

#[test]
fn a_trunk_that_requires_srtp_refuses_plain_rtp_with_488_and_takes_srtp() {
    let p = Parley::start_with("srtp-required", &[]);
    let admin = p.admin_token();
    // Plain RTP is fine while the demo trunk's policy is the default (optional).
    assert_eq!(plain_invite_status(&p, "43"), 200);
    let trunks = p.http("GET", "/api/v1/trunks", Some(&admin), None);
    let trunk = trunks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["inbound_addresses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "127.0.0.1")
        })
        .unwrap()
        .clone();
    assert_eq!(trunk["srtp"], "optional");
    let mut input = json!({
        "name": trunk["name"],
        "inbound_addresses": trunk["inbound_addresses"],
        "transport": trunk["transport"],
        "caller_id": trunk["caller_id"],
        "srtp": "required",
    });
    if let Some(t) = trunk["outbound_target"].as_str() {
        input["outbound_target"] = json!(t);
    }
    let id = trunk["id"].as_str().unwrap();
    let updated = p.http(
        "PUT",
        &format!("/api/v1/trunks/{id}"),
        Some(&admin),
        Some(input),
    );
    assert_eq!(updated["srtp"], "required");
    // The echo test and the demo number (its IVR) both refuse plain RTP now.
    assert_eq!(plain_invite_status(&p, "43"), 488);
    assert_eq!(plain_invite_status(&p, "+15550100"), 488);
    // A peer that offers SRTP still gets through, and hears its audio back.
    let b = Baresip::new("required");
    let trace = b.call(&format!("sip:43@{}", p.sip), 6);
    assert_srtp_echo(&b, &trace);
}

// Legs Parley dials itself (issue #13: "SRTP ... required per trunk/phone"): a phone
// whose user requires SRTP — baresip with `mediaenc=srtp-mand`, which refuses a plain
// RTP/AVP offer — is rung with an RTP/SAVP offer of Parley's own, answers with its
// key, and media flows encrypted both ways. Before, Parley's own offers were plain
// RTP/AVP whatever the policy, and such a phone never answered.

use super::sip_phones::baresip::{Baresip as Phone, Extra, Phone as PhoneSetup};
use super::sip_phones::{
    BARESIP_1_0_DIGEST, have_baresip, presence, tone_blocks, tone_frame, ulaw_samples,
};

/// Sets the SRTP policy of the demo user `email`'s phones.
fn user_srtp(p: &Parley, admin: &str, email: &str, srtp: &str) {
    let id = p.user_id(admin, email);
    let acc = p.http(
        "PUT",
        &format!("/api/v1/users/{id}/sip"),
        Some(admin),
        Some(json!({ "srtp": srtp })),
    );
    assert_eq!(acc["srtp"], srtp, "{acc}");
}

/// A baresip that accepts SRTP only, answering by itself, sending a tone of `hz`.
fn srtp_phone(p: &Parley, ext: &str, password: &str, hz: u32, no_register: bool) -> Phone {
    Phone::start_with(
        Command::new("baresip"),
        &PhoneSetup {
            ext,
            password,
            server: p.sip,
            listen: "127.0.0.1".parse().unwrap(),
            tone_hz: hz,
            auto_answer: true,
        },
        Extra {
            srtp_mandatory: true,
            no_register,
        },
    )
}

#[test]
fn a_queued_call_rings_an_srtp_only_agent_phone_with_srtp_and_media_flows_both_ways() {
    if !have_baresip() {
        return;
    }
    let p = Parley::start_with("srtp-queue", &[BARESIP_1_0_DIGEST]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    presence(&p, &admin, "agent2@demo.parley.test", "offline");
    presence(&p, &admin, "agent1@demo.parley.test", "available");
    user_srtp(&p, &admin, "agent1@demo.parley.test", "required");
    let (ext, pw) = p.agent(0);
    let mut phone = srtp_phone(&p, &ext, &pw, 1000, false);
    phone.wait_registered(15);
    // A plain caller (the demo trunk's policy is optional) presses 1 for sales.
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("+15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    let mut k = 0u16;
    while rx.iter().filter(|p| audible(p)).count() < 10 && k < 750 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        k += 1;
    }
    out.digit(&uac, remote, '1', &mut rx);
    let mut sample = 0u32;
    let mut answered_at = None;
    for i in 0..3000u32 {
        let ts = out.ts;
        out.send(&uac, remote, 0, false, &tone_frame(600, sample), ts);
        out.ts = out.ts.wrapping_add(160);
        sample += 160;
        std::thread::sleep(Duration::from_millis(20));
        if answered_at.is_none() && phone.saw("CALL_ESTABLISHED") {
            answered_at = Some(i);
            rx.clear();
        }
        drain(&uac, &mut rx);
        if answered_at.is_some_and(|a| i >= a + 150) {
            break;
        }
    }
    assert!(
        answered_at.is_some(),
        "the SRTP-only phone never answered\n{}",
        phone.log()
    );
    // baresip → (SRTP) → Parley → caller: its 1 kHz tone; the caller's 600 Hz the
    // other way. Media that did not decrypt would be dropped (Parley) or noise.
    let caller_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    let agent_heard = tone_blocks(&phone.received(), 600);
    // The agent holds (an RTP/SAVP re-INVITE, sendonly) and resumes: Parley answers
    // both with SRTP (before, an RTP/SAVP re-offer got 488 and hold did nothing).
    let mut talk = |secs: u32, rx: &mut Vec<Vec<u8>>| {
        for _ in 0..secs * 50 {
            let ts = out.ts;
            out.send(&uac, remote, 0, false, &tone_frame(600, sample), ts);
            out.ts = out.ts.wrapping_add(160);
            sample += 160;
            std::thread::sleep(Duration::from_millis(20));
            drain(&uac, rx);
        }
    };
    phone.command("hold", "");
    talk(1, &mut rx);
    rx.clear();
    talk(2, &mut rx);
    let held_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    phone.command("resume", "");
    talk(1, &mut rx);
    rx.clear();
    talk(2, &mut rx);
    let resumed_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    let call_id = dialog.id.call_id.clone();
    uac.hang_up(&mut dialog);
    phone.wait_event("CALL_CLOSED", 10);
    // Both re-INVITEs reached Parley and got SRTP answers, none a 488 (baresip goes
    // quiet on hold either way: the ladder, not the audio, tells).
    let tok = p.supervisor_token();
    let trace = p.http(
        "GET",
        &format!("/api/v1/sip/calls/{call_id}/trace"),
        Some(&tok),
        None,
    );
    let ladder: Vec<String> = trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["direction"], e["summary"]))
        .collect();
    let reinvites = ladder
        .iter()
        .filter(|l| l.starts_with("\"in\" \"INVITE sip:parley@"))
        .count();
    assert!(reinvites >= 2, "no hold and resume re-INVITEs: {ladder:#?}");
    assert!(
        !ladder.iter().any(|l| l.contains("SIP/2.0 488")),
        "{ladder:#?}"
    );
    assert!(
        held_heard < 10,
        "the caller heard {held_heard} blocks of the agent while held\n{}",
        phone.log()
    );
    assert!(
        resumed_heard >= 40,
        "the caller heard {resumed_heard} blocks of the agent after resume\n{}",
        phone.log()
    );
    assert!(
        caller_heard >= 50,
        "the caller heard {caller_heard} blocks of the agent's tone ({} packets)",
        rx.len()
    );
    assert!(
        agent_heard >= 50,
        "the SRTP agent heard {agent_heard} blocks of the caller's tone\n{}",
        phone.log()
    );
    assert_eq!(p.counter(&tok, "sip_srtp_refused_total"), 0);
}

// A phone rung directly (no flow: the caller's SDP used to be passed through) whose
// user requires SRTP: the plain caller's RTP/AVP offer went to baresip with
// `mediaenc=srtp-mand` as it was, which refused it, and the call never reached the
// phone. Now Parley anchors the media when the offer disagrees with the target's
// policy: the phone is offered Parley's RTP/SAVP, the caller gets Parley's plain
// answer, and the two legs are bridged.
#[test]
fn a_plain_caller_reaches_an_srtp_only_extension_rung_without_a_flow_and_media_flows() {
    if !have_baresip() {
        return;
    }
    let p = start_b2bua("srtp-direct", &[BARESIP_1_0_DIGEST]);
    let admin = p.admin_token();
    user_srtp(&p, &admin, "agent1@demo.parley.test", "required");
    let (ext, pw) = p.agent(0);
    let mut phone = srtp_phone(&p, &ext, &pw, 1000, false);
    phone.wait_registered(15);
    // A plain caller (the demo trunk's policy is optional) dials the number.
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("+15550100");
    phone.wait_event("CALL_ESTABLISHED", 10);
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    let mut sample = 0u32;
    for _ in 0..200u32 {
        let ts = out.ts;
        out.send(&uac, remote, 0, false, &tone_frame(600, sample), ts);
        out.ts = out.ts.wrapping_add(160);
        sample += 160;
        std::thread::sleep(Duration::from_millis(20));
        drain(&uac, &mut rx);
    }
    let caller_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    // The phone holds (an RTP/SAVP re-INVITE) and resumes: Parley answers both on
    // the anchored leg (it does not relay them to the plain caller).
    let mut talk = |secs: u32, rx: &mut Vec<Vec<u8>>| {
        for _ in 0..secs * 50 {
            let ts = out.ts;
            out.send(&uac, remote, 0, false, &tone_frame(600, sample), ts);
            out.ts = out.ts.wrapping_add(160);
            sample += 160;
            std::thread::sleep(Duration::from_millis(20));
            drain(&uac, rx);
        }
    };
    phone.command("hold", "");
    talk(1, &mut rx);
    rx.clear();
    talk(2, &mut rx);
    let held_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    phone.command("resume", "");
    talk(1, &mut rx);
    rx.clear();
    talk(2, &mut rx);
    let resumed_heard = tone_blocks(&ulaw_samples(&rx), 1000);
    let call_id = dialog.id.call_id.clone();
    uac.hang_up(&mut dialog);
    phone.wait_event("CALL_CLOSED", 10);
    let agent_heard = tone_blocks(&phone.received(), 600);
    let tok = p.supervisor_token();
    let trace = p.http(
        "GET",
        &format!("/api/v1/sip/calls/{call_id}/trace"),
        Some(&tok),
        None,
    );
    let ladder: Vec<String> = trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["direction"], e["summary"]))
        .collect();
    assert!(
        !ladder.iter().any(|l| l.contains("SIP/2.0 488")),
        "{ladder:#?}"
    );
    assert!(
        held_heard < 10,
        "the caller heard {held_heard} blocks of the phone while held\n{}",
        phone.log()
    );
    assert!(
        resumed_heard >= 40,
        "the caller heard {resumed_heard} blocks of the phone after resume\n{}",
        phone.log()
    );
    assert!(
        caller_heard >= 50,
        "the caller heard {caller_heard} blocks of the phone's tone ({} packets)\n{}",
        rx.len(),
        phone.log()
    );
    assert!(
        agent_heard >= 50,
        "the SRTP phone heard {agent_heard} blocks of the caller's tone\n{}",
        phone.log()
    );
    assert_eq!(p.counter(&tok, "sip_srtp_refused_total"), 0);
}

#[test]
fn click_to_call_offers_srtp_to_an_srtp_only_agent_phone_and_to_a_trunk_that_requires_it() {
    if !have_baresip() {
        return;
    }
    let p = Parley::start_with("srtp-c2c", &[BARESIP_1_0_DIGEST]);
    let admin = p.admin_token();
    // The supervisor gets an extension (click-to-call rings your own phone first)
    // whose phone requires SRTP.
    let sup_id = p.user_id(&admin, "supervisor@demo.parley.test");
    let sip_pw = "srtp-phone-password-1";
    p.http(
        "PUT",
        &format!("/api/v1/users/{sup_id}/sip"),
        Some(&admin),
        Some(json!({ "extension": "1777", "password": sip_pw, "srtp": "required" })),
    );
    let agent = srtp_phone(&p, "1777", sip_pw, 1000, false);
    agent.wait_registered(15);
    // The customer: an SRTP-only phone behind a trunk whose policy is required.
    let customer = srtp_phone(&p, "+15550199", "unused-password", 700, true);
    let trunk = p.http(
        "POST",
        "/api/v1/trunks",
        Some(&admin),
        Some(json!({
            "name": "carrier",
            "outbound_target": customer.sip.to_string(),
            "caller_id": "+15550100",
            "srtp": "required",
        })),
    );
    assert_eq!(trunk["srtp"], "required", "{trunk}");
    let sup = p.supervisor_token();
    let call = p.http(
        "POST",
        "/api/v1/calls",
        Some(&sup),
        Some(json!({"number": "+1 555 0199"})),
    );
    assert_eq!(call["direction"], "outbound", "{call}");
    agent.wait_event("CALL_ESTABLISHED", 20);
    customer.wait_event("CALL_ESTABLISHED", 20);
    // Both talk for a while; each must hear the other's tone through Parley.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = tone_blocks(&agent.received(), 700);
        let c = tone_blocks(&customer.received(), 1000);
        if a >= 50 && c >= 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agent heard {a} blocks of the customer, customer {c} of the agent\n\
             agent:\n{}\ncustomer:\n{}",
            agent.log(),
            customer.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(p.counter(&sup, "sip_srtp_refused_total"), 0);
}

// An extension dialling out through a trunk whose policy is `required`: the phone's
// plain offer used to be refused with 488 (it was passed through, and the trunk's
// policy asked for SRTP). Now Parley anchors the media: the carrier (baresip with
// `mediaenc=srtp-mand`) gets Parley's RTP/SAVP offer, the phone Parley's plain
// answer, and each hears the other.
#[test]
fn a_plain_phone_dials_out_through_a_trunk_that_requires_srtp_and_media_flows() {
    if !have_baresip() {
        return;
    }
    let p = Parley::start_with("srtp-out", &[BARESIP_1_0_DIGEST]);
    let admin = p.admin_token();
    let carrier = srtp_phone(&p, "+15550199", "unused-password", 700, true);
    let trunk = p.http(
        "POST",
        "/api/v1/trunks",
        Some(&admin),
        Some(json!({
            "name": "carrier",
            "outbound_target": carrier.sip.to_string(),
            "caller_id": "+15550100",
            "srtp": "required",
        })),
    );
    assert_eq!(trunk["srtp"], "required", "{trunk}");
    // A plain phone (its user's policy is optional: it offers RTP/AVP).
    let (ext, pw) = p.agent(0);
    let mut phone = Phone::start(
        Command::new("baresip"),
        &PhoneSetup {
            ext: &ext,
            password: &pw,
            server: p.sip,
            listen: "127.0.0.1".parse().unwrap(),
            tone_hz: 1000,
            auto_answer: true,
        },
    );
    phone.wait_registered(15);
    phone.command("dial", &format!("sip:+15550199@{}", p.sip));
    carrier.wait_event("CALL_ESTABLISHED", 20);
    phone.wait_event("CALL_ESTABLISHED", 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = tone_blocks(&phone.received(), 700);
        let c = tone_blocks(&carrier.received(), 1000);
        if a >= 50 && c >= 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the phone heard {a} blocks of the carrier, the carrier {c} of the phone\n\
             phone:\n{}\ncarrier:\n{}",
            phone.log(),
            carrier.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let tok = p.supervisor_token();
    assert_eq!(p.counter(&tok, "sip_srtp_refused_total"), 0);
}

#[test]
fn a_plain_answer_to_an_srtp_offer_hangs_the_agent_leg_up_and_is_counted() {
    let p = Parley::start("srtp-plain-answer");
    let admin = p.admin_token();
    p.open_all_week(&admin);
    presence(&p, &admin, "agent2@demo.parley.test", "offline");
    presence(&p, &admin, "agent1@demo.parley.test", "available");
    user_srtp(&p, &admin, "agent1@demo.parley.test", "required");
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    let mut phone = uas("uas_plain_answer_to_srtp.xml", uas_port, 1, &[]);
    check(
        "REGISTER 1001",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("+15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    let mut k = 0u16;
    while rx.iter().filter(|p| audible(p)).count() < 10 && k < 750 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        k += 1;
    }
    out.digit(&uac, remote, '1', &mut rx);
    // The phone's scenario ends once it has had Parley's BYE for its plain answer.
    let status = (0..300).find_map(|i| {
        out.audio(&uac, remote, k.wrapping_add(i), &mut rx);
        std::thread::sleep(Duration::from_millis(50));
        phone.try_wait().unwrap()
    });
    let status = status.unwrap_or_else(|| {
        let _ = phone.kill();
        phone.wait().unwrap()
    });
    let mut err = String::new();
    if let Some(mut e) = phone.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "agent phone: {status:?} {err}");
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_srtp_refused_total") >= 1);
    uac.hang_up(&mut dialog);
}

/// Sets the demo trunk whose inbound address is 127.0.0.1 (where the test callers send
/// from) to SRTP `required`.
fn require_srtp_from_local_trunk(p: &Parley, admin: &str) {
    let trunks = p.http("GET", "/api/v1/trunks", Some(admin), None);
    let trunk = trunks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["inbound_addresses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "127.0.0.1")
        })
        .unwrap()
        .clone();
    let mut input = json!({
        "name": trunk["name"],
        "inbound_addresses": trunk["inbound_addresses"],
        "transport": trunk["transport"],
        "caller_id": trunk["caller_id"],
        "srtp": "required",
    });
    if let Some(t) = trunk["outbound_target"].as_str() {
        input["outbound_target"] = json!(t);
    }
    let id = trunk["id"].as_str().unwrap();
    p.http(
        "PUT",
        &format!("/api/v1/trunks/{id}"),
        Some(admin),
        Some(input),
    );
}

/// An INVITE without SDP to `number` (the caller offers nothing; Parley must).
fn offerless_invite(
    uac: &ProtoUac,
    p: &Parley,
    number: &str,
) -> (Request, parley_sip_proto::message::Response) {
    let me = uac.me;
    let mut h = Headers::new();
    h.push("Via", uac.via().to_string());
    h.push("Max-Forwards", "70");
    let mut rng = rand::rng();
    let tag = parley_sip_proto::dialog::random_token(&mut rng, 10);
    let call_id = parley_sip_proto::dialog::random_token(&mut rng, 16);
    h.push("From", format!("<sip:late@{}>;tag={tag}", me.ip()));
    h.push("To", format!("<sip:{number}@{}>", p.sip));
    h.push("Call-ID", format!("late-{call_id}@uac.test"));
    h.push("CSeq", "1 INVITE");
    h.push("Contact", format!("<sip:late@{me}>"));
    let invite = Request::new(
        Method::Invite,
        &format!("sip:{number}@{}", p.sip),
        h,
        bytes::Bytes::new(),
    )
    .unwrap();
    uac.send(&invite);
    loop {
        if let SipMessage::Response(r) = uac.recv()
            && r.code() >= 200
        {
            return (invite, r);
        }
    }
}

#[test]
fn an_invite_without_sdp_from_a_required_trunk_gets_an_srtp_offer_and_a_plain_ack_a_bye() {
    let p = Parley::start("srtp-late-offer");
    let admin = p.admin_token();
    require_srtp_from_local_trunk(&p, &admin);
    // The echo test answers with an RTP/SAVP offer of its own (before: 488).
    let uac = ProtoUac::new(p.sip);
    let (invite, ok) = offerless_invite(&uac, &p, "43");
    assert_eq!(ok.code(), 200, "{ok:?}");
    let offer = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(offer.contains("RTP/SAVP"), "{offer}");
    let crypto = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=crypto:1 "))
        .unwrap_or_else(|| panic!("no a=crypto:1 in {offer}"));
    assert!(
        crypto.starts_with("AES_CM_128_HMAC_SHA1_80 inline:"),
        "{offer}"
    );
    // A plain answer in the ACK does not do: Parley hangs up.
    let me = uac.me;
    let d = parley_sip_proto::dialog::Dialog::uac(&invite, &ok, &format!("sip:late@{me}")).unwrap();
    let plain = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        uac.rtp.local_addr().unwrap().port()
    );
    let ack = d
        .create_ack(
            1,
            &uac.via(),
            Some(("application/sdp", bytes::Bytes::from(plain))),
        )
        .unwrap();
    uac.send(&ack);
    let bye = loop {
        match uac.recv() {
            SipMessage::Request(r) if r.method() == &Method::Bye => break r,
            _ => {}
        }
    };
    let reason = bye.headers.get("Reason").unwrap_or_default().to_owned();
    assert!(reason.contains("cause=88"), "{reason}");
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
}

// A caller that requires SRTP (its trunk's policy) sending an INVITE without SDP to a
// number that rings phones without a flow used to get 488: the phones' offers would
// have reached it unchecked in their 200s. Now Parley anchors the media: the caller gets
// Parley's RTP/SAVP offer once a phone answers (a plain phone got Parley's plain
// offer), answers it in the ACK, and each side hears the other through SRTP.
#[test]
fn an_srtp_caller_without_an_offer_reaches_a_plain_phone_without_a_flow_and_media_flows() {
    use parley_media::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
    if !have_baresip() {
        return;
    }
    let p = start_b2bua("srtp-late-direct", &[BARESIP_1_0_DIGEST]);
    let admin = p.admin_token();
    require_srtp_from_local_trunk(&p, &admin);
    let (ext, pw) = p.agent(0);
    let phone = Phone::start(
        Command::new("baresip"),
        &PhoneSetup {
            ext: &ext,
            password: &pw,
            server: p.sip,
            listen: "127.0.0.1".parse().unwrap(),
            tone_hz: 1000,
            auto_answer: true,
        },
    );
    phone.wait_registered(15);
    let uac = ProtoUac::new(p.sip);
    let (invite, ok) = offerless_invite(&uac, &p, "+15550100");
    assert_eq!(ok.code(), 200, "{ok:?}");
    let offer = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(offer.contains("RTP/SAVP"), "{offer}");
    let theirs = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=crypto:"))
        .map(|v| parse_crypto(v).unwrap())
        .unwrap_or_else(|| panic!("no a=crypto in {offer}"));
    let port: u16 = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio in {offer}"));
    let remote = SocketAddr::from(([127, 0, 0, 1], port));
    // Our answer, with our own key.
    let ours = [7u8; 30];
    let answer_crypto = parley_sip_proto::sdes::CryptoAttr {
        key: parley_sip_proto::sdes::KeySalt(ours),
        ..theirs
    };
    let me = uac.me;
    let d = parley_sip_proto::dialog::Dialog::uac(&invite, &ok, &format!("sip:late@{me}")).unwrap();
    let answer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:{}\r\n",
        uac.rtp.local_addr().unwrap().port(),
        answer_crypto.to_value()
    );
    let ack = d
        .create_ack(
            1,
            &uac.via(),
            Some(("application/sdp", bytes::Bytes::from(answer))),
        )
        .unwrap();
    uac.send(&ack);
    phone.wait_event("CALL_ESTABLISHED", 10);
    let mut srtp = SrtpSession::new(&SrtpKeys {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        local: ours,
        remote: theirs.key.0,
    })
    .unwrap();
    // 4 s of a 600 Hz tone to the phone, reading what Parley sends back meanwhile.
    let mut heard: Vec<Vec<u8>> = Vec::new();
    let mut undecryptable = 0;
    let mut buf = [0u8; 1500];
    uac.rtp.set_nonblocking(true).unwrap();
    for k in 0..200u16 {
        let plain = tone_frame(600, u32::from(k) * 160);
        let n = RtpHeader {
            marker: k == 0,
            payload_type: 0,
            sequence: k + 1,
            timestamp: u32::from(k) * 160,
            ssrc: 0x5eed,
            ..RtpHeader::default()
        }
        .write(&plain, &mut buf)
        .unwrap();
        let len = srtp.protect_rtp(&mut buf, n).unwrap();
        uac.rtp.send_to(&buf[..len], remote).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut rx = [0u8; 1500];
        while let Ok((n, _)) = uac.rtp.recv_from(&mut rx) {
            match srtp.unprotect_rtp(&rx[..n]) {
                Ok(p) => {
                    if let Ok(pkt) = RtpPacket::parse(&p)
                        && pkt.payload_type() == 0
                    {
                        heard.push(pkt.payload().to_vec());
                    }
                }
                Err(_) => undecryptable += 1,
            }
        }
    }
    uac.rtp.set_nonblocking(false).unwrap();
    let caller_heard = tone_blocks(&ulaw_samples(&heard), 1000);
    let phone_heard = tone_blocks(&phone.received(), 600);
    assert!(
        caller_heard >= 50 && phone_heard >= 50,
        "the caller heard {caller_heard} blocks of the phone ({undecryptable} packets did \
         not authenticate), the phone {phone_heard} of the caller\nphone:\n{}",
        phone.log()
    );
    assert_eq!(undecryptable, 0);
}
