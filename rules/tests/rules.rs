//! The rules core in virtual time: triggers, conditions (as data), actions, order and
//! stop-processing, loop protection, business hours, schedules, validation.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{MINUTE, MONDAY_9, T, World, rule};
use parley_rules::{Blocked, Event, Rule, RuleSet, evaluate, holds, validate};
use serde_json::{Value, json};

#[test]
fn conditions_as_data() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("fixtures/conditions.json")).unwrap();
    let facts = json!({
        "conversation": {"priority": "P1", "channel_kind": "web_chat", "tags": ["vip", "new"],
                         "intent": "billing", "assignee_id": null},
        "message": {"text": "Where is my refund?"},
        "customer": {"attributes": {"plan": "gold"}},
        "sla": {"percent": 80}
    });
    let env = common::Weekdays {
        name: "office",
        open: 9,
        close: 17,
    };
    let ev = Event {
        id: "e",
        tenant_id: T,
        kind: "conversation.message",
        at: MONDAY_9 + 60 * MINUTE,
        facts: &facts,
        caused_by: &[],
    };
    let mut failures = Vec::new();
    for c in &cases {
        let cond = serde_json::from_value(c["condition"].clone()).unwrap();
        let got = holds(&cond, &ev, ev.at, &env);
        if Some(got) != c["expect"].as_bool() {
            failures.push(format!("{}: got {got}", c["name"]));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_new_chat_matching_a_rule_is_assigned_tagged_and_answered_by_template() {
    let mut w = World::new(vec![rule(
        "billing",
        1,
        &["conversation.message"],
        json!([{"type": "field", "field": "message.text", "op": "contains", "value": ["invoice", "refund"]}]),
        json!([
            {"type": "assign_user", "user_id": "ann"},
            {"type": "add_tags", "tags": ["billing"]},
            {"type": "reply_template", "shortcut": "welcome"}
        ]),
    )]);
    w.customer_writes("c1", "I need a refund please");
    w.customer_writes("c2", "hello");
    w.drive();
    let c1 = &w.convs["c1"];
    assert_eq!(c1.assignee.as_deref(), Some("ann"));
    assert_eq!(c1.tags, vec!["billing"]);
    assert_eq!(c1.replies, vec!["welcome"]);
    assert_eq!(
        w.convs["c2"],
        common::Conv {
            priority: "P2".into(),
            status: "open".into(),
            ..Default::default()
        }
    );
    assert_eq!(w.fired(), vec!["billing"]);
}

#[test]
fn rules_run_in_order_and_stop_processing_ends_the_evaluation() {
    let any_message = || json!([]);
    let mut w = World::new(vec![
        rule(
            "third",
            30,
            &["conversation.message"],
            any_message(),
            json!([{"type": "add_tags", "tags": ["third"]}]),
        ),
        json!({
            "id": "first", "tenant_id": T, "name": "first", "position": 10,
            "trigger": {"type": "event", "kinds": ["conversation.message"]},
            "conditions": [{"type": "field", "field": "message.text", "op": "contains", "value": "urgent"}],
            "actions": [{"type": "set_priority", "priority": "P0"}],
            "stop_processing": true
        }),
        rule(
            "second",
            20,
            &["conversation.message"],
            any_message(),
            json!([{"type": "add_tags", "tags": ["second"]}]),
        ),
    ]);
    w.customer_writes("c1", "urgent!");
    w.drive();
    assert_eq!(w.fired(), vec!["first"]);
    assert_eq!(w.convs["c1"].priority, "P0");
    w.customer_writes("c1", "still there?");
    w.drive();
    assert_eq!(w.fired(), vec!["first", "second", "third"]);
}

#[test]
fn a_rule_cannot_trigger_itself() {
    // On every update, add a fresh tag: without loop protection it would run forever.
    let mut w = World::new(vec![rule(
        "retag",
        1,
        &["conversation.message", "conversation.updated"],
        json!([]),
        json!([{"type": "add_tags", "tags": ["seen"]}, {"type": "remove_tags", "tags": ["other"]}]),
    )]);
    w.customer_writes("c1", "hi");
    w.drive();
    assert_eq!(w.fired(), vec!["retag"]);
    let last = w.steps.last().unwrap();
    assert_eq!(last.kind, "conversation.updated");
    assert_eq!(last.caused_by, vec!["retag"]);
    assert_eq!(
        last.outcome.blocked,
        vec![("retag".to_owned(), Blocked::SelfTriggered)]
    );
}

#[test]
fn two_rules_undoing_each_other_stop_after_one_round() {
    let mut w = World::new(vec![
        rule(
            "a",
            1,
            &["conversation.message", "conversation.updated"],
            json!([{"type": "field", "field": "conversation.tags", "op": "not_contains", "value": "a"}]),
            json!([{"type": "add_tags", "tags": ["a"]}, {"type": "remove_tags", "tags": ["b"]}]),
        ),
        rule(
            "b",
            2,
            &["conversation.updated"],
            json!([{"type": "field", "field": "conversation.tags", "op": "not_contains", "value": "b"}]),
            json!([{"type": "add_tags", "tags": ["b"]}, {"type": "remove_tags", "tags": ["a"]}]),
        ),
    ]);
    w.customer_writes("c1", "hi");
    w.drive();
    assert_eq!(w.fired(), vec!["a", "b"]);
    assert_eq!(w.convs["c1"].tags, vec!["b"]);
    let last = w.steps.last().unwrap();
    assert_eq!(last.caused_by, vec!["a", "b"]);
    assert_eq!(
        last.outcome.blocked,
        vec![("a".to_owned(), Blocked::SelfTriggered)]
    );
}

#[test]
fn a_chain_of_rules_stops_at_the_depth_limit() {
    let step = |n: usize| {
        rule(
            &format!("r{n}"),
            n as i64,
            &["conversation.updated"],
            json!([{"type": "field", "field": "conversation.tags", "op": "contains", "value": format!("t{}", n - 1)}]),
            json!([{"type": "add_tags", "tags": [format!("t{n}")]}]),
        )
    };
    let mut rules = vec![rule(
        "r0",
        0,
        &["conversation.message"],
        json!([]),
        json!([{"type": "add_tags", "tags": ["t0"]}]),
    )];
    rules.extend((1..=5).map(step));
    let mut w = World::new(rules);
    w.customer_writes("c1", "hi");
    w.drive();
    assert_eq!(w.fired(), vec!["r0", "r1", "r2"]);
    assert_eq!(w.convs["c1"].tags, vec!["t0", "t1", "t2"]);
    let last = w.steps.last().unwrap();
    assert_eq!(last.caused_by.len(), parley_rules::MAX_DEPTH);
    // r1 and r2 still match but stand in the chain; r3 would be one hop too many.
    assert_eq!(
        last.outcome.blocked,
        vec![
            ("r1".to_owned(), Blocked::SelfTriggered),
            ("r2".to_owned(), Blocked::SelfTriggered),
            ("r3".to_owned(), Blocked::DepthLimit)
        ]
    );
}

#[test]
fn business_hours_decide_across_the_week_in_virtual_time() {
    let mut w = World::new(vec![rule(
        "after-hours",
        1,
        &["conversation.message"],
        json!([{"type": "business_hours", "calendar": "office", "open": false}]),
        json!([{"type": "reply_template", "shortcut": "closed"}]),
    )]);
    // Monday 09:00 … 16:59 open; 17:00 closed; Saturday closed all day.
    for (offset, expect) in [
        (0, 0),
        (7 * 60 + 59, 0),
        (8 * 60, 1),
        (5 * 24 * 60 + 60, 2), // Saturday 10:00
        (7 * 24 * 60 + 30, 2), // next Monday 09:30
    ] {
        w.now = MONDAY_9 + offset * MINUTE;
        w.customer_writes("c1", "anyone?");
        w.drive();
        assert_eq!(w.convs["c1"].replies.len(), expect, "at +{offset} min");
    }
}

#[test]
fn rules_of_another_tenant_never_see_the_event() {
    let mut other = rule(
        "other",
        1,
        &["conversation.message"],
        json!([]),
        json!([{"type": "add_tags", "tags": ["x"]}]),
    );
    other["tenant_id"] = json!("tenant-b");
    let mut w = World::new(vec![other]);
    w.customer_writes("c1", "hi");
    w.drive();
    assert!(w.fired().is_empty());
}

#[test]
fn disabled_rules_never_fire() {
    let mut r = rule(
        "off",
        1,
        &["conversation.message"],
        json!([]),
        json!([{"type": "add_tags", "tags": ["x"]}]),
    );
    r["enabled"] = json!(false);
    let mut w = World::new(vec![r]);
    w.customer_writes("c1", "hi");
    w.drive();
    assert!(w.fired().is_empty());
}

#[test]
fn schedules_are_due_by_period_and_fire_only_their_own_rule() {
    let sched = |id: &str, every: u32| -> Rule {
        serde_json::from_value(json!({
            "id": id, "tenant_id": T, "name": id,
            "trigger": {"type": "schedule", "every_minutes": every},
            "actions": [{"type": "add_note", "text": "tick"}]
        }))
        .unwrap()
    };
    let set = RuleSet::new(vec![sched("hourly", 60), sched("daily", 1440)]);
    let mut last = HashMap::new();
    let ids = |v: Vec<&Rule>| v.into_iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(set.due_schedules(MONDAY_9, &last)),
        vec!["daily", "hourly"]
    );
    last.insert("hourly".to_owned(), MONDAY_9);
    last.insert("daily".to_owned(), MONDAY_9);
    assert!(set.due_schedules(MONDAY_9 + 59 * MINUTE, &last).is_empty());
    assert_eq!(
        ids(set.due_schedules(MONDAY_9 + 60 * MINUTE, &last)),
        vec!["hourly"]
    );
    let facts = json!({"rule_id": "hourly"});
    let tick = Event {
        id: "tick",
        tenant_id: T,
        kind: parley_rules::SCHEDULE_TICK,
        at: MONDAY_9,
        facts: &facts,
        caused_by: &[],
    };
    let out = evaluate(MONDAY_9, &set, &tick, &parley_rules::NoCalendars);
    assert_eq!(out.fired.len(), 1);
    assert_eq!(out.fired[0].rule_id, "hourly");
    let wrong = Event {
        tenant_id: "tenant-b",
        ..tick
    };
    assert!(
        evaluate(MONDAY_9, &set, &wrong, &parley_rules::NoCalendars)
            .fired
            .is_empty()
    );
}

#[test]
fn validation_names_the_field() {
    let bad = |patch: Value| -> String {
        let mut r = rule(
            "r",
            1,
            &["conversation.message"],
            json!([]),
            json!([{"type": "add_tags", "tags": ["x"]}]),
        );
        for (k, v) in patch.as_object().unwrap() {
            r[k] = v.clone();
        }
        let r: Rule = serde_json::from_value(r).unwrap();
        validate(&r).unwrap_err().field().unwrap().to_owned()
    };
    assert_eq!(bad(json!({"name": " "})), "name");
    assert_eq!(
        bad(json!({"trigger": {"type": "event", "kinds": []}})),
        "trigger.kinds"
    );
    assert_eq!(
        bad(json!({"trigger": {"type": "schedule", "every_minutes": 0}})),
        "trigger.every_minutes"
    );
    assert_eq!(bad(json!({"actions": []})), "actions");
    assert_eq!(
        bad(
            json!({"actions": [{"type": "add_tags", "tags": ["x"]}, {"type": "set_priority", "priority": "urgent"}]})
        ),
        "actions[1].priority"
    );
    assert_eq!(
        bad(
            json!({"conditions": [{"type": "any", "of": [{"type": "field", "field": "a..b", "op": "eq", "value": 1}]}]})
        ),
        "conditions[0].of[0].field"
    );
    assert_eq!(
        bad(json!({"actions": [{"type": "call_webhook", "url": "ftp://x"}]})),
        "actions[0].url"
    );
    // An unknown action is a shape error, not silently ignored.
    let unknown = json!({"id": "r", "tenant_id": T, "name": "r", "trigger": {"type": "event", "kinds": ["x"]},
                         "actions": [{"type": "format_disk"}]});
    assert!(serde_json::from_value::<Rule>(unknown).is_err());
}
