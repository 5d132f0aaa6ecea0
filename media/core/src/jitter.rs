//! Adaptive jitter buffer, sans-IO.
//!
//! The caller inserts packets as they arrive ([`JitterBuffer::insert`]) and
//! pops one frame per frame interval ([`JitterBuffer::pop`]), passing `now`
//! each time. Storage is a ring of slots allocated in the constructor;
//! neither call allocates.
//!
//! How it plays out:
//!
//! * Packets are ordered by (extended, wrap-safe) sequence number; duplicates
//!   and packets whose turn has passed ("late") are dropped and counted.
//! * Playout starts `target_delay` after the first packet arrived.
//! * At each pop, if the next packet is present it is played. If it is missing
//!   but later packets are buffered, it is declared lost and skipped
//!   ([`Pop::Concealed`] with `seq: Some(..)`). If nothing at all is buffered
//!   (underrun), the buffer conceals *without* advancing, which stretches the
//!   playout delay by one frame (`seq: None`). After `max_concealed`
//!   consecutive concealments it reports [`Pop::Empty`] and re-buffers.
//! * The target delay follows the measured packet delay variation (arrival
//!   time minus timestamp, relative to a sliding-window minimum, with fast
//!   attack and slow decay) between `min_delay` and `max_delay`. When the
//!   smoothed buffer depth exceeds the target by more than a frame, one frame
//!   is dropped; underruns add frames. This also absorbs clock drift between
//!   sender and receiver without unbounded growth.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use parley_media_core::jitter::{JitterBuffer, JitterConfig, Pop};
//! let t0 = Instant::now();
//! let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
//! jb.insert(t0, 1, 160, &[0xFF; 160]).unwrap();
//! // Before the target delay: nothing yet.
//! assert!(matches!(jb.pop(t0), Pop::Empty));
//! let later = t0 + jb.target_delay();
//! assert!(matches!(jb.pop(later), Pop::Frame(f) if f.seq == 1));
//! ```

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::rtp::extend_seq;

/// Jitter buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate (8000 for G.711).
    pub clock_rate: u32,
    /// Duration of one packet / pop (20 ms).
    pub frame: Duration,
    /// Lower bound of the target delay.
    pub min_delay: Duration,
    /// Upper bound of the target delay.
    pub max_delay: Duration,
    /// Number of packet slots (bounds memory and the reorder window).
    pub capacity: usize,
    /// Largest payload accepted (bytes per slot).
    pub max_payload: usize,
    /// Consecutive concealed frames on underrun before reporting `Empty`.
    pub max_concealed: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(300),
            capacity: 64,
            max_payload: 320,
            max_concealed: 10,
        }
    }
}

/// A frame handed out by [`JitterBuffer::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Payload bytes (valid until the next `insert`).
    pub payload: &'a [u8],
}

/// Result of [`JitterBuffer::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop<'a> {
    /// The next frame.
    Frame(Frame<'a>),
    /// No frame for this interval: play concealment.
    Concealed {
        /// The sequence number given up as lost, or `None` when the buffer ran
        /// dry and waits (the delay grows by one frame).
        seq: Option<u16>,
        /// Consecutive concealed frames so far, including this one.
        consecutive: u32,
    },
    /// Nothing to play (not started, or re-buffering after a long gap).
    Empty,
}

/// Counters kept by the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted into the buffer.
    pub inserted: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped because their turn had passed.
    pub late: u64,
    /// Frames played.
    pub played: u64,
    /// Sequence numbers given up as lost.
    pub lost: u64,
    /// Concealment frames returned (lost + underrun).
    pub concealed: u64,
    /// Frames dropped to reduce the delay.
    pub dropped: u64,
    /// Times the buffer re-synchronised to a far-away sequence number.
    pub resyncs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Buffering {
        until: Instant,
    },
    /// Underrun: waiting for the next packet to start buffering again.
    Waiting,
    Playing,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    occupied: bool,
    ext: u64,
    timestamp: u32,
    len: usize,
}

