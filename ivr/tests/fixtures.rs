//! Data-driven tests: flows, simulation scripts and validator cases under
//! `tests/fixtures/`. Run with `UPDATE_EXPECT=1` to rewrite the `expect`
//! fields from the current behaviour (then review the diff).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use parley_ivr::{
    Calendar, Env, Flow, Script, TraceItem, ValidationOptions, simulate, validate, validate_flows,
};
use pretty_assertions::assert_eq;
use serde::Deserialize;
use serde_json::Value;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

fn json_files(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn updating() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1")
}

fn write_back(path: &Path, doc: &Value) {
    let mut s = serde_json::to_string_pretty(doc).unwrap();
    s.push('\n');
    fs::write(path, s).unwrap();
}

fn env() -> Env {
    let flows = json_files("flows")
        .into_iter()
        .map(|p| Flow::from_json(&fs::read_to_string(&p).unwrap()).unwrap());
    let mut env = Env::new(flows);
    let cals: BTreeMap<String, Calendar> =
        serde_json::from_str(&fs::read_to_string(dir("calendars.json")).unwrap()).unwrap();
    env.calendars = cals;
    env
}

#[test]
fn fixture_flows_are_valid() {
    let env = env();
    assert!(env.flows.contains_key(&"demo".into()));
    if let Err(e) = env.check() {
        panic!("{e}");
    }
}

#[test]
fn flows_round_trip_through_json() {
    for (id, flow) in &env().flows {
        let back = Flow::from_json(&flow.to_json()).unwrap();
        assert_eq!(&back, flow, "flow {id}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptCase {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    speech_available: bool,
    script: Script,
    /// Hand-written checks, independent of the recorded trace.
    #[serde(default)]
    check: Check,
    #[serde(default)]
    expect: Value,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Check {
    /// Nodes entered, in order (`flow/node`).
    nodes: Option<Vec<String>>,
    /// Variables that must have these values at the end.
    #[serde(default)]
    variables: BTreeMap<String, Value>,
    /// Action types that must appear, in this relative order.
    #[serde(default)]
    actions: Vec<String>,
}

#[test]
fn simulation_scripts() {
    let base = env();
    let files = json_files("scripts");
    assert!(files.len() >= 10, "expected the script fixtures");
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let case: ScriptCase = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("{name}: bad script file: {e}"));
        let mut env = base.clone();
        env.speech_available = case.speech_available;
        let trace = simulate(&env, &case.script).unwrap();

        // Hand-written checks.
        let nodes: Vec<String> = trace
            .entries
            .iter()
            .filter_map(|e| match &e.item {
                TraceItem::Node(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        if let Some(want) = &case.check.nodes {
            assert_eq!(&nodes, want, "{name}: visited nodes");
        }
        for (k, v) in &case.check.variables {
            assert_eq!(trace.variables.get(k), Some(v), "{name}: variable {k}");
        }
        let types: Vec<String> = trace
            .entries
            .iter()
            .filter_map(|e| match &e.item {
                TraceItem::Action(a) => serde_json::to_value(a).unwrap()["type"]
                    .as_str()
                    .map(str::to_owned),
                _ => None,
            })
            .collect();
        let mut it = types.iter();
        for want in &case.check.actions {
            assert!(
                it.any(|t| t == want),
                "{name}: action {want} missing or out of order in {types:?}"
            );
        }

        // Recorded trace.
        let got = serde_json::to_value(&trace).unwrap();
        if updating() {
            doc["expect"] = got;
            write_back(&path, &doc);
        } else if case.expect != got {
            failures.push((name, case.expect, got));
        }
    }
    if let Some((name, want, got)) = failures.first() {
        let names: Vec<&String> = failures.iter().map(|f| &f.0).collect();
        eprintln!("trace mismatch in {names:?} (UPDATE_EXPECT=1 rewrites them)");
        assert_eq!(want, got, "{name}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidCase {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    options: ValidationOptions,
    flow: Value,
    /// Other flows validated together with `flow` (sub-flow contracts).
    #[serde(default)]
    other_flows: Vec<Flow>,
    #[serde(default)]
    expect: Value,
}

#[test]
fn validator_cases() {
    let files = json_files("invalid");
    assert!(files.len() >= 5, "expected the validator fixtures");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let case: InvalidCase = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("{name}: bad case file: {e}"));
        let flow: Flow = serde_json::from_value(case.flow)
            .unwrap_or_else(|e| panic!("{name}: flow does not parse: {e}"));
        let errors = if case.other_flows.is_empty() {
            validate(&flow, &case.options)
        } else {
            let id = flow.id.clone();
            let mut all: BTreeMap<_, _> = case
                .other_flows
                .into_iter()
                .map(|f| (f.id.clone(), f))
                .collect();
            all.insert(id.clone(), flow);
            validate_flows(&all, &case.options)
                .remove(&id)
                .unwrap_or_default()
        };
        assert!(!errors.is_empty(), "{name}: no validation error");
        let got: Value = errors
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap();
                v["message"] = Value::String(e.to_string());
                v
            })
            .collect();
        if updating() {
            doc["expect"] = got;
            write_back(&path, &doc);
        } else {
            assert_eq!(case.expect, got, "{name}");
        }
    }
}
