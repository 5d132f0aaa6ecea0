//! Speech-onset detector for barge-in: "the caller has started talking".
//!
//! Energy-based and deliberately conservative. Each frame's mean power is
//! compared with a threshold `max(noise_floor × factor, absolute floor)`;
//! the noise floor follows quiet frames (down fast, up slowly) and creeps
//! towards loud ones very slowly, so steady comfort noise or hiss becomes the
//! floor. Speech is declared once the loud frames of one run add up to
//! `min_speech` (200 ms by default), where a run survives gaps up to
//! `hangover` (150 ms, a pause between syllables) — a click, a short tone burst or a crackle never gets
//! that far. An onset is a rise from quiet: loud frames count only after
//! `arm_ms` (100 ms) of quiet since the reset, so a line that is already loud
//! when the prompt starts (a caller talking over the start, a steady hum)
//! does not stop it until it has been quiet.
//!
//! The prompt's own audio is not on the inbound leg (RTP carries no acoustic
//! echo from our side), but a PSTN hybrid can return line echo of it, usually
//! 15 dB or more below the prompt. The absolute floor (-38 dBFS by default)
//! keeps such echo of a normal prompt under the threshold; a caller at a
//! normal telephone level (about -20 to -26 dBFS) is well above it.
//!
//! Sans-IO and allocation-free: [`SpeechOnset::push`] takes a frame of
//! samples and counts time in samples, so tests run in virtual time.

/// Tuning of a [`SpeechOnset`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnsetConfig {
    /// Loud time a run needs before it counts as speech, in milliseconds.
    pub min_speech_ms: u32,
    /// Longest quiet gap inside one run, in milliseconds.
    pub hangover_ms: u32,
    /// Quiet time needed after a reset before loud frames count (an onset is
    /// a rise from quiet: a line loud since the prompt began never triggers).
    pub arm_ms: u32,
    /// Threshold above the noise floor, as a power ratio (8 ≈ 9 dB).
    pub factor: f32,
    /// Absolute threshold, in dBFS of RMS (full-scale sine = -3 dBFS).
    pub floor_dbfs: f32,
}

impl Default for OnsetConfig {
    fn default() -> Self {
        OnsetConfig {
            min_speech_ms: 200,
            hangover_ms: 150,
            arm_ms: 100,
            factor: 8.0,
            floor_dbfs: -38.0,
        }
    }
}

