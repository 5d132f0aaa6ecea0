#![allow(clippy::unwrap_used)]
//! RFC 4733 payloads, receiver (fixture-driven), sender, and the in-band detector.

use std::time::{Duration, Instant};

use parley_media_core::Error;
use parley_media_core::dtmf::{
    DtmfReceiver, DtmfSender, TelephoneEvent, digit_to_event, event_to_digit,
};
use parley_media_core::inband::InbandDetector;
use parley_media_core::tones::{ToneGenerator, ToneSpec};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn payload_parse_and_build() {
    // Event 5, E=1, volume 10, duration 800 (RFC 4733 §2.3 layout).
    let bytes = [0x05, 0x8A, 0x03, 0x20];
    let ev = TelephoneEvent::parse(&bytes).unwrap();
    assert_eq!(
        ev,
        TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800
        }
    );
    assert_eq!(ev.to_bytes(), bytes);
    // The R bit is ignored on receive and cleared on send.
    let with_r = TelephoneEvent::parse(&[0x05, 0xCA, 0x03, 0x20]).unwrap();
    assert_eq!(with_r.to_bytes(), bytes);
    assert_eq!(
        TelephoneEvent::parse(&[1, 2, 3]),
        Err(Error::EventTooShort { len: 3 })
    );
}

#[test]
fn digit_codes() {
    for (c, e) in [
        ('0', 0),
        ('9', 9),
        ('*', 10),
        ('#', 11),
        ('A', 12),
        ('d', 15),
    ] {
        assert_eq!(digit_to_event(c).unwrap(), e);
    }
    assert_eq!(event_to_digit(11), Some('#'));
    assert_eq!(event_to_digit(16), None);
    assert_eq!(digit_to_event('x'), Err(Error::NotADigit { digit: 'x' }));
}

#[derive(Debug, PartialEq)]
struct Expect {
    digit: char,
    duration: Duration,
    end_missing: bool,
}

#[test]
fn rfc4733_sequences_from_fixture() {
    let data = include_str!("data/rfc4733_sequences.txt");
    let t0 = Instant::now();
    let mut scenarios = 0;
    let mut name = String::new();
    let mut rx = DtmfReceiver::new(8000);
    let mut expected: Vec<Expect> = Vec::new();
    for line in data.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "scenario" => {
                name = f[1].to_string();
                rx = DtmfReceiver::new(8000);
                expected.clear();
            }
            "p" => {
                let at = t0 + ms(f[1].parse().unwrap());
                let marker = f[2] == "M";
                let ts: u32 = f[3].parse().unwrap();
                let ev = TelephoneEvent {
                    event: f[4].parse().unwrap(),
                    end: f[5] == "E",
                    volume: 10,
                    duration: f[6].parse().unwrap(),
                };
                rx.handle_packet(at, marker, ts, &ev.to_bytes()).unwrap();
            }
            "t" => rx.handle_timeout(t0 + ms(f[1].parse().unwrap())),
            "expect" => expected.push(Expect {
                digit: f[1].chars().next().unwrap(),
                duration: ms(f[2].parse().unwrap()),
                end_missing: f[3] == "end-missing",
            }),
            "end" => {
                let mut got = Vec::new();
                while let Some(d) = rx.poll_digit() {
                    got.push(Expect {
                        digit: d.digit,
                        duration: d.duration,
                        end_missing: d.end_missing,
                    });
                }
                assert_eq!(got, expected, "scenario {name}");
                scenarios += 1;
            }
            other => panic!("bad fixture line {other}"),
        }
    }
    assert_eq!(scenarios, 11);
}

#[test]
fn timeout_is_polled() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000).with_timeout(ms(100));
    assert_eq!(rx.poll_timeout(), None);
    rx.handle_packet(t0, true, 0, &[3, 0, 0, 160]).unwrap();
    assert_eq!(rx.poll_timeout(), Some(t0 + ms(100)));
    rx.handle_timeout(t0 + ms(99));
    assert!(rx.poll_digit().is_none());
    rx.handle_timeout(t0 + ms(100));
    let d = rx.poll_digit().unwrap();
    assert_eq!((d.digit, d.end_missing), ('3', true));
    assert_eq!(rx.poll_timeout(), None);
}

