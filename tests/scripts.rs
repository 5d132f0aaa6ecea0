//! The set-up script the README's run command calls (`scripts/run.sh` →
//! `scripts/setup.sh`): what it installs, read with `--list` (nothing is installed).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::Command;

fn packages(args: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--list")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Regression (issue 14): the run command did not install espeak-ng, so the demo line
/// played beeps instead of its spoken greeting and menu.
#[test]
fn the_run_setup_installs_what_the_demo_needs_to_speak() {
    let run = packages(&[]);
    for p in ["espeak-ng", "curl", "cmake", "libclang-dev", "pkg-config"] {
        assert!(run.iter().any(|x| x == p), "{p} missing from {run:?}");
    }
    // The test peers come only with --test.
    assert!(!run.iter().any(|x| x == "sip-tester"), "{run:?}");
    let test = packages(&["--test"]);
    for p in ["espeak-ng", "sip-tester", "postgresql", "chromium"] {
        assert!(test.iter().any(|x| x == p), "{p} missing from {test:?}");
    }
}
