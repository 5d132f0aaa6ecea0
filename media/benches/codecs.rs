//! Kernels of the media runtime per 20 ms frame: Opus encode/decode,
//! rubato resampling between 8/16/48 kHz, and one leg's full tick (jitter
//! buffer → decode → encode → RTP) for G.711 and Opus; SRTP per packet (protect,
//! unprotect) and a PCMU leg's tick with SRTP both ways.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use parley_media::codec::{Decoder, Encoder, FrameResampler};
use parley_media::leg::Leg;
use parley_media::{Codec, LegConfig, LegId};
use parley_media_core::rtp::RtpHeader;

fn tone(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (8000.0 * (std::f64::consts::TAU * 440.0 * t).sin()) as i16
        })
        .collect()
}

fn opus(c: &mut Criterion) {
    let codec = Codec::Opus {
        payload_type: 111,
        fec: true,
        dtx: false,
    };
    let pcm = tone(48000, 960);
    let mut enc = Encoder::new(codec, 48000, 5).unwrap();
    let mut out = [0u8; 1500];
    c.bench_function("opus_encode_20ms_48k_fec_complexity_5", |b| {
        b.iter(|| enc.encode(black_box(&pcm), &mut out).unwrap())
    });
    let n = enc.encode(&pcm, &mut out).unwrap();
    let packet = out[..n].to_vec();
    let mut dec = Decoder::new(codec, 48000).unwrap();
    let mut pcm_out = [0i16; 960];
    c.bench_function("opus_decode_20ms_48k", |b| {
        b.iter(|| dec.decode(black_box(&packet), &mut pcm_out, false).unwrap())
    });
    c.bench_function("opus_plc_20ms_48k", |b| {
        b.iter(|| dec.conceal(&mut pcm_out).unwrap())
    });
    // What an 8 kHz engine does: Opus at its native 8 kHz PCM interface.
    let pcm8 = tone(8000, 160);
    let mut enc8 = Encoder::new(codec, 8000, 3).unwrap();
    c.bench_function("opus_encode_20ms_8k_pcm_complexity_3", |b| {
        b.iter(|| enc8.encode(black_box(&pcm8), &mut out).unwrap())
    });
    // The knob that decides transcoding cost: encoder complexity.
    for complexity in [1, 3, 5, 8] {
        let mut e =
            opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        e.set_bitrate(opus::Bitrate::Bits(24_000)).unwrap();
        e.set_complexity(complexity).unwrap();
        c.bench_function(
            &format!("opus_encode_20ms_8k_complexity_{complexity}"),
            |b| b.iter(|| e.encode(black_box(&pcm8), &mut out).unwrap()),
        );
    }
    let n = enc8.encode(&pcm8, &mut out).unwrap();
    let packet8 = out[..n].to_vec();
    let mut dec8 = Decoder::new(codec, 8000).unwrap();
    let mut pcm8_out = [0i16; 160];
    c.bench_function("opus_decode_20ms_8k_pcm", |b| {
        b.iter(|| {
            dec8.decode(black_box(&packet8), &mut pcm8_out, false)
                .unwrap()
        })
    });
}

fn resample(c: &mut Criterion) {
    for (from, to) in [(8000, 48000), (48000, 8000), (8000, 16000), (16000, 48000)] {
        let mut r = FrameResampler::new(from, to).unwrap();
        let input = tone(from, r.input_frame());
        let mut output = vec![0i16; r.output_frame()];
        c.bench_function(&format!("resample_20ms_{from}_to_{to}"), |b| {
            b.iter(|| r.process(black_box(&input), &mut output).unwrap())
        });
    }
}

/// One leg's work per tick with one packet in and one out.
fn leg_tick(c: &mut Criterion, name: &str, cfg: LegConfig, payload: &[u8], samples: u32) {
    let t0 = Instant::now();
    let mut leg = Leg::new(LegId(1), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let from = "127.0.0.1:4000".parse().unwrap();
    leg.set_remote(t0, from);
    let pcm = tone(8000, 160);
    let mut wire = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut seq = 0u16;
    let mut now = t0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let n = RtpHeader {
                payload_type: cfg.codec.payload_type(),
                sequence: seq,
                timestamp: u32::from(seq).wrapping_mul(samples),
                ssrc: 9,
                ..Default::default()
            }
            .write(payload, &mut wire)
            .unwrap();
            leg.handle_rtp(now, from, &wire[..n]);
            now += Duration::from_millis(20);
            seq = seq.wrapping_add(1);
            leg.pull(now);
            let sent = leg.push(now, black_box(&pcm), &mut out);
            leg.poll_timers(now);
            while leg.poll_event().is_some() {}
            sent
        })
    });
}

