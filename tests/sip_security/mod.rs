//! Safe on a public IP (issue #13), part of the `sip` test binary: password guessing
//! gets the guessing source banned while the real phone elsewhere keeps working, the
//! ban list is read and lifted over the admin API, and slow or surplus TCP connections
//! cannot exhaust Parley's descriptors.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use parley_sip_proto::auth::DigestChallenge;

use super::*;

/// (status, body) of any request, 204s included.
fn call(p: &Parley, method: &str, path: &str, token: &str) -> (u16, Value) {
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
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    })
}

/// Guesses passwords for `ext` from `ua` with the one nonce of the first challenge,
/// `method` REGISTER (401/Authorization) or INVITE (407/Proxy-Authorization) to `uri`;
/// returns how many guesses were answered before Parley went silent.
fn guess_until_silent(ua: &mut RawUa, method: &str, uri: &str, ext: &str, tag: &str) -> u32 {
    let (auth_header, challenge_header) = if method == "REGISTER" {
        ("Authorization", "WWW-Authenticate")
    } else {
        ("Proxy-Authorization", "Proxy-Authenticate")
    };
    let r = ua
        .try_request(method, uri, ext, &format!("{tag}-0@test"), 1, "")
        .expect("the first request is challenged");
    assert!(
        r.starts_with("SIP/2.0 401 ") || r.starts_with("SIP/2.0 407 "),
        "{r}"
    );
    let ch = DigestChallenge::parse(header(&r, challenge_header)[0]).unwrap();
    let mut answered = 0;
    for i in 1..=30u32 {
        let creds = ch.answer(ext, &format!("guess {i}"), method, uri, "c0ffee", i);
        let r = ua.try_request(
            method,
            uri,
            ext,
            &format!("{tag}-{i}@test"),
            1,
            &format!("{auth_header}: {creds}\r\n"),
        );
        match r {
            Some(r) => {
                assert!(r.starts_with("SIP/2.0 403 "), "guess {i}: {r}");
                answered += 1;
            }
            None => break,
        }
    }
    answered
}

// Before: a credential carrying a nonce Parley had issued skipped the per-source
// throttle and failures were only counted, so one challenge allowed unlimited guesses.
#[test]
fn wrong_password_storm_with_one_nonce_bans_the_source_and_a_good_phone_elsewhere_keeps_working() {
    let p = Parley::start_with("ban", &[("PARLEY_SIP_BAN_THRESHOLD", "5")]);
    let (ext, pw) = p.agent(0);
    let uri = format!("sip:{}", p.sip);

    // REGISTER storm from 127.0.0.2 against a real extension: five 403s, then silence.
    let mut attacker = RawUa::new("127.0.0.2", p.sip);
    attacker
        .s
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(
        guess_until_silent(&mut attacker, "REGISTER", &uri, &ext, "reg-storm"),
        5
    );
    // Banned: even the right password from there is not answered now.
    assert!(
        attacker
            .try_request("REGISTER", &uri, &ext, "reg-after@test", 1, "")
            .is_none()
    );

    // The real phone, on 127.0.0.1, registers the very extension under attack.
    let mut phone = RawUa::new("127.0.0.1", p.sip);
    let r = phone.request("REGISTER", &uri, &ext, "phone@test", 1, "Expires: 120\r\n");
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    let ch = DigestChallenge::parse(header(&r, "WWW-Authenticate")[0]).unwrap();
    let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "beef", 1);
    let r = phone.request(
        "REGISTER",
        &uri,
        &ext,
        "phone@test",
        2,
        &format!("Authorization: {creds}\r\nExpires: 120\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");

    // INVITE storm (toll fraud: dialling out as the extension) from 127.0.0.3.
    let mut fraud = RawUa::new("127.0.0.3", p.sip);
    fraud
        .s
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let out = format!("sip:+15557654321@{}", p.sip);
    assert_eq!(
        guess_until_silent(&mut fraud, "INVITE", &out, &ext, "inv-storm"),
        5
    );

    // The challenge does not tell whether an extension exists: an unknown one is
    // challenged in the same realm as the real one (before: the domain it named).
    let mut probe = RawUa::new("127.0.0.5", p.sip);
    let known = probe.request("REGISTER", &uri, &ext, "probe-1@test", 1, "");
    let unknown = probe.request("REGISTER", &uri, "9876", "probe-2@test", 1, "");
    let realm = |r: &str| {
        DigestChallenge::parse(header(r, "WWW-Authenticate")[0])
            .unwrap()
            .realm
    };
    assert_eq!(realm(&known), "demo");
    assert_eq!(realm(&unknown), realm(&known), "{unknown}");

    // Nonces Parley never issued (every phone's first REGISTER after a restart, here 15
    // phones behind one NAT address) are challenged afresh, not counted: no ban.
    let mut office = RawUa::new("127.0.0.4", p.sip);
    for i in 0..15u32 {
        let mut stale = ch.answer(&ext, &pw, "REGISTER", &uri, "d00d", 1);
        stale.nonce = format!("{:064x}", i);
        let r = office
            .try_request(
                "REGISTER",
                &uri,
                &ext,
                &format!("office-{i}@test"),
                1,
                &format!("Authorization: {stale}\r\n"),
            )
            .expect("a restart's old nonce is challenged");
        assert!(r.starts_with("SIP/2.0 401 "), "phone {i}: {r}");
    }

    // Admins see both bans and lift one; the lifted source is answered again.
    let admin = p.admin_token();
    let (s, bans) = call(&p, "GET", "/api/v1/sip/bans", &admin);
    assert_eq!(s, 200, "{bans}");
    let mut listed: Vec<&str> = bans
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["127.0.0.2", "127.0.0.3"], "{bans}");
    assert_eq!(bans[0]["last_user"], ext.as_str());
    let sup = p.supervisor_token();
    assert_eq!(call(&p, "GET", "/api/v1/sip/bans", &sup).0, 403);
    assert_eq!(
        call(&p, "DELETE", "/api/v1/sip/bans/127.0.0.2", &sup).0,
        403
    );
    assert_eq!(
        call(&p, "DELETE", "/api/v1/sip/bans/127.0.0.2", &admin).0,
        204
    );
    assert_eq!(
        call(&p, "DELETE", "/api/v1/sip/bans/127.0.0.2", &admin).0,
        404
    );
    let r = attacker
        .try_request("REGISTER", &uri, &ext, "reg-lifted@test", 1, "")
        .expect("answered once the ban is lifted");
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    let (_, audit) = call(&p, "GET", "/api/v1/audit?entity_id=127.0.0.2", &admin);
    assert!(
        audit.to_string().contains("sip.ban_lift"),
        "lifting is audited: {audit}"
    );
    assert!(p.counter(&sup, "sip_bans_total") >= 2);
    assert!(p.counter(&sup, "sip_banned_dropped_total") >= 2);
}

