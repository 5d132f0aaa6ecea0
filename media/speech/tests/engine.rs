//! The speech engine on real speech (espeak-ng) with the real model: utterances from
//! tap frames, PCI pause, voicemail clips, overload degradation.

mod common;

use std::time::{Duration, Instant};

use parley_speech::{
    Degradation, Priority, Segment, Speaker, SpeechConfig, SpeechEngine, SpeechEvent,
};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 8]
}

/// Feeds `pcm` as 20 ms frames timed from `epoch` (faster than real time).
fn feed(
    tap: &parley_speech::StreamTap,
    epoch: Instant,
    pcm: &[i16],
    paused: impl Fn(usize) -> bool,
) {
    for (i, c) in pcm.chunks(160).enumerate() {
        let at = epoch + Duration::from_millis(i as u64 * 20);
        while !tap.sender.send(at, 8000, c, paused(i)) {
            // The test feeds faster than real time; the media path would count and
            // move on, here we wait so that the test is deterministic.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// All events until the stream's channel closes.
fn drain(mut rx: UnboundedReceiver<SpeechEvent>) -> Vec<SpeechEvent> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return out,
        }
    }
    panic!("stream did not close: {out:?}");
}

fn segments(evs: &[SpeechEvent]) -> Vec<Segment> {
    evs.iter()
        .filter_map(|e| match e {
            SpeechEvent::Segment(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn engine(workers: usize, queue: usize) -> Option<SpeechEngine> {
    let model = common::model()?;
    let mut cfg = SpeechConfig::new(model);
    cfg.workers = workers;
    cfg.threads_per_worker = 2;
    cfg.queue = queue;
    Some(SpeechEngine::start(cfg).expect("engine"))
}

#[test]
fn transcribes_utterances_from_tap_frames_with_times() {
    let Some(engine) = engine(1, 8) else { return };
    let mut pcm = silence(1000);
    pcm.extend(common::speak_8k("My internet connection is not working."));
    let second_at = pcm.len() / 8 + 1200;
    pcm.extend(silence(1200));
    pcm.extend(common::speak_8k("What time does the store open tomorrow?"));
    pcm.extend(silence(1000));
    let (tx, rx) = unbounded_channel();
    let epoch = Instant::now();
    let tap = engine
        .open_stream(Speaker::Caller, Priority::Normal, epoch, 8000, tx)
        .expect("stream");
    feed(&tap, epoch, &pcm, |_| false);
    engine.close_stream(tap.id);
    let evs = drain(rx);
    let segs = segments(&evs);
    assert_eq!(segs.len(), 2, "{evs:?}");
    let t0 = segs[0].text.to_lowercase();
    let t1 = segs[1].text.to_lowercase();
    assert!(t0.contains("connection") && t0.contains("working"), "{t0}");
    assert!(t1.contains("store") && t1.contains("tomorrow"), "{t1}");
    assert!(
        segs.iter()
            .all(|s| s.speaker == Speaker::Caller && s.stream == tap.id)
    );
    assert!((700..=1100).contains(&segs[0].start_ms), "{:?}", segs[0]);
    assert!(segs[0].end_ms < segs[1].start_ms);
    assert!(
        segs[1].start_ms.abs_diff(second_at as u64) < 400,
        "{:?} vs {second_at}",
        segs[1]
    );
    let m = engine.metrics();
    assert_eq!(m.utterances, 2);
    assert_eq!(m.live_segments + m.post_call_segments, 2);
    assert_eq!(m.tap_dropped, 0);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SpeechEvent::SpeechStarted { .. }))
    );
    // The stream says when its last segment is out: `Closed` comes last, once.
    assert_eq!(
        evs.last(),
        Some(&SpeechEvent::Closed { stream: tap.id }),
        "{evs:?}"
    );
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, SpeechEvent::Closed { .. }))
            .count(),
        1
    );
}

