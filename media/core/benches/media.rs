//! Criterion benches of the per-packet kernels: G.711 per 20 ms frame, RTP
//! parse/write, jitter buffer insert+pop, mixer ticks, DTMF detection.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use parley_media_core::g711;
use parley_media_core::inband::InbandDetector;
use parley_media_core::jitter::{JitterBuffer, JitterConfig, Pop};
use parley_media_core::mixer::{Mode, Room};
use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_media_core::stats::ReceiverStats;

fn speech_like() -> [i16; 160] {
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        let t = i as f64 / 8000.0;
        *s = (6000.0 * (std::f64::consts::TAU * 300.0 * t).sin()
            + 2000.0 * (std::f64::consts::TAU * 1700.0 * t).sin()) as i16;
    }
    pcm
}

fn g711_benches(c: &mut Criterion) {
    let pcm = speech_like();
    let mut bytes = [0u8; 160];
    let mut out = [0i16; 160];
    c.bench_function("g711/ulaw_encode_20ms", |b| {
        b.iter(|| g711::ulaw_encode_slice(black_box(&pcm), &mut bytes))
    });
    g711::ulaw_encode_slice(&pcm, &mut bytes).ok();
    c.bench_function("g711/ulaw_decode_20ms", |b| {
        b.iter(|| g711::ulaw_decode_slice(black_box(&bytes), &mut out))
    });
    c.bench_function("g711/alaw_encode_20ms", |b| {
        b.iter(|| g711::alaw_encode_slice(black_box(&pcm), &mut bytes))
    });
    g711::alaw_encode_slice(&pcm, &mut bytes).ok();
    c.bench_function("g711/alaw_decode_20ms", |b| {
        b.iter(|| g711::alaw_decode_slice(black_box(&bytes), &mut out))
    });
}

fn rtp_benches(c: &mut Criterion) {
    let mut wire = [0u8; 1500];
    let header = RtpHeader {
        payload_type: 0,
        sequence: 4242,
        timestamp: 123_456,
        ssrc: 0xDEAD_BEEF,
        ..Default::default()
    };
    let n = header.write(&[0xFF; 160], &mut wire).unwrap_or(0);
    c.bench_function("rtp/parse_172B", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&wire[..n]));
            black_box(p.map(|p| p.payload().len()))
        })
    });
    let payload = [0xFFu8; 160];
    let mut out = [0u8; 1500];
    c.bench_function("rtp/write_172B", |b| {
        b.iter(|| black_box(header.write(black_box(&payload), &mut out)))
    });
    let t0 = Instant::now();
    let mut stats = ReceiverStats::new(8000);
    let mut seq = 0u16;
    let mut t = t0;
    c.bench_function("rtp/receiver_stats_on_rtp", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            t += Duration::from_millis(20);
            black_box(stats.on_rtp(t, 1, seq, u32::from(seq) * 160))
        })
    });
}

fn jitter_benches(c: &mut Criterion) {
    let t0 = Instant::now();
    let payload = [0xFFu8; 160];
    let mut jb = JitterBuffer::new(JitterConfig::default()).ok();
    let mut i: u32 = 0;
    c.bench_function("jitter/insert_pop_steady", |b| {
        b.iter(|| {
            let Some(jb) = jb.as_mut() else { return 0 };
            let now = t0 + Duration::from_millis(20) * i;
            let seq = i as u16;
            jb.insert(now, seq, i.wrapping_mul(160), &payload).ok();
            i = i.wrapping_add(1);
            match jb.pop(now) {
                Pop::Frame(f) => black_box(f.payload.len()),
                _ => 0,
            }
        })
    });
}

fn mixer_bench(c: &mut Criterion, n: usize) {
    let mut room = match Room::new(n, 160) {
        Ok(r) => r,
        Err(_) => return,
    };
    let pcm = speech_like();
    let ids: Vec<_> = (0..n)
        .filter_map(|k| {
            room.add(if k == n - 1 {
                Mode::ListenOnly
            } else {
                Mode::Full
            })
            .ok()
        })
        .collect();
    c.bench_function(&format!("mixer/tick_{n}_participants"), |b| {
        b.iter(|| {
            for &id in &ids {
                room.set_input(id, black_box(&pcm)).ok();
            }
            room.mix();
            black_box(room.output(ids[0]).map(|o| o[0]).ok())
        })
    });
}

fn mixer_benches(c: &mut Criterion) {
    mixer_bench(c, 3);
    mixer_bench(c, 10);
}

fn dtmf_benches(c: &mut Criterion) {
    let pcm = speech_like();
    let mut det = InbandDetector::new();
    c.bench_function("inband/detect_20ms", |b| {
        b.iter(|| {
            det.push_samples(black_box(&pcm));
            black_box(det.poll_digit())
        })
    });
}

criterion_group!(
    benches,
    g711_benches,
    rtp_benches,
    jitter_benches,
    mixer_benches,
    dtmf_benches
);
criterion_main!(benches);