/// A TCP connection to `to` from the loopback address `from`.
fn tcp_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}

/// Parley's open file descriptors.
fn open_fds(p: &Parley) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Whether the server has closed `s` (EOF or reset), waiting up to `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

// Before: every accepted SIP TCP connection got a task and a descriptor for as long as
// the peer kept it open, with no cap and no timeout.
#[test]
fn slowloris_on_sip_tcp_does_not_exhaust_descriptors_and_a_good_client_is_served() {
    let p = Parley::start_with(
        "slowloris",
        &[
            ("PARLEY_SIP_TCP_MAX_PER_SOURCE", "8"),
            ("PARLEY_SIP_TCP_MESSAGE_TIMEOUT_SECS", "3"),
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = open_fds(&p);
    // 60 connections from 127.0.0.2, each starting a request and never finishing it.
    let mut slow = Vec::new();
    for _ in 0..60 {
        if let Ok(mut s) = tcp_from("127.0.0.2", p.sip_tcp) {
            let _ = s.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2");
            slow.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(&p);
    assert!(
        during <= before + 8 + 4,
        "{before} descriptors before, {during} with 60 slow connections"
    );
    // A good client on another address is served meanwhile.
    let mut good = tcp_from("127.0.0.1", p.sip_tcp).unwrap();
    let me = good.local_addr().unwrap();
    let opt = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcpgood\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{me}>;tag=1\r\nTo: <sip:{0}>\r\nCall-ID: tcpgood@test\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        p.sip_tcp
    );
    good.write_all(opt.as_bytes()).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = good.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Trickling a byte now and then does not keep a half-sent message alive: every slow
    // connection is closed within the message timeout (3 s, with margin for a loaded
    // machine).
    let t0 = Instant::now();
    for s in &mut slow {
        let _ = s.write_all(b";");
    }
    let mut still_open = 0;
    for s in &mut slow {
        let left = Duration::from_secs(30).saturating_sub(t0.elapsed());
        if !closed_by_server(s, left.max(Duration::from_millis(10))) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "slow connections left open");
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_tcp_refused_total") >= 50);
    assert!(p.counter(&tok, "sip_tcp_timeouts_total") >= 8);
}

/// The `host:port` of Parley's HTTP listener.
fn http_addr(p: &Parley) -> SocketAddr {
    p.http.trim_start_matches("http://").parse().unwrap()
}

// Before: `axum::serve` ran hyper without a timer, so no header timeout applied, and
// nothing capped connections: a client trickling headers held one descriptor per
// connection for as long as it liked.
#[test]
fn slowloris_on_http_does_not_exhaust_descriptors_and_the_api_stays_up() {
    let p = Parley::start_with(
        "http-slowloris",
        &[
            ("PARLEY_HTTP_MAX_PER_SOURCE", "8"),
            ("PARLEY_HTTP_HEADER_TIMEOUT_SECS", "3"),
        ],
    );
    let to = http_addr(&p);
    std::thread::sleep(Duration::from_millis(500));
    let before = open_fds(&p);
    let mut slow = Vec::new();
    for _ in 0..60 {
        if let Ok(mut s) = tcp_from("127.0.0.2", to) {
            let _ = s.write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n");
            slow.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(&p);
    assert!(
        during <= before + 8 + 4,
        "{before} descriptors before, {during} with 60 slow connections"
    );
    // The API answers others meanwhile.
    let tok = p.supervisor_token();
    assert!(p.counter(&tok, "sip_requests_in_total") < u64::MAX);
    // Trickled headers do not keep connections: all closed within the header timeout
    // (3 s, with margin for a loaded machine).
    let t0 = Instant::now();
    for s in &mut slow {
        let _ = s.write_all(b"X-Slow: 1\r\n");
    }
    let mut still_open = 0;
    for s in &mut slow {
        let left = Duration::from_secs(30).saturating_sub(t0.elapsed());
        if !closed_by_server(s, left.max(Duration::from_millis(10))) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "slow connections left open");
}

// Before: a registration stayed bound until it expired (up to an hour) after its user's
// SIP password changed: calls kept ringing the phone registered with the old password
// (a phone an attacker had registered with a stolen one, say).
#[test]
fn a_new_sip_password_drops_the_phone_registered_with_the_old_one() {
    let p = start_b2bua("revoke", &[]);
    let (ext, pw) = p.agent(0);
    let uri = format!("sip:{}", p.sip);
    let mut phone = RawUa::new("127.0.0.1", p.sip);
    let r = phone.request(
        "REGISTER",
        &uri,
        &ext,
        "revoke@test",
        1,
        "Expires: 3600\r\n",
    );
    let ch = DigestChallenge::parse(header(&r, "WWW-Authenticate")[0]).unwrap();
    let creds = ch.answer(&ext, &pw, "REGISTER", &uri, "feed", 1);
    let r = phone.request(
        "REGISTER",
        &uri,
        &ext,
        "revoke@test",
        2,
        &format!("Authorization: {creds}\r\nExpires: 3600\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    caller
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let me = caller.local_addr().unwrap();
    phone
        .s
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // One call to the demo number: whether the phone was offered it (it answers 486),
    // and the caller's final response.
    let ring = |i: u32| -> (bool, String) {
        let call_id = format!("revoked-call-{i}@test");
        let invite = format!(
            "INVITE sip:15550100@{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrevoke{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=1\r\nTo: <sip:15550100@{0}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n",
            p.sip
        );
        caller.send_to(invite.as_bytes(), p.sip).unwrap();
        let mut offered = false;
        for _ in 0..600 {
            let mut buf = [0u8; 65536];
            if let Ok((n, from)) = phone.s.recv_from(&mut buf)
                && let Ok(SipMessage::Request(r)) =
                    parley_sip_proto::message::parse(&buf[..n], 65536)
                && r.method() == &parley_sip_proto::message::Method::Invite
            {
                offered = true;
                let busy = SipMessage::Response(r.make_response(486, None, Some("busy")));
                phone.s.send_to(&busy.to_bytes(), from).unwrap();
            }
            if let Some(r) = try_recv_until(&caller, |r| {
                !r.starts_with("SIP/2.0 1") && r.contains(&call_id)
            }) {
                return (offered, r);
            }
        }
        panic!("no final response to call {i}");
    };
    // The premise: registered, the phone is offered calls to the number.
    let (offered, _) = ring(0);
    assert!(offered, "the registered phone is rung");
    // The admin gives the agent whose extension it is a new SIP password.
    let admin = p.admin_token();
    let users = p.http("GET", "/api/v1/users", Some(&admin), None);
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .find(|id| {
            p.http(
                "GET",
                &format!("/api/v1/users/{id}/sip"),
                Some(&admin),
                None,
            )["extension"]
                == ext.as_str()
        })
        .unwrap();
    p.http(
        "PUT",
        &format!("/api/v1/users/{id}/sip"),
        Some(&admin),
        Some(json!({"password": "a brand new sip password"})),
    );
    // The change reaches the registrar asynchronously: calls are retried (bounded)
    // until one gets 480 without the phone being offered it.
    let mut rang = 0;
    for i in 1..=50 {
        let (offered, final_) = ring(i);
        if !offered {
            assert!(final_.starts_with("SIP/2.0 480 "), "{final_}");
            return;
        }
        rang += 1;
    }
    panic!("the phone with the old password was still rung {rang} times");
}

// Before: trunk source addresses bypassed every rate limit (a spoofed or compromised
// carrier address could flood the driver without bound).
#[test]
fn requests_from_a_trunk_address_are_rate_limited_too() {
    let p = Parley::start_with(
        "trunk-flood",
        &[
            ("PARLEY_SIP_TRUNK_PER_SECOND", "1"),
            ("PARLEY_SIP_TRUNK_BURST", "3"),
        ],
    );
    // 127.0.0.1 is the demo trunk's inbound address; the driver loads trunk addresses
    // in a task of its own at start, so give it a moment first.
    std::thread::sleep(Duration::from_secs(1));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let me = s.local_addr().unwrap();
    for n in 0..30u32 {
        s.send_to(options(me, p.sip, n).as_bytes(), p.sip).unwrap();
    }
    let mut replies = 0;
    let mut buf = [0u8; 65536];
    while s.recv_from(&mut buf).is_ok() {
        replies += 1;
    }
    assert!(replies >= 1, "the burst is answered");
    assert!(
        replies < 30,
        "{replies} replies: trunk addresses not limited"
    );
}
