#![allow(clippy::unwrap_used)]
//! Known gaps of rsip 0.4, pinned as tests so that we notice when they change.
//! They are the reasons this crate keeps its own message model and converts to
//! rsip only at the edge (`to_rsip` / `from_rsip`).

use parley_sip_proto::message::{SipMessage, parse};
use std::path::Path;

/// RFC 4475 valid messages that rsip cannot parse even after our normalisation
/// (unfolding, compact-name expansion), with the reason.
const RSIP_CANNOT_REPRESENT: &[(&str, &str)] = &[
    (
        "esc02",
        "extension method RE%47IST%45R: rsip::Method is a closed enum",
    ),
    ("intmeth", "extension method with unusual token characters"),
    ("semiuri", "';' in the user part of the Request-URI"),
    ("unkscm", "non-SIP Request-URI scheme"),
];

/// Messages rsip rejects on its own but accepts once we have normalised them.
const RSIP_NEEDS_NORMALISATION: &[&str] = &["esc01", "longreq", "wsinv"];

#[test]
fn rfc4475_valid_messages_through_rsip() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475/valid");
    let mut names: Vec<_> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut cannot = Vec::new();
    let mut needs_norm = Vec::new();
    for p in names {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&p).unwrap();
        let Ok(msg) = parse(&bytes, 65_535) else {
            continue;
        };
        let ours = match &msg {
            SipMessage::Request(r) => r.to_rsip().is_ok(),
            SipMessage::Response(r) => r.to_rsip().is_ok(),
        };
        let direct = rsip::SipMessage::try_from(bytes.as_slice()).is_ok();
        if !ours {
            cannot.push(name);
        } else if !direct {
            needs_norm.push(name);
        }
    }
    let expected: Vec<&str> = RSIP_CANNOT_REPRESENT.iter().map(|(n, _)| *n).collect();
    assert_eq!(cannot, expected);
    assert_eq!(needs_norm, RSIP_NEEDS_NORMALISATION);
}

#[test]
fn rsip_accepts_lower_case_methods_and_ignores_compact_names() {
    let m = rsip::Request::try_from(
        "invite sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\ni: x\r\n\r\n",
    )
    .unwrap();
    // RFC 3261 §7.1: methods are case-sensitive; rsip maps "invite" to INVITE.
    assert_eq!(m.method, rsip::Method::Invite);
    // Compact forms stay unknown headers, so rsip's typed accessors miss them.
    assert!(matches!(m.headers.iter().next(), Some(rsip::Header::Other(n, _)) if n == "v"));
    // Our parser rejects the lower-case method (CSeq mismatch aside, it is an
    // extension method "invite", not INVITE).
    assert!(parse(b"invite sip:a@b SIP/2.0\r\n\r\n", 100).is_err());
}

#[test]
fn rsip_replaces_reason_phrases_and_mangles_binary_bodies() {
    let r =
        rsip::Response::try_from("SIP/2.0 183 Early Media\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(r.status_code.to_string(), "183 SessionProgress");
    let q = rsip::Request::try_from(
        b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\n\xff\xfe".as_slice(),
    )
    .unwrap();
    assert_eq!(q.body, vec![0xff, 0xfe]);
    // Printing goes through from_utf8_lossy: the bytes become U+FFFD.
    assert!(q.to_string().ends_with("\u{fffd}\u{fffd}"));
}
