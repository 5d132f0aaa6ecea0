//! Voice activity detection and utterance segmentation, sans-IO: 20 ms frames go in
//! with their timestamps, finished utterances (16 kHz audio with start and end) come
//! out.
//!
//! The detector is an adaptive energy VAD: a frame is voiced when its level is
//! [`VadConfig::margin_db`] above a tracked noise floor and above an absolute floor.
//! An utterance starts after [`VadConfig::start_frames`] voiced frames (with
//! [`VadConfig::preroll_ms`] of audio before it), ends after
//! [`VadConfig::end_silence_ms`] without voice, and is split at
//! [`VadConfig::max_utterance_ms`]. Utterances with less than
//! [`VadConfig::min_voiced_ms`] of voice are dropped as noise (counted). Measured
//! against `webrtc-vad` 0.4 in `tests/vad.rs`: more conservative (what it calls voice,
//! WebRTC does too; WebRTC also flags low-level tails), which the preroll and hangover
//! absorb.

use std::collections::VecDeque;

use crate::error::Result;
use crate::resample::Upsampler;

/// Segmentation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Level above the noise floor that counts as voice, dB.
    pub margin_db: f32,
    /// Level that never counts as voice, dBFS.
    pub absolute_floor_dbfs: f32,
    /// Voiced frames in a row that start an utterance.
    pub start_frames: u32,
    /// Silence that ends an utterance, ms.
    pub end_silence_ms: u64,
    /// Audio kept before the first voiced frame, ms.
    pub preroll_ms: u64,
    /// Longest utterance; longer speech is split, ms.
    pub max_utterance_ms: u64,
    /// Utterances with less voice than this are noise, ms.
    pub min_voiced_ms: u64,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            margin_db: 12.0,
            absolute_floor_dbfs: -48.0,
            start_frames: 3,
            end_silence_ms: 500,
            preroll_ms: 200,
            max_utterance_ms: 15_000,
            min_voiced_ms: 200,
        }
    }
}

/// The per-frame detector.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    cfg: VadConfig,
    floor_db: f32,
}

/// Level of a frame in dBFS (-100 for digital silence).
pub fn level_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return -100.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / pcm.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

impl EnergyVad {
    /// A detector.
    pub fn new(cfg: VadConfig) -> Self {
        EnergyVad {
            cfg,
            floor_db: -70.0,
        }
    }

    /// Whether this frame is voice; updates the noise floor.
    pub fn is_voice(&mut self, pcm: &[i16]) -> bool {
        let db = level_dbfs(pcm);
        let voiced = db > self.floor_db + self.cfg.margin_db && db > self.cfg.absolute_floor_dbfs;
        // The floor follows quiet frames down at once and creeps up slowly (0.5 dB/s),
        // so steady noise is learnt but speech does not raise it.
        if db < self.floor_db {
            self.floor_db = db.max(-90.0);
        } else if !voiced {
            self.floor_db += (db - self.floor_db).min(0.5) * 0.2;
        } else {
            self.floor_db += 0.01;
        }
        voiced
    }

    /// The current noise floor, dBFS.
    pub fn floor_db(&self) -> f32 {
        self.floor_db
    }
}

/// A finished utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Start, ms from the stream's epoch (preroll included).
    pub start_ms: u64,
    /// End (last voiced frame), ms.
    pub end_ms: u64,
    /// 16 kHz mono audio.
    pub audio: Vec<f32>,
    /// Utterances merged into this one (1 = one).
    pub parts: u32,
}

impl Utterance {
    /// Audio length, ms.
    pub fn audio_ms(&self) -> u64 {
        self.audio.len() as u64 / 16
    }

    /// Appends `next` (degradation: fewer, longer segments), with 200 ms of silence
    /// between them.
    pub fn merge(&mut self, next: Utterance) {
        self.audio.extend(std::iter::repeat_n(0.0, 3200));
        self.audio.extend_from_slice(&next.audio);
        self.end_ms = next.end_ms;
        self.parts += next.parts;
    }
}

