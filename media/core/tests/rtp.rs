#![allow(clippy::unwrap_used)]
//! RTP/RTCP parsing and writing with hand-built packets; receiver statistics
//! with wrap-around, loss, jitter, probation and SSRC change; RTT and MOS.

use std::time::{Duration, Instant};

use parley_media_core::Error;
use parley_media_core::rtcp::{
    ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SenderInfo, compact_ntp,
};
use parley_media_core::rtp::{HeaderExtension, RtpHeader, RtpPacket, extend_seq};
use parley_media_core::stats::{ReceiverStats, RtpOutcome, estimate_mos, round_trip_time};
use proptest::prelude::*;

/// V=2, no P/X/CC, M=1, PT=0, seq=0x1234, ts=0xDEADBEEF, ssrc=0x01020304, payload 3 bytes.
const SIMPLE: [u8; 15] = [
    0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0xAA, 0xBB, 0xCC,
];

#[test]
fn parse_simple_packet() {
    let p = RtpPacket::parse(&SIMPLE).unwrap();
    assert_eq!(p.version(), 2);
    assert!(p.marker());
    assert_eq!(p.payload_type(), 0);
    assert_eq!(p.sequence(), 0x1234);
    assert_eq!(p.timestamp(), 0xDEAD_BEEF);
    assert_eq!(p.ssrc(), 0x0102_0304);
    assert_eq!(p.csrc_count(), 0);
    assert!(p.extension().is_none());
    assert_eq!(p.payload(), &[0xAA, 0xBB, 0xCC]);
}

#[test]
fn parse_csrc_extension_padding() {
    // P=1 X=1 CC=2, PT=8, two CSRCs, extension profile 0xBEDE with 1 word, payload 2 bytes, 2 padding bytes.
    let pkt: [u8; 12 + 8 + 8 + 2 + 2] = [
        0xB2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0xCA, 0xFE, 0xBA, 0xBE, // fixed
        0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x22, // csrcs
        0xBE, 0xDE, 0x00, 0x01, 0x10, 0xFF, 0x00, 0x00, // extension
        0x55, 0x66, // payload
        0x00, 0x02, // padding
    ];
    let p = RtpPacket::parse(&pkt).unwrap();
    assert!(p.has_padding() && p.has_extension());
    assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![0x11, 0x22]);
    assert_eq!(p.csrc(2), None);
    let ext = p.extension().unwrap();
    assert_eq!(ext.profile, 0xBEDE);
    assert_eq!(ext.data, &[0x10, 0xFF, 0, 0]);
    assert_eq!(p.payload(), &[0x55, 0x66]);
    assert_eq!(p.padding_len(), 2);
    assert_eq!(p.header_len(), 28);

    // Writer produces the identical bytes.
    let mut out = [0u8; 64];
    let n = RtpHeader {
        marker: false,
        payload_type: 8,
        sequence: 1,
        timestamp: 0xA0,
        ssrc: 0xCAFE_BABE,
        csrcs: &[0x11, 0x22],
        extension: Some(HeaderExtension {
            profile: 0xBEDE,
            data: &[0x10, 0xFF, 0, 0],
        }),
        padding: 2,
    }
    .write(&[0x55, 0x66], &mut out)
    .unwrap();
    assert_eq!(&out[..n], &pkt[..]);
}

#[test]
fn rejects_malformed() {
    assert_eq!(
        RtpPacket::parse(&SIMPLE[..11]),
        Err(Error::RtpTooShort {
            len: 11,
            needed: 12
        })
    );
    let mut v1 = SIMPLE;
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(Error::BadVersion { version: 1 }));
    // CC=3 but no CSRCs present.
    let mut cc = SIMPLE;
    cc[0] = 0x83;
    assert_eq!(
        RtpPacket::parse(&cc),
        Err(Error::RtpTooShort {
            len: 15,
            needed: 24
        })
    );
    // X set, extension header claims 4 words.
    let mut x = [0u8; 20];
    x[..12].copy_from_slice(&SIMPLE[..12]);
    x[0] = 0x90;
    x[12..16].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x04]);
    assert_eq!(
        RtpPacket::parse(&x),
        Err(Error::RtpTooShort {
            len: 20,
            needed: 32
        })
    );
    // X set but no room for the extension header.
    let mut x2 = SIMPLE;
    x2[0] = 0x90;
    assert_eq!(
        RtpPacket::parse(&x2),
        Err(Error::RtpTooShort {
            len: 15,
            needed: 16
        })
    );
    // Padding count larger than the payload.
    let mut p = SIMPLE;
    p[0] = 0xA0;
    p[14] = 4;
    assert_eq!(
        RtpPacket::parse(&p),
        Err(Error::PaddingOverflow {
            padding: 4,
            len: 15
        })
    );
    p[14] = 0;
    assert_eq!(
        RtpPacket::parse(&p),
        Err(Error::PaddingOverflow {
            padding: 0,
            len: 15
        })
    );
    // Padding exactly filling the payload is fine.
    p[14] = 3;
    assert_eq!(RtpPacket::parse(&p).unwrap().payload(), &[] as &[u8]);
}

