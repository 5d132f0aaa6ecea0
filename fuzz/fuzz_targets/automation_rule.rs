//! Automation rules as admins send them (JSON, `POST /api/v1/rules`), evaluated on
//! event facts as the runtime builds them.
//!
//! The input is a rule's JSON, optionally followed by a NUL byte and the facts' JSON.
//! Properties: nothing panics; a rule that reads prints back to an equal rule;
//! `validate` and `evaluate` (on the input facts, or fixed ones) never panic; a rule
//! never fires on an event it caused itself, and never on one at the depth limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_rules::{Event, MAX_DEPTH, NoCalendars, Rule, RuleSet, evaluate, validate};

fuzz_target!(|data: &[u8]| {
    let (rule, facts) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(mut rule) = serde_json::from_slice::<Rule>(rule) else {
        return;
    };
    let printed = serde_json::to_string(&rule).expect("a rule prints");
    let again: Rule = serde_json::from_str(&printed).expect("a printed rule reads");
    assert_eq!(again, rule, "rule JSON round trip");
    let _ = validate(&rule);
    let facts: serde_json::Value = serde_json::from_slice(facts).unwrap_or_else(|_| {
        serde_json::json!({"conversation": {"priority": "P1", "tags": ["vip"]},
                           "message": {"text": "refund please", "author": "customer"}})
    });
    rule.tenant_id = "t".into();
    rule.enabled = true;
    let kinds = match &rule.trigger {
        parley_rules::Trigger::Event { kinds } => kinds.clone(),
        parley_rules::Trigger::Schedule { .. } => vec!["schedule.tick".into()],
    };
    let id = rule.id.clone();
    let set = RuleSet::new(vec![rule]);
    for kind in kinds.iter().take(4) {
        for caused_by in [vec![], vec![id.clone()], vec!["x".to_owned(); MAX_DEPTH]] {
            let ev = Event {
                id: "e",
                tenant_id: "t",
                kind,
                at: 1_767_603_600_000,
                facts: &facts,
                caused_by: &caused_by,
            };
            let out = evaluate(ev.at, &set, &ev, &NoCalendars);
            if !caused_by.is_empty() {
                assert!(out.fired.is_empty(), "fired on its own or a too deep event");
            }
        }
    }
});
