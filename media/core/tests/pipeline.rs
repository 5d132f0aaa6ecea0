#![allow(clippy::unwrap_used)]
//! End-to-end in virtual time: a caller and an agent leg, each a full
//! RTP/G.711 path (tone → encode → RTP → lossy jittery link → parse → stats →
//! jitter buffer → decode/PLC → room), with a supervisor who listens, then
//! whispers, then barges. In-band DTMF detectors on the outputs tell who heard
//! whom.

use std::time::{Duration, Instant};

use parley_media_core::g711::Law;
use parley_media_core::inband::InbandDetector;
use parley_media_core::jitter::{JitterBuffer, JitterConfig, Plc, Pop};
use parley_media_core::mixer::{Mode, ParticipantId, Room};
use parley_media_core::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter};
use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_media_core::stats::ReceiverStats;
use parley_media_core::tones::{ToneGenerator, ToneSpec};

const FRAME: Duration = Duration::from_millis(20);

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of a leg: sender state, the link, and the receiver chain.
struct Leg {
    law: Law,
    ssrc: u32,
    seq: u16,
    ts: u32,
    in_flight: Vec<(Duration, Vec<u8>)>,
    stats: ReceiverStats,
    jb: JitterBuffer,
    plc: Plc,
}

impl Leg {
    fn new(law: Law, ssrc: u32) -> Self {
        Leg {
            law,
            ssrc,
            seq: 65_500, // wraps during the test
            ts: 0,
            in_flight: Vec::new(),
            stats: ReceiverStats::new(8000),
            jb: JitterBuffer::new(JitterConfig::default()).unwrap(),
            plc: Plc::new(160, 5),
        }
    }

    /// Encode and "send" one frame over a link with jitter and 1 % loss.
    fn send(&mut self, now: Duration, pcm: &[i16], rng: &mut Rng) {
        let mut payload = [0u8; 160];
        self.law.encode(pcm, &mut payload).unwrap();
        let mut wire = [0u8; 200];
        let n = RtpHeader {
            payload_type: self.law.payload_type(),
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            ..Default::default()
        }
        .write(&payload, &mut wire)
        .unwrap();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        if rng.unit() >= 0.01 {
            let delay = Duration::from_secs_f64(0.03 + 0.04 * rng.unit());
            self.in_flight.push((now + delay, wire[..n].to_vec()));
        }
    }

    /// Deliver due packets and produce this tick's decoded frame.
    fn receive(&mut self, t0: Instant, now: Duration, out: &mut [i16; 160]) {
        self.in_flight.sort_by_key(|p| p.0);
        while self.in_flight.first().is_some_and(|p| p.0 <= now) {
            let (at, bytes) = self.in_flight.remove(0);
            let pkt = RtpPacket::parse(&bytes).unwrap();
            self.stats
                .on_rtp(t0 + at, pkt.ssrc(), pkt.sequence(), pkt.timestamp());
            self.jb
                .insert(t0 + at, pkt.sequence(), pkt.timestamp(), pkt.payload())
                .unwrap();
        }
        match self.jb.pop(t0 + now) {
            Pop::Frame(f) => {
                self.law.decode(f.payload, out).unwrap();
                self.plc.good_frame(out);
            }
            Pop::Concealed { .. } => self.plc.conceal(out),
            Pop::Empty => out.fill(0),
        }
    }
}

/// Feed a participant's output to their ear (a detector) and note digits.
fn listen(det: &mut InbandDetector, heard: &mut String, pcm: &[i16]) {
    det.push_samples(pcm);
    while let Some(d) = det.poll_digit() {
        heard.push(d.digit);
    }
}