#[test]
fn writer_errors() {
    let mut small = [0u8; 20];
    let h = RtpHeader::default();
    assert_eq!(
        h.write(&[0; 10], &mut small),
        Err(Error::BufferTooSmall {
            needed: 22,
            available: 20
        })
    );
    let bad_pt = RtpHeader {
        payload_type: 128,
        ..Default::default()
    };
    assert!(matches!(
        bad_pt.write(&[], &mut small),
        Err(Error::OutOfRange {
            field: "payload_type",
            ..
        })
    ));
    let bad_ext = RtpHeader {
        extension: Some(HeaderExtension {
            profile: 1,
            data: &[1, 2, 3],
        }),
        ..Default::default()
    };
    assert_eq!(
        bad_ext.write(&[], &mut small),
        Err(Error::ExtensionNotAligned { len: 3 })
    );
}

#[test]
fn extend_seq_wraps_both_ways() {
    assert_eq!(extend_seq(65535, 0), 65536);
    assert_eq!(extend_seq(65536, 65535), 65535);
    assert_eq!(extend_seq(0x1_0005, 3), 0x1_0003);
    assert_eq!(extend_seq(10, 65530), 65530); // cannot go below 0: ahead instead
    assert_eq!(extend_seq(3 * 65536 + 100, 200), 3 * 65536 + 200);
}

proptest! {
    #[test]
    fn rtp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = RtpPacket::parse(&bytes);
    }

    #[test]
    fn rtcp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(c) = RtcpCompound::parse_lenient(&bytes) {
            for p in c {
                if let RtcpPacket::Sdes(s) = p {
                    for ch in s.chunks() { let _ = ch.items().count(); }
                }
            }
        }
    }

    #[test]
    fn rtp_write_parse_round_trip(m in any::<bool>(), pt in 0u8..128, seq in any::<u16>(), ts in any::<u32>(),
                                  ssrc in any::<u32>(), ncsrc in 0usize..16, payload in proptest::collection::vec(any::<u8>(), 0..200),
                                  pad in 0u8..8) {
        let csrcs: Vec<u32> = (0..ncsrc as u32).collect();
        let h = RtpHeader { marker: m, payload_type: pt, sequence: seq, timestamp: ts, ssrc, csrcs: &csrcs, extension: None, padding: pad };
        let mut buf = vec![0u8; 400];
        let n = h.write(&payload, &mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        prop_assert_eq!(p.marker(), m);
        prop_assert_eq!(p.payload_type(), pt);
        prop_assert_eq!(p.sequence(), seq);
        prop_assert_eq!(p.timestamp(), ts);
        prop_assert_eq!(p.ssrc(), ssrc);
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        prop_assert_eq!(p.payload(), &payload[..]);
    }
}

// ---------------------------------------------------------------- RTCP

