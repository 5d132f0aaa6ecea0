//! Test helpers: the speech model and espeak-ng speech at 8 kHz.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

/// The model: `PARLEY_SPEECH_MODEL`, else the shared test model next to the project.
/// Missing: a panic under `CI=true`, a loud warning (and `None`: skip) otherwise.
pub fn model() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("PARLEY_SPEECH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/models/ggml-tiny.en.bin"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no speech model at {} (set PARLEY_SPEECH_MODEL)",
            path.display()
        );
    }
    eprintln!(
        "\n!!! NO SPEECH MODEL at {}: set PARLEY_SPEECH_MODEL; SKIPPING this transcription test !!!\n",
        path.display()
    );
    None
}

/// The multilingual model (Whisper base): `PARLEY_SPEECH_MODEL_MULTILINGUAL`, else the
/// one `parley models install` puts in `data/models`. Missing: a panic under `CI=true`,
/// a loud warning (and `None`: skip) otherwise.
pub fn multilingual_model() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("PARLEY_SPEECH_MODEL_MULTILINGUAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/models/ggml-base-q8_0.bin"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no multilingual speech model at {} (parley models install whisper-base-q8_0, or set PARLEY_SPEECH_MODEL_MULTILINGUAL)",
            path.display()
        );
    }
    eprintln!(
        "\n!!! NO MULTILINGUAL SPEECH MODEL at {}: SKIPPING this language test !!!\n",
        path.display()
    );
    None
}

/// `text` spoken by espeak-ng, as 8 kHz mono 16-bit PCM (sox resamples).
pub fn speak_8k(text: &str) -> Vec<i16> {
    speak(text, 8000)
}

/// `text` spoken by espeak-ng at `rate` Hz, mono 16-bit PCM.
pub fn speak(text: &str, rate: u32) -> Vec<i16> {
    speak_voice(text, rate, "en-us", 150)
}

/// `text` spoken by espeak-ng's `voice` (e.g. `en-gb+f3`) at `wpm` words per minute,
/// resampled to `rate` Hz, mono 16-bit PCM.
pub fn speak_voice(text: &str, rate: u32, voice: &str, wpm: u32) -> Vec<i16> {
    // One folder per call: two tests speaking the same text in parallel shared a folder
    // named by the text alone, and one removed it while the other's espeak-ng was
    // writing into it ("Can't write to …/s.wav", then "sox failed").
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "parley-speech-{}-{call}-{}",
        std::process::id(),
        fnv(&format!("{voice}/{wpm}/{text}"))
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wav = dir.join("s.wav");
    let raw = dir.join("s.raw");
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng (scripts/setup.sh --test installs it)");
    assert!(ok.success(), "espeak-ng failed");
    let ok = Command::new("sox")
        .arg(&wav)
        .args([
            "-r",
            &rate.to_string(),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
        ])
        .arg(&raw)
        .status()
        .expect("sox (scripts/setup.sh --test installs it)");
    assert!(ok.success(), "sox failed");
    let bytes = std::fs::read(&raw).expect("raw audio");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Lower-case words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Word error rate of `hyp` against `reference` (Levenshtein over words).
pub fn wer(reference: &str, hyp: &str) -> (usize, usize) {
    let r = words(reference);
    let h = words(hyp);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// The committed WER sentences.
pub fn sentences() -> Vec<String> {
    include_str!("../../testdata/sentences.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The second WER set: sentence `i` gets a voice and a speed of its own (varied
/// accents, female/male variants, 130–190 words per minute).
pub fn alt_voice(i: usize) -> (&'static str, u32) {
    const VOICES: [&str; 5] = [
        "en-gb",
        "en-us+f3",
        "en-gb-scotland",
        "en-029+m3",
        "en-gb-x-rp+f2",
    ];
    const WPM: [u32; 4] = [130, 170, 150, 190];
    (VOICES[i % VOICES.len()], WPM[i % WPM.len()])
}

/// Adds white noise at `snr_db` below the clip's RMS (deterministic: a fixed LCG).
pub fn add_noise(pcm: &mut [i16], snr_db: f64, seed: u64) {
    let n = pcm.len().max(1) as f64;
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n).sqrt();
    let noise_rms = rms / 10f64.powf(snr_db / 20.0);
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    // Uniform in [-a, a] has RMS a/sqrt(3).
    let a = noise_rms * 3f64.sqrt();
    for s in pcm.iter_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        *s = (f64::from(*s) + u * a).round().clamp(-32768.0, 32767.0) as i16;
    }
}
