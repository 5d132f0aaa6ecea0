//! Helpers shared by the integration tests: a tiny pcap reader, a UDP peer
//! that sends and receives RTP, Goertzel power, event waiting.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use parley_media::{Engine, EngineConfig, Event, EventReceiver};
use parley_media_core::g711::Law;
use parley_media_core::rtp::{RtpHeader, RtpPacket};

/// UDP payloads of a classic little-endian pcap with Ethernet/IPv4/UDP,
/// with their capture times.
pub(crate) fn pcap_udp_payloads(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        &data[0..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let linktype = u32::from_le_bytes(data[20..24].try_into().unwrap());
    assert_eq!(linktype, 1, "Ethernet");
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= data.len() {
        let sec = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let usec = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap());
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..at + 16 + incl];
        at += 16 + incl;
        let mut off = 14;
        let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype == 0x8100 {
            ethertype = u16::from_be_bytes([frame[16], frame[17]]);
            off += 4;
        }
        if ethertype != 0x0800 {
            continue;
        }
        let ip = &frame[off..];
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        if ip[9] != 17 {
            continue;
        }
        let udp = &ip[ihl..];
        let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push((
            Duration::from_secs(u64::from(sec)) + Duration::from_micros(u64::from(usec)),
            udp[8..len].to_vec(),
        ));
    }
    out
}

pub(crate) fn engine() -> Engine {
    Engine::start(EngineConfig {
        workers: 2,
        port_min: 41000,
        port_max: 44999,
        report_interval: Duration::from_millis(500),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// A remote endpoint on 127.0.0.1.
pub(crate) struct Peer {
    pub(crate) sock: UdpSocket,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) ssrc: u32,
}

impl Peer {
    pub(crate) fn new() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        Peer {
            sock,
            seq: 1000,
            ts: 16000,
            ssrc: 0xC0FFEE,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub(crate) fn send_rtp(&mut self, to: SocketAddr, pt: u8, payload: &[u8], samples: u32) {
        let mut buf = [0u8; 1600];
        let n = RtpHeader {
            payload_type: pt,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            ..Default::default()
        }
        .write(payload, &mut buf)
        .unwrap();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples);
        self.sock.send_to(&buf[..n], to).unwrap();
    }

    /// Receive every datagram waiting now (non-blocking).
    pub(crate) fn drain(&self, out: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
            out.push(buf[..n].to_vec());
        }
    }
}

/// Keep draining `peer` until `n` packets of type `pt` arrived or
/// `within` passed (a loaded machine runs the engine's ticks late).
pub(crate) fn drain_until(peer: &Peer, got: &mut Vec<Vec<u8>>, pt: u8, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while payloads(got, pt).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        peer.drain(got);
    }
}

/// Payloads of RTP packets with payload type `pt`, in arrival order.
pub(crate) fn payloads(datagrams: &[Vec<u8>], pt: u8) -> Vec<Vec<u8>> {
    datagrams
        .iter()
        .filter_map(|d| RtpPacket::parse(d).ok())
        .filter(|p| p.payload_type() == pt)
        .map(|p| p.payload().to_vec())
        .collect()
}

/// Decode G.711 payloads into one PCM stream.
pub(crate) fn decode_g711(law: Law, payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut pcm = Vec::new();
    for p in payloads {
        let mut f = vec![0i16; p.len()];
        law.decode(p, &mut f).unwrap();
        pcm.extend_from_slice(&f);
    }
    pcm
}

/// Sine tone frames of 20 ms.
pub(crate) fn tone(freq: f64, rate: u32, amplitude: f64, frames: usize) -> Vec<Vec<i16>> {
    let n = (rate / 50) as usize;
    (0..frames)
        .map(|f| {
            (0..n)
                .map(|i| {
                    let t = (f * n + i) as f64 / f64::from(rate);
                    (amplitude * (std::f64::consts::TAU * freq * t).sin()) as i16
                })
                .collect()
        })
        .collect()
}

/// Power of `freq` in `pcm` (Goertzel), normalised by length.
pub(crate) fn goertzel(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (pcm.len().max(1) as f64).powi(2)
}

pub(crate) fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// Wait (bounded) for an event matching `pred`.
pub(crate) fn expect_event(
    events: &mut EventReceiver,
    within: Duration,
    what: &str,
    pred: impl FnMut(&Event) -> bool,
) -> Event {
    let (ev, skipped) = parley_media::wait_for(events, Instant::now() + within, pred);
    match ev {
        Some(ev) => ev,
        None => panic!("no {what} event; saw {skipped:?}"),
    }
}

/// Pace a closure every 20 ms for `frames` frames, draining the peer.
pub(crate) fn paced(frames: usize, mut each: impl FnMut(usize)) {
    let start = Instant::now();
    for i in 0..frames {
        each(i);
        let next = start + Duration::from_millis(20 * (i as u64 + 1));
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}