/// Adaptive jitter buffer for one RTP stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    slots: Vec<Slot>,
    data: Vec<u8>,
    state: State,
    next_seq: u64,
    highest: Option<u64>,
    // Delay variation estimate.
    reference: Option<(Instant, u32)>,
    window_min: [f64; 2],
    window_count: u32,
    pdv_peak: f64,
    target_frames: u32,
    // Depth control.
    depth_ema: f64,
    pops_since_adjust: u32,
    concealed_run: u32,
    stats: JitterStats,
}

const WINDOW_PACKETS: u32 = 50;
const PEAK_DECAY: f64 = 1.0 / 500.0;
const DEPTH_ALPHA: f64 = 1.0 / 16.0;
const ADJUST_HOLDOFF: u32 = 10;

impl JitterBuffer {
    /// A buffer with all storage allocated up front.
    pub fn new(cfg: JitterConfig) -> Result<Self> {
        if cfg.capacity < 4 {
            return Err(Error::InvalidConfig {
                what: "capacity must be at least 4",
            });
        }
        if cfg.frame.is_zero() || cfg.clock_rate == 0 {
            return Err(Error::InvalidConfig {
                what: "frame and clock rate must be non-zero",
            });
        }
        if cfg.min_delay > cfg.max_delay {
            return Err(Error::InvalidConfig {
                what: "min_delay exceeds max_delay",
            });
        }
        if cfg.max_delay >= cfg.frame * (cfg.capacity as u32 / 2) {
            return Err(Error::InvalidConfig {
                what: "max_delay needs fewer than capacity/2 frames",
            });
        }
        let mut jb = JitterBuffer {
            cfg,
            slots: vec![Slot::default(); cfg.capacity],
            data: vec![0; cfg.capacity * cfg.max_payload],
            state: State::Idle,
            next_seq: 0,
            highest: None,
            reference: None,
            window_min: [f64::INFINITY; 2],
            window_count: 0,
            pdv_peak: 0.0,
            target_frames: 1,
            depth_ema: 0.0,
            pops_since_adjust: 0,
            concealed_run: 0,
            stats: JitterStats::default(),
        };
        jb.target_frames = jb.frames_for(0.0);
        Ok(jb)
    }

    fn frame_secs(&self) -> f64 {
        self.cfg.frame.as_secs_f64()
    }

    /// Target depth in frames for a delay variation of `pdv` seconds.
    fn frames_for(&self, pdv: f64) -> u32 {
        let f = self.frame_secs();
        let min = (self.cfg.min_delay.as_secs_f64() / f).ceil().max(1.0);
        let max = (self.cfg.max_delay.as_secs_f64() / f).floor().max(min);
        (1.0 + (pdv / f).ceil()).clamp(min, max) as u32
    }

    /// Current target delay.
    pub fn target_delay(&self) -> Duration {
        self.cfg.frame * self.target_frames
    }

    /// Current estimate of the packet delay variation.
    pub fn jitter_estimate(&self) -> Duration {
        Duration::from_secs_f64(self.pdv_peak.max(0.0))
    }

    /// Audio currently buffered ahead of the playout point (holes included).
    pub fn buffered(&self) -> Duration {
        self.cfg.frame * self.depth() as u32
    }

