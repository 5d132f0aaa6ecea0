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

/// How whisper decodes a clip. The defaults are what the live path uses; the choices
/// are measured in BENCHMARKS.md ("Local models").
#[derive(Debug, Clone, PartialEq)]
pub struct Decoding {
    /// The spoken language (ISO 639-1, e.g. `es`) forced on a multilingual model;
    /// `None`: detected per clip. An English-only model always decodes English.
    pub language: Option<String>,
    /// Beam width; 1 (or 0) is greedy.
    pub beam_size: u32,
    /// Retry at rising temperature (0.2 steps) when a decode looks like a repetition
    /// loop (the entropy of its last tokens under 2.4, whisper.cpp's stand-in for
    /// OpenAI's compression ratio) or is unlikely (mean log-probability under -1), as
    /// OpenAI's decoder does. Off by default: on Whisper base it took the committed set
    /// from 70 % to 33 % WER, but dropping repeated sentences ([`collapse_repeats`],
    /// always on) took it to 28 % without it, at no cost, and both together measured
    /// 30 % (BENCHMARKS.md, "Local models").
    pub temperature_fallback: bool,
    /// The floor of the fitted encoder context ([`fitted_audio_ctx`]).
    pub min_audio_ctx: i32,
    /// Text given to the decoder as the previous context (e.g. the tenant's
    /// vocabulary: product and queue names).
    pub prompt: Option<String>,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            language: None,
            beam_size: 1,
            temperature_fallback: false,
            min_audio_ctx: MIN_AUDIO_CTX,
            prompt: None,
        }
    }
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
            decoding: Decoding::default(),
            pad: Vec::new(),
        })
    }
}

/// One worker's decoding state.
pub struct Transcriber {
    state: WhisperState,
    multilingual: bool,
    threads: usize,
    decoding: Decoding,
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
        self.decoding.min_audio_ctx = floor;
    }

    /// Sets how clips are decoded.
    pub fn set_decoding(&mut self, decoding: Decoding) {
        self.decoding = decoding;
    }

    /// Forces a language on a multilingual model (`None`: detected per clip).
    pub fn set_language(&mut self, language: Option<String>) {
        self.decoding.language = language;
    }

    /// How clips are decoded.
    pub fn decoding(&self) -> &Decoding {
        &self.decoding
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
        let d = &self.decoding;
        let mut p = if d.beam_size > 1 {
            FullParams::new(SamplingStrategy::BeamSearch {
                beam_size: d.beam_size as i32,
                patience: -1.0,
            })
        } else {
            FullParams::new(SamplingStrategy::Greedy { best_of: 1 })
        };
        p.set_n_threads(self.threads as i32);
        // A forced language must be one whisper knows; "auto": whisper.cpp detects the
        // language from the clip's encoding first.
        let forced = match d.language.as_deref() {
            Some(code) if self.multilingual => Some(language_code(code)?),
            _ => None,
        };
        p.set_language(Some(match forced {
            Some(code) => code,
            None if self.multilingual => "auto",
            None => "en",
        }));
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
        if let Some(prompt) = d.prompt.as_deref().filter(|t| !t.trim().is_empty()) {
            p.set_initial_prompt(prompt);
        }
        if d.temperature_fallback {
            p.set_temperature_inc(0.2);
            p.set_entropy_thold(2.4);
            p.set_logprob_thold(-1.0);
        } else {
            // Greedy without temperature fallback (latency).
            p.set_temperature_inc(0.0);
        }
        // Bounded either way: a decoder stuck in a repetition loop stops at ~8 tokens
        // per second of audio.
        p.set_max_tokens((16 + audio.len() / 2000) as i32);
        if fit {
            p.set_audio_ctx(fitted_audio_ctx(audio.len(), d.min_audio_ctx));
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
        let lang = if let Some(code) = forced {
            code
        } else if self.multilingual {
            whisper_rs::get_lang_str(self.state.full_lang_id_from_state()).unwrap_or("en")
        } else {
            "en"
        };
        Ok((collapse_repeats(&clean(&text)), lang))
    }
}

/// whisper's own spelling of a language code (a `&'static str`), or
/// [`Error::Language`] for one it does not know.
pub fn language_code(code: &str) -> Result<&'static str> {
    // whisper-rs panics on an interior NUL; whisper knows only short ASCII names.
    if code.is_empty() || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Language {
            code: code.to_owned(),
        });
    }
    whisper_rs::get_lang_id(&code.to_ascii_lowercase())
        .and_then(whisper_rs::get_lang_str)
        .ok_or_else(|| Error::Language {
            code: code.to_owned(),
        })
}

/// Drops a sentence that repeats the one before it word for word (case and
/// punctuation aside) when it has at least three words: the residue of a repetition
/// loop that the temperature fallback's entropy test does not catch (two copies of a
/// sentence, e.g. "Clean, cancel my account today. Clean, cancel my account today.").
/// Short repeats ("No. No.") are speech and stay.
pub fn collapse_repeats(text: &str) -> String {
    let norm = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut out = String::with_capacity(text.len());
    let mut last: Vec<String> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['.', '?', '!']).map_or(rest.len(), |i| i + 1);
        let (sentence, tail) = rest.split_at(end);
        rest = tail;
        let words = norm(sentence);
        if words.len() >= 3 && words == last {
            continue;
        }
        if !words.is_empty() {
            last = words;
        }
        out.push_str(sentence);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
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

    /// A tenant's language reaches whisper-rs, which panics on an interior NUL: codes
    /// are checked first, and only languages whisper knows pass.
    #[test]
    fn language_codes_are_whispers_own_or_refused() {
        assert_eq!(language_code("es").ok(), Some("es"));
        assert_eq!(language_code("EN").ok(), Some("en"));
        assert_eq!(language_code("spanish").ok(), Some("es"));
        for bad in ["", "xx", "e\0s", "es-ES", "../en", &"a".repeat(40)] {
            assert!(
                matches!(language_code(bad), Err(Error::Language { .. })),
                "{bad:?}"
            );
        }
        assert!(!Decoding::default().temperature_fallback);
    }

    /// Whisper base's residual loops (BENCHMARKS.md, "Local models").
    #[test]
    fn repeated_sentences_collapse_short_ones_stay() {
        assert_eq!(
            collapse_repeats("Clean, cancel my account today. Clean, cancel my account today."),
            "Clean, cancel my account today."
        );
        assert_eq!(
            collapse_repeats("Clean and me an outlet card. clean and me an outlet card"),
            "Clean and me an outlet card."
        );
        assert_eq!(collapse_repeats("No. No. I said no."), "No. No. I said no.");
        assert_eq!(
            collapse_repeats("I want a refund. I want a refund now."),
            "I want a refund. I want a refund now."
        );
        assert_eq!(collapse_repeats("Is it 3.5 percent?"), "Is it 3.5 percent?");
        assert_eq!(collapse_repeats(""), "");
    }

    #[test]
    fn markers_are_removed() {
        assert_eq!(clean(" [BLANK_AUDIO] "), "");
        assert_eq!(clean(" Hello (coughs) there. "), "Hello there.");
    }
}
