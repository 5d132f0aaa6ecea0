//! WebRTC leg benchmark: the server's per-leg cost of a browser agent's call, measured
//! with synthetic clients (a second `webrtc` peer per leg, in this process on its own
//! tokio runtime). Each leg is what a bridged browser call costs the server: ICE +
//! DTLS-SRTP ([`WebRtcPeer`], on the "server" runtime) relayed to an Opus engine leg,
//! bridged in a room with a G.711 (PCMU) leg whose far end is a plain RTP sender
//! (the SIP caller); the engine transcodes Opus ↔ G.711 both ways at 8 kHz. Both ends
//! send 50 packets/s.
//!
//! Reports the CPU of the server side only — the engine's workers and the server
//! runtime's threads (from /proc/self/task/<tid>/stat) — as % of one core per leg, and
//! what arrived at both ends per leg per second.
//!
//! `PARLEY_BENCH_WEBRTC_LEGS` (default "50,200"), `PARLEY_BENCH_SECS` (default 10),
//! `PARLEY_BENCH_WORKERS` (engine workers, default 2), `PARLEY_BENCH_SERVER_THREADS`
//! (server runtime threads, default 2).
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parley_media::webrtc::client::Client;
use parley_media::webrtc::{OfferInfo, WebRtcConfig, WebRtcPeer};
use parley_media::{CallHandle, Codec, Engine, EngineConfig, LegConfig, RoomMode};

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system) of this process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.trim_end().starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            total += ut + st;
        }
    }
    Duration::from_secs_f64(total as f64 / tick)
}

fn opus_frames() -> Arc<Vec<Vec<u8>>> {
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut out = Vec::new();
    for n in 0..50 {
        let pcm: Vec<i16> = (0..960)
            .map(|i| {
                let x = (n * 960 + i) as f32 / 48000.0;
                ((x * 300.0 * std::f32::consts::TAU).sin() * 6000.0) as i16
            })
            .collect();
        let mut buf = vec![0u8; 400];
        let len = enc.encode(&pcm, &mut buf).unwrap();
        buf.truncate(len);
        out.push(buf);
    }
    Arc::new(out)
}

fn pcmu_frame() -> Vec<u8> {
    (0..160)
        .map(|i| {
            let s = (5000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / 8000.0).sin()) as i32;
            // µ-law (G.711) of a 400 Hz tone.
            let sign = if s < 0 { 0x80 } else { 0 };
            let mut x = s.unsigned_abs().min(32635) + 0x84;
            let mut exp = 7;
            let mut m = 0x4000;
            while x & m == 0 && exp > 0 {
                exp -= 1;
                m >>= 1;
            }
            x = (x >> (exp + 3)) & 0x0f;
            !(sign | (exp << 4) | x) as u8
        })
        .collect()
}

struct Leg {
    _call: CallHandle,
    peer: WebRtcPeer,
    client: Client,
    g711_remote: SocketAddr,
}

async fn setup(engine: &Engine, cfg: &WebRtcConfig, srv: &tokio::runtime::Handle) -> Leg {
    let mut client = Client::offer(cfg).await.unwrap();
    let offer = client.offer_sdp().to_owned();
    let info = OfferInfo::parse(&offer).unwrap();
    let (call, _events) = engine.create_call().unwrap();
    let web = call.create_leg(info.leg_config()).unwrap();
    let g711 = call
        .create_leg(LegConfig {
            inactivity_timeout: None,
            ..LegConfig::g711(Codec::Pcmu)
        })
        .unwrap();
    let cfg2 = cfg.clone();
    // The server's peer lives on the server runtime (its tasks are spawned there).
    let peer = srv
        .spawn(async move {
            WebRtcPeer::answer(&cfg2, &offer, Some(web.local_rtp))
                .await
                .unwrap()
        })
        .await
        .unwrap();
    call.set_remote(web.id, peer.relay_addr()).unwrap();
    let room = call.create_room().unwrap();
    call.join(room, web.id, RoomMode::Full).unwrap();
    call.join(room, g711.id, RoomMode::Full).unwrap();
    client.accept(peer.answer_sdp()).await.unwrap();
    assert!(
        client.connected(Duration::from_secs(30)).await,
        "not connected"
    );
    Leg {
        _call: call,
        peer,
        client,
        g711_remote: g711.local_rtp,
    }
}

