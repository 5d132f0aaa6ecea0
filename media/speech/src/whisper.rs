//! whisper-rs: one shared model, one decoding state per worker thread, the encoder
//! context fitted to the clip.

use std::path::Path;
use std::sync::Arc;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::error::{Error, Result};

/// whisper's full encoder context: 1500 frames for 30 s (50 per second).
pub const FULL_AUDIO_CTX: i32 = 1500;
/// The smallest fitted context (~7.7 s). Lower floors cost tiny.en words on 8 kHz call
/// audio (see BENCHMARKS.md).
pub const MIN_AUDIO_CTX: i32 = 384;
/// whisper.cpp refuses clips under a second; shorter ones are padded with silence.
pub const MIN_CLIP_SAMPLES: usize = 16_000 + 1600;

/// The encoder context for a clip of `samples` at 16 kHz: ~50 frames per second plus
/// a margin of 32, at least `floor` (e.g. [`MIN_AUDIO_CTX`]), at most [`FULL_AUDIO_CTX`].
pub fn fitted_audio_ctx(samples: usize, floor: i32) -> i32 {
    let frames = (samples as u64 * 50).div_ceil(16_000) as i32 + 32;
    frames.clamp(floor.min(FULL_AUDIO_CTX), FULL_AUDIO_CTX)
}

/// A loaded model, shared by the workers.
#[derive(Clone)]
pub struct Model {
    ctx: Arc<WhisperContext>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a ggml model (CPU).
    pub fn load(path: &Path) -> Result<Self> {
        whisper_rs::install_logging_hooks();
        let model_err = |what: String| Error::Model {
            path: path.display().to_string(),
            what,
        };
        if !path.is_file() {
            return Err(model_err("no such file".into()));
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let ctx =
            WhisperContext::new_with_params(path, params).map_err(|e| model_err(e.to_string()))?;
        Ok(Model { ctx: Arc::new(ctx) })
    }

    /// Whether the model is multilingual (then each clip's language is detected).
    pub fn multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// A decoding state (one per thread).
    pub fn transcriber(&self, threads: usize) -> Result<Transcriber> {
        let state = self.ctx.create_state().map_err(|e| Error::Transcribe {
            what: e.to_string(),
        })?;
        Ok(Transcriber {
            state,
            multilingual: self.ctx.is_multilingual(),
            threads: threads.max(1),
            min_ctx: MIN_AUDIO_CTX,
            pad: Vec::new(),
        })
    }
}

/// One worker's decoding state.
pub struct Transcriber {
    state: WhisperState,
    multilingual: bool,
    threads: usize,
    min_ctx: i32,
    pad: Vec<f32>,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Transcriber {
    /// Sets the floor of the fitted encoder context.
    pub fn set_min_audio_ctx(&mut self, floor: i32) {
        self.min_ctx = floor;
    }

    /// Transcribes 16 kHz mono audio (greedy). `fit`: shrink the encoder context to
    /// the clip ([`fitted_audio_ctx`]); otherwise whisper's 30 s window.
    pub fn transcribe(&mut self, audio: &[f32], fit: bool) -> Result<String> {
        self.transcribe_lang(audio, fit).map(|(text, _)| text)
    }

    /// [`Transcriber::transcribe`], and the clip's language: with a multilingual model
    /// whisper detects it (ISO 639-1 code, e.g. `es`) and transcribes in it; an
    /// English-only model always answers `en`.
    pub fn transcribe_lang(&mut self, audio: &[f32], fit: bool) -> Result<(String, &'static str)> {
        let audio = if audio.len() < MIN_CLIP_SAMPLES {
            self.pad.clear();
            self.pad.extend_from_slice(audio);
            self.pad.resize(MIN_CLIP_SAMPLES, 0.0);
            &self.pad[..]
        } else {
            audio
        };
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(self.threads as i32);
        // "auto": whisper.cpp detects the language from the clip's encoding first.
        p.set_language(Some(if self.multilingual { "auto" } else { "en" }));
        p.set_translate(false);
        p.set_no_context(true);
        p.set_single_segment(true);
        p.set_no_timestamps(true);
        p.set_print_special(false);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        p.set_suppress_blank(true);
        p.set_suppress_nst(true);
        // Greedy without temperature fallback (latency), but bounded: a decoder stuck
        // in a repetition loop stops at ~8 tokens per second of audio.
        p.set_temperature_inc(0.0);
        p.set_max_tokens((16 + audio.len() / 2000) as i32);
        if fit {
            p.set_audio_ctx(fitted_audio_ctx(audio.len(), self.min_ctx));
        }
        self.state.full(p, audio).map_err(|e| Error::Transcribe {
            what: e.to_string(),
        })?;
        let mut text = String::new();
        for seg in self.state.as_iter() {
            if let Ok(s) = seg.to_str_lossy() {
                text.push_str(&s);
            }
        }
        let lang = if self.multilingual {
            whisper_rs::get_lang_str(self.state.full_lang_id_from_state()).unwrap_or("en")
        } else {
            "en"
        };
        Ok((clean(&text), lang))
    }
}

/// Trims whisper's output and drops non-speech markers (`[BLANK_AUDIO]`, `(music)`).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_is_fitted_with_a_floor() {
        assert_eq!(fitted_audio_ctx(16_000, MIN_AUDIO_CTX), MIN_AUDIO_CTX);
        assert_eq!(fitted_audio_ctx(16_000 * 10, 256), 532);
        assert_eq!(fitted_audio_ctx(16_000 * 10, 768), 768);
        assert_eq!(fitted_audio_ctx(16_000 * 40, MIN_AUDIO_CTX), FULL_AUDIO_CTX);
    }

    #[test]
    fn markers_are_removed() {
        assert_eq!(clean(" [BLANK_AUDIO] "), "");
        assert_eq!(clean(" Hello (coughs) there. "), "Hello there.");
    }
}
