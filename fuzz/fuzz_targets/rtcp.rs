//! RTCP compound packet parsing, strict (`RtcpCompound::parse`, RFC 3550 §6.1)
//! and lenient (`parse_lenient`, RFC 5506 reduced size), and the writer.
//!
//! Properties: parsing never panics; whatever the strict parser accepts the
//! lenient one accepts; iterating a validated compound visits packets that
//! exactly cover it (all its sub-iterators terminate within the packet); SR, RR,
//! BYE and single-CNAME SDES packets rebuilt with `RtcpWriter` parse back to the
//! same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_media_core::rtcp::{
    ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SDES_CNAME, SdesItem,
};

fuzz_target!(|data: &[u8]| {
    let strict = RtcpCompound::parse(data);
    let lenient = RtcpCompound::parse_lenient(data);
    if strict.is_ok() {
        assert!(lenient.is_ok(), "strict accepts what lenient rejects");
    }
    let Ok(compound) = lenient else {
        return;
    };
    if let Ok(s) = strict {
        let first = s.iter().next().map(|p| p.packet_type());
        assert!(
            matches!(first, Some(200) | Some(201)),
            "strict compound starts with {first:?}"
        );
    }

    let packets: Vec<RtcpPacket<'_>> = compound.iter().collect();
    assert!(!packets.is_empty());
    assert!(packets.len() <= data.len() / 4);

    let mut buf = vec![0u8; 4 * data.len() + 1024];
    let mut w = RtcpWriter::new(&mut buf);
    // What each rewritten packet must parse back to.
    let mut expected: Vec<Expected<'_>> = Vec::new();
    for p in &packets {
        match p {
            RtcpPacket::SenderReport(sr) => {
                let blocks: Vec<ReportBlock> = sr.blocks().collect();
                assert!(blocks.len() <= 31);
                w.sender_report(sr.ssrc, &sr.info, &blocks)
                    .expect("rewrite SR");
                expected.push(Expected::Same(*p));
            }
            RtcpPacket::ReceiverReport(rr) => {
                let blocks: Vec<ReportBlock> = rr.blocks().collect();
                assert!(blocks.len() <= 31);
                w.receiver_report(rr.ssrc, &blocks).expect("rewrite RR");
                expected.push(Expected::Same(*p));
            }
            RtcpPacket::Bye(bye) => {
                let ssrcs: Vec<u32> = bye.ssrcs().collect();
                w.bye(&ssrcs, bye.reason).expect("rewrite BYE");
                expected.push(Expected::Same(*p));
            }
            RtcpPacket::Sdes(sdes) => {
                let chunks: Vec<_> = sdes.chunks().collect();
                let mut total_items = 0;
                for c in &chunks {
                    for item in c.items() {
                        assert_ne!(item.kind, 0);
                        total_items += 1;
                    }
                    let _ = sdes.cname(c.ssrc);
                }
                if let [c] = chunks.as_slice()
                    && total_items == 1
                    && let Some(cname) = c.cname()
                {
                    w.sdes_cname(c.ssrc, cname).expect("rewrite SDES");
                    expected.push(Expected::Cname(c.ssrc, cname));
                }
            }
            _ => {}
        }
    }
    let n = w.finish();
    if n == 0 {
        return;
    }
    let again = RtcpCompound::parse_lenient(&buf[..n]).expect("rebuilt compound parses");
    let got: Vec<RtcpPacket<'_>> = again.iter().collect();
    assert_eq!(got.len(), expected.len(), "rebuilt packet count");
    for (q, want) in got.iter().zip(&expected) {
        match (want, q) {
            (Expected::Same(p), q) => assert_eq!(q, p, "rebuilt packet differs"),
            (Expected::Cname(ssrc, cname), RtcpPacket::Sdes(s)) => {
                let items: Vec<SdesItem<'_>> = s.chunks().flat_map(|c| c.items()).collect();
                assert_eq!(
                    items,
                    [SdesItem {
                        kind: SDES_CNAME,
                        value: cname
                    }]
                );
                assert_eq!(s.cname(*ssrc), Some(*cname));
            }
            (want, q) => panic!("rebuilt {q:?}, expected {want:?}"),
        }
    }
});

#[derive(Debug)]
enum Expected<'a> {
    Same(RtcpPacket<'a>),
    Cname(u32, &'a [u8]),
}
