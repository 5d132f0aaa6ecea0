#![allow(clippy::unwrap_used)]
//! SDP offer/answer, data-driven over offers from sipp, Chromium and SIP phones.

use parley_sip_proto::Error;
use parley_sip_proto::offer_answer::{
    Direction, LocalCapabilities, answer, build_offer, parse_sdp, read_answer, remote_codecs,
    sdp_to_bytes,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

fn load(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sdp")
        .join(name);
    String::from_utf8(std::fs::read(p).unwrap())
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes()
}

fn local() -> LocalCapabilities {
    LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 40000)
}

/// What we expect for the first accepted m-line.
struct Expect {
    file: &'static str,
    webrtc: bool,
    /// (payload type, codec name) or None for "488 no common codec".
    codec: Option<(u8, &'static str)>,
    te: Option<u8>,
    direction: Direction,
    remote: Option<&'static str>,
    /// Ports of the answer's m-lines, in order.
    ports: &'static [isize],
}

const CASES: &[Expect] = &[
    Expect {
        file: "sipp_pcmu.sdp",
        webrtc: false,
        codec: Some((0, "PCMU")),
        te: None,
        direction: Direction::SendRecv,
        remote: Some("127.0.0.1:6000"),
        ports: &[40000],
    },
    Expect {
        file: "sipp_pcma_dtmf.sdp",
        webrtc: false,
        codec: Some((8, "PCMA")),
        te: Some(101),
        direction: Direction::SendRecv,
        remote: Some("192.0.2.10:6000"),
        ports: &[40000],
    },
    Expect {
        file: "chromium.sdp",
        webrtc: false,
        codec: None,
        te: None,
        direction: Direction::Inactive,
        remote: None,
        ports: &[],
    },
    Expect {
        file: "chromium.sdp",
        webrtc: true,
        codec: Some((111, "opus")),
        te: Some(110),
        direction: Direction::SendRecv,
        remote: None,
        ports: &[40000, 0],
    },
    Expect {
        file: "hold_sendonly.sdp",
        webrtc: false,
        codec: Some((0, "PCMU")),
        te: Some(101),
        direction: Direction::RecvOnly,
        remote: Some("192.0.2.20:49170"),
        ports: &[40000],
    },
    Expect {
        file: "hold_c0.sdp",
        webrtc: false,
        codec: Some((0, "PCMU")),
        te: None,
        direction: Direction::RecvOnly,
        remote: None,
        ports: &[40000],
    },
    Expect {
        file: "recvonly_session_level.sdp",
        webrtc: false,
        codec: Some((8, "PCMA")),
        te: None,
        direction: Direction::SendOnly,
        remote: Some("192.0.2.20:49170"),
        ports: &[40000],
    },
    Expect {
        file: "inactive.sdp",
        webrtc: false,
        codec: Some((0, "PCMU")),
        te: None,
        direction: Direction::Inactive,
        remote: Some("192.0.2.20:49170"),
        ports: &[40000],
    },
    Expect {
        file: "no_common.sdp",
        webrtc: false,
        codec: None,
        te: None,
        direction: Direction::Inactive,
        remote: None,
        ports: &[],
    },
    Expect {
        file: "offerer_order.sdp",
        webrtc: false,
        codec: Some((8, "PCMA")),
        te: None,
        direction: Direction::SendRecv,
        remote: Some("192.0.2.31:20000"),
        ports: &[40000],
    },
    Expect {
        file: "video_first.sdp",
        webrtc: false,
        codec: Some((0, "PCMU")),
        te: None,
        direction: Direction::SendRecv,
        remote: Some("192.0.2.32:30002"),
        ports: &[0, 40000, 0],
    },
    Expect {
        file: "opus_dynamic.sdp",
        webrtc: false,
        codec: Some((96, "opus")),
        te: Some(101),
        direction: Direction::SendRecv,
        remote: Some("192.0.2.33:5004"),
        ports: &[40000],
    },
];

#[test]
fn answers_match_expectations() {
    for c in CASES {
        let offer = parse_sdp(&load(c.file)).unwrap_or_else(|e| panic!("{}: {e}", c.file));
        let mut caps = local();
        if c.webrtc {
            caps.protos.push("UDP/TLS/RTP/SAVPF".into());
        }
        let result = answer(&offer, &caps);
        let Some((pt, name)) = c.codec else {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{}: expected no common codec", c.file));
            assert_eq!(err, Error::NoCommonCodec, "{}", c.file);
            assert_eq!(err.status_code(), Some(488));
            continue;
        };
        let ans = result.unwrap_or_else(|e| panic!("{}: {e}", c.file));
        let m = ans.media.iter().flatten().next().unwrap();
        assert_eq!(
            (m.codec.payload_type, m.codec.name.as_str()),
            (pt, name),
            "{}",
            c.file
        );
        assert_eq!(m.telephone_event, c.te, "{}", c.file);
        assert_eq!(m.direction, c.direction, "{}", c.file);
        assert_eq!(
            m.remote.map(|r| r.to_string()),
            c.remote.map(str::to_owned),
            "{}",
            c.file
        );
        let ports: Vec<isize> = ans
            .sdp
            .media_descriptions
            .iter()
            .map(|m| m.media_name.port.value)
            .collect();
        assert_eq!(ports, c.ports, "{}", c.file);
        // m-line order and media types are kept.
        let kinds: Vec<&str> = ans
            .sdp
            .media_descriptions
            .iter()
            .map(|m| m.media_name.media.as_str())
            .collect();
        let offered: Vec<&str> = offer
            .media_descriptions
            .iter()
            .map(|m| m.media_name.media.as_str())
            .collect();
        assert_eq!(kinds, offered, "{}", c.file);

        // The answer prints and parses back, and the offerer reads the same choice.
        let text = sdp_to_bytes(&ans.sdp);
        let back = parse_sdp(&text).unwrap();
        let accepted = &back.media_descriptions[m.index];
        let codecs = remote_codecs(accepted);
        assert_eq!(codecs[0].payload_type, pt, "{}", c.file);
        assert!(
            accepted.attribute(c.direction.as_str()).is_some(),
            "{}",
            c.file
        );
        let read = read_answer(&back, &caps).unwrap();
        assert_eq!(read[m.index].as_ref().unwrap().codec.payload_type, pt);
    }
}

#[test]
fn our_offer_round_trips_and_is_answered_by_a_pcma_only_peer() {
    let caps = local();
    let offer = build_offer(&caps);
    let text = sdp_to_bytes(&offer);
    let s = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        s.contains("m=audio 40000 RTP/AVP 0 8 111 101 110\r\n"),
        "{s}"
    );
    assert!(s.contains("a=rtpmap:111 opus/48000/2\r\n"), "{s}");
    assert!(s.contains("c=IN IP4 203.0.113.5\r\n"), "{s}");
    let parsed = parse_sdp(&text).unwrap();
    let codecs = remote_codecs(&parsed.media_descriptions[0]);
    assert_eq!(codecs.len(), 5);