    /// Forget the stream (e.g. on an SSRC change) but keep the storage and
    /// the counters; the next packet starts buffering afresh.
    pub fn reset(&mut self) {
        self.clear();
        self.reference = None;
        self.window_min = [f64::INFINITY; 2];
        self.window_count = 0;
        self.pdv_peak = 0.0;
        self.target_frames = self.frames_for(0.0);
        self.depth_ema = 0.0;
        self.pops_since_adjust = 0;
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn depth(&self) -> u64 {
        match self.highest {
            Some(h) if h >= self.next_seq => h + 1 - self.next_seq,
            _ => 0,
        }
    }

    fn clear(&mut self) {
        for s in &mut self.slots {
            s.occupied = false;
        }
        self.highest = None;
        self.state = State::Idle;
        self.concealed_run = 0;
    }

    fn observe_delay(&mut self, now: Instant, timestamp: u32) {
        let (ref_at, ref_ts) = *self.reference.get_or_insert((now, timestamp));
        let arrival = if now >= ref_at {
            (now - ref_at).as_secs_f64()
        } else {
            -(ref_at - now).as_secs_f64()
        };
        let media =
            f64::from(timestamp.wrapping_sub(ref_ts) as i32) / f64::from(self.cfg.clock_rate);
        let rel = arrival - media;
        self.window_min[0] = self.window_min[0].min(rel);
        self.window_count += 1;
        if self.window_count >= WINDOW_PACKETS {
            self.window_min[1] = self.window_min[0];
            self.window_min[0] = f64::INFINITY;
            self.window_count = 0;
        }
        let base = self.window_min[0].min(self.window_min[1]);
        let pdv = (rel - base).max(0.0);
        self.pdv_peak = pdv.max(self.pdv_peak * (1.0 - PEAK_DECAY));
        self.target_frames = self.frames_for(self.pdv_peak);
    }

    /// Insert a packet that arrived at `now`.
    pub fn insert(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8]) -> Result<()> {
        if payload.len() > self.cfg.max_payload {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: self.cfg.max_payload,
            });
        }
        let cap = self.cfg.capacity as u64;
        let ext = match self.highest {
            Some(h) => extend_seq(h, seq),
            None if self.state == State::Idle => (1u64 << 32) + u64::from(seq),
            None => extend_seq(self.next_seq, seq),
        };
        match self.state {
            State::Idle => {
                self.next_seq = ext;
                self.state = State::Buffering {
                    until: now + self.target_delay(),
                };
            }
            State::Buffering { .. } if self.stats.played == 0 && ext < self.next_seq => {
                // Reordered before playout started: move the start back.
                if self.next_seq - ext >= cap / 2 {
                    self.stats.late += 1;
                    return Ok(());
                }
                self.next_seq = ext;
            }
            _ => {}
        }
        if ext >= self.next_seq + cap {
            // Far ahead: the source jumped. Start over from this packet.
            self.stats.resyncs += 1;
            self.clear();
            self.reference = None;
            self.window_min = [f64::INFINITY; 2];
            self.window_count = 0;
            self.next_seq = ext;
            self.state = State::Buffering {
                until: now + self.target_delay(),
            };
        }
        // Late packets too tell how much delay would have been needed.
        self.observe_delay(now, timestamp);
        if ext < self.next_seq {
            self.stats.late += 1;
            return Ok(());
        }
        let idx = (ext % cap) as usize;
        let slot = self.slots[idx];
        if slot.occupied && slot.ext == ext {
            self.stats.duplicates += 1;
            return Ok(());
        }
        let start = idx * self.cfg.max_payload;
        self.data[start..start + payload.len()].copy_from_slice(payload);
        self.slots[idx] = Slot {
            occupied: true,
            ext,
            timestamp,
            len: payload.len(),
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.stats.inserted += 1;
        if self.state == State::Waiting {
            self.state = State::Buffering {
                until: now + self.target_delay(),
            };
        }
        Ok(())
    }

    fn lowest_buffered(&self) -> Option<u64> {
        let h = self.highest?;
        (self.next_seq..=h).find(|&e| {
            let s = &self.slots[(e % self.cfg.capacity as u64) as usize];
            s.occupied && s.ext == e
        })
    }

    fn take(&mut self, ext: u64) -> Option<usize> {
        let idx = (ext % self.cfg.capacity as u64) as usize;
        let s = &mut self.slots[idx];
        if s.occupied && s.ext == ext {
            s.occupied = false;
            Some(idx)
        } else {
            None
        }
    }

    /// The payload of the next frame to play, if it is already buffered,
    /// without taking it. Right after a [`Pop::Concealed`] with
    /// `seq: Some(..)` this is the packet that followed the lost one, whose
    /// forward-error-correction data (Opus in-band FEC) can rebuild it.
    pub fn peek_next(&self) -> Option<&[u8]> {
        if self.state != State::Playing {
            return None;
        }
        let idx = (self.next_seq % self.cfg.capacity as u64) as usize;
        let s = &self.slots[idx];
        (s.occupied && s.ext == self.next_seq).then(|| {
            let start = idx * self.cfg.max_payload;
            &self.data[start..start + s.len]
        })
    }

    /// Pop the frame for the interval starting at `now`. Call once per frame interval.
    pub fn pop(&mut self, now: Instant) -> Pop<'_> {
        match self.state {
            State::Idle | State::Waiting => return Pop::Empty,
            State::Buffering { until } => {
                if now < until {
                    return Pop::Empty;
                }
                match self.lowest_buffered() {
                    Some(e) => {
                        self.next_seq = e;
                        self.state = State::Playing;
                        self.depth_ema = self.depth() as f64;
                        self.pops_since_adjust = 0;
                    }
                    None => return Pop::Empty,
                }
            }
            State::Playing => {}
        }

        let depth = self.depth();
        self.depth_ema += DEPTH_ALPHA * (depth as f64 - self.depth_ema);
        self.pops_since_adjust += 1;
        if self.pops_since_adjust >= ADJUST_HOLDOFF
            && depth > 1
            && self.depth_ema > f64::from(self.target_frames) + 1.0
        {
            // Too much delay: drop one frame (time compression).
            if self.take(self.next_seq).is_none() {
                self.stats.lost += 1;
            }
            self.next_seq += 1;
            self.stats.dropped += 1;
            self.depth_ema -= 1.0;
            self.pops_since_adjust = 0;
        }

        let ext = self.next_seq;
        if let Some(idx) = self.take(ext) {
            self.next_seq += 1;
            self.concealed_run = 0;
            self.stats.played += 1;
            let slot = self.slots[idx];
            let start = idx * self.cfg.max_payload;
            return Pop::Frame(Frame {
                seq: ext as u16,
                timestamp: slot.timestamp,
                payload: &self.data[start..start + slot.len],
            });
        }
        self.concealed_run += 1;
        if self.depth() == 0 {
            // Underrun: wait for the packet (stretch), up to a limit.
            if self.concealed_run > self.cfg.max_concealed {
                self.state = State::Waiting;
                self.highest = None;
                self.concealed_run = 0;
                return Pop::Empty;
            }
            self.stats.concealed += 1;
            self.pops_since_adjust = 0;
            return Pop::Concealed {
                seq: None,
                consecutive: self.concealed_run,
            };
        }
        // A hole with later packets buffered: this one is lost.
        self.next_seq += 1;
        self.stats.lost += 1;
        self.stats.concealed += 1;
        Pop::Concealed {
            seq: Some(ext as u16),
            consecutive: self.concealed_run,
        }
    }
}

