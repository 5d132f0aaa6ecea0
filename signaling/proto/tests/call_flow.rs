#![allow(clippy::unwrap_used)]
//! An RFC 3665 §3.1-style basic call, end to end through the pieces of this crate:
//! transactions (virtual time, lossless link), dialogs on both sides and SDP
//! offer/answer. INVITE → 100 → 180 → 200 (SDP answer) → ACK → BYE → 200.

mod common;

use common::{CLIENT, Pair, SERVER};
use parley_sip_proto::dialog::{Dialog, DialogState};
use parley_sip_proto::message::{Headers, Method, Request, SipMessage, Via};
use parley_sip_proto::offer_answer::{
    LocalCapabilities, answer, build_offer, parse_sdp, read_answer, sdp_to_bytes,
};
use parley_sip_proto::transaction::TuEvent;
use std::net::{IpAddr, Ipv4Addr};

fn caps(last: u8, port: u16) -> LocalCapabilities {
    LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
}

#[test]
fn basic_call_with_media_and_bye() {
    let mut p = Pair::new();
    let alice_caps = caps(1, 49170);
    let bob_caps = caps(2, 3456);

    // Alice builds an INVITE with an SDP offer.
    let mut h = Headers::new();
    h.push(
        "Via",
        Via::new("UDP", "192.0.2.1", Some(5060), "z9hG4bKnashds8").to_string(),
    );
    h.push("Max-Forwards", "70");
    h.push("To", "Bob <sip:bob@biloxi.example.com>");
    h.push(
        "From",
        "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    );
    h.push("Call-ID", "3848276298220188511@atlanta.example.com");
    h.push("CSeq", "1 INVITE");
    h.push("Contact", "<sip:alice@192.0.2.1>");
    h.push("Content-Type", "application/sdp");
    let offer = sdp_to_bytes(&build_offer(&alice_caps));
    let invite = Request::new(Method::Invite, "sip:bob@biloxi.example.com", h, offer).unwrap();
    p.client_send(invite.clone(), false);

    // Bob's TU: 180, then 200 with the SDP answer; his dialog is created by the 200.
    let inv = p.last_server_request();
    let mut ringing = inv.make_response(180, None, Some("8321234356"));
    ringing.headers.push("Contact", "<sip:bob@192.0.2.2>");
    let now = p.now;
    p.nodes[SERVER].layer.send_response(now, ringing).unwrap();
    p.drive_until(1_000);

    let offer = parse_sdp(inv.body()).unwrap();
    let ans = answer(&offer, &bob_caps).unwrap();
    assert_eq!(ans.media[0].as_ref().unwrap().codec.name, "PCMU");
    let mut ok = inv.make_response(200, None, Some("8321234356"));
    ok.headers.push("Contact", "<sip:bob@192.0.2.2>");
    ok.set_body(Some("application/sdp"), sdp_to_bytes(&ans.sdp));
    let mut bob = Dialog::uas(&inv, "8321234356", "sip:bob@192.0.2.2", true, 1000).unwrap();
    let now = p.now;
    p.nodes[SERVER].layer.send_response(now, ok).unwrap();
    p.drive_until(1_000);

    // Alice's TU: dialog from the 180 (early), confirmed by the 200, then ACK.
    let responses: Vec<_> = p.nodes[CLIENT]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Response { response, .. } => Some(response.clone()),
            _ => None,
        })
        .collect();
    let codes: Vec<u16> = responses.iter().map(|r| r.code()).collect();
    // Bob's TU answered within 200 ms, so the layer sent no 100 Trying.
    assert_eq!(codes, vec![180, 200]);
    let mut alice = Dialog::uac(&invite, &responses[0], "sip:alice@192.0.2.1").unwrap();
    assert_eq!(alice.state, DialogState::Early);
    alice.on_response(&responses[1]).unwrap();
    assert_eq!(alice.state, DialogState::Confirmed);
    let media = read_answer(&parse_sdp(responses[1].body()).unwrap(), &alice_caps).unwrap();
    let m = media[0].as_ref().unwrap();
    assert_eq!(m.remote.unwrap().to_string(), "192.0.2.2:3456");
    assert_eq!(m.telephone_event, Some(101));

    let ack = alice
        .create_ack(
            1,
            &Via::new("UDP", "192.0.2.1", Some(5060), "z9hG4bK74b76"),
            None,
        )
        .unwrap();
    assert_eq!(ack.uri(), "sip:bob@192.0.2.2");
    p.stateless(CLIENT, SipMessage::Request(ack));
    let got_ack = p.nodes[SERVER].events.iter().any(|(_, e)| {
        matches!(e, TuEvent::Request { key: None, request, .. } if *request.method() == Method::Ack)
    });
    assert!(got_ack, "the 2xx ACK reaches Bob's TU");

    // Later, Alice hangs up.
    p.drive_until(10_000);
    let bye = alice
        .create_request(
            Method::Bye,
            &Via::new("UDP", "192.0.2.1", Some(5060), "z9hG4bKbye1"),
            None,
        )
        .unwrap();
    p.client_send(bye, false);
    let bye_in = p.last_server_request();
    assert_eq!(*bye_in.method(), Method::Bye);
    bob.on_request(&bye_in).unwrap();
    assert_eq!(bob.state, DialogState::Terminated);
    p.server_respond(&bye_in, 200);
    p.drive_until(60_000);
    let final_codes: Vec<u16> = p.nodes[CLIENT]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Response { response, .. } => Some(response.code()),
            _ => None,
        })
        .collect();
    assert_eq!(final_codes, vec![180, 200, 200]);
    assert!(p.nodes[CLIENT].layer.is_empty());
    assert!(p.nodes[SERVER].layer.is_empty());
    // Exactly one INVITE went on the wire: nothing was lost, nothing retransmitted.
    assert_eq!(p.times(CLIENT, "INVITE"), vec![0]);
}