#[test]
fn paused_span_is_not_transcribed() {
    let Some(engine) = engine(1, 8) else { return };
    let mut pcm = silence(600);
    pcm.extend(common::speak_8k("My card number is four one two three."));
    let paused_until = pcm.len() / 160;
    pcm.extend(silence(800));
    pcm.extend(common::speak_8k("Thank you very much for your help."));
    pcm.extend(silence(800));
    let (tx, rx) = unbounded_channel();
    let epoch = Instant::now();
    let tap = engine
        .open_stream(Speaker::Caller, Priority::Normal, epoch, 8000, tx)
        .expect("stream");
    // The whole first sentence is in a PCI pause (as the media tap marks it).
    feed(&tap, epoch, &pcm, |i| i < paused_until);
    engine.close_stream(tap.id);
    let evs = drain(rx);
    let segs = segments(&evs);
    let all: String = segs.iter().map(|s| s.text.to_lowercase()).collect();
    assert!(!all.contains("card") && !all.contains("four"), "{all}");
    assert!(all.contains("thank you"), "{all}");
}

#[test]
fn voicemail_clip_is_transcribed() {
    let Some(engine) = engine(1, 8) else { return };
    let mut pcm = silence(300);
    pcm.extend(common::speak_8k("I would like to pay my bill."));
    pcm.extend(vec![0; 4000]);
    pcm.extend(common::speak_8k("Thank you very much for your help."));
    let text = engine
        .transcribe_clip(&pcm, 8000)
        .expect("clip")
        .to_lowercase();
    assert!(
        text.contains("bill") && text.contains("thank you"),
        "{text}"
    );
}

