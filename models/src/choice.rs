//! Which speech model transcribes calls when none is configured: a pure function of
//! the machine's size and of what is installed, decided by the figures in
//! BENCHMARKS.md ("Local models: Whisper base vs tiny.en").

use crate::catalog::{CATALOG, Kind, ModelSpec, find};

/// Cores from which the more accurate model is the default. An estimate, not yet a
/// measurement: base costs ~2.6× tiny.en's compute per utterance (BENCHMARKS.md), and
/// tiny.en's 10-stream live p95 on an idle 2-core box was 353 ms; base's own 10-stream
/// p95 has not been measured on an idle machine of any size.
pub const ACCURATE_MIN_CORES: usize = 8;

/// The more accurate speech model (the default from [`ACCURATE_MIN_CORES`]).
pub const ACCURATE: &str = "whisper-base-q8_0";
/// The fast speech model (the default below [`ACCURATE_MIN_CORES`]).
pub const FAST: &str = "whisper-tiny.en";

/// The speech model chosen for a machine.
#[derive(Debug, Clone, Copy)]
pub struct SpeechChoice {
    /// The model.
    pub spec: &'static ModelSpec,
    /// Why, for `parley models list`, the start-up log and `/readyz`.
    pub why: &'static str,
}

const WHY_ACCURATE: &str = "the more accurate model: 8 cores or more (estimated to keep 10 live calls under 800 ms; not yet measured)";
const WHY_FAST: &str = "the fast model: fewer than 8 cores (the more accurate one costs ~2.6x the compute; its live latency here is not yet measured)";
const WHY_FALLBACK: &str = "the preferred model for this machine is not installed";

/// The speech models in the order a machine with `cores` cores prefers them, with why.
pub fn speech_preference(cores: usize) -> Vec<SpeechChoice> {
    let (first, first_why) = if cores >= ACCURATE_MIN_CORES {
        (ACCURATE, WHY_ACCURATE)
    } else {
        (FAST, WHY_FAST)
    };
    let mut out = Vec::new();
    if let Some(spec) = find(first) {
        out.push(SpeechChoice {
            spec,
            why: first_why,
        });
    }
    for spec in CATALOG.iter().filter(|m| m.kind == Kind::Speech) {
        if spec.id != first {
            out.push(SpeechChoice {
                spec,
                why: WHY_FALLBACK,
            });
        }
    }
    out
}

/// The speech model this machine wants installed (what `parley models install`
/// installs by default besides the other default models).
pub fn wanted_speech(cores: usize) -> &'static ModelSpec {
    speech_preference(cores)
        .first()
        .map(|c| c.spec)
        .unwrap_or(&CATALOG[0])
}

/// The preferred installed speech model for `cores` cores, if any is installed.
pub fn choose_speech(cores: usize, installed: impl Fn(&ModelSpec) -> bool) -> Option<SpeechChoice> {
    speech_preference(cores)
        .into_iter()
        .find(|c| installed(c.spec))
}

/// The models `parley models install` installs without arguments on a machine with
/// `cores` cores: the default embedding and language models and the speech model the
/// machine wants.
pub fn default_install(cores: usize) -> Vec<&'static ModelSpec> {
    let speech = wanted_speech(cores);
    CATALOG
        .iter()
        .filter(|m| (m.default && m.kind != Kind::Speech) || m.id == speech.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_model_below_the_core_threshold_accurate_from_it() {
        assert_eq!(wanted_speech(2).id, FAST);
        assert_eq!(wanted_speech(ACCURATE_MIN_CORES - 1).id, FAST);
        assert_eq!(wanted_speech(ACCURATE_MIN_CORES).id, ACCURATE);
        assert_eq!(wanted_speech(64).id, ACCURATE);
    }

    #[test]
    fn an_installed_model_is_chosen_when_the_wanted_one_is_missing() {
        let only_tiny = |m: &ModelSpec| m.id == FAST;
        let c = choose_speech(ACCURATE_MIN_CORES, only_tiny).expect("tiny");
        assert_eq!((c.spec.id, c.why), (FAST, WHY_FALLBACK));
        let both = |m: &ModelSpec| m.id == FAST || m.id == ACCURATE;
        assert_eq!(choose_speech(2, both).map(|c| c.spec.id), Some(FAST));
        assert_eq!(
            choose_speech(ACCURATE_MIN_CORES, both).map(|c| c.spec.id),
            Some(ACCURATE)
        );
        assert!(choose_speech(2, |_| false).is_none());
    }

    #[test]
    fn the_default_install_has_what_the_choice_needs() {
        for cores in [1, 2, ACCURATE_MIN_CORES, 32] {
            let ids: Vec<&str> = default_install(cores).iter().map(|m| m.id).collect();
            assert!(ids.contains(&wanted_speech(cores).id), "{cores}: {ids:?}");
            assert_eq!(
                default_install(cores)
                    .iter()
                    .filter(|m| m.kind == Kind::Speech)
                    .count(),
                1
            );
            assert!(ids.contains(&"all-MiniLM-L6-v2") && ids.contains(&"SmolLM2-135M-Instruct"));
        }
    }
}
