#![allow(clippy::unwrap_used)]
//! Transaction layer in virtual time: exact retransmission schedules, absorption of
//! retransmissions, CANCEL, merged requests and the reliable-transport variants.

mod common;

use common::{CLIENT, Pair, SERVER, request};
use parley_sip_proto::message::{MessageExt, Method, Request, SipMessage};
use parley_sip_proto::transaction::{TimerConfig, TuEvent, TxState, build_cancel};

fn events(p: &Pair, node: usize) -> Vec<&TuEvent> {
    p.nodes[node].events.iter().map(|(_, e)| e).collect()
}

fn timeouts(p: &Pair, node: usize) -> Vec<u64> {
    p.nodes[node]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, TuEvent::Timeout { .. }))
        .map(|(t, _)| *t)
        .collect()
}

fn responses(p: &Pair, node: usize) -> Vec<(u64, u16)> {
    p.nodes[node]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            TuEvent::Response { response, .. } => Some((*t, response.code())),
            _ => None,
        })
        .collect()
}

fn requests(p: &Pair, node: usize) -> Vec<(u64, Method)> {
    p.nodes[node]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            TuEvent::Request { request, .. } => Some((*t, request.method().clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn client_invite_timer_a_doubles_and_timer_b_fires_at_32s() {
    let mut p = Pair::new();
    p.drop_when(|from, _| from == CLIENT);
    let key = p.client_send(request("INVITE", "z9hG4bKa1", "UDP", ""), false);
    p.drive_until(40_000);
    assert_eq!(
        p.times(CLIENT, "INVITE"),
        vec![0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    assert_eq!(timeouts(&p, CLIENT), vec![32_000]);
    assert!(matches!(
        events(&p, CLIENT).last(),
        Some(TuEvent::Terminated { key: k }) if *k == key
    ));
    assert!(p.nodes[CLIENT].layer.is_empty());
}

#[test]
fn client_invite_on_reliable_transport_is_not_retransmitted() {
    let mut p = Pair::new();
    p.drop_when(|from, _| from == CLIENT);
    p.client_send(request("INVITE", "z9hG4bKa2", "TCP", ""), true);
    p.drive_until(40_000);
    assert_eq!(p.times(CLIENT, "INVITE"), vec![0]);
    assert_eq!(timeouts(&p, CLIENT), vec![32_000]);
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_timer_f_fires_at_32s() {
    let mut p = Pair::new();
    p.drop_when(|from, _| from == CLIENT);
    p.client_send(request("OPTIONS", "z9hG4bKn1", "UDP", ""), false);
    p.drive_until(40_000);
    assert_eq!(
        p.times(CLIENT, "OPTIONS"),
        vec![
            0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(timeouts(&p, CLIENT), vec![32_000]);
}

#[test]
fn custom_t1_t2_scale_the_schedule() {
    let cfg = TimerConfig {
        t1: std::time::Duration::from_millis(100),
        t2: std::time::Duration::from_millis(400),
        ..TimerConfig::default()
    };
    let mut p = Pair::with_config(cfg);
    p.drop_when(|from, _| from == CLIENT);
    p.client_send(request("REGISTER", "z9hG4bKr1", "UDP", ""), false);
    p.drive_until(10_000);
    assert_eq!(
        p.times(CLIENT, "REGISTER"),
        vec![
            0, 100, 300, 700, 1_100, 1_500, 1_900, 2_300, 2_700, 3_100, 3_500, 3_900, 4_300, 4_700,
            5_100, 5_500, 5_900, 6_300
        ]
    );
    assert_eq!(timeouts(&p, CLIENT), vec![6_400]);
}

#[test]
fn non_invite_provisional_switches_timer_e_to_t2_and_final_starts_k() {
    let mut p = Pair::new();
    p.client_send(request("MESSAGE", "z9hG4bKm1", "UDP", ""), false);
    let req = p.last_server_request();
    p.server_respond(&req, 100);
    p.drive_until(10_000);
    // After the 1xx (at 0) Timer E still fires at 0.5 s, then every T2.
    assert_eq!(p.times(CLIENT, "MESSAGE"), vec![0, 500, 4_500, 8_500]);
    // Each retransmission is answered with the last provisional, not passed to the TU.
    assert_eq!(p.times(SERVER, "SIP/2.0 100"), vec![0, 500, 4_500, 8_500]);
    assert_eq!(requests(&p, SERVER).len(), 1);
    p.server_respond(&req, 200);
    p.drive_until(40_000);
    // RFC 3261 §17.1.2.2: every provisional in Proceeding is passed up.
    assert_eq!(
        responses(&p, CLIENT),
        vec![
            (0, 100),
            (500, 100),
            (4_500, 100),
            (8_500, 100),
            (10_000, 200)
        ]
    );
    // Timer K = T4 = 5 s; Timer J = 64*T1 = 32 s.
    let term = |node: usize| {
        p.nodes[node]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, TuEvent::Terminated { .. }))
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
    };
    assert_eq!(term(CLIENT), vec![15_000]);
    assert!(term(SERVER).is_empty(), "Timer J runs until 42 s");
    p.drive_until(50_000);
    let term_server: Vec<u64> = p.nodes[SERVER]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, TuEvent::Terminated { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(term_server, vec![42_000]);
}

#[test]
fn server_invite_retransmits_final_response_with_timer_g_until_timer_h() {
    let mut p = Pair::new();
    // Every ACK is lost.
    p.drop_when(|from, line| from == CLIENT && line.starts_with("ACK"));
    p.client_send(request("INVITE", "z9hG4bKs1", "UDP", ""), false);
    let req = p.last_server_request();
    p.server_respond(&req, 486);
    p.drive_until(40_000);
    assert_eq!(
        p.times(SERVER, "SIP/2.0 486"),
        vec![
            0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(timeouts(&p, SERVER), vec![32_000]);
    // The client transaction re-sends its ACK for every retransmitted 486 and
    // reports the 486 to its TU only once.
    assert_eq!(p.times(CLIENT, "ACK").len(), 11);
    assert_eq!(responses(&p, CLIENT), vec![(0, 486)]);
    // Timer D ends the client transaction at 32 s.
    assert!(p.nodes[CLIENT].layer.is_empty());
}

#[test]
fn server_invite_ack_stops_retransmission_and_timer_i_ends_it() {
    let mut p = Pair::new();
    let ck = p.client_send(request("INVITE", "z9hG4bKs2", "UDP", ""), false);
    let req = p.last_server_request();
    p.server_respond(&req, 603);
    p.drive_until(1);
    let sk = match &p.nodes[SERVER].events[0].1 {
        TuEvent::Request { key: Some(k), .. } => k.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(p.nodes[SERVER].layer.state(&sk), Some(TxState::Confirmed));
    assert_eq!(p.nodes[CLIENT].layer.state(&ck), Some(TxState::Completed));
    p.drive_until(40_000);
    assert_eq!(p.times(SERVER, "SIP/2.0 603"), vec![0]);
    assert_eq!(p.times(CLIENT, "ACK"), vec![0]);
    // The ACK for a non-2xx is absorbed by the server transaction.
    assert_eq!(requests(&p, SERVER), vec![(0, Method::Invite)]);
    let end = |node: usize| {
        p.nodes[node]
            .events
            .iter()
            .find(|(_, e)| matches!(e, TuEvent::Terminated { .. }))
            .map(|(t, _)| *t)
    };
    assert_eq!(end(SERVER), Some(5_000)); // Timer I = T4
    assert_eq!(end(CLIENT), Some(32_000)); // Timer D
}

#[test]
fn server_sends_100_trying_after_200ms_and_absorbs_invite_retransmissions() {
    let mut p = Pair::new();
    // The first 100 Trying is lost, so the client retransmits the INVITE at 0.5 s.
    let mut lost = false;
    p.drop_when(move |from, line| {
        if from == SERVER && line.starts_with("SIP/2.0 100") && !lost {
            lost = true;
            return true;
        }
        false
    });
    p.client_send(request("INVITE", "z9hG4bKt1", "UDP", ""), false);
    p.drive_until(5_000);
    assert_eq!(p.times(SERVER, "SIP/2.0 100"), vec![200, 500]);
    assert_eq!(p.times(CLIENT, "INVITE"), vec![0, 500]);
    assert_eq!(requests(&p, SERVER), vec![(0, Method::Invite)]);
    assert_eq!(responses(&p, CLIENT), vec![(500, 100)]);
    // In Proceeding there is no Timer B: no timeout even after 32 s.
    p.drive_until(60_000);
    assert!(timeouts(&p, CLIENT).is_empty());
}

#[test]
fn two_hundred_ok_goes_to_the_tu_and_ack_is_the_tus_job() {
    let mut p = Pair::new();
    let ck = p.client_send(request("INVITE", "z9hG4bKok1", "UDP", ""), false);
    let req = p.last_server_request();
    p.server_respond(&req, 200);
    p.drive_until(1);
    assert_eq!(responses(&p, CLIENT), vec![(0, 200)]);
    assert_eq!(p.nodes[CLIENT].layer.state(&ck), Some(TxState::Accepted));
    // The transaction layer sent no ACK for the 2xx.
    assert!(p.times(CLIENT, "ACK").is_empty());
    // The TU retransmits the 2xx itself (RFC 6026 Accepted state lets it through)...
    p.now = p.start + std::time::Duration::from_millis(500);
    p.server_respond(&req, 200);
    p.drive_until(600);
    // ...and the client transaction passes the retransmission up too.
    assert_eq!(responses(&p, CLIENT), vec![(0, 200), (500, 200)]);
    // The dialog layer's ACK (new branch) matches no transaction and reaches the TU.
    let ack = request("ACK", "z9hG4bKack1", "UDP", "");
    p.stateless(CLIENT, SipMessage::Request(ack));
    p.drive_until(700);
    assert!(p.nodes[SERVER].events.iter().any(|(_, e)| matches!(
        e,
        TuEvent::Request { key: None, request, .. } if *request.method() == Method::Ack
    )));
    // Timer L / Timer M end both transactions at 64*T1.
    p.drive_until(40_000);
    assert!(p.nodes[CLIENT].layer.is_empty());
    assert!(p.nodes[SERVER].layer.is_empty());
}

#[test]
fn cancel_is_its_own_transaction_and_finds_the_invite() {
    let mut p = Pair::new();
    let invite = request("INVITE", "z9hG4bKc1", "UDP", "");
    p.client_send(invite.clone(), false);
    p.drive_until(1_000);
    let cancel = build_cancel(&invite);
    assert_eq!(cancel.top_via().unwrap().branch(), Some("z9hG4bKc1"));
    let cancel_key = p.client_send(cancel, false);
    assert_eq!(cancel_key.method, Method::Cancel);
    p.drive_until(1_000);
    let (sk, creq) = p.nodes[SERVER]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            TuEvent::Request {
                key: Some(k),
                request,
                ..
            } if *request.method() == Method::Cancel => Some((k.clone(), request.clone())),
            _ => None,
        })
        .unwrap();
    let target = p.nodes[SERVER].layer.cancel_target(&sk).unwrap();
    assert_eq!(target.method, Method::Invite);
    p.server_respond(&creq, 200);
    let ireq = p.last_server_request();
    assert_eq!(*ireq.method(), Method::Cancel);
    let inv_req = p.nodes[SERVER]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            TuEvent::Request { request, .. } if *request.method() == Method::Invite => {
                Some(request.clone())
            }
            _ => None,
        })
        .unwrap();
    p.server_respond(&inv_req, 487);
    p.drive_until(2_000);
    let codes: Vec<u16> = responses(&p, CLIENT).into_iter().map(|(_, c)| c).collect();
    assert_eq!(codes, vec![100, 200, 487]);
    assert_eq!(p.times(CLIENT, "ACK"), vec![1_000]);
}

#[test]
fn reliable_server_non_invite_terminates_at_once_and_client_k_is_zero() {
    let mut p = Pair::new();
    let ck = p.client_send(request("OPTIONS", "z9hG4bKtcp1", "TCP", ""), true);
    let req = p.last_server_request();
    p.server_respond(&req, 200);
    p.drive_until(1);
    assert!(p.nodes[SERVER].layer.is_empty(), "Timer J is zero on TCP");
    assert!(p.nodes[CLIENT].layer.is_empty(), "Timer K is zero on TCP");
    assert!(
        p.nodes[CLIENT]
            .events
            .iter()
            .any(|(t, e)| *t == 0 && matches!(e, TuEvent::Terminated { key } if *key == ck))
    );
    assert_eq!(p.times(CLIENT, "OPTIONS"), vec![0]);
}

#[test]
fn reliable_server_invite_does_not_retransmit_and_ends_on_ack() {
    let mut p = Pair::new();
    p.client_send(request("INVITE", "z9hG4bKtcp2", "TCP", ""), true);
    let req = p.last_server_request();
    p.server_respond(&req, 480);
    p.drive_until(40_000);
    assert_eq!(p.times(SERVER, "SIP/2.0 480"), vec![0]);
    assert!(p.nodes[SERVER].layer.is_empty(), "Timer I is zero on TCP");
    assert!(p.nodes[CLIENT].layer.is_empty(), "Timer D is zero on TCP");
}

#[test]
fn reliable_server_invite_timer_h_without_ack() {
    let mut p = Pair::new();
    p.drop_when(|from, line| from == CLIENT && line.starts_with("ACK"));
    p.client_send(request("INVITE", "z9hG4bKtcp3", "TCP", ""), true);
    let req = p.last_server_request();
    p.server_respond(&req, 480);
    p.drive_until(40_000);
    assert_eq!(p.times(SERVER, "SIP/2.0 480"), vec![0]);
    assert_eq!(timeouts(&p, SERVER), vec![32_000]);
}

#[test]
fn merged_request_gets_482_without_reaching_the_tu() {
    let mut p = Pair::new();
    let first = request("INVITE", "z9hG4bKfork1", "UDP", "");
    let text = String::from_utf8(first.to_bytes().to_vec())
        .unwrap()
        .replace("z9hG4bKfork1;", "z9hG4bKfork2;")
        .replace("branch=z9hG4bKfork1", "branch=z9hG4bKfork2");
    let second = Request::parse(text.as_bytes()).unwrap();
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    p.client_send(first, false);
    p.client_send(second, false);
    p.drive_until(100);
    assert_eq!(requests(&p, SERVER).len(), 1);
    assert_eq!(p.times(SERVER, "SIP/2.0 482"), vec![0]);
    assert!(responses(&p, CLIENT).iter().any(|(_, c)| *c == 482));
}

#[test]
fn transport_error_is_reported_and_ends_the_transaction() {
    let mut p = Pair::new();
    p.drop_when(|_, _| true);
    let k = p.client_send(request("BYE", "z9hG4bKte1", "UDP", ""), false);
    let now = p.now;
    p.nodes[CLIENT].layer.handle_transport_error(now, &k);
    p.drive_until(1);
    let ev = events(&p, CLIENT);
    assert!(matches!(ev[0], TuEvent::TransportError { .. }));
    assert!(matches!(ev[1], TuEvent::Terminated { .. }));
    p.drive_until(40_000);
    assert_eq!(
        p.times(CLIENT, "BYE"),
        vec![0],
        "no retransmission after the error"
    );
}

#[test]
fn duplicate_client_transaction_and_unknown_response_are_errors() {
    let mut p = Pair::new();
    let r = request("OPTIONS", "z9hG4bKdup", "UDP", "");
    p.client_send(r.clone(), false);
    let now = p.now;
    let dest = p.nodes[SERVER].addr;
    assert_eq!(
        p.nodes[CLIENT]
            .layer
            .send_request(now, r.clone(), dest, false),
        Err(parley_sip_proto::Error::TransactionExists)
    );
    let resp = request("OPTIONS", "z9hG4bKnone", "UDP", "").make_response(200, None, None);
    assert_eq!(
        p.nodes[SERVER].layer.send_response(now, resp),
        Err(parley_sip_proto::Error::NoTransaction)
    );
}

#[test]
fn received_and_rport_are_added_to_the_top_via() {
    let mut p = Pair::new();
    let text = String::from_utf8(
        request("OPTIONS", "z9hG4bKrp", "UDP", "")
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
    .replace(
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKrp",
        "Via: SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKrp;rport",
    );
    let req = Request::parse(text.as_bytes()).unwrap();
    p.client_send(req, false);
    let got = p.last_server_request();
    let top = got.top_via().unwrap();
    assert_eq!(top.received(), Some("192.0.2.1"));
    assert_eq!(top.rport(), Some(Some(5060)));
    // The response goes back to the packet's source, not to 10.0.0.7.
    p.server_respond(&got, 200);
    p.drive_until(1);
    assert_eq!(responses(&p, CLIENT).len(), 1);
}

mod lossy {
    use super::common::{CLIENT, Pair, SERVER, request};
    use parley_sip_proto::transaction::TuEvent;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever packets are lost, every transaction on both sides ends, the
        /// client TU hears exactly one final outcome, and nothing panics.
        #[test]
        fn any_loss_pattern_ends_cleanly(mask in any::<u64>(), code in prop::sample::select(vec![200u16, 486, 603]), method in prop::sample::select(vec!["INVITE", "OPTIONS"])) {
            let mut p = Pair::new();
            let mut n = 0u32;
            p.drop_when(move |_, _| {
                let drop = mask & (1 << (n % 64)) != 0;
                n += 1;
                drop
            });
            let key = p.client_send(request(method, "z9hG4bKlossy", "UDP", ""), false);
            // The server TU answers as soon as the request reaches it.
            let mut t = 0;
            let mut answered = false;
            while t < 40_000 {
                t += 100;
                p.drive_until(t);
                if answered {
                    continue;
                }
                let got = p.nodes[SERVER].events.iter().find_map(|(_, e)| match e {
                    TuEvent::Request { request, .. } => Some(request.clone()),
                    _ => None,
                });
                if let Some(req) = got {
                    p.server_respond(&req, code);
                    answered = true;
                }
            }
            p.drive_until(120_000);
            prop_assert!(p.nodes[SERVER].layer.is_empty());
            if !p.nodes[CLIENT].layer.is_empty() {
                // Only an INVITE that saw a provisional but lost every final response
                // may remain: RFC 3261 has no Timer B in Proceeding; the TU cancels it.
                prop_assert_eq!(method, "INVITE");
                prop_assert_eq!(
                    p.nodes[CLIENT].layer.state(&key),
                    Some(parley_sip_proto::transaction::TxState::Proceeding)
                );
                return Ok(());
            }
            let finals = p.nodes[CLIENT].events.iter().filter(|(_, e)| match e {
                TuEvent::Response { response, .. } => response.code() >= 200,
                TuEvent::Timeout { .. } => true,
                _ => false,
            }).count();
            // A 2xx may be passed up more than once (retransmissions in Accepted).
            if code == 200 && method == "INVITE" {
                prop_assert!(finals >= 1);
            } else {
                prop_assert_eq!(finals, 1);
            }
        }
    }
}