    let mut peer = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 5000);
    peer.codecs
        .retain(|c| c.name == "PCMA" || c.name == "telephone-event");
    let ans = answer(&parsed, &peer).unwrap();
    let m = ans.media[0].as_ref().unwrap();
    assert_eq!(m.codec.name, "PCMA");
    assert_eq!(m.telephone_event, Some(101));
    let back = parse_sdp(&sdp_to_bytes(&ans.sdp)).unwrap();
    let read = read_answer(&back, &caps).unwrap();
    let r = read[0].as_ref().unwrap();
    assert_eq!(r.codec.payload_type, 8);
    assert_eq!(r.remote.unwrap().to_string(), "198.51.100.7:5000");
}

#[test]
fn local_hold_restricts_the_answer() {
    let offer = parse_sdp(&load("sipp_pcmu.sdp")).unwrap();
    let mut caps = local();
    caps.direction = Direction::SendOnly;
    let ans = answer(&offer, &caps).unwrap();
    assert_eq!(
        ans.media[0].as_ref().unwrap().direction,
        Direction::SendOnly
    );
}

#[test]
fn garbage_sdp_is_a_structured_error() {
    assert!(matches!(parse_sdp(b"hello"), Err(Error::InvalidSdp { .. })));
    assert!(matches!(
        parse_sdp(b"v=0\r\nm=audio x RTP/AVP 0\r\n"),
        Err(Error::InvalidSdp { .. })
    ));
}
