//! SIP in-dialog behaviour end to end: the real `parley` binary on loopback, driven by
//! sipp scenarios (tests/sipp/) and a small UA built on parley-sip-proto over UDP:
//! re-INVITE/UPDATE hold and unhold (RFC 3264), glare (491), OPTIONS, INFO DTMF,
//! REFER refusal, RFC 4028 session timers (422, refresh, expiry).
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_sip_proto::dialog::{Dialog, new_branch, random_token};
use parley_sip_proto::message::{
    Headers, MessageExt as _, Method, Request, Response, SipMessage, Via,
};
use parley_sip_proto::offer_answer::{
    Direction, LocalCapabilities, build_offer, parse_sdp, sdp_to_bytes,
};

mod common;
mod sip_guard;
use common::parley::Parley;
use common::sipp::{check, free_port, header, recv_until, register, sipp_within, uas};
use common::wait::{eventually, eventually_true};

/// One call from sipp to `service` at `target`.
fn sipp(scenario: &str, target: SocketAddr, service: &str) -> Output {
    sipp_within(scenario, free_port(), 1, Some(target), 40)
        .args(["-s", service])
        .output()
        .unwrap()
}

#[test]
fn sipp_holds_unholds_updates_and_uses_in_dialog_requests_on_the_echo_test() {
    let p = Parley::start_with("hold", &[]);
    check("hold/unhold", sipp("uac_hold.xml", p.sip, "43"));
}

#[test]
fn sipp_session_interval_below_min_se_gets_422() {
    let p = Parley::start_with("se422", &[]);
    check("422", sipp("uac_session_422.xml", p.sip, "43"));
}

#[test]
fn sipp_parley_refreshes_the_session_as_refresher() {
    let p = Parley::start_with(
        "serefresh",
        &[
            ("PARLEY_SIP_MIN_SE_SECS", "2"),
            ("PARLEY_SIP_SESSION_EXPIRES_SECS", "4"),
        ],
    );
    check("refresh", sipp("uac_session_refresh.xml", p.sip, "43"));
}

#[test]
fn sipp_session_without_refresh_is_hung_up() {
    let p = Parley::start_with(
        "seexpire",
        &[
            ("PARLEY_SIP_MIN_SE_SECS", "2"),
            ("PARLEY_SIP_SESSION_EXPIRES_SECS", "4"),
        ],
    );
    check("expiry", sipp("uac_session_expire.xml", p.sip, "43"));
}

/// A minimal UA on parley-sip-proto over real UDP sockets.
struct Ua {
    sip: UdpSocket,
    rtp: UdpSocket,
    me: SocketAddr,
    to: SocketAddr,
}

impl Ua {
    fn new(to: SocketAddr) -> Ua {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = sip.local_addr().unwrap();
        Ua { sip, rtp, me, to }
    }

    fn via(&self) -> Via {
        Via::new(
            "UDP",
            &self.me.ip().to_string(),
            Some(self.me.port()),
            &new_branch(&mut rand::rng()),
        )
    }

    fn send(&self, m: SipMessage) {
        self.sip.send_to(&m.to_bytes(), self.to).unwrap();
    }

    fn recv(&self) -> SipMessage {
        let mut buf = vec![0u8; 65535];
        let (n, _) = self.sip.recv_from(&mut buf).unwrap();
        SipMessage::parse(&buf[..n]).unwrap()
    }

    fn offer(&self, dir: Direction, version: u64) -> bytes::Bytes {
        let mut caps = LocalCapabilities::new(self.me.ip(), self.rtp.local_addr().unwrap().port());
        caps.codecs
            .retain(|c| c.clock_rate == 8000 && c.name != "PCMA");
        caps.direction = dir;
        caps.session_version = version;
        sdp_to_bytes(&build_offer(&caps))
    }

