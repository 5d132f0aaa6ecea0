#![allow(clippy::unwrap_used)]
//! G.711 against ITU-T reference values, round trips and monotonicity.

use parley_media_core::g711::{self, Law};
use proptest::prelude::*;

#[test]
fn itu_reference_levels_from_fixture() {
    let data = include_str!("data/g711_itu.txt");
    let mut checked = 0;
    for line in data.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let law = f.next().unwrap();
        let code = u8::from_str_radix(f.next().unwrap(), 16).unwrap();
        let level: i32 = f.next().unwrap().parse().unwrap();
        let (decoded, scale) = match law {
            "ulaw" => (g711::ulaw_decode(code), 4),
            "alaw" => (g711::alaw_decode(code), 8),
            other => panic!("unknown law {other}"),
        };
        assert_eq!(i32::from(decoded), level * scale, "{law} {code:#04x}");
        checked += 1;
    }
    assert_eq!(checked, 26);
}

#[test]
fn brief_values() {
    assert_eq!(g711::ulaw_decode(0xFF), 0);
    assert_eq!(g711::ulaw_decode(0x7F), 0);
    assert_eq!(g711::ulaw_decode(0x00), -32124);
    assert_eq!(g711::ulaw_decode(0x80), 32124);
    assert_eq!(g711::ulaw_encode(0), 0xFF);
    assert_eq!(g711::ulaw_encode(-32124), 0x00);
    assert_eq!(g711::ulaw_encode(32124), 0x80);
    assert_eq!(g711::alaw_decode(0xD5), 8);
    assert_eq!(g711::alaw_decode(0x55), -8);
    assert_eq!(g711::alaw_decode(0xAA), 32256);
    assert_eq!(g711::alaw_decode(0x2A), -32256);
    assert_eq!(g711::alaw_encode(8), 0xD5);
    assert_eq!(g711::alaw_encode(0), 0xD5);
    assert_eq!(g711::alaw_encode(-1), 0x55);
    assert_eq!(g711::alaw_encode(-8), 0x55);
    assert_eq!(g711::alaw_encode(32256), 0xAA);
    assert_eq!(g711::alaw_encode(-32256), 0x2A);
}

#[test]
fn extremes_clip() {
    assert_eq!(g711::ulaw_encode(i16::MAX), 0x80);
    assert_eq!(g711::ulaw_encode(i16::MIN), 0x00);
    assert_eq!(g711::alaw_encode(i16::MAX), 0xAA);
    assert_eq!(g711::alaw_encode(i16::MIN), 0x2A);
}

#[test]
fn ulaw_all_codes_round_trip() {
    for code in 0..=255u8 {
        let back = g711::ulaw_encode(g711::ulaw_decode(code));
        if code == 0x7F {
            // "negative zero" decodes to 0, which encodes as positive zero.
            assert_eq!(back, 0xFF);
        } else {
            assert_eq!(back, code, "code {code:#04x}");
        }
    }
}

#[test]
fn alaw_all_codes_round_trip() {
    for code in 0..=255u8 {
        assert_eq!(
            g711::alaw_encode(g711::alaw_decode(code)),
            code,
            "code {code:#04x}"
        );
    }
}

#[test]
fn slice_api_20ms_frame() {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i * 397) % 20000 - 10000) as i16)
        .collect();
    for law in [Law::Ulaw, Law::Alaw] {
        let mut enc = [0u8; 160];
        let mut dec = [0i16; 160];
        law.encode(&pcm, &mut enc).unwrap();
        law.decode(&enc, &mut dec).unwrap();
        for (a, b) in pcm.iter().zip(dec.iter()) {
            // Quantisation error is at most half a step; steps are <= 1/16 of the level.
            let err = (i32::from(*a) - i32::from(*b)).abs();
            assert!(err <= (i32::from(*a).abs() / 16).max(16), "{a} -> {b}");
        }
        assert_eq!(Law::from_payload_type(law.payload_type()), Some(law));
    }
    let mut short = [0u8; 159];
    assert_eq!(
        Law::Ulaw.encode(&pcm, &mut short),
        Err(parley_media_core::Error::LengthMismatch {
            input: 160,
            output: 159
        })
    );
}

#[test]
fn silence_codes() {
    assert_eq!(g711::ulaw_decode(Law::Ulaw.silence()), 0);
    assert_eq!(g711::alaw_decode(Law::Alaw.silence()), 8);
}

proptest! {
    #[test]
    fn ulaw_encode_monotonic(a in any::<i16>(), b in any::<i16>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(g711::ulaw_decode(g711::ulaw_encode(lo)) <= g711::ulaw_decode(g711::ulaw_encode(hi)));
    }

    #[test]
    fn alaw_encode_monotonic(a in any::<i16>(), b in any::<i16>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(g711::alaw_decode(g711::alaw_encode(lo)) <= g711::alaw_decode(g711::alaw_encode(hi)));
    }

    #[test]
    fn encode_picks_nearest_level_within_step(x in any::<i16>()) {
        // Re-encoding a decoded value is stable (idempotent quantiser).
        let u = g711::ulaw_encode(x);
        prop_assert_eq!(g711::ulaw_encode(g711::ulaw_decode(u)), if u == 0x7F { 0xFF } else { u });
        let a = g711::alaw_encode(x);
        prop_assert_eq!(g711::alaw_encode(g711::alaw_decode(a)), a);
        // Error bounded by the segment step.
        let du = (i32::from(x) - i32::from(g711::ulaw_decode(u))).abs();
        prop_assert!(du <= 1024 || i32::from(x).abs() > 32124, "ulaw {} err {}", x, du);
        let da = (i32::from(x) - i32::from(g711::alaw_decode(a))).abs();
        prop_assert!(da <= 1024 || i32::from(x).abs() > 32256, "alaw {} err {}", x, da);
    }
}

#[test]
fn decode_tables_monotonic_in_level_order() {
    // Within each sign half, µ-law codes 0x80..=0xFF decrease in level as the code grows.
    for c in 0x80u8..0xFF {
        assert!(g711::ulaw_decode(c) > g711::ulaw_decode(c + 1));
    }
    for c in 0x00u8..0x7F {
        assert!(g711::ulaw_decode(c) < g711::ulaw_decode(c + 1));
    }
}