#[test]
fn caller_agent_supervisor_through_the_whole_chain() {
    let t0 = Instant::now();
    let mut rng = Rng(0xC0FFEE);
    let mut caller_leg = Leg::new(Law::Ulaw, 0x1111); // caller → engine
    let mut agent_leg = Leg::new(Law::Alaw, 0x2222); // agent → engine
    let mut room = Room::new(4, 160).unwrap();
    let caller = room.add(Mode::Full).unwrap();
    let agent = room.add(Mode::Full).unwrap();
    let sup = room.add(Mode::ListenOnly).unwrap();

    // Scripts: who presses what, when (in 20 ms ticks). Each phase is 1 s.
    // Phase 0 (listen):  caller '1', agent '2', supervisor '3'
    // Phase 1 (whisper): caller '4', agent '5', supervisor '6'
    // Phase 2 (barge):   caller '7', agent '8', supervisor '9'
    let phases = [
        (Mode::ListenOnly, ['1', '2', '3']),
        (Mode::Whisper { to: agent }, ['4', '5', '6']),
        (Mode::Full, ['7', '8', '9']),
    ];
    let mut ears: Vec<(ParticipantId, InbandDetector, String)> = [caller, agent, sup]
        .into_iter()
        .map(|id| (id, InbandDetector::new(), String::new()))
        .collect();

    let mut tick = 0u32;
    for (mode, digits) in phases {
        room.set_mode(sup, mode).unwrap();
        // Each talker presses their digit in turn: 150 ms tone, then silence.
        let mut gens: Vec<ToneGenerator> = digits
            .iter()
            .map(|&d| {
                ToneGenerator::new(8000, ToneSpec::dtmf(d, Duration::from_millis(150)).unwrap())
            })
            .collect();
        for step in 0..50u32 {
            let now = FRAME * tick;
            // Talker k speaks during ticks [k*15, k*15 + 8).
            let mut frames = [[0i16; 160]; 3];
            for (k, g) in gens.iter_mut().enumerate() {
                let start = k as u32 * 15;
                if step >= start && step < start + 8 {
                    g.fill(&mut frames[k]);
                }
            }
            caller_leg.send(now, &frames[0], &mut rng);
            agent_leg.send(now, &frames[1], &mut rng);
            // Network side done; the engine's tick:
            let mut from_caller = [0i16; 160];
            let mut from_agent = [0i16; 160];
            caller_leg.receive(t0, now, &mut from_caller);
            agent_leg.receive(t0, now, &mut from_agent);
            room.set_input(caller, &from_caller).unwrap();
            room.set_input(agent, &from_agent).unwrap();
            // The supervisor is a local (WebRTC) leg: no network model here.
            room.set_input(sup, &frames[2]).unwrap();
            room.mix();
            for (id, det, heard) in ears.iter_mut() {
                listen(det, heard, room.output(*id).unwrap());
            }
            tick += 1;
        }
    }
    let heard: Vec<&str> = ears.iter().map(|e| e.2.as_str()).collect();
    // Caller hears the agent always and the supervisor only when barging.
    assert_eq!(heard[0], "2589");
    // Agent hears the caller always, the supervisor when whispering and barging.
    assert_eq!(heard[1], "14679");
    // Supervisor hears caller and agent in every phase, never themselves.
    assert_eq!(heard[2], "124578");

    // Both receive paths saw the stream through the sequence wrap.
    for leg in [&caller_leg, &agent_leg] {
        assert!(leg.stats.extended_max_seq() > 65_536);
        assert!(leg.jb.stats().played > 130);
    }

    // The engine reports reception quality of the caller leg in an RR.
    let block = caller_leg.stats.report_block(t0 + FRAME * tick).unwrap();
    let mut buf = [0u8; 256];
    let mut w = RtcpWriter::new(&mut buf);
    w.receiver_report(0xE0E0, &[block]).unwrap();
    w.sdes_cname(0xE0E0, b"parley-engine").unwrap();
    let n = w.finish();
    let compound = RtcpCompound::parse(&buf[..n]).unwrap();
    let Some(RtcpPacket::ReceiverReport(rr)) = compound.iter().next() else {
        panic!("RR first")
    };
    let b = rr.blocks().next().unwrap();
    assert_eq!(b.ssrc, 0x1111);
    assert!(b.cumulative_lost >= 0 && b.cumulative_lost < 10, "{b:?}");
    // 40 ms of uniform spread gives an RFC 3550 jitter of roughly 13 ms (~100 units).
    assert!(b.jitter > 40 && b.jitter < 200, "{b:?}");
}
