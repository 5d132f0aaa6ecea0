#![allow(clippy::unwrap_used)]
//! Jitter buffer in virtual time over a simulated network, plus PLC.

use std::time::{Duration, Instant};

use parley_media_core::Error;
use parley_media_core::jitter::{JitterBuffer, JitterConfig, Plc, Pop};

const FRAME: Duration = Duration::from_millis(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Deterministic xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
struct Net {
    base: Duration,
    jitter: Duration,
    loss: f64,
    dup: f64,
    /// Sender clock rate relative to the receiver (1.01 = 1 % fast).
    drift: f64,
    /// Probability of a delay spike of `jitter * 3`.
    spike: f64,
}

#[derive(Default, Debug)]
struct Outcome {
    played: Vec<u32>,
    frame_delays: Vec<Duration>,
    concealed: u64,
    empty_after_start: u64,
    max_buffered: Duration,
    targets: Vec<Duration>,
}

/// Send `packets` packets starting at sequence `seq0` through `net`, pop every
/// 20 ms, and record what came out. Payload carries the packet index.
fn simulate(
    seed: u64,
    packets: u32,
    seq0: u16,
    net: Net,
    cfg: JitterConfig,
) -> (Outcome, JitterBuffer) {
    simulate_phases(seed, packets, seq0, &|_| net, cfg)
}

/// Like `simulate`, with network conditions chosen per packet index.
fn simulate_phases(
    seed: u64,
    packets: u32,
    seq0: u16,
    net_for: &dyn Fn(u32) -> Net,
    cfg: JitterConfig,
) -> (Outcome, JitterBuffer) {
    let t0 = Instant::now();
    let mut rng = Rng(seed);
    let mut arrivals: Vec<(Duration, u32)> = Vec::new();
    let mut sent_at = Vec::new();
    let mut send = Duration::ZERO;
    for i in 0..packets {
        let net = net_for(i);
        if i > 0 {
            send += Duration::from_secs_f64(FRAME.as_secs_f64() / net.drift);
        }
        sent_at.push(send);
        if rng.unit() < net.loss {
            continue;
        }
        let copies = if rng.unit() < net.dup { 2 } else { 1 };
        for _ in 0..copies {
            let mut j = net.jitter.as_secs_f64() * rng.unit();
            if rng.unit() < net.spike {
                j *= 3.0;
            }
            arrivals.push((send + net.base + Duration::from_secs_f64(j), i));
        }
    }
    arrivals.sort_by_key(|a| a.0);
    let mut arrival_of = vec![None; packets as usize];
    let mut jb = JitterBuffer::new(cfg).unwrap();
    let mut out = Outcome::default();
    let mut next = 0;
    let end = sent_at.last().copied().unwrap_or_default() + ms(1000);
    let mut tick = 0u64;
    let mut started = false;
    loop {
        let now = FRAME * tick as u32;
        if now > end {
            break;
        }
        while next < arrivals.len() && arrivals[next].0 <= now {
            let (at, i) = arrivals[next];
            arrival_of[i as usize].get_or_insert(at);
            let seq = seq0.wrapping_add(i as u16);
            jb.insert(t0 + at, seq, i.wrapping_mul(160), &i.to_be_bytes())
                .unwrap();
            next += 1;
        }
        out.max_buffered = out.max_buffered.max(jb.buffered());
        match jb.pop(t0 + now) {
            Pop::Frame(f) => {
                started = true;
                let i = u32::from_be_bytes(f.payload.try_into().unwrap());
                assert_eq!(f.seq, seq0.wrapping_add(i as u16));
                assert_eq!(f.timestamp, i.wrapping_mul(160));
                out.played.push(i);
                out.frame_delays.push(now - arrival_of[i as usize].unwrap());
            }
            Pop::Concealed { .. } => out.concealed += 1,
            Pop::Empty => {
                if started && now < end - ms(900) {
                    out.empty_after_start += 1;
                }
            }
        }
        out.targets.push(jb.target_delay());
        tick += 1;
    }
    (out, jb)
}

fn assert_strictly_increasing(played: &[u32]) {
    for w in played.windows(2) {
        assert!(
            w[0] < w[1],
            "out of order or duplicate: {} then {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn clean_network_plays_everything_in_order_at_min_delay() {
    let net = Net {
        base: ms(30),
        jitter: Duration::ZERO,
        loss: 0.0,
        dup: 0.0,
        drift: 1.0,
        spike: 0.0,
    };
    let cfg = JitterConfig::default();
    let (out, jb) = simulate(1, 500, 1000, net, cfg);
    assert_eq!(out.played, (0..500).collect::<Vec<_>>());
    // Only the tail after the last packet is concealed (then Empty).
    assert_eq!(out.concealed, u64::from(cfg.max_concealed));
    assert_eq!(jb.target_delay(), cfg.min_delay);
    assert!(out.frame_delays.iter().all(|d| *d <= cfg.min_delay + FRAME));
    let s = jb.stats();
    assert_eq!((s.played, s.lost, s.late, s.duplicates), (500, 0, 0, 0));
}

#[test]
fn jittery_lossy_network_with_duplicates_and_reordering() {
    let net = Net {
        base: ms(40),
        jitter: ms(70),
        loss: 0.03,
        dup: 0.02,
        drift: 1.0,
        spike: 0.0,
    };
    let cfg = JitterConfig::default();
    for seed in [7, 8, 9] {
        let n = 3000; // 60 s
        let (out, jb) = simulate(seed, n, 40000, net, cfg);
        assert_strictly_increasing(&out.played);
        let s = jb.stats();
        // Duplicates were seen and dropped, never played.
        assert!(s.duplicates > 20, "{s:?}");
        // ~3 % loss, plus a little late loss while the target adapts.
        let missing = n as usize - out.played.len();
        assert!((60..=200).contains(&missing), "missing {missing} {s:?}");
        assert!(s.late <= 40, "late {s:?}");
        // Every frame given up is concealed; the counts agree.
        assert_eq!(s.concealed, out.concealed);
        assert!(s.lost as usize <= missing + 5);
        // Target adapted above the minimum to cover the 70 ms spread, within max.
        let last = *out.targets.last().unwrap();
        assert!(last >= ms(60) && last <= cfg.max_delay, "target {last:?}");
        // Delay is bounded by the configured maximum plus one frame.
        let worst = out.frame_delays.iter().max().unwrap();
        assert!(*worst <= cfg.max_delay + FRAME, "worst {worst:?}");
        assert_eq!(out.empty_after_start, 0);
    }
}

#[test]
fn target_grows_with_jitter_and_stays_within_bounds() {
    let cfg = JitterConfig {
        max_delay: ms(200),
        ..JitterConfig::default()
    };
    let calm = Net {
        base: ms(20),
        jitter: ms(5),
        loss: 0.0,
        dup: 0.0,
        drift: 1.0,
        spike: 0.0,
    };
    let (out, _) = simulate(3, 1000, 0, calm, cfg);
    let t = *out.targets.last().unwrap();
    assert!(t <= ms(60), "calm target {t:?}");
    let stormy = Net {
        jitter: ms(100),
        spike: 0.05,
        ..calm
    };
    let (out, _) = simulate(4, 1000, 0, stormy, cfg);
    assert!(
        out.targets
            .iter()
            .all(|t| *t >= cfg.min_delay && *t <= cfg.max_delay)
    );
    assert_eq!(*out.targets.last().unwrap(), cfg.max_delay);
    assert_strictly_increasing(&out.played);
}

#[test]
fn target_and_delay_come_back_down_after_a_jitter_storm() {
    let calm = Net {
        base: ms(30),
        jitter: ms(5),
        loss: 0.0,
        dup: 0.0,
        drift: 1.0,
        spike: 0.0,
    };
    let storm = Net {
        jitter: ms(150),
        ..calm
    };
    // 10 s calm, 20 s storm, 60 s calm.
    let phase = |i: u32| {
        if (500..1500).contains(&i) {
            storm
        } else {
            calm
        }
    };
    let cfg = JitterConfig::default();
    let (out, jb) = simulate_phases(21, 4500, 7, &phase, cfg);
    assert_strictly_increasing(&out.played);
    let at = |sec: usize| out.targets[sec * 50];
    assert!(at(9) <= ms(60), "before storm {:?}", at(9));
    assert!(at(29) >= ms(160), "in storm {:?}", at(29));
    assert!(at(89) <= ms(60), "long after storm {:?}", at(89));
    // The excess delay was dropped again, not kept forever.
    let tail = &out.frame_delays[out.frame_delays.len() - 500..];
    let worst_tail = tail.iter().max().unwrap();
    assert!(*worst_tail <= ms(100), "tail delay {worst_tail:?}");
    assert!(jb.stats().dropped > 0);
}

#[test]
fn fast_sender_clock_drift_stays_bounded() {
    // Sender 1 % fast for 5 minutes: 150 frames too many would pile up.
    let net = Net {
        base: ms(30),
        jitter: ms(20),
        loss: 0.0,
        dup: 0.0,
        drift: 1.01,
        spike: 0.0,
    };
    let cfg = JitterConfig::default();
    let (out, jb) = simulate(5, 15000, 100, net, cfg);
    assert_strictly_increasing(&out.played);
    let s = jb.stats();
    assert!(s.dropped >= 100, "{s:?}");
    assert!(
        out.max_buffered <= ms(160),
        "max buffered {:?}",
        out.max_buffered
    );
    let worst = out.frame_delays.iter().max().unwrap();
    assert!(*worst <= ms(160), "worst {worst:?}");
}

#[test]
fn slow_sender_clock_drift_conceals_without_drifting_away() {
    let net = Net {
        base: ms(30),
        jitter: ms(20),
        loss: 0.0,
        dup: 0.0,
        drift: 0.99,
        spike: 0.0,
    };
    let cfg = JitterConfig::default();
    let n = 15000;
    let (out, jb) = simulate(6, n, 100, net, cfg);
    assert_strictly_increasing(&out.played);
    let s = jb.stats();
    // About 1 % of frames have to be invented; none is lost for good.
    assert!(s.concealed >= 100 && s.concealed <= 400, "{s:?}");
    assert!(out.played.len() as u32 >= n - 10);
    assert!(out.max_buffered <= ms(160));
}

#[test]
fn sequence_wrap_is_seamless() {
    let net = Net {
        base: ms(30),
        jitter: ms(30),
        loss: 0.0,
        dup: 0.01,
        drift: 1.0,
        spike: 0.0,
    };
    let (out, jb) = simulate(11, 400, 65_400, net, JitterConfig::default());
    assert_strictly_increasing(&out.played);
    assert!(out.played.len() >= 395);
    assert_eq!(jb.stats().resyncs, 0);
}

#[test]
fn hand_made_duplicates_late_and_loss() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let p = |i: u8| [i; 4];
    jb.insert(t0, 10, 0, &p(10)).unwrap();
    jb.insert(t0, 10, 0, &p(10)).unwrap(); // duplicate
    jb.insert(t0 + ms(1), 12, 320, &p(12)).unwrap(); // 11 missing
    jb.insert(t0 + ms(2), 9, 65376u32.wrapping_mul(0), &p(9))
        .unwrap(); // reordered before start
    let t = t0 + ms(40);
    assert!(matches!(jb.pop(t), Pop::Frame(f) if f.seq == 9));
    assert!(matches!(jb.pop(t + ms(20)), Pop::Frame(f) if f.seq == 10));
    assert_eq!(
        jb.pop(t + ms(40)),
        Pop::Concealed {
            seq: Some(11),
            consecutive: 1
        }
    );
    jb.insert(t + ms(45), 11, 160, &p(11)).unwrap(); // too late now
    assert!(matches!(jb.pop(t + ms(60)), Pop::Frame(f) if f.seq == 12 && f.payload == [12; 4]));
    // Underrun: conceal while waiting, without skipping 13.
    assert_eq!(
        jb.pop(t + ms(80)),
        Pop::Concealed {
            seq: None,
            consecutive: 1
        }
    );
    jb.insert(t + ms(90), 13, 480, &p(13)).unwrap();
    assert!(matches!(jb.pop(t + ms(100)), Pop::Frame(f) if f.seq == 13));
    let s = jb.stats();
    assert_eq!(
        (s.duplicates, s.late, s.lost, s.concealed, s.played),
        (1, 1, 1, 2, 4)
    );
}

#[test]
fn long_gap_goes_empty_then_rebuffers() {
    let t0 = Instant::now();
    let cfg = JitterConfig::default();
    let mut jb = JitterBuffer::new(cfg).unwrap();
    for i in 0..5u16 {
        jb.insert(t0 + FRAME * u32::from(i), i, u32::from(i) * 160, &[0; 160])
            .unwrap();
    }
    let mut t = t0 + cfg.min_delay;
    let mut kinds = String::new();
    for _ in 0..20 {
        kinds.push(match jb.pop(t) {
            Pop::Frame(_) => 'F',
            Pop::Concealed { .. } => 'C',
            Pop::Empty => '.',
        });
        t += FRAME;
    }
    // 5 frames, 10 concealed (max_concealed), then empty.
    assert_eq!(kinds, "FFFFFCCCCCCCCCC.....");
    // The talker comes back after the gap (sequence continues at 100).
    for i in 0..5u16 {
        jb.insert(t + FRAME * u32::from(i), 100 + i, 0, &[1; 160])
            .unwrap();
    }
    assert_eq!(jb.pop(t), Pop::Empty); // buffering again
    let resume = t + jb.target_delay();
    assert!(matches!(jb.pop(resume), Pop::Frame(f) if f.seq == 100));
}

#[test]
fn far_jump_resynchronises() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    jb.insert(t0, 1, 0, &[0]).unwrap();
    assert!(matches!(jb.pop(t0 + ms(40)), Pop::Frame(_)));
    jb.insert(t0 + ms(50), 30_000, 0, &[7]).unwrap();
    assert_eq!(jb.stats().resyncs, 1);
    assert_eq!(jb.pop(t0 + ms(60)), Pop::Empty);
    assert!(matches!(jb.pop(t0 + ms(100)), Pop::Frame(f) if f.seq == 30_000));
}

#[test]
fn errors() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    assert_eq!(
        jb.insert(Instant::now(), 0, 0, &[0; 400]),
        Err(Error::PayloadTooLarge { len: 400, max: 320 })
    );
    assert!(matches!(
        JitterBuffer::new(JitterConfig {
            capacity: 2,
            ..JitterConfig::default()
        }),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        JitterBuffer::new(JitterConfig {
            min_delay: ms(500),
            ..JitterConfig::default()
        }),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn plc_repeats_with_fading_then_silence() {
    let mut plc = Plc::new(160, 5);
    let mut out = [0i16; 160];
    // Before any good frame: silence.
    plc.conceal(&mut out);
    assert!(out.iter().all(|&s| s == 0));
    plc.good_frame(&[1000; 160]);
    let mut peaks = Vec::new();
    for _ in 0..7 {
        plc.conceal(&mut out);
        peaks.push(out[0]);
        assert!(out.windows(2).all(|w| w[1] <= w[0]), "ramp is monotone");
    }
    assert_eq!(peaks, vec![1000, 800, 600, 400, 200, 0, 0]);
    assert_eq!(plc.concealed_run(), 7);
    plc.good_frame(&[500; 160]);
    plc.conceal(&mut out);
    assert_eq!(out[0], 500);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random arrivals (reordered, duplicated, far jumps) and pops: never a
        /// panic, never a frame played twice or out of order between resyncs.
        #[test]
        fn random_traffic_keeps_order(ops in proptest::collection::vec((any::<bool>(), 0u16..120, 0u64..40), 0..400)) {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
            let mut t = t0;
            let mut base: u32 = 65_480;
            let mut last: Option<u32> = None;
            let mut resyncs = 0;
            for (is_pop, off, dt) in ops {
                t += ms(dt);
                if is_pop {
                    let r = jb.stats().resyncs;
                    if r != resyncs {
                        resyncs = r;
                        last = None;
                    }
                    if let Pop::Frame(f) = jb.pop(t) {
                        // Payload carries an unwrapped index.
                        let idx = u32::from_be_bytes(f.payload.try_into().unwrap());
                        if let Some(prev) = last {
                            prop_assert!(idx > prev, "{} after {}", idx, prev);
                        }
                        last = Some(idx);
                    }
                } else {
                    let idx = base + u32::from(off);
                    let seq = (idx % 65_536) as u16;
                    jb.insert(t, seq, idx.wrapping_mul(160), &idx.to_be_bytes()).unwrap();
                    if off > 100 {
                        base += 1;
                    }
                }
            }
            let s = jb.stats();
            prop_assert!(s.played <= s.inserted);
        }
    }
}

#[test]
fn reset_on_new_source_starts_over() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    for i in 0..10u16 {
        jb.insert(
            t0 + FRAME * u32::from(i),
            5000 + i,
            u32::from(i) * 160,
            &[1],
        )
        .unwrap();
    }
    assert!(matches!(jb.pop(t0 + ms(200)), Pop::Frame(f) if f.seq == 5000));
    jb.reset();
    assert_eq!(jb.pop(t0 + ms(220)), Pop::Empty);
    // A new source with lower sequence numbers is not "late".
    jb.insert(t0 + ms(230), 17, 999, &[2]).unwrap();
    assert_eq!(jb.stats().late, 0);
    assert!(matches!(jb.pop(t0 + ms(230) + jb.target_delay()), Pop::Frame(f) if f.seq == 17));
}

#[test]
fn peek_next_after_loss_shows_the_following_packet_for_fec() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    // Sequence 10, 11 lost, 12 and 13 arrive.
    jb.insert(t0, 10, 1600, &[1; 160]).unwrap();
    jb.insert(t0 + FRAME * 2, 12, 1920, &[3; 160]).unwrap();
    jb.insert(t0 + FRAME * 3, 13, 2080, &[4; 160]).unwrap();
    assert_eq!(jb.peek_next(), None, "nothing to peek before playout");
    let mut now = t0 + jb.target_delay();
    assert!(matches!(jb.pop(now), Pop::Frame(f) if f.seq == 10));
    now += FRAME;
    assert!(matches!(jb.pop(now), Pop::Concealed { seq: Some(11), .. }));
    assert_eq!(jb.peek_next(), Some(&[3u8; 160][..]));
    now += FRAME;
    assert!(matches!(jb.pop(now), Pop::Frame(f) if f.seq == 12));
    assert_eq!(jb.peek_next(), Some(&[4u8; 160][..]));
}
