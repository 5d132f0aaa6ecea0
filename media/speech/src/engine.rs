//! The speech engine: one ingest thread (tap frames → per-stream segmenter →
//! utterances) and a bounded pool of whisper worker threads, with back-pressure.
//!
//! ## Degradation order under overload
//!
//! The live queue holds at most [`SpeechConfig::queue`] utterances. When an utterance
//! ends, the ingest thread looks at the queue:
//!
//! 1. **Normal** (queue below half): the utterance is queued at once.
//! 2. **Merge** (queue half full or more): the utterance is held and the stream's next
//!    utterance is appended to it (fewer, longer jobs: each whisper run has a fixed
//!    cost), until the queue drains below half, the merged audio reaches
//!    [`SpeechConfig::merge_max_ms`] or it has waited [`SpeechConfig::merge_wait_ms`];
//!    then it is queued if there is room. Counted in `merged`.
//! 3. **Post-call** (queue full): a low-priority stream's utterances go to its
//!    post-call backlog, transcribed after the stream closes when workers are idle; a
//!    normal-priority stream keeps merging and goes to the backlog only past twice
//!    `merge_max_ms`. Counted in `deferred`; the stream's owner gets a
//!    [`SpeechEvent::Degraded`] notice.
//! 4. **Dropped** (a stream's backlog over [`SpeechConfig::backlog_max_ms`]): the audio
//!    is dropped, counted in `dropped_ms` and announced to the owner — never silently.
//!
//! The media side never waits: taps `try_send` into a bounded channel and count what
//! did not fit (`tap_dropped`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parley_media_core::tap::{TapChannel, TapFrame, TapSender, tap_channel};
use tokio::sync::mpsc::UnboundedSender;

use crate::analysis::{Speaker, sentiment};
use crate::error::{Error, Result};
use crate::vad::{SegEvent, Segmenter, Utterance, VadConfig};
use crate::whisper::{Decoding, Model, Transcriber};

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechConfig {
    /// The ggml model file.
    pub model: PathBuf,
    /// Whisper worker threads (each holds a decoding state, ~100 MB with tiny.en).
    pub workers: usize,
    /// Threads each whisper run uses.
    pub threads_per_worker: usize,
    /// Live utterances queued at most (back-pressure threshold).
    pub queue: usize,
    /// Tap frames buffered between the media workers and the ingest thread.
    pub tap_capacity: usize,
    /// Fit whisper's encoder context to each utterance.
    pub fit_audio_ctx: bool,
    /// How whisper decodes (language, beam, temperature fallback, context floor).
    pub decoding: Decoding,
    /// Other models a stream may ask for by name ([`StreamModel::model`], e.g. a
    /// tenant's choice): loaded on first use, at most [`SpeechConfig::max_loaded`]
    /// models (the default included) kept loaded, the least recently used unloaded.
    pub alternatives: Vec<(String, PathBuf)>,
    /// Models loaded at most (each worker keeps a decoding state per loaded model).
    pub max_loaded: usize,
    /// Segmentation.
    pub vad: VadConfig,
    /// Longest merged utterance while degraded, ms.
    pub merge_max_ms: u64,
    /// Longest wait of a held (merging) utterance, ms.
    pub merge_wait_ms: u64,
    /// Most audio a stream may defer to post-call, ms.
    pub backlog_max_ms: u64,
}

impl SpeechConfig {
    /// Defaults for `model`: one worker per two cores (at least one), two threads each.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SpeechConfig {
            model: model.into(),
            workers: (cores / 2).max(1),
            threads_per_worker: 2.min(cores),
            queue: 8,
            tap_capacity: 4096,
            fit_audio_ctx: true,
            decoding: Decoding::default(),
            alternatives: Vec::new(),
            max_loaded: 2,
            vad: VadConfig::default(),
            merge_max_ms: 12_000,
            merge_wait_ms: 4_000,
            backlog_max_ms: 30 * 60 * 1000,
        }
    }
}