#[test]
fn long_event_segments_join() {
    // A key held longer than 0xFFFF units continues in a new segment at
    // timestamp start + 0xFFFF (RFC 4733 §2.5.1.3).
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    let ev = |end, duration| {
        TelephoneEvent {
            event: 6,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    };
    rx.handle_packet(t0, true, 1000, &ev(false, 60000)).unwrap();
    rx.handle_packet(t0 + ms(8000), false, 1000, &ev(false, 0xFFFF))
        .unwrap();
    rx.handle_packet(t0 + ms(8200), false, 1000 + 0xFFFF, &ev(false, 1600))
        .unwrap();
    rx.handle_packet(t0 + ms(8400), false, 1000 + 0xFFFF, &ev(true, 3200))
        .unwrap();
    let d = rx.poll_digit().unwrap();
    assert_eq!(d.digit, '6');
    assert_eq!(d.duration, Duration::from_nanos((0xFFFF + 3200) * 125_000));
    assert!(rx.poll_digit().is_none());
}

#[test]
fn segment_sum_overflowed_u32_after_65537_long_event_segments() {
    // A peer holding one key for 65 537 full segments (about 6 days at 8 kHz,
    // kept alive by packets every 100 ms) made the sum of earlier segments
    // overflow u32: a panic in debug builds, a wrapped duration in release.
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    let ev = |end, duration| {
        TelephoneEvent {
            event: 3,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    };
    let segments: u32 = 65_538;
    let mut ts: u32 = 0;
    let mut now = t0;
    rx.handle_packet(now, true, ts, &ev(false, 0xFFFF)).unwrap();
    for _ in 1..segments {
        ts = ts.wrapping_add(0xFFFF);
        now += ms(100);
        rx.handle_packet(now, false, ts, &ev(false, 0xFFFF))
            .unwrap();
    }
    now += ms(100);
    rx.handle_packet(now, false, ts, &ev(true, 0xFFFF)).unwrap();
    let d = rx.poll_digit().unwrap();
    assert_eq!(d.digit, '3');
    assert!(!d.end_missing);
    assert_eq!(d.timestamp, 0);
    let units = u64::from(segments) * 0xFFFF;
    assert_eq!(d.duration, Duration::from_nanos(units * 125_000));
    assert!(rx.poll_digit().is_none());
}

#[test]
fn sender_packet_sequence() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(8000, ms(20));
    tx.start(t0, '#', ms(100), 42).unwrap();
    let mut got = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        assert!(tx.poll_packet(at - Duration::from_nanos(1)).is_none() || at == t0);
        let p = tx.poll_packet(at).unwrap();
        got.push((
            at - t0,
            p.marker,
            p.timestamp,
            p.event.end,
            p.event.duration,
        ));
    }
    assert_eq!(
        got,
        vec![
            (ms(0), true, 42, false, 160),
            (ms(20), false, 42, false, 320),
            (ms(40), false, 42, false, 480),
            (ms(60), false, 42, false, 640),
            (ms(80), false, 42, true, 800),
            (ms(100), false, 42, true, 800),
            (ms(120), false, 42, true, 800),
        ]
    );
    assert!(!tx.is_busy());
}

