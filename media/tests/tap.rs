#![allow(clippy::unwrap_used)]
//! Media taps over real UDP: a leg's decoded inbound audio arrives on the tap channel one
//! 20 ms frame per tick, paused spans are marked, and a consumer that does not read
//! costs the media path nothing but counted drops (the echo goes on).

mod common;

use std::time::{Duration, Instant};

use common::*;
use parley_media::{Codec, LegConfig, tap_channel};
use parley_media_core::g711::Law;

fn encode(pcm: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; pcm.len()];
    Law::Ulaw.encode(pcm, &mut out).unwrap();
    out
}

#[test]
fn tap_delivers_inbound_audio_marks_pauses_and_counts_overflow() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    // A tiny channel nobody reads during the second half: it must overflow, counted.
    let (ch, rx) = tap_channel(64);
    call.tap(leg.id, ch.sender(42)).unwrap();
    let frame = encode(&tone(440.0, 8000, 8000.0, 20)[0]);
    let mut got = Vec::new();
    let mut frames = Vec::new();
    paced(50, |i| {
        if i == 25 {
            call.pause_tap(leg.id, true).unwrap();
        }
        peer.send_rtp(leg.local_rtp, 0, &frame, 160);
        peer.drain(&mut got);
        while let Ok(f) = rx.try_recv() {
            frames.push(f);
        }
    });
    assert!(frames.len() >= 30, "{} frames", frames.len());
    assert!(
        frames
            .iter()
            .all(|f| f.stream == 42 && f.rate == 8000 && f.len == 160)
    );
    let loud = frames
        .iter()
        .filter(|f| !f.paused && f.pcm().iter().any(|s| s.unsigned_abs() > 2000))
        .count();
    assert!(loud >= 10, "{loud} loud frames");
    let paused: Vec<_> = frames.iter().filter(|f| f.paused).collect();
    assert!(!paused.is_empty());
    assert!(paused.iter().all(|f| f.pcm().iter().all(|&s| s == 0)));
    // Stop reading: ~3 s of ticks into a 64-frame channel.
    call.pause_tap(leg.id, false).unwrap();
    let echoed_before = payloads(&got, 0).len();
    paced(150, |_| {
        peer.send_rtp(leg.local_rtp, 0, &frame, 160);
        peer.drain(&mut got);
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && engine
            .worker_stats()
            .iter()
            .map(|w| w.tap_dropped)
            .sum::<u64>()
            == 0
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dropped: u64 = engine.worker_stats().iter().map(|w| w.tap_dropped).sum();
    assert!(dropped > 0, "overflow is counted");
    // The media path carried on: the echo kept flowing while the tap overflowed.
    assert!(
        payloads(&got, 0).len() >= echoed_before + 100,
        "echo went on"
    );
    // Untapped: no more frames.
    call.untap(leg.id).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    while rx.try_recv().is_ok() {}
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.try_recv().is_err());
    // Both counts agree once the tap is gone (while it overflowed, the worker kept
    // dropping between two reads: comparing them then raced).
    let dropped: u64 = engine.worker_stats().iter().map(|w| w.tap_dropped).sum();
    assert_eq!(ch.dropped(), dropped);
}
