//! System benchmark: N concurrent bridged calls through the engine on
//! 127.0.0.1. Each call has two legs in one room; a synthetic RTP
//! generator (two sockets per call, in this process, on its own threads)
//! sends 50 packets/s into each leg and counts what comes back. Reports
//! the engine workers' CPU (from /proc/self/task/<tid>/stat) as % of one
//! core per call, packets lost on the way in (from the legs' RTP
//! statistics) and on the way out (generator counts), late ticks.
//!
//! Bounded: calls and seconds from the environment
//! `PARLEY_BENCH_CALLS` (default "100,500,1000"),
//! `PARLEY_BENCH_SECS` (measured seconds per run, default 10),
//! `PARLEY_BENCH_WORKERS` (default 2), `PARLEY_BENCH_TRANSCODE_CALLS`
//! (default "100,500"): the G.711 ↔ Opus runs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parley_media::{Codec, Engine, EngineConfig, Event, LegConfig, RoomMode};
use parley_media_core::rtp::RtpHeader;

struct Side {
    /// Index of the generator socket this side sends from (and the leg
    /// latches to): sockets are shared by many legs so draining them costs a
    /// few syscalls per tick, not one per leg.
    sock: usize,
    to: SocketAddr,
    pt: u8,
    payload: Arc<Vec<u8>>,
    samples: u32,
    seq: u16,
    ts: u32,
}

