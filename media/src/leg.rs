//! One media leg as a sans-IO state machine: RTP/RTCP in, 20 ms PCM frames
//! out at the engine rate, and the reverse. It never reads a clock or
//! touches a socket: the worker (or a test) passes `now`, hands it
//! datagrams, and sends what it returns.
//!
//! Per tick the driver calls, in order: [`Leg::pull`] (jitter buffer →
//! decode → resample; the frame is then in [`Leg::input`]), mixing outside,
//! [`Leg::push`] (resample → encode → RTP into the caller's buffer),
//! [`Leg::poll_timers`], [`Leg::poll_rtcp`] and [`Leg::poll_event`] until
//! `None`. Datagrams go to [`Leg::handle_rtp`] / [`Leg::handle_rtcp`] as they
//! arrive. None of these allocate, except on SRTP legs ([`LegConfig::srtp`]), where
//! the `rtc-srtp` crate returns each packet it protects or unprotects in a new
//! buffer (see BENCHMARKS.md for the cost).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use parley_media::{Codec, Event, LegConfig, LegId};
//! use parley_media::leg::Leg;
//! let t0 = Instant::now();
//! let mut cfg = LegConfig::g711(Codec::Pcmu);
//! cfg.inactivity_timeout = Some(Duration::from_secs(2));
//! let mut leg = Leg::new(LegId(1), cfg, 8000, Duration::from_secs(5), t0).unwrap();
//! // The answer names the peer; then it never sends a packet.
//! leg.set_remote(t0, "127.0.0.1:40000".parse().unwrap());
//! let mut t = t0;
//! let mut timed_out = false;
//! while t < t0 + Duration::from_secs(3) {
//!     t += Duration::from_millis(20);
//!     leg.pull(t);
//!     leg.poll_timers(t);
//!     while let Some(ev) = leg.poll_event() {
//!         timed_out |= matches!(ev, Event::RtpTimeout { .. });
//!     }
//! }
//! assert!(timed_out);
//! ```

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use parley_media_core::dtmf::{DtmfReceiver, DtmfSender};
use parley_media_core::inband::InbandDetector;
use parley_media_core::jitter::{JitterBuffer, JitterConfig, Plc, Pop};
use parley_media_core::rtcp::{ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, compact_ntp};
use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_media_core::stats::{
    ReceiverStats, RtpOutcome, SenderStats, estimate_mos, ntp_from_unix, round_trip_time,
};

use crate::codec::{Codec, Decoder, Encoder, FrameResampler};
use crate::config::{InbandDtmf, LegConfig};
use crate::error::{Error, Result};
use crate::event::{DtmfSource, Event, HangupCause, LegId, QualityStats};
use crate::srtp::{SrtpSession, Unprotect};

/// Most events a leg queues between two drains (older ones are dropped).
const EVENT_QUEUE: usize = 32;
/// Buffer size a caller must offer to [`Leg::push`] / [`Leg::poll_rtcp`].
pub const MAX_DATAGRAM: usize = 1500;
/// Valid RTP packets in a row (one SSRC, consecutive sequence numbers, a
/// negotiated payload type) a source other than the SDP address must send
/// before the leg latches to it (Asterisk's `strictrtp` learns over 4).
pub const LATCH_PROBATION: u8 = 3;

/// Counters of things the leg dropped or ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// Datagrams that did not parse as RTP/RTCP.
    pub malformed: u64,
    /// RTP from an address other than the latched one, or from an IP that may
    /// not be latched (dropped).
    pub foreign_source: u64,
    /// RTP from a latching candidate still on probation (dropped).
    pub probation: u64,
    /// RTP with a payload type we did not negotiate.
    pub unknown_payload_type: u64,
    /// RTP packets received (all accepted payload types).
    pub rtp_received: u64,
    /// Errors while decoding or encoding.
    pub codec_errors: u64,
    /// Frames recovered from Opus in-band FEC.
    pub fec_recovered: u64,
    /// SRTP/SRTCP packets that did not authenticate with the peer's key (dropped
    /// before latching or decoding).
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets already received (replay window; dropped).
    pub srtp_replayed: u64,
}

