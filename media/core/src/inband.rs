//! In-band DTMF detection on 8 kHz PCM (Goertzel filters), for callers whose
//! phones send tones in the audio instead of RFC 4733 events.
//!
//! Audio is cut into blocks of 205 samples (25.6 ms, the classic choice that
//! puts all eight DTMF frequencies close to a DFT bin). In each block the
//! strongest row and column tone must be loud enough, stronger than the other
//! tones of their group, within the allowed twist, and carry most of the
//! block's energy (which rejects speech and music). A digit is reported once
//! it has been seen in two consecutive blocks and is re-armed only after a
//! block without it: tones shorter than 51 ms are never reported, tones of
//! 77 ms or more always are (two whole blocks fit at any alignment); typical
//! key presses last 70–150 ms. Detection latency is 51–77 ms from tone start.
//!
//! ```
//! use std::time::Duration;
//! use parley_media_core::inband::InbandDetector;
//! use parley_media_core::tones::{ToneGenerator, ToneSpec};
//! let mut tone = ToneGenerator::new(8000, ToneSpec::dtmf('7', Duration::from_millis(80)).unwrap());
//! let mut det = InbandDetector::new();
//! let mut frame = [0i16; 160];
//! for _ in 0..8 {
//!     tone.fill(&mut frame);
//!     det.push_samples(&frame);
//! }
//! assert_eq!(det.poll_digit().map(|d| d.digit), Some('7'));
//! ```

use crate::tones::{DTMF_COLS, DTMF_ROWS};

/// Samples per analysis block.
pub const BLOCK: usize = 205;
const SAMPLE_RATE: f32 = 8000.0;
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
const QUEUE: usize = 8;

/// A digit found in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InbandDigit {
    /// The DTMF character.
    pub digit: char,
    /// Index of the first sample of the block where it was first seen,
    /// counted from the detector's creation.
    pub start_sample: u64,
}

