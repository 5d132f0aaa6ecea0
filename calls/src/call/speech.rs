//! Live transcription on calls whose media Parley terminates (IVR calls and the agents
//! bridged to them): the call task taps the caller's leg and any agent's leg into the
//! speech engine (one stream per speaker), publishes each transcribed utterance with its
//! sentiment as a `transcript.segment` event, raises supervisor alerts (watched phrases,
//! sustained negative sentiment), and when the call ends hands the transcript, trend,
//! summary, keywords and intent to the call's interaction (see `ivr_finish`). The same
//! caller stream feeds the IVR's speech-input node.
//!
//! Controls: the tenant's speech settings ("AI toggle", consent policy, phrases); a
//! queue's own toggle switches it off for the calls it takes ([`Call::speech_queue`]).
//! A PCI pause (the `pause_recording` call action, [`Call::pci_apply`]) pauses the
//! recording and every tap in the media engine: no transcript of that span.

use std::sync::Arc;
use std::time::Duration;

use parley_cases::transcripts::{SpeechSettings, TranscriptSegment};
use parley_media::LegId;
use parley_speech::{
    AlertRules, CallAnalysis, CallInsights, ExtractiveSummarizer, Line, Priority, Speaker,
    SpeechEngine, SpeechEvent, StreamModel,
};
use tokio::sync::mpsc;

use super::Call;

/// The end of a call waits for each of its streams to report its last segment done
/// ([`SpeechEvent::Closed`]); this bound is only a safety net (an engine stuck on a
/// long post-call backlog).
const FINISH_WAIT: Duration = Duration::from_secs(60);

/// The speech state of one call.
pub(super) struct CallSpeech {
    engine: Arc<SpeechEngine>,
    /// The tenant's model and language choice for this call's streams.
    model: StreamModel,
    epoch: std::time::Instant,
    tx: Option<mpsc::UnboundedSender<SpeechEvent>>,
    rx: mpsc::UnboundedReceiver<SpeechEvent>,
    /// Open streams: (stream, leg, speaker).
    streams: Vec<(u64, LegId, Speaker)>,
    /// Every stream opened for the call, and those that reported their last segment.
    opened: Vec<u64>,
    closed: std::collections::HashSet<u64>,
    /// Transcription is on for this call (publish, store); otherwise the caller's
    /// stream only serves the IVR's speech node.
    transcribe: bool,
    /// An IVR speech node is listening to the caller.
    listening: bool,
    analysis: CallAnalysis,
    segments: Vec<TranscriptSegment>,
    customer_id: Option<String>,
    /// Words the caller said per detected language.
    languages: std::collections::BTreeMap<&'static str, usize>,
}

/// What the end of a transcribed call leaves for its interaction.
pub(super) struct Finished {
    pub(super) insights: CallInsights,
    pub(super) segments: Vec<TranscriptSegment>,
    /// The caller's language: the one most of their words were detected in.
    pub(super) language: Option<&'static str>,
}

/// The engine's model and language for a tenant's settings: its chosen model when the
/// engine has it (else the engine's default: `auto`, the default's own id, or a model
/// not installed here), its forced language if any.
pub(super) fn stream_model(engine: &SpeechEngine, settings: &SpeechSettings) -> StreamModel {
    let model = (settings.model != "auto")
        .then(|| engine.models().find(|m| *m == settings.model))
        .flatten()
        .map(str::to_owned);
    if model.is_none() && settings.model != "auto" {
        tracing::debug!(model = %settings.model, "tenant's speech model is the default or not installed; using the default");
    }
    StreamModel {
        model,
        language: settings.language.clone(),
    }
}

/// The language most words were said in (ties: the alphabetically first).
pub(super) fn main_language(
    words: &std::collections::BTreeMap<&'static str, usize>,
) -> Option<&'static str> {
    words
        .iter()
        .filter(|(l, n)| !l.is_empty() && **n > 0)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(l, _)| *l)
}

/// The next speech event of the call, or never.
pub(super) async fn next_event(speech: &mut Option<CallSpeech>) -> Option<SpeechEvent> {
    match speech {
        Some(s) if s.tx.is_some() => s.rx.recv().await,
        _ => std::future::pending().await,
    }
}

