//! IVR flows and simulation scripts as uploaded by admins (JSON).
//!
//! The input is JSON, optionally followed by a NUL byte and script bytes. When
//! the JSON is a flow: it must print back to an equal flow, and validation must
//! not panic (alone and together with the fixture flows); the flow is then run by
//! the simulator, valid or not, with a script decoded from the bytes after the NUL
//! (digits, barge-in, waits, speech, webhook / customer / queue results, hang-up).
//! When the JSON is a simulation script, it is run against the fixture flows.
//!
//! Properties: nothing panics; `simulate` succeeds for a known flow; the trace's
//! virtual time never goes backwards and ends at `end_ms`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_ivr::{
    Calendar, Env, Flow, QueueOutcome, QueueState, Script, ScriptStep, ValidationOptions, simulate,
    validate, validate_flows,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

const FIXTURE_FLOWS: &[&str] = &[
    include_str!("../../ivr/tests/fixtures/flows/account.json"),
    include_str!("../../ivr/tests/fixtures/flows/customer.json"),
    include_str!("../../ivr/tests/fixtures/flows/demo.json"),
    include_str!("../../ivr/tests/fixtures/flows/main_with_pin.json"),
    include_str!("../../ivr/tests/fixtures/flows/pin.json"),
    include_str!("../../ivr/tests/fixtures/flows/speech.json"),
    include_str!("../../ivr/tests/fixtures/flows/webhook.json"),
];
const CALENDARS: &str = include_str!("../../ivr/tests/fixtures/calendars.json");

fn base_env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let flows = FIXTURE_FLOWS
            .iter()
            .map(|j| Flow::from_json(j).expect("fixture flow"));
        let mut env = Env::new(flows);
        let cals: BTreeMap<String, Calendar> =
            serde_json::from_str(CALENDARS).expect("fixture calendars");
        env.calendars = cals;
        env
    })
}

const KEYS: &[u8] = b"0123456789*#ABCD";
const WORDS: &[&str] = &["sales", "support", "operator", "yes", "no", "billing", ""];

fn steps(bytes: &[u8]) -> Vec<ScriptStep> {
    bytes
        .iter()
        .take(64)
        .map(|&b| {
            let arg = usize::from(b / 12);
            let key = char::from(KEYS[arg % KEYS.len()]).to_string();
            match b % 12 {
                0 => ScriptStep::Digits(key),
                1 => ScriptStep::Barge(key),
                2 => ScriptStep::Wait(arg as u64 * 500),
                3 => ScriptStep::Hangup,
                4 => ScriptStep::Speech {
                    text: WORDS[arg % WORDS.len()].to_owned(),
                    confidence: arg as f64 / 21.0,
                },
                5 => ScriptStep::Webhook {
                    status: [200, 201, 302, 404, 500, 0][arg % 6],
                    json: serde_json::json!({"balance": arg, "ok": arg % 2 == 0, "name": "Ann"}),
                },
                6 => ScriptStep::WebhookFailed("connection refused".to_owned()),
                7 => ScriptStep::Customer {
                    customer_id: (arg % 2 == 0).then(|| format!("cust-{arg}")),
                    attributes: BTreeMap::from([
                        ("vip".to_owned(), serde_json::Value::Bool(arg % 3 == 0)),
                        ("tier".to_owned(), serde_json::json!(arg)),
                    ]),
                },
                8 => ScriptStep::CustomerFailed("lookup failed".to_owned()),
                9 => ScriptStep::Queue(
                    [
                        QueueOutcome::Answered,
                        QueueOutcome::Abandoned,
                        QueueOutcome::Timeout,
                        QueueOutcome::Callback,
                    ][arg % 4],
                ),
                10 => ScriptStep::QueueStatus {
                    queue: ["sales", "support", "vip"][arg % 3].to_owned(),
                    state: QueueState {
                        agents_available: (arg % 3) as u32,
                        estimated_wait_s: arg as u64 * 60,
                    },
                },
                _ => ScriptStep::Digits(format!("{}{key}#", arg % 10)),
            }
        })
        .collect()
}

fn run(env: &Env, script: &Script) {
    let trace = simulate(env, script).expect("simulating a known flow");
    let mut t = 0;
    for e in &trace.entries {
        assert!(e.t >= t, "trace time went back from {t} to {}", e.t);
        t = e.t;
    }
    assert!(
        trace.end_ms >= t,
        "trace ends at {} before its last entry {t}",
        trace.end_ms
    );
    let _ = trace.to_string();
}

fuzz_target!(|data: &[u8]| {
    let (json, script_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };

    let flow = match Flow::from_json(json) {
        Ok(flow) => flow,
        Err(_) => {
            if let Ok(mut script) = Script::from_json(json) {
                // Bound the virtual time so one input stays fast.
                script.max_ms = script.max_ms.min(3_600_000);
                script.steps.truncate(64);
                if base_env().flows.contains_key(&script.flow) {
                    run(base_env(), &script);
                } else {
                    assert!(
                        simulate(base_env(), &script).is_err(),
                        "unknown flow simulated"
                    );
                }
            }
            return;
        }
    };

    let printed = flow.to_json();
    let again = Flow::from_json(&printed)
        .unwrap_or_else(|e| panic!("printed flow does not parse: {e}\n{printed}"));
    assert_eq!(again, flow, "flow JSON round trip");

    let _ = validate(&flow, &ValidationOptions::default());
    let env = {
        let mut env = base_env().clone();
        env.speech_available = script_bytes.first().is_some_and(|b| b & 0x80 != 0);
        env.flows.insert(flow.id.clone(), flow.clone());
        env
    };
    let opts = ValidationOptions {
        known_flows: Some(env.flows.keys().cloned().collect()),
        known_calendars: Some(env.calendars.keys().cloned().collect()),
        ..Default::default()
    };
    let _ = validate(&flow, &opts);
    let _ = validate_flows(&env.flows, &ValidationOptions::default());
    let _ = env.check();

    let mut script = Script::new(flow.id.clone());
    script.steps = steps(script_bytes);
    run(&env, &script);
});
