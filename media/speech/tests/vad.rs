//! Our energy VAD measured against `webrtc-vad` 0.4 (the WebRTC GMM detector) on
//! espeak-ng speech at 8 kHz with pauses: frame-by-frame agreement, printed and bounded
//! (figures in BENCHMARKS.md).

mod common;

use parley_speech::vad::{EnergyVad, VadConfig};
use webrtc_vad::{SampleRate, Vad, VadMode};

#[test]
fn energy_vad_agrees_with_webrtc_vad_on_speech_and_pauses() {
    let mut pcm = vec![0i16; 8000];
    let mut seed = 0x5eed_u64;
    for s in common::sentences().iter().take(6) {
        pcm.extend(common::speak_8k(s));
        // Quiet white noise (about -55 dBFS) in the pauses, not digital silence.
        pcm.extend((0..8000).map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 121) as i16 - 60
        }));
    }
    let mut ours = EnergyVad::new(VadConfig::default());
    let mut theirs = Vad::new_with_rate_and_mode(SampleRate::Rate8kHz, VadMode::Aggressive);
    let (mut both, mut only_ours, mut only_theirs, mut neither) = (0, 0, 0, 0);
    for frame in pcm.chunks_exact(160) {
        let a = ours.is_voice(frame);
        let b = theirs
            .is_voice_segment(frame)
            .expect("160 samples at 8 kHz");
        match (a, b) {
            (true, true) => both += 1,
            (true, false) => only_ours += 1,
            (false, true) => only_theirs += 1,
            (false, false) => neither += 1,
        }
    }
    let total = both + only_ours + only_theirs + neither;
    let agree = (both + neither) as f64 / total as f64;
    println!(
        "frames {total}: both voice {both}, only energy {only_ours}, only webrtc {only_theirs}, \
         both silence {neither}; agreement {:.1} %",
        agree * 100.0
    );
    // Measured 2026-11-22: agreement 65.8 %, and every frame the energy VAD calls voice
    // WebRTC (aggressive) calls voice too; WebRTC also calls voice about a third of the
    // frames the energy VAD calls silence (low-level tails and pauses). The energy VAD
    // is the more conservative one; the segmenter's 200 ms preroll and 500 ms hangover
    // cover onsets and tails.
    assert!(only_ours * 20 <= both, "{only_ours} vs {both}");
    assert!(agree > 0.55, "agreement {agree}");
}
