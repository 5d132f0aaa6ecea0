//! SIP end to end: the real `parley` binary on loopback (ephemeral ports), driven by
//! real sipp processes (scenarios in tests/sipp/) and raw UDP. RFC 3665 flows:
//! registration with digest auth, a successful session through the B2BUA, busy, no
//! answer, CANCEL; plus auth failure, packet loss, malformed input, throttling.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod sip_acd;
mod sip_phones;
mod sip_security;
mod sip_srtp;

mod common;
use common::parley::{Parley, temp_dir};
use common::sipp::{
    check, finished, free_media_port, free_port, header, invites_at, recv_until, register,
    scenario, sipp, try_recv_until, uas,
};
use common::wait::{eventually, wait_every, wait_until};

/// Parley whose demo number rings the agents directly (B2BUA, SDP passed through):
/// the demo flow's route is removed, so no IVR answers the number.
fn start_b2bua(tag: &str, env: &[(&str, &str)]) -> Parley {
    let p = Parley::start_with(tag, env);
    let admin = p.admin_token();
    let (status, v) = p.request(
        "DELETE",
        "/api/v1/ivr/numbers/%2B15550100",
        Some(&admin),
        None,
    );
    assert!(
        (200..300).contains(&status),
        "unroute the demo number: {status} {v}"
    );
    p
}

#[test]
fn rfc3665_registration_and_successful_session_through_the_b2bua() {
    let p = start_b2bua("answer", &[]);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    // Three calls: dialled as 15550100 and +15550100 over UDP, and once over TCP.
    let phone = uas("uas_answer.xml", uas_port, 3, &[]);
    check(
        "REGISTER 1001",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check(
        "call to 15550100",
        sipp("uac_call.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100", "-cid_str", "answered-%u@parley.test"])
            .output()
            .unwrap(),
    );
    check(
        "call to +15550100",
        sipp("uac_call.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "+15550100"])
            .output()
            .unwrap(),
    );
    check(
        "call over TCP",
        sipp("uac_call.xml", free_port(), 1, Some(p.sip_tcp))
            .args(["-s", "15550100", "-t", "t1"])
            .output()
            .unwrap(),
    );
    check("agent phone", phone.wait_with_output().unwrap());

    // The ladder of the first call, across both legs, over the API.
    let tok = p.supervisor_token();
    let trace = p.http(
        "GET",
        "/api/v1/sip/calls/answered-1@parley.test/trace",
        Some(&tok),
        None,
    );
    let summaries: Vec<String> = trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["direction"].as_str().unwrap(),
                e["summary"].as_str().unwrap()
            )
        })
        .collect();
    let has = |s: &str| summaries.iter().any(|x| x.starts_with(s));
    for expected in [
        "in INVITE sip:15550100@",
        "out SIP/2.0 100 Trying",
        "out INVITE sip:1001@127.0.0.1",
        "in SIP/2.0 180 Ringing",
        "out SIP/2.0 180 Ringing",
        "in SIP/2.0 200 OK",
        "out ACK sip:",
        "out SIP/2.0 200 OK",
        "in ACK sip:",
        "in BYE sip:",
        "out BYE sip:",
    ] {
        assert!(has(expected), "{expected:?} missing from {summaries:#?}");
    }
    assert!(p.counter(&tok, "sip_calls_answered_total") >= 3);
    assert!(p.counter(&tok, "sip_registrations_total") >= 1);
}

/// Checks the Prometheus text exposition format (0.0.4) line by line and returns the
/// samples: (name with labels, value).
fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line:?}"
            );
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.push((series.to_owned(), v));
    }
    out
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{series} not exported"))
}