/// A source on probation before the leg latches to it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    ssrc: u32,
    next_seq: u16,
    count: u8,
}

/// One RTP/RTCP leg, sans-IO.
pub struct Leg {
    id: LegId,
    cfg: LegConfig,
    remote: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    /// RTP has been accepted from `remote`: no other source is heard or latched.
    latched: bool,
    candidate: Option<Candidate>,
    /// Whether media may be sent to `remote` ([`LegConfig::confirm_remote`]).
    confirmed: bool,
    rx: ReceiverStats,
    jb: JitterBuffer,
    plc: Plc,
    decoder: Decoder,
    encoder: Encoder,
    res_in: Option<FrameResampler>,
    res_out: Option<FrameResampler>,
    dtmf_rx: Option<DtmfReceiver>,
    inband: Option<InbandDetector>,
    /// For legs decoding at another rate than 8 kHz (Opus on a wideband engine):
    /// a resampler to 8 kHz for the detector and its output frame.
    inband_res: Option<(FrameResampler, Vec<i16>)>,
    got_rfc4733: bool,
    dtmf_tx: DtmfSender,
    dtmf_pending: Option<(char, Duration)>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    marker_next: bool,
    /// Whether media is sent (off while the peer holds the call: SDP recvonly/inactive
    /// on our side, RFC 3264 §8.4).
    sending: bool,
    tx_stats: SenderStats,
    /// Decoded audio not yet consumed (packets may be 10..=60 ms, ticks 20 ms).
    fifo: Vec<i16>,
    fifo_len: usize,
    /// RTP clock units per received packet (the jitter buffer's frame).
    packet_samples: usize,
    /// PCM samples per received packet (at `pcm_rate`).
    packet_pcm: usize,
    /// Decoded PCM rate of this leg ([`Codec::pcm_rate`]).
    pcm_rate: u32,
    codec_in: Vec<i16>,
    codec_out: Vec<i16>,
    input: Vec<i16>,
    has_input: bool,
    payload: Vec<u8>,
    last_rtp: Instant,
    timeout_reported: bool,
    rtt: Option<Duration>,
    epoch: Instant,
    epoch_unix: Duration,
    report_interval: Duration,
    next_report: Instant,
    rtcp_due: bool,
    last_block: Option<ReportBlock>,
    events: VecDeque<Event>,
    counters: LegCounters,
    /// SRTP contexts when [`LegConfig::srtp`] is set.
    srtp: Option<SrtpSession>,
}

impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg")
            .field("id", &self.id)
            .field("codec", &self.cfg.codec)
            .field("remote", &self.remote)
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

/// Longest packet accepted: 60 ms.
const MAX_PTIME_MS: usize = 60;

fn fifo_capacity(pcm_rate: u32) -> usize {
    // One tick's worth plus the longest packet.
    pcm_rate as usize * (MAX_PTIME_MS + 20) / 1000
}

fn jitter_buffer(codec: Codec, packet_samples: usize) -> Result<JitterBuffer> {
    let rate = codec.clock_rate();
    let frame = Duration::from_micros(packet_samples as u64 * 1_000_000 / u64::from(rate));
    Ok(JitterBuffer::new(JitterConfig {
        clock_rate: rate,
        frame,
        max_payload: codec.max_payload(),
        ..JitterConfig::default()
    })?)
}

fn random_u32(salt: u64) -> u32 {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.finish() as u32
}

