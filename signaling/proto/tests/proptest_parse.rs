#![allow(clippy::unwrap_used)]
//! The parser and the stream framer never panic, whatever the input.

use parley_sip_proto::message::{frame, parse};
use proptest::prelude::*;

const SEED: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 3\r\n\r\nabc";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes, 65_535);
        let _ = frame(&bytes, 65_535);
    }

    #[test]
    fn mutated_valid_message_never_panics(
        edits in proptest::collection::vec((0usize..SEED.len(), any::<u8>()), 0..8),
        cut in 0usize..=SEED.len(),
    ) {
        let mut m = SEED.to_vec();
        for (i, b) in edits {
            m[i] = b;
        }
        m.truncate(cut);
        let _ = parse(&m, 65_535);
        let _ = frame(&m, 65_535);
    }

    #[test]
    fn printable_headers_never_panic(s in "[ -~\r\n]{0,400}") {
        let mut m = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        m.extend_from_slice(s.as_bytes());
        m.extend_from_slice(b"\r\n\r\n");
        let _ = parse(&m, 65_535);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn auth_headers_never_panic(s in "\\PC{0,300}") {
        let _ = parley_sip_proto::auth::DigestCredentials::parse(&s);
        let _ = parley_sip_proto::auth::DigestChallenge::parse(&s);
        let _ = parley_sip_proto::message::NameAddr::parse(&s);
        let _ = parley_sip_proto::message::Via::parse(&s);
    }

    #[test]
    fn sdp_offers_never_panic_the_answerer(lines in proptest::collection::vec("[a-z]=[ -~]{0,40}", 0..20)) {
        let body = lines.join("\r\n");
        if let Ok(offer) = parley_sip_proto::offer_answer::parse_sdp(body.as_bytes()) {
            let caps = parley_sip_proto::offer_answer::LocalCapabilities::new(
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);
            let _ = parley_sip_proto::offer_answer::answer(&offer, &caps);
        }
    }

    #[test]
    fn digest_nonces_never_panic(s in "[0-9a-fA-F]{0,80}") {
        let issuer = parley_sip_proto::auth::NonceIssuer::new(b"k", std::time::Duration::from_secs(60));
        let _ = issuer.check(&s, std::time::Duration::from_secs(1_000));
    }
}

fn sdp_seed() -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sdp/sipp_pcma_dtmf.sdp");
    String::from_utf8(std::fs::read(p).unwrap())
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mutated_sdp_offers_never_panic(edits in proptest::collection::vec((0usize..200, any::<u8>()), 0..6)) {
        let mut m = sdp_seed();
        for (i, b) in edits {
            let i = i % m.len();
            m[i] = b;
        }
        if let Ok(offer) = parley_sip_proto::offer_answer::parse_sdp(&m) {
            let caps = parley_sip_proto::offer_answer::LocalCapabilities::new(
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);
            let _ = parley_sip_proto::offer_answer::answer(&offer, &caps);
            let _ = parley_sip_proto::offer_answer::read_answer(&offer, &caps);
        }
    }
}
