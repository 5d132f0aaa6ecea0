//! Engine and leg configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::codec::Codec;

/// How DTMF is detected on a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InbandDtmf {
    /// RFC 4733 only.
    Off,
    /// Goertzel detection on the decoded audio until the first RFC 4733
    /// packet arrives (then RFC 4733 only, so a key is never reported twice).
    Fallback,
    /// Always run the in-band detector as well (only for peers known not to
    /// send both).
    Always,
}

/// Telephone-event (RFC 4733) as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Dynamic payload type (often 101).
    pub payload_type: u8,
    /// Clock rate of the event stream (8000 with G.711, 48000 with Opus).
    pub clock_rate: u32,
}

/// What a call owner negotiated for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegConfig {
    /// The audio codec.
    pub codec: Codec,
    /// Telephone-event, if negotiated.
    pub telephone_event: Option<TelephoneEvent>,
    /// In-band DTMF detection (Goertzel at 8 kHz; legs decoding at another rate,
    /// Opus on a wideband engine, are resampled to 8 kHz for it).
    pub inband_dtmf: InbandDtmf,
    /// Hang up (report [`crate::Event::RtpTimeout`]) after this long without
    /// RTP; `None` disables the check. The timer starts when the remote
    /// address is set (or first latched) and restarts with every packet.
    pub inactivity_timeout: Option<Duration>,
    /// Symmetric RTP: send to the address the peer's RTP comes from
    /// (callers behind NAT), not only to the SDP address. Strict: RTP from the
    /// SDP address itself locks the leg to it at once; another source is latched
    /// only if its IP is the SDP address's IP or [`latch_from`](Self::latch_from)
    /// and it sends [`crate::leg::LATCH_PROBATION`] valid packets in a row (a
    /// negotiated payload type, one SSRC, consecutive sequence numbers) before
    /// anyone else does; once latched, every other source is dropped. With
    /// latching off only the exact remote address is heard.
    pub latching: bool,
    /// The one other IP a NATed peer's RTP may be latched from (the source of its
    /// SIP request); `None`: only the SDP address's IP.
    pub latch_from: Option<IpAddr>,
    /// Send nothing (RTP, RTCP) until the remote address is confirmed: by valid
    /// RTP from it or by [`crate::CallHandle::confirm_remote`] (the ACK of our
    /// 2xx). For an inbound caller's offer, whose INVITE may carry a spoofed
    /// source and a victim's address in its SDP: answering it with media would
    /// reflect our audio at the victim. Playback does not advance meanwhile, so
    /// a prompt is heard from its start. Off for legs whose SDP answers Parley's
    /// own request (a target it chose) and for loopback relays.
    pub confirm_remote: bool,
    /// Opus encoder complexity 0..=10: the main cost of a transcoded call
    /// (see the `codecs` bench: 1 ≈ 27 µs, 3 ≈ 49 µs, 5 ≈ 86 µs per 20 ms
    /// frame on the development VM). Default 3.
    pub opus_complexity: u8,
    /// SDES-SRTP keys (RFC 4568) when the leg's m-line is `RTP/SAVP`: RTP and RTCP
    /// are encrypted and authenticated both ways, packets that fail are dropped and
    /// counted ([`crate::leg::LegCounters::srtp_auth_failed`]). `None`: plain RTP.
    pub srtp: Option<crate::srtp::SrtpKeys>,
}

impl LegConfig {
    /// A G.711 leg with telephone-event on payload type 101, in-band
    /// fallback, latching on and a 30 s inactivity timeout.
    pub fn g711(codec: Codec) -> Self {
        LegConfig {
            codec,
            telephone_event: Some(TelephoneEvent {
                payload_type: 101,
                clock_rate: 8000,
            }),
            inband_dtmf: InbandDtmf::Fallback,
            inactivity_timeout: Some(Duration::from_secs(30)),
            latching: true,
            latch_from: None,
            confirm_remote: false,
            opus_complexity: 3,
            srtp: None,
        }
    }

    /// An Opus leg (payload type 111, FEC on, DTX off) with telephone-event
    /// on payload type 110 at 48 kHz and in-band DTMF as a fallback.
    pub fn opus() -> Self {
        LegConfig {
            codec: Codec::Opus {
                payload_type: 111,
                fec: true,
                dtx: false,
            },
            telephone_event: Some(TelephoneEvent {
                payload_type: 110,
                clock_rate: 48000,
            }),
            inband_dtmf: InbandDtmf::Fallback,
            inactivity_timeout: Some(Duration::from_secs(30)),
            latching: true,
            latch_from: None,
            confirm_remote: false,
            opus_complexity: 3,
            srtp: None,
        }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Number of media worker threads (each drives many legs).
    pub workers: usize,
    /// Local IP address the RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// First port of the RTP range (rounded up to even).
    pub port_min: u16,
    /// Last port of the RTP range (RTCP uses RTP + 1, so the last pair ends here).
    pub port_max: u16,
    /// Mixing rate of rooms, prompts and recordings: 8000, 16000 or 48000.
    /// Legs whose codec runs at another rate are resampled.
    pub engine_rate: u32,
    /// How often RTCP reports are sent and [`crate::Event::Quality`] is emitted.
    pub report_interval: Duration,
    /// Frames the recorder queue holds before frames are dropped (counted).
    pub recorder_queue: usize,
    /// Most participants in one room.
    pub room_capacity: usize,
    /// `None`: a worker wakes for every datagram (exact arrival times for
    /// jitter statistics, one wake-up per packet). `Some(slice)`: it wakes
    /// every `slice` and reads what arrived (arrival times rounded to the
    /// slice; far fewer wake-ups under load). Default 5 ms.
    pub rx_batch: Option<Duration>,
    /// Seal every recording under this key ring (`parley-vault`); `None` writes plain
    /// files (0600 either way).
    pub recording_keys: Option<std::sync::Arc<parley_vault::KeyRing>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 2,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 20000,
            port_max: 29999,
            engine_rate: 8000,
            report_interval: Duration::from_secs(5),
            recorder_queue: 2048,
            room_capacity: 8,
            rx_batch: Some(Duration::from_millis(5)),
            recording_keys: None,
        }
    }
}
