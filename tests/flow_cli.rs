//! `parley flow validate|simulate`: the real binary on the IVR fixture files.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

mod common;
use common::parley::{TempDir, cli};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ivr/tests/fixtures")
        .join(rel)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn validate_accepts_the_demo_and_names_nodes_of_a_broken_flow() {
    let dir = TempDir::new("flow-cli");
    let demo = fixture("flows/demo.json");
    let cals = fixture("calendars.json");
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "validate",
            demo.to_str().unwrap(),
            "--calendars",
            cals.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).contains("flow `demo` is valid (14 nodes)"),
        "{}",
        stdout(&o)
    );

    // With an empty calendar set, `main` is unknown: one error naming the node.
    let empty = dir.file("none.json", "{}");
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "validate",
            demo.to_str().unwrap(),
            "--calendars",
            empty.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // Once, although both the holiday and the business_hours rule read it.
    assert_eq!(lines, ["node `hours`: unknown calendar `main`"]);

    let broken = dir.file(
        "broken.json",
        &json!({"version": 1, "id": "b", "start": "hi", "nodes": {
            "hi": {"type": "play", "prompts": [{"tts": "Hi {{name}}"}], "next": "nowhere"},
            "menu": {"type": "menu", "prompts": [], "choices": [], "on_max_retries": "hi"}
        }})
        .to_string(),
    );
    let o = cli(
        dir.path(),
        None,
        &["flow", "validate", broken.to_str().unwrap()],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for expected in [
        "node `hi`: exit `next` points to missing node `nowhere`",
        "node `hi`: variable `name` may be read before it is set",
        "node `menu`: unreachable from the start node",
        "node `menu`: `prompts` has no prompt",
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "missing {expected:?} in\n{out}"
        );
    }
    assert!(out.lines().all(|l| l.starts_with("node `")), "{out}");

    // Not a flow at all: exit 1 with where it broke.
    let junk = dir.file("junk.json", "{\"version\": 1,\n \"id\": 5}");
    let o = cli(
        dir.path(),
        None,
        &["flow", "validate", junk.to_str().unwrap()],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("line 2"), "{}", stdout(&o));
}

#[test]
fn simulate_prints_the_trace_for_digits_and_scripts() {
    let dir = TempDir::new("flow-cli");
    let demo = fixture("flows/demo.json");
    let cals = fixture("calendars.json");
    let (demo, cals) = (demo.to_str().unwrap(), cals.to_str().unwrap());
    // Monday 10:00 New York, press 3: voicemail.
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "simulate",
            demo,
            "--calendars",
            cals,
            "--at",
            "2026-01-05T15:00:00Z",
            "--digits",
            "3",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("node    demo/voicemail"), "{out}");
    assert!(out.contains("record_voicemail"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .trim_start()
            .ends_with("ms  ended"),
        "{out}"
    );

    // A script (flow left out), plus --digits after it, as JSON.
    let script = dir.file(
        "sales.json",
        &json!({"start_time": "2026-01-05T15:00:00Z", "call": {"caller_number": "+15550123"},
                "steps": [{"digits": "1"}, {"queue": "answered"}]})
        .to_string(),
    );
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "simulate",
            demo,
            "--calendars",
            cals,
            "--script",
            script.to_str().unwrap(),
            "--digits",
            "5",
            "--json",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let trace: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(trace["ended"], true);
    assert_eq!(trace["variables"]["csat"], 5);
    assert_eq!(trace["variables"]["caller_number"], "+15550123");
    let nodes: Vec<&str> = trace["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        [
            "demo/greeting",
            "demo/hours",
            "demo/main_menu",
            "demo/sales_queue",
            "demo/survey",
            "demo/goodbye",
            "demo/end"
        ]
    );

    // Saturday: closed.
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "simulate",
            demo,
            "--calendars",
            cals,
            "--at",
            "2026-01-10T15:00:00Z",
        ],
        "",
    );
    assert!(stdout(&o).contains("node    demo/closed"), "{}", stdout(&o));

    // A bad script and an invalid flow fail with exit 1.
    let bad = dir.file("bad.json", r#"{"steps": [{"dance": 1}]}"#);
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "simulate",
            demo,
            "--calendars",
            cals,
            "--script",
            bad.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("dance"),
        "{o:?}"
    );
    let o = cli(
        dir.path(),
        None,
        &[
            "flow",
            "simulate",
            demo,
            "--calendars",
            dir.file("e.json", "{}").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("node `hours`: unknown calendar `main`"));
}

/// Regression (issue 14): simulating the demo without `--calendars` failed without
/// saying that the flag was what it needed.
#[test]
fn simulate_without_calendars_names_the_flag_it_needs() {
    let dir = TempDir::new("flow-cli");
    let demo = fixture("flows/demo.json");
    let o = cli(
        dir.path(),
        None,
        &["flow", "simulate", demo.to_str().unwrap()],
        "",
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("calendar \"main\""), "{err}");
    assert!(err.contains("--calendars FILE"), "{err}");
}

/// Regression (issue 14): the demo tenant's calendar followed New York office hours, so
/// a first call on a weekend or an evening heard "closed". Its calendar is open at any
/// hour: Sunday 03:00 UTC reaches the menu and 1 the sales queue.
#[test]
fn the_demo_calendars_answer_at_any_hour() {
    let dir = TempDir::new("flow-cli");
    let demo = fixture("flows/demo.json");
    let cals = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/src/demo_calendars.json");
    for at in ["2026-12-06T03:00:00Z", "2026-12-25T23:59:59Z"] {
        let o = cli(
            dir.path(),
            None,
            &[
                "flow",
                "simulate",
                demo.to_str().unwrap(),
                "--calendars",
                cals.to_str().unwrap(),
                "--at",
                at,
                "--digits",
                "1",
            ],
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let out = stdout(&o);
        assert!(out.contains("node    demo/main_menu"), "{at}: {out}");
        assert!(out.contains("node    demo/sales_queue"), "{at}: {out}");
        assert!(!out.contains("demo/closed"), "{at}: {out}");
    }
}
