//! The command line around the README's first hour: the set-up script the run command
//! calls (`scripts/run.sh` → `scripts/setup.sh`, read with `--list`: nothing is
//! installed) and recovering a login (`parley user reset-password`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::Command;

mod common;
use common::parley::{TempDir, cli};

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

/// Regression (issue 14): the demo logins are printed once, with no way to recover them
/// but the database. `parley user reset-password --generate` sets and prints a new one.
#[test]
fn user_reset_password_recovers_a_demo_login() {
    let dir = TempDir::new("reset");
    let parley = |args: &[&str], stdin: &str| cli(dir.path(), None, args, stdin);
    let add = parley(
        &[
            "user",
            "add",
            "--tenant",
            "demo",
            "--email",
            "ada@demo.test",
            "--role",
            "admin",
            "--create-tenant",
        ],
        "the first password\n",
    );
    assert!(add.status.success(), "{add:?}");
    let reset = parley(
        &[
            "user",
            "reset-password",
            "--tenant",
            "demo",
            "--email",
            "ADA@demo.test",
            "--generate",
        ],
        "",
    );
    assert!(reset.status.success(), "{reset:?}");
    let out = String::from_utf8(reset.stdout).unwrap();
    let password = out.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(password.len(), 20, "{out}");
    let missing = parley(
        &[
            "user",
            "reset-password",
            "--tenant",
            "demo",
            "--email",
            "nobody@demo.test",
            "--generate",
        ],
        "",
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no user"),
        "{missing:?}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = parley_cases::Store::open_sqlite_dir(&dir.path().join("data"))
            .await
            .unwrap();
        assert!(
            store
                .authenticate("demo", "ada@demo.test", &password)
                .await
                .is_ok()
        );
        assert!(
            store
                .authenticate("demo", "ada@demo.test", "the first password")
                .await
                .is_err()
        );
        store.close().await;
    });
}