/// RR from RFC 3550 §6.4.2 layout, hand-assembled: one report block.
#[test]
fn parse_hand_built_rr_and_sdes() {
    #[rustfmt::skip]
    let pkt: [u8; 32 + 20] = [
        // RR: V=2 RC=1 PT=201 length=7
        0x81, 0xC9, 0x00, 0x07,
        0x00, 0x00, 0x00, 0x01, // reporter ssrc
        0x00, 0x00, 0x00, 0x02, // source ssrc
        0x40, 0xFF, 0xFF, 0xFE, // fraction 64/256, cumulative lost -2
        0x00, 0x01, 0x00, 0x05, // ext highest seq: 1 cycle, seq 5
        0x00, 0x00, 0x00, 0x20, // jitter 32
        0x12, 0x34, 0x56, 0x78, // LSR
        0x00, 0x01, 0x00, 0x00, // DLSR = 1 s
        // SDES: V=2 SC=1 PT=202 length=4
        0x81, 0xCA, 0x00, 0x04,
        0x00, 0x00, 0x00, 0x01,
        0x01, 0x06, b'a', b'@', b'h', b'o', b's', b't',
        0x00, 0x00, 0x00, 0x00,
    ];
    let c = RtcpCompound::parse(&pkt).unwrap();
    let mut it = c.iter();
    let RtcpPacket::ReceiverReport(rr) = it.next().unwrap() else {
        panic!("expected RR")
    };
    assert_eq!(rr.ssrc, 1);
    let blocks: Vec<_> = rr.blocks().collect();
    assert_eq!(
        blocks,
        vec![ReportBlock {
            ssrc: 2,
            fraction_lost: 64,
            cumulative_lost: -2,
            highest_seq: 0x0001_0005,
            jitter: 32,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }]
    );
    let RtcpPacket::Sdes(sdes) = it.next().unwrap() else {
        panic!("expected SDES")
    };
    assert_eq!(sdes.cname(1), Some(&b"a@host"[..]));
    assert_eq!(sdes.cname(2), None);
    assert!(it.next().is_none());

    // Our writer builds the same bytes.
    let mut buf = [0u8; 64];
    let mut w = RtcpWriter::new(&mut buf);
    w.receiver_report(1, &blocks).unwrap();
    w.sdes_cname(1, b"a@host").unwrap();
    let n = w.finish();
    assert_eq!(&buf[..n], &pkt[..]);
}

#[test]
fn sr_bye_compound_round_trip() {
    let info = SenderInfo {
        ntp_timestamp: 0x8000_0001_4000_0000,
        rtp_timestamp: 160_000,
        packet_count: 1000,
        octet_count: 160_000,
    };
    let block = ReportBlock {
        ssrc: 9,
        fraction_lost: 3,
        cumulative_lost: 0x7F_FFFF + 10, // clamped on write
        highest_seq: 70000,
        jitter: 12,
        last_sr: 0,
        delay_since_last_sr: 0,
    };
    let mut buf = [0u8; 256];
    let mut w = RtcpWriter::new(&mut buf);
    w.sender_report(0xABCD, &info, &[block]).unwrap();
    w.sdes_cname(0xABCD, b"caller-leg-1").unwrap();
    w.bye(&[0xABCD, 0x1234], Some(b"hangup")).unwrap();
    let n = w.finish();
    assert_eq!(n % 4, 0);
    let c = RtcpCompound::parse(&buf[..n]).unwrap();
    let pkts: Vec<_> = c.iter().collect();
    assert_eq!(pkts.len(), 3);
    let RtcpPacket::SenderReport(sr) = pkts[0] else {
        panic!()
    };
    assert_eq!(sr.ssrc, 0xABCD);
    assert_eq!(sr.info, info);
    let b = sr.blocks().next().unwrap();
    assert_eq!(b.cumulative_lost, 0x7F_FFFF);
    assert_eq!(b.highest_seq, 70000);
    let RtcpPacket::Sdes(s) = pkts[1] else {
        panic!()
    };
    assert_eq!(s.cname(0xABCD), Some(&b"caller-leg-1"[..]));
    let RtcpPacket::Bye(bye) = pkts[2] else {
        panic!()
    };
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0xABCD, 0x1234]);
    assert_eq!(bye.reason, Some(&b"hangup"[..]));
}