/// Thresholds of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minimum amplitude of each tone (of 32768); default 400 (≈ -38 dBFS).
    pub min_amplitude: f32,
    /// Max dB the column tone may exceed the row tone (forward twist); default 4.
    pub max_forward_twist_db: f32,
    /// Max dB the row tone may exceed the column tone (reverse twist); default 8.
    pub max_reverse_twist_db: f32,
    /// The peak must exceed the other tones of its group by this many dB; default 8.
    pub min_peak_ratio_db: f32,
    /// Share of the block energy the two tones must carry; default 0.6.
    pub min_tone_share: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_amplitude: 400.0,
            max_forward_twist_db: 4.0,
            max_reverse_twist_db: 8.0,
            min_peak_ratio_db: 8.0,
            min_tone_share: 0.6,
        }
    }
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Streaming in-band DTMF detector (8 kHz mono PCM).
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// `steps[k][i]`: the factor P_k of filter `i` for stepping its recursion
    /// `y[n] = x[n] + c·y[n-1] - y[n-2]` several samples at once, with
    /// P_0 = 1, P_1 = c (the Goertzel coefficient), P_k = c·P_{k-1} - P_{k-2}:
    /// `y[n+k] = P_{k+1}·y[n-1] - P_k·y[n-2] + Σ_{j≤k} P_{k-j}·x[n+j]`.
    steps: [[f32; 8]; 5],
    /// y[n-1] and y[n-2] of each filter (rows first, then columns).
    s1: [f32; 8],
    s2: [f32; 8],
    energy: f32,
    filled: usize,
    samples_seen: u64,
    block_start: u64,
    config: DetectorConfig,
    /// Digit seen in the previous block.
    last_block: Option<char>,
    last_block_start: u64,
    /// Digit already reported and still held.
    reported: Option<char>,
    queue: [Option<InbandDigit>; QUEUE],
    head: usize,
    len: usize,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector with default thresholds.
    pub fn new() -> Self {
        Self::with_config(DetectorConfig::default())
    }

    /// A detector with custom thresholds.
    pub fn with_config(config: DetectorConfig) -> Self {
        let mut steps = [[1f32; 8]; 5];
        for (i, f) in DTMF_ROWS.iter().chain(DTMF_COLS.iter()).enumerate() {
            let c = 2.0 * (std::f32::consts::TAU * f / SAMPLE_RATE).cos();
            steps[1][i] = c;
            for k in 2..5 {
                steps[k][i] = c * steps[k - 1][i] - steps[k - 2][i];
            }
        }
        InbandDetector {
            steps,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            filled: 0,
            samples_seen: 0,
            block_start: 0,
            config,
            last_block: None,
            last_block_start: 0,
            reported: None,
            queue: [None; QUEUE],
            head: 0,
            len: 0,
        }
    }

    /// Feed samples (any count; blocks are assembled internally).
    pub fn push_samples(&mut self, mut samples: &[i16]) {
        while !samples.is_empty() {
            let take = (BLOCK - self.filled).min(samples.len());
            let (chunk, rest) = samples.split_at(take);
            self.filter(chunk);
            self.filled += take;
            self.samples_seen += take as u64;
            if self.filled == BLOCK {
                self.end_block();
            }
            samples = rest;
        }
    }

    /// Run the eight Goertzel filters over samples of one block. Four samples
    /// at a time: a filter's recursion is a chain of dependent multiply-adds,
    /// and stepping it four samples per link (from y[n-1], y[n-2] straight to
    /// y[n+3], y[n+2]) shortens that chain fourfold, while the eight filters
    /// are independent lanes the compiler vectorises.
    // Indexing the eight lanes of several arrays in one loop is what the
    // vectoriser handles best.
    #[allow(clippy::needless_range_loop)]
    fn filter(&mut self, chunk: &[i16]) {
        let p = &self.steps;
        let (mut s1, mut s2) = (self.s1, self.s2);
        let mut energy = [0f32; 4];
        let mut quads = chunk.chunks_exact(4);
        for q in &mut quads {
            let x = [
                f32::from(q[0]),
                f32::from(q[1]),
                f32::from(q[2]),
                f32::from(q[3]),
            ];
            for j in 0..4 {
                energy[j] += x[j] * x[j];
            }
            for i in 0..8 {
                let y2 =
                    p[3][i] * s1[i] - p[2][i] * s2[i] + (p[2][i] * x[0] + p[1][i] * x[1] + x[2]);
                let y3 = p[4][i] * s1[i] - p[3][i] * s2[i]
                    + (p[3][i] * x[0] + p[2][i] * x[1] + p[1][i] * x[2] + x[3]);
                s2[i] = y2;
                s1[i] = y3;
            }
        }
        for &x in quads.remainder() {
            let x = f32::from(x);
            energy[0] += x * x;
            for i in 0..8 {
                let y = x + p[1][i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = y;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy += (energy[0] + energy[1]) + (energy[2] + energy[3]);
    }

    fn classify(&self) -> Option<char> {
        let mut power = [0f32; 8];
        for (i, pw) in power.iter_mut().enumerate() {
            let (y1, y2, c) = (self.s1[i], self.s2[i], self.steps[1][i]);
            *pw = y1 * y1 + y2 * y2 - c * y1 * y2;
        }
        let peak = |p: &[f32]| {
            let mut best = 0;
            for i in 1..p.len() {
                if p[i] > p[best] {
                    best = i;
                }
            }
            best
        };
        let (rows, cols) = power.split_at(4);
        let r = peak(rows);
        let c = peak(cols);
        let (pr, pc) = (rows[r], cols[c]);
        // A sinusoid of amplitude A gives Goertzel power (A·N/2)².
        let min_power = (self.config.min_amplitude * BLOCK as f32 / 2.0).powi(2);
        if pr < min_power || pc < min_power {
            return None;
        }
        if pc > pr * db_to_power_ratio(self.config.max_forward_twist_db)
            || pr > pc * db_to_power_ratio(self.config.max_reverse_twist_db)
        {
            return None;
        }
        let ratio = db_to_power_ratio(self.config.min_peak_ratio_db);
        for i in 0..4 {
            if (i != r && rows[i] * ratio > pr) || (i != c && cols[i] * ratio > pc) {
                return None;
            }
        }
        // A pure tone carries energy E = N·A²/2 and power (A·N/2)² = N·E/2.
        let tone_energy = 2.0 * (pr + pc) / BLOCK as f32;
        if tone_energy < self.config.min_tone_share * self.energy {
            return None;
        }
        Some(KEYS[r][c])
    }

    fn end_block(&mut self) {
        let found = self.classify();
        let start = self.block_start;
        match found {
            Some(d) if self.last_block == Some(d) && self.reported != Some(d) => {
                self.reported = Some(d);
                self.push(InbandDigit {
                    digit: d,
                    start_sample: self.last_block_start,
                });
            }
            Some(d) if self.reported == Some(d) => {}
            _ => {
                // Silence or another digit re-arms the detector.
                if found != self.reported {
                    self.reported = None;
                }
            }
        }
        if self.last_block != found {
            self.last_block_start = start;
        }
        self.last_block = found;
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.filled = 0;
        self.block_start = self.samples_seen;
    }

    fn push(&mut self, d: InbandDigit) {
        if self.len == QUEUE {
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
        }
        self.queue[(self.head + self.len) % QUEUE] = Some(d);
        self.len += 1;
    }

    /// Next detected digit, in order.
    pub fn poll_digit(&mut self) -> Option<InbandDigit> {
        if self.len == 0 {
            return None;
        }
        let d = self.queue[self.head].take();
        self.head = (self.head + 1) % QUEUE;
        self.len -= 1;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four-sample stepping gives the same filter states as the plain
    /// Goertzel recursion (computed here in f64, one sample at a time), for
    /// pushes of any size and alignment against the block.
    #[test]
    fn stepped_filters_match_the_plain_recursion() {
        let signal: Vec<i16> = (0..BLOCK - 1)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let v = 9000.0 * (std::f64::consts::TAU * 770.0 * t).sin()
                    + 7000.0 * (std::f64::consts::TAU * 1336.0 * t).sin()
                    + f64::from((n * 7919 % 2001) as i16 - 1000);
                v as i16
            })
            .collect();
        for chunk in [1, 3, 4, 7, 160, BLOCK - 1] {
            let mut det = InbandDetector::new();
            for c in signal.chunks(chunk) {
                det.push_samples(c);
            }
            assert_eq!(det.filled, BLOCK - 1, "still inside the first block");
            for i in 0..8 {
                let c = f64::from(det.steps[1][i]);
                let (mut y1, mut y2) = (0f64, 0f64);
                for &x in &signal {
                    let y = f64::from(x) + c * y1 - y2;
                    y2 = y1;
                    y1 = y;
                }
                let scale = y1.abs().max(y2.abs()).max(1.0);
                assert!(
                    (f64::from(det.s1[i]) - y1).abs() / scale < 1e-3
                        && (f64::from(det.s2[i]) - y2).abs() / scale < 1e-3,
                    "filter {i}, chunks of {chunk}: ({}, {}) vs ({y1}, {y2})",
                    det.s1[i],
                    det.s2[i]
                );
            }
            let energy: f64 = signal.iter().map(|&x| f64::from(x).powi(2)).sum();
            assert!((f64::from(det.energy) - energy).abs() / energy < 1e-4);
        }
    }
}