    /// Calls `number` with `extra` headers; returns the dialog, the 200 and the RTP
    /// address of the answer.
    fn call(&self, number: &str, extra: &[(&str, &str)]) -> (Dialog, Response, SocketAddr) {
        let mut rng = rand::rng();
        let mut h = Headers::new();
        h.push("Via", self.via().to_string());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:+15550123@{}>;tag={}",
                self.me.ip(),
                random_token(&mut rng, 10)
            ),
        );
        h.push("To", format!("<sip:{number}@{}>", self.to));
        h.push("Call-ID", format!("{}@ua.test", random_token(&mut rng, 16)));
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:caller@{}>", self.me));
        for (n, v) in extra {
            h.push(n, *v);
        }
        h.push("Content-Type", "application/sdp");
        let uri = format!("sip:{number}@{}", self.to);
        let invite =
            Request::new(Method::Invite, &uri, h, self.offer(Direction::SendRecv, 1)).unwrap();
        self.send(SipMessage::Request(invite.clone()));
        let ok = self.final_response(Method::Invite);
        assert_eq!(ok.code(), 200, "{ok:?}");
        let dialog = Dialog::uac(&invite, &ok, &format!("sip:caller@{}", self.me)).unwrap();
        self.send(SipMessage::Request(
            dialog.create_ack(1, &self.via(), None).unwrap(),
        ));
        let remote = rtp_addr(ok.body());
        (dialog, ok, remote)
    }

    /// The final response to our request of `method`, answering requests from
    /// Parley in between with 200 (and returning them in `also`).
    fn final_response(&self, method: Method) -> Response {
        loop {
            match self.recv() {
                SipMessage::Response(r)
                    if r.code() >= 200 && r.cseq().unwrap().method == method =>
                {
                    return r;
                }
                _ => {}
            }
        }
    }

    /// Sends a re-INVITE with an offer of direction `dir`, ACKs the 2xx; returns it.
    fn reinvite(&self, d: &mut Dialog, dir: Direction, version: u64) -> Response {
        let req = d
            .create_request(
                Method::Invite,
                &self.via(),
                Some(("application/sdp", self.offer(dir, version))),
            )
            .unwrap();
        let seq = req.cseq().unwrap().seq;
        self.send(SipMessage::Request(req));
        let r = self.final_response(Method::Invite);
        if r.code() == 200 {
            self.send(SipMessage::Request(
                d.create_ack(seq, &self.via(), None).unwrap(),
            ));
        }
        r
    }

    /// Sends `n` PCMU frames paced at 20 ms to `to` and returns how many RTP packets
    /// came back meanwhile and for half a second after.
    fn rtp_round(&self, to: SocketAddr, seq0: u16, n: u16) -> usize {
        let mut out = [0u8; 1500];
        let mut buf = [0u8; 1500];
        self.rtp
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut got = 0;
        let t0 = Instant::now();
        for k in 0..n {
            let payload: Vec<u8> = (0..160u16)
                .map(|i| u8::try_from((k * 7 + i * 3) % 100).unwrap() + 0x10)
                .collect();
            let len = RtpHeader {
                marker: k == 0,
                payload_type: 0,
                sequence: seq0 + k,
                timestamp: 160 * u32::from(seq0 + k),
                ssrc: 0x1234_5678,
                ..RtpHeader::default()
            }
            .write(&payload, &mut out)
            .unwrap();
            self.rtp.send_to(&out[..len], to).unwrap();
            while let Ok((m, _)) = self.rtp.recv_from(&mut buf) {
                if RtpPacket::parse(&buf[..m]).is_ok() {
                    got += 1;
                }
            }
            let next = t0 + Duration::from_millis(20) * (u32::from(k) + 1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Ok((m, _)) = self.rtp.recv_from(&mut buf)
                && RtpPacket::parse(&buf[..m]).is_ok()
            {
                got += 1;
            }
        }
        got
    }
}

fn rtp_addr(sdp: &[u8]) -> SocketAddr {
    let sdp = parse_sdp(sdp).unwrap();
    let m = &sdp.media_descriptions[0];
    let ip = sdp.connection_information.as_ref().unwrap();
    let ip = ip.address.as_ref().unwrap().address.parse().unwrap();
    SocketAddr::new(ip, u16::try_from(m.media_name.port.value).unwrap())
}

fn direction(sdp: &[u8]) -> String {
    let text = String::from_utf8_lossy(sdp);
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| text.contains(&format!("a={d}")))
        .unwrap_or("none")
        .to_owned()
}