fn legs(c: &mut Criterion) {
    let mut ulaw = [0u8; 160];
    parley_media_core::g711::ulaw_encode_slice(&tone(8000, 160), &mut ulaw).unwrap();
    leg_tick(c, "leg_tick_pcmu", LegConfig::g711(Codec::Pcmu), &ulaw, 160);
    let mut enc = Encoder::new(LegConfig::opus().codec, 48000, 5).unwrap();
    let mut pkt = [0u8; 1500];
    let n = enc.encode(&tone(48000, 960), &mut pkt).unwrap();
    leg_tick(
        c,
        "leg_tick_opus_at_8k_engine",
        LegConfig::opus(),
        &pkt[..n],
        960,
    );
}

/// SDES-SRTP (AES_CM_128_HMAC_SHA1_80) on a 172-byte PCMU packet: what a leg adds per
/// packet each way, and a whole PCMU tick with SRTP (compare `leg_tick_pcmu`).
fn srtp(c: &mut Criterion) {
    use parley_media::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
    let keys = |a: u8, b: u8| SrtpKeys {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        local: [a; 30],
        remote: [b; 30],
    };
    let mut tx = SrtpSession::new(&keys(1, 2)).unwrap();
    let mut rx = SrtpSession::new(&keys(2, 1)).unwrap();
    let mut ulaw = [0u8; 160];
    parley_media_core::g711::ulaw_encode_slice(&tone(8000, 160), &mut ulaw).unwrap();
    let mut buf = [0u8; 1500];
    let mut seq = 0u16;
    c.bench_function("srtp_protect_pcmu_packet", |b| {
        b.iter(|| {
            let n = RtpHeader {
                payload_type: 0,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 9,
                ..Default::default()
            }
            .write(&ulaw, &mut buf)
            .unwrap();
            seq = seq.wrapping_add(1);
            tx.protect_rtp(black_box(&mut buf), n).unwrap()
        })
    });
    // Unprotect needs fresh sequence numbers (replay window): protect a run first.
    let packets: Vec<Vec<u8>> = (0..20_000u16)
        .map(|s| {
            let n = RtpHeader {
                payload_type: 0,
                sequence: s,
                timestamp: u32::from(s) * 160,
                ssrc: 7,
                ..Default::default()
            }
            .write(&ulaw, &mut buf)
            .unwrap();
            let n = tx.protect_rtp(&mut buf, n).unwrap();
            buf[..n].to_vec()
        })
        .collect();
    let mut i = 0usize;
    c.bench_function("srtp_unprotect_pcmu_packet", |b| {
        b.iter(|| {
            let p = &packets[i % packets.len()];
            i += 1;
            // Past the first run the replay window refuses: same cost (auth first).
            let _ = black_box(rx.unprotect_rtp(black_box(p)));
        })
    });
    let mut ulaw_cfg = LegConfig::g711(Codec::Pcmu);
    ulaw_cfg.srtp = Some(keys(3, 4));
    leg_tick_srtp(c, ulaw_cfg, &ulaw, keys(4, 3));
}

/// `leg_tick` for an SRTP leg: the peer's packets are protected outside the timed loop.
fn leg_tick_srtp(
    c: &mut Criterion,
    cfg: LegConfig,
    payload: &[u8],
    peer: parley_media::srtp::SrtpKeys,
) {
    let t0 = Instant::now();
    let mut leg = Leg::new(LegId(1), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let from = "127.0.0.1:4000".parse().unwrap();
    leg.set_remote(t0, from);
    let mut peer = parley_media::srtp::SrtpSession::new(&peer).unwrap();
    let mut wire = [0u8; 1500];
    let packets: Vec<Vec<u8>> = (0..=u16::MAX)
        .map(|s| {
            let n = RtpHeader {
                payload_type: 0,
                sequence: s,
                timestamp: u32::from(s) * 160,
                ssrc: 9,
                ..Default::default()
            }
            .write(payload, &mut wire)
            .unwrap();
            let n = peer.protect_rtp(&mut wire, n).unwrap();
            wire[..n].to_vec()
        })
        .collect();
    let pcm = tone(8000, 160);
    let mut out = [0u8; 1500];
    let mut k = 0usize;
    let mut now = t0;
    c.bench_function("leg_tick_pcmu_srtp", |b| {
        b.iter(|| {
            leg.handle_rtp(now, from, &packets[k % packets.len()]);
            k += 1;
            now += Duration::from_millis(20);
            leg.pull(now);
            let sent = leg.push(now, black_box(&pcm), &mut out);
            leg.poll_timers(now);
            while leg.poll_event().is_some() {}
            sent
        })
    });
}

criterion_group!(benches, opus, resample, legs, srtp);
criterion_main!(benches);
