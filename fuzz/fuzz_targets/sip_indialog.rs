//! The in-dialog header and body parsers: RFC 4028 `Session-Expires` / `Min-SE` and
//! the UAS decision on them, and DTMF INFO bodies (`application/dtmf-relay`,
//! `application/dtmf`).
//!
//! Input: first byte selects the content type (bit 0: dtmf-relay or dtmf), the rest
//! is split at the first `\n` into a header value and a body.
//!
//! Properties: nothing panics; a parsed `Session-Expires` prints back to the same
//! value; an accepted session interval is never below our Min-SE nor (without the
//! request's Min-SE) below 90 s, and `TooSmall` only for intervals below our Min-SE;
//! INFO digits are DTMF characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::info::parse_dtmf;
use parley_sip_proto::message::Headers;
use parley_sip_proto::session_timer::{
    SessionExpires, SessionTimerConfig, UasDecision, min_se, uas_decide,
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ct = if sel & 1 == 1 {
        "application/dtmf-relay"
    } else {
        "application/dtmf"
    };
    let (value, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    if let Some(d) = parse_dtmf(ct, body) {
        assert!("0123456789*#ABCD".contains(d.digit), "digit {:?}", d.digit);
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    if let Some(se) = SessionExpires::parse(value) {
        assert_eq!(SessionExpires::parse(&se.to_header()), Some(se));
    }
    let mut h = Headers::new();
    h.push("Session-Expires", value);
    if sel & 2 == 2 {
        h.push("Supported", "timer");
    }
    if sel & 4 == 4 {
        h.push("Min-SE", value);
    }
    let cfg = SessionTimerConfig::default();
    match uas_decide(&h, &cfg) {
        UasDecision::TooSmall { min_se: m } => {
            assert_eq!(m, cfg.min_se);
            let se = SessionExpires::parse(value).expect("TooSmall needs a value");
            assert!(se.delta < cfg.min_se);
        }
        UasDecision::Accept(n) => {
            assert!(n.session_expires.delta >= cfg.min_se);
            if let Some(their) = min_se(&h) {
                let asked = SessionExpires::parse(value).map_or(0, |s| s.delta);
                assert!(n.session_expires.delta >= their.min(asked));
            }
            assert_eq!(n.we_refresh, n.session_expires.refresher.map(|r| r.as_str()) == Some("uas"));
        }
        UasDecision::None => assert!(sel & 2 == 0),
    }
});
