//! Tone generation: call-progress tones (ringback, busy), beeps and DTMF
//! tones, as 16-bit PCM at any sample rate. No allocation; the generator
//! keeps its phase and cadence position between calls, so a 20 ms frame loop
//! produces one continuous signal.
//!
//! ```
//! use parley_media_core::tones::{ToneGenerator, ToneSpec};
//! let mut g = ToneGenerator::new(8000, ToneSpec::US_RINGBACK);
//! let mut frame = [0i16; 160];
//! g.fill(&mut frame);
//! assert!(frame.iter().any(|&s| s != 0));
//! ```

use std::time::Duration;

use crate::dtmf::digit_to_event;
use crate::error::Result;

/// Row (low group) DTMF frequencies, Hz.
pub const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) DTMF frequencies, Hz.
pub const DTMF_COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// A tone: up to two frequencies, a level and an on/off cadence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpec {
    /// Frequencies in Hz; 0 means unused.
    pub freqs: [f32; 2],
    /// Peak amplitude of each component (the sum of both must fit i16).
    pub amplitude: i16,
    /// Tone-on time of one cadence cycle.
    pub on: Duration,
    /// Silence after the tone; zero = continuous while on.
    pub off: Duration,
    /// Repeat the cadence forever (true) or play it once (false).
    pub repeat: bool,
}

impl ToneSpec {
    /// North American ringback: 440 + 480 Hz, 2 s on, 4 s off, repeating.
    pub const US_RINGBACK: ToneSpec = ToneSpec {
        freqs: [440.0, 480.0],
        amplitude: 4000,
        on: Duration::from_secs(2),
        off: Duration::from_secs(4),
        repeat: true,
    };
    /// North American busy: 480 + 620 Hz, 0.5 s on, 0.5 s off, repeating.
    pub const US_BUSY: ToneSpec = ToneSpec {
        freqs: [480.0, 620.0],
        amplitude: 4000,
        on: Duration::from_millis(500),
        off: Duration::from_millis(500),
        repeat: true,
    };
    /// One ringback burst (2 s, not repeated), handy in tests and prompts.
    pub const US_RINGBACK_ONCE: ToneSpec = ToneSpec {
        repeat: false,
        off: Duration::ZERO,
        ..ToneSpec::US_RINGBACK
    };
    /// Record / attention beep: 1000 Hz for 200 ms, once.
    pub const BEEP: ToneSpec = ToneSpec {
        freqs: [1000.0, 0.0],
        amplitude: 8000,
        on: Duration::from_millis(200),
        off: Duration::ZERO,
        repeat: false,
    };

    /// The DTMF tone pair for `digit`, played once for `duration`.
    pub fn dtmf(digit: char, duration: Duration) -> Result<ToneSpec> {
        let e = usize::from(digit_to_event(digit)?);
        // Keypad layout: events 1-9 are rows 0-2; 0 * # and A-D fill the rest.
        let (row, col) = match e {
            1..=9 => ((e - 1) / 3, (e - 1) % 3),
            0 => (3, 1),
            10 => (3, 0),
            11 => (3, 2),
            _ => (e - 12, 3),
        };
        Ok(ToneSpec {
            freqs: [DTMF_ROWS[row], DTMF_COLS[col]],
            amplitude: 7000,
            on: duration,
            off: Duration::ZERO,
            repeat: false,
        })
    }
}

/// Stateful generator for one [`ToneSpec`].
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    spec: ToneSpec,
    step: [f64; 2],
    phase: [f64; 2],
    on_samples: u64,
    cycle_samples: u64,
    position: u64,
}

impl ToneGenerator {
    /// A generator at `sample_rate` Hz, starting at the beginning of the cadence.
    pub fn new(sample_rate: u32, spec: ToneSpec) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let on_samples = (spec.on.as_secs_f64() * rate).round() as u64;
        let off_samples = (spec.off.as_secs_f64() * rate).round() as u64;
        let tau = std::f64::consts::TAU;
        ToneGenerator {
            spec,
            step: [
                tau * f64::from(spec.freqs[0]) / rate,
                tau * f64::from(spec.freqs[1]) / rate,
            ],
            phase: [0.0; 2],
            on_samples,
            cycle_samples: on_samples + off_samples,
            position: 0,
        }
    }

    /// True once a non-repeating tone has played out.
    pub fn is_finished(&self) -> bool {
        !self.spec.repeat && self.position >= self.cycle_samples
    }

    /// Fill `out` with the next samples (silence during "off" and after the end).
    pub fn fill(&mut self, out: &mut [i16]) {
        let amp = f64::from(self.spec.amplitude);
        for s in out.iter_mut() {
            let in_cycle = if self.cycle_samples == 0 {
                0
            } else if self.spec.repeat {
                self.position % self.cycle_samples
            } else {
                self.position
            };
            let on = in_cycle < self.on_samples;
            let mut v = 0.0;
            if on {
                for k in 0..2 {
                    if self.spec.freqs[k] > 0.0 {
                        v += amp * self.phase[k].sin();
                    }
                }
            }
            for k in 0..2 {
                self.phase[k] += self.step[k];
                if self.phase[k] >= std::f64::consts::TAU {
                    self.phase[k] -= std::f64::consts::TAU;
                }
            }
            *s = v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            if self.spec.repeat || self.position < self.cycle_samples {
                self.position += 1;
            }
        }
    }
}