/// Which model and language transcribe a stream (e.g. its tenant's choice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamModel {
    /// One of [`SpeechConfig::alternatives`] by name; `None`: the engine's model.
    pub model: Option<String>,
    /// The spoken language forced on a multilingual model (ISO 639-1); `None`: the
    /// engine's decoding setting (detected per utterance unless configured).
    pub language: Option<String>,
}

/// How much a stream's live transcript matters when the engine is overloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Live as long as possible (merging before deferring).
    Normal,
    /// Deferred to post-call first.
    Low,
}

/// A transcribed utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The stream.
    pub stream: u64,
    /// Who spoke.
    pub speaker: Speaker,
    /// Start, ms from the stream's epoch.
    pub start_ms: u64,
    /// End, ms.
    pub end_ms: u64,
    /// The words (may be empty when whisper heard none).
    pub text: String,
    /// VADER compound sentiment.
    pub sentiment: f32,
    /// Transcribed live (false: post-call backlog).
    pub live: bool,
    /// Utterances merged into it.
    pub parts: u32,
    /// End of utterance detected → transcript ready, ms.
    pub latency_ms: u64,
    /// The spoken language whisper detected (ISO 639-1; always `en` with an
    /// English-only model).
    pub language: &'static str,
}

/// How a stream's transcription was degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degradation {
    /// Utterances merged into longer segments.
    Merged,
    /// Moved to post-call transcription.
    Deferred,
    /// Dropped (backlog full); the span has no transcript.
    Dropped,
    /// Discarded because the tap was paused (PCI).
    Paused,
}

/// What a stream's owner receives.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// Speech started (ms from the epoch), e.g. to stop a prompt.
    SpeechStarted {
        /// The stream.
        stream: u64,
        /// When.
        at_ms: u64,
    },
    /// A transcribed utterance.
    Segment(Segment),
    /// The stream's transcription was degraded for `audio_ms` of audio.
    Degraded {
        /// The stream.
        stream: u64,
        /// How.
        what: Degradation,
        /// Audio concerned, ms.
        audio_ms: u64,
    },
    /// The stream is closed and its last segment (post-call backlog included) was
    /// delivered: nothing more comes for it.
    Closed {
        /// The stream.
        stream: u64,
    },
}

/// Counters (relaxed atomics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Streams opened.
    pub streams: AtomicU64,
    /// Utterances detected.
    pub utterances: AtomicU64,
    /// Segments transcribed live.
    pub live_segments: AtomicU64,
    /// Segments transcribed post-call.
    pub post_call_segments: AtomicU64,
    /// Utterances merged into a held one (degradation 2).
    pub merged: AtomicU64,
    /// Utterances deferred to post-call (degradation 3).
    pub deferred: AtomicU64,
    /// Audio dropped because a backlog was full, ms (degradation 4).
    pub dropped_ms: AtomicU64,
    /// Speech discarded in paused (PCI) spans, ms.
    pub paused_ms: AtomicU64,
    /// Noise bursts ignored.
    pub noise: AtomicU64,
    /// whisper failures.
    pub errors: AtomicU64,
    /// Audio transcribed, ms.
    pub audio_ms: AtomicU64,
    /// Worker time spent in whisper, ms.
    pub busy_ms: AtomicU64,
}

/// A snapshot of the engine's state and counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeechMetrics {
    /// Streams open now.
    pub open_streams: u64,
    /// Live utterances waiting for a worker.
    pub live_queue: u64,
    /// Post-call utterances waiting.
    pub post_call_queue: u64,
    /// Counters.
    pub streams: u64,
    /// See [`Counters`].
    pub utterances: u64,
    /// See [`Counters`].
    pub live_segments: u64,
    /// See [`Counters`].
    pub post_call_segments: u64,
    /// See [`Counters`].
    pub merged: u64,
    /// See [`Counters`].
    pub deferred: u64,
    /// See [`Counters`].
    pub dropped_ms: u64,
    /// See [`Counters`].
    pub paused_ms: u64,
    /// See [`Counters`].
    pub noise: u64,
    /// See [`Counters`].
    pub errors: u64,
    /// Tap frames the media workers could not queue.
    pub tap_dropped: u64,
    /// Audio transcribed, ms.
    pub audio_ms: u64,
    /// Worker time in whisper, ms.
    pub busy_ms: u64,
    /// End of utterance → live transcript latency over the last 1024 live segments, ms.
    pub latency_p50_ms: u64,
    /// 95th percentile.
    pub latency_p95_ms: u64,
    /// Current degradation level: 0 normal, 1 merging, 2 deferring.
    pub level: u8,
}

