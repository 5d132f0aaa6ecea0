//! The pure part of analytics: committed events → facts ([`facts_of`]) and facts →
//! rollup measures ([`fold`]). No I/O and no clock: every time comes from the event.
//! Definitions: docs/metrics.md.

use std::collections::HashMap;

use serde_json::Value;

use crate::DomainEvent;
use crate::Timestamp;

/// The measures a rollup row holds, in column order (`analytics_rollups`).
pub const MEASURES: [&str; STORED] = [
    "contacts",
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "sl_met",
    "wait_answered_ms",
    "talk_ms",
    "hold_ms",
    "wrap_ms",
    "transfers",
    "callbacks_requested",
    "callbacks_kept",
    "frt_n",
    "frt_ms",
    "resolved",
    "resolution_ms",
    "reopened",
    "csat_n",
    "csat_positive",
    "nps_n",
    "nps_promoters",
    "nps_detractors",
    "res_b0",
    "res_b1",
    "res_b2",
    "res_b3",
    "res_b4",
    "res_b5",
    "res_b6",
    "res_b7",
    "res_b8",
    "res_b9",
    "res_b10",
    "calls_offered",
];

/// How many measures a rollup row stores.
pub const STORED: usize = 35;

/// Index of a measure in [`Measures`].
#[allow(missing_docs)]
pub mod m {
    pub const CONTACTS: usize = 0;
    pub const OFFERED: usize = 1;
    pub const ANSWERED: usize = 2;
    pub const ABANDONED: usize = 3;
    pub const SHORT_ABANDONED: usize = 4;
    pub const SL_MET: usize = 5;
    pub const WAIT_ANSWERED_MS: usize = 6;
    pub const TALK_MS: usize = 7;
    pub const HOLD_MS: usize = 8;
    pub const WRAP_MS: usize = 9;
    pub const TRANSFERS: usize = 10;
    pub const CALLBACKS_REQUESTED: usize = 11;
    pub const CALLBACKS_KEPT: usize = 12;
    pub const FRT_N: usize = 13;
    pub const FRT_MS: usize = 14;
    pub const RESOLVED: usize = 15;
    pub const RESOLUTION_MS: usize = 16;
    pub const REOPENED: usize = 17;
    pub const CSAT_N: usize = 18;
    pub const CSAT_POSITIVE: usize = 19;
    pub const NPS_N: usize = 20;
    pub const NPS_PROMOTERS: usize = 21;
    pub const NPS_DETRACTORS: usize = 22;
    /// The first resolution-time bin (`res_b0`); there are [`super::RES_BINS`].
    pub const RES_B0: usize = 23;
    pub const CALLS_OFFERED: usize = 34;
}

/// Upper edges (seconds, inclusive) of the resolution-time bins `res_b0..res_b9`;
/// `res_b10` holds everything longer than 7 days.
pub const RES_BIN_EDGES_S: [i64; 10] = [
    300, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 86_400, 172_800, 604_800,
];

/// Number of resolution-time bins.
pub const RES_BINS: usize = 11;

/// A call abandoned after waiting less than this is a *short abandon* (docs/metrics.md).
pub const SHORT_ABANDON_MS: i64 = 5_000;

/// A reopen within this long after a resolution makes it not a first-contact
/// resolution.
pub const FCR_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// Rollup grains (seconds): 15 minutes and a UTC day.
pub const GRAINS_S: [i64; 2] = [900, 86_400];

/// Additive measures of one rollup row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measures(pub [i64; STORED]);

impl Default for Measures {
    fn default() -> Self {
        Measures([0; STORED])
    }
}

impl Measures {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Measures) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// One measure.
    pub fn get(&self, i: usize) -> i64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    fn set(&mut self, i: usize, v: i64) {
        if let Some(x) = self.0.get_mut(i) {
            *x = v;
        }
    }
}

/// The dimensions of a fact and of a rollup row ('' when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims {
    /// `voice`, or the text channel's kind (`web_chat`, `email`, …).
    pub channel: String,
    /// Queue id.
    pub queue_id: String,
    /// Agent (user) id.
    pub agent_id: String,
    /// Team id.
    pub team_id: String,
    /// `P0`..`P3`.
    pub priority: String,
    /// Intent (from triage; '' until triage records one).
    pub intent: String,
}

