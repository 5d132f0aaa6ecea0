//! DTMF over RTP: RFC 4733 telephone-event payloads, a receiver that turns
//! event packets into one [`Digit`] per key press, and a sender that produces
//! the packet sequence for a digit.
//!
//! Both machines are sans-IO: the receiver is fed packets with
//! [`DtmfReceiver::handle_packet`] and drained with
//! [`DtmfReceiver::poll_digit`]; the sender is started with
//! [`DtmfSender::start`] and drained with [`DtmfSender::poll_packet`] at the
//! instants given by [`DtmfSender::poll_timeout`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use parley_media_core::dtmf::{DtmfReceiver, DtmfSender};
//! let t0 = Instant::now();
//! let mut tx = DtmfSender::new(8000, Duration::from_millis(20));
//! let mut rx = DtmfReceiver::new(8000);
//! tx.start(t0, '5', Duration::from_millis(100), 16000).unwrap();
//! while let Some(at) = tx.poll_timeout() {
//!     let p = tx.poll_packet(at).unwrap();
//!     rx.handle_packet(at, p.marker, p.timestamp, &p.payload).unwrap();
//! }
//! let digit = rx.poll_digit().unwrap();
//! assert_eq!(digit.digit, '5');
//! assert_eq!(digit.duration, Duration::from_millis(100));
//! assert!(rx.poll_digit().is_none());
//! ```

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The RFC 4733 event code of a DTMF character (0-9, *, #, A-D; case-insensitive).
pub fn digit_to_event(digit: char) -> Result<u8> {
    Ok(match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => 12 + (digit as u8 - b'A'),
        'a'..='d' => 12 + (digit as u8 - b'a'),
        _ => return Err(Error::NotADigit { digit }),
    })
}

/// The DTMF character of an RFC 4733 event code (0..=15), if it is one.
pub fn event_to_digit(event: u8) -> Option<char> {
    const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
    DIGITS.get(usize::from(event)).map(|&b| b as char)
}

/// The 4-byte telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelephoneEvent {
    /// Event code (0-15 are DTMF).
    pub event: u8,
    /// E bit: last packet(s) of the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Length of the payload.
    pub const LEN: usize = 4;

    /// Parse the first 4 bytes of `payload` (further bytes, e.g. redundancy, are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(Error::EventTooShort { len: payload.len() });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The wire form (R bit zero, volume masked to 6 bits).
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            if self.end { 0x80 } else { 0 } | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// One key press reported by [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The DTMF character.
    pub digit: char,
    /// How long the key was held (from the event's duration field).
    pub duration: Duration,
    /// RTP timestamp of the event's start.
    pub timestamp: u32,
    /// True if no end packet was seen (timeout or a new event cut it short).
    pub end_missing: bool,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    event: u8,
    /// Timestamp of the first segment.
    start_ts: u32,
    /// Timestamp of the current segment (long events, RFC 4733 §2.5.1.3).
    segment_ts: u32,
    /// Units in completed segments (u64: a key held for 65 537 segments
    /// overflows u32).
    earlier_segments: u64,
    /// Largest duration seen in the current segment.
    duration: u16,
    last_seen: Instant,
}

const QUEUE: usize = 4;

/// Receives RFC 4733 packets and reports each key press exactly once.
///
/// Handles: the start packet with the marker bit, updates with growing
/// duration, the end bit (end packets repeated any number of times), a lost
/// start (first packet without marker), lost end packets (a new event or a
/// timeout ends the old one), late packets of finished events, and long events
/// split in segments.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    timeout: Duration,
    active: Option<Active>,
    /// Timestamp of the newest event started, to discard stale packets.
    newest_ts: Option<u32>,
    /// Whether the event at `newest_ts` has been reported.
    newest_done: bool,
    queue: [Option<Digit>; QUEUE],
    head: usize,
    len: usize,
}

impl DtmfReceiver {
    /// A receiver for a `clock_rate` Hz telephone-event stream (8000 usually).
    pub fn new(clock_rate: u32) -> Self {
        DtmfReceiver {
            clock_rate: clock_rate.max(1),
            timeout: Duration::from_millis(300),
            active: None,
            newest_ts: None,
            newest_done: false,
            queue: [None; QUEUE],
            head: 0,
            len: 0,
        }
    }

