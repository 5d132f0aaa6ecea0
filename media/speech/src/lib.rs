//! # parley-speech
//!
//! Local, live speech for Parley calls. It never touches the database or a socket:
//!
//! * **Taps in.** The media engine copies each tapped leg's decoded inbound audio,
//!   one 20 ms frame per tick, into one bounded channel ([`parley_media_core::tap`])
//!   with a `try_send`; the media path never waits.
//! * **Segmenting** ([`vad`]): one ingest thread resamples each stream to 16 kHz with
//!   rubato ([`resample`]) and splits it into utterances with an adaptive energy VAD
//!   (sans-IO, timestamps in, utterances out).
//! * **Transcribing** ([`whisper`]): a fixed pool of whisper-rs workers (one shared
//!   model, one state each) with a bounded live queue; the encoder context
//!   (`audio_ctx`) is fitted to each utterance instead of whisper's 30 s window.
//!   Under overload live work degrades in a stated order (merge → post-call → drop,
//!   see [`engine`]) and every step is counted in [`SpeechMetrics`].
//! * **Understanding** ([`analysis`]): VADER sentiment per utterance, a call trend,
//!   phrase and sustained-negative alerts, keywords, an intent and an extractive
//!   summary behind the [`Summarizer`] trait.

pub mod analysis;
pub mod engine;
pub mod error;
pub mod resample;
pub mod vad;
pub mod whisper;

pub use analysis::{
    Alert, AlertRules, CallAnalysis, CallInsights, ExtractiveSummarizer, Line, Speaker, Summarizer,
    Trend, detect_intent, sentiment,
};
pub use engine::{
    Degradation, Priority, Segment, SpeechConfig, SpeechEngine, SpeechEvent, SpeechMetrics,
    StreamModel, StreamTap,
};
pub use error::{Error, Result};
pub use vad::VadConfig;
pub use whisper::{Decoding, Model, Transcriber, fitted_audio_ctx};