/// Packet-loss concealment for PCM (G.711 after decoding): repeat the last
/// good frame with a gain falling linearly by `1/fade_frames` per frame
/// (ramped sample by sample, no clicks), then silence.
#[derive(Debug, Clone)]
pub struct Plc {
    last: Vec<i16>,
    have_last: bool,
    run: u32,
    fade_frames: u32,
}

impl Plc {
    /// PLC for frames of `frame_samples`, fading out over `fade_frames` frames
    /// (5 = 100 ms at 20 ms frames).
    pub fn new(frame_samples: usize, fade_frames: u32) -> Self {
        Plc {
            last: vec![0; frame_samples],
            have_last: false,
            run: 0,
            fade_frames: fade_frames.max(1),
        }
    }

    /// Remember a good frame (call for every frame actually received).
    pub fn good_frame(&mut self, pcm: &[i16]) {
        let n = pcm.len().min(self.last.len());
        self.last[..n].copy_from_slice(&pcm[..n]);
        self.last[n..].fill(0);
        self.have_last = true;
        self.run = 0;
    }

    /// Write a concealment frame into `out`.
    pub fn conceal(&mut self, out: &mut [i16]) {
        let k = self.run;
        self.run = self.run.saturating_add(1);
        if !self.have_last || k >= self.fade_frames {
            out.fill(0);
            return;
        }
        let f = f64::from(self.fade_frames);
        let g0 = 1.0 - f64::from(k) / f;
        let g1 = 1.0 - f64::from(k + 1) / f;
        let n = out.len().max(1) as f64;
        for (i, o) in out.iter_mut().enumerate() {
            let g = g0 + (g1 - g0) * (i as f64 / n);
            let src = self
                .last
                .get(i % self.last.len().max(1))
                .copied()
                .unwrap_or(0);
            *o = (f64::from(src) * g).round() as i16;
        }
    }

    /// Consecutive concealed frames since the last good one.
    pub fn concealed_run(&self) -> u32 {
        self.run
    }
}