/// Power (mean square over full scale²) of a dBFS RMS level.
fn power_of_dbfs(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// The detector of one leg; reset it when a barge-in playback starts.
#[derive(Debug, Clone)]
pub struct SpeechOnset {
    cfg: OnsetConfig,
    rate: u32,
    abs_power: f32,
    noise: f32,
    /// Loud samples counted in the current run.
    loud: u64,
    /// Quiet samples since the last loud frame of the current run.
    gap: u64,
    /// Quiet samples seen since the reset, up to the arming time.
    quiet: u64,
    fired: bool,
}

/// The noise floor a fresh detector assumes (-70 dBFS, a quiet line).
const INITIAL_NOISE_DBFS: f32 = -70.0;

impl SpeechOnset {
    /// A detector for audio at `rate` Hz.
    pub fn new(rate: u32, cfg: OnsetConfig) -> Self {
        SpeechOnset {
            cfg,
            rate: rate.max(1),
            abs_power: power_of_dbfs(cfg.floor_dbfs),
            noise: power_of_dbfs(INITIAL_NOISE_DBFS),
            loud: 0,
            gap: 0,
            quiet: 0,
            fired: false,
        }
    }

    /// Forget everything (a new playback starts).
    pub fn reset(&mut self) {
        *self = SpeechOnset::new(self.rate, self.cfg);
    }

    /// The current noise-floor estimate, in dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        10.0 * self.noise.max(1e-12).log10()
    }

    /// Whether onset was already reported since the last reset.
    pub fn fired(&self) -> bool {
        self.fired
    }

    fn ms_to_samples(&self, ms: u32) -> u64 {
        u64::from(ms) * u64::from(self.rate) / 1000
    }

    /// Feed one frame (any length, typically 20 ms). Returns true exactly once,
    /// on the frame where speech onset is detected.
    pub fn push(&mut self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return false;
        }
        let sum: f64 = frame
            .iter()
            .map(|&s| {
                let x = f64::from(s) / 32768.0;
                x * x
            })
            .sum();
        let power = (sum / frame.len() as f64) as f32;
        self.push_power(power, frame.len())
    }

    /// Feed `samples` of silence (no packet arrived, Opus DTX). Same return
    /// as [`push`](Self::push) (always false: silence is never onset).
    pub fn push_silence(&mut self, samples: usize) -> bool {
        if samples == 0 {
            return false;
        }
        self.push_power(0.0, samples)
    }

    fn push_power(&mut self, power: f32, samples: usize) -> bool {
        let n = samples as u64;
        let threshold = (self.noise * self.cfg.factor).max(self.abs_power);
        // Frame-length independent smoothing: coefficients per 20 ms frame.
        let frames = n as f32 / (self.rate as f32 / 50.0);
        let adapt = |rate_per_frame: f32| 1.0 - (1.0 - rate_per_frame).powf(frames);
        let armed = self.quiet >= self.ms_to_samples(self.cfg.arm_ms);
        if power >= threshold {
            if armed {
                self.loud += n;
            }
            self.gap = 0;
            // Very slow creep (≈ 4 s): steady loud noise ends up as the floor.
            self.noise += (power - self.noise) * adapt(0.005);
        } else {
            let a = if power < self.noise {
                adapt(0.3)
            } else {
                adapt(0.05)
            };
            self.noise += (power - self.noise) * a;
            self.quiet = (self.quiet + n).min(self.ms_to_samples(self.cfg.arm_ms));
            if self.loud > 0 {
                self.gap += n;
                if self.gap > self.ms_to_samples(self.cfg.hangover_ms) {
                    self.loud = 0;
                    self.gap = 0;
                }
            }
        }
        if !self.fired && self.loud >= self.ms_to_samples(self.cfg.min_speech_ms) {
            self.fired = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;
    const FRAME: usize = 160;

    /// Deterministic pseudo-random noise in [-1, 1).
    struct Lcg(u32);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        }
    }

    fn amp_of_dbfs_rms(db: f32) -> f32 {
        // A sine's RMS is amplitude / √2.
        32768.0 * 10f32.powf(db / 20.0) * std::f32::consts::SQRT_2
    }

    /// A voiced, speech-like signal: 120 Hz glottal harmonics, syllables at 4 Hz.
    fn voiced(ms: u32, level_dbfs: f32, start: usize) -> Vec<i16> {
        let n = (RATE * ms / 1000) as usize;
        let amp = amp_of_dbfs_rms(level_dbfs);
        (start..start + n)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let mut v = 0.0;
                for h in 1..=12 {
                    let hf = h as f32;
                    v += (2.0 * std::f32::consts::PI * 120.0 * hf * t).sin() / hf;
                }
                // Σ 1/h² for h ≤ 12 ≈ 1.56: scale to the RMS of a sine of `amp`.
                let syllable = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                (v / 1.56f32.sqrt() * amp * syllable).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    fn noise(ms: u32, level_dbfs: f32, rng: &mut Lcg) -> Vec<i16> {
        let n = (RATE * ms / 1000) as usize;
        // Uniform noise in [-1, 1) has RMS 1/√3.
        let amp = 32768.0 * 10f32.powf(level_dbfs / 20.0) * 3f32.sqrt();
        (0..n).map(|_| (rng.next() * amp) as i16).collect()
    }

    fn tone(ms: u32, freq: f32, level_dbfs: f32) -> Vec<i16> {
        let n = (RATE * ms / 1000) as usize;
        let amp = amp_of_dbfs_rms(level_dbfs);
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / RATE as f32).sin()) as i16
            })
            .collect()
    }

    /// Feeds `pcm` in 20 ms frames; the frame index (from 0) of onset, if any.
    fn run(d: &mut SpeechOnset, pcm: &[i16]) -> Option<usize> {
        let mut at = None;
        for (i, f) in pcm.chunks(FRAME).enumerate() {
            if d.push(f) {
                assert!(at.is_none(), "onset reported twice");
                at = Some(i);
            }
        }
        at
    }

    fn det() -> SpeechOnset {
        SpeechOnset::new(RATE, OnsetConfig::default())
    }

    #[test]
    fn silence_and_low_noise_never_trigger() {
        let mut d = det();
        assert_eq!(run(&mut d, &vec![0; RATE as usize * 10]), None);
        let mut rng = Lcg(7);
        assert_eq!(run(&mut d, &noise(10_000, -50.0, &mut rng)), None);
        assert!(d.noise_floor_dbfs() > -53.0 && d.noise_floor_dbfs() < -47.0);
    }

    #[test]
    fn speech_after_noise_triggers_after_about_200_ms() {
        let mut d = det();
        let mut rng = Lcg(1);
        let mut pcm = noise(2000, -55.0, &mut rng);
        pcm.extend(voiced(1500, -24.0, 0));
        let at = run(&mut d, &pcm).expect("speech is detected");
        // Speech starts at frame 100; onset after about 200 ms of loud frames.
        assert!((109..=125).contains(&at), "onset at frame {at}");
    }

    #[test]
    fn clicks_and_short_bursts_do_not_trigger() {
        let mut d = det();
        let mut rng = Lcg(3);
        let mut pcm = Vec::new();
        for _ in 0..20 {
            pcm.extend(noise(200, -60.0, &mut rng));
            // A 5 ms loud click, then a 100 ms tone burst (a beep, a DTMF leak).
            pcm.extend(noise(5, -6.0, &mut rng));
            pcm.extend(noise(195, -60.0, &mut rng));
            pcm.extend(tone(100, 1000.0, -15.0));
        }
        assert_eq!(run(&mut d, &pcm), None);
    }

    #[test]
    fn steady_noise_becomes_the_floor_and_speech_above_it_still_triggers() {
        let mut d = det();
        let mut rng = Lcg(11);
        // A noisy line at -45 dBFS for 5 s: never speech.
        assert_eq!(run(&mut d, &noise(5000, -45.0, &mut rng)), None);
        let mut pcm = noise(200, -45.0, &mut rng);
        let v = voiced(1000, -22.0, 0);
        let n = noise(1000, -45.0, &mut rng);
        pcm.extend(v.iter().zip(&n).map(|(a, b)| a.saturating_add(*b)));
        assert!(run(&mut d, &pcm).is_some());
    }

    #[test]
    fn quiet_line_echo_of_a_prompt_does_not_trigger() {
        // A prompt at -20 dBFS returned by a hybrid 20 dB down: -40 dBFS.
        let mut d = det();
        assert_eq!(run(&mut d, &voiced(5000, -40.0, 0)), None);
    }

    #[test]
    fn missing_packets_count_as_silence_and_end_a_run() {
        let mut d = det();
        // 100 ms of voice, 200 ms without packets, 100 ms of voice: no onset.
        assert_eq!(run(&mut d, &voiced(100, -20.0, 0)), None);
        for _ in 0..10 {
            assert!(!d.push_silence(FRAME));
        }
        assert_eq!(run(&mut d, &voiced(100, -20.0, 800)), None);
    }

    #[test]
    fn a_line_loud_from_the_start_must_fall_quiet_first() {
        let mut d = det();
        // A steady loud signal from the first frame: never an onset.
        assert_eq!(run(&mut d, &tone(3000, 440.0, -15.0)), None);
        // After a pause, speech counts again.
        let mut d = det();
        let mut pcm = voiced(1000, -24.0, 0);
        // Talking over the prompt's start: not an onset yet.
        assert_eq!(run(&mut d, &pcm), None);
        pcm = vec![0; 1600];
        pcm.extend(voiced(1000, -24.0, 0));
        assert!(run(&mut d, &pcm).is_some());
    }

    #[test]
    fn fires_once_until_reset() {
        let quiet_then = |v: Vec<i16>| {
            let mut pcm = vec![0i16; 1600];
            pcm.extend(v);
            pcm
        };
        let mut d = det();
        assert!(run(&mut d, &quiet_then(voiced(500, -24.0, 0))).is_some());
        assert!(d.fired());
        assert_eq!(run(&mut d, &quiet_then(voiced(500, -24.0, 4000))), None);
        d.reset();
        assert!(!d.fired());
        assert!(run(&mut d, &quiet_then(voiced(500, -24.0, 8000))).is_some());
    }

    #[test]
    fn espeak_speech_triggers_when_available() {
        // Real speech from espeak-ng at 8 kHz (skipped where not installed).
        let Ok(out) = std::process::Command::new("espeak-ng")
            .args([
                "--stdout",
                "Hello, I would like to speak to an agent please.",
            ])
            .output()
        else {
            eprintln!("espeak-ng not installed; skipped");
            return;
        };
        let wav = out.stdout;
        if wav.len() < 44 || &wav[..4] != b"RIFF" {
            eprintln!("espeak-ng gave no WAV; skipped");
            return;
        }
        // espeak-ng writes 22050 Hz mono 16-bit; decimate crudely to ~7350 Hz by 3.
        let pcm: Vec<i16> = wav[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .step_by(3)
            .collect();
        let mut d = SpeechOnset::new(7350, OnsetConfig::default());
        let mut line = vec![0i16; 7350];
        line.extend(&pcm);
        let mut fired = None;
        for (i, f) in line.chunks(147).enumerate() {
            if d.push(f) {
                fired = Some(i);
                break;
            }
        }
        let at = fired.expect("espeak speech is detected");
        assert!(at >= 50, "not before the speech starts (frame {at})");
    }
}
