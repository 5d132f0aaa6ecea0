//! Issue #13 on the extension → trunk path, end to end with the real binary: SIP over
//! TLS to a trunk (certificate verified against the trunk's pinned CA or the system's
//! roots), and a running call cut at the tenant's daily spend cap. Part of the
//! `sip_dialog` test binary.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig, ServerConnection, StreamOwned};

use crate::common::parley::Parley;
use crate::common::sipp::{check, free_port, header, recv_until, sipp_within};

/// A CA made for the test, and a server certificate for 127.0.0.1 signed by it.
struct TestCa {
    pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn test_ca(name: &str) -> TestCa {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    TestCa {
        pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    }
}

/// Reads one SIP message from a stream (headers, then Content-Length bytes of body).
fn read_message(s: &mut impl std::io::Read, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = header(&head, "Content-Length")
                .first()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return Some(String::from_utf8_lossy(&msg).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Keep-alive CRLFs between messages.
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
    }
}

/// A carrier that only speaks SIP over TLS with `ca`'s certificate: it answers an
/// INVITE with 200 and SDP, and after the ACK hangs up with a BYE over the same
/// connection. Every message it receives goes to the channel; connections whose
/// handshake fails (Parley refused the certificate) are counted as `HANDSHAKE FAILED`.
fn tls_carrier(ca: &TestCa) -> (SocketAddr, mpsc::Receiver<String>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ca.leaf.clone()], ca.leaf_key.clone_key())
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut tls = StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), tcp);
            let mut buf = Vec::new();
            let mut invite: Option<String> = None;
            loop {
                let Some(msg) = read_message(&mut tls, &mut buf) else {
                    if invite.is_none() {
                        let _ = tx.send("HANDSHAKE FAILED".to_owned());
                    }
                    break;
                };
                let _ = tx.send(msg.clone());
                let h = |n: &str| header(&msg, n).first().copied().unwrap_or("").to_owned();
                let reply = if msg.starts_with("INVITE ") {
                    invite = Some(msg.clone());
                    let sdp = "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
                    let vias: String = header(&msg, "Via")
                        .iter()
                        .map(|v| format!("Via: {v}\r\n"))
                        .collect();
                    Some(format!(
                        "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {};tag=carrier1\r\nCall-ID: {}\r\nCSeq: {}\r\n\
                         Contact: <sip:carrier@{addr};transport=tls>\r\nContent-Type: application/sdp\r\n\
                         Content-Length: {}\r\n\r\n{sdp}",
                        h("From"),
                        h("To"),
                        h("Call-ID"),
                        h("CSeq"),
                        sdp.len()
                    ))
                } else if msg.starts_with("ACK ") {
                    let inv = invite.clone().unwrap_or_default();
                    let ih = |n: &str| header(&inv, n).first().copied().unwrap_or("").to_owned();
                    let target = ih("Contact").trim_matches(['<', '>']).to_owned();
                    Some(format!(
                        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/TLS {addr};branch=z9hG4bKcarrierbye\r\n\
                         Max-Forwards: 70\r\nFrom: {};tag=carrier1\r\nTo: {}\r\nCall-ID: {}\r\n\
                         CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
                        ih("To"),
                        ih("From"),
                        ih("Call-ID"),
                    ))
                } else if msg.starts_with("OPTIONS ") {
                    let vias: String = header(&msg, "Via")
                        .iter()
                        .map(|v| format!("Via: {v}\r\n"))
                        .collect();
                    Some(format!(
                        "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {};tag=carrier2\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                        h("From"),
                        h("To"),
                        h("Call-ID"),
                        h("CSeq"),
                    ))
                } else {
                    None
                };
                if let Some(r) = reply
                    && tls.write_all(r.as_bytes()).is_err()
                {
                    break;
                }
            }
        }
    });
    (addr, rx)
}