/// What a frame produced.
#[derive(Debug, Clone, PartialEq)]
pub enum SegEvent {
    /// Speech started at this time (ms).
    Started(u64),
    /// An utterance ended.
    Utterance(Utterance),
    /// Speech in a paused span (PCI) was discarded, this many ms.
    Discarded(u64),
    /// A burst too short to be speech was dropped, this many ms.
    Noise(u64),
}

/// Segments one stream: resampler + VAD + utterance buffer.
#[derive(Debug)]
pub struct Segmenter {
    cfg: VadConfig,
    vad: EnergyVad,
    up: Upsampler,
    /// Recent 16 kHz audio before speech started.
    preroll: VecDeque<f32>,
    preroll_max: usize,
    current: Option<Utterance>,
    voiced_run: u32,
    voiced_ms: u64,
    silence_ms: u64,
    last_voiced_ms: u64,
    scratch: Vec<f32>,
}

impl Segmenter {
    /// A segmenter for frames at `rate` Hz.
    pub fn new(rate: u32, cfg: VadConfig) -> Result<Self> {
        let preroll_max = (cfg.preroll_ms * 16) as usize;
        Ok(Segmenter {
            cfg,
            vad: EnergyVad::new(cfg),
            up: Upsampler::new(rate)?,
            preroll: VecDeque::with_capacity(preroll_max + 320),
            preroll_max,
            current: None,
            voiced_run: 0,
            voiced_ms: 0,
            silence_ms: 0,
            last_voiced_ms: 0,
            scratch: Vec::with_capacity(320),
        })
    }

    /// Whether an utterance is in progress.
    pub fn in_speech(&self) -> bool {
        self.current.is_some()
    }

    /// One 20 ms frame whose start is `at_ms`. `paused`: the span must not be
    /// transcribed (an utterance in progress is discarded).
    pub fn push(&mut self, at_ms: u64, pcm: &[i16], paused: bool) -> Result<Option<SegEvent>> {
        const FRAME_MS: u64 = 20;
        if paused {
            self.preroll.clear();
            self.voiced_run = 0;
            return Ok(self
                .current
                .take()
                .map(|u| SegEvent::Discarded(u.audio_ms())));
        }
        let voiced = self.vad.is_voice(pcm);
        self.scratch.clear();
        self.up.process(pcm, &mut self.scratch)?;
        let end_ms = at_ms + FRAME_MS;
        if let Some(u) = self.current.as_mut() {
            u.audio.extend_from_slice(&self.scratch);
            if voiced {
                self.silence_ms = 0;
                self.voiced_ms += FRAME_MS;
                self.last_voiced_ms = end_ms;
            } else {
                self.silence_ms += FRAME_MS;
            }
            let too_long = end_ms.saturating_sub(u.start_ms) >= self.cfg.max_utterance_ms;
            if self.silence_ms >= self.cfg.end_silence_ms || too_long {
                return Ok(self.finish());
            }
            return Ok(None);
        }
        self.preroll.extend(self.scratch.iter().copied());
        while self.preroll.len()
            > self.preroll_max + self.scratch.len() * self.cfg.start_frames as usize
        {
            self.preroll.pop_front();
        }
        if voiced {
            self.voiced_run += 1;
        } else {
            self.voiced_run = 0;
        }
        if self.voiced_run >= self.cfg.start_frames {
            let audio: Vec<f32> = self.preroll.drain(..).collect();
            let start_ms = end_ms.saturating_sub(audio.len() as u64 / 16);
            self.voiced_ms = u64::from(self.voiced_run) * FRAME_MS;
            self.silence_ms = 0;
            self.last_voiced_ms = end_ms;
            self.voiced_run = 0;
            self.current = Some(Utterance {
                start_ms,
                end_ms,
                audio,
                parts: 1,
            });
            return Ok(Some(SegEvent::Started(start_ms)));
        }
        Ok(None)
    }

    /// Ends the utterance in progress now (end of stream).
    pub fn flush(&mut self) -> Option<SegEvent> {
        self.current.as_ref()?;
        self.finish()
    }

