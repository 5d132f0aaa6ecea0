//! Prompts and tones: files decoded once by symphonia (WAV, MP3,
//! OGG/Vorbis, FLAC) under `parley-audio-decode`'s limits, mixed down to mono, resampled to the engine rate and
//! cached by path and modification time; playback state advanced 20 ms per
//! tick by the worker.
//!
//! Decoding reads files and takes milliseconds to seconds, so it never runs
//! on a media worker: call [`PromptCache::load`] (through
//! [`crate::Engine::load_prompt`]) from a blocking context (for example
//! `tokio::task::spawn_blocking`) and hand the [`Prompt`] to a leg.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use parley_media_core::tones::{ToneGenerator, ToneSpec};

use crate::codec::resample_clip;
use crate::error::{Error, Result};

/// Decoded audio, mono 16-bit at the engine rate; cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Arc<[i16]>,
    rate: u32,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("samples", &self.samples.len())
            .field("rate", &self.rate)
            .finish()
    }
}

impl Prompt {
    /// A prompt from samples already at `rate`.
    pub fn from_samples(samples: Vec<i16>, rate: u32) -> Self {
        Prompt {
            samples: samples.into(),
            rate,
        }
    }

    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Length.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }
}

fn prompt_err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Prompt {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// Decode any supported file to mono f32 and its sample rate, under the
/// default [`parley_audio_decode::Limits`] (a file longer than 5 minutes, above
/// 96 kHz or with more than 8 channels is refused, and decoding stops there).
pub fn decode_file(path: &Path) -> Result<(Vec<f32>, u32)> {
    let file = File::open(path).map_err(|e| prompt_err(path, e))?;
    let ext = path.extension().and_then(|e| e.to_str());
    let (mono, info) =
        parley_audio_decode::decode_mono(file, ext, &parley_audio_decode::Limits::default())
            .map_err(|e| prompt_err(path, e))?;
    Ok((mono, info.rate))
}

/// Decode `path` and resample it to `rate`.
pub fn load_prompt(path: &Path, rate: u32) -> Result<Prompt> {
    let (mono, from) = decode_file(path)?;
    let resampled = resample_clip(&mono, from, rate)?;
    let samples = resampled
        .iter()
        .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    Ok(Prompt::from_samples(samples, rate))
}

/// Decoded prompts by (path, modification time): a changed file is decoded
/// again. The lock is held only to look up or insert, never while decoding.
#[derive(Debug, Clone, Default)]
pub struct PromptCache {
    inner: Arc<Mutex<HashMap<(PathBuf, SystemTime), Prompt>>>,
}

impl PromptCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prompt for `path` at `rate`, decoded on first use.
    pub fn load(&self, path: &Path, rate: u32) -> Result<Prompt> {
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| prompt_err(path, e))?;
        let key = (path.to_path_buf(), mtime);
        if let Ok(map) = self.inner.lock()
            && let Some(p) = map.get(&key)
            && p.rate == rate
        {
            return Ok(p.clone());
        }
        let prompt = load_prompt(path, rate)?;
        if let Ok(mut map) = self.inner.lock() {
            map.retain(|(p, _), _| p != path);
            map.insert(key, prompt.clone());
        }
        Ok(prompt)
    }

    /// Number of cached prompts.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |m| m.len())
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What to play.
#[derive(Debug, Clone)]
pub enum Source {
    /// A decoded prompt.
    Prompt(Prompt),
    /// A generated tone (ringback, busy, beep, DTMF).
    Tone(ToneSpec),
}

/// Options of a playback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayOptions {
    /// Start again at the end (music on hold) until stopped.
    pub looping: bool,
    /// Stop when the leg reports a DTMF digit (barge-in).
    pub barge_in: bool,
    /// Stop when the caller starts speaking on this leg (speech barge-in):
    /// the worker runs a [`parley_media_core::onset::SpeechOnset`] detector on
    /// the leg's decoded inbound audio while this playback runs, and reports
    /// [`crate::Event::SpeechStarted`] then an interrupted
    /// [`crate::Event::PlaybackDone`].
    pub speech_barge_in: bool,
}

/// A playback in progress (worker side).
#[derive(Debug)]
pub(crate) enum Playback {
    Prompt { prompt: Prompt, pos: usize },
    Tone(ToneGenerator),
}

impl Playback {
    pub(crate) fn new(source: Source, rate: u32) -> Self {
        match source {
            Source::Prompt(prompt) => Playback::Prompt { prompt, pos: 0 },
            Source::Tone(spec) => Playback::Tone(ToneGenerator::new(rate, spec)),
        }
    }

    /// Add the next frame onto `out` (saturating); returns false when the
    /// source has ended (for a loop: never).
    pub(crate) fn mix_into(&mut self, out: &mut [i16], looping: bool) -> bool {
        match self {
            Playback::Prompt { prompt, pos } => {
                let s = prompt.samples();
                if s.is_empty() {
                    return false;
                }
                for o in out.iter_mut() {
                    if *pos >= s.len() {
                        if !looping {
                            break;
                        }
                        *pos = 0;
                    }
                    *o = o.saturating_add(s[*pos]);
                    *pos += 1;
                }
                looping || *pos < s.len()
            }
            Playback::Tone(g) => {
                if g.is_finished() {
                    return false;
                }
                for o in out.iter_mut() {
                    let mut one = [0i16; 1];
                    g.fill(&mut one);
                    *o = o.saturating_add(one[0]);
                }
                !g.is_finished()
            }
        }
    }
}