/// One thing that happened, as analytics counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Deterministic key: the same event always yields the same key (replays count once).
    pub key: String,
    /// `call`, `conversation`, `first_response`, `resolution`, `reopen`, `csat`, `nps`,
    /// `callback_kept`.
    pub kind: &'static str,
    /// When it counts (its bucket).
    pub at: Timestamp,
    /// Dimensions.
    pub dims: Dims,
    /// `call_record`, `conversation`, `interaction`, `callback`.
    pub ref_kind: &'static str,
    /// The id of what it is about (drill-down opens it).
    pub ref_id: String,
    /// Its duration (ms) or score.
    pub value: Option<i64>,
    /// A word on it (call outcome, survey).
    pub detail: String,
    /// What it adds to its rollups.
    pub measures: Measures,
}

/// A rollup row's key: grain, bucket start, dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// 900 or 86400.
    pub grain_s: i64,
    /// Bucket start, ms.
    pub bucket: i64,
    /// Dimensions.
    pub dims: Dims,
}

/// The start of the bucket of `grain_s` seconds holding `at` (UTC).
pub fn bucket_of(at: Timestamp, grain_s: i64) -> i64 {
    let g = grain_s.max(1) * 1000;
    at.0 - at.0.rem_euclid(g)
}

/// Folds a fact into a rollup row: the rollup is the sum of its facts' measures.
pub fn fold(rollup: &mut Measures, fact: &Fact) {
    rollup.add(&fact.measures);
}

/// Folds `fact` into the two rollup rows it belongs to (15 minutes, day) in `rows`.
pub fn fold_into(rows: &mut HashMap<RollupKey, Measures>, fact: &Fact) {
    for g in GRAINS_S {
        let key = RollupKey {
            grain_s: g,
            bucket: bucket_of(fact.at, g),
            dims: fact.dims.clone(),
        };
        fold(rows.entry(key).or_default(), fact);
    }
}