impl Leg {
    /// A leg mixing at `engine_rate` (8000, 16000 or 48000), sending RTCP
    /// and quality reports every `report_interval`, created at `now`.
    /// Allocates all its buffers here.
    pub fn new(
        id: LegId,
        cfg: LegConfig,
        engine_rate: u32,
        report_interval: Duration,
        now: Instant,
    ) -> Result<Self> {
        let codec = cfg.codec;
        let rate = codec.clock_rate();
        let pcm_rate = codec.pcm_rate(engine_rate);
        let pcm_frame = (pcm_rate / crate::codec::FRAMES_PER_SEC) as usize;
        let (res_in, res_out) = if pcm_rate == engine_rate {
            (None, None)
        } else {
            (
                Some(FrameResampler::new(pcm_rate, engine_rate)?),
                Some(FrameResampler::new(engine_rate, pcm_rate)?),
            )
        };
        let jb = jitter_buffer(codec, codec.frame_samples())?;
        let engine_frame = (engine_rate / crate::codec::FRAMES_PER_SEC) as usize;
        let (inband, inband_res) = match cfg.inband_dtmf {
            InbandDtmf::Off => (None, None),
            _ if pcm_rate != 8000 => (
                Some(InbandDetector::new()),
                Some((
                    FrameResampler::new(pcm_rate, 8000)?,
                    vec![0i16; 8000 / crate::codec::FRAMES_PER_SEC as usize],
                )),
            ),
            _ => (Some(InbandDetector::new()), None),
        };
        let te_rate = cfg.telephone_event.map_or(8000, |t| t.clock_rate);
        let epoch_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Leg {
            id,
            cfg,
            remote: None,
            remote_rtcp: None,
            latched: false,
            candidate: None,
            confirmed: !cfg.confirm_remote,
            rx: ReceiverStats::new(rate),
            jb,
            plc: Plc::new(pcm_frame, 5),
            decoder: Decoder::new(codec, pcm_rate)?,
            encoder: Encoder::new(codec, pcm_rate, cfg.opus_complexity)?,
            res_in,
            res_out,
            dtmf_rx: cfg.telephone_event.map(|t| DtmfReceiver::new(t.clock_rate)),
            inband,
            inband_res,
            got_rfc4733: false,
            dtmf_tx: DtmfSender::new(te_rate, Duration::from_millis(20)),
            dtmf_pending: None,
            ssrc: random_u32(id.0),
            seq: random_u32(id.0 ^ 0x5EED) as u16,
            ts: random_u32(id.0 ^ 0x7157),
            marker_next: true,
            sending: true,
            tx_stats: SenderStats::new(),
            fifo: vec![0; fifo_capacity(pcm_rate)],
            fifo_len: 0,
            packet_samples: codec.frame_samples(),
            packet_pcm: pcm_frame,
            pcm_rate,
            codec_in: vec![0; pcm_frame],
            codec_out: vec![0; pcm_frame],
            input: vec![0; engine_frame],
            has_input: false,
            payload: vec![0; MAX_DATAGRAM],
            last_rtp: now,
            timeout_reported: false,
            rtt: None,
            epoch: now,
            epoch_unix,
            report_interval: report_interval.max(Duration::from_millis(100)),
            next_report: now + report_interval,
            rtcp_due: false,
            last_block: None,
            events: VecDeque::with_capacity(EVENT_QUEUE),
            counters: LegCounters::default(),
            srtp: cfg.srtp.as_ref().map(SrtpSession::new).transpose()?,
        })
    }

    /// The leg's id.
    pub fn id(&self) -> LegId {
        self.id
    }

    /// The negotiated configuration.
    pub fn config(&self) -> &LegConfig {
        &self.cfg
    }

    /// Where RTP is sent (SDP address, or the latched source).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Counters of dropped / odd input.
    pub fn counters(&self) -> LegCounters {
        self.counters
    }

    /// Set the peer's RTP address from SDP (RTCP goes to port + 1 until
    /// RTCP arrives from another port of the same IP). Latching starts again;
    /// a confirmation already given stays (a new offer in the same dialog).
    pub fn set_remote(&mut self, now: Instant, addr: SocketAddr) {
        self.remote = Some(addr);
        let mut rtcp = addr;
        rtcp.set_port(addr.port().wrapping_add(1));
        self.remote_rtcp = Some(rtcp);
        self.latched = false;
        self.candidate = None;
        self.last_rtp = now;
        self.timeout_reported = false;
    }

    /// SRTP keys agreed after the leg was created: the answer to our own offer (a
    /// leg Parley dialled) or a new offer/answer in the dialog (a re-INVITE). A plain
    /// leg becomes an SRTP leg; on an SRTP leg only what changed is re-keyed (see
    /// [`SrtpSession::rekey`]), so media goes on without a gap.
    pub fn set_srtp(&mut self, keys: &crate::srtp::SrtpKeys) -> Result<()> {
        match self.srtp.as_mut() {
            Some(s) => s.rekey(keys)?,
            None => self.srtp = Some(SrtpSession::new(keys)?),
        }
        self.cfg.srtp = Some(*keys);
        Ok(())
    }

    /// The remote address is confirmed (the ACK of our 2xx arrived, with our
    /// tag): media may be sent to it.
    pub fn confirm_remote(&mut self) {
        self.confirmed = true;
    }

    /// Whether media may be sent (see [`LegConfig::confirm_remote`]).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Whether a packet from `from` is heard, latching and confirming as the
    /// rules of [`LegConfig::latching`] say.
    fn accept_source(&mut self, from: SocketAddr, pkt: &RtpPacket<'_>) -> bool {
        if self.remote == Some(from) {
            // The peer is where its SDP (or an earlier latch) says: lock to it.
            self.latched = true;
            self.candidate = None;
            self.confirmed = true;
            return true;
        }
        let ip_allowed = self.remote.is_some_and(|r| r.ip() == from.ip())
            || self.cfg.latch_from == Some(from.ip());
        if !self.cfg.latching || self.latched || !ip_allowed {
            self.counters.foreign_source += 1;
            return false;
        }
        let pt = pkt.payload_type();
        let negotiated = pt == self.cfg.codec.payload_type()
            || self
                .cfg
                .telephone_event
                .is_some_and(|t| t.payload_type == pt);
        if !negotiated {
            self.counters.foreign_source += 1;
            return false;
        }
        let c = match self.candidate.as_mut() {
            Some(c) if c.from == from && c.ssrc == pkt.ssrc() && c.next_seq == pkt.sequence() => {
                c.count += 1;
                c.next_seq = c.next_seq.wrapping_add(1);
                *c
            }
            _ => {
                let c = Candidate {
                    from,
                    ssrc: pkt.ssrc(),
                    next_seq: pkt.sequence().wrapping_add(1),
                    count: 1,
                };
                self.candidate = Some(c);
                c
            }
        };
        if c.count < LATCH_PROBATION {
            self.counters.probation += 1;
            return false;
        }
        self.candidate = None;
        self.latched = true;
        self.confirmed = true;
        self.remote = Some(from);
        let mut rtcp = from;
        rtcp.set_port(from.port().wrapping_add(1));
        self.remote_rtcp = Some(rtcp);
        self.event(Event::Latched {
            leg: self.id,
            remote: from,
        });
        true
    }

    /// Change the inactivity timeout (e.g. `None` while the peer holds the call).
    pub fn set_inactivity_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        self.cfg.inactivity_timeout = timeout;
        self.last_rtp = now;
        self.timeout_reported = false;
    }

    /// Send media or not (hold). The RTP clock keeps running while nothing is sent,
    /// and the first packet after resuming carries the marker bit.
    pub fn set_sending(&mut self, on: bool) {
        if on && !self.sending {
            self.marker_next = true;
        }
        self.sending = on;
    }

    /// Whether media is sent (see [`Leg::set_sending`]).
    pub fn sending(&self) -> bool {
        self.sending
    }

    /// Queue a DTMF digit to send as RFC 4733 events (needs telephone-event).
    pub fn send_dtmf(&mut self, digit: char, duration: Duration) -> Result<()> {
        if self.cfg.telephone_event.is_none() {
            return Err(Error::InvalidConfig {
                what: "telephone-event not negotiated on this leg",
            });
        }
        parley_media_core::dtmf::digit_to_event(digit)?;
        self.dtmf_pending = Some((digit, duration));
        Ok(())
    }

    fn event(&mut self, ev: Event) {
        if self.events.len() == EVENT_QUEUE {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    fn drain_rfc4733(&mut self) {
        while let Some(d) = self.dtmf_rx.as_mut().and_then(|r| r.poll_digit()) {
            self.event(Event::Dtmf {
                leg: self.id,
                digit: d.digit,
                source: DtmfSource::Rfc4733,
            });
        }
    }

    /// An RTP datagram from `from` arrived at `now`. On an SRTP leg it must
    /// authenticate first: a packet that does not is dropped and counted before
    /// latching looks at it, so only the keyed peer can be latched.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) {
        let Some(srtp) = self.srtp.as_mut() else {
            return self.handle_plain_rtp(now, from, buf);
        };
        if RtpPacket::parse(buf).is_err() {
            self.counters.malformed += 1;
            return;
        }
        match srtp.unprotect_rtp(buf) {
            Ok(plain) => self.handle_plain_rtp(now, from, &plain),
            Err(Unprotect::Auth) => self.counters.srtp_auth_failed += 1,
            Err(Unprotect::Replay) => self.counters.srtp_replayed += 1,
        }
    }

    fn handle_plain_rtp(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(buf) else {
            self.counters.malformed += 1;
            return;
        };
        if !self.accept_source(from, &pkt) {
            return;
        }
        self.last_rtp = now;
        self.timeout_reported = false;
        self.counters.rtp_received += 1;
        let pt = pkt.payload_type();
        if let Some(te) = self.cfg.telephone_event
            && pt == te.payload_type
        {
            self.got_rfc4733 = true;
            if let Some(rx) = self.dtmf_rx.as_mut()
                && rx
                    .handle_packet(now, pkt.marker(), pkt.timestamp(), pkt.payload())
                    .is_err()
            {
                self.counters.malformed += 1;
            }
            self.drain_rfc4733();
            return;
        }
        if pt != self.cfg.codec.payload_type() {
            self.counters.unknown_payload_type += 1;
            return;
        }
        let payload = pkt.payload();
        let ms10 = self.cfg.codec.clock_rate() as usize / 100;
        if let Some(n) = self.decoder.packet_samples(payload)
            && n != self.packet_samples
            && n % ms10 == 0
            && n / ms10 >= 1
            && n / ms10 <= MAX_PTIME_MS / 10
        {
            // The peer's packetisation differs (e.g. 30 ms G.711): the
            // jitter buffer runs on its packets. Rare: allocates.
            match jitter_buffer(self.cfg.codec, n) {
                Ok(jb) => {
                    self.jb = jb;
                    self.packet_samples = n;
                    self.packet_pcm =
                        n * self.pcm_rate as usize / self.cfg.codec.clock_rate() as usize;
                }
                Err(_) => self.counters.codec_errors += 1,
            }
        }
        let outcome = self
            .rx
            .on_rtp(now, pkt.ssrc(), pkt.sequence(), pkt.timestamp());
        if let RtpOutcome::SsrcChanged { .. } = outcome {
            self.jb.reset();
            if let Some(rx) = self.dtmf_rx.as_mut() {
                rx.reset();
            }
        }
        if self
            .jb
            .insert(now, pkt.sequence(), pkt.timestamp(), pkt.payload())
            .is_err()
        {
            self.counters.malformed += 1;
        }
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        ntp_from_unix(self.epoch_unix + now.saturating_duration_since(self.epoch))
    }

    /// An RTCP datagram from `from` arrived at `now` (SRTCP on an SRTP leg).
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) {
        let Some(srtp) = self.srtp.as_mut() else {
            return self.handle_plain_rtcp(now, from, buf);
        };
        match srtp.unprotect_rtcp(buf) {
            Ok(plain) => self.handle_plain_rtcp(now, from, &plain),
            Err(Unprotect::Auth) => self.counters.srtp_auth_failed += 1,
            Err(Unprotect::Replay) => self.counters.srtp_replayed += 1,
        }
    }

    fn handle_plain_rtcp(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) {
        let Ok(compound) = RtcpCompound::parse(buf) else {
            self.counters.malformed += 1;
            return;
        };
        // Reports go back where the peer's RTCP comes from, if that is the IP
        // its RTP is heard from (never to an address only a datagram named).
        if self.latched && self.remote.is_some_and(|r| r.ip() == from.ip()) {
            self.remote_rtcp = Some(from);
        }
        let arrival = compact_ntp(self.ntp_at(now));
        for p in compound.iter() {
            let blocks = match p {
                RtcpPacket::SenderReport(sr) => {
                    if Some(sr.ssrc) == self.rx.ssrc() {
                        self.rx.on_sender_report(now, &sr.info);
                    }
                    Some(sr.blocks())
                }
                RtcpPacket::ReceiverReport(rr) => Some(rr.blocks()),
                _ => None,
            };
            for b in blocks.into_iter().flatten() {
                if b.ssrc == self.ssrc
                    && let Some(rtt) = round_trip_time(arrival, &b)
                {
                    self.rtt = Some(rtt);
                }
            }
        }
    }

    /// Take this tick's frame from the jitter buffer: decode or conceal,
    /// detect in-band DTMF, resample to the engine rate. Returns whether
    /// there was audio (false: nothing buffered, [`input`](Self::input) is silence).
    pub fn pull(&mut self, now: Instant) -> bool {
        let frame = self.codec_in.len();
        let fec = matches!(self.cfg.codec, Codec::Opus { fec: true, .. });
        let mut got_any = self.fifo_len > 0;
        // Pop packets until a tick's worth is decoded (one pop per tick for
        // 20 ms packets, two pops every three ticks for 30 ms ...).
        while self.fifo_len < frame {
            let room = self.fifo.len() - self.fifo_len;
            let want = self.packet_pcm.min(room);
            if want == 0 {
                break;
            }
            let tail = &mut self.fifo[self.fifo_len..];
            let written = match self.jb.pop(now) {
                Pop::Frame(f) => match self.decoder.decode(f.payload, tail, false) {
                    Ok(n) => {
                        if matches!(self.decoder, Decoder::G711(_)) {
                            self.plc.good_frame(&tail[..n]);
                        }
                        n
                    }
                    Err(_) => {
                        self.counters.codec_errors += 1;
                        tail[..want].fill(0);
                        want
                    }
                },
                Pop::Concealed { seq, .. } => {
                    // A hole with the next packet already buffered: Opus can
                    // rebuild the lost packet from that packet's FEC data.
                    let out = &mut tail[..want];
                    let recovered = match (fec, seq, self.jb.peek_next()) {
                        (true, Some(_), Some(next)) => self.decoder.decode(next, out, true).ok(),
                        _ => None,
                    };
                    if let Some(n) = recovered {
                        self.counters.fec_recovered += 1;
                        n
                    } else {
                        match self.decoder.conceal(out) {
                            Ok(Some(n)) => n,
                            Ok(None) => {
                                self.plc.conceal(out);
                                want
                            }
                            Err(_) => {
                                self.counters.codec_errors += 1;
                                out.fill(0);
                                want
                            }
                        }
                    }
                }
                Pop::Empty => break,
            };
            if written == 0 {
                break;
            }
            self.fifo_len += written.min(room);
            got_any = true;
        }
        self.has_input = got_any;
        let take = self.fifo_len.min(frame);
        self.codec_in[..take].copy_from_slice(&self.fifo[..take]);
        self.codec_in[take..].fill(0);
        self.fifo.copy_within(take..self.fifo_len, 0);
        self.fifo_len -= take;
        let inband_on = match self.cfg.inband_dtmf {
            InbandDtmf::Off => false,
            InbandDtmf::Fallback => !self.got_rfc4733,
            InbandDtmf::Always => true,
        };
        if inband_on && let Some(det) = self.inband.as_mut() {
            match self.inband_res.as_mut() {
                Some((r, frame8k)) => {
                    if r.process(&self.codec_in, frame8k).is_ok() {
                        det.push_samples(frame8k);
                    }
                }
                None => det.push_samples(&self.codec_in),
            }
            while let Some(d) = det.poll_digit() {
                if self.events.len() == EVENT_QUEUE {
                    self.events.pop_front();
                }
                self.events.push_back(Event::Dtmf {
                    leg: self.id,
                    digit: d.digit,
                    source: DtmfSource::Inband,
                });
            }
        }
        match self.res_in.as_mut() {
            Some(r) => {
                if r.process(&self.codec_in, &mut self.input).is_err() {
                    self.counters.codec_errors += 1;
                    self.input.fill(0);
                }
            }
            None => self.input.copy_from_slice(&self.codec_in),
        }
        self.has_input
    }

    /// This tick's received audio at the engine rate (after [`pull`](Self::pull)).
    pub fn input(&self) -> &[i16] {
        &self.input
    }

    /// Whether [`pull`](Self::pull) produced audio this tick.
    pub fn has_input(&self) -> bool {
        self.has_input
    }

    /// Encode this tick's outgoing frame (`pcm` at the engine rate) into an
    /// RTP packet in `out` (at least [`MAX_DATAGRAM`] bytes). Returns the
    /// destination and length, or `None` when there is nothing to send (no
    /// remote yet, Opus DTX silence). A DTMF digit being sent replaces the
    /// audio. On an SRTP leg the packet is encrypted in `out`.
    pub fn push(
        &mut self,
        now: Instant,
        pcm: &[i16],
        out: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let (dest, n) = self.push_plain(now, pcm, out)?;
        match self.srtp.as_mut() {
            None => Some((dest, n)),
            Some(s) => match s.protect_rtp(out, n) {
                Some(n) => Some((dest, n)),
                None => {
                    self.counters.codec_errors += 1;
                    None
                }
            },
        }
    }

    fn push_plain(
        &mut self,
        now: Instant,
        pcm: &[i16],
        out: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let frame = self.cfg.codec.frame_samples() as u32;
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(frame);
        if !self.sending || !self.confirmed {
            return None;
        }
        let dest = self.remote?;
        if let Some((digit, duration)) = self.dtmf_pending.take()
            && self.dtmf_tx.start(now, digit, duration, ts).is_err()
        {
            self.counters.codec_errors += 1;
        }
        if self.dtmf_tx.is_busy() {
            let te = self.cfg.telephone_event?;
            let p = self.dtmf_tx.poll_packet(now)?;
            let n = RtpHeader {
                marker: p.marker,
                payload_type: te.payload_type,
                sequence: self.seq,
                timestamp: p.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            }
            .write(&p.payload, out)
            .ok()?;
            self.seq = self.seq.wrapping_add(1);
            self.tx_stats.on_sent(p.payload.len());
            self.marker_next = true;
            return Some((dest, n));
        }
        match self.res_out.as_mut() {
            Some(r) => {
                if r.process(pcm, &mut self.codec_out).is_err() {
                    self.counters.codec_errors += 1;
                    self.codec_out.fill(0);
                }
            }
            None => {
                let n = pcm.len().min(self.codec_out.len());
                self.codec_out[..n].copy_from_slice(&pcm[..n]);
            }
        }
        let len = match self.encoder.encode(&self.codec_out, &mut self.payload) {
            Ok(n) => n,
            Err(_) => {
                self.counters.codec_errors += 1;
                return None;
            }
        };
        if matches!(self.cfg.codec, Codec::Opus { dtx: true, .. }) && len <= 2 {
            self.marker_next = true;
            return None;
        }
        let n = RtpHeader {
            marker: self.marker_next,
            payload_type: self.cfg.codec.payload_type(),
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            ..Default::default()
        }
        .write(&self.payload[..len], out)
        .ok()?;
        self.marker_next = false;
        self.seq = self.seq.wrapping_add(1);
        self.tx_stats.on_sent(len);
        Some((dest, n))
    }

    /// Run the leg's timers: RFC 4733 end-of-event timeout, RTP inactivity,
    /// periodic reports.
    pub fn poll_timers(&mut self, now: Instant) {
        if let Some(rx) = self.dtmf_rx.as_mut() {
            rx.handle_timeout(now);
        }
        self.drain_rfc4733();
        // Armed once the peer is known (SDP address set or RTP latched):
        // a leg waiting for an answer does not time out.
        if let Some(timeout) = self.cfg.inactivity_timeout
            && self.remote.is_some()
        {
            let silent = now.saturating_duration_since(self.last_rtp);
            if !self.timeout_reported && silent >= timeout {
                self.timeout_reported = true;
                self.event(Event::RtpTimeout {
                    leg: self.id,
                    silent_for: silent,
                    cause: HangupCause::RtpTimeout,
                });
            }
        }
        if now >= self.next_report {
            self.next_report += self.report_interval;
            if self.next_report < now {
                self.next_report = now + self.report_interval;
            }
            self.last_block = self.rx.report_block(now);
            self.rtcp_due = true;
            let stats = self.quality();
            self.event(Event::Quality {
                leg: self.id,
                stats,
            });
        }
    }

    /// Current quality figures (loss fraction of the last report interval).
    pub fn quality(&self) -> QualityStats {
        let fraction = f64::from(self.rx.last_fraction_lost()) / 256.0;
        let jitter = self.rx.jitter_duration();
        QualityStats {
            packets_received: self.rx.received(),
            packets_expected: self.rx.expected(),
            cumulative_lost: self.rx.cumulative_lost(),
            fraction_lost: fraction,
            jitter,
            rtt: self.rtt,
            mos: estimate_mos(fraction, jitter, self.rtt.unwrap_or_default()),
            jitter_buffer: self.jb.stats(),
            packets_sent: self.tx_stats.packets(),
        }
    }

    /// The RTCP compound packet due now (SR or RR + SDES CNAME), if any.
    pub fn poll_rtcp(&mut self, now: Instant, out: &mut [u8]) -> Option<(SocketAddr, usize)> {
        if !self.rtcp_due {
            return None;
        }
        self.rtcp_due = false;
        if !self.confirmed {
            return None;
        }
        let dest = self.remote_rtcp?;
        let blocks: &[ReportBlock] = match &self.last_block {
            Some(b) => std::slice::from_ref(b),
            None => &[],
        };
        let mut w = RtcpWriter::new(out);
        let ok = if self.tx_stats.packets() > 0 {
            let info = self.tx_stats.sender_info(self.ntp_at(now), self.ts);
            w.sender_report(self.ssrc, &info, blocks)
        } else {
            w.receiver_report(self.ssrc, blocks)
        };
        ok.ok()?;
        w.sdes_cname(self.ssrc, b"parley").ok()?;
        let n = w.finish();
        match self.srtp.as_mut() {
            None => Some((dest, n)),
            Some(s) => s.protect_rtcp(out, n).map(|n| (dest, n)),
        }
    }

    /// Next queued event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