#[test]
fn rtcp_validation_errors() {
    // Compound starting with SDES is rejected by the strict parser.
    let mut buf = [0u8; 64];
    let mut w = RtcpWriter::new(&mut buf);
    w.sdes_cname(1, b"x").unwrap();
    let n = w.finish();
    assert_eq!(
        RtcpCompound::parse(&buf[..n]),
        Err(Error::RtcpBadFirstPacket { packet_type: 202 })
    );
    assert!(RtcpCompound::parse_lenient(&buf[..n]).is_ok());
    // Length field longer than the data.
    let rr = [0x80, 0xC9, 0x00, 0x05, 0, 0, 0, 1];
    assert_eq!(
        RtcpCompound::parse(&rr),
        Err(Error::RtcpTooShort {
            offset: 0,
            len: 8,
            needed: 24
        })
    );
    // RC says 1 block but the packet is header + SSRC only.
    let rr = [0x81, 0xC9, 0x00, 0x01, 0, 0, 0, 1];
    assert!(matches!(
        RtcpCompound::parse(&rr),
        Err(Error::RtcpTooShort { .. })
    ));
    // Bad version.
    let rr = [0x40, 0xC9, 0x00, 0x01, 0, 0, 0, 1];
    assert_eq!(
        RtcpCompound::parse(&rr),
        Err(Error::BadVersion { version: 1 })
    );
    // SDES item running past the packet.
    let sdes = [0x81, 0xCA, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x09, b'a', b'b'];
    assert!(matches!(
        RtcpCompound::parse_lenient(&sdes),
        Err(Error::SdesOverrun { .. })
    ));
    // Trailing garbage after a valid RR.
    let rr = [0x80, 0xC9, 0x00, 0x01, 0, 0, 0, 1, 0x80];
    assert!(matches!(
        RtcpCompound::parse(&rr),
        Err(Error::RtcpTooShort { offset: 8, .. })
    ));
    // Writer out of space.
    let mut tiny = [0u8; 10];
    let mut w = RtcpWriter::new(&mut tiny);
    assert_eq!(
        w.receiver_report(1, &[ReportBlock::default()]),
        Err(Error::BufferTooSmall {
            needed: 32,
            available: 10
        })
    );
}

#[test]
fn rtcp_padding_in_last_packet() {
    // RR without blocks + 4 bytes padding, P bit set, length = 2.
    let rr = [0xA0, 0xC9, 0x00, 0x02, 0, 0, 0, 7, 0, 0, 0, 4];
    let c = RtcpCompound::parse(&rr).unwrap();
    let RtcpPacket::ReceiverReport(r) = c.iter().next().unwrap() else {
        panic!()
    };
    assert_eq!(r.ssrc, 7);
    let bad = [0xA0, 0xC9, 0x00, 0x02, 0, 0, 0, 7, 0, 0, 0, 9];
    assert!(matches!(
        RtcpCompound::parse(&bad),
        Err(Error::PaddingOverflow { .. })
    ));
}

// ---------------------------------------------------------------- statistics

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn stats_probation_then_counting() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    assert_eq!(s.on_rtp(t0, 5, 100, 0), RtpOutcome::Probation);
    assert_eq!(s.on_rtp(t0 + ms(20), 5, 101, 160), RtpOutcome::Accepted);
    for i in 2..50u16 {
        assert_eq!(
            s.on_rtp(t0 + ms(20 * u64::from(i)), 5, 100 + i, 160 * u32::from(i)),
            RtpOutcome::Accepted
        );
    }
    assert_eq!(s.received(), 49);
    assert_eq!(s.expected(), 49);
    assert_eq!(s.cumulative_lost(), 0);
    assert_eq!(s.jitter(), 0);
    let b = s.report_block(t0 + ms(1000)).unwrap();
    assert_eq!(b.fraction_lost, 0);
    assert_eq!(b.highest_seq, 149);
}

#[test]
fn stats_probation_restarts_on_gap() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    assert_eq!(s.on_rtp(t0, 1, 10, 0), RtpOutcome::Probation);
    assert_eq!(s.on_rtp(t0, 1, 50, 0), RtpOutcome::Probation);
    assert_eq!(s.on_rtp(t0, 1, 51, 0), RtpOutcome::Accepted);
    assert_eq!(s.expected(), 1);
}

#[test]
fn stats_sequence_wrap_and_loss() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    let mut seq: u16 = 65530;
    let mut sent = 0u32;
    let mut t = t0;
    for i in 0..20u32 {
        // Lose every 5th packet after probation.
        if i < 2 || i % 5 != 0 {
            s.on_rtp(t, 7, seq, i * 160);
        }
        sent += 1;
        seq = seq.wrapping_add(1);
        t += ms(20);
    }
    let _ = sent;
    // Packets 65531 (i=1) .. 65530+19 = 13 (wrapped): extended max = 65536 + 13.
    assert_eq!(s.extended_max_seq(), 65536 + 13);
    assert_eq!(s.expected(), 19);
    // i = 5, 10, 15 lost.
    assert_eq!(s.cumulative_lost(), 3);
    let b = s.report_block(t).unwrap();
    assert_eq!(b.cumulative_lost, 3);
    assert_eq!(b.fraction_lost, (3 * 256 / 19) as u8);
    // Next interval without loss: fraction 0.
    for i in 20..40u32 {
        s.on_rtp(t, 7, seq, i * 160);
        seq = seq.wrapping_add(1);
        t += ms(20);
    }
    let b = s.report_block(t).unwrap();
    assert_eq!(b.fraction_lost, 0);
    assert_eq!(b.cumulative_lost, 3);
    assert!(s.estimated_mos(ms(40)) > 4.3);
}