#[test]
fn overload_degrades_in_order_and_says_so() {
    // One worker, a live queue of two, eight streams talking at once: utterances are
    // merged, the low-priority streams go post-call, and nothing is lost.
    let Some(model) = common::model() else { return };
    let mut cfg = SpeechConfig::new(model);
    cfg.workers = 1;
    cfg.threads_per_worker = 2;
    cfg.queue = 2;
    // Held (merging) utterances fall due quickly, so the full queue is seen.
    cfg.merge_wait_ms = 300;
    let engine = SpeechEngine::start(cfg).expect("engine");
    let a = common::speak_8k("I would like to pay my bill.");
    let b = common::speak_8k("I need to speak to a manager.");
    let mut pcm = silence(300);
    for _ in 0..2 {
        pcm.extend(&a);
        pcm.extend(silence(900));
        pcm.extend(&b);
        pcm.extend(silence(900));
    }
    let epoch = Instant::now();
    let mut streams = Vec::new();
    for i in 0..8 {
        let (tx, rx) = unbounded_channel();
        let prio = if i % 2 == 0 {
            Priority::Normal
        } else {
            Priority::Low
        };
        let tap = engine
            .open_stream(Speaker::Caller, prio, epoch, 8000, tx)
            .expect("stream");
        streams.push((tap, rx, prio));
    }
    // Interleave the streams frame by frame, as the media workers would.
    for (i, c) in pcm.chunks(160).enumerate() {
        let at = epoch + Duration::from_millis(i as u64 * 20);
        for (tap, _, _) in &streams {
            while !tap.sender.send(at, 8000, c, false) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    // Let the queue stay full for a while (one slow worker) before the calls end.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && engine.metrics().deferred == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = engine.metrics();
    for (tap, _, _) in &streams {
        engine.close_stream(tap.id);
    }
    let mut deferred_low = 0;
    for (_, rx, prio) in streams {
        let evs = drain(rx);
        let segs = segments(&evs);
        // All four utterances of every stream are transcribed (merged or post-call).
        let parts: u32 = segs.iter().map(|s| s.parts).sum();
        assert_eq!(parts, 4, "{evs:?}");
        let text: String = segs.iter().map(|s| s.text.to_lowercase()).collect();
        assert!(text.contains("bill") && text.contains("manager"), "{text}");
        if prio == Priority::Low
            && evs.iter().any(|e| {
                matches!(
                    e,
                    SpeechEvent::Degraded {
                        what: Degradation::Deferred,
                        ..
                    }
                )
            })
        {
            deferred_low += 1;
        }
    }
    let m = engine.metrics();
    eprintln!("during: {during:?}\nafter: {m:?}");
    assert!(m.merged > 0, "{m:?}");
    assert!(m.deferred > 0 && deferred_low > 0, "{m:?}");
    assert!(m.post_call_segments > 0);
    assert_eq!(m.dropped_ms, 0);
    assert_eq!(m.utterances, 32);
}

/// With the multilingual model each utterance's language is detected and transcribed
/// in it: a Spanish caller gets Spanish words and `es`, an English one `en`.
#[test]
fn multilingual_model_detects_the_callers_language() {
    let Some(path) = common::multilingual_model() else {
        return;
    };
    let model = parley_speech::Model::load(&path).expect("model");
    assert!(model.multilingual());
    let mut t = model.transcriber(2).expect("state");
    let es = common::speak_voice("Quiero pagar mi factura de teléfono.", 8000, "es", 150);
    let es16 = parley_speech::resample::clip_to_16k(&es, 8000).expect("resample");
    let (text, lang) = t.transcribe_lang(&es16, true).expect("transcribe");
    assert_eq!(lang, "es", "{text:?}");
    let w = common::words(&text);
    assert!(
        w.iter().any(|x| x == "factura" || x == "pagar"),
        "a Spanish transcript: {text:?}"
    );
    let en = common::speak_8k("I want to check my account balance.");
    let en16 = parley_speech::resample::clip_to_16k(&en, 8000).expect("resample");
    let (text, lang) = t.transcribe_lang(&en16, true).expect("transcribe");
    assert_eq!(lang, "en", "{text:?}");
    assert!(
        common::words(&text).contains(&"account".to_owned()),
        "{text:?}"
    );
}

/// Issue 16: a stream names the model it is transcribed with (a tenant's choice):
/// the engine's default is tiny.en (English only), the stream asks for the
/// multilingual alternative, loaded on first use, and its Spanish utterance comes back
/// Spanish and tagged `es`; an unknown model or language opens nothing.
#[test]
fn a_stream_transcribed_by_its_chosen_model_detects_spanish() {
    let (Some(tiny), Some(base)) = (common::model(), common::multilingual_model()) else {
        return;
    };
    let mut cfg = SpeechConfig::new(tiny);
    cfg.workers = 1;
    cfg.threads_per_worker = 2;
    cfg.alternatives = vec![("whisper-base-q8_0".into(), base)];
    let engine = SpeechEngine::start(cfg).expect("engine");
    assert_eq!(engine.models().collect::<Vec<_>>(), ["whisper-base-q8_0"]);
    let mut pcm = silence(600);
    pcm.extend(common::speak_voice(
        "Quiero pagar mi factura de teléfono.",
        8000,
        "es",
        150,
    ));
    pcm.extend(silence(1000));
    let open = |choice: &parley_speech::StreamModel| {
        let (tx, rx) = unbounded_channel();
        let tap = engine.open_stream_with(
            Speaker::Caller,
            Priority::Normal,
            Instant::now(),
            8000,
            tx,
            choice,
        );
        (tap, rx)
    };
    let chosen = parley_speech::StreamModel {
        model: Some("whisper-base-q8_0".into()),
        language: None,
    };
    let (tap, rx) = open(&chosen);
    let tap = tap.expect("stream");
    feed(&tap, Instant::now(), &pcm, |_| false);
    engine.close_stream(tap.id);
    let segs = segments(&drain(rx));
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].language, "es", "{segs:?}");
    let w = common::words(&segs[0].text);
    assert!(w.iter().any(|x| x == "factura" || x == "pagar"), "{segs:?}");
    for bad in [
        parley_speech::StreamModel {
            model: Some("whisper-large".into()),
            language: None,
        },
        parley_speech::StreamModel {
            model: None,
            language: Some("xx".into()),
        },
    ] {
        let (tap, _rx) = open(&bad);
        assert!(
            matches!(
                tap,
                Err(parley_speech::Error::UnknownModel { .. }
                    | parley_speech::Error::Language { .. })
            ),
            "{bad:?}"
        );
    }
}
