//! Analytics (issue #22): the KPI fixture day (fixtures/analytics_day.json, expected
//! figures computed by hand in docs/metrics.md) replayed through the store's own paths,
//! folded from the outbox into rollups and asserted exactly — by channel, by queue, in
//! total and as CSV; replays and restarts never count twice; drill-down lists a bucket's
//! facts; saved reports are private or shared. On both backends; part of the `storage`
//! test binary.

use parley_cases::analytics::history::History;
use parley_cases::analytics::{DrillQuery, GroupBy, KpiQuery, KpiReport, SavedReport};
use parley_cases::conversations::NewChannel;
use parley_cases::queues::QueueInput;
use parley_cases::{Actor, Role, Store, Timestamp};
use serde_json::Value;

use crate::common;
use crate::on_both;
use crate::user;

/// The fixture file, parsed.
fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/analytics_day.json")).unwrap()
}

fn ts(s: &str) -> Timestamp {
    serde_json::from_value(Value::String(s.into())).unwrap()
}

/// The fixture's tenant: queues, agents, teams, channels; then its history replayed.
async fn day(h: &common::Harness) -> (Actor, Actor) {
    let s = &h.store;
    let acme = h.tenant("acme").await;
    for q in ["Sales", "Support"] {
        let q: QueueInput = serde_json::from_value(serde_json::json!({ "name": q })).unwrap();
        s.create_queue(&acme, q).await.unwrap();
    }
    let ann = user(s, &acme, "ann@acme.test", Role::Agent).await;
    let bob = user(s, &acme, "bob@acme.test", Role::Agent).await;
    for (team, who) in [("Blue", &ann), ("Red", &bob)] {
        let t = s.create_team(&acme, team).await.unwrap();
        s.set_team_member(&acme, &t.id, who.user_id.as_deref().unwrap(), true)
            .await
            .unwrap();
    }
    for (name, kind, queue) in [("Chat", "web_chat", "Support"), ("Mail", "email", "Sales")] {
        s.create_channel(
            &acme,
            NewChannel {
                kind: kind.into(),
                name: name.into(),
                queue: Some(queue.into()),
                team_id: None,
                settings: None,
            },
        )
        .await
        .unwrap();
    }
    let sup = user(s, &acme, "sue@acme.test", Role::Supervisor).await;
    let history: History = serde_json::from_value(fixture()["history"].clone()).unwrap();
    let n = s.replay_history(&acme, &h.clock, &history).await.unwrap();
    assert_eq!(n, 9);
    (acme, sup)
}

fn query(by: GroupBy) -> KpiQuery {
    KpiQuery {
        from: ts("2026-01-05T00:00:00Z"),
        to: ts("2026-01-06T00:00:00Z"),
        group_by: by,
        ..KpiQuery::default()
    }
}

/// Asserts every metric `expected` names, exactly (3 decimals, as reported).
fn assert_row(report: &KpiReport, key: &str, expected: &Value) {
    let row = if key == "total" {
        &report.total
    } else {
        report
            .rows
            .iter()
            .find(|r| r.key == key || r.label == key)
            .unwrap_or_else(|| panic!("no row {key} in {report:#?}"))
    };
    for (id, want) in expected.as_object().unwrap() {
        let got = row
            .metrics
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no metric {id}"));
        assert_eq!(got.value, want.as_f64(), "{key}.{id}");
    }
}

async fn check_fixture(s: &Store, sup: &Actor) {
    let exp = fixture()["expected"].clone();
    let total = s.analytics_kpis(sup, &query(GroupBy::Queue)).await.unwrap();
    assert_eq!(total.grain_s, 86_400);
    assert_row(&total, "total", &exp["total"]);
    for (q, want) in exp["queue"].as_object().unwrap() {
        assert_row(&total, q, want);
    }
    let by_channel = s
        .analytics_kpis(sup, &query(GroupBy::Channel))
        .await
        .unwrap();
    for (c, want) in exp["channel"].as_object().unwrap() {
        assert_row(&by_channel, c, want);
    }
    // The same figures from the 15-minute rollups (a range not on day boundaries).
    let mut q = query(GroupBy::Channel);
    q.from = ts("2026-01-05T08:00:00Z");
    q.to = ts("2026-01-05T20:00:00Z");
    let fine = s.analytics_kpis(sup, &q).await.unwrap();
    assert_eq!(fine.grain_s, 900);
    assert_eq!(fine.rows, by_channel.rows);
    // The service level's switch: answered calls only.
    let mut q = query(GroupBy::Channel);
    q.sl_answered_only = true;
    let sl = s.analytics_kpis(sup, &q).await.unwrap();
    let v = sl
        .total
        .metrics
        .iter()
        .find(|m| m.id == "service_level")
        .unwrap();
    assert_eq!(v.value, exp["service_level_answered_only"].as_f64());
}

