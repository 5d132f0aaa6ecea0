//! Speech benchmarks (figures printed, recorded in BENCHMARKS.md):
//!
//! * real-time factor of whisper on 1, 3 and 10 s utterances, with whisper's 30 s
//!   window and with the fitted encoder context;
//! * word error rate on the committed espeak-ng sentences (8 kHz call audio);
//! * concurrent live streams fed in real time: end of utterance → transcript
//!   latency p50/p95 and degradation counters.
//!
//! `cargo bench -p parley-speech --bench speech [-- rtf|wer|live]`; the model comes
//! from `PARLEY_SPEECH_MODEL` or `../shared/models/ggml-tiny.en.bin`.
//! `SPEECH_WORKERS`, `SPEECH_THREADS`, `SPEECH_STREAMS` (e.g. `1,4,10`) tune it.

#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use parley_speech::{Priority, Speaker, SpeechConfig, SpeechEngine, SpeechEvent};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The decoding options from the environment: `SPEECH_LANG` (e.g. `en`; unset:
/// detected), `SPEECH_BEAM` (beam width; 1 greedy), `SPEECH_FALLBACK=0|1` (temperature
/// fallback; default off), `SPEECH_MIN_CTX` (floor of the fitted context), `SPEECH_PROMPT`.
fn decoding() -> parley_speech::Decoding {
    let d = parley_speech::Decoding::default();
    parley_speech::Decoding {
        language: std::env::var("SPEECH_LANG").ok().filter(|l| !l.is_empty()),
        beam_size: env_usize("SPEECH_BEAM", d.beam_size as usize) as u32,
        temperature_fallback: std::env::var("SPEECH_FALLBACK")
            .map(|v| v == "1")
            .unwrap_or(d.temperature_fallback),
        min_audio_ctx: env_usize("SPEECH_MIN_CTX", d.min_audio_ctx as usize) as i32,
        prompt: std::env::var("SPEECH_PROMPT")
            .ok()
            .filter(|p| !p.is_empty()),
    }
}

fn rtf(model: &std::path::Path, threads: usize) {
    let m = parley_speech::Model::load(model).expect("model");
    let mut t = m.transcriber(threads).expect("state");
    t.set_decoding(decoding());
    let mut speech = Vec::new();
    for s in common::sentences().iter().take(6) {
        speech.extend(common::speak_8k(s));
    }
    let audio16 = parley_speech::resample::clip_to_16k(&speech, 8000).expect("resample");
    println!("## real-time factor (threads per run: {threads})");
    println!("| utterance | audio_ctx | mean time | RTF |");
    println!("|---|---|---|---|");
    for secs in [1usize, 3, 10] {
        let clip = &audio16[..(secs * 16_000).min(audio16.len())];
        for fit in [false, true] {
            let _ = t.transcribe(clip, fit); // warm-up
            let runs = if secs == 10 { 2 } else { 3 };
            let start = Instant::now();
            for _ in 0..runs {
                let _ = t.transcribe(clip, fit).expect("transcribe");
            }
            let mean = start.elapsed() / runs as u32;
            let ctx = if fit {
                parley_speech::fitted_audio_ctx(
                    clip.len().max(parley_speech::whisper::MIN_CLIP_SAMPLES),
                    parley_speech::whisper::MIN_AUDIO_CTX,
                )
                .to_string()
            } else {
                "1500 (30 s)".into()
            };
            println!(
                "| {secs} s | {ctx} | {:.0} ms | {:.3} |",
                mean.as_secs_f64() * 1000.0,
                mean.as_secs_f64() / secs as f64
            );
        }
    }
}

