//! Rule evaluation under load: 1,000 rules across 10 tenants (100 each, over six event
//! kinds, with field, text, list and `any` conditions), events of every tenant and
//! kind with varied facts; each event is one `evaluate` call, timed alone.
//!
//! `cargo bench -p parley-rules --bench rules` (env: `RULES`, `TENANTS`, `EVENTS`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use parley_rules::{Event, NoCalendars, Rule, RuleSet, evaluate};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const KINDS: [&str; 6] = [
    "conversation.opened",
    "conversation.message",
    "case.created",
    "case.updated",
    "case.status_changed",
    "sla.warning",
];

fn main() {
    let n_rules = env("RULES", 1000);
    let tenants = env("TENANTS", 10);
    let events = env("EVENTS", 200_000);
    let words = [
        "refund", "invoice", "outage", "password", "cancel", "upgrade", "hello",
    ];
    let rules: Vec<Rule> = (0..n_rules)
        .map(|i| {
            serde_json::from_value(json!({
                "id": format!("r{i:04}"), "tenant_id": format!("t{}", i % tenants),
                "name": format!("rule {i}"), "position": i,
                "trigger": {"type": "event", "kinds": [KINDS[i % KINDS.len()], KINDS[(i / 7) % KINDS.len()]]},
                "conditions": [
                    {"type": "field", "field": "message.text", "op": "contains", "value": [words[i % words.len()], words[(i / 3) % words.len()]]},
                    {"type": "any", "of": [
                        {"type": "field", "field": "conversation.priority", "op": "in", "value": ["P0", "P1"]},
                        {"type": "field", "field": "customer.attributes.plan", "op": "eq", "value": if i % 2 == 0 { "gold" } else { "basic" }}
                    ]},
                    {"type": "field", "field": "conversation.tags", "op": "not_contains", "value": format!("tag{}", i % 13)}
                ],
                "actions": [{"type": "add_tags", "tags": [format!("tag{}", i % 13)]}, {"type": "set_priority", "priority": "P1"}]
            }))
            .unwrap()
        })
        .collect();
    let set = RuleSet::new(rules);
    let facts: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            json!({
                "conversation": {"priority": format!("P{}", i % 4), "tags": [format!("tag{}", i % 13)], "channel_kind": "web_chat"},
                "message": {"text": format!("Hello, about my {} and the {} — thanks", words[i % words.len()], words[(i * 5) % words.len()])},
                "customer": {"attributes": {"plan": if i % 3 == 0 { "gold" } else { "basic" }}}
            })
        })
        .collect();
    let tenant_ids: Vec<String> = (0..tenants).map(|t| format!("t{t}")).collect();
    let mut times = Vec::with_capacity(events);
    let mut fired = 0usize;
    let start = Instant::now();
    for i in 0..events {
        let id = format!("e{i}");
        let ev = Event {
            id: &id,
            tenant_id: &tenant_ids[i % tenants],
            kind: KINDS[(i / tenants) % KINDS.len()],
            at: i as i64,
            facts: &facts[i % facts.len()],
            caused_by: &[],
        };
        let t = Instant::now();
        let out = evaluate(i as i64, &set, &ev, &NoCalendars);
        times.push(t.elapsed());
        fired += out.fired.len();
    }
    let total = start.elapsed();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "rules={n_rules} tenants={tenants} events={events} fired={fired} \
         p50={:?} p99={:?} p999={:?} max={:?} throughput={:.0} events/s (one core)",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        times[times.len() - 1],
        events as f64 / total.as_secs_f64()
    );
}