#[test]
fn a_held_caller_hears_nothing_and_media_resumes_on_unhold() {
    let p = Parley::start_with("holdrtp", &[]);
    let ua = Ua::new(p.sip);
    let (mut d, _ok, remote) = ua.call("43", &[]);
    // The echo test returns our audio.
    let before = ua.rtp_round(remote, 1000, 50);
    assert!(before >= 30, "{before} packets echoed before hold");
    // Hold: we send only; Parley answers recvonly on the same address and sends nothing.
    let r = ua.reinvite(&mut d, Direction::SendOnly, 2);
    assert_eq!(r.code(), 200, "{r:?}");
    assert_eq!(direction(r.body()), "recvonly");
    assert_eq!(rtp_addr(r.body()), remote, "same media address after hold");
    std::thread::sleep(Duration::from_millis(200));
    let held = ua.rtp_round(remote, 1100, 50);
    assert!(held <= 2, "{held} packets sent to a caller on hold");
    // Unhold: the echo comes back.
    let r = ua.reinvite(&mut d, Direction::SendRecv, 3);
    assert_eq!(r.code(), 200, "{r:?}");
    assert_eq!(direction(r.body()), "sendrecv");
    let after = ua.rtp_round(remote, 1200, 50);
    assert!(after >= 30, "{after} packets echoed after unhold");
    let bye = d.create_request(Method::Bye, &ua.via(), None).unwrap();
    ua.send(SipMessage::Request(bye));
    assert_eq!(ua.final_response(Method::Bye).code(), 200);
}

#[test]
fn glare_our_reinvite_during_parleys_refresh_gets_491_then_succeeds() {
    let p = Parley::start_with(
        "glare",
        &[
            ("PARLEY_SIP_MIN_SE_SECS", "2"),
            ("PARLEY_SIP_SESSION_EXPIRES_SECS", "4"),
        ],
    );
    let ua = Ua::new(p.sip);
    // No UPDATE in Allow: Parley refreshes with a re-INVITE carrying its SDP.
    let (mut d, ok, _) = ua.call(
        "43",
        &[
            ("Session-Expires", "4;refresher=uas"),
            ("Supported", "timer"),
            ("Allow", "INVITE, ACK, BYE"),
        ],
    );
    assert!(
        ok.headers
            .get("Session-Expires")
            .unwrap()
            .contains("refresher=uas")
    );
    // Parley's refresh arrives; we do not answer it yet.
    let refresh = loop {
        if let SipMessage::Request(r) = ua.recv()
            && r.method() == &Method::Invite
        {
            break r;
        }
    };
    assert!(
        !refresh.body().is_empty(),
        "the refresh re-INVITE carries Parley's SDP"
    );
    d.on_request(&refresh).unwrap();
    // Our own re-INVITE now collides with it: 491.
    let r = ua.reinvite(&mut d, Direction::SendOnly, 2);
    assert_eq!(r.code(), 491, "{r:?}");
    let ack491 = {
        // ACK of a non-2xx is the transaction's: same branch as the INVITE.
        let mut h = Headers::new();
        h.push("Via", r.headers.get("Via").unwrap());
        h.push("Max-Forwards", "70");
        h.push("From", r.headers.get("From").unwrap());
        h.push("To", r.headers.get("To").unwrap());
        h.push("Call-ID", r.headers.get("Call-ID").unwrap());
        h.push("CSeq", format!("{} ACK", r.cseq().unwrap().seq));
        Request::new(Method::Ack, &d.remote_target, h, bytes::Bytes::new()).unwrap()
    };
    ua.send(SipMessage::Request(ack491));
    // We answer Parley's refresh (same SDP back), then retry: accepted.
    let mut ok = refresh.make_response(200, None, None);
    ok.headers
        .push("Contact", format!("<sip:caller@{}>", ua.me));
    ok.headers.push("Session-Expires", "4;refresher=uac");
    ok.set_body(Some("application/sdp"), ua.offer(Direction::SendRecv, 3));
    ua.send(SipMessage::Response(ok));
    // Parley ACKs its re-INVITE's 2xx.
    loop {
        if let SipMessage::Request(r) = ua.recv()
            && r.method() == &Method::Ack
        {
            break;
        }
    }
    let r = ua.reinvite(&mut d, Direction::SendOnly, 4);
    assert_eq!(r.code(), 200, "{r:?}");
    assert_eq!(direction(r.body()), "recvonly");
    let bye = d.create_request(Method::Bye, &ua.via(), None).unwrap();
    ua.send(SipMessage::Request(bye));
    assert_eq!(ua.final_response(Method::Bye).code(), 200);
}

