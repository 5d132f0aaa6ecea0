//! `parley flow validate|simulate`: the IVR validator and simulator on files, without a
//! database or a server (what the designer's API does, for scripts and CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use parley_ivr::{Calendar, Env, Flow, Script, ScriptStep, ValidationOptions};

#[derive(Subcommand)]
pub(crate) enum FlowCommand {
    /// Validate a flow file. Prints every problem on its own line, naming the node;
    /// exits 1 when there is any.
    Validate {
        #[command(flatten)]
        files: FlowFiles,
    },
    /// Run a scripted call through a flow in virtual time and print the trace.
    Simulate {
        #[command(flatten)]
        files: FlowFiles,
        /// Keys the caller presses, in order, each once the prompt has finished
        /// (after the script's own steps). Repeatable: --digits 1 --digits 5.
        #[arg(long)]
        digits: Vec<String>,
        /// A script file: {"call": {...}, "start_time": "...", "steps": [...]} (see the
        /// parley-ivr README); `flow` may be left out.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Wall-clock start of the call (RFC 3339), for business hours.
        #[arg(long)]
        at: Option<jiff::Timestamp>,
        /// Caller's number.
        #[arg(long)]
        caller: Option<String>,
        /// Assume a speech recogniser (else speech nodes use their DTMF fallback).
        #[arg(long)]
        speech: bool,
        /// Print the trace as JSON instead of one line per entry.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(crate) struct FlowFiles {
    /// The flow (JSON).
    file: PathBuf,
    /// Flows it calls as sub-flows (repeatable).
    #[arg(long = "with", value_name = "FILE")]
    with: Vec<PathBuf>,
    /// Business-hours calendars: a JSON object of name → calendar. Without it, calendar
    /// names are not checked (and a simulation that reads one fails).
    #[arg(long)]
    calendars: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_flow(path: &Path) -> anyhow::Result<Flow> {
    Flow::from_json(&read(path)?).with_context(|| format!("{} is not a flow", path.display()))
}

struct Loaded {
    main: Flow,
    env: Env,
    check_calendars: bool,
}

fn load(files: &FlowFiles) -> anyhow::Result<Loaded> {
    let main = load_flow(&files.file)?;
    let mut flows = Vec::new();
    for p in &files.with {
        flows.push(load_flow(p)?);
    }
    flows.push(main.clone());
    let mut env = Env::new(flows);
    if let Some(p) = &files.calendars {
        let cals: BTreeMap<String, Calendar> = serde_json::from_str(&read(p)?)
            .with_context(|| format!("{} is not a set of calendars", p.display()))?;
        for (name, c) in &cals {
            c.check()
                .with_context(|| format!("calendar {name:?} in {}", p.display()))?;
        }
        env.calendars = cals;
    }
    Ok(Loaded {
        main,
        env,
        check_calendars: files.calendars.is_some(),
    })
}

/// The calendars the loaded flows read (validated against no calendar at all).
fn calendars_read(l: &Loaded) -> Vec<String> {
    let opts = ValidationOptions {
        known_flows: Some(l.env.flows.keys().cloned().collect()),
        known_calendars: Some(Default::default()),
        ..ValidationOptions::default()
    };
    parley_ivr::validate_flows(&l.env.flows, &opts)
        .into_values()
        .flatten()
        .filter_map(|e| match e.kind {
            parley_ivr::ValidationErrorKind::UnknownCalendar { calendar } => Some(calendar),
            _ => None,
        })
        .collect()
}

/// The main flow's problems, one line each.
fn problems(l: &Loaded) -> Vec<String> {
    let opts = ValidationOptions {
        known_flows: Some(l.env.flows.keys().cloned().collect()),
        known_calendars: l
            .check_calendars
            .then(|| l.env.calendars.keys().cloned().collect()),
        ..ValidationOptions::default()
    };
    parley_ivr::validate_flows(&l.env.flows, &opts)
        .remove(&l.main.id)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Runs a `flow` command; returns the process exit code.
pub(crate) fn run(cmd: FlowCommand) -> anyhow::Result<i32> {
    match cmd {
        FlowCommand::Validate { files } => {
            let l = match load(&files) {
                Ok(l) => l,
                Err(e) => {
                    println!("{e:#}");
                    return Ok(1);
                }
            };
            let errors = problems(&l);
            for w in parley_ivr::warnings(&l.main) {
                println!("{w}");
            }
            if errors.is_empty() {
                println!(
                    "{}: flow `{}` is valid ({} nodes)",
                    files.file.display(),
                    l.main.id,
                    l.main.nodes.len()
                );
                Ok(0)
            } else {
                for e in &errors {
                    println!("{e}");
                }
                Ok(1)
            }
        }
        FlowCommand::Simulate {
            files,
            digits,
            script,
            at,
            caller,
            speech,
            json,
        } => {
            let mut l = load(&files)?;
            let errors = problems(&l);
            if !errors.is_empty() {
                for e in &errors {
                    println!("{e}");
                }
                bail!("flow `{}` is invalid; not simulating", l.main.id);
            }
            l.env.speech_available = speech;
            let mut s = match &script {
                Some(p) => read_script(p, &l.main)?,
                None => Script::new(l.main.id.clone()),
            };
            s.steps.extend(digits.into_iter().map(ScriptStep::Digits));
            if let Some(at) = at {
                s.start_time = at;
            }
            if let Some(c) = caller {
                s.call.caller_number = c;
            }
            // No database here: calendars come only from a file, so say so up front
            // rather than simulating a call that ends in an error at the first branch.
            if files.calendars.is_none()
                && let Some(calendar) = calendars_read(&l).into_iter().next()
            {
                bail!(
                    "the flow reads business-hours calendar {calendar:?}: pass --calendars FILE \
                     (a JSON object of name -> calendar, see docs/flows.md; the demo tenant's \
                     is cases/src/demo_calendars.json)"
                );
            }
            let trace = parley_ivr::simulate(&l.env, &s)?;
            if json {
                println!("{}", trace.to_json());
            } else {
                println!("{trace}");
            }
            Ok(0)
        }
    }
}

fn read_script(path: &Path, main: &Flow) -> anyhow::Result<Script> {
    let mut v: serde_json::Value = serde_json::from_str(&read(path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    if let Some(o) = v.as_object_mut() {
        o.entry("flow")
            .or_insert_with(|| serde_json::Value::String(main.id.0.clone()));
    }
    serde_json::from_value(v)
        .with_context(|| format!("{} is not a simulation script", path.display()))
}
