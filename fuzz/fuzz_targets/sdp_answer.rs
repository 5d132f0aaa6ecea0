//! SDP parsing and the RFC 3264 answerer (`offer_answer::answer`), plus reading an
//! answer to our own offer (`read_answer`).
//!
//! Properties: parsing and answering never panic; a parsed offer prints to SDP
//! that parses and prints back the same; an answer has exactly one m-line per offered m-line
//! (RFC 3264 §6) and one negotiation result per m-line; the printed answer parses,
//! and reading it back accepts exactly the m-lines the answerer accepted, with the
//! same codec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::offer_answer::{
    Direction, LocalCapabilities, answer, parse_sdp, read_answer, remote_codecs, sdp_to_bytes,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn capabilities() -> [LocalCapabilities; 2] {
    let plain = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40_000);
    let mut hold = LocalCapabilities::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 40_002);
    hold.direction = Direction::SendOnly;
    hold.protos.push("RTP/SAVP".to_owned());
    [plain, hold]
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
    }
    for caps in capabilities() {
        let _ = read_answer(&offer, &caps);
        let Ok(ans) = answer(&offer, &caps) else {
            continue;
        };
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
