#![allow(clippy::unwrap_used)]
//! Dialogs (RFC 3261 §12) over an RFC 3665-style call through two record-routing proxies.

use parley_sip_proto::Error;
use parley_sip_proto::dialog::{Dialog, DialogId, DialogState, new_branch};
use parley_sip_proto::message::{MessageExt, Method, Request, Response, Via};
use rand::SeedableRng;

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
Content-Length: 0\r\n\r\n";

fn response(code: u16, reason: &str) -> Response {
    let text = format!(
        "SIP/2.0 {code} {reason}\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n\
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:bob@client.biloxi.example.com>\r\n\
Content-Length: 0\r\n\r\n"
    );
    Response::parse(text.as_bytes()).unwrap()
}

fn via(branch: &str) -> Via {
    Via::new("UDP", "client.atlanta.example.com", Some(5060), branch)
}

#[test]
fn uac_early_then_confirmed_with_reversed_route_set() {
    let invite = Request::parse(INVITE.as_bytes()).unwrap();
    let mut d = Dialog::uac(
        &invite,
        &response(180, "Ringing"),
        "sip:alice@client.atlanta.example.com",
    )
    .unwrap();
    assert_eq!(d.state, DialogState::Early);
    assert_eq!(
        d.id,
        DialogId {
            call_id: "3848276298220188511@atlanta.example.com".into(),
            local_tag: "9fxced76sl".into(),
            remote_tag: "314159".into()
        }
    );
    let rs: Vec<&str> = d.route_set.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        rs,
        vec![
            "sip:ss1.atlanta.example.com;lr",
            "sip:ss2.biloxi.example.com;lr"
        ]
    );
    d.on_response(&response(200, "OK")).unwrap();
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(d.remote_target, "sip:bob@client.biloxi.example.com");

    // ACK for the 2xx: same CSeq number, method ACK, loose routing.
    let ack = d.create_ack(1, &via("z9hG4bK74bfa"), None).unwrap();
    assert_eq!(ack.uri(), "sip:bob@client.biloxi.example.com");
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    let routes: Vec<String> = ack.route().unwrap().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        routes,
        vec![
            "sip:ss1.atlanta.example.com;lr",
            "sip:ss2.biloxi.example.com;lr"
        ]
    );
    assert_eq!(ack.to_tag().as_deref(), Some("314159"));

    // BYE: next CSeq, parses back.
    let bye = d
        .create_request(Method::Bye, &via("z9hG4bK74bfb"), None)
        .unwrap();
    assert_eq!(bye.cseq().unwrap().seq, 2);
    assert_eq!(Request::parse(&bye.to_bytes()).unwrap(), bye);
}

#[test]
fn uas_dialog_checks_cseq_order_and_terminates_on_bye() {
    let invite = Request::parse(INVITE.as_bytes()).unwrap();
    let mut d = Dialog::uas(
        &invite,
        "314159",
        "sip:bob@client.biloxi.example.com",
        true,
        100,
    )
    .unwrap();
    assert_eq!(d.remote_seq, Some(1));
    assert_eq!(
        d.remote_target,
        "sip:alice@client.atlanta.example.com;transport=udp"
    );
    // Alice's BYE towards Bob.
    let mut alice_side = {
        let resp = invite.make_response(200, None, Some("314159"));
        let mut r = resp;
        r.headers
            .push("Contact", "<sip:bob@client.biloxi.example.com>");
        Dialog::uac(&invite, &r, "sip:alice@client.atlanta.example.com").unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bye = alice_side
        .create_request(Method::Bye, &via(&new_branch(&mut rng)), None)
        .unwrap();
    assert_eq!(DialogId::of_incoming_request(&bye).unwrap(), d.id);
    d.on_request(&bye).unwrap();
    assert_eq!(d.state, DialogState::Terminated);
    // A replayed (lower or equal) CSeq is refused with a 500.
    let err = d.on_request(&bye).unwrap_err();
    assert!(matches!(err, Error::CSeqOutOfOrder { got: 2, last: 2 }));
    assert_eq!(err.status_code(), Some(500));
}

#[test]
fn reinvite_refreshes_target_and_foreign_requests_are_rejected() {
    let invite = Request::parse(INVITE.as_bytes()).unwrap();
    let mut bob = Dialog::uas(
        &invite,
        "314159",
        "sip:bob@client.biloxi.example.com",
        true,
        100,
    )
    .unwrap();
    let mut alice = Dialog::uac(
        &invite,
        &response(200, "OK"),
        "sip:alice@new.atlanta.example.com",
    )
    .unwrap();
    let reinvite = alice
        .create_request(
            Method::Invite,
            &via("z9hG4bKre1"),
            Some(("application/sdp", bytes::Bytes::from_static(b"v=0\r\n"))),
        )
        .unwrap();
    assert_eq!(
        reinvite.headers.get("Content-Type"),
        Some("application/sdp")
    );
    bob.on_request(&reinvite).unwrap();
    assert_eq!(bob.remote_target, "sip:alice@new.atlanta.example.com");
    let other = Request::parse(INVITE.replace("tag=9fxced76sl", "tag=zzz").as_bytes()).unwrap();
    assert_eq!(bob.on_request(&other), Err(Error::DialogMismatch));
}

#[test]
fn strict_router_goes_to_the_request_uri() {
    let invite = Request::parse(INVITE.as_bytes()).unwrap();
    let text = String::from_utf8(response(200, "OK").to_bytes().to_vec())
        .unwrap()
        .replace(
            "<sip:ss1.atlanta.example.com;lr>",
            "<sip:ss1.atlanta.example.com>",
        );
    let resp = Response::parse(text.as_bytes()).unwrap();
    let mut d = Dialog::uac(&invite, &resp, "sip:alice@client.atlanta.example.com").unwrap();
    let bye = d
        .create_request(Method::Bye, &via("z9hG4bKs1"), None)
        .unwrap();
    assert_eq!(bye.uri(), "sip:ss1.atlanta.example.com");
    let routes: Vec<String> = bye.route().unwrap().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        routes,
        vec![
            "sip:ss2.biloxi.example.com;lr",
            "sip:bob@client.biloxi.example.com"
        ]
    );
}

#[test]
fn early_dialog_ends_on_failure() {
    let invite = Request::parse(INVITE.as_bytes()).unwrap();
    let mut d = Dialog::uac(&invite, &response(183, "Session Progress"), "sip:a@b").unwrap();
    d.on_response(&response(486, "Busy Here")).unwrap();
    assert_eq!(d.state, DialogState::Terminated);
    assert!(
        d.create_request(Method::Bye, &via("z9hG4bKx"), None)
            .is_err()
    );
}