/// The resolution-time bin of a duration.
pub fn res_bin(ms: i64) -> usize {
    let s = (ms.max(0) + 999) / 1000;
    RES_BIN_EDGES_S
        .iter()
        .position(|e| s <= *e)
        .unwrap_or(RES_BINS - 1)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn ts(v: &Value, k: &str) -> Option<Timestamp> {
    v.get(k)
        .and_then(|x| serde_json::from_value::<Timestamp>(x.clone()).ok())
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// The facts an event yields (none for most events). Pure. `committed_at` (the
/// outbox row's time) dates facts whose event carries no time of its own.
pub fn facts_of(e: &DomainEvent, committed_at: Timestamp) -> Vec<Fact> {
    let d = &e.data;
    match e.kind {
        "call.ended" => call_facts(d),
        "conversation.opened" => conversation_opened(d).into_iter().collect(),
        "conversation.message" => first_response(d).into_iter().collect(),
        "conversation.status_changed" => status_facts(d),
        "conversation.updated" => conversation_csat(d).into_iter().collect(),
        "interaction.csat" => interaction_survey(d, committed_at).into_iter().collect(),
        "callback.changed" => callback_kept(d).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn conv_dims(c: &Value) -> Dims {
    Dims {
        channel: s(c, "channel").to_owned(),
        queue_id: s(c, "queue_id").to_owned(),
        agent_id: s(c, "assignee_id").to_owned(),
        team_id: s(c, "team_id").to_owned(),
        priority: s(c, "priority").to_owned(),
        intent: String::new(),
    }
}

fn call_facts(r: &Value) -> Vec<Fact> {
    let id = s(r, "id");
    let Some(started) = ts(r, "started_at") else {
        return Vec::new();
    };
    if id.is_empty() {
        return Vec::new();
    }
    let queued = !s(r, "queue_id").is_empty() && ts(r, "enqueued_at").is_some();
    let answered = queued && ts(r, "answered_at").is_some();
    let outcome = s(r, "outcome");
    let abandoned = queued && !answered && outcome == "abandoned";
    let wait = int(r, "wait_ms").max(0);
    let mut m = Measures::default();
    m.set(m::CONTACTS, 1);
    m.set(m::OFFERED, i64::from(queued));
    m.set(m::CALLS_OFFERED, i64::from(queued));
    m.set(m::ANSWERED, i64::from(answered));
    m.set(m::ABANDONED, i64::from(abandoned));
    m.set(
        m::SHORT_ABANDONED,
        i64::from(abandoned && wait < SHORT_ABANDON_MS),
    );
    let sl = r.get("sl_met").and_then(Value::as_bool).unwrap_or(false);
    m.set(m::SL_MET, i64::from(answered && sl));
    if answered {
        m.set(m::WAIT_ANSWERED_MS, wait);
        m.set(m::TALK_MS, int(r, "talk_ms").max(0));
        m.set(m::WRAP_MS, int(r, "wrap_ms").max(0));
        let legs = r
            .get("agents")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter(|l| s(l, "outcome") == "answered").count())
            .unwrap_or(0);
        m.set(
            m::TRANSFERS,
            i64::try_from(legs.saturating_sub(1)).unwrap_or(0),
        );
    }
    m.set(
        m::CALLBACKS_REQUESTED,
        i64::from(queued && outcome == "callback"),
    );
    vec![Fact {
        key: format!("call:{id}"),
        kind: "call",
        at: started,
        dims: Dims {
            channel: "voice".into(),
            queue_id: s(r, "queue_id").to_owned(),
            agent_id: s(r, "agent_id").to_owned(),
            ..Dims::default()
        },
        ref_kind: "call_record",
        ref_id: id.to_owned(),
        value: Some(if answered {
            int(r, "talk_ms") + int(r, "wrap_ms")
        } else {
            wait
        }),
        detail: outcome.to_owned(),
        measures: m,
    }]
}

fn conversation_opened(c: &Value) -> Option<Fact> {
    let id = s(c, "id");
    let at = ts(c, "created_at")?;
    if id.is_empty() {
        return None;
    }
    let mut m = Measures::default();
    m.set(m::CONTACTS, 1);
    m.set(m::OFFERED, i64::from(!s(c, "queue_id").is_empty()));
    Some(Fact {
        key: format!("conv:{id}"),
        kind: "conversation",
        at,
        dims: conv_dims(c),
        ref_kind: "conversation",
        ref_id: id.to_owned(),
        value: None,
        detail: s(c, "status").to_owned(),
        measures: m,
    })
}

fn first_response(d: &Value) -> Option<Fact> {
    let c = d.get("conversation")?;
    let msg = d.get("message")?;
    let human_public = s(msg, "direction") == "outbound"
        && s(msg, "author") == "agent"
        && !msg.get("private").and_then(Value::as_bool).unwrap_or(false);
    if !human_public {
        return None;
    }
    let id = s(c, "id");
    let created = ts(c, "created_at")?;
    let at = ts(msg, "created_at")?;
    if id.is_empty() {
        return None;
    }
    let ms = (at.0 - created.0).max(0);
    let mut m = Measures::default();
    m.set(m::FRT_N, 1);
    m.set(m::FRT_MS, ms);
    let mut dims = conv_dims(c);
    let author = s(msg, "author_user_id");
    if !author.is_empty() {
        author.clone_into(&mut dims.agent_id);
    }
    Some(Fact {
        key: format!("frt:{id}"),
        kind: "first_response",
        at,
        dims,
        ref_kind: "conversation",
        ref_id: id.to_owned(),
        value: Some(ms),
        detail: String::new(),
        measures: m,
    })
}

fn status_facts(c: &Value) -> Vec<Fact> {
    let id = s(c, "id");
    let (Some(created), Some(resolved_at)) = (ts(c, "created_at"), ts(c, "resolved_at")) else {
        return Vec::new();
    };
    if id.is_empty() {
        return Vec::new();
    }
    let status = s(c, "status");
    let mut m = Measures::default();
    match status {
        "resolved" => {
            let ms = (resolved_at.0 - created.0).max(0);
            m.set(m::RESOLVED, 1);
            m.set(m::RESOLUTION_MS, ms);
            m.set(m::RES_B0 + res_bin(ms), 1);
            vec![Fact {
                key: format!("res:{id}:{}", resolved_at.0),
                kind: "resolution",
                at: resolved_at,
                dims: conv_dims(c),
                ref_kind: "conversation",
                ref_id: id.to_owned(),
                value: Some(ms),
                detail: String::new(),
                measures: m,
            }]
        }
        "open" | "pending" => {
            // Reopened (the customer wrote again, an agent reopened it) within the FCR
            // window of its last resolution: that resolution was not a first-contact
            // one. It counts in the resolution's bucket.
            let Some(now) = ts(c, "updated_at") else {
                return Vec::new();
            };
            if now.0 < resolved_at.0 || now.0 - resolved_at.0 > FCR_WINDOW_MS {
                return Vec::new();
            }
            m.set(m::REOPENED, 1);
            vec![Fact {
                key: format!("reopen:{id}:{}", resolved_at.0),
                kind: "reopen",
                at: resolved_at,
                dims: conv_dims(c),
                ref_kind: "conversation",
                ref_id: id.to_owned(),
                value: Some(now.0 - resolved_at.0),
                detail: status.to_owned(),
                measures: m,
            }]
        }
        _ => Vec::new(),
    }
}

fn conversation_csat(c: &Value) -> Option<Fact> {
    let csat = c.get("csat").filter(|v| !v.is_null())?;
    let id = s(c, "id");
    let score = int(csat, "score");
    let at = ts(csat, "at")?;
    if id.is_empty() || !(1..=5).contains(&score) {
        return None;
    }
    let mut m = Measures::default();
    m.set(m::CSAT_N, 1);
    m.set(m::CSAT_POSITIVE, i64::from(score >= 4));
    Some(Fact {
        key: format!("csat:{id}"),
        kind: "csat",
        at,
        dims: conv_dims(c),
        ref_kind: "conversation",
        ref_id: id.to_owned(),
        value: Some(score),
        detail: "csat".into(),
        measures: m,
    })
}

/// A call's survey answer (`interaction.csat`): survey `nps` (0–10) feeds NPS, any other
/// survey scored 1–5 feeds CSAT. Dated by its commit.
fn interaction_survey(d: &Value, at: Timestamp) -> Option<Fact> {
    let id = s(d, "interaction_id");
    let score = int(d, "score");
    let survey = s(d, "survey");
    if id.is_empty() {
        return None;
    }
    let mut m = Measures::default();
    let kind = if survey == "nps" {
        if !(0..=10).contains(&score) {
            return None;
        }
        m.set(m::NPS_N, 1);
        m.set(m::NPS_PROMOTERS, i64::from(score >= 9));
        m.set(m::NPS_DETRACTORS, i64::from(score <= 6));
        "nps"
    } else {
        if !(1..=5).contains(&score) {
            return None;
        }
        m.set(m::CSAT_N, 1);
        m.set(m::CSAT_POSITIVE, i64::from(score >= 4));
        "csat"
    };
    Some(Fact {
        key: format!("{kind}:i:{id}"),
        kind,
        at,
        dims: Dims {
            channel: "voice".into(),
            ..Dims::default()
        },
        ref_kind: "interaction",
        ref_id: id.to_owned(),
        value: Some(score),
        detail: survey.to_owned(),
        measures: m,
    })
}

fn callback_kept(cb: &Value) -> Option<Fact> {
    if s(cb, "state") != "connected" {
        return None;
    }
    let id = s(cb, "id");
    let at = ts(cb, "updated_at")?;
    if id.is_empty() {
        return None;
    }
    let mut m = Measures::default();
    m.set(m::CALLBACKS_KEPT, 1);
    Some(Fact {
        key: format!("cbkept:{id}"),
        kind: "callback_kept",
        at,
        dims: Dims {
            channel: "voice".into(),
            queue_id: s(cb, "queue_id").to_owned(),
            ..Dims::default()
        },
        ref_kind: "callback",
        ref_id: id.to_owned(),
        value: Some((at.0 - ts(cb, "since").map_or(at.0, |t| t.0)).max(0)),
        detail: String::new(),
        measures: m,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn facts_of_t(e: &DomainEvent) -> Vec<Fact> {
        facts_of(e, Timestamp(0))
    }

    fn ev(kind: &'static str, data: Value) -> DomainEvent {
        let mut e = DomainEvent::new("t", kind, &data);
        e.data = data;
        e
    }

    #[test]
    fn measures_and_names_line_up() {
        assert_eq!(MEASURES[m::RES_B0], "res_b0");
        assert_eq!(MEASURES[m::RES_B0 + RES_BINS - 1], "res_b10");
        assert_eq!(MEASURES[m::NPS_DETRACTORS], "nps_detractors");
        assert_eq!(MEASURES[m::CALLS_OFFERED], "calls_offered");
    }

    #[test]
    fn a_short_abandon_is_offered_abandoned_and_short() {
        let f = facts_of_t(&ev(
            "call.ended",
            json!({"id": "c1", "queue_id": "q", "started_at": "2026-01-05T09:00:10Z",
                   "enqueued_at": "2026-01-05T09:00:12Z", "wait_ms": 3000, "talk_ms": 0,
                   "wrap_ms": 0, "outcome": "abandoned", "sl_met": false, "agents": []}),
        ));
        assert_eq!(f.len(), 1);
        let m = f[0].measures;
        assert_eq!(
            (
                m.get(m::OFFERED),
                m.get(m::ABANDONED),
                m.get(m::SHORT_ABANDONED)
            ),
            (1, 1, 1)
        );
        assert_eq!(m.get(m::ANSWERED), 0);
        assert_eq!(f[0].key, "call:c1");
    }

    #[test]
    fn bot_and_private_replies_are_not_first_responses() {
        let conv = json!({"id": "v1", "created_at": "2026-01-05T09:00:00Z", "channel": "web_chat"});
        for (author, private) in [("bot", false), ("agent", true), ("customer", false)] {
            let d = json!({"conversation": conv, "message": {"direction": if author == "customer" {"inbound"} else {"outbound"},
                "author": author, "private": private, "created_at": "2026-01-05T09:01:00Z"}});
            assert!(
                facts_of_t(&ev("conversation.message", d)).is_empty(),
                "{author}"
            );
        }
        let d = json!({"conversation": conv, "message": {"direction": "outbound", "author": "agent",
            "author_user_id": "u1", "private": false, "created_at": "2026-01-05T09:01:30Z"}});
        let f = facts_of_t(&ev("conversation.message", d));
        assert_eq!(f[0].value, Some(90_000));
        assert_eq!(f[0].dims.agent_id, "u1");
    }

    #[test]
    fn a_reopen_counts_in_its_resolutions_bucket_within_seven_days_only() {
        let c = |updated: &str| {
            json!({"id": "v1", "status": "open", "created_at": "2026-01-05T09:00:00Z",
               "resolved_at": "2026-01-05T10:00:00Z", "updated_at": updated})
        };
        let f = facts_of_t(&ev(
            "conversation.status_changed",
            c("2026-01-06T10:00:00Z"),
        ));
        assert_eq!(
            f[0].at,
            ts(&json!({"t": "2026-01-05T10:00:00Z"}), "t").unwrap()
        );
        assert!(
            facts_of_t(&ev(
                "conversation.status_changed",
                c("2026-01-13T10:00:01Z")
            ))
            .is_empty()
        );
    }

    #[test]
    fn folding_is_summing_into_both_grains() {
        let f = facts_of_t(&ev(
            "conversation.opened",
            json!({"id": "v1", "created_at": "2026-01-05T09:20:00Z", "channel": "email", "queue_id": "q"}),
        ));
        let mut rows = HashMap::new();
        fold_into(&mut rows, &f[0]);
        fold_into(&mut rows, &f[0]);
        assert_eq!(rows.len(), 2);
        for (k, v) in &rows {
            assert_eq!(v.get(m::CONTACTS), 2);
            assert_eq!(k.bucket % (k.grain_s * 1000), 0);
        }
    }

    #[test]
    fn resolution_bins_have_inclusive_upper_edges() {
        assert_eq!(res_bin(300_000), 0);
        assert_eq!(res_bin(300_001), 1);
        assert_eq!(res_bin(604_800_000), 9);
        assert_eq!(res_bin(604_800_001), 10);
    }
}
