//! # parley-media
//!
//! Parley's media engine runtime: RTP legs on UDP, codecs (G.711, Opus),
//! resampling, rooms (bridges and conferences with listen / whisper / barge /
//! hold), prompt and tone playback, stereo recording, DTMF, RTP inactivity
//! and call-quality reports. The protocol logic lives in the pure crate
//! [`parley_media_core`]; this crate adds threads, sockets, files and codecs
//! that need C or heavy crates. It knows nothing of SIP: a call task
//! negotiates SDP and drives a [`CallHandle`].
//!
//! ## Design
//!
//! * **Workers.** A small fixed number of std threads ([`EngineConfig::workers`],
//!   one or two per core given to media), not tokio tasks: media work is
//!   CPU-bound, periodic and latency-sensitive, and must not share a
//!   scheduler with HTTP/SIP/database tasks that can stall it. Each worker
//!   owns a [`worker::MediaCore`] holding every leg, room, playback and
//!   recording of the calls assigned to it (round-robin at
//!   [`Engine::create_call`]); nothing is shared between workers, so there
//!   are no locks on the media path.
//! * **One tick, many legs.** A worker waits in `epoll` (mio, edge-triggered,
//!   non-blocking sockets) with a timeout up to the next 20 ms tick.
//!   By default it wakes every 5 ms ([`EngineConfig::rx_batch`]) and reads
//!   whatever arrived (bounded wake-ups under load; arrival times rounded to
//!   5 ms), or, with `rx_batch: None`, on every datagram (exact arrival
//!   times). Datagrams go into the leg's jitter buffer; nothing else happens
//!   per packet. Every 20 ms, on a fixed schedule, the tick runs over all
//!   legs: pull (jitter buffer → decode/PLC → resample), mix rooms, build each
//!   leg's output (room mix-minus, echo, playback), record, encode and send,
//!   run timers (RFC 4733 end, inactivity, RTCP + quality). There is no timer
//!   or task per packet or per leg.
//! * **Sans-IO.** [`leg::Leg`] and [`worker::MediaCore`] take `now` and
//!   never read a clock or a socket; the worker thread only moves datagrams
//!   and time. Tests step a leg in virtual time.
//! * **No allocation per packet or per tick.** Buffers (jitter-buffer slots,
//!   PCM frames, resampler and codec state, the datagram buffer, event
//!   queues) are allocated when a leg or room is created. Events to the call
//!   owner go through a tokio unbounded channel (rare: digits, timeouts, one
//!   quality report per leg per interval).
//! * **Ports.** [`ports::PortAllocator`] hands out an even RTP port and the
//!   odd RTCP port above it from a configured range, at random (a pair just
//!   freed last), skipping pairs another process holds; ports return when the
//!   leg is dropped.
//! * **Paced sending.** The tick runs in [`worker::PHASES`] passes, each over
//!   the calls of one phase, so a far end receiving many calls sees their
//!   packets spread over the 20 ms instead of in one burst.
//! * **Whom a leg hears and sends to.** See [`LegConfig::latching`] (strict
//!   symmetric RTP) and [`LegConfig::confirm_remote`] (nothing sent to an
//!   inbound caller's address before it is confirmed).
//! * **Control.** One owner per call: [`CallHandle`] (not `Clone`) sends
//!   commands over a channel to the worker owning the call; results and
//!   failures come back as [`Event`]s on the call's channel. Dropping the
//!   handle ends the call.
//! * **Rates.** Rooms, prompts and recordings run at one engine rate
//!   (default 8 kHz: PSTN calls are G.711, and bridging G.711 legs then needs
//!   no resampling). Opus legs encode and decode at the engine rate
//!   natively (libopus accepts 8/16/48 kHz PCM; the RTP clock stays 48 kHz),
//!   so G.711 ↔ Opus transcoding needs no resampler either. With a 16 or
//!   48 kHz engine (wideband rooms) every G.711 leg resamples with rubato's
//!   FFT resampler, one 20 ms frame at a time; prompts are resampled once
//!   when loaded.
//! * **Files stay off the media threads.** Prompts are decoded by symphonia,
//!   resampled once and cached (path + mtime) by [`Engine::load_prompt`],
//!   called from the call task's blocking pool. Recordings are written by
//!   one recorder thread fed through a bounded queue of fixed-size frames
//!   (dropped and counted, never blocking, when full) and flushed every
//!   second.
//!
//! ## Limits
//!
//! * We send 20 ms packets. We receive 10–60 ms packets (G.711 and Opus;
//!   the jitter buffer adopts the peer's packetisation when it changes).
//! * Mono audio; Opus at 48 kHz mono, 24 kbit/s VBR, FEC and DTX as
//!   negotiated; no SRTP/DTLS/ICE here (WebRTC is a separate layer).
//! * In-band DTMF detection only on 8 kHz codecs.
//! * Latching (symmetric RTP) is bounded, not authenticated, on plain RTP legs:
//!   a leg locks to the SDP address at once, or to a NATed source from the
//!   SDP's or the SIP request's IP after 3 consecutive valid packets
//!   (`LegConfig::latching` / `latch_from`); other sources are dropped and
//!   counted. On SRTP legs only packets that authenticate can latch.
//! * A room joins legs of one call (one worker); conferences across calls
//!   need the owning call to create the other legs itself.
//! * Timing is a sleeping loop on a general-purpose kernel: a tick can start
//!   late under load (counted as `late_ticks`); the jitter buffer absorbs it.
//!
//! ## Example: an echo test and a prompt
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use parley_media::{Codec, Engine, EngineConfig, Event, LegConfig, PlayOptions, Source};
//! use parley_media_core::tones::ToneSpec;
//!
//! # fn main() -> Result<(), parley_media::Error> {
//! let engine = Engine::start(EngineConfig::default())?;
//! let (call, mut events) = engine.create_call()?;
//! // From the SDP offer: PCMU with telephone-event/8000 on PT 101.
//! let leg = call.create_leg(LegConfig::g711(Codec::Pcmu))?;
//! // leg.local_rtp goes into our SDP answer; the offer's c=/m= line here:
//! call.set_remote(leg.id, "127.0.0.1:40000".parse().unwrap())?;
//! call.play(leg.id, Source::Tone(ToneSpec::BEEP), PlayOptions::default())?;
//! call.set_echo(leg.id, true)?;
//! // In a tokio call task: `while let Some(ev) = events.recv().await { ... }`
//! let deadline = Instant::now() + Duration::from_secs(1);
//! let (done, _) = parley_media::wait_for(&mut events, deadline, |e| {
//!     matches!(e, Event::PlaybackDone { .. })
//! });
//! assert!(done.is_some());
//! # Ok(())
//! # }
//! ```

pub mod codec;
pub mod config;
mod engine;
pub mod error;
pub mod event;
pub mod leg;
mod oggopus;
pub mod player;
pub mod ports;
mod recorder;
pub mod srtp;
pub mod webrtc;
pub mod worker;

pub use codec::Codec;
pub use config::{EngineConfig, InbandDtmf, LegConfig, TelephoneEvent};
pub use engine::{
    CallHandle, Engine, EventReceiver, LegInfo, WorkerStats, thread_cpu_time, wait_for,
};
pub use error::{Error, Result};
pub use event::{
    CallId, DtmfSource, Event, HangupCause, LegId, QualityStats, RecordingMeta, RoomId,
};
pub use parley_media_core::tap::{TAP_MAX_SAMPLES, TapChannel, TapFrame, TapSender, tap_channel};
pub use player::{PlayOptions, Prompt, Source};
pub use worker::RoomMode;
