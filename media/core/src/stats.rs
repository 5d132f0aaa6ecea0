//! Receiver statistics per RFC 3550 Appendix A, round-trip time from report
//! blocks, and an estimated MOS from loss, jitter and RTT.
//!
//! [`ReceiverStats`] is sans-IO: feed it every RTP packet with the time it
//! arrived (`on_rtp`), every SR from that source (`on_sender_report`), and ask
//! it for a [`ReportBlock`] when an RR/SR is due (`report_block`).

use std::time::{Duration, Instant};

use crate::rtcp::{ReportBlock, SenderInfo, compact_ntp};

const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
const MIN_SEQUENTIAL: u32 = 2;

/// What [`ReceiverStats::on_rtp`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpOutcome {
    /// Counted as valid (in order, reordered or duplicate within the window).
    Accepted,
    /// Source still on probation (RFC 3550 A.1, `MIN_SEQUENTIAL`); not counted.
    Probation,
    /// A big sequence jump; dropped unless the next packet confirms it.
    BadSequence,
    /// Two packets confirmed a sequence jump: the source restarted and the
    /// statistics were reset.
    Restarted,
    /// A packet from a new SSRC: statistics were reset for the new source.
    SsrcChanged {
        /// The previous source.
        old: u32,
        /// The new source.
        new: u32,
    },
}

/// Per-source reception statistics (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    // Jitter state (A.8), scaled by 16.
    epoch: Option<Instant>,
    transit: Option<i64>,
    jitter_q4: u64,
    // Last SR.
    last_sr: u32,
    last_sr_at: Option<Instant>,
    /// Fraction lost in the last completed report interval.
    last_fraction: u8,
}

impl ReceiverStats {
    /// New statistics for a stream with `clock_rate` Hz timestamps.
    pub fn new(clock_rate: u32) -> Self {
        ReceiverStats {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            transit: None,
            jitter_q4: 0,
            last_sr: 0,
            last_sr_at: None,
            last_fraction: 0,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
        self.jitter_q4 = 0;
    }

    fn reset_source(&mut self, ssrc: u32, seq: u16) {
        *self = ReceiverStats {
            epoch: self.epoch,
            ..ReceiverStats::new(self.clock_rate)
        };
        self.ssrc = Some(ssrc);
        self.init_seq(seq);
        self.max_seq = seq.wrapping_sub(1);
        self.probation = MIN_SEQUENTIAL;
    }

    /// RFC 3550 A.1 `update_seq`; true if the packet counts as valid.
    fn update_seq(&mut self, seq: u16) -> RtpOutcome {
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return RtpOutcome::Accepted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return RtpOutcome::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                self.received += 1;
                return RtpOutcome::Restarted;
            }
            self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
            return RtpOutcome::BadSequence;
        }
        // else: duplicate or reordered packet, counted.
        self.received += 1;
        RtpOutcome::Accepted
    }

    /// Account for one RTP packet that arrived at `now`.
    pub fn on_rtp(&mut self, now: Instant, ssrc: u32, seq: u16, timestamp: u32) -> RtpOutcome {
        let mut outcome = RtpOutcome::Accepted;
        match self.ssrc {
            None => self.reset_source(ssrc, seq),
            Some(old) if old != ssrc => {
                self.reset_source(ssrc, seq);
                outcome = RtpOutcome::SsrcChanged { old, new: ssrc };
            }
            Some(_) => {}
        }
        let seq_outcome = self.update_seq(seq);
        if matches!(seq_outcome, RtpOutcome::Accepted | RtpOutcome::Restarted) {
            self.update_jitter(now, timestamp);
        }
        match outcome {
            RtpOutcome::SsrcChanged { .. } => outcome,
            _ => seq_outcome,
        }
    }

    /// RFC 3550 A.8 interarrival jitter, in timestamp units.
    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch);
        let arrival = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as i64;
        // Transit in a wrapping 32-bit timestamp space, widened.
        let transit = i64::from((arrival as u32).wrapping_sub(timestamp) as i32);
        if let Some(prev) = self.transit {
            let d = i64::from(transit.wrapping_sub(prev) as i32).unsigned_abs();
            // J += (|D| - J) / 16, fixed point with 4 fractional bits.
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Remember an SR from this source (for LSR/DLSR in our reports).
    pub fn on_sender_report(&mut self, now: Instant, info: &SenderInfo) {
        self.last_sr = compact_ntp(info.ntp_timestamp);
        self.last_sr_at = Some(now);
    }

    /// The source's SSRC, once a packet was seen.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Extended highest sequence number received (cycles + max_seq).
    pub fn extended_max_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected so far (A.3).
    pub fn expected(&self) -> u64 {
        if self.probation > 0 && self.received == 0 {
            return 0;
        }
        u64::from(self.extended_max_seq()) + 1 - u64::from(self.base_seq)
    }

    /// Valid packets received (includes duplicates, per the RFC).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative packets lost (negative with duplicates).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.jitter()) * 1_000_000_000 / u64::from(self.clock_rate))
    }

    /// Fraction lost in the last completed report interval, in 1/256.
    pub fn last_fraction_lost(&self) -> u8 {
        self.last_fraction
    }

    /// Estimated MOS of this stream from the last report interval's loss,
    /// the current jitter and a round-trip time known to the caller
    /// (see [`estimate_mos`]).
    pub fn estimated_mos(&self, rtt: Duration) -> f64 {
        estimate_mos(
            f64::from(self.last_fraction) / 256.0,
            self.jitter_duration(),
            rtt,
        )
    }

    /// Build a report block for this source and start a new interval (A.3).
    /// `None` before the first packet.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        self.last_fraction = fraction;
        let dlsr = match self.last_sr_at {
            Some(at) => {
                let d = now.saturating_duration_since(at);
                (d.as_nanos() * 65536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32
            }
            None => 0,
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost: fraction,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: self.extended_max_seq(),
            jitter: self.jitter(),
            last_sr: if self.last_sr_at.is_some() {
                self.last_sr
            } else {
                0
            },
            delay_since_last_sr: dlsr,
        })
    }
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1):
/// `A - LSR - DLSR`, where `arrival_ntp` is the NTP time (compact, middle 32
/// bits) at which the report arrived. `None` if the block has no LSR or the
/// result would be negative.
pub fn round_trip_time(arrival_ntp_compact: u32, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let rtt = arrival_ntp_compact
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    if rtt > u32::MAX / 2 {
        return None;
    }
    Some(Duration::from_nanos(u64::from(rtt) * 1_000_000_000 / 65536))
}