#[test]
fn stats_duplicates_and_reorder() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    for seq in [1u16, 2, 3, 5, 4, 4, 6] {
        s.on_rtp(t0, 1, seq, 0);
    }
    // Expected 2..=6 = 5, received 6 (one duplicate) => lost -1.
    assert_eq!(s.expected(), 5);
    assert_eq!(s.received(), 6);
    assert_eq!(s.cumulative_lost(), -1);
    let b = s.report_block(t0).unwrap();
    assert_eq!(b.fraction_lost, 0);
    assert_eq!(b.cumulative_lost, -1);
}

#[test]
fn stats_big_jump_needs_two_packets() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    for seq in 0..10u16 {
        s.on_rtp(t0, 1, seq, 0);
    }
    assert_eq!(s.on_rtp(t0, 1, 30000, 0), RtpOutcome::BadSequence);
    assert_eq!(s.on_rtp(t0, 1, 30001, 0), RtpOutcome::Restarted);
    assert_eq!(s.expected(), 1);
    assert_eq!(s.on_rtp(t0, 1, 30002, 0), RtpOutcome::Accepted);
    // A lone jump is dropped and the stream continues.
    assert_eq!(s.on_rtp(t0, 1, 50000, 0), RtpOutcome::BadSequence);
    assert_eq!(s.on_rtp(t0, 1, 30003, 0), RtpOutcome::Accepted);
    assert_eq!(s.extended_max_seq(), 30003);
}

#[test]
fn stats_ssrc_change_resets() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    for seq in 0..10u16 {
        s.on_rtp(t0, 1, seq, 0);
    }
    assert_eq!(
        s.on_rtp(t0, 2, 500, 0),
        RtpOutcome::SsrcChanged { old: 1, new: 2 }
    );
    assert_eq!(s.ssrc(), Some(2));
    assert_eq!(s.on_rtp(t0, 2, 501, 0), RtpOutcome::Accepted);
    assert_eq!(s.expected(), 1);
    assert_eq!(s.received(), 1);
}

#[test]
fn stats_jitter_converges_to_a8() {
    // Alternate arrival offsets 0 / +10 ms: |D| is 80 timestamp units every
    // packet, so J converges to 80.
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    for i in 0..400u32 {
        let extra = if i % 2 == 1 { 10 } else { 0 };
        s.on_rtp(t0 + ms(20 * u64::from(i) + extra), 3, i as u16, i * 160);
    }
    assert!((78..=80).contains(&s.jitter()), "jitter {}", s.jitter());
    assert!((s.jitter_duration().as_secs_f64() - 0.010).abs() < 0.0005);
}

#[test]
fn lsr_dlsr_and_round_trip_time() {
    let t0 = Instant::now();
    let mut s = ReceiverStats::new(8000);
    s.on_rtp(t0, 1, 1, 0);
    s.on_rtp(t0, 1, 2, 160);
    let sr_ntp: u64 = (3_900_000_000u64 << 32) | 0x8000_0000; // x.5 s
    s.on_sender_report(
        t0,
        &SenderInfo {
            ntp_timestamp: sr_ntp,
            ..Default::default()
        },
    );
    // We send our RR 250 ms after the SR.
    let b = s.report_block(t0 + ms(250)).unwrap();
    assert_eq!(b.last_sr, compact_ntp(sr_ntp));
    assert_eq!(b.delay_since_last_sr, 65536 / 4);
    // The sender receives it 100 ms of network RTT later: A = SR + 0.25 + 0.1 s.
    let arrival = compact_ntp(sr_ntp) + 65536 * 35 / 100;
    let rtt = round_trip_time(arrival, &b).unwrap();
    assert!((rtt.as_secs_f64() - 0.100).abs() < 0.001, "{rtt:?}");
    // No LSR: no RTT.
    assert_eq!(round_trip_time(arrival, &ReportBlock::default()), None);
}