on_both!(the_fixture_day_gives_the_hand_computed_kpis, |h| {
    let (_acme, sup) = day(h).await;
    let s = &h.store;
    let counted = s.analytics_catch_up().await.unwrap();
    // 6 calls, 3 conversations, 2 first responses, 4 resolutions, 1 reopen, 2 CSAT.
    assert_eq!(counted, 18);
    check_fixture(s, &sup).await;

    // A replay of the same events (at-least-once delivery) counts nothing again,
    // and neither does a restart (a second store on the same database).
    assert_eq!(s.analytics_catch_up().await.unwrap(), 0);
    sqlx::query("DELETE FROM analytics_checkpoint")
        .execute(s.pool())
        .await
        .unwrap();
    let again = h.reopen().await;
    assert_eq!(again.analytics_catch_up().await.unwrap(), 0);
    check_fixture(&again, &sup).await;

    // CSV: the same figures.
    let report = s
        .analytics_kpis(&sup, &query(GroupBy::Queue))
        .await
        .unwrap();
    let csv = report.to_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..3], ["key", "label", "contacts"]);
    let total: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    assert_eq!(total[0], "total");
    let exp = fixture()["expected"]["total"].clone();
    for (id, want) in exp.as_object().unwrap() {
        let i = header.iter().position(|h| h == id).unwrap();
        let got = (!total[i].is_empty()).then(|| total[i].parse::<f64>().unwrap());
        assert_eq!(got, want.as_f64(), "csv total.{id}");
    }

    // Drill-down: the 09:00–09:15 bucket of Sales holds the first two calls.
    let sales = report.rows.iter().find(|r| r.label == "Sales").unwrap();
    let facts = s
        .analytics_drilldown(
            &sup,
            &DrillQuery {
                from: ts("2026-01-05T09:00:00Z"),
                to: ts("2026-01-05T09:15:00Z"),
                queue: Some(sales.key.clone()),
                ..DrillQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(facts.len(), 2);
    assert!(
        facts
            .iter()
            .all(|f| f.kind == "call" && f.ref_kind == "call_record")
    );
    assert_eq!(facts[0].detail, "answered");
    // The agent's team came from their membership.
    let by_team = s.analytics_kpis(&sup, &query(GroupBy::Team)).await.unwrap();
    let blue = by_team.rows.iter().find(|r| r.label == "Blue").unwrap();
    let answered = blue.metrics.iter().find(|m| m.id == "answered").unwrap();
    assert_eq!(answered.value, Some(2.0));

    // By hour: the arrivals pattern.
    let hours = s.analytics_kpis(&sup, &query(GroupBy::Hour)).await.unwrap();
    assert_eq!(hours.grain_s, 900);
    let nine = hours
        .rows
        .iter()
        .find(|r| r.key == "2026-01-05T09:00:00Z")
        .unwrap();
    assert_eq!(nine.metrics[0].value, Some(4.0));
});

on_both!(
    agents_cannot_read_analytics_and_reports_are_private_or_shared,
    |h| {
        let s = &h.store;
        let acme = h.tenant("acme").await;
        let agent = user(s, &acme, "a@acme.test", Role::Agent).await;
        let sue = user(s, &acme, "sue@acme.test", Role::Supervisor).await;
        let sam = user(s, &acme, "sam@acme.test", Role::Supervisor).await;
        assert!(
            s.analytics_kpis(&agent, &query(GroupBy::Queue))
                .await
                .is_err()
        );
        let mine: SavedReport = serde_json::from_value(serde_json::json!({
            "name": "My SL", "metrics": ["service_level", "asa_s"], "group_by": "queue",
            "period": "7d", "filters": {"channel": "voice"}
        }))
        .unwrap();
        let mine = s.save_report(&sue, mine).await.unwrap();
        let mut shared = mine.clone();
        shared.name = "Team CSAT".into();
        shared.shared = true;
        shared.metrics = vec!["csat".into()];
        s.save_report(&sue, shared).await.unwrap();
        let names = |v: Vec<SavedReport>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.reports(&sue).await.unwrap()),
            ["My SL", "Team CSAT"]
        );
        assert_eq!(names(s.reports(&sam).await.unwrap()), ["Team CSAT"]);
        let mut bad = mine.clone();
        bad.metrics = vec!["nonsense".into()];
        assert!(s.save_report(&sue, bad).await.is_err());
        // Sam cannot delete Sue's report, Sue can.
        let team = s.reports(&sam).await.unwrap().remove(0);
        assert!(s.delete_report(&sam, &team.id).await.is_err());
        s.delete_report(&sue, &team.id).await.unwrap();
        assert!(s.reports(&sam).await.unwrap().is_empty());
    }
);
