//! # parley-media-core
//!
//! The pure media core of Parley, the self-hosted voice-first contact center:
//! everything that happens to audio between "bytes arrived" and "bytes to
//! send", with no I/O at all.
//!
//! | module      | what                                                             |
//! |-------------|------------------------------------------------------------------|
//! | [`g711`]    | ITU-T G.711 µ-law / A-law encode and decode                      |
//! | [`rtp`]     | RFC 3550 RTP packet view (zero-copy parse) and writer            |
//! | [`rtcp`]    | RTCP SR, RR, SDES, BYE, compound packets: parse and build        |
//! | [`stats`]   | RFC 3550 Appendix A receiver statistics, RTT, estimated MOS      |
//! | [`dtmf`]    | RFC 4733 telephone-event payload, receiver and sender machines   |
//! | [`inband`]  | in-band DTMF detector (Goertzel) for 8 kHz PCM                   |
//! | [`jitter`]  | adaptive jitter buffer and G.711 packet-loss concealment         |
//! | [`mixer`]   | conference room with mix-minus, listen / whisper / barge / hold  |
//! | [`onset`]   | speech-onset detector (energy, adaptive noise floor) for barge-in |
//! | [`tones`]   | ringback, busy, beep and DTMF tone generator                     |
//!
//! ## The sans-IO contract
//!
//! Nothing in this crate reads a clock, opens a socket, spawns a thread or
//! sleeps. State machines take the current time (`now: Instant`) and their
//! inputs as arguments and return outputs, or are drained with `poll_*`
//! methods until they have nothing left but their next timeout
//! (`poll_timeout`). The runtime crate beside this one owns sockets, timers,
//! Opus, resampling and prompt decoding; it only moves bytes and time in and
//! out. Tests drive everything in virtual time.
//!
//! Per-packet paths do not allocate: packets are parsed as borrowed views
//! over the input slice, output is written into caller-provided buffers, and
//! the jitter buffer and mixer allocate all their storage in their
//! constructors. Input from the network is treated as hostile: parsing
//! checks every length and returns a structured [`Error`]; nothing on an
//! input-driven path panics.
//!
//! ## A leg's run loop, in short
//!
//! ```
//! use std::time::{Duration, Instant};
//! use parley_media_core::g711::Law;
//! use parley_media_core::jitter::{JitterBuffer, JitterConfig, Plc, Pop};
//! use parley_media_core::rtp::{RtpHeader, RtpPacket};
//! use parley_media_core::stats::ReceiverStats;
//!
//! # fn main() -> Result<(), parley_media_core::Error> {
//! let t0 = Instant::now(); // the runtime's clock; the core never reads one
//! let mut stats = ReceiverStats::new(8000);
//! let mut jb = JitterBuffer::new(JitterConfig::default())?;
//! let mut plc = Plc::new(160, 5);
//! let mut pcm = [0i16; 160];
//! let mut wire = [0u8; 1500];
//!
//! // A peer's packet arrives (here built by our own writer).
//! let header = RtpHeader { payload_type: 0, sequence: 1, timestamp: 0, ssrc: 42, ..Default::default() };
//! let n = header.write(&[0xFF; 160], &mut wire)?;
//!
//! // Packet in: parse as a view, account, buffer.
//! let pkt = RtpPacket::parse(&wire[..n])?;
//! stats.on_rtp(t0, pkt.ssrc(), pkt.sequence(), pkt.timestamp());
//! jb.insert(t0, pkt.sequence(), pkt.timestamp(), pkt.payload())?;
//!
//! // Every 20 ms: pop, decode or conceal.
//! let now = t0 + jb.target_delay();
//! match jb.pop(now) {
//!     Pop::Frame(f) => {
//!         Law::Ulaw.decode(f.payload, &mut pcm)?;
//!         plc.good_frame(&pcm);
//!     }
//!     Pop::Concealed { .. } => plc.conceal(&mut pcm),
//!     Pop::Empty => pcm.fill(0),
//! }
//! assert!(pcm.iter().all(|&s| s == 0));
//! # Ok(())
//! # }
//! ```
//!
//! Non-goals here: sockets, SRTP/DTLS/ICE, Opus, resampling, file formats —
//! they belong to the runtime crate.

pub mod dtmf;
pub mod error;
pub mod g711;
pub mod inband;
pub mod jitter;
pub mod mixer;
pub mod onset;
pub mod rtcp;
pub mod rtp;
pub mod stats;
pub mod tap;
pub mod tones;

pub use error::{Error, Result};