#[test]
fn mos_estimate_is_sane() {
    let perfect = estimate_mos(0.0, ms(0), ms(20));
    assert!(perfect > 4.3 && perfect <= 4.5, "{perfect}");
    let lossy = estimate_mos(0.05, ms(20), ms(100));
    assert!(lossy < perfect && lossy > 3.0, "{lossy}");
    let awful = estimate_mos(0.30, ms(100), ms(800));
    assert!(awful < 2.0, "{awful}");
    // Monotonic in each input.
    assert!(estimate_mos(0.02, ms(10), ms(50)) > estimate_mos(0.04, ms(10), ms(50)));
    assert!(estimate_mos(0.02, ms(10), ms(50)) > estimate_mos(0.02, ms(40), ms(50)));
    assert!(estimate_mos(0.02, ms(10), ms(50)) > estimate_mos(0.02, ms(10), ms(500)));
}

#[test]
fn ntp_conversion_and_sender_stats() {
    use parley_media_core::stats::{NTP_UNIX_OFFSET_SECS, SenderStats, ntp_from_unix};
    assert_eq!(ntp_from_unix(Duration::ZERO), NTP_UNIX_OFFSET_SECS << 32);
    assert_eq!(
        ntp_from_unix(Duration::from_millis(1500)),
        ((NTP_UNIX_OFFSET_SECS + 1) << 32) | 0x8000_0000
    );
    let mut s = SenderStats::new();
    for _ in 0..50 {
        s.on_sent(160);
    }
    let info = s.sender_info(ntp_from_unix(Duration::from_secs(1)), 8000);
    assert_eq!((info.packet_count, info.octet_count), (50, 8000));
    assert_eq!(info.rtp_timestamp, 8000);
    // Full loop: the SR's NTP time comes back as LSR; RTT = A - LSR - DLSR.
    let t0 = Instant::now();
    let mut rx = ReceiverStats::new(8000);
    rx.on_rtp(t0, 1, 1, 0);
    rx.on_rtp(t0, 1, 2, 160);
    rx.on_sender_report(t0 + ms(40), &info); // SR took 40 ms one way
    let block = rx.report_block(t0 + ms(540)).unwrap(); // RR 500 ms later
    // RR takes 40 ms back: arrival = SR time + 40 + 500 + 40 ms.
    let arrival = compact_ntp(ntp_from_unix(Duration::from_millis(1580)));
    let rtt = round_trip_time(arrival, &block).unwrap();
    assert!((rtt.as_secs_f64() - 0.080).abs() < 0.001, "{rtt:?}");
}

#[test]
fn rfc8285_extension_elements() {
    // One-byte form: id 1 len 1 (audio level 0x9F... here 1 byte), padding,
    // id 3 len 3, then padding to a word.
    let one = HeaderExtension {
        profile: 0xBEDE,
        data: &[0x10, 0x9F, 0x00, 0x32, 0xAA, 0xBB, 0xCC, 0x00],
    };
    let got: Vec<_> = one.elements().collect();
    assert_eq!(got, vec![(1, &[0x9F][..]), (3, &[0xAA, 0xBB, 0xCC][..])]);
    // Two-byte form (profile 0x1000, appbits 0): id 5 len 0, id 6 len 2.
    let two = HeaderExtension {
        profile: 0x1000,
        data: &[0x05, 0x00, 0x06, 0x02, 0x01, 0x02, 0x00, 0x00],
    };
    let got: Vec<_> = two.elements().collect();
    assert_eq!(got, vec![(5, &[][..]), (6, &[0x01, 0x02][..])]);
    // Truncated element and reserved id 15 stop the walk; other profiles are opaque.
    let bad = HeaderExtension {
        profile: 0xBEDE,
        data: &[0x13, 0x01, 0x00, 0x00],
    };
    assert_eq!(bad.elements().count(), 0);
    let reserved = HeaderExtension {
        profile: 0xBEDE,
        data: &[0x10, 0x01, 0xF0, 0x00],
    };
    assert_eq!(reserved.elements().count(), 1);
    let other = HeaderExtension {
        profile: 0x1234,
        data: &[0x10, 0x01, 0x00, 0x00],
    };
    assert_eq!(other.elements().count(), 0);
}

proptest! {
    #[test]
    fn extension_elements_never_panic(profile in prop_oneof![Just(0xBEDEu16), Just(0x1000u16), any::<u16>()],
                                      data in proptest::collection::vec(any::<u8>(), 0..40)) {
        let ext = HeaderExtension { profile, data: &data };
        for (_, d) in ext.elements() {
            prop_assert!(d.len() <= 255);
        }
    }
}