#[test]
fn out_of_dialog_options_lists_allow_accept_and_supported() {
    let p = Parley::start_with("options", &[]);
    let ua = Ua::new(p.sip);
    let mut h = Headers::new();
    h.push("Via", ua.via().to_string());
    h.push("Max-Forwards", "70");
    h.push("From", format!("<sip:probe@{}>;tag=abc", ua.me.ip()));
    h.push("To", format!("<sip:{}>", p.sip));
    h.push("Call-ID", "options-1@ua.test");
    h.push("CSeq", "1 OPTIONS");
    let req = Request::new(
        Method::Options,
        &format!("sip:{}", p.sip),
        h,
        bytes::Bytes::new(),
    )
    .unwrap();
    ua.send(SipMessage::Request(req));
    let r = ua.final_response(Method::Options);
    assert_eq!(r.code(), 200);
    let allow = r.headers.get("Allow").unwrap();
    for m in ["INVITE", "UPDATE", "INFO", "REFER", "OPTIONS"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    assert!(r.headers.get("Accept").unwrap().contains("application/sdp"));
    assert!(r.headers.get("Supported").unwrap().contains("timer"));
}

#[test]
fn an_outbound_call_opens_a_tcp_connection_to_a_tcp_trunk() {
    use parley_sip_proto::auth::DigestChallenge;
    let p = Parley::start_with("tcptrunk", &[]);
    let (ext, pw) = p.agents[1].clone();
    // The carrier: sipp over TCP (it only listens; Parley must connect).
    let carrier_port = free_port();
    let carrier = sipp_within("uas_trunk.xml", carrier_port, 1, None, 40)
        .args(["-t", "t1"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let admin = p.admin_token();
    p.http("POST",
        "/api/v1/trunks",
        Some(&admin),
        Some(
            serde_json::json!({"name": "tcp carrier", "outbound_target": format!("127.0.0.1:{carrier_port}"), "transport": "tcp", "caller_id": "+15550100"}),
        ),
    );
    // International is off by default (the dial policy): Germany is allowed here.
    p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(serde_json::json!({"allow_prefixes": ["+49"]})),
    );
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let me = s.local_addr().unwrap();
    let uri = format!("sip:+4930123456@{}", p.sip);
    let invite = |cseq: u32, auth: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKtcp{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=tcp1\r\nTo: <{uri}>\r\n\
             Call-ID: tcptrunk@test\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{ext}@{me}>\r\n{auth}\
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
    let ok = recv_until(&s, |r| !r.starts_with("SIP/2.0 1"));
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let to = header(&ok, "To")[0].to_owned();
    let target = header(&ok, "Contact")[0]
        .trim_matches(['<', '>'])
        .to_owned();
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=tcp1\r\nTo: {to}\r\n\
             Call-ID: tcptrunk@test\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
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
    check("TCP carrier", carrier.wait_with_output().unwrap());
}

#[test]
fn trunk_keepalive_pings_are_answered_and_a_silent_trunk_is_marked_down() {
    let p = Parley::start_with("keepalive", &[("PARLEY_SIP_TRUNK_KEEPALIVE_SECS", "1")]);
    let admin = p.admin_token();
    // A carrier that answers two pings (each sipp "call" is one OPTIONS), then exits.
    let carrier_port = free_port();
    let carrier = uas("uas_options.xml", carrier_port, 2, &[]);
    p.http("POST",
        "/api/v1/trunks",
        Some(&admin),
        Some(
            serde_json::json!({"name": "pinged", "outbound_target": format!("127.0.0.1:{carrier_port}")}),
        ),
    );
    check("keep-alive carrier", carrier.wait_with_output().unwrap());
    let pings = p.counter(&admin, "sip_trunk_pings_total");
    assert!(pings >= 2, "{pings} pings");
    // The carrier is gone: the next unanswered ping marks the trunk down.
    eventually_true(
        "the silent trunk to be marked down",
        Duration::from_secs(20),
        || p.counter(&admin, "sip_trunks_down") >= 1,
        || format!("{} trunks down", p.counter(&admin, "sip_trunks_down")),
    );
}

#[test]
fn hold_is_relayed_end_to_end_through_the_b2bua_when_sdp_passes_through() {
    let p = Parley::start_with("relay", &[]);
    // No flow on the demo number: the agents ring with the caller's SDP passed through.
    let admin = p.admin_token();
    p.http(
        "DELETE",
        "/api/v1/ivr/numbers/%2B15550100",
        Some(&admin),
        None,
    );
    let (ext, pw) = p.agents[0].clone();
    let uas_port = free_port();
    let phone = sipp_within("uas_reinvite.xml", uas_port, 1, None, 40)
        .spawn()
        .unwrap();
    check(
        "REGISTER",
        register(&p, &ext, &pw, uas_port, "register.xml"),
    );
    check("caller", sipp("uac_relay_hold.xml", p.sip, "15550100"));
    check("agent", phone.wait_with_output().unwrap());
}

/// Reads one SIP message from a stream (headers, then Content-Length bytes of body).
async fn read_message<S: tokio::io::AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt as _;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = header(&head, "Content-Length")
                .first()
                .map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8_lossy(&msg).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(15), s.read(&mut chunk))
            .await
            .expect("no message over TLS")
            .unwrap();
        assert!(n > 0, "TLS connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_phone_registers_with_digest_auth_over_tls_with_the_generated_certificate() {
    use parley_sip_proto::auth::DigestChallenge;
    use rustls_pki_types::pem::PemObject as _;
    use tokio::io::AsyncWriteExt as _;
    use tokio_rustls::rustls;
    let p = Parley::start_with("tls", &[]);
    let tls_addr = p
        .tls
        .expect("TLS listens by default (ephemeral port in tests)");
    let (ext, pw) = p.agents[0].clone();
    // Trust exactly the self-signed certificate Parley generated.
    let pem = p.dir.join("data/tls/sip-selfsigned.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
        let me = tcp.local_addr().unwrap();
        let name = rustls_pki_types::ServerName::IpAddress(tls_addr.ip().into());
        let mut s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the generated certificate");
        let uri = format!("sip:{}:{};transport=tls", tls_addr.ip(), tls_addr.port());
        let register = |cseq: u32, auth: &str| {
            format!(
                "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKtls{cseq};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{ext}@{ip}>;tag=tls1\r\nTo: <sip:{ext}@{ip}>\r\n\
                 Call-ID: tls-register@test\r\nCSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{ext}@{me};transport=tls>\r\nExpires: 300\r\n{auth}\
                 Content-Length: 0\r\n\r\n",
                ip = tls_addr.ip()
            )
        };
        let mut buf = Vec::new();
        s.write_all(register(1, "").as_bytes()).await.unwrap();
        let r = read_message(&mut s, &mut buf).await;
        assert!(r.starts_with("SIP/2.0 401 "), "{r}");
        let ch = DigestChallenge::parse(header(&r, "WWW-Authenticate")[0]).unwrap();
        let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "c0ffee", 1);
        s.write_all(register(2, &format!("Authorization: {creds}\r\n")).as_bytes())
            .await
            .unwrap();
        let r = read_message(&mut s, &mut buf).await;
        assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
        assert!(r.contains(";transport=tls"), "binding over TLS: {r}");
        assert!(r.contains("Via: SIP/2.0/TLS"), "{r}");
        // In the same connection: OPTIONS.
        let options = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKtlsopt\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@x>;tag=o1\r\nTo: <{uri}>\r\n\
             Call-ID: tls-options@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(options.as_bytes()).await.unwrap();
        let r = read_message(&mut s, &mut buf).await;
        assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
        assert!(r.contains("Supported: timer"), "{r}");
    });
}

