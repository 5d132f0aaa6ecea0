//! SIP message parsing (UDP datagrams and frames cut by `frame`).
//!
//! Properties: parsing never panics; a parsed message prints to bytes that parse
//! back to an equal message; the typed header views (Via, From/To, CSeq, Contact,
//! Route, digest headers) never panic and those that parse print back to an equal
//! value; a request's generated response parses; the transaction layer accepts any
//! parsed message without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::message::{
    CSeq, DEFAULT_MAX_MESSAGE_SIZE, MessageExt, NameAddr, SipMessage, Via, parse,
};
use parley_sip_proto::transaction::TransactionLayer;
use std::time::{Duration, Instant};

fn typed_views(msg: &impl MessageExt) {
    if let Ok(vias) = msg.vias() {
        for via in vias {
            let printed = via.to_string();
            let again = Via::parse(&printed)
                .unwrap_or_else(|e| panic!("printed Via {printed:?} does not parse: {e}"));
            assert_eq!(again, via, "Via round trip through {printed:?}");
        }
    }
    for na in [msg.from(), msg.to()].into_iter().flatten() {
        let printed = na.to_string();
        let again = NameAddr::parse(&printed)
            .unwrap_or_else(|e| panic!("printed name-addr {printed:?} does not parse: {e}"));
        assert_eq!(again, na, "name-addr round trip through {printed:?}");
    }
    if let Ok(cseq) = msg.cseq() {
        let printed = cseq.to_string();
        let again = CSeq::parse(&printed)
            .unwrap_or_else(|e| panic!("printed CSeq {printed:?} does not parse: {e}"));
        assert_eq!(again, cseq, "CSeq round trip through {printed:?}");
    }
    let _ = msg.top_via();
    let _ = msg.from_tag();
    let _ = msg.to_tag();
    let _ = msg.call_id();
    let _ = msg.contacts();
    let _ = msg.contact_star();
    let _ = msg.record_route();
    let _ = msg.route();
    let _ = msg.expires();
    let _ = msg.authorization();
    let _ = msg.proxy_authorization();
    let _ = msg.www_authenticate();
    let _ = msg.proxy_authenticate();
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = parse(data, DEFAULT_MAX_MESSAGE_SIZE) else {
        return;
    };
    let printed = msg.to_bytes();
    let again = parse(&printed, DEFAULT_MAX_MESSAGE_SIZE).unwrap_or_else(|e| {
        panic!(
            "printed message does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        )
    });
    assert_eq!(again, msg, "parse/print/parse round trip");
    assert_eq!(again.to_bytes(), printed, "printing is not stable");

    match &msg {
        SipMessage::Request(r) => {
            typed_views(r);
            let _ = r.max_forwards();
            let _ = r.to_rsip();
            for code in [100, 180, 200, 486] {
                let resp = r.make_response(code, None, Some("fuzz1"));
                let bytes = resp.to_bytes();
                if let Err(e) = parse(&bytes, usize::MAX) {
                    panic!(
                        "response {code} built from a parsed request does not parse: {e}\n{}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
        SipMessage::Response(r) => {
            typed_views(r);
            let _ = r.to_rsip();
        }
    }

    let now = Instant::now();
    let mut layer = TransactionLayer::default();
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 5060));
    layer.handle_incoming(now, msg, from);
    while layer.poll_output().is_some() {}
    let _ = layer.poll_timeout();
    layer.handle_timeout(now + Duration::from_secs(64));
    while layer.poll_output().is_some() {}
});