impl Call {
    fn speech_engine(&self) -> Option<Arc<SpeechEngine>> {
        self.config.speech.clone()
    }

    /// The call entered queue `queue_id`: when the queue's AI toggle is off,
    /// transcription stops for the rest of the call and nothing of it is stored (what
    /// the IVR part produced is dropped). The caller's stream stays open while an IVR
    /// speech node listens.
    pub(super) async fn speech_queue(&mut self, queue_id: &str) {
        if !self.speech_transcribes() {
            return;
        }
        let Some(actor) = self.ivr_actor() else {
            return;
        };
        match self.store.queue_transcription(&actor, queue_id).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "queue speech setting unavailable; not transcribing");
            }
        }
        tracing::info!(call = self.no, queue = queue_id, "queue transcription off");
        let Some(s) = self.speech.as_mut() else {
            return;
        };
        s.transcribe = false;
        s.segments.clear();
        let listening = s.listening;
        let legs: Vec<(LegId, Speaker)> = s.streams.iter().map(|(_, l, w)| (*l, *w)).collect();
        for (leg, speaker) in legs {
            if !(listening && speaker == Speaker::Caller) {
                self.speech_untap(leg);
            }
        }
    }

    /// Whether the IVR may offer speech input (an engine is configured).
    pub(super) fn speech_available(&self) -> bool {
        self.speech_engine().is_some()
    }

    /// Sets the call up after its media is answered: loads the tenant's settings and
    /// the caller's consent, and taps the caller when transcription is on.
    pub(super) async fn speech_start(&mut self) {
        let Some(engine) = self.speech_engine() else {
            return;
        };
        let Some(actor) = self.ivr_actor() else {
            return;
        };
        let settings = match self.store.speech_settings(&actor).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "speech settings unavailable; not transcribing");
                SpeechSettings::default()
            }
        };
        let mut transcribe = settings.transcription;
        let caller = self.ivr_caller();
        let customer_id = match self.ivr_find_customer(&caller).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "customer lookup failed");
                None
            }
        };
        if transcribe && settings.require_consent {
            let consent = match &customer_id {
                Some(id) => self
                    .store
                    .customer(&actor, id)
                    .await
                    .map(|c| c.consent.recording)
                    .unwrap_or(false),
                None => false,
            };
            if !consent {
                tracing::info!(call = self.no, "no recording consent: not transcribing");
                transcribe = false;
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let model = stream_model(&engine, &settings);
        self.speech = Some(CallSpeech {
            engine,
            model,
            epoch: std::time::Instant::now(),
            tx: Some(tx),
            rx,
            streams: Vec::new(),
            opened: Vec::new(),
            closed: std::collections::HashSet::new(),
            transcribe,
            listening: false,
            analysis: CallAnalysis::new(AlertRules {
                phrases: settings.alert_phrases,
                ..AlertRules::default()
            }),
            segments: Vec::new(),
            customer_id,
            languages: std::collections::BTreeMap::new(),
        });
        if transcribe && let Some(leg) = self.media.as_ref().map(|m| m.leg) {
            self.speech_tap(leg, Speaker::Caller);
        }
    }

    /// Opens a stream for `leg` and taps it.
    fn speech_tap(&mut self, leg: LegId, speaker: Speaker) {
        let paused = self.pci_paused();
        let (Some(s), Some(m)) = (self.speech.as_mut(), self.media.as_ref()) else {
            return;
        };
        if s.streams.iter().any(|(_, l, _)| *l == leg) {
            return;
        }
        let Some(tx) = s.tx.clone() else { return };
        let rate = 8000;
        let opened = s
            .engine
            .open_stream_with(speaker, Priority::Normal, s.epoch, rate, tx.clone(), &s.model)
            .or_else(|e| {
                // A language whisper does not know: the tenant's model, detected.
                tracing::warn!(error = %e, "speech stream with the tenant's choice not opened; trying the default");
                s.engine
                    .open_stream(speaker, Priority::Normal, s.epoch, rate, tx)
            });
        match opened {
            Ok(tap) => {
                if m.handle.tap(leg, tap.sender.clone()).is_ok() {
                    // A leg added during a PCI pause starts paused.
                    if paused {
                        let _ = m.handle.pause_tap(leg, true);
                    }
                    s.streams.push((tap.id, leg, speaker));
                    s.opened.push(tap.id);
                } else {
                    s.engine.close_stream(tap.id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "speech stream not opened"),
        }
    }

    /// Stops transcribing `leg` (its last utterance is still delivered).
    pub(super) fn speech_untap(&mut self, leg: LegId) {
        let Some(s) = self.speech.as_mut() else {
            return;
        };
        if let Some(i) = s.streams.iter().position(|(_, l, _)| *l == leg) {
            let (id, leg, _) = s.streams.remove(i);
            if let Some(m) = &self.media {
                let _ = m.handle.untap(leg);
            }
            s.engine.close_stream(id);
        }
    }

    /// An agent's leg was bridged with the caller's: transcribe the agent too.
    pub(super) fn speech_agent_bridged(&mut self, leg: LegId) {
        if self.speech.as_ref().is_some_and(|s| s.transcribe) {
            self.speech_tap(leg, Speaker::Agent);
        }
    }

    /// The IVR's speech node starts or stops listening to the caller.
    pub(super) fn speech_listen(&mut self, on: bool) {
        let Some(s) = self.speech.as_mut() else {
            return;
        };
        s.listening = on;
        let transcribe = s.transcribe;
        let Some(leg) = self.media.as_ref().map(|m| m.leg) else {
            return;
        };
        if on {
            self.speech_tap(leg, Speaker::Caller);
        } else if !transcribe {
            self.speech_untap(leg);
        }
    }

    /// PCI: applies the call's pause state ([`Call::pci_paused`]) to every leg that
    /// records (the caller's: the call recording or a voicemail; the recording's
    /// metadata counts the paused time and its audio is silence) and every tapped leg
    /// (no transcript of the span). Called when the state changes and when a
    /// recording starts; taps opened later start paused (see `speech_tap`).
    pub(super) fn pci_apply(&self) {
        let paused = self.pci_paused();
        let Some(m) = self.media.as_ref() else {
            return;
        };
        // Not recording yet: the state applies when a recording starts.
        if self.acd_recording() || self.ivr_recording() {
            let _ = m.handle.pause_recording(m.leg, paused);
        }
        if let Some(s) = self.speech.as_ref() {
            for (_, leg, _) in &s.streams {
                let _ = m.handle.pause_tap(*leg, paused);
            }
        }
    }

    /// A speech event of the call.
    pub(super) async fn on_speech_event(&mut self, ev: SpeechEvent) {
        let SpeechEvent::Segment(seg) = ev else {
            match ev {
                SpeechEvent::Degraded { what, audio_ms, .. } => {
                    tracing::info!(call = self.no, ?what, audio_ms, "transcription degraded");
                }
                SpeechEvent::Closed { stream } => {
                    if let Some(s) = self.speech.as_mut() {
                        s.closed.insert(stream);
                    }
                }
                _ => {}
            }
            return;
        };
        // The live call's id (`GET /calls`): the desktop tells whose call a segment is.
        let call_id = self.ctl_id().to_owned();
        // The users on the call (agent, consulted colleague, parties): of the agents
        // only they receive its transcript.
        let on_call = self.users_on_call();
        let Some(s) = self.speech.as_mut() else {
            return;
        };
        if seg.text.is_empty() {
            return;
        }
        let feed_ivr = s.listening && seg.speaker == Speaker::Caller && seg.live;
        if s.transcribe {
            if seg.speaker == Speaker::Caller {
                *s.languages.entry(seg.language).or_default() +=
                    seg.text.split_whitespace().count();
            }
            let segment = TranscriptSegment {
                speaker: seg.speaker.as_str().to_owned(),
                start_ms: seg.start_ms as i64,
                end_ms: seg.end_ms as i64,
                text: seg.text.clone(),
                sentiment: f64::from(seg.sentiment),
                live: seg.live,
            };
            let alerts = s.analysis.add(Line {
                speaker: seg.speaker,
                start_ms: seg.start_ms,
                end_ms: seg.end_ms,
                text: seg.text.clone(),
                sentiment: seg.sentiment,
            });
            if let Some(actor) = self.ivr.as_ref().map(|r| r.actor()) {
                let customer = s.customer_id.as_deref();
                if let Err(e) = self
                    .store
                    .publish_transcript_segment(&actor, &call_id, customer, &on_call, &segment)
                {
                    tracing::debug!(error = %e, "segment not published");
                }
                for a in &alerts {
                    let v = serde_json::to_value(a).unwrap_or_default();
                    self.store.publish_transcript_alert(&actor, &call_id, &v);
                }
            }
            s.segments.push(segment);
        }
        if feed_ivr {
            // whisper gives no calibrated confidence; a heard utterance counts as sure.
            self.ivr_event(parley_ivr::Event::SpeechResult {
                text: seg.text,
                confidence: 1.0,
            })
            .await;
        }
    }

    /// The call ended: closes the streams, waits until each reports its last segment
    /// done (bounded by [`FINISH_WAIT`] as a safety net) and returns what goes on the
    /// interaction (`None` when nothing was transcribed).
    pub(super) async fn speech_finish(&mut self) -> Option<Finished> {
        let legs: Vec<LegId> = self
            .speech
            .as_ref()
            .map(|s| s.streams.iter().map(|(_, l, _)| *l).collect())
            .unwrap_or_default();
        for leg in legs {
            self.speech_untap(leg);
        }
        let mut s = self.speech.take()?;
        s.tx = None;
        let deadline = tokio::time::Instant::now() + FINISH_WAIT;
        let mut rest = Vec::new();
        while s.opened.iter().any(|id| !s.closed.contains(id)) {
            match tokio::time::timeout_at(deadline, s.rx.recv()).await {
                Ok(Some(SpeechEvent::Closed { stream })) => {
                    s.closed.insert(stream);
                }
                Ok(Some(ev)) => rest.push(ev),
                // Every stream's sender is gone: nothing more can come.
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(call = self.no, "last transcript segments not done in time");
                    break;
                }
            }
        }
        // Whatever else is already there (no waiting).
        while let Ok(ev) = s.rx.try_recv() {
            rest.push(ev);
        }
        let transcribe = s.transcribe;
        s.listening = false;
        self.speech = Some(s);
        for ev in rest {
            self.on_speech_event(ev).await;
        }
        let s = self.speech.take()?;
        if !transcribe || s.segments.is_empty() {
            return None;
        }
        let mut segments = s.segments;
        segments.sort_by_key(|x| (x.start_ms, x.end_ms));
        Some(Finished {
            insights: s.analysis.finish(&ExtractiveSummarizer),
            segments,
            language: main_language(&s.languages),
        })
    }

    /// Whether voicemail should be transcribed (transcription on for this call).
    pub(super) fn speech_transcribes(&self) -> bool {
        self.speech.as_ref().is_some_and(|s| s.transcribe)
    }

    /// Transcribes a finished voicemail recording (the caller's channel of the WAV).
    pub(super) async fn speech_voicemail(&self, path: std::path::PathBuf) -> Option<String> {
        let engine = self.speech_engine()?;
        let keys = self.recording_keys();
        let r = tokio::task::spawn_blocking(move || -> Option<String> {
            // Sealed (or plain) on disk: decrypted as it is read.
            let file = match &keys {
                Some(ring) => parley_vault::open(&path, ring).ok()?,
                None => {
                    let f = std::fs::File::open(&path).ok()?;
                    let n = f.metadata().ok()?.len();
                    parley_vault::VaultFile::Plain(f, n)
                }
            };
            let mut wav = hound::WavReader::new(std::io::BufReader::new(file)).ok()?;
            let spec = wav.spec();
            let ch = usize::from(spec.channels.max(1));
            let left: Vec<i16> = wav
                .samples::<i16>()
                .step_by(ch)
                .filter_map(Result::ok)
                .collect();
            engine.transcribe_clip(&left, spec.sample_rate).ok()
        })
        .await;
        r.ok().flatten().filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_language_is_where_most_caller_words_were() {
        let mut w = std::collections::BTreeMap::new();
        assert_eq!(main_language(&w), None);
        w.insert("en", 3);
        w.insert("es", 11);
        w.insert("", 40);
        assert_eq!(main_language(&w), Some("es"));
        w.insert("en", 11);
        assert_eq!(main_language(&w), Some("en"), "ties: alphabetical");
    }
}