// A phone child is waited for by its caller.
#[allow(clippy::zombie_processes)]
fn phone(scenario: &str, port: u16, service: &str) -> Child {
    sipp_within(scenario, port, 1, None, 60)
        .args(["-s", service])
        .spawn()
        .unwrap()
}

#[test]
fn info_dtmf_drives_the_ivr_and_the_agents_refer_blind_transfers_the_caller() {
    let p = Parley::start_with("refer", &[]);
    let admin = p.admin_token();
    p.http(
        "PUT",
        "/api/v1/ivr/calendars/main",
        Some(&admin),
        Some(serde_json::json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"],
                        "open": "00:00", "close": "23:59:59.999"}],
            "holidays": []
        })),
    );
    let (ext_a, pw_a) = p.agents[0].clone();
    let (ext_b, pw_b) = p.agents[1].clone();
    // Agent A answers and, after a pause, refers the caller to agent B's extension.
    let port_a = free_port();
    let a = phone("uas_refer.xml", port_a, &ext_b);
    check(
        "REGISTER",
        register(&p, &ext_a, &pw_a, port_a, "register.xml"),
    );
    let ua = Ua::new(p.sip);
    let (mut d, _ok, remote) = ua.call("+15550100", &[]);
    // The greeting plays; then "1" (sales) by INFO instead of RTP.
    let mut heard = 0;
    let mut seq = 1;
    while heard < 10 {
        heard += ua.rtp_round(remote, seq, 25);
        seq += 25;
        assert!(seq < 1500, "no greeting");
    }
    let info = d
        .create_request(
            Method::Info,
            &ua.via(),
            Some((
                "application/dtmf-relay",
                bytes::Bytes::from_static(b"Signal=1\r\nDuration=160\r\n"),
            )),
        )
        .unwrap();
    ua.send(SipMessage::Request(info));
    assert_eq!(ua.final_response(Method::Info).code(), 200);
    // Only A is registered while the flow rings agents; B registers once A talks (the
    // call's SIP ladder shows our ACK to A's 200).
    let acked_a = format!("ACK sip:127.0.0.1:{port_a}");
    eventually(
        "agent A to answer (our ACK in the call's trace)",
        Duration::from_secs(30),
        || {
            let trace = p.http(
                "GET",
                &format!("/api/v1/sip/calls/{}/trace", d.id.call_id),
                Some(&admin),
                None,
            );
            trace
                .as_array()
                .unwrap()
                .iter()
                .any(|e| {
                    e["direction"] == "out" && e["summary"].as_str().unwrap().starts_with(&acked_a)
                })
                .then_some(())
        },
    );
    let port_b = free_port();
    let b = phone("uas_bridge.xml", port_b, &ext_b);
    check(
        "REGISTER",
        register(&p, &ext_b, &pw_b, port_b, "register.xml"),
    );
    check("transferor (agent A)", a.wait_with_output().unwrap());
    // B rings and answers; then the caller hangs up and B gets Parley's BYE.
    std::thread::sleep(Duration::from_secs(3));
    let bye = d.create_request(Method::Bye, &ua.via(), None).unwrap();
    ua.send(SipMessage::Request(bye));
    assert_eq!(ua.final_response(Method::Bye).code(), 200);
    check("transfer target (agent B)", b.wait_with_output().unwrap());
}