/// A stream's way to its owner, shared by the stream and its queued jobs: when the
/// last holder drops (the stream closed, its last job done) the owner hears
/// [`SpeechEvent::Closed`].
struct StreamOut {
    id: u64,
    tx: UnboundedSender<SpeechEvent>,
}

impl StreamOut {
    fn send(
        &self,
        ev: SpeechEvent,
    ) -> std::result::Result<(), tokio::sync::mpsc::error::SendError<SpeechEvent>> {
        self.tx.send(ev)
    }
}

impl Drop for StreamOut {
    fn drop(&mut self) {
        let _ = self.tx.send(SpeechEvent::Closed { stream: self.id });
    }
}

enum Reply {
    Stream(Arc<StreamOut>),
    Clip(Sender<Result<String>>),
}

struct Job {
    /// `None`: the default model; else an index into the alternatives.
    model: Option<usize>,
    language: Option<Arc<str>>,
    stream: u64,
    speaker: Speaker,
    utt: Utterance,
    live: bool,
    ended_at: Instant,
    reply: Reply,
}

#[derive(Default)]
struct Queues {
    live: VecDeque<Job>,
    post: VecDeque<Job>,
    shutdown: bool,
}

/// The alternative models loaded now, least recently used first.
#[derive(Default)]
struct Loaded {
    models: Vec<(usize, Model)>,
}

struct Shared {
    queues: Mutex<Queues>,
    alternatives: Vec<(String, PathBuf)>,
    loaded: Mutex<Loaded>,
    max_loaded: usize,
    ready: Condvar,
    counters: Counters,
    latencies: Mutex<VecDeque<u32>>,
    open: AtomicU64,
    level: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Alternative model `i`, loaded if needed (outside the lock); the least recently
    /// used others are unloaded beyond `max_loaded - 1` (the default stays).
    fn model(&self, i: usize) -> Result<Model> {
        let lock = || self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut l = lock();
            if let Some(pos) = l.models.iter().position(|(k, _)| *k == i) {
                let entry = l.models.remove(pos);
                let m = entry.1.clone();
                l.models.push(entry);
                return Ok(m);
            }
        }
        let (name, path) = self.alternatives.get(i).ok_or(Error::Stopped)?;
        tracing::info!(model = %name, path = %path.display(), "loading speech model");
        let m = Model::load(path)?;
        let mut l = lock();
        if !l.models.iter().any(|(k, _)| *k == i) {
            l.models.push((i, m.clone()));
        }
        let keep = self.max_loaded.saturating_sub(1).max(1);
        while l.models.len() > keep {
            let (k, _) = l.models.remove(0);
            tracing::info!(model = %self.alternatives[k].0, "unloading speech model (least recently used)");
        }
        Ok(m)
    }

    fn live_len(&self) -> usize {
        self.lock().live.len()
    }

    fn push(&self, job: Job) {
        let mut q = self.lock();
        if job.live {
            q.live.push_back(job);
        } else {
            q.post.push_back(job);
        }
        drop(q);
        self.ready.notify_one();
    }
}

enum Ctl {
    Open {
        id: u64,
        model: Option<usize>,
        language: Option<Arc<str>>,
        speaker: Speaker,
        priority: Priority,
        epoch: Instant,
        rate: u32,
        out: UnboundedSender<SpeechEvent>,
    },
    Close(u64),
    Shutdown,
}

/// A stream's handle for its owner: the tap sender to give the media engine.
#[derive(Debug, Clone)]
pub struct StreamTap {
    /// The stream id (in its segments).
    pub id: u64,
    /// Give this to `CallHandle::tap`.
    pub sender: TapSender,
}

