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

// ---- SDES-SRTP (RFC 4568) ----

mod sdes {
    use super::*;
    use parley_sip_proto::sdes::{
        CryptoError, KeySalt, LocalSrtp, SrtpPolicy, SrtpSuite, parse_crypto,
    };

    /// baresip 1.0 with `mediaenc srtp-mand`: RTP/SAVP, two suites (the 32-bit one first).
    const BARESIP_SAVP: &str = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
        m=audio 10000 RTP/SAVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n\
        a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk\n\
        a=sendrecv\n";
    const PLAIN: &str = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
        m=audio 10000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

    fn parse(s: &str) -> sdp::description::session::SessionDescription {
        parse_sdp(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    fn caps(policy: SrtpPolicy) -> LocalCapabilities {
        let mut c = local();
        c.srtp = Some(LocalSrtp {
            policy,
            key: KeySalt([9; 30]),
        });
        c
    }

    #[test]
    fn savp_offer_is_answered_with_the_first_crypto_line_and_our_key() {
        let a = answer(&parse(BARESIP_SAVP), &caps(SrtpPolicy::Optional)).unwrap();
        let neg = a.media[0].as_ref().unwrap();
        let srtp = neg.srtp.unwrap();
        assert_eq!(srtp.suite, SrtpSuite::AesCm128HmacSha1_32);
        assert_eq!(srtp.local, KeySalt([9; 30]));
        assert_eq!(&srtp.remote.0[..4], b"YS__");
        let text = String::from_utf8(sdp_to_bytes(&a.sdp).to_vec()).unwrap();
        assert!(text.contains("m=audio 40000 RTP/SAVP 0 101"), "{text}");
        let crypto: Vec<&str> = text.lines().filter(|l| l.starts_with("a=crypto")).collect();
        assert_eq!(crypto.len(), 1, "{text}");
        let ours = parse_crypto(crypto[0].trim_start_matches("a=crypto:")).unwrap();
        assert_eq!((ours.tag, ours.suite), (1, SrtpSuite::AesCm128HmacSha1_32));
        assert_eq!(ours.key, KeySalt([9; 30]));
    }

    #[test]
    fn policy_decides_plain_and_secure_offers() {
        // Required: a plain offer is 488 with its own error.
        assert_eq!(
            answer(&parse(PLAIN), &caps(SrtpPolicy::Required)).err(),
            Some(Error::SrtpRequired)
        );
        assert_eq!(Error::SrtpRequired.status_code(), Some(488));
        // Optional: plain is answered plain.
        let a = answer(&parse(PLAIN), &caps(SrtpPolicy::Optional)).unwrap();
        assert!(a.media[0].as_ref().unwrap().srtp.is_none());
        // Off (or no SRTP configured): RTP/SAVP is declined.
        assert_eq!(
            answer(&parse(BARESIP_SAVP), &caps(SrtpPolicy::Off)).err(),
            Some(Error::NoCommonCodec)
        );
        assert_eq!(
            answer(&parse(BARESIP_SAVP), &local()).err(),
            Some(Error::NoCommonCodec)
        );
    }

    #[test]
    fn unusable_crypto_lines_are_a_488_saying_why_never_a_panic() {
        let one = |line: &str| {
            format!(
                "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                 m=audio 10000 RTP/SAVP 0\na=rtpmap:0 PCMU/8000\n{line}"
            )
        };
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let cases: Vec<(String, Error)> = vec![
            (
                one(""),
                Error::Crypto(CryptoError::Malformed {
                    what: "no a=crypto line",
                }),
            ),
            (
                one(&format!(
                    "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{key}\n"
                )),
                Error::Crypto(CryptoError::UnsupportedSuite {
                    suite: "AES_256_CM_HMAC_SHA1_80".into(),
                }),
            ),
            (
                one(&format!(
                    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4\n"
                )),
                Error::Crypto(CryptoError::MkiUnsupported),
            ),
            (
                one("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\n"),
                Error::Crypto(CryptoError::BadKey),
            ),
            (
                one("a=crypto:\n"),
                Error::Crypto(CryptoError::Malformed { what: "tag" }),
            ),
        ];
        for (offer, want) in cases {
            let got = answer(&parse(&offer), &caps(SrtpPolicy::Required)).err();
            assert_eq!(got.as_ref(), Some(&want), "{offer}");
            assert_eq!(want.status_code(), Some(488));
        }
        // A bad line before a good one: the good one is used.
        let offer = one(&format!(
            "a=crypto:1 F8_128_HMAC_SHA1_80 inline:{key}\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key}\n"
        ));
        let a = answer(&parse(&offer), &caps(SrtpPolicy::Required)).unwrap();
        assert_eq!(
            a.media[0].as_ref().unwrap().srtp.unwrap().suite,
            SrtpSuite::AesCm128HmacSha1_80
        );
    }

    #[test]
    fn required_offers_savp_and_reads_the_peers_key_from_its_answer() {
        let ours = caps(SrtpPolicy::Required);
        let offer = build_offer(&ours);
        let text = String::from_utf8(sdp_to_bytes(&offer).to_vec()).unwrap();
        assert!(text.contains("RTP/SAVP"), "{text}");
        assert_eq!(text.matches("a=crypto:").count(), 2, "{text}");
        // Optional offers stay plain, without crypto lines (best-effort SRTP in
        // RTP/AVP confuses peers that do not know it).
        let plain =
            String::from_utf8(sdp_to_bytes(&build_offer(&caps(SrtpPolicy::Optional))).to_vec())
                .unwrap();
        assert!(
            plain.contains("RTP/AVP") && !plain.contains("crypto"),
            "{plain}"
        );

        // The peer answers our offer as Parley would.
        let mut peer = caps(SrtpPolicy::Optional);
        peer.srtp = Some(LocalSrtp {
            policy: SrtpPolicy::Optional,
            key: KeySalt([3; 30]),
        });
        let ans = answer(&parse_sdp(&sdp_to_bytes(&offer)).unwrap(), &peer).unwrap();
        let read = read_answer(&parse_sdp(&sdp_to_bytes(&ans.sdp)).unwrap(), &ours).unwrap();
        let srtp = read[0].as_ref().unwrap().srtp.unwrap();
        assert_eq!(srtp.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(
            (srtp.local, srtp.remote),
            (KeySalt([9; 30]), KeySalt([3; 30]))
        );
        // A plain answer to a required offer is refused.
        assert_eq!(
            read_answer(&parse(PLAIN), &ours).err(),
            Some(Error::SrtpRequired)
        );
    }
}