#[test]
fn the_bridged_agent_holds_and_unholds_the_ivr_caller_with_reinvites() {
    let p = Parley::start_with("agenthold", &[]);
    let admin = p.admin_token();
    p.http(
        "PUT",
        "/api/v1/ivr/calendars/main",
        Some(&admin),
        Some(serde_json::json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"],
                        "open": "00:00", "close": "23:59:59.999"}],
            "holidays": []
        })),
    );
    let (ext, pw) = p.agents[0].clone();
    let port = free_port();
    let agent = phone("uas_hold.xml", port, &ext);
    check("REGISTER", register(&p, &ext, &pw, port, "register.xml"));
    let ua = Ua::new(p.sip);
    let (mut d, _ok, remote) = ua.call("+15550100", &[]);
    let mut heard = 0;
    let mut seq = 1;
    while heard < 10 {
        heard += ua.rtp_round(remote, seq, 25);
        seq += 25;
        assert!(seq < 1500, "no greeting");
    }
    let info = d
        .create_request(
            Method::Info,
            &ua.via(),
            Some(("application/dtmf", bytes::Bytes::from_static(b"1"))),
        )
        .unwrap();
    ua.send(SipMessage::Request(info));
    assert_eq!(ua.final_response(Method::Info).code(), 200);
    check("agent hold/unhold", agent.wait_with_output().unwrap());
    let bye = d.create_request(Method::Bye, &ua.via(), None).unwrap();
    ua.send(SipMessage::Request(bye));
    assert_eq!(ua.final_response(Method::Bye).code(), 200);
}