/// Issue #15: `GET /metrics` exports Prometheus text that moves with calls, only to the
/// operator's metrics token; and calls after the first read their number, trunk,
/// agents and realm from the lookup cache (regression: four-plus database round trips
/// before every answer).
#[test]
fn prometheus_metrics_move_with_calls_and_later_calls_make_no_lookup_queries() {
    const TOKEN: &str = "metrics-scrape-token-0123456789";
    let p = start_b2bua(
        "metrics",
        &[
            ("PARLEY_METRICS_TOKEN", TOKEN),
            // The test compares counters across calls, however slow the machine.
            ("PARLEY_LOOKUP_TTL_SECS", "3600"),
        ],
    );
    let sup = p.supervisor_token();
    assert_eq!(p.get_text("/metrics", None).0, 401);
    assert_eq!(p.get_text("/metrics", Some("not-the-token")).0, 401);
    // A tenant's user, even a supervisor or admin, does not read server-wide figures.
    assert_eq!(p.get_text("/metrics", Some(&sup)).0, 403);
    assert_eq!(p.get_text("/metrics", Some(&p.admin_token())).0, 403);

    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    let phone = uas("uas_answer.xml", uas_port, 3, &[]);
    check(
        "REGISTER",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check(
        "first call",
        sipp("uac_call.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    let (status, text) = p.get_text("/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    let first = prometheus_samples(&text);
    let lookups = sample(&first, "parley_db_lookup_queries_total");
    assert!(lookups >= 1.0, "the first call looked its number up");
    assert!(sample(&first, "parley_sip_calls_answered_total") >= 1.0);

    check(
        "two more calls",
        sipp("uac_call.xml", free_port(), 2, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    check("agent phone", phone.wait_with_output().unwrap());
    // The same at the API's path.
    let (status, text) = p.get_text("/api/v1/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    let after = prometheus_samples(&text);
    assert!(sample(&after, "parley_sip_calls_answered_total") >= 3.0);
    assert_eq!(
        sample(&after, "parley_db_lookup_queries_total"),
        lookups,
        "the calls after the first made lookup queries"
    );
    // HTTP requests by route template (never by id or token), and the scrape's own
    // earlier refusals.
    assert!(
        sample(
            &after,
            r#"parley_http_requests_total{method="GET",route="/metrics",status="2xx"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            r#"parley_http_requests_total{method="GET",route="/metrics",status="4xx"}"#
        ) >= 4.0
    );
    assert!(
        !text.contains(&sup) && !text.contains("demo"),
        "no token or tenant in labels"
    );
}

#[test]
fn rfc3665_busy_maps_to_486() {
    let p = start_b2bua("busy", &[]);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    let phone = uas("uas_busy.xml", uas_port, 1, &[]);
    check(
        "REGISTER",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check(
        "busy call",
        sipp("uac_busy.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    check("busy phone", phone.wait_with_output().unwrap());
}

#[test]
fn rfc3665_cancel_propagates_to_the_ringing_agent() {
    let p = start_b2bua("cancel", &[]);
    let (ext, pw) = p.agent(1);
    let uas_port = free_port();
    let phone = uas("uas_cancel.xml", uas_port, 1, &[]);
    check(
        "REGISTER 1002",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check(
        "cancelled call",
        sipp("uac_cancel.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    check("ringing phone", phone.wait_with_output().unwrap());
}

#[test]
fn rfc3665_no_answer_times_out_with_480_and_cancels_the_agent() {
    let p = start_b2bua("noanswer", &[("PARLEY_SIP_RING_TIMEOUT_SECS", "1")]);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    let phone = uas("uas_cancel.xml", uas_port, 1, &[]);
    check(
        "REGISTER",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check(
        "unanswered call",
        sipp("uac_noanswer.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    check("ringing phone", phone.wait_with_output().unwrap());
}

#[test]
fn register_with_a_wrong_password_is_forbidden_and_nobody_rings() {
    let p = start_b2bua("forbidden", &[]);
    let (ext, _) = p.agent(0);
    check(
        "REGISTER with a wrong password gets 403",
        register(
            &p,
            &ext,
            "not the password",
            free_port(),
            "register_forbidden.xml",
        ),
    );
    // Not registered: the demo number has nobody to ring.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = s.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:15550100@{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKnobody\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=1\r\nTo: <sip:15550100@{0}>\r\n\
         Call-ID: nobody@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n",
        p.sip
    );
    s.send_to(invite.as_bytes(), p.sip).unwrap();
    let finals = recv_until(&s, |r| !r.starts_with("SIP/2.0 1"));
    assert!(finals.starts_with("SIP/2.0 480 "), "{finals}");
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_auth_failures_total") >= 1);
}

/// The cumulative "Successful call" count from a sipp run's final statistics screen.
fn successful_calls(out: &Output) -> u32 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("Successful call"))
        .filter_map(|l| l.rsplit('|').next()?.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

#[test]
fn calls_complete_when_packets_are_lost_both_ways() {
    let p = start_b2bua("lost", &[]);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    // sipp drops 10 % of what it sends and receives, on both sides of the B2BUA; each
    // call is a dozen messages, so without retransmissions (Parley's timers A/E/G and
    // 2xx retransmission, its re-ACKing of retransmitted 2xx, sipp's own) only about a
    // quarter of the calls would complete. sipp aborts a call on some loss patterns
    // it cannot handle itself (an unexpected message), so the bar is 6 of 8, not all.
    let mut phone = uas("uas_answer.xml", uas_port, 8, &["-lost", "10"]);
    check(
        "REGISTER",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    let caller = sipp("uac_call.xml", free_port(), 8, Some(p.sip))
        .args(["-s", "15550100", "-lost", "10", "-r", "2", "-l", "2"])
        .args(["-recv_timeout", "10000"])
        .output()
        .unwrap();
    let _ = phone.kill();
    let phone = phone.wait_with_output().unwrap();
    let ok = successful_calls(&caller);
    assert!(
        ok >= 6,
        "only {ok} of 8 calls completed\ncaller:\n{}\n{}\nphone:\n{}",
        String::from_utf8_lossy(&caller.stdout),
        String::from_utf8_lossy(&caller.stderr),
        String::from_utf8_lossy(&phone.stdout)
    );
}

fn options(me: SocketAddr, to: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKopt{n}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{me}>;tag={n}\r\nTo: <sip:{to}>\r\nCall-ID: opt{n}@test\r\nCSeq: {n} OPTIONS\r\n\
         Accept: application/sdp\r\nUser-Agent: parley-test\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn malformed_unknown_and_oversized_messages() {
    let p = Parley::start_with("malformed", &[]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = s.local_addr().unwrap();
    let to = p.sip;
    // No Call-ID: 400 with a reason phrase naming the problem.
    let no_call_id = format!(
        "INVITE sip:15550100@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbad1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:15550100@{to}>\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nUser-Agent: a fairly long user agent string\r\nContent-Length: 0\r\n\r\n"
    );
    s.send_to(no_call_id.as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(r.starts_with("SIP/2.0 400 Missing Call-ID\r\n"), "{r}");
    assert!(r.contains("branch=z9hG4bKbad1"), "{r}");
    // CSeq method mismatch.
    let mismatch = no_call_id
        .replace("CSeq: 1 INVITE", "CSeq: 1 BYE\r\nCall-ID: mm@test")
        .replace("bad1", "bad2");
    s.send_to(mismatch.as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(r.starts_with("SIP/2.0 400 CSeq Method Mismatch\r\n"), "{r}");
    // Unknown method: 501; known but not allowed out of dialog: 405 with Allow.
    let unknown = options(me, to, 7).replace("OPTIONS", "FROBNICATE");
    s.send_to(unknown.as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(r.starts_with("SIP/2.0 501 Not Implemented\r\n"), "{r}");
    let message = options(me, to, 8).replace("OPTIONS", "MESSAGE");
    s.send_to(message.as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(r.starts_with("SIP/2.0 405 Method Not Allowed\r\n"), "{r}");
    assert!(r.contains("Allow: INVITE"), "{r}");
    // Garbage, a response nobody asked for and an oversized datagram get nothing: the
    // next reply is the one to the OPTIONS sent after them (loopback keeps order).
    s.send_to(b"\x00\x01garbage\r\n\r\n", to).unwrap();
    s.send_to(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n\r\n",
        to,
    )
    .unwrap();
    let mut big = options(me, to, 9).into_bytes();
    big.truncate(big.len() - 2);
    big.extend(std::iter::repeat_n(b'a', 20_000));
    s.send_to(&big, to).unwrap();
    s.send_to(options(me, to, 10).as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(
        r.starts_with("SIP/2.0 200 OK\r\n") && r.contains("CSeq: 10 OPTIONS"),
        "{r}"
    );
    // BYE for a dialog that does not exist.
    let bye = options(me, to, 11)
        .replace("OPTIONS", "BYE")
        .replace("To: <sip:", "To: <sip:x@")
        .replace(
            &format!("To: <sip:x@{to}>"),
            &format!("To: <sip:x@{to}>;tag=zz"),
        );
    s.send_to(bye.as_bytes(), to).unwrap();
    let r = recv_until(&s, |_| true);
    assert!(r.starts_with("SIP/2.0 481 "), "{r}");
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_malformed_total") >= 3);
    assert!(p.counter(&tok, "sip_oversized_dropped_total") >= 1);
}

#[test]
fn unauthenticated_floods_are_throttled_without_amplification() {
    let p = Parley::start_with(
        "flood",
        &[
            ("PARLEY_SIP_UNAUTH_PER_SECOND", "1"),
            ("PARLEY_SIP_UNAUTH_BURST", "3"),
        ],
    );
    // 127.0.0.2: loopback, but not a trunk address (those are not throttled).
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let me = s.local_addr().unwrap();
    // A scanner-style burst: 30 REGISTERs and SUBSCRIBEs without credentials.
    let mut sizes = std::collections::HashMap::new();
    for n in 0..30u32 {
        let m = if n % 2 == 0 {
            format!(
                "REGISTER sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKr{n}\r\nMax-Forwards: 70\r\n\
                 From: <sip:100@{0}>;tag={n}\r\nTo: <sip:100@{0}>\r\nCall-ID: r{n}\r\nCSeq: 1 REGISTER\r\n\
                 Content-Length: 0\r\n\r\n",
                p.sip
            )
        } else {
            options(me, p.sip, n).replace("OPTIONS", "SUBSCRIBE")
        };
        let call_id = m
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap()
            .to_owned();
        sizes.insert(call_id, m.len());
        s.send_to(m.as_bytes(), p.sip).unwrap();
    }
    let mut replies = 0;
    let mut buf = [0u8; 65536];
    while let Ok((n, _)) = s.recv_from(&mut buf) {
        replies += 1;
        let text = String::from_utf8_lossy(&buf[..n]);
        let call_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap();
        // Bounded amplification: error replies are never larger than their request,
        // challenges at most 3 times (QUIC's anti-amplification factor).
        let limit = if text.starts_with("SIP/2.0 401") {
            3 * sizes[call_id]
        } else {
            sizes[call_id]
        };
        assert!(
            n <= limit,
            "{n}-byte reply to a {}-byte request: {text}",
            sizes[call_id]
        );
    }
    assert!(replies < 30, "{replies} replies: no throttling");
    assert!(replies >= 1, "the burst allowance answers a few");
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_throttled_total") >= 10);
}

/// A minimal UDP SIP client on its own loopback address, answering digest challenges
/// with parley-sip-proto's digest code.
struct RawUa {
    s: UdpSocket,
    me: SocketAddr,
    to: SocketAddr,
    branch: u32,
}

impl RawUa {
    fn new(ip: &str, to: SocketAddr) -> RawUa {
        let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let me = s.local_addr().unwrap();
        RawUa {
            s,
            me,
            to,
            branch: 0,
        }
    }

    /// Sends `method` with `extra` headers; returns the first final response.
    fn request(
        &mut self,
        method: &str,
        uri: &str,
        from_user: &str,
        call_id: &str,
        cseq: u32,
        extra: &str,
    ) -> String {
        self.try_request(method, uri, from_user, call_id, cseq, extra)
            .expect("no reply from parley")
    }

    /// Like [`RawUa::request`]; `None` when no final response for this Call-ID comes
    /// within the socket's read timeout.
    fn try_request(
        &mut self,
        method: &str,
        uri: &str,
        from_user: &str,
        call_id: &str,
        cseq: u32,
        extra: &str,
    ) -> Option<String> {
        self.branch += 1;
        let (me, b) = (self.me, self.branch);
        let msg = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKraw{b}{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{from_user}@{host}>;tag=raw{b}\r\nTo: <sip:{from_user}@{host}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{from_user}@{me}>\r\n{extra}\
             User-Agent: parley-test raw client with a few extra bytes of padding\r\nContent-Length: 0\r\n\r\n",
            host = self.to.ip(),
        );
        self.s.send_to(msg.as_bytes(), self.to).unwrap();
        let mine = format!("Call-ID: {call_id}\r\n");
        try_recv_until(&self.s, |r| {
            !r.starts_with("SIP/2.0 1") && r.contains(&mine)
        })
    }
}

/// Issue 14: an API lists each extension's registered devices (user agent, address,
/// transport, expiry), so an admin can see whether a phone set up from the guide is
/// connected.
#[test]
fn registrations_list_each_phone_with_its_user_agent_and_expiry() {
    use parley_sip_proto::auth::DigestChallenge;
    let p = Parley::start_with("regs", &[]);
    let (ext, pw) = p.agent(0);
    let tok = p.supervisor_token();
    let list = |p: &Parley| p.http("GET", "/api/v1/sip/registrations", Some(&tok), None);
    assert_eq!(list(&p), json!([]));
    let mut ua = RawUa::new("127.0.0.1", p.sip);
    let uri = format!("sip:{}", p.sip);
    let extra = "User-Agent: Linphone/5.2.0 (test)\r\nExpires: 600\r\n";
    let r = ua.request("REGISTER", &uri, &ext, "regs@test", 1, extra);
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    let ch = DigestChallenge::parse(header(&r, "WWW-Authenticate")[0]).unwrap();
    let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "c0ffee", 1);
    let auth = format!("Authorization: {creds}\r\n{extra}");
    let r = ua.request("REGISTER", &uri, &ext, "regs@test", 2, &auth);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    let v = list(&p);
    let regs = v.as_array().unwrap();
    assert_eq!(regs.len(), 1, "{v}");
    let reg = &regs[0];
    assert_eq!(reg["extension"], ext.as_str(), "{v}");
    assert_eq!(reg["user_agent"], "Linphone/5.2.0 (test)", "{v}");
    assert_eq!(reg["transport"], "udp", "{v}");
    assert!(
        reg["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );
    let left = reg["expires_in_s"].as_u64().unwrap();
    assert!((1..=600).contains(&left), "{v}");
    // Un-registering removes it.
    let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "c0ffee", 2);
    let r = ua.request(
        "REGISTER",
        &uri,
        &ext,
        "regs@test",
        3,
        &format!("Authorization: {creds}\r\nExpires: 0\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(list(&p), json!([]));
}

#[test]
fn sha256_digest_and_nonce_count_replay_protection() {
    use parley_sip_proto::auth::{Algorithm, DigestChallenge};
    let p = Parley::start_with("sha256", &[("PARLEY_SIP_DIGEST_ALGORITHMS", "SHA-256,MD5")]);
    let (ext, pw) = p.agent(0);
    let mut ua = RawUa::new("127.0.0.1", p.sip);
    let uri = format!("sip:{}", p.sip);
    let r = ua.request("REGISTER", &uri, &ext, "sha@test", 1, "Expires: 120\r\n");
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    let challenges = header(&r, "WWW-Authenticate");
    let ch = DigestChallenge::parse(challenges[0]).unwrap();
    assert_eq!(
        ch.algorithm,
        Algorithm::Sha256,
        "SHA-256 offered first: {r}"
    );
    assert_eq!(ch.realm, "demo");
    let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "c0ffee", 1);
    let auth = format!("Authorization: {creds}\r\nExpires: 120\r\n");
    let r = ua.request("REGISTER", &uri, &ext, "sha@test", 2, &auth);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    let contact = header(&r, "Contact");
    assert_eq!(contact.len(), 1, "{r}");
    assert!(contact[0].contains(";expires=120"), "{r}");
    // The same credentials (same nonce and nc) again: a replay, challenged afresh.
    let r = ua.request("REGISTER", &uri, &ext, "sha@test", 3, &auth);
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    // The next nc with the same nonce is fine; a wrong password is forbidden.
    let next = ch.answer(&ext, &pw, "REGISTER", &uri, "c0ffee", 2);
    let r = ua.request(
        "REGISTER",
        &uri,
        &ext,
        "sha@test",
        4,
        &format!("Authorization: {next}\r\nExpires: 0\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(header(&r, "Contact").is_empty(), "un-registered: {r}");
    let wrong = ch.answer(&ext, "wrong password", "REGISTER", &uri, "c0ffee", 3);
    let r = ua.request(
        "REGISTER",
        &uri,
        &ext,
        "sha@test",
        5,
        &format!("Authorization: {wrong}\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 403 "), "{r}");
}

#[test]
fn a_user_outside_the_trunk_addresses_must_authenticate_to_call() {
    use parley_sip_proto::auth::DigestChallenge;
    let p = start_b2bua("userauth", &[]);
    let (ext, pw) = p.agent(1);
    // 127.0.0.2 is loopback too, but not one of the demo trunk's addresses.
    let mut ua = RawUa::new("127.0.0.2", p.sip);
    let uri = format!("sip:15550100@{}", p.sip);
    let r = ua.request("INVITE", &uri, &ext, "user-call@test", 1, "");
    assert!(r.starts_with("SIP/2.0 407 "), "{r}");
    let ch = DigestChallenge::parse(header(&r, "Proxy-Authenticate")[0]).unwrap();
    let creds = ch.answer(&ext, &pw, "INVITE", &uri, "abc", 1);
    let r = ua.request(
        "INVITE",
        &uri,
        &ext,
        "user-call@test",
        2,
        &format!("Proxy-Authorization: {creds}\r\n"),
    );
    // Authenticated and routed: no agent is registered, so nobody can take it.
    assert!(r.starts_with("SIP/2.0 480 "), "{r}");
    let bad = ch.answer(&ext, "not it", "INVITE", &uri, "abc", 2);
    let r = ua.request(
        "INVITE",
        &uri,
        &ext,
        "user-call-2@test",
        1,
        &format!("Proxy-Authorization: {bad}\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 403 "), "{r}");
    // Regression (issue 14): the 407 challenge was counted as a failed call on the
    // wallboard; only the 480 and the 403 are failures.
    let tok = p.supervisor_token();
    assert_eq!(p.counter(&tok, "sip_calls_failed_total"), 2);
    assert_eq!(p.counter(&tok, "sip_calls_challenged_total"), 1);
}

#[test]
fn cli_user_add_with_extension_reads_both_passwords_and_the_phone_registers() {
    let p = Parley::start_with("cli", &[]);
    let out = p.cli(
        &[
            "user",
            "add",
            "--tenant",
            "demo",
            "--email",
            "carol@demo.parley.test",
            "--role",
            "agent",
            "--extension",
            "1003",
        ],
        "web password 123\nsip password 456\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(
        "REGISTER 1003",
        register(&p, "1003", "sip password 456", free_port(), "register.xml"),
    );
    check(
        "REGISTER 1003 with the web password",
        register(
            &p,
            "1003",
            "web password 123",
            free_port(),
            "register_forbidden.xml",
        ),
    );
}

#[test]
fn an_agent_calls_out_through_the_trunk_with_its_caller_id() {
    use parley_sip_proto::auth::DigestChallenge;
    let p = Parley::start_with("outbound", &[]);
    let (ext, pw) = p.agent(1);
    let carrier_port = free_port();
    let carrier = uas("uas_trunk.xml", carrier_port, 1, &[]);
    let login = p.http("POST",
        "/api/v1/auth/login",
        None,
        Some(
            json!({"tenant": "demo", "email": "admin@demo.parley.test", "password": p.admin_password}),
        ),
    );
    let admin = login["token"].as_str().unwrap().to_owned();
    p.add_carrier(&admin, carrier_port);
    // International is off by default (the dial policy): Germany is allowed here.
    p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(json!({"allow_prefixes": ["+49"]})),
    );
    // The agent's phone (not on a trunk address) dials a number that is not ours.
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = s.local_addr().unwrap();
    let uri = format!("sip:+4930123456@{}", p.sip);
    let invite = |cseq: u32, auth: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKout{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=out1\r\nTo: <{uri}>\r\n\
             Call-ID: outbound@test\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{ext}@{me}>\r\n{auth}\
             Content-Length: 0\r\n\r\n"
        )
    };
    s.send_to(invite(1, "").as_bytes(), p.sip).unwrap();
    let r = recv_until(&s, |r| !r.starts_with("SIP/2.0 1"));
    assert!(r.starts_with("SIP/2.0 407 "), "{r}");
    let ch = DigestChallenge::parse(header(&r, "Proxy-Authenticate")[0]).unwrap();
    let creds = ch.answer(&ext, &pw, "INVITE", &uri, "f00", 1);
    s.send_to(
        invite(2, &format!("Proxy-Authorization: {creds}\r\n")).as_bytes(),
        p.sip,
    )
    .unwrap();
    let Some(ok) = try_recv_until(&s, |r| !r.starts_with("SIP/2.0 1")) else {
        let mut carrier = carrier;
        let _ = carrier.kill();
        let out = carrier.wait_with_output().unwrap();
        panic!(
            "no final response; carrier said:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let to = header(&ok, "To")[0].to_owned();
    let target = header(&ok, "Contact")[0]
        .trim_matches(['<', '>'])
        .to_owned();
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=out1\r\nTo: {to}\r\n\
             Call-ID: outbound@test\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    s.send_to(in_dialog("ACK", 2, "ack2").as_bytes(), p.sip)
        .unwrap();
    s.send_to(in_dialog("BYE", 3, "bye3").as_bytes(), p.sip)
        .unwrap();
    let r = recv_until(&s, |r| {
        r.contains("CSeq: 3 BYE") && !r.starts_with("SIP/2.0 1")
    });
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    check("carrier", carrier.wait_with_output().unwrap());
    // Callers on the open demo trunk address cannot dial out (toll fraud).
    let t = UdpSocket::bind("127.0.0.1:0").unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = t.local_addr().unwrap();
    let fraud = invite(1, "")
        .replace(&s.local_addr().unwrap().to_string(), &me.to_string())
        .replace("outbound@test", "fraud@test");
    t.send_to(fraud.as_bytes(), p.sip).unwrap();
    let r = recv_until(&t, |r| !r.starts_with("SIP/2.0 1"));
    assert!(r.starts_with("SIP/2.0 407 "), "{r}");
}

/// An authenticated INVITE from extension `ext` on `s` to `number`: the final response,
/// or `None` when only provisional ones came within the socket's read timeout.
fn dial_out(
    p: &Parley,
    s: &UdpSocket,
    ext: &str,
    pw: &str,
    number: &str,
    call_id: &str,
) -> Option<String> {
    use parley_sip_proto::auth::DigestChallenge;
    let me = s.local_addr().unwrap();
    let uri = format!("sip:{number}@{}", p.sip);
    let invite = |cseq: u32, auth: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=dp1\r\nTo: <{uri}>\r\n\
             Call-ID: {call_id}@test\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{ext}@{me}>\r\n{auth}\
             Content-Length: 0\r\n\r\n"
        )
    };
    s.send_to(invite(1, "").as_bytes(), p.sip).unwrap();
    let r = recv_until(s, |r| !r.starts_with("SIP/2.0 1"));
    assert!(r.starts_with("SIP/2.0 407 "), "{r}");
    let ch = DigestChallenge::parse(header(&r, "Proxy-Authenticate")[0]).unwrap();
    let creds = ch.answer(ext, pw, "INVITE", &uri, "f00", 1);
    s.send_to(
        invite(2, &format!("Proxy-Authorization: {creds}\r\n")).as_bytes(),
        p.sip,
    )
    .unwrap();
    try_recv_until(s, |r| !r.starts_with("SIP/2.0 1"))
}

/// The dial policy on a registered phone dialling out through the trunk: satellite
/// (+881) and premium-rate (+1 900) numbers, international, and a second concurrent
/// call over the user's cap are refused with 403 and a Q.850 `Reason` naming the rule,
/// and the carrier sees no INVITE for them. (Regression: any number went out.)
#[test]
fn an_extension_dialling_a_blocked_number_or_over_its_cap_gets_403_and_no_invite() {
    let p = Parley::start_with("dialpolicy", &[]);
    let (ext, pw) = p.agent(1);
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let admin = p.admin_token();
    p.add_carrier(&admin, carrier_port);
    let v = p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(json!({"max_concurrent_per_user": 1})),
    );
    assert_eq!(v["max_concurrent_per_user"], 1, "{v}");
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for (n, (number, rule, cause)) in [
        ("+881612345678", "blocked_prefix", 21),
        ("+19005550100", "blocked_type", 21),
        ("+442079460000", "international", 21),
    ]
    .into_iter()
    .enumerate()
    {
        let r = dial_out(&p, &s, &ext, &pw, number, &format!("dp{n}")).expect("a final response");
        assert!(r.starts_with("SIP/2.0 403 "), "{r}");
        let reason = header(&r, "Reason").join(",");
        assert!(
            reason.contains(&format!("cause={cause}"))
                && reason.contains(&format!("dial policy: {rule}")),
            "{reason}"
        );
    }
    assert_eq!(
        invites_at(&carrier, Duration::from_millis(300)),
        Vec::<String>::new()
    );
    // One call rings at the carrier (which never answers); a second is over the cap.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(dial_out(&p, &s, &ext, &pw, "+12015550123", "dpring"), None);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = dial_out(&p, &s, &ext, &pw, "+12015550124", "dpcap").expect("a final response");
    assert!(r.starts_with("SIP/2.0 403 "), "{r}");
    let reason = header(&r, "Reason").join(",");
    assert!(
        reason.contains("cause=34") && reason.contains("user_concurrency"),
        "{reason}"
    );
    let invites = invites_at(&carrier, Duration::from_millis(300));
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert!(invites[0].starts_with("sip:+12015550123@"), "{invites:?}");
}

#[test]
fn sigterm_stops_sip_and_http_gracefully() {
    let mut p = Parley::start_with("shutdown", &[]);
    // The SIP side answers before the signal...
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = s.local_addr().unwrap();
    s.send_to(options(me, p.sip, 1).as_bytes(), p.sip).unwrap();
    assert!(recv_until(&s, |_| true).starts_with("SIP/2.0 200 OK\r\n"));
    // ...and the process then exits cleanly on its own, having released both ports.
    let exit = p.terminate();
    assert!(exit.success(), "{exit:?}");
    UdpSocket::bind(p.sip).expect("SIP UDP port released");
    std::net::TcpListener::bind(p.sip_tcp).expect("SIP TCP port released");
}

/// Regression (issue #15: on SIGTERM live calls got no BYE and their tasks raced the
/// database close, so the call was closed at the next start as `server_restart`): a
/// caller in the IVR when Parley gets SIGTERM receives a BYE with
/// `Reason: SIP;cause=503;text="shutting down"` (sipp checks it), Parley exits
/// cleanly, and after the restart on the same database the call record says
/// `shutdown`, with no `server_restart` record.
#[test]
fn sigterm_mid_call_byes_the_caller_with_a_reason_and_stores_the_call_as_shutdown() {
    let mut p = Parley::start_with("sigterm-call", &[]);
    let sup = p.supervisor_token();
    let caller = sipp("uac_shutdown_bye.xml", free_port(), 1, Some(p.sip))
        .args(["-s", "15550100"])
        .spawn()
        .unwrap();
    // The IVR answered: the call is live.
    eventually("the call to go live", Duration::from_secs(20), || {
        let calls = p.http("GET", "/api/v1/calls", Some(&sup), None);
        calls
            .as_array()
            .is_some_and(|c| !c.is_empty())
            .then_some(())
    });
    let exit = p.terminate();
    check(
        "caller hung up with the shutdown Reason",
        caller.wait_with_output().unwrap(),
    );
    assert!(exit.success(), "parley stopped cleanly: {exit:?}");
    p.relaunch();
    let recs = p.http("GET", "/api/v1/call-records", Some(&sup), None);
    let recs = recs.as_array().unwrap();
    assert!(
        recs.iter().all(|r| r["outcome"] != "server_restart"),
        "the call was closed at shutdown, not at the restart: {recs:#?}"
    );
    let rec = recs
        .iter()
        .find(|r| r["caller"] == "+15550123")
        .unwrap_or_else(|| panic!("the call's record: {recs:#?}"));
    assert_eq!(rec["hangup_cause"], "shutdown", "{rec:#}");
    assert_eq!(rec["hangup_side"], "system", "{rec:#}");
}

// ---------------------------------------------------------------------------
// Calls Parley answers with its own media (echo test).

use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_sip_proto::dialog::Dialog;
use parley_sip_proto::message::{Headers, Method, Request, SipMessage};

#[path = "common/proto_uac.rs"]
mod proto_uac;
#[path = "common/recording.rs"]
mod recording;
use proto_uac::ProtoUac;

/// One 20 ms PCMU frame, distinct for each `k` (no 0x7f, whose µ-law value -0 comes
/// back as 0xff).
fn pcmu_frame(k: u16) -> Vec<u8> {
    (0..160u16)
        .map(|i| {
            let b = u8::try_from((k.wrapping_mul(7).wrapping_add(i * 3)) % 100).unwrap();
            b + 0x10
        })
        .collect()
}

#[test]
fn echo_test_returns_the_callers_g711_payloads() {
    let p = Parley::start_with("echo", &[]);
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("*43");
    let frames: Vec<Vec<u8>> = (0..50).map(pcmu_frame).collect();
    let mut out = [0u8; 1500];
    let mut received: Vec<Vec<u8>> = Vec::new();
    // Paced in real time (the engine's jitter buffer expects a stream, not a burst).
    let t0 = std::time::Instant::now();
    for (k, f) in frames.iter().enumerate() {
        let k16 = u16::try_from(k).unwrap();
        let n = RtpHeader {
            marker: k == 0,
            payload_type: 0,
            sequence: 1000 + k16,
            timestamp: 160 * u32::from(k16),
            ssrc: 0x1234_5678,
            ..RtpHeader::default()
        }
        .write(f, &mut out)
        .unwrap();
        uac.rtp.send_to(&out[..n], remote).unwrap();
        let next = t0 + Duration::from_millis(20) * (u32::from(k16) + 1);
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    // Collect what comes back until the stream carries no more of our frames.
    uac.rtp
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut idle = 0;
    while idle < 5 && received.len() < 150 {
        match uac.rtp.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(from, remote, "RTP comes from the address in the answer");
                let pkt = RtpPacket::parse(&buf[..n]).unwrap();
                if pkt.payload_type() == 0 {
                    received.push(pkt.payload().to_vec());
                }
            }
            Err(_) => idle += 1,
        }
    }
    let missing: Vec<usize> = (0..frames.len())
        .filter(|&k| !received.contains(&frames[k]))
        .collect();
    let echoed = frames.len() - missing.len();
    assert!(
        echoed >= 45,
        "{echoed} of 50 frames came back unchanged ({} packets received; missing {missing:?})",
        received.len()
    );
    uac.hang_up(&mut dialog);
}

#[test]
fn echo_test_hangs_up_with_a_media_timeout_cause_without_rtp() {
    let p = Parley::start_with("rtptimeout", &[("PARLEY_RTP_TIMEOUT_SECS", "1")]);
    let uac = ProtoUac::new(p.sip);
    let (_dialog, _remote) = uac.call("43");
    // No RTP from us: Parley's BYE carries the cause.
    let bye = loop {
        match uac.recv() {
            SipMessage::Request(r) if r.method() == &Method::Bye => break r,
            _ => {}
        }
    };
    let reason = bye.headers.get("Reason").unwrap_or_default().to_owned();
    assert!(reason.contains("media timeout"), "Reason: {reason:?}");
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
}

#[test]
fn sipp_echo_test_call_plays_g711a_into_parleys_media() {
    let p = Parley::start_with("sippecho", &[]);
    for number in ["43", "*43"] {
        check(
            &format!("echo call to {number}"),
            sipp("uac_echo.xml", free_port(), 1, Some(p.sip))
                .args(["-s", number])
                .output()
                .unwrap(),
        );
    }
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_calls_answered_total") >= 2);
}

#[test]
fn echo_test_is_refused_to_unknown_sources_dialling_43() {
    let p = Parley::start_with("echo404", &[]);
    // 127.0.0.2 is no trunk's address: 43 is not a number there.
    let uac = ProtoUac {
        sip: UdpSocket::bind("127.0.0.2:0").unwrap(),
        rtp: UdpSocket::bind("127.0.0.2:0").unwrap(),
        me: "127.0.0.1:1".parse().unwrap(),
        to: p.sip,
    };
    let me = uac.sip.local_addr().unwrap();
    let uac = ProtoUac { me, ..uac };
    uac.sip
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut h = Headers::new();
    h.push("Via", uac.via().to_string());
    h.push("Max-Forwards", "70");
    h.push("From", format!("<sip:x@{}>;tag=a1", me.ip()));
    h.push("To", format!("<sip:43@{}>", p.sip));
    h.push("Call-ID", "echo404@uac.test");
    h.push("CSeq", "1 INVITE");
    h.push("Contact", format!("<sip:x@{me}>"));
    let invite = Request::new(
        Method::Invite,
        &format!("sip:43@{}", p.sip),
        h,
        bytes::Bytes::new(),
    )
    .unwrap();
    uac.send(&invite);
    let code = loop {
        if let SipMessage::Response(r) = uac.recv()
            && r.code() >= 200
        {
            break r.code();
        }
    };
    assert_eq!(code, 404);
}

// ---------------------------------------------------------------------------
// IVR on live calls (the demo flow on +15550100).

/// A PCMU payload that is not silence (µ-law silence is 0xff / 0x7f and their
/// neighbours).
fn audible(payload: &[u8]) -> bool {
    payload.iter().filter(|&&b| (b & 0x7f) < 0x70).count() > payload.len() / 4
}

/// RTP sender of the test UAC: PCMU frames and RFC 4733 digits on one SSRC.
struct RtpOut {
    seq: u16,
    ts: u32,
}

impl RtpOut {
    fn send(
        &mut self,
        uac: &ProtoUac,
        to: SocketAddr,
        pt: u8,
        marker: bool,
        payload: &[u8],
        ts: u32,
    ) {
        let mut out = [0u8; 1500];
        let n = RtpHeader {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp: ts,
            ssrc: 0x5eed_0001,
            ..RtpHeader::default()
        }
        .write(payload, &mut out)
        .unwrap();
        self.seq = self.seq.wrapping_add(1);
        uac.rtp.send_to(&out[..n], to).unwrap();
    }

    /// 20 ms frames (numbered from 0) until `n` audible packets came back, 750 frames
    /// (15 s) at most; the number of frames sent.
    fn until_audible(
        &mut self,
        uac: &ProtoUac,
        to: SocketAddr,
        n: usize,
        rx: &mut Vec<Vec<u8>>,
    ) -> u16 {
        let mut k = 0u16;
        while rx.iter().filter(|p| audible(p)).count() < n && k < 750 {
            self.audio(uac, to, k, rx);
            std::thread::sleep(Duration::from_millis(20));
            k += 1;
        }
        k
    }

    /// 20 ms of audio; returns the packets received meanwhile (drained).
    fn audio(&mut self, uac: &ProtoUac, to: SocketAddr, k: u16, rx: &mut Vec<Vec<u8>>) {
        let ts = self.ts;
        self.send(uac, to, 0, false, &pcmu_frame(k), ts);
        self.ts = self.ts.wrapping_add(160);
        drain(uac, rx);
    }

    /// Sends `digit` as RFC 4733 events (DtmfSender), with audio timestamps moving on.
    fn digit(&mut self, uac: &ProtoUac, to: SocketAddr, digit: char, rx: &mut Vec<Vec<u8>>) {
        use parley_media_core::dtmf::DtmfSender;
        let mut s = DtmfSender::new(8000, Duration::from_millis(20));
        let t0 = std::time::Instant::now();
        s.start(t0, digit, Duration::from_millis(120), self.ts)
            .unwrap();
        let mut k = 0u32;
        while s.is_busy() {
            let now = t0 + Duration::from_millis(20) * k;
            while let Some(p) = s.poll_packet(now) {
                self.send(uac, to, 101, p.marker, &p.payload, p.timestamp);
            }
            k += 1;
            std::thread::sleep(Duration::from_millis(20));
            drain(uac, rx);
        }
        self.ts = self.ts.wrapping_add(160 * k);
    }
}

fn drain(uac: &ProtoUac, rx: &mut Vec<Vec<u8>>) {
    uac.rtp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = uac.rtp.recv_from(&mut buf) {
        if let Ok(p) = RtpPacket::parse(&buf[..n])
            && p.payload_type() == 0
        {
            rx.push(p.payload().to_vec());
        }
    }
    uac.rtp.set_nonblocking(false).unwrap();
}

#[test]
fn ivr_greets_takes_dtmf_3_and_stores_a_voicemail_on_the_callers_timeline() {
    let p = Parley::start_with("ivrvm", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    // The greeting: audible audio within a bounded number of frames (15 s of them).
    let k = out.until_audible(&uac, remote, 25, &mut rx);
    let heard = rx.iter().filter(|p| audible(p)).count();
    assert!(
        heard >= 25,
        "greeting: {heard} audible packets of {}",
        rx.len()
    );
    // Press 3 (type-ahead through the greeting into the menu): voicemail.
    out.digit(&uac, remote, '3', &mut rx);
    // Talk for two seconds after the prompt and beep (bounded: 20 s of frames).
    for i in 0..1000u16 {
        out.audio(&uac, remote, k.wrapping_add(i), &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        if i >= 100 && i % 50 == 0 {
            // Stop once the voicemail file exists and has grown (2 s of talk).
            let grown = recording_size(&p.dir.join("data/recordings")) > 32_000;
            if grown {
                break;
            }
        }
    }
    uac.hang_up(&mut dialog);
    // The call appears on the caller's timeline with the recording.
    let tok = p.supervisor_token();
    let call = p.stored_call(&tok, "%2B15550123", Duration::from_secs(15));
    assert_eq!(call["channel"], "voice");
    assert_eq!(call["direction"], "inbound");
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let trail = body["ivr_trail"].as_array().unwrap();
    let nodes: Vec<&str> = trail.iter().filter_map(|e| e["node"].as_str()).collect();
    for n in ["greeting", "main_menu", "voicemail"] {
        assert!(nodes.contains(&n), "{n} missing from the trail {trail:?}");
    }
    assert!(
        trail.iter().any(|e| e["digits"] == "3"),
        "digit 3 in the trail {trail:?}"
    );
    let att = &call["attachments"][0];
    let location = att["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording attached: {call:#}"));
    let wav = recording::wav(&p.dir.join("data"), location);
    assert_eq!(wav.spec().channels, 2);
    let samples = wav.len() / 2;
    assert!(samples >= 8000, "voicemail of {samples} samples");
}

#[test]
fn ivr_option_1_rings_the_registered_agent_and_bridges_the_media() {
    let p = Parley::start_with("ivrbridge", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    // The agent's phone answers and echoes the RTP it gets (sipp -rtp_echo).
    let mut phone = uas("uas_bridge.xml", uas_port, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1001",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("+15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    // Some greeting first, then 1 (sales).
    let k = out.until_audible(&uac, remote, 10, &mut rx);
    out.digit(&uac, remote, '1', &mut rx);
    // Once bridged, our frames travel caller → Parley → agent (echo) → Parley → caller.
    rx.clear();
    let mut sent = Vec::new();
    let mut echoed = 0;
    for i in 0..1000u16 {
        let f = k.wrapping_add(i);
        out.audio(&uac, remote, f, &mut rx);
        sent.push(pcmu_frame(f));
        std::thread::sleep(Duration::from_millis(20));
        if i % 25 == 0 {
            echoed = sent.iter().filter(|f| rx.contains(f)).count();
            if echoed >= 25 {
                break;
            }
        }
    }
    assert!(
        echoed >= 25,
        "{echoed} of our frames came back through the agent's phone ({} packets)",
        rx.len()
    );
    uac.hang_up(&mut dialog);
    let (status, err) = finished(&mut phone, Duration::from_secs(10));
    assert!(status.success(), "agent phone: {status:?} {err}");
}

#[test]
fn sipp_caller_presses_3_with_rfc4733_and_leaves_a_voicemail() {
    let p = Parley::start_with("sippvm", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    check(
        "IVR call to 15550100",
        sipp("uac_ivr_voicemail.xml", free_port(), 1, Some(p.sip))
            .args(["-s", "15550100"])
            .output()
            .unwrap(),
    );
    let tok = p.supervisor_token();
    let call = p.stored_call(&tok, "%2B15550123", Duration::from_secs(15));
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let trail = body["ivr_trail"].as_array().unwrap();
    assert!(trail.iter().any(|e| e["digits"] == "3"), "{trail:?}");
    assert!(trail.iter().any(|e| e["node"] == "voicemail"), "{trail:?}");
    // A call of several seconds has had a quality report (every 5 s) for its leg.
    assert!(
        body["quality"]["packets_received"].as_u64().unwrap_or(0) > 50,
        "{body:#}"
    );
    let location = call["attachments"][0]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {call:#}"));
    let mut wav = recording::wav(&p.dir.join("data"), location);
    let left: Vec<i16> = wav
        .samples::<i16>()
        .step_by(2)
        .map(Result::unwrap)
        .collect();
    assert!(left.len() >= 8000, "{} samples", left.len());
    // The caller's side (left) carries the pcap's speech, not silence.
    let loud = left.iter().filter(|s| s.unsigned_abs() > 500).count();
    assert!(loud > 800, "{loud} loud samples of {}", left.len());
}

#[test]
fn ivr_option_1_without_agents_goes_to_voicemail_and_the_flow_hangs_up_at_max_length() {
    let p = Parley::start_with("ivrnoagent", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    // Without the demo's queues (issue 14 seeds them): `enqueue` finds none.
    sip_acd::bare_acd(&p, &admin);
    // A shorter voicemail limit in a copy of the demo flow, published over the API.
    let tok = admin.clone();
    let flow = p.http("GET", "/api/v1/ivr/flows/demo", Some(&tok), None);
    let mut doc = match &flow["draft"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    doc["nodes"]["voicemail"]["max_length_s"] = json!(2);
    p.http("PUT", "/api/v1/ivr/flows/demo", Some(&tok), Some(doc));
    p.http("POST", "/api/v1/ivr/flows/demo/publish", Some(&tok), None);
    let uac = ProtoUac::new(p.sip);
    let (_dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..25u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    out.digit(&uac, remote, '1', &mut rx);
    // Nobody to ring: the queue times out into voicemail, which stops at 2 s and the
    // flow, having nowhere to go, hangs up on us (bounded: 30 s of frames).
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
    let bye = bye.expect("Parley hangs up when the flow ends");
    assert!(
        bye.headers
            .get("Reason")
            .unwrap_or_default()
            .contains("ivr"),
        "{bye:?}"
    );
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
    let stok = p.supervisor_token();
    let call = p.stored_call(&stok, "%2B15550123", Duration::from_secs(15));
    assert!(call["attachments"][0]["location"].is_string(), "{call:#}");
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let trail = body["ivr_trail"].as_array().unwrap().clone();
    let nodes: Vec<&str> = trail.iter().filter_map(|e| e["node"].as_str()).collect();
    assert!(nodes.ends_with(&["sales_queue", "voicemail"]), "{nodes:?}");
}

#[test]
fn ivr_transfer_to_an_extension_rings_only_that_phone_and_bridges_it() {
    let p = Parley::start_with("ivrxfer", &[]);
    let admin = p.admin_token();
    let flow = json!({
        "version": 1, "id": "xfer", "start": "hi",
        "nodes": {
            "hi": {"type": "play", "prompts": [{"tts": "Connecting you."}], "next": "go"},
            "go": {"type": "transfer", "target": {"extension": "1002"}}
        }
    });
    p.http("POST", "/api/v1/ivr/import", Some(&admin), Some(flow));
    p.http("POST", "/api/v1/ivr/flows/xfer/publish", Some(&admin), None);
    p.http(
        "PUT",
        "/api/v1/ivr/numbers/%2B15550100",
        Some(&admin),
        Some(json!({"flow_id": "xfer"})),
    );
    // 1001's phone is a bare socket that must not be rung; 1002 answers and echoes.
    let (ext1, pw1) = p.agent(0);
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    check(
        "REGISTER 1001",
        register(
            &p,
            &ext1,
            &pw1,
            other.local_addr().unwrap().port(),
            "register.xml",
        ),
    );
    let (ext2, pw2) = p.agent(1);
    let uas_port = free_port();
    let mut phone = uas("uas_bridge.xml", uas_port, 1, &["-rtp_echo"]);
    check(
        "REGISTER 1002",
        register(&p, &ext2, &pw2, uas_port, "register.xml"),
    );
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    let mut sent = Vec::new();
    let mut echoed = 0;
    for k in 0..1000u16 {
        out.audio(&uac, remote, k, &mut rx);
        sent.push(pcmu_frame(k));
        std::thread::sleep(Duration::from_millis(20));
        if k % 25 == 0 {
            echoed = sent.iter().filter(|f| rx.contains(f)).count();
            if echoed >= 25 {
                break;
            }
        }
    }
    assert!(echoed >= 25, "{echoed} frames came back through 1002");
    uac.hang_up(&mut dialog);
    let (status, _) = finished(&mut phone, Duration::from_secs(10));
    assert!(status.success(), "1002's phone: {status:?}");
    other.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = String::new();
    while let Ok((n, _)) = other.recv_from(&mut buf) {
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(!got.contains("INVITE"), "1001 was rung: {got}");
}

#[test]
fn ivr_plays_an_uploaded_prompt_opens_a_case_and_files_the_call_under_it() {
    let p = Parley::start_with("ivrcase", &[]);
    let admin = p.admin_token();
    let wav: &[u8] = include_bytes!("../web/tests/fixtures/prompts/tone.wav");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let meta: Value = rt.block_on(async {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/ivr/prompts?name=Tone", p.http))
            .bearer_auth(&admin)
            .header("content-type", "audio/wav")
            .body(wav.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        res.json().await.unwrap()
    });
    let prompt = meta["id"].as_str().unwrap();
    let flow = json!({
        "version": 1, "id": "casey", "start": "who",
        "nodes": {
            "who": {"type": "customer", "create": true, "attach_case": "new",
                    "next": "hello", "on_error": "hello"},
            "hello": {"type": "play", "prompts": [{"file": prompt}], "next": "vm"},
            "vm": {"type": "voicemail", "beep": false, "max_length_s": 1}
        }
    });
    p.http("POST", "/api/v1/ivr/import", Some(&admin), Some(flow));
    p.http(
        "POST",
        "/api/v1/ivr/flows/casey/publish",
        Some(&admin),
        None,
    );
    p.http(
        "PUT",
        "/api/v1/ivr/numbers/%2B15550100",
        Some(&admin),
        Some(json!({"flow_id": "casey"})),
    );
    let uac = ProtoUac::new(p.sip);
    let (_dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    uac.sip
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let mut bye = None;
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
    let bye = bye.expect("the flow ends after the voicemail and hangs up");
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
    let heard = rx.iter().filter(|p| audible(p)).count();
    assert!(heard >= 10, "the uploaded tone: {heard} audible packets");
    let tok = p.supervisor_token();
    let call = p.stored_call(&tok, "%2B15550123", Duration::from_secs(15));
    let case = call["case_id"].as_str().expect("filed under the new case");
    let c = p.http("GET", &format!("/api/v1/cases/{case}"), Some(&tok), None);
    assert_eq!(c["customer_id"], call["customer_id"], "{c:#}");
    assert!(call["attachments"][0]["location"].is_string(), "{call:#}");
}

/// The first recording under `recordings` (`<tenant>/<file>`): tests with one call
/// have at most one.
fn first_recording(recordings: &Path) -> Option<PathBuf> {
    let tenant = std::fs::read_dir(recordings).ok()?.next()?.ok()?;
    Some(std::fs::read_dir(tenant.path()).ok()?.next()?.ok()?.path())
}

/// The size of [`first_recording`], 0 while there is none.
fn recording_size(recordings: &Path) -> u64 {
    first_recording(recordings)
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}

#[test]
fn a_caller_gone_silent_in_voicemail_is_hung_up_and_the_voicemail_kept() {
    let p = Parley::start_with("ivrsilent", &[("PARLEY_RTP_TIMEOUT_SECS", "2")]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    let uac = ProtoUac::new(p.sip);
    let (_dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..25u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    out.digit(&uac, remote, '3', &mut rx);
    // Talk until the voicemail recording has started (bounded: 20 s), then go silent.
    let recordings = p.dir.join("data/recordings");
    let recording = || first_recording(&recordings).is_some();
    for k in 0..1000u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        if recording() {
            break;
        }
    }
    assert!(recording(), "the voicemail recording started");
    let bye = loop {
        match uac.recv() {
            SipMessage::Request(r) if r.method() == &Method::Bye => break r,
            _ => {}
        }
    };
    let reason = bye.headers.get("Reason").unwrap_or_default().to_owned();
    assert!(reason.contains("media timeout"), "Reason: {reason:?}");
    uac.sip
        .send_to(
            &SipMessage::Response(bye.make_response(200, None, None)).to_bytes(),
            p.sip,
        )
        .unwrap();
    let tok = p.supervisor_token();
    let call = p.stored_call(&tok, "%2B15550123", Duration::from_secs(15));
    let location = call["attachments"][0]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("voicemail kept: {call:#}"));
    recording::wav(&p.dir.join("data"), location);
}

#[test]
fn ivr_caller_returns_to_the_flow_when_the_agent_hangs_up() {
    let p = Parley::start_with("ivrback", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    let (ext, pw) = p.agent(0);
    let uas_port = free_port();
    let mut phone = uas("uas_bridge_hangup.xml", uas_port, 1, &[]);
    check(
        "REGISTER 1001",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    let uac = ProtoUac::new(p.sip);
    let (mut dialog, remote) = uac.call("15550100");
    let mut out = RtpOut { seq: 1, ts: 0 };
    let mut rx: Vec<Vec<u8>> = Vec::new();
    for k in 0..25u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
    }
    out.digit(&uac, remote, '2', &mut rx);
    // The agent answers, talks two seconds and hangs up; we stay (bounded: 20 s).
    let mut status = None;
    for k in 0..1000u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        if k % 25 == 0 {
            status = phone.try_wait().unwrap();
            if status.is_some() {
                break;
            }
        }
    }
    let status = status.unwrap_or_else(|| {
        let _ = phone.kill();
        phone.wait().unwrap()
    });
    let mut err = String::new();
    if let Some(mut e) = phone.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let mut outp = String::new();
    if let Some(mut o) = phone.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut outp);
    }
    assert!(
        status.success(),
        "agent phone: {status:?} {err} {}",
        &outp[outp.len().saturating_sub(3000)..]
    );
    // Back in the flow: the survey prompt is audible (bounded: 15 s).
    rx.clear();
    for k in 0..750u16 {
        out.audio(&uac, remote, k, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        if rx.iter().filter(|p| audible(p)).count() >= 25 {
            break;
        }
    }
    assert!(
        rx.iter().filter(|p| audible(p)).count() >= 25,
        "survey prompt"
    );
    uac.hang_up(&mut dialog);
    let tok = p.supervisor_token();
    let call = p.stored_call(&tok, "%2B15550123", Duration::from_secs(15));
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
    let nodes: Vec<String> = body["ivr_trail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str().map(str::to_owned))
        .collect();
    assert!(
        nodes.ends_with(&["support_queue".to_owned(), "survey".to_owned()]),
        "{nodes:?}"
    );
}

/// Regression (issue #13: a call was stored only when it ended, so `kill -9` lost it
/// and orphaned its recording): a voicemail being recorded when Parley is killed is,
/// after the restart, a call record with cause `server_restart`, on the caller's
/// timeline with its recording, sealed on disk and playable through the API.
#[test]
fn kill_9_mid_call_then_restart_closes_the_call_with_server_restart_and_keeps_its_recording() {
    let mut p = Parley::start_with("crash", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    let sup = p.supervisor_token();
    let customer = p.http("POST",
        "/api/v1/customers",
        Some(&sup),
        Some(
            json!({"name": "Cut Off Caller", "identities": [{"kind": "phone", "value": "+15550123"}]}),
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
    // 3: voicemail. Talk until the sealed recording holds two seconds or more
    // (bounded: 30 s of frames).
    out.digit(&uac, remote, '3', &mut rx);
    let recordings = p.dir.join("data/recordings");
    let size = || recording_size(&recordings);
    for i in 0..1500u16 {
        out.audio(&uac, remote, i, &mut rx);
        std::thread::sleep(Duration::from_millis(20));
        if size() > 64_000 {
            break;
        }
    }
    assert!(
        size() > 64_000,
        "the voicemail recording grew: {} bytes",
        size()
    );
    // kill -9, mid-call: no BYE, no clean shutdown.
    p.kill();
    p.relaunch();
    let recs = p.http("GET", "/api/v1/call-records", Some(&sup), None);
    let rec = recs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "server_restart")
        .unwrap_or_else(|| panic!("no server_restart record: {recs:#}"))
        .clone();
    assert_eq!(rec["hangup_cause"], "server_restart");
    assert_eq!(rec["caller"], "+15550123");
    assert_eq!(rec["customer_id"], customer["id"]);
    let location = rec["recording"].as_str().expect("the recording is linked");
    let raw = std::fs::read(p.dir.join("data").join(location)).unwrap();
    assert_eq!(&raw[..8], b"PRLYSEAL", "sealed at rest");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |rel: &str| {
            std::fs::metadata(p.dir.join("data").join(rel))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(location), 0o600);
        assert_eq!(mode("recordings"), 0o700);
        assert_eq!(mode("keys"), 0o700);
    }
    // On the caller's timeline, playable: a WAV of what was said before the kill.
    let cid = customer["id"].as_str().unwrap();
    let tl = p.http(
        "GET",
        &format!("/api/v1/customers/{cid}/timeline"),
        Some(&sup),
        None,
    );
    let call = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "call")
        .unwrap_or_else(|| panic!("the cut-off call on the timeline: {tl:#}"))
        .clone();
    assert_eq!(call["attachments"][0]["location"], location);
    let (status, wav) = p.get_bytes(
        &format!(
            "/api/v1/interactions/{}/attachments/0",
            call["id"].as_str().unwrap()
        ),
        Some(&sup),
    );
    assert_eq!(status, 200);
    let r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(r.spec().channels, 2);
    let secs = f64::from(r.duration()) / f64::from(r.spec().sample_rate);
    assert!(secs >= 1.0, "{secs} s of the voicemail kept");
    // Closed once: a second restart adds nothing.
    p.restart();
    let again = p.http("GET", "/api/v1/call-records", Some(&sup), None);
    let n = again
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "server_restart")
        .count();
    assert_eq!(n, 1);
}

/// `parley backup` works while Parley runs; `parley restore` refuses until it stops,
/// then brings the backed-up data back.
#[test]
fn backup_while_running_restore_refused_while_running_then_restored() {
    let mut p = Parley::start_with("backup", &[]);
    let sup = p.supervisor_token();
    let before = p.http("POST",
        "/api/v1/customers",
        Some(&sup),
        Some(
            json!({"name": "In The Backup", "identities": [{"kind": "phone", "value": "+15550160"}]}),
        ),
    );
    let file = p.dir.join("backup.db");
    let out = p.cli(&["backup", file.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(&std::fs::read(&file).unwrap()[..16], b"SQLite format 3\0");
    // Written after the backup: gone once it is restored.
    p.http("POST",
        "/api/v1/customers",
        Some(&sup),
        Some(
            json!({"name": "After The Backup", "identities": [{"kind": "phone", "value": "+15550161"}]}),
        ),
    );
    let out = p.cli(&["restore", file.to_str().unwrap()], "");
    assert!(!out.status.success(), "restore while running must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another Parley is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.terminate();
    let out = p.cli(&["restore", file.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.relaunch();
    let (code, c) = p.request(
        "GET",
        "/api/v1/customers/lookup?kind=phone&value=%2B15550160",
        Some(&sup),
        None,
    );
    assert_eq!((code, &c["id"]), (200, &before["id"]));
    let (code, _) = p.request(
        "GET",
        "/api/v1/customers/lookup?kind=phone&value=%2B15550161",
        Some(&sup),
        None,
    );
    assert_eq!(code, 404, "the later customer is not in the backup");
}

// ---------------------------------------------------------------------------
// Media and load hardening (SECURITY.md, "Media").

/// RTP datagrams that reach `sock` within `window`.
fn rtp_within(sock: &UdpSocket, window: Duration) -> usize {
    let until = std::time::Instant::now() + window;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut n = 0;
    while std::time::Instant::now() < until {
        if let Ok((len, _)) = sock.recv_from(&mut buf)
            && RtpPacket::parse(&buf[..len]).is_ok()
        {
            n += 1;
        }
    }
    n
}

#[test]
fn spoofed_source_invite_sends_no_rtp_to_the_victim_before_the_ack() {
    // Regression: the IVR answered and played its greeting to the SDP address of any
    // INVITE at once, so an INVITE with a spoofed source and a victim's address in
    // its SDP reflected a stream of RTP at the victim.
    let p = Parley::start_with("spoofed", &[]);
    let admin = p.admin_token();
    p.open_all_week(&admin);
    // The offer names the victim's socket (`rtp`); the 200 never reaches whoever
    // spoofed the INVITE, so nobody acknowledges it.
    let uac = ProtoUac::new(p.sip);
    let (invite, ok, _remote) = uac.invite("15550100");
    let heard = rtp_within(&uac.rtp, Duration::from_millis(1500));
    assert_eq!(heard, 0, "RTP reached the victim before any ACK");
    // An ACK that does not carry our tag (a blind guess) changes nothing.
    let dialog = Dialog::uac(&invite, &ok, &format!("sip:caller@{}", uac.me)).unwrap();
    let ack = dialog.create_ack(1, &uac.via(), None).unwrap();
    let mut blind = ack.clone();
    let to = blind.headers.get("To").unwrap().to_owned();
    let (uri, _) = to.split_once(";tag=").unwrap();
    blind.headers.remove("To");
    blind.headers.push("To", format!("{uri};tag=guessed"));
    uac.send(&blind);
    let heard = rtp_within(&uac.rtp, Duration::from_millis(600));
    assert_eq!(heard, 0, "RTP after an ACK with the wrong tag");
    // The real ACK: the greeting flows.
    uac.send(&ack);
    let heard = rtp_within(&uac.rtp, Duration::from_secs(2));
    assert!(heard >= 20, "{heard} RTP packets after the ACK");
}

#[test]
fn overload_sheds_new_calls_with_503_and_retry_after() {
    // Regression: every INVITE got a call task, traces and media however many
    // were already running; under 800–1,200 calls/s memory grew to over 1 GiB.
    let p = Parley::start_with(
        "overload",
        &[
            ("PARLEY_SIP_MAX_CALLS", "1"),
            ("PARLEY_SIP_MAX_CALL_RATE", "0"),
        ],
    );
    let first = ProtoUac::new(p.sip);
    let (mut dialog, _) = first.call("*43");
    let second = ProtoUac::new(p.sip);
    let mut h = Headers::new();
    h.push("Via", second.via().to_string());
    h.push("Max-Forwards", "70");
    h.push("From", format!("<sip:x@{}>;tag=o1", second.me.ip()));
    h.push("To", format!("<sip:*43@{}>", p.sip));
    h.push("Call-ID", "overload-2@uac.test");
    h.push("CSeq", "1 INVITE");
    h.push("Contact", format!("<sip:x@{}>", second.me));
    let invite = Request::new(
        Method::Invite,
        &format!("sip:*43@{}", p.sip),
        h,
        bytes::Bytes::new(),
    )
    .unwrap();
    second.send(&invite);
    let refused = loop {
        if let SipMessage::Response(r) = second.recv()
            && r.code() >= 200
        {
            break r;
        }
    };
    assert_eq!(refused.code(), 503);
    assert_eq!(refused.headers.get("Retry-After"), Some("5"));
    let tok = p.supervisor_token();
    assert_eq!(p.counter(&tok, "sip_overload_rejected_total"), 1);
    // A slot frees when the call ends: the next call is taken.
    first.hang_up(&mut dialog);
    eventually("the first call to end", Duration::from_secs(5), || {
        (p.counter(&tok, "sip_calls_active") == 0).then_some(())
    });
    let third = ProtoUac::new(p.sip);
    let (mut d3, _) = third.call("*43");
    third.hang_up(&mut d3);
}

#[test]
fn call_rate_above_the_limit_is_shed_with_503() {
    let p = Parley::start_with("callrate", &[("PARLEY_SIP_MAX_CALL_RATE", "2")]);
    // Four INVITEs at once: a burst of two is taken, the rest refused at once.
    let uacs: Vec<ProtoUac> = (0..4).map(|_| ProtoUac::new(p.sip)).collect();
    for (i, u) in uacs.iter().enumerate() {
        let mut h = Headers::new();
        h.push("Via", u.via().to_string());
        h.push("Max-Forwards", "70");
        h.push("From", format!("<sip:x@{}>;tag=r{i}", u.me.ip()));
        h.push("To", format!("<sip:*43@{}>", p.sip));
        h.push("Call-ID", format!("rate-{i}@uac.test"));
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:x@{}>", u.me));
        let invite = Request::new(
            Method::Invite,
            &format!("sip:*43@{}", p.sip),
            h,
            bytes::Bytes::new(),
        )
        .unwrap();
        u.send(&invite);
    }
    let mut codes: Vec<u16> = uacs
        .iter()
        .map(|u| {
            loop {
                if let SipMessage::Response(r) = u.recv()
                    && r.code() >= 200
                {
                    break r.code();
                }
            }
        })
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, vec![200, 200, 503, 503]);
}
