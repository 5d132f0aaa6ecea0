#![allow(clippy::unwrap_used)]
//! Tone generator: frequencies, cadences, continuity across frames.

use std::time::Duration;

use parley_media_core::Error;
use parley_media_core::tones::{ToneGenerator, ToneSpec};

/// Normalised power of `f` Hz in `x` (single DFT bin).
fn power_at(x: &[i16], f: f64, rate: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &s) in x.iter().enumerate() {
        let w = std::f64::consts::TAU * f * n as f64 / rate;
        re += f64::from(s) * w.cos();
        im -= f64::from(s) * w.sin();
    }
    (re * re + im * im) / (x.len() as f64).powi(2)
}

fn render(spec: ToneSpec, rate: u32, seconds: f64) -> Vec<i16> {
    let mut g = ToneGenerator::new(rate, spec);
    let n = (f64::from(rate) * seconds) as usize;
    let mut out = vec![0i16; n];
    // Fill in 20 ms frames to exercise continuity.
    for chunk in out.chunks_mut((rate / 50) as usize) {
        g.fill(chunk);
    }
    out
}

#[test]
fn us_ringback_cadence_and_frequencies() {
    let x = render(ToneSpec::US_RINGBACK, 8000, 12.0);
    let sec = |a: f64, b: f64| &x[(a * 8000.0) as usize..(b * 8000.0) as usize];
    // On 0-2 s and 6-8 s, off 2-6 s and 8-12 s.
    assert!(sec(0.0, 2.0).iter().any(|&s| s.abs() > 3000));
    assert!(sec(2.0, 6.0).iter().all(|&s| s == 0));
    assert!(sec(6.0, 8.0).iter().any(|&s| s.abs() > 3000));
    assert!(sec(8.0, 12.0).iter().all(|&s| s == 0));
    let on = sec(0.5, 1.5);
    let p440 = power_at(on, 440.0, 8000.0);
    let p480 = power_at(on, 480.0, 8000.0);
    let p1000 = power_at(on, 1000.0, 8000.0);
    assert!(p440 > 1e6 && p480 > 1e6, "{p440} {p480}");
    assert!(p1000 < p440 / 1000.0);
    assert!((p440 / p480 - 1.0).abs() < 0.05);
}

#[test]
fn us_busy_cadence() {
    let x = render(ToneSpec::US_BUSY, 8000, 2.0);
    for k in 0..4 {
        let start = k * 4000;
        let half = &x[start..start + 4000];
        if k % 2 == 0 {
            assert!(power_at(half, 480.0, 8000.0) > 1e6);
            assert!(power_at(half, 620.0, 8000.0) > 1e6);
        } else {
            assert!(half.iter().all(|&s| s == 0));
        }
    }
}

#[test]
fn beep_plays_once_then_silence() {
    let mut g = ToneGenerator::new(8000, ToneSpec::BEEP);
    let mut frame = [0i16; 160];
    let mut frames_with_sound = 0;
    for _ in 0..50 {
        g.fill(&mut frame);
        if frame.iter().any(|&s| s != 0) {
            frames_with_sound += 1;
        }
    }
    assert_eq!(frames_with_sound, 10); // 200 ms
    assert!(g.is_finished());
    let x = render(ToneSpec::BEEP, 16000, 0.2);
    assert!(power_at(&x, 1000.0, 16000.0) > 1e7);
}

#[test]
fn dtmf_pairs() {
    let cases = [
        ('1', 697.0, 1209.0),
        ('5', 770.0, 1336.0),
        ('9', 852.0, 1477.0),
        ('0', 941.0, 1336.0),
        ('*', 941.0, 1209.0),
        ('#', 941.0, 1477.0),
        ('D', 941.0, 1633.0),
        ('a', 697.0, 1633.0),
    ];
    for (d, row, col) in cases {
        let spec = ToneSpec::dtmf(d, Duration::from_millis(100)).unwrap();
        assert_eq!(spec.freqs, [row as f32, col as f32], "{d}");
        let x = render(spec, 8000, 0.1);
        assert!(power_at(&x, row, 8000.0) > 1e6, "{d}");
        assert!(power_at(&x, col, 8000.0) > 1e6, "{d}");
    }
    assert_eq!(
        ToneSpec::dtmf('x', Duration::from_millis(1)),
        Err(Error::NotADigit { digit: 'x' })
    );
}

#[test]
fn frames_join_without_discontinuity() {
    // Rendering in 20 ms frames equals rendering in one go.
    let whole = {
        let mut g = ToneGenerator::new(8000, ToneSpec::US_RINGBACK);
        let mut v = vec![0i16; 8000];
        g.fill(&mut v);
        v
    };
    let framed = render(ToneSpec::US_RINGBACK, 8000, 1.0);
    assert_eq!(whole, framed);
}