fn wer(model: &std::path::Path, threads: usize) {
    let m = parley_speech::Model::load(model).expect("model");
    let mut t = m.transcriber(threads).expect("state");
    let d = decoding();
    let floor = d.min_audio_ctx;
    println!("decoding: {d:?}");
    t.set_decoding(d);
    let sentences = common::sentences();
    let rate: u32 = env_usize("SPEECH_WER_RATE", 8000) as u32;
    println!(
        "## WER on {} espeak-ng sentences, {rate} Hz -> 16 kHz",
        sentences.len()
    );
    // SPEECH_WER_SET=alt: the second set (other espeak-ng voices and speeds, white
    // noise at 20 dB SNR); SPEECH_WER_FIT=1: only the fitted context (the live path).
    let alt = std::env::var("SPEECH_WER_SET").as_deref() == Ok("alt");
    let fits: &[bool] = if env_usize("SPEECH_WER_FIT", 0) == 1 {
        &[true]
    } else {
        &[false, true]
    };
    if alt {
        println!("(second set: voices and speeds per sentence, white noise at 20 dB SNR)");
    }
    for &fit in fits {
        let (mut errs, mut words) = (0, 0);
        let mut worst = Vec::new();
        let started = Instant::now();
        for (i, s) in sentences.iter().enumerate() {
            let pad = vec![0i16; rate as usize * 3 / 10];
            let mut pcm = pad.clone();
            if alt {
                let (voice, wpm) = common::alt_voice(i);
                pcm.extend(common::speak_voice(s, rate, voice, wpm));
            } else {
                pcm.extend(common::speak(s, rate));
            }
            pcm.extend(&pad);
            if alt {
                common::add_noise(&mut pcm, 20.0, i as u64);
            }
            let a = parley_speech::resample::clip_to_16k(&pcm, rate).expect("resample");
            let hyp = t.transcribe(&a, fit).expect("transcribe");
            let (e, n) = common::wer(s, &hyp);
            errs += e;
            words += n;
            if e > 0 {
                worst.push(format!("    {s:?} -> {hyp:?}"));
            }
        }
        println!(
            "fit_audio_ctx={fit} (floor {floor}): WER {:.1}% ({errs}/{words} words), {:.0} ms per sentence",
            100.0 * errs as f64 / words as f64,
            started.elapsed().as_secs_f64() * 1000.0 / sentences.len() as f64
        );
        for w in worst {
            println!("{w}");
        }
    }
}

fn live(model: &std::path::Path, workers: usize, threads: usize) {
    let streams: Vec<usize> = std::env::var("SPEECH_STREAMS")
        .unwrap_or_else(|_| "1,2,4,6,10".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let sentences = common::sentences();
    let clips: Vec<Vec<i16>> = sentences
        .iter()
        .take(8)
        .map(|s| common::speak_8k(s))
        .collect();
    println!(
        "## live streams in real time (workers {workers} x {threads} threads), {:?}",
        decoding()
    );
    println!("| streams | utterances | live | merged | deferred | p50 | p95 | busy/audio |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in streams {
        let mut cfg = SpeechConfig::new(model);
        cfg.workers = workers;
        cfg.threads_per_worker = threads;
        cfg.queue = env_usize("SPEECH_QUEUE", 8);
        cfg.decoding = decoding();
        let engine = SpeechEngine::start(cfg).expect("engine");
        // Each stream: 4 utterances with 1.5 s pauses, streams offset by 300 ms.
        let mut per = Vec::new();
        for i in 0..n {
            let mut pcm = vec![0i16; 8 * (500 + 300 * (i % 5))];
            for k in 0..4 {
                pcm.extend(&clips[(i + k) % clips.len()]);
                pcm.extend(vec![0i16; 8 * 1500]);
            }
            per.push(pcm);
        }
        let epoch = Instant::now();
        let mut taps = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..n {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            taps.push(
                engine
                    .open_stream(Speaker::Caller, Priority::Normal, epoch, 8000, tx)
                    .expect("stream"),
            );
            rxs.push(rx);
        }
        let frames = per.iter().map(|p| p.len() / 160).max().unwrap_or(0);
        for f in 0..frames {
            let at = epoch + Duration::from_millis(f as u64 * 20);
            if let Some(d) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            for (tap, pcm) in taps.iter().zip(&per) {
                let c = pcm.get(f * 160..(f + 1) * 160).unwrap_or(&[0; 160]);
                tap.sender.send(at, 8000, c, false);
            }
        }
        // Let the live queue drain before closing (post-call work is not latency).
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let m = engine.metrics();
            if m.live_queue == 0 && m.live_segments + m.merged + m.deferred >= m.utterances {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(2));
        let m = engine.metrics();
        for tap in &taps {
            engine.close_stream(tap.id);
        }
        for mut rx in rxs {
            while let Some(ev) = rx.blocking_recv() {
                let _ = matches!(ev, SpeechEvent::Segment(_));
            }
        }
        println!(
            "| {n} | {} | {} | {} | {} | {} ms | {} ms | {:.2} |",
            m.utterances,
            m.live_segments,
            m.merged,
            m.deferred,
            m.latency_p50_ms,
            m.latency_p95_ms,
            m.busy_ms as f64 / m.audio_ms.max(1) as f64
        );
    }
}

fn main() {
    let Some(model) = common::model() else { return };
    let workers = env_usize("SPEECH_WORKERS", 1);
    let threads = env_usize("SPEECH_THREADS", 2);
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = which.is_empty();
    let want = |w: &str| all || which.iter().any(|a| a == w);
    println!(
        "speech bench: {} cores, model {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        model.display()
    );
    if want("rtf") {
        rtf(&model, threads);
    }
    if want("wer") {
        wer(&model, threads);
    }
    if want("live") {
        live(&model, workers, threads);
    }
}
