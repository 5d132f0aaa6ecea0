//! RTP packet parsing (`rtp::RtpPacket::parse`) and the writer.
//!
//! Properties: parsing never panics; every accessor stays within the packet; the
//! header, CSRCs, extension and payload tile the packet exactly; writing the
//! parsed fields back with `RtpHeader::write` gives the same bytes (padding
//! content aside, which the writer zeroes) and parses to the same view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_media_core::rtp::{RtpHeader, RtpPacket, extend_seq};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    assert_eq!(p.version(), 2);
    assert!(p.payload_type() <= 127);
    let ext_len = p.extension().map_or(0, |e| 4 + e.data.len());
    assert_eq!(p.header_len(), 12 + 4 * p.csrc_count() + ext_len);
    assert_eq!(
        p.header_len() + p.payload().len() + p.padding_len(),
        data.len(),
        "header, payload and padding must tile the packet"
    );
    assert_eq!(p.has_padding(), p.padding_len() > 0);
    assert_eq!(p.as_bytes(), data);
    let csrcs: Vec<u32> = p.csrcs().collect();
    assert_eq!(csrcs.len(), p.csrc_count());
    for (i, c) in csrcs.iter().enumerate() {
        assert_eq!(p.csrc(i), Some(*c));
    }
    assert_eq!(p.csrc(csrcs.len()), None);
    if let Some(ext) = p.extension() {
        assert_eq!(ext.data.len() % 4, 0);
        let mut total = 0;
        for (_, d) in ext.elements() {
            total += d.len();
        }
        assert!(total <= ext.data.len());
    }
    let _ = extend_seq(u64::from(p.sequence()) << 3, p.sequence());
    assert_eq!(
        extend_seq(65_536 * 5 + u64::from(p.sequence()), p.sequence()) % 65_536,
        u64::from(p.sequence())
    );

    // Write it back. The padding count must fit the writer's u8.
    let Ok(padding) = u8::try_from(p.padding_len()) else {
        panic!("padding length {} above 255", p.padding_len());
    };
    let header = RtpHeader {
        marker: p.marker(),
        payload_type: p.payload_type(),
        sequence: p.sequence(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs: &csrcs,
        extension: p.extension(),
        padding,
    };
    let mut out = vec![0u8; data.len()];
    let n = header
        .write(p.payload(), &mut out)
        .expect("writing a parsed packet back");
    assert_eq!(n, data.len());
    let body = data.len() - p.padding_len();
    assert_eq!(&out[..body], &data[..body], "written header/payload differ");
    assert_eq!(out[n - 1..], data[n - 1..], "padding count differs");
    let q = RtpPacket::parse(&out).expect("written packet parses");
    assert_eq!(q.payload(), p.payload());
    assert_eq!(q.extension(), p.extension());
    assert_eq!(q.header_len(), p.header_len());
    assert_eq!(q.padding_len(), p.padding_len());
});