/// Estimated MOS (1.0 ..= 4.5) for a G.711 call from a simplified E-model
/// (ITU-T G.107, as simplified by Cole & Rosenbluth 2001):
///
/// * effective one-way delay `d = rtt/2 + 2·jitter + 10 ms` (jitter-buffer and
///   codec allowance), in ms;
/// * delay impairment `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)`;
/// * loss impairment for G.711 with PLC (G.113 Appendix I: Ie = 0, Bpl = 25.1)
///   `Ie_eff = 95 · P / (P + 25.1)`, P = packet loss in percent;
/// * `R = 93.2 − Id − Ie_eff`, clamped to 0..=100;
/// * `MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)`.
pub fn estimate_mos(loss_fraction: f64, jitter: Duration, rtt: Duration) -> f64 {
    let d = rtt.as_secs_f64() * 1000.0 / 2.0 + 2.0 * jitter.as_secs_f64() * 1000.0 + 10.0;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let p = (loss_fraction.clamp(0.0, 1.0)) * 100.0;
    let ie = 95.0 * p / (p + 25.1);
    let r = (93.2 - id - ie).clamp(0.0, 100.0);
    (1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
}

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (32.32 fixed point) for a wall-clock time given as
/// time since the Unix epoch (the runtime reads the clock, not this crate).
pub fn ntp_from_unix(since_unix_epoch: Duration) -> u64 {
    let secs = since_unix_epoch
        .as_secs()
        .wrapping_add(NTP_UNIX_OFFSET_SECS);
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Sender-side counters for the SR sender info (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    packets: u32,
    octets: u32,
}

impl SenderStats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one sent RTP packet with `payload_len` payload octets.
    pub fn on_sent(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    /// Packets sent (wrapping, as on the wire).
    pub fn packets(&self) -> u32 {
        self.packets
    }

    /// Payload octets sent (wrapping, as on the wire).
    pub fn octets(&self) -> u32 {
        self.octets
    }

    /// Sender info for an SR sent at NTP time `ntp`, whose RTP timestamp
    /// (same instant, media clock) is `rtp_timestamp`.
    pub fn sender_info(&self, ntp: u64, rtp_timestamp: u32) -> SenderInfo {
        SenderInfo {
            ntp_timestamp: ntp,
            rtp_timestamp,
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }
}