    /// How long without packets before an event without end bit is reported
    /// (default 300 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn units_to_duration(&self, units: u64) -> Duration {
        let rate = u64::from(self.clock_rate);
        // rem < rate <= u32::MAX, so rem * 10^9 fits in u64 and is < rate * 10^9.
        let nanos = (units % rate) * 1_000_000_000 / rate;
        Duration::new(units / rate, u32::try_from(nanos).unwrap_or(999_999_999))
    }

    fn push(&mut self, d: Digit) {
        if self.len == QUEUE {
            // Drop the oldest: the caller is not draining.
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
        }
        self.queue[(self.head + self.len) % QUEUE] = Some(d);
        self.len += 1;
    }

    fn finish(&mut self, end_missing: bool) {
        if let Some(a) = self.active.take() {
            if let Some(digit) = event_to_digit(a.event) {
                let units = a.earlier_segments.saturating_add(u64::from(a.duration));
                self.push(Digit {
                    digit,
                    duration: self.units_to_duration(units),
                    timestamp: a.start_ts,
                    end_missing,
                });
            }
            self.newest_done = true;
        }
    }

    /// Feed one telephone-event RTP packet: its marker bit, RTP timestamp and payload.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<()> {
        let ev = TelephoneEvent::parse(payload)?;
        if let Some(mut a) = self.active {
            if timestamp == a.segment_ts {
                a.duration = a.duration.max(ev.duration);
                a.last_seen = now;
                self.active = Some(a);
                if ev.end {
                    self.finish(false);
                }
                return Ok(());
            }
            let seg_end = a.segment_ts.wrapping_add(u32::from(a.duration));
            if !marker && ev.event == a.event && timestamp == seg_end && a.duration == u16::MAX {
                // Next segment of a long event.
                a.earlier_segments = a.earlier_segments.saturating_add(u64::from(a.duration));
                a.segment_ts = timestamp;
                a.duration = ev.duration;
                a.last_seen = now;
                self.active = Some(a);
                self.newest_ts = Some(timestamp);
                if ev.end {
                    self.finish(false);
                }
                return Ok(());
            }
        }
        if let Some(newest) = self.newest_ts {
            let age = timestamp.wrapping_sub(newest) as i32;
            if age < 0 || (age == 0 && self.newest_done) {
                // Retransmitted end packet or a late packet of an old event.
                return Ok(());
            }
        }
        // A new event: whatever was active lost its end packets.
        self.finish(true);
        self.newest_ts = Some(timestamp);
        self.newest_done = false;
        self.active = Some(Active {
            event: ev.event,
            start_ts: timestamp,
            segment_ts: timestamp,
            earlier_segments: 0,
            duration: ev.duration,
            last_seen: now,
        });
        if ev.end {
            self.finish(false);
        }
        Ok(())
    }

    /// Forget the event in progress without reporting it (new SSRC, call
    /// transferred). Digits already reported stay in the queue.
    pub fn reset(&mut self) {
        self.active = None;
        self.newest_ts = None;
        self.newest_done = false;
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.last_seen + self.timeout)
    }

    /// Report an event whose packets stopped without an end bit.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(a) = self.active
            && now >= a.last_seen + self.timeout
        {
            self.finish(true);
        }
    }

    /// Next reported key press, in order.
    pub fn poll_digit(&mut self) -> Option<Digit> {
        if self.len == 0 {
            return None;
        }
        let d = self.queue[self.head].take();
        self.head = (self.head + 1) % QUEUE;
        self.len -= 1;
        d
    }
}

/// One packet produced by [`DtmfSender`]; the caller adds sequence number,
/// SSRC and the negotiated payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Marker bit (set on the first packet of the event).
    pub marker: bool,
    /// RTP timestamp: the event start, the same for every packet.
    pub timestamp: u32,
    /// The event fields.
    pub event: TelephoneEvent,
    /// The 4-byte payload.
    pub payload: [u8; 4],
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    event: u8,
    timestamp: u32,
    total: u16,
    sent: u32,
    next_at: Instant,
    ends_left: u8,
    first: bool,
}

/// Produces the RFC 4733 packet sequence for one digit at a time: a start
/// packet with marker, updates every packet interval with growing duration,
/// and the end packet sent three times.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    clock_rate: u32,
    interval: Duration,
    volume: u8,
    state: Option<Sending>,
}

impl DtmfSender {
    /// A sender for `clock_rate` Hz sending one packet every `interval` (20 or 50 ms).
    pub fn new(clock_rate: u32, interval: Duration) -> Self {
        DtmfSender {
            clock_rate: clock_rate.max(1),
            interval: interval.max(Duration::from_millis(1)),
            volume: 10,
            state: None,
        }
    }

    /// Set the volume field (-dBm0, default 10).
    pub fn with_volume(mut self, volume: u8) -> Self {
        self.volume = volume.min(63);
        self
    }

    fn units(&self, d: Duration) -> u64 {
        let units = d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        u64::try_from(units).unwrap_or(u64::MAX)
    }

    /// Start sending `digit` for `duration` at RTP timestamp `timestamp`.
    /// Replaces any digit still being sent.
    pub fn start(
        &mut self,
        now: Instant,
        digit: char,
        duration: Duration,
        timestamp: u32,
    ) -> Result<()> {
        let event = digit_to_event(digit)?;
        let total = self.units(duration);
        if total == 0 || total > u64::from(u16::MAX) {
            return Err(Error::OutOfRange {
                field: "dtmf_duration_units",
                value: total,
                max: u64::from(u16::MAX),
            });
        }
        self.state = Some(Sending {
            event,
            timestamp,
            total: total as u16,
            sent: 0,
            next_at: now,
            ends_left: 3,
            first: true,
        });
        Ok(())
    }

    /// True while packets remain to be sent.
    pub fn is_busy(&self) -> bool {
        self.state.is_some()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.state.map(|s| s.next_at)
    }

    /// The packet due at `now`, if any.
    pub fn poll_packet(&mut self, now: Instant) -> Option<EventPacket> {
        let mut s = self.state?;
        if now < s.next_at {
            return None;
        }
        let step = self.units(self.interval).max(1) as u32;
        let end;
        if s.sent < u32::from(s.total) {
            s.sent = (s.sent + step).min(u32::from(s.total));
            end = s.sent == u32::from(s.total);
        } else {
            end = true;
        }
        if end {
            s.ends_left -= 1;
        }
        let event = TelephoneEvent {
            event: s.event,
            end,
            volume: self.volume,
            duration: s.sent as u16,
        };
        let packet = EventPacket {
            marker: s.first,
            timestamp: s.timestamp,
            event,
            payload: event.to_bytes(),
        };
        s.first = false;
        s.next_at += self.interval;
        self.state = (s.ends_left > 0).then_some(s);
        Some(packet)
    }
}