#[test]
fn sender_50ms_interval_and_uneven_duration() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(8000, ms(50)).with_volume(7);
    tx.start(t0, '9', ms(120), 0).unwrap();
    let mut durations = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        let p = tx.poll_packet(at).unwrap();
        assert_eq!(p.event.volume, 7);
        durations.push((p.event.duration, p.event.end));
    }
    assert_eq!(
        durations,
        vec![
            (400, false),
            (800, false),
            (960, true),
            (960, true),
            (960, true)
        ]
    );
    assert!(matches!(
        tx.start(t0, '1', ms(9000), 0),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        tx.start(t0, '1', Duration::MAX, 0),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        tx.start(t0, '1', Duration::ZERO, 0),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(
        tx.start(t0, 'z', ms(100), 0),
        Err(Error::NotADigit { digit: 'z' })
    );
}

#[test]
fn sender_to_receiver_over_lossy_link() {
    // Every digit survives losing any single packet of its sequence.
    let t0 = Instant::now();
    for drop in 0..7 {
        let mut tx = DtmfSender::new(8000, ms(20));
        let mut rx = DtmfReceiver::new(8000);
        let mut got = String::new();
        let mut ts = 0u32;
        for (n, digit) in "159#".chars().enumerate() {
            let start = t0 + ms(500 * n as u64);
            tx.start(start, digit, ms(100), ts).unwrap();
            let mut i = 0;
            while let Some(at) = tx.poll_timeout() {
                let p = tx.poll_packet(at).unwrap();
                if i != drop {
                    rx.handle_packet(at, p.marker, p.timestamp, &p.payload)
                        .unwrap();
                }
                i += 1;
            }
            ts = ts.wrapping_add(4000);
        }
        rx.handle_timeout(t0 + ms(5000));
        while let Some(d) = rx.poll_digit() {
            got.push(d.digit);
        }
        assert_eq!(got, "159#", "dropping packet {drop}");
    }
}

// ---------------------------------------------------------------- in-band

fn play(det: &mut InbandDetector, spec: ToneSpec) {
    let mut g = ToneGenerator::new(8000, spec);
    let mut frame = [0i16; 160];
    while !g.is_finished() {
        g.fill(&mut frame);
        det.push_samples(&frame);
    }
}

fn silence(det: &mut InbandDetector, duration_ms: usize) {
    let frame = [0i16; 8];
    for _ in 0..duration_ms {
        det.push_samples(&frame);
    }
}

fn drain(det: &mut InbandDetector) -> String {
    let mut s = String::new();
    while let Some(d) = det.poll_digit() {
        s.push(d.digit);
    }
    s
}

#[test]
fn inband_all_sixteen_digits() {
    let mut det = InbandDetector::new();
    let keys = "123A456B789C*0#D";
    let mut got = String::new();
    for k in keys.chars() {
        play(&mut det, ToneSpec::dtmf(k, ms(100)).unwrap());
        silence(&mut det, 60);
        // The queue holds 8 digits; drain as a real caller would.
        got.push_str(&drain(&mut det));
    }
    assert_eq!(got, keys);
}

#[test]
fn inband_held_key_reported_once_and_repeats_need_a_gap() {
    let mut det = InbandDetector::new();
    play(&mut det, ToneSpec::dtmf('5', ms(1000)).unwrap());
    silence(&mut det, 60);
    play(&mut det, ToneSpec::dtmf('5', ms(80)).unwrap());
    silence(&mut det, 60);
    assert_eq!(drain(&mut det), "55");
}

#[test]
fn inband_short_burst_rejected() {
    let mut det = InbandDetector::new();
    play(&mut det, ToneSpec::dtmf('3', ms(30)).unwrap());
    silence(&mut det, 100);
    assert_eq!(drain(&mut det), "");
}

#[test]
fn inband_twist_and_level_limits() {
    let mut det = InbandDetector::new();
    // Column 6 dB above row: beyond the 4 dB forward twist.
    let mut g_row = ToneGenerator::new(
        8000,
        ToneSpec {
            freqs: [770.0, 0.0],
            amplitude: 2000,
            on: ms(200),
            off: Duration::ZERO,
            repeat: false,
        },
    );
    let mut g_col = ToneGenerator::new(
        8000,
        ToneSpec {
            freqs: [1336.0, 0.0],
            amplitude: 4000,
            on: ms(200),
            off: Duration::ZERO,
            repeat: false,
        },
    );
    let mut a = [0i16; 160];
    let mut b = [0i16; 160];
    for _ in 0..10 {
        g_row.fill(&mut a);
        g_col.fill(&mut b);
        let mixed: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        det.push_samples(&mixed);
    }
    assert_eq!(drain(&mut det), "");
    // Very quiet tone (amplitude 100 of 32768) is ignored.
    let mut quiet = ToneSpec::dtmf('8', ms(200)).unwrap();
    quiet.amplitude = 100;
    play(&mut det, quiet);
    assert_eq!(drain(&mut det), "");
    // A single frequency is not a digit.
    play(&mut det, ToneSpec::BEEP);
    play(&mut det, ToneSpec::US_RINGBACK_ONCE);
    assert_eq!(drain(&mut det), "");
}

/// Deterministic xorshift noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn noise(&mut self, amp: f64) -> f64 {
        ((self.next() % 20001) as f64 / 10000.0 - 1.0) * amp
    }
}

#[test]
fn inband_no_false_digits_on_noise_and_speech_like_audio() {
    let mut det = InbandDetector::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // 10 s of white noise at several levels.
    for level in [300.0, 3000.0, 12000.0] {
        for _ in 0..(8000 * 10 / 3 / 160) {
            let frame: Vec<i16> = (0..160).map(|_| rng.noise(level) as i16).collect();
            det.push_samples(&frame);
        }
    }
    // 20 s of "speech": glottal pulse-like harmonic series with a gliding
    // pitch (90-250 Hz), two moving formant emphases and syllabic envelope.
    let mut phase = 0.0f64;
    let n = 8000 * 20;
    let mut frame = Vec::with_capacity(160);
    for i in 0..n {
        let t = i as f64 / 8000.0;
        let f0 = 170.0 + 80.0 * (t * 0.7).sin() + 20.0 * (t * 5.3).sin();
        phase += std::f64::consts::TAU * f0 / 8000.0;
        let f1 = 500.0 + 300.0 * (t * 1.9).sin();
        let f2 = 1500.0 + 600.0 * (t * 1.3).cos();
        let mut v = 0.0;
        for h in 1..=20 {
            let fh = f0 * f64::from(h);
            if fh > 3800.0 {
                break;
            }
            let g = 1.0 / f64::from(h)
                + 2.0 * (-((fh - f1) / 150.0).powi(2)).exp()
                + 1.5 * (-((fh - f2) / 200.0).powi(2)).exp();
            v += g * (phase * f64::from(h)).sin();
        }
        let envelope = (t * 4.0 * std::f64::consts::PI).sin().abs();
        frame.push((v * 2500.0 * envelope + rng.noise(50.0)).clamp(-32000.0, 32000.0) as i16);
        if frame.len() == 160 {
            det.push_samples(&frame);
            frame.clear();
        }
    }
    assert_eq!(drain(&mut det), "");
}