/// A branch parameter's token made of `call_id`'s letters and digits.
fn branch_tag(call_id: &str) -> String {
    call_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// A demo extension on a UDP socket that dials numbers out through the trunk.
struct Extension {
    s: UdpSocket,
    me: SocketAddr,
    ext: String,
    pw: String,
    sip: SocketAddr,
}

impl Extension {
    fn new(p: &Parley) -> Extension {
        let (ext, pw) = p.agents[1].clone();
        let s = UdpSocket::bind("127.0.0.2:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let me = s.local_addr().unwrap();
        Extension {
            s,
            me,
            ext,
            pw,
            sip: p.sip,
        }
    }

    /// Dials `number` (digest answered); returns the final response.
    fn dial(&self, number: &str, call_id: &str) -> String {
        use parley_sip_proto::auth::DigestChallenge;
        let (me, ext) = (self.me, &self.ext);
        let uri = format!("sip:{number}@{}", self.sip);
        let tag = branch_tag(call_id);
        let invite = |cseq: u32, auth: &str| {
            format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{tag}{cseq};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=g1\r\nTo: <{uri}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{ext}@{me}>\r\n{auth}\
                 Content-Length: 0\r\n\r\n"
            )
        };
        self.s.send_to(invite(1, "").as_bytes(), self.sip).unwrap();
        let r = recv_until(&self.s, |r| !r.starts_with("SIP/2.0 1"));
        assert!(r.starts_with("SIP/2.0 407 "), "{r}");
        let ch = DigestChallenge::parse(header(&r, "Proxy-Authenticate")[0]).unwrap();
        let creds = ch.answer(ext, &self.pw, "INVITE", &uri, "f00", 1);
        self.s
            .send_to(
                invite(2, &format!("Proxy-Authorization: {creds}\r\n")).as_bytes(),
                self.sip,
            )
            .unwrap();
        recv_until(&self.s, |r| {
            r.contains(call_id) && r.starts_with("SIP/2.0 ") && !r.starts_with("SIP/2.0 1")
        })
    }

    /// Acknowledges a 200 to the INVITE of `call_id`.
    fn ack(&self, ok: &str, call_id: &str) {
        let to = header(ok, "To")[0];
        let target = header(ok, "Contact")[0].trim_matches(['<', '>']);
        let (me, ext) = (self.me, &self.ext);
        let tag = branch_tag(call_id);
        let ack = format!(
            "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{tag}ack;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@demo>;tag=g1\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        self.s.send_to(ack.as_bytes(), self.sip).unwrap();
    }

    /// Waits for Parley's BYE on `call_id`, answers it 200 and returns it.
    fn bye_from_parley(&self, call_id: &str) -> String {
        let bye = recv_until(&self.s, |r| r.starts_with("BYE ") && r.contains(call_id));
        let vias: String = header(&bye, "Via")
            .iter()
            .map(|v| format!("Via: {v}\r\n"))
            .collect();
        let ok = format!(
            "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            header(&bye, "From")[0],
            header(&bye, "To")[0],
            header(&bye, "CSeq")[0],
        );
        self.s.send_to(ok.as_bytes(), self.sip).unwrap();
        bye
    }
}

fn tls_trunk(p: &Parley, admin: &str, carrier: SocketAddr, ca: Option<&str>) -> String {
    let v = p.http(
        "POST",
        "/api/v1/trunks",
        Some(admin),
        Some(serde_json::json!({
            "name": "tls carrier", "outbound_target": carrier.to_string(), "transport": "tls",
            "tls_ca_pem": ca, "caller_id": "+15550100"})),
    );
    assert_eq!(v["transport"], "tls", "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// SIP over TLS to a trunk: Parley connects with TLS and verifies the trunk's
/// certificate — refused against the system's roots and against another CA (no INVITE
/// leaves, the caller gets 503), accepted with the trunk's pinned CA; the INVITE goes
/// over TLS (Via TLS, `transport=tls`), and the carrier's BYE on that connection ends
/// the call. (Regression: a trunk could only be `udp` or `tcp`.)
#[test]
fn an_outbound_call_to_a_tls_trunk_verifies_its_certificate_and_runs_over_tls() {
    let p = Parley::start("tlstrunk");
    let admin = p.admin_token();
    let ca = test_ca("Carrier CA");
    let other = test_ca("Someone else's CA");
    let (carrier, seen) = tls_carrier(&ca);
    p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(serde_json::json!({"allow_prefixes": ["+49"]})),
    );
    let x = Extension::new(&p);
    let next = |what: &str| {
        seen.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the carrier saw no {what}"))
    };

    // The system's roots do not know the carrier's CA.
    let trunk = tls_trunk(&p, &admin, carrier, None);
    let r = x.dial("+4930123456", "tls-roots@test");
    assert!(r.starts_with("SIP/2.0 503 "), "{r}");
    assert_eq!(next("handshake"), "HANDSHAKE FAILED");

    // Another CA pinned: refused too.
    let put = |ca: &str| {
        let v = p.http(
            "PUT",
            &format!("/api/v1/trunks/{trunk}"),
            Some(&admin),
            Some(serde_json::json!({
                "name": "tls carrier", "outbound_target": carrier.to_string(),
                "transport": "tls", "tls_ca_pem": ca, "caller_id": "+15550100"})),
        );
        assert_eq!(
            v["tls_ca_pem"].as_str().map(str::trim),
            Some(ca.trim()),
            "{v}"
        );
    };
    put(&other.pem);
    let r = x.dial("+4930123456", "tls-other@test");
    assert!(r.starts_with("SIP/2.0 503 "), "{r}");
    assert_eq!(next("handshake"), "HANDSHAKE FAILED");

    // The carrier's CA pinned: the call goes out over TLS.
    put(&ca.pem);
    let call_id = "tls-ok@test";
    let ok = x.dial("+4930123456", call_id);
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    let invite = loop {
        let m = next("INVITE");
        if m.starts_with("INVITE ") {
            break m;
        }
    };
    assert!(
        invite.starts_with(&format!(
            "INVITE sip:+4930123456@{carrier};transport=tls SIP/2.0\r\n"
        )),
        "{invite}"
    );
    assert!(
        header(&invite, "Via")[0].starts_with("SIP/2.0/TLS "),
        "{invite}"
    );
    assert!(
        header(&invite, "Contact")[0].contains("transport=tls"),
        "{invite}"
    );
    x.ack(&ok, call_id);
    // The carrier hangs up on its TLS connection: the caller gets the BYE, the carrier
    // its 200.
    x.bye_from_parley(call_id);
    loop {
        let m = next("200 to its BYE");
        if m.starts_with("SIP/2.0 200") && m.contains("BYE") {
            break;
        }
    }
}

/// The daily spend cap ends running calls: an answered call through the trunk is hung
/// up (caller and carrier both get a BYE whose Reason names `daily_spend`) once the
/// tenant's estimate passes the cap — here an admin lowers the cap below the call's
/// first minute — and the cut is audited for the admins. (Regression: the cap only
/// refused new dials; a running call went on spending.)
#[test]
fn a_running_call_is_cut_when_the_tenant_passes_its_daily_spend_cap() {
    let p = Parley::start("spendcut");
    let admin = p.admin_token();
    let carrier_port = free_port();
    let carrier = sipp_within("uas_trunk.xml", carrier_port, 1, None, 60)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.http("POST",
        "/api/v1/trunks",
        Some(&admin),
        Some(
            serde_json::json!({"name": "carrier", "outbound_target": format!("127.0.0.1:{carrier_port}"), "caller_id": "+15550100"}),
        ),
    );
    let policy = |cap: u64| {
        serde_json::json!({"allow_prefixes": ["+49"], "currency": "EUR",
            "rates": [{"prefix": "+49", "per_minute_milli": 100}],
            "daily_spend_cap_milli": cap})
    };
    let v = p.http(
        "PUT",
        "/api/v1/dial-policy",
        Some(&admin),
        Some(policy(10_000)),
    );
    assert_eq!(v["daily_spend_cap_milli"], 10_000, "{v}");
    let x = Extension::new(&p);
    let call_id = "spendcut@test";
    let ok = x.dial("+4930123456", call_id);
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    x.ack(&ok, call_id);
    // The cap lowered below the running call's first minute (100).
    p.http("PUT", "/api/v1/dial-policy", Some(&admin), Some(policy(50)));
    let bye = x.bye_from_parley(call_id);
    let reason = header(&bye, "Reason").join(" ");
    assert!(reason.contains("daily_spend"), "{bye}");
    check(
        "carrier hung up by the cap",
        carrier.wait_with_output().unwrap(),
    );
    let log = p.http("GET", "/api/v1/audit?limit=50", Some(&admin), None);
    let cut = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "dial.cut")
        .unwrap_or_else(|| panic!("no dial.cut audited: {log}"));
    assert_eq!(cut["after"]["rule"], "daily_spend", "{cut}");
    assert_eq!(cut["after"]["number"], "+4930123456", "{cut}");
}