/// A non-blocking generator socket with a large receive buffer (it takes
/// the packets of many legs).
fn generator_socket() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.set_nonblocking(true).unwrap();
    s.into()
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn payloads() -> (Arc<Vec<u8>>, Arc<Vec<u8>>) {
    let pcm8: Vec<i16> = (0..160)
        .map(|i| (6000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut ulaw = vec![0u8; 160];
    parley_media_core::g711::ulaw_encode_slice(&pcm8, &mut ulaw).unwrap();
    let pcm48: Vec<i16> = (0..960)
        .map(|i| (6000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / 48000.0).sin()) as i16)
        .collect();
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut buf = [0u8; 1500];
    let n = enc.encode(&pcm48, &mut buf).unwrap();
    (Arc::new(ulaw), Arc::new(buf[..n].to_vec()))
}

/// Generator thread: send one packet per side every 20 ms, drain replies.
fn generator(
    socks: Vec<UdpSocket>,
    mut sides: Vec<Side>,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 2048];
    let mut wire = [0u8; 1500];
    let start = Instant::now();
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for s in &mut sides {
            let n = RtpHeader {
                payload_type: s.pt,
                sequence: s.seq,
                timestamp: s.ts,
                ssrc: 0x5151,
                ..Default::default()
            }
            .write(&s.payload, &mut wire)
            .unwrap();
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(s.samples);
            let _ = socks[s.sock].send_to(&wire[..n], s.to);
        }
        let mut got = 0;
        for sock in &socks {
            while let Ok((_, _)) = sock.recv_from(&mut buf) {
                got += 1;
            }
        }
        received.fetch_add(got, Ordering::Relaxed);
        tick += 1;
        let next = start + Duration::from_millis(20 * tick);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

struct Outcome {
    cpu_pct_per_call: f64,
    cpu_pct_total: f64,
    loss_in: f64,
    loss_out: f64,
    late_ticks: u64,
    max_tick_us: u64,
    concealed: u64,
    send_errors: u64,
}

fn run(
    calls: usize,
    transcode: bool,
    secs: u64,
    workers: usize,
    batch: Option<Duration>,
) -> Outcome {
    let engine = Engine::start(EngineConfig {
        workers,
        port_min: 20000,
        port_max: 29999,
        report_interval: Duration::from_secs(1),
        rx_batch: batch,
        ..EngineConfig::default()
    })
    .unwrap();
    let (ulaw, opus_pkt) = payloads();
    let gen_threads = 2;
    let socks_per_thread = 8;
    let socks: Vec<Vec<UdpSocket>> = (0..gen_threads)
        .map(|_| (0..socks_per_thread).map(|_| generator_socket()).collect())
        .collect();
    let mut handles = Vec::new();
    let mut sides: Vec<Vec<Side>> = (0..gen_threads).map(|_| Vec::new()).collect();
    let mut k = 0usize;
    for _ in 0..calls {
        let (call, events) = engine.create_call().unwrap();
        let mut a_cfg = LegConfig::g711(Codec::Pcmu);
        a_cfg.inactivity_timeout = None;
        let mut b_cfg = if transcode {
            LegConfig::opus()
        } else {
            LegConfig::g711(Codec::Pcmu)
        };
        b_cfg.inactivity_timeout = None;
        let a = call.create_leg(a_cfg).unwrap();
        let b = call.create_leg(b_cfg).unwrap();
        let room = call.create_room().unwrap();
        for (leg, cfg) in [(a, a_cfg), (b, b_cfg)] {
            let (t, i) = (k % gen_threads, (k / gen_threads) % socks_per_thread);
            k += 1;
            call.set_remote(leg.id, socks[t][i].local_addr().unwrap())
                .unwrap();
            call.join(room, leg.id, RoomMode::Full).unwrap();
            let opus_side = matches!(cfg.codec, Codec::Opus { .. });
            sides[t].push(Side {
                sock: i,
                to: leg.local_rtp,
                pt: cfg.codec.payload_type(),
                payload: if opus_side {
                    Arc::clone(&opus_pkt)
                } else {
                    Arc::clone(&ulaw)
                },
                samples: if opus_side { 960 } else { 160 },
                seq: 1,
                ts: 0,
            });
        }
        handles.push((call, events));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (chunk, socks) in sides.into_iter().zip(socks) {
        let (s, r) = (Arc::clone(&stop), Arc::clone(&received));
        threads.push(std::thread::spawn(move || generator(socks, chunk, s, r)));
    }
    // Warm up: latching, jitter buffers filled.
    std::thread::sleep(Duration::from_secs(2));
    let before = engine.worker_stats();
    let ws0: u64 = before.iter().map(|w| w.late_ticks).sum();
    let ticks0: u64 = before.iter().map(|w| w.ticks).sum();
    let out0: u64 = before.iter().map(|w| w.datagrams_out).sum();
    let in0: u64 = before.iter().map(|w| w.datagrams_in).sum();
    let cpu0 = engine.workers_cpu_time().unwrap_or_default();
    let rx0 = received.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t0.elapsed();
    let cpu1 = engine.workers_cpu_time().unwrap_or_default();
    let rx1 = received.load(Ordering::Relaxed);
    let stats = engine.worker_stats();
    let ws1: u64 = stats.iter().map(|w| w.late_ticks).sum();
    let max_tick_us = stats.iter().map(|w| w.max_tick_us).max().unwrap_or(0);
    let send_errors = stats.iter().map(|w| w.send_errors).sum();
    let ticks1: u64 = stats.iter().map(|w| w.ticks).sum();
    let out1: u64 = stats.iter().map(|w| w.datagrams_out).sum();
    let in1: u64 = stats.iter().map(|w| w.datagrams_in).sum();
    let w = wall.as_secs_f64();
    eprintln!(
        "  {calls} calls: ticks/s per worker {:.1}, engine in {:.0} pps, out {:.0} pps, generator got {:.0} pps",
        (ticks1 - ticks0) as f64 / w / workers as f64,
        (in1 - in0) as f64 / w,
        (out1 - out0) as f64 / w,
        (rx1 - rx0) as f64 / w
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // Input loss from the legs' own RTP statistics (last quality report).
    let (mut expected, mut lost, mut concealed) = (0i64, 0i64, 0u64);
    for (_, events) in &mut handles {
        let mut last = std::collections::HashMap::new();
        while let Ok(ev) = events.try_recv() {
            if let Event::Quality { leg, stats } = ev {
                last.insert(leg, stats);
            }
        }
        for q in last.values() {
            expected += q.packets_expected as i64;
            lost += q.cumulative_lost.max(0);
            concealed += q.jitter_buffer.concealed;
        }
    }
    let cpu = (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64() * 100.0;
    // Every leg sends 50 packets/s whatever it receives.
    let expected_out = (2 * calls) as f64 * 50.0 * wall.as_secs_f64();
    Outcome {
        cpu_pct_per_call: cpu / calls as f64,
        cpu_pct_total: cpu,
        loss_in: lost as f64 / expected.max(1) as f64,
        loss_out: (1.0 - (rx1 - rx0) as f64 / expected_out).max(0.0),
        late_ticks: ws1 - ws0,
        max_tick_us,
        concealed,
        send_errors,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs us with no
    // such flag: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("PARLEY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1 } else { 10 });
    let workers: usize = std::env::var("PARLEY_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let (g711, trans) = if quick {
        (vec![10], vec![10])
    } else {
        (
            env_list("PARLEY_BENCH_CALLS", "100,500,1000"),
            env_list("PARLEY_BENCH_TRANSCODE_CALLS", "100,500"),
        )
    };
    // PARLEY_BENCH_RX_BATCH_MS: 0 = wake per packet; default 5.
    let batch_ms: u64 = std::env::var("PARLEY_BENCH_RX_BATCH_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let batch = (batch_ms > 0).then(|| Duration::from_millis(batch_ms));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "parley-media system bench: {workers} workers, {cores} CPUs, {secs} s measured per run, engine rate 8 kHz, 20 ms ptime, rx batch {batch:?}"
    );
    println!(
        "{:<22} {:>6} {:>12} {:>10} {:>9} {:>9} {:>6} {:>9} {:>9} {:>8}",
        "scenario",
        "calls",
        "%core/call",
        "%core",
        "loss_in",
        "loss_out",
        "late",
        "max_tick",
        "concealed",
        "send_err"
    );
    for (transcode, list) in [(false, g711), (true, trans)] {
        for calls in list {
            let o = run(calls, transcode, secs, workers, batch);
            println!(
                "{:<22} {:>6} {:>12.4} {:>10.1} {:>8.3}% {:>8.3}% {:>6} {:>7}us {:>9} {:>8}",
                if transcode {
                    "pcmu<->opus bridged"
                } else {
                    "pcmu<->pcmu bridged"
                },
                calls,
                o.cpu_pct_per_call,
                o.cpu_pct_total,
                o.loss_in * 100.0,
                o.loss_out * 100.0,
                o.late_ticks,
                o.max_tick_us,
                o.concealed,
                o.send_errors
            );
        }
    }
}