#[test]
fn inband_digits_survive_noise() {
    let mut det = InbandDetector::new();
    let mut rng = Rng(12345);
    for k in "0812".chars() {
        let mut g = ToneGenerator::new(8000, ToneSpec::dtmf(k, ms(100)).unwrap());
        let mut frame = [0i16; 160];
        for _ in 0..9 {
            g.fill(&mut frame);
            for s in frame.iter_mut() {
                *s = (f64::from(*s) + rng.noise(700.0)) as i16;
            }
            det.push_samples(&frame);
        }
    }
    assert_eq!(drain(&mut det), "0812");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any packet stream: no panic, and at most one digit per event
        /// timestamp (retransmissions and late packets never double-report).
        #[test]
        fn receiver_reports_at_most_one_digit_per_timestamp(
            packets in proptest::collection::vec(
                (any::<bool>(), 0u32..6, 0u8..20, any::<bool>(), any::<u16>(), 0u64..100), 0..60)
        ) {
            let t0 = Instant::now();
            let mut rx = DtmfReceiver::new(8000);
            let mut t = t0;
            let mut stamps = std::collections::BTreeSet::new();
            let mut digits = std::collections::BTreeMap::new();
            for (marker, ts_idx, event, end, duration, gap) in packets {
                t += ms(gap);
                let ts = 1000 + ts_idx * 800;
                stamps.insert(ts);
                let ev = TelephoneEvent { event, end, volume: 0, duration };
                rx.handle_packet(t, marker, ts, &ev.to_bytes()).unwrap();
                rx.handle_timeout(t);
                while let Some(d) = rx.poll_digit() {
                    *digits.entry(d.timestamp).or_insert(0) += 1;
                }
            }
            rx.handle_timeout(t + ms(10_000));
            while let Some(d) = rx.poll_digit() {
                *digits.entry(d.timestamp).or_insert(0) += 1;
            }
            for (ts, n) in digits {
                prop_assert!(stamps.contains(&ts));
                prop_assert_eq!(n, 1, "timestamp {} reported {} times", ts, n);
            }
        }

        /// Arbitrary bytes never make the payload parser or receiver panic.
        #[test]
        fn receiver_survives_garbage(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..30), ts in any::<u32>()) {
            let t0 = Instant::now();
            let mut rx = DtmfReceiver::new(8000);
            for (i, p) in payloads.iter().enumerate() {
                let _ = rx.handle_packet(t0 + ms(i as u64 * 20), i % 3 == 0, ts.wrapping_add(i as u32 * 37), p);
            }
            rx.handle_timeout(t0 + ms(100_000));
            while rx.poll_digit().is_some() {}
        }
    }
}

#[test]
fn inband_80ms_tones_detected_at_any_block_alignment() {
    // Two whole 205-sample blocks fit in any 80 ms (640-sample) tone.
    for offset in (0..205).step_by(13) {
        let mut det = InbandDetector::new();
        det.push_samples(&vec![0i16; offset]);
        play(&mut det, ToneSpec::dtmf('#', ms(80)).unwrap());
        silence(&mut det, 60);
        assert_eq!(drain(&mut det), "#", "offset {offset}");
    }
}

#[test]
fn receiver_reset_drops_event_in_progress() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    rx.handle_packet(t0, true, 100, &[1, 0, 0, 160]).unwrap();
    rx.reset();
    assert_eq!(rx.poll_timeout(), None);
    // The new source may reuse old timestamps.
    rx.handle_packet(t0 + ms(20), true, 50, &[2, 0x80, 0, 160])
        .unwrap();
    let d = rx.poll_digit().unwrap();
    assert_eq!((d.digit, d.end_missing), ('2', false));
    assert!(rx.poll_digit().is_none());
}