fn main() {
    let legs_list = env_list("PARLEY_BENCH_WEBRTC_LEGS", "50,200");
    let secs = env_num("PARLEY_BENCH_SECS", 10);
    let workers = env_num("PARLEY_BENCH_WORKERS", 2) as usize;
    let srv_threads = env_num("PARLEY_BENCH_SERVER_THREADS", 2) as usize;
    let srv = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(srv_threads)
        .thread_name("srv-rt")
        .enable_all()
        .build()
        .unwrap();
    let cli = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cli-rt")
        .enable_all()
        .build()
        .unwrap();
    let frames = opus_frames();
    let pcmu = Arc::new(pcmu_frame());
    println!(
        "webrtc legs: engine workers {workers}, server runtime threads {srv_threads}, {secs} s measured"
    );
    for legs in legs_list {
        let engine = Engine::start(EngineConfig {
            workers,
            port_min: 42000,
            port_max: 45999,
            ..EngineConfig::default()
        })
        .unwrap();
        let cfg = WebRtcConfig::default();
        let srv_handle = srv.handle().clone();
        let t0 = Instant::now();
        let set: Vec<Leg> = cli.block_on(async {
            let mut v = Vec::with_capacity(legs);
            for _ in 0..legs {
                v.push(setup(&engine, &cfg, &srv_handle).await);
            }
            v
        });
        let setup_s = t0.elapsed().as_secs_f64();
        // Traffic: each leg's client sends Opus, its SIP side sends PCMU, 50 pps each.
        let g711_rx = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let set = Arc::new(set);
        let mut tasks = Vec::new();
        for i in 0..legs {
            let set = set.clone();
            let frames = frames.clone();
            let pcmu = pcmu.clone();
            let g711_rx = g711_rx.clone();
            let stop = stop.clone();
            tasks.push(cli.spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let leg = &set[i];
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut n: u32 = 0;
                let mut pkt = vec![0u8; 12 + 160];
                let mut buf = vec![0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let f = &frames[n as usize % frames.len()];
                    let _ = leg
                        .client
                        .send(111, n as u16, n.wrapping_mul(960), n == 0, f)
                        .await;
                    pkt[0] = 0x80;
                    pkt[1] = 0;
                    pkt[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                    pkt[4..8].copy_from_slice(&n.wrapping_mul(160).to_be_bytes());
                    pkt[8..12].copy_from_slice(&(0x5000_0000u32 + i as u32).to_be_bytes());
                    pkt[12..].copy_from_slice(&pcmu);
                    let _ = sock.send_to(&pkt, leg.g711_remote).await;
                    while let Ok((_, _)) = sock.try_recv_from(&mut buf) {
                        g711_rx.fetch_add(1, Ordering::Relaxed);
                    }
                    n = n.wrapping_add(1);
                }
            }));
        }
        std::thread::sleep(Duration::from_secs(3)); // warm-up: latching, jitter buffers
        let rx0: u64 = set
            .iter()
            .map(|l| l.client.received.packets.load(Ordering::Relaxed))
            .sum();
        let g0 = g711_rx.load(Ordering::Relaxed);
        let (e0, s0) = (
            engine.workers_cpu_time().unwrap_or_default(),
            threads_cpu("srv-rt"),
        );
        let w0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let wall = w0.elapsed().as_secs_f64();
        let (e1, s1) = (
            engine.workers_cpu_time().unwrap_or_default(),
            threads_cpu("srv-rt"),
        );
        let rx1: u64 = set
            .iter()
            .map(|l| l.client.received.packets.load(Ordering::Relaxed))
            .sum();
        let g1 = g711_rx.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        cli.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        let eng = (e1 - e0).as_secs_f64();
        let webrtc = (s1 - s0).as_secs_f64();
        let per_leg = |c: f64| 100.0 * c / wall / legs as f64;
        let dropped: u64 = set
            .iter()
            .map(|l| {
                let (_, _, a, b) = l.peer.stats().snapshot();
                a + b
            })
            .sum();
        println!(
            "{legs:>4} legs: setup {setup_s:.1} s; server CPU per leg {:.2} % of a core \
             (engine {:.2} %, webrtc/relay {:.2} %); per leg per s: browser got {:.1} pkts, \
             SIP side got {:.1} pkts; relay drops {dropped}",
            per_leg(eng + webrtc),
            per_leg(eng),
            per_leg(webrtc),
            (rx1 - rx0) as f64 / wall / legs as f64,
            (g1 - g0) as f64 / wall / legs as f64,
        );
        let set = Arc::try_unwrap(set).ok().unwrap();
        cli.block_on(async {
            for l in set {
                l.client.close().await;
                l.peer.close().await;
            }
        });
        drop(engine);
    }
}