    fn finish(&mut self) -> Option<SegEvent> {
        let mut u = self.current.take()?;
        let voiced = std::mem::take(&mut self.voiced_ms);
        self.silence_ms = 0;
        if voiced < self.cfg.min_voiced_ms {
            return Some(SegEvent::Noise(u.audio_ms()));
        }
        // Keep 200 ms of the trailing silence (word endings), cut the rest.
        let keep_ms = self.last_voiced_ms.saturating_sub(u.start_ms) + 200;
        u.audio.truncate((keep_ms * 16) as usize);
        u.end_ms = self.last_voiced_ms;
        Some(SegEvent::Utterance(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64, amp: f32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| (amp * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    fn run(seg: &mut Segmenter, pcm: &[i16], t0: u64, paused: bool) -> Vec<SegEvent> {
        let mut out = Vec::new();
        for (i, c) in pcm.chunks(160).enumerate() {
            if let Some(e) = seg.push(t0 + i as u64 * 20, c, paused).expect("push") {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn finds_two_utterances_with_times() {
        let mut seg = Segmenter::new(8000, VadConfig::default()).expect("seg");
        let mut pcm = vec![0i16; 8 * 1000];
        pcm.extend(tone(1200, 8000.0));
        pcm.extend(vec![0i16; 8 * 1000]);
        pcm.extend(tone(600, 8000.0));
        pcm.extend(vec![0i16; 8 * 1000]);
        let evs = run(&mut seg, &pcm, 0, false);
        let utts: Vec<&Utterance> = evs
            .iter()
            .filter_map(|e| match e {
                SegEvent::Utterance(u) => Some(u),
                _ => None,
            })
            .collect();
        assert_eq!(utts.len(), 2, "{evs:?}");
        assert!(
            (800..=1000).contains(&utts[0].start_ms),
            "{}",
            utts[0].start_ms
        );
        assert!(
            (2180..=2220).contains(&utts[0].end_ms),
            "{}",
            utts[0].end_ms
        );
        assert!((3000..=3300).contains(&utts[1].start_ms));
        assert!((3780..=3820).contains(&utts[1].end_ms));
        // 16 kHz audio: speech + preroll + 200 ms tail.
        assert!(utts[0].audio_ms() >= 1200 && utts[0].audio_ms() <= 1700);
    }

    #[test]
    fn short_clicks_are_noise_and_steady_noise_is_learnt() {
        let mut seg = Segmenter::new(8000, VadConfig::default()).expect("seg");
        // Steady hum at -30 dBFS for 3 s: learnt as the floor, no utterance.
        let mut pcm = tone(3000, 1000.0);
        pcm.extend(tone(100, 12000.0));
        pcm.extend(tone(2000, 1000.0));
        let evs = run(&mut seg, &pcm, 0, false);
        assert!(
            !evs.iter().any(|e| matches!(e, SegEvent::Utterance(_))),
            "{evs:?}"
        );
    }

    #[test]
    fn paused_span_discards_speech_in_progress() {
        let mut seg = Segmenter::new(8000, VadConfig::default()).expect("seg");
        let evs = run(&mut seg, &tone(800, 8000.0), 0, false);
        assert!(matches!(evs[0], SegEvent::Started(_)));
        let evs = run(&mut seg, &tone(400, 8000.0), 800, true);
        assert!(matches!(evs[0], SegEvent::Discarded(_)), "{evs:?}");
        let evs = run(&mut seg, &vec![0; 8000], 1200, false);
        assert!(evs.is_empty());
    }

    #[test]
    fn long_speech_is_split() {
        let cfg = VadConfig {
            max_utterance_ms: 2000,
            ..VadConfig::default()
        };
        let mut seg = Segmenter::new(8000, cfg).expect("seg");
        let evs = run(&mut seg, &tone(5000, 8000.0), 0, false);
        let n = evs
            .iter()
            .filter(|e| matches!(e, SegEvent::Utterance(_)))
            .count();
        assert_eq!(n, 2, "{evs:?}");
    }
}