/// The engine. Dropping it stops its threads (queued work is abandoned).
pub struct SpeechEngine {
    cfg: SpeechConfig,
    shared: Arc<Shared>,
    taps: TapChannel,
    ctl: Mutex<Sender<Ctl>>,
    next_id: AtomicU64,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SpeechEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechEngine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl SpeechEngine {
    /// Loads the model and starts the ingest thread and the workers.
    pub fn start(cfg: SpeechConfig) -> Result<Self> {
        if cfg.workers == 0 || cfg.queue == 0 || cfg.tap_capacity == 0 {
            return Err(Error::InvalidConfig {
                what: "workers, queue and tap_capacity must be at least 1".into(),
            });
        }
        let model = Model::load(&cfg.model)?;
        if let Some(code) = &cfg.decoding.language {
            crate::whisper::language_code(code)?;
        }
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            alternatives: cfg.alternatives.clone(),
            loaded: Mutex::new(Loaded::default()),
            max_loaded: cfg.max_loaded.max(1),
            ready: Condvar::new(),
            counters: Counters::default(),
            latencies: Mutex::new(VecDeque::with_capacity(1024)),
            open: AtomicU64::new(0),
            level: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        let spawn_err = |e: std::io::Error| Error::InvalidConfig {
            what: format!("cannot start thread: {e}"),
        };
        for i in 0..cfg.workers {
            let mut t = model.transcriber(cfg.threads_per_worker)?;
            t.set_decoding(cfg.decoding.clone());
            let sh = Arc::clone(&shared);
            let w = Worker {
                default: t,
                others: Vec::new(),
                decoding: cfg.decoding.clone(),
                threads: cfg.threads_per_worker,
                fit: cfg.fit_audio_ctx,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("parley-whisper-{i}"))
                    .spawn(move || worker(w, sh))
                    .map_err(spawn_err)?,
            );
        }
        let (taps, frames) = tap_channel(cfg.tap_capacity);
        let (ctl_tx, ctl_rx) = std::sync::mpsc::channel();
        let sh = Arc::clone(&shared);
        let icfg = cfg.clone();
        threads.push(
            std::thread::Builder::new()
                .name("parley-speech-ingest".into())
                .spawn(move || Ingest::new(icfg, sh, ctl_rx).run(frames))
                .map_err(spawn_err)?,
        );
        Ok(SpeechEngine {
            cfg,
            shared,
            taps,
            ctl: Mutex::new(ctl_tx),
            next_id: AtomicU64::new(1),
            threads,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SpeechConfig {
        &self.cfg
    }

    fn ctl(&self, c: Ctl) -> Result<()> {
        self.ctl
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(c)
            .map_err(|_| Error::Stopped)
    }

    /// Opens a stream for one speaker whose audio arrives at `rate` Hz; its times are
    /// ms from `epoch`. Events go to `out`; after [`close_stream`](Self::close_stream),
    /// once its last segment (post-call backlog included) is delivered, the stream
    /// reports [`SpeechEvent::Closed`] and drops its sender.
    pub fn open_stream(
        &self,
        speaker: Speaker,
        priority: Priority,
        epoch: Instant,
        rate: u32,
        out: UnboundedSender<SpeechEvent>,
    ) -> Result<StreamTap> {
        self.open_stream_with(speaker, priority, epoch, rate, out, &StreamModel::default())
    }

    /// The names of the models a stream may ask for ([`SpeechConfig::alternatives`]).
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.cfg.alternatives.iter().map(|(n, _)| n.as_str())
    }

    /// [`open_stream`](Self::open_stream) transcribed with `choice`: an unknown model
    /// name is [`Error::UnknownModel`], an unknown language [`Error::Language`]
    /// (nothing is opened).
    pub fn open_stream_with(
        &self,
        speaker: Speaker,
        priority: Priority,
        epoch: Instant,
        rate: u32,
        out: UnboundedSender<SpeechEvent>,
        choice: &StreamModel,
    ) -> Result<StreamTap> {
        let model = match &choice.model {
            None => None,
            Some(name) => Some(
                self.cfg
                    .alternatives
                    .iter()
                    .position(|(n, _)| n == name)
                    .ok_or_else(|| Error::UnknownModel { name: name.clone() })?,
            ),
        };
        let language = match &choice.language {
            None => None,
            Some(code) => Some(Arc::from(crate::whisper::language_code(code)?)),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.ctl(Ctl::Open {
            id,
            model,
            language,
            speaker,
            priority,
            epoch,
            rate,
            out,
        })?;
        Ok(StreamTap {
            id,
            sender: self.taps.sender(id),
        })
    }

    /// Closes a stream: the utterance in progress ends, held and deferred audio is
    /// transcribed (post-call), then the stream reports [`SpeechEvent::Closed`].
    pub fn close_stream(&self, id: u64) {
        let _ = self.ctl(Ctl::Close(id));
    }

    /// Transcribes a whole clip (voicemail) as post-call work; blocks until done. The
    /// clip is split into utterances by the live path's VAD and each is transcribed on
    /// its own (whisper given long silences tends to repeat itself); a clip in which
    /// the VAD finds no utterance is transcribed whole.
    pub fn transcribe_clip(&self, pcm: &[i16], rate: u32) -> Result<String> {
        let mut utts = clip_utterances(pcm, rate, self.cfg.vad)?;
        if utts.is_empty() {
            let audio = crate::resample::clip_to_16k(pcm, rate)?;
            utts.push(Utterance {
                start_ms: 0,
                end_ms: audio.len() as u64 / 16,
                audio,
                parts: 1,
            });
        }
        // Every utterance is queued at once (idle workers take them in parallel).
        let replies: Vec<_> = utts
            .into_iter()
            .map(|utt| {
                let (tx, rx) = std::sync::mpsc::channel();
                self.shared.push(Job {
                    model: None,
                    language: None,
                    stream: 0,
                    speaker: Speaker::Caller,
                    utt,
                    live: false,
                    ended_at: Instant::now(),
                    reply: Reply::Clip(tx),
                });
                rx
            })
            .collect();
        let mut texts = Vec::new();
        for rx in replies {
            let text = rx.recv().map_err(|_| Error::Stopped)??;
            if !text.trim().is_empty() {
                texts.push(text.trim().to_owned());
            }
        }
        Ok(texts.join(" "))
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> SpeechMetrics {
        let c = &self.shared.counters;
        let (live, post) = {
            let q = self.shared.lock();
            (q.live.len() as u64, q.post.len() as u64)
        };
        let (p50, p95) = {
            let l = self
                .shared
                .latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<u32> = l.iter().copied().collect();
            v.sort_unstable();
            let pct = |p: usize| {
                if v.is_empty() {
                    0
                } else {
                    u64::from(v[((v.len() - 1) * p).div_ceil(100)])
                }
            };
            (pct(50), pct(95))
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SpeechMetrics {
            open_streams: get(&self.shared.open),
            live_queue: live,
            post_call_queue: post,
            streams: get(&c.streams),
            utterances: get(&c.utterances),
            live_segments: get(&c.live_segments),
            post_call_segments: get(&c.post_call_segments),
            merged: get(&c.merged),
            deferred: get(&c.deferred),
            dropped_ms: get(&c.dropped_ms),
            paused_ms: get(&c.paused_ms),
            noise: get(&c.noise),
            errors: get(&c.errors),
            tap_dropped: self.taps.dropped(),
            audio_ms: get(&c.audio_ms),
            busy_ms: get(&c.busy_ms),
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            level: get(&self.shared.level) as u8,
        }
    }
}

impl Drop for SpeechEngine {
    fn drop(&mut self) {
        let _ = self.ctl(Ctl::Shutdown);
        self.shared.lock().shutdown = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The utterances of a whole clip at `rate` Hz (20 ms frames through a segmenter).
fn clip_utterances(pcm: &[i16], rate: u32, vad: VadConfig) -> Result<Vec<Utterance>> {
    let mut seg = Segmenter::new(rate, vad)?;
    let frame = (rate / 50).max(1) as usize;
    let mut out = Vec::new();
    let mut padded = vec![0i16; frame];
    for (i, chunk) in pcm.chunks(frame).enumerate() {
        let chunk = if chunk.len() == frame {
            chunk
        } else {
            padded[..chunk.len()].copy_from_slice(chunk);
            &padded[..]
        };
        if let Some(SegEvent::Utterance(u)) = seg.push(i as u64 * 20, chunk, false)? {
            out.push(u);
        }
    }
    if let Some(SegEvent::Utterance(u)) = seg.flush() {
        out.push(u);
    }
    Ok(out)
}

/// A worker's decoding states: the default model's, and those of alternatives it has
/// used (least recently used first, bounded like the loaded models).
struct Worker {
    default: Transcriber,
    others: Vec<(usize, Transcriber)>,
    decoding: Decoding,
    threads: usize,
    fit: bool,
}

impl Worker {
    fn transcribe(&mut self, sh: &Shared, job: &Job) -> Result<(String, &'static str)> {
        let t = match job.model {
            None => &mut self.default,
            Some(i) => {
                if let Some(pos) = self.others.iter().position(|(k, _)| *k == i) {
                    let e = self.others.remove(pos);
                    self.others.push(e);
                } else {
                    let mut t = sh.model(i)?.transcriber(self.threads)?;
                    t.set_decoding(self.decoding.clone());
                    self.others.push((i, t));
                    let keep = sh.max_loaded.saturating_sub(1).max(1);
                    while self.others.len() > keep {
                        self.others.remove(0);
                    }
                }
                match self.others.last_mut() {
                    Some((_, t)) => t,
                    None => return Err(Error::Stopped),
                }
            }
        };
        let language = job
            .language
            .as_deref()
            .map(str::to_owned)
            .or_else(|| self.decoding.language.clone());
        t.set_language(language);
        t.transcribe_lang(&job.utt.audio, self.fit)
    }
}

fn worker(mut w: Worker, sh: Arc<Shared>) {
    loop {
        let job = {
            let mut q = sh.lock();
            loop {
                if q.shutdown {
                    return;
                }
                if let Some(j) = q.live.pop_front().or_else(|| q.post.pop_front()) {
                    break j;
                }
                q = sh.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let started = Instant::now();
        let result = w.transcribe(&sh, &job);
        let done = Instant::now();
        let c = &sh.counters;
        c.busy_ms.fetch_add(
            done.duration_since(started).as_millis() as u64,
            Ordering::Relaxed,
        );
        c.audio_ms.fetch_add(job.utt.audio_ms(), Ordering::Relaxed);
        if result.is_err() {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        match job.reply {
            Reply::Clip(tx) => {
                let _ = tx.send(result.map(|(text, _)| text));
            }
            Reply::Stream(out) => {
                let (text, language) = result.unwrap_or_default();
                let latency_ms = done.duration_since(job.ended_at).as_millis() as u64;
                if job.live {
                    c.live_segments.fetch_add(1, Ordering::Relaxed);
                    let mut l = sh.latencies.lock().unwrap_or_else(|p| p.into_inner());
                    if l.len() == 1024 {
                        l.pop_front();
                    }
                    l.push_back(latency_ms.min(u64::from(u32::MAX)) as u32);
                } else {
                    c.post_call_segments.fetch_add(1, Ordering::Relaxed);
                }
                let _ = out.send(SpeechEvent::Segment(Segment {
                    stream: job.stream,
                    speaker: job.speaker,
                    start_ms: job.utt.start_ms,
                    end_ms: job.utt.end_ms,
                    sentiment: sentiment(&text),
                    text,
                    live: job.live,
                    parts: job.utt.parts,
                    latency_ms,
                    language,
                }));
            }
        }
    }
}

struct Stream {
    model: Option<usize>,
    language: Option<Arc<str>>,
    speaker: Speaker,
    priority: Priority,
    epoch: Instant,
    seg: Segmenter,
    out: Arc<StreamOut>,
    /// A held utterance (merging) and when it was first held.
    held: Option<(Utterance, Instant)>,
    backlog: Vec<Utterance>,
    backlog_ms: u64,
}

struct Ingest {
    cfg: SpeechConfig,
    sh: Arc<Shared>,
    ctl: Receiver<Ctl>,
    streams: HashMap<u64, Stream>,
}

impl Ingest {
    fn new(cfg: SpeechConfig, sh: Arc<Shared>, ctl: Receiver<Ctl>) -> Self {
        Ingest {
            cfg,
            sh,
            ctl,
            streams: HashMap::new(),
        }
    }

    /// Applies pending control messages; false on shutdown.
    fn poll_ctl(&mut self, frames: &Receiver<TapFrame>) -> bool {
        loop {
            match self.ctl.try_recv() {
                Ok(Ctl::Open {
                    id,
                    model,
                    language,
                    speaker,
                    priority,
                    epoch,
                    rate,
                    out,
                }) => match Segmenter::new(rate, self.cfg.vad) {
                    Ok(seg) => {
                        self.sh.counters.streams.fetch_add(1, Ordering::Relaxed);
                        self.streams.insert(
                            id,
                            Stream {
                                model,
                                language,
                                speaker,
                                priority,
                                epoch,
                                seg,
                                out: Arc::new(StreamOut { id, tx: out }),
                                held: None,
                                backlog: Vec::new(),
                                backlog_ms: 0,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "speech stream not opened");
                        // Its owner still hears that nothing will come.
                        drop(StreamOut { id, tx: out });
                    }
                },
                Ok(Ctl::Close(id)) => {
                    // Frames already queued for it come first.
                    while let Ok(f) = frames.try_recv() {
                        self.frame(&f, frames);
                    }
                    self.close(id);
                }
                Ok(Ctl::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => break,
            }
        }
        self.sh
            .open
            .store(self.streams.len() as u64, Ordering::Relaxed);
        true
    }

    fn run(mut self, frames: Receiver<TapFrame>) {
        let mut last_check = Instant::now();
        loop {
            if !self.poll_ctl(&frames) {
                return;
            }
            match frames.recv_timeout(Duration::from_millis(20)) {
                Ok(f) => {
                    self.frame(&f, &frames);
                    for _ in 0..256 {
                        match frames.try_recv() {
                            Ok(f) => self.frame(&f, &frames),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now.duration_since(last_check) >= Duration::from_millis(100) {
                last_check = now;
                self.release_held(now);
            }
        }
    }

    fn frame(&mut self, f: &TapFrame, frames: &Receiver<TapFrame>) {
        if !self.streams.contains_key(&f.stream) {
            // Its `Open` may still be in the control queue (sent before the frames).
            self.poll_ctl(frames);
        }
        let Some(s) = self.streams.get_mut(&f.stream) else {
            return;
        };
        let at_ms = f.at.saturating_duration_since(s.epoch).as_millis() as u64;
        let ev = match s.seg.push(at_ms, f.pcm(), f.paused) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!(error = %e, "speech frame failed");
                None
            }
        };
        if let Some(ev) = ev {
            self.seg_event(f.stream, ev);
        }
    }

    fn seg_event(&mut self, id: u64, ev: SegEvent) {
        let c = &self.sh.counters;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match ev {
            SegEvent::Started(at_ms) => {
                let _ = s.out.send(SpeechEvent::SpeechStarted { stream: id, at_ms });
            }
            SegEvent::Noise(_) => {
                c.noise.fetch_add(1, Ordering::Relaxed);
            }
            SegEvent::Discarded(ms) => {
                c.paused_ms.fetch_add(ms, Ordering::Relaxed);
                let _ = s.out.send(SpeechEvent::Degraded {
                    stream: id,
                    what: Degradation::Paused,
                    audio_ms: ms,
                });
            }
            SegEvent::Utterance(u) => {
                c.utterances.fetch_add(1, Ordering::Relaxed);
                self.dispatch(id, u);
            }
        }
    }

    /// Applies the degradation order to a finished utterance.
    fn dispatch(&mut self, id: u64, u: Utterance) {
        let cap = self.cfg.queue;
        let load = self.sh.live_len();
        let c = &self.sh.counters;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        let (u, since) = match s.held.take() {
            Some((mut h, since)) => {
                h.merge(u);
                c.merged.fetch_add(1, Ordering::Relaxed);
                (h, since)
            }
            None => (u, now),
        };
        let level = if load * 2 < cap {
            0
        } else if load < cap {
            1
        } else {
            2
        };
        self.sh.level.store(level, Ordering::Relaxed);
        let long = u.audio_ms() >= self.cfg.merge_max_ms;
        match level {
            0 => queue_live(&self.sh, id, s, u),
            1 if !long => {
                if u.parts == 1 {
                    let _ = s.out.send(SpeechEvent::Degraded {
                        stream: id,
                        what: Degradation::Merged,
                        audio_ms: u.audio_ms(),
                    });
                }
                s.held = Some((u, since));
            }
            1 => queue_live(&self.sh, id, s, u),
            _ if s.priority == Priority::Normal && u.audio_ms() < 2 * self.cfg.merge_max_ms => {
                s.held = Some((u, since));
            }
            _ => defer(&self.sh, &self.cfg, id, s, u),
        }
    }

    /// Held utterances go out when the queue has drained or they waited too long.
    fn release_held(&mut self, now: Instant) {
        let cap = self.cfg.queue;
        let wait = Duration::from_millis(self.cfg.merge_wait_ms);
        let mut load = self.sh.live_len();
        if load * 2 < cap {
            self.sh.level.store(0, Ordering::Relaxed);
        }
        for (&id, s) in self.streams.iter_mut() {
            let Some((_, since)) = &s.held else { continue };
            let due = load * 2 < cap || now.duration_since(*since) >= wait;
            if !due {
                continue;
            }
            let Some((u, _)) = s.held.take() else {
                continue;
            };
            if load < cap {
                load += 1;
                queue_live(&self.sh, id, s, u);
            } else if s.priority == Priority::Low || u.audio_ms() >= 2 * self.cfg.merge_max_ms {
                defer(&self.sh, &self.cfg, id, s, u);
            } else {
                s.held = Some((u, now));
            }
        }
    }

    fn close(&mut self, id: u64) {
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        if let Some(SegEvent::Utterance(u)) = s.seg.flush() {
            self.sh.counters.utterances.fetch_add(1, Ordering::Relaxed);
            match s.held.as_mut() {
                Some((h, _)) => h.merge(u),
                None => s.held = Some((u, Instant::now())),
            }
        }
        let held = s.held.take().map(|(u, _)| u);
        let backlog = std::mem::take(&mut s.backlog);
        for u in backlog.into_iter().chain(held) {
            self.sh.push(Job {
                model: s.model,
                language: s.language.clone(),
                stream: id,
                speaker: s.speaker,
                utt: u,
                live: false,
                ended_at: Instant::now(),
                reply: Reply::Stream(Arc::clone(&s.out)),
            });
        }
        self.sh
            .open
            .store(self.streams.len() as u64, Ordering::Relaxed);
        // `s.out` drops here; the last job done reports `Closed`.
    }
}

fn queue_live(sh: &Shared, id: u64, s: &Stream, u: Utterance) {
    sh.push(Job {
        model: s.model,
        language: s.language.clone(),
        stream: id,
        speaker: s.speaker,
        utt: u,
        live: true,
        ended_at: Instant::now(),
        reply: Reply::Stream(Arc::clone(&s.out)),
    });
}

fn defer(sh: &Shared, cfg: &SpeechConfig, id: u64, s: &mut Stream, u: Utterance) {
    let ms = u.audio_ms();
    if s.backlog_ms + ms > cfg.backlog_max_ms {
        sh.counters.dropped_ms.fetch_add(ms, Ordering::Relaxed);
        let _ = s.out.send(SpeechEvent::Degraded {
            stream: id,
            what: Degradation::Dropped,
            audio_ms: ms,
        });
        return;
    }
    sh.counters.deferred.fetch_add(1, Ordering::Relaxed);
    s.backlog_ms += ms;
    s.backlog.push(u);
    let _ = s.out.send(SpeechEvent::Degraded {
        stream: id,
        what: Degradation::Deferred,
        audio_ms: ms,
    });
}
