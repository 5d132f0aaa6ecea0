//! SDP parsing and the RFC 3264 answerer (`offer_answer::answer`), plus reading an
//! answer to our own offer (`read_answer`).
//!
//! Properties: parsing and answering never panic; a parsed offer prints to SDP
//! that parses and prints back the same; an answer has exactly one m-line per offered m-line
//! (RFC 3264 §6) and one negotiation result per m-line; the printed answer parses,
//! and reading it back accepts exactly the m-lines the answerer accepted, with the
//! same codec. SDES (RFC 4568): every `a=crypto` value parses or is refused without
//! panicking and what parses prints back the same; with SRTP on (optional or
//! required) an accepted `RTP/SAVP` m-line has keys, its answer carries exactly one
//! `a=crypto` that parses to the offered tag and suite and our key, and a required
//! policy never accepts a plain m-line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::offer_answer::{
    Direction, LocalCapabilities, answer, check_srtp, parse_sdp, read_answer, remote_codecs,
    sdp_to_bytes,
};
use parley_sip_proto::sdes::{KeySalt, LocalSrtp, SrtpPolicy, parse_crypto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn capabilities() -> [LocalCapabilities; 2] {
    let plain = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40_000);
    let mut hold = LocalCapabilities::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 40_002);
    hold.direction = Direction::SendOnly;
    hold.srtp = Some(LocalSrtp {
        policy: SrtpPolicy::Optional,
        key: KeySalt([0x5a; 30]),
    });
    [plain, hold]
}

const KEY: KeySalt = KeySalt([0x5a; 30]);

/// The SDES properties of one answer (see the module docs).
fn check_sdes(
    offer: &sdp::description::session::SessionDescription,
    caps: &LocalCapabilities,
    ans: &parley_sip_proto::offer_answer::Answer,
) {
    for (i, neg) in ans.media.iter().enumerate() {
        let Some(neg) = neg else { continue };
        let offered = &offer.media_descriptions[i];
        let savp = offered.media_name.protos.join("/").eq_ignore_ascii_case("RTP/SAVP");
        let ours = &ans.sdp.media_descriptions[i];
        let lines: Vec<_> = ours.attributes.iter().filter(|a| a.key == "crypto").collect();
        match (savp, neg.srtp) {
            (true, Some(keys)) => {
                assert_eq!(keys.local, KEY, "m-line {i}: our key");
                assert_eq!(lines.len(), 1, "m-line {i}: one a=crypto in the answer");
                let a = parse_crypto(lines[0].value.as_deref().unwrap_or_default())
                    .expect("our a=crypto parses");
                assert_eq!((a.suite, a.key), (keys.suite, KEY), "m-line {i}");
            }
            (false, None) => assert!(lines.is_empty(), "m-line {i}: crypto on a plain answer"),
            (s, k) => panic!("m-line {i}: RTP/SAVP {s} but keys {}", k.is_some()),
        }
        if caps.srtp.is_some_and(|s| s.policy == SrtpPolicy::Required) {
            assert!(savp, "m-line {i}: required SRTP accepted plain RTP");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = parse_sdp(data) else {
        return;
    };
    let printed = sdp_to_bytes(&offer);
    let again = parse_sdp(&printed).unwrap_or_else(|e| {
        panic!(
            "printed SDP does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        )
    });
    // SessionDescription has no PartialEq: compare printed forms (a fixpoint).
    assert_eq!(
        sdp_to_bytes(&again),
        printed,
        "SDP parse/print/parse round trip\n{}",
        String::from_utf8_lossy(&printed)
    );

    for md in &offer.media_descriptions {
        let _ = remote_codecs(md);
        for a in md.attributes.iter().filter(|a| a.key == "crypto") {
            if let Ok(c) = parse_crypto(a.value.as_deref().unwrap_or_default()) {
                assert_eq!(parse_crypto(&c.to_value()), Ok(c), "a=crypto print/parse");
            }
        }
    }
    for policy in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
        let _ = check_srtp(Some(&offer), policy);
        let mut caps = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40_000);
        caps.srtp = Some(LocalSrtp { policy, key: KEY });
        if let Ok(ans) = answer(&offer, &caps) {
            check_sdes(&offer, &caps, &ans);
            if policy == SrtpPolicy::Required {
                assert!(check_srtp(Some(&offer), policy).is_ok(), "answered but check refuses");
            }
        }
    }
    for caps in capabilities() {
        let _ = read_answer(&offer, &caps);
        let Ok(ans) = answer(&offer, &caps) else {
            continue;
        };
        check_sdes(&offer, &caps, &ans);
        let n = offer.media_descriptions.len();
        assert_eq!(ans.sdp.media_descriptions.len(), n, "answer m-line count");
        assert_eq!(ans.media.len(), n, "negotiation results per m-line");
        let bytes = sdp_to_bytes(&ans.sdp);
        let reparsed = parse_sdp(&bytes).unwrap_or_else(|e| {
            panic!(
                "our answer does not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        if caps.srtp.is_some() {
            // Reading back an SDES answer needs our own offer's tags; skip.
            continue;
        }
        let read = read_answer(&reparsed, &caps).unwrap_or_else(|e| {
            panic!(
                "our answer is not readable: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(read.len(), n);
        for (i, (ours, theirs)) in ans.media.iter().zip(&read).enumerate() {
            match (ours, theirs) {
                (None, None) => {}
                (Some(a), Some(b)) => assert_eq!(
                    a.codec.payload_type,
                    b.codec.payload_type,
                    "m-line {i}: codec read back differs\n{}",
                    String::from_utf8_lossy(&bytes)
                ),
                _ => panic!(
                    "m-line {i}: accepted {} by the answerer but {} when read back\n{}",
                    ours.is_some(),
                    theirs.is_some(),
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
    }
});
