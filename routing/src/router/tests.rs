#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use parley_cases::routing::SkillRequirement;

const T: &str = "tenant";

fn t(s: i64) -> Timestamp {
    Timestamp(s * 1000)
}

fn drain(r: &mut Router) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn offers(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offer { item, agent, .. } => Some((item.clone(), agent.clone())),
            _ => None,
        })
        .collect()
}

/// The agent the item is offered to answers.
fn answer(r: &mut Router, now: Timestamp, item: &str) {
    let agent = r.offered_to(item).unwrap().to_owned();
    r.answered(now, item, &agent).unwrap();
}

fn available(r: &mut Router, now: Timestamp, cfg: AgentConfig) {
    let id = cfg.id.clone();
    r.upsert_agent(now, cfg);
    r.set_status(now, &id, AgentStatus::Available);
}

fn sales() -> QueueConfig {
    let mut q = QueueConfig::new("sales", T, "Sales");
    q.skills = vec![SkillRequirement {
        skill: "spanish".into(),
        min_proficiency: 3,
    }];
    q
}

#[test]
fn the_longest_idle_agent_with_the_skill_gets_the_call() {
    let mut r = Router::default();
    r.upsert_queue(sales());
    // bob: idle longest but no Spanish; cid: Spanish 2 (below the minimum); ann: idle
    // longer than dan, both fluent.
    available(&mut r, t(0), AgentConfig::new("bob", T));
    available(&mut r, t(1), AgentConfig::new("cid", T).skill("spanish", 2));
    available(&mut r, t(2), AgentConfig::new("ann", T).skill("spanish", 4));
    available(&mut r, t(3), AgentConfig::new("dan", T).skill("spanish", 5));
    drain(&mut r);
    r.enqueue(t(10), NewItem::call("c1", T, "sales")).unwrap();
    let out = drain(&mut r);
    assert_eq!(offers(&out), [("c1".into(), "ann".into())]);
    assert_eq!(r.presence("ann"), Some(Presence::Ringing));
    assert!(out.contains(&Output::Presence {
        tenant_id: T.into(),
        agent: "ann".into(),
        presence: Presence::Ringing
    }));
}

#[test]
fn most_skilled_and_round_robin_pick_by_their_rule() {
    let mut r = Router::default();
    let mut q = sales();
    q.strategy = Strategy::MostSkilled;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T).skill("spanish", 3));
    available(&mut r, t(1), AgentConfig::new("dan", T).skill("spanish", 5));
    drain(&mut r);
    r.enqueue(t(5), NewItem::call("c1", T, "sales")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "dan".into())]);

    let mut r = Router::default();
    let mut q = QueueConfig::new("rr", T, "RR");
    q.strategy = Strategy::RoundRobin;
    q.wrap_up_s = 0;
    r.upsert_queue(q);
    for a in ["a", "b", "c"] {
        available(&mut r, t(0), AgentConfig::new(a, T));
    }
    let mut got = Vec::new();
    for n in 0..6 {
        let id = format!("c{n}");
        r.enqueue(t(n), NewItem::call(&id, T, "rr")).unwrap();
        let o = offers(&drain(&mut r));
        got.push(o[0].1.clone());
        answer(&mut r, t(n), &id);
        r.completed(t(n), &id);
    }
    assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn no_answer_rings_the_next_agent_and_misses_in_a_row_set_away() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("q", T, "Q");
    q.ring_timeout_s = 10;
    q.max_missed_offers = 2;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    available(&mut r, t(1), AgentConfig::new("bob", T));
    drain(&mut r);
    r.enqueue(t(5), NewItem::call("c1", T, "q")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "ann".into())]);
    assert_eq!(r.poll_timeout(), Some(t(15)));
    r.handle_timeout(t(15));
    let out = drain(&mut r);
    assert!(out.contains(&Output::Revoke {
        item: "c1".into(),
        agent: "ann".into()
    }));
    assert_eq!(offers(&out), [("c1".into(), "bob".into())]);
    // bob's phone says no answer early; ann is not offered the same call again within
    // a ring timeout of her miss (t 15 + 10), then is, misses again and is set away
    // after two misses in a row.
    r.missed(t(18), "c1", Missed::NoAnswer).unwrap();
    assert!(offers(&drain(&mut r)).is_empty());
    assert_eq!(r.poll_timeout(), Some(t(25)));
    r.handle_timeout(t(25));
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "ann".into())]);
    // bob may have it again from t 28.
    r.handle_timeout(t(35));
    let out = drain(&mut r);
    assert_eq!(
        r.status("ann"),
        Some(AgentStatus::Away {
            reason: "missed_offers".into()
        })
    );
    assert!(out.contains(&Output::Presence {
        tenant_id: T.into(),
        agent: "ann".into(),
        presence: Presence::Away {
            reason: "missed_offers".into()
        }
    }));
    assert_eq!(offers(&out), [("c1".into(), "bob".into())]);
    // A rejection (busy) is not a miss; an unreachable phone sets the agent away.
    r.missed(t(36), "c1", Missed::Rejected).unwrap();
    assert_eq!(r.status("bob"), Some(AgentStatus::Available));
    r.handle_timeout(t(51));
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "bob".into())]);
    r.missed(t(52), "c1", Missed::Unreachable).unwrap();
    assert_eq!(
        r.status("bob"),
        Some(AgentStatus::Away {
            reason: "no_phone".into()
        })
    );
}

#[test]
fn wrap_up_follows_a_call_then_the_agent_is_available() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("q", T, "Q");
    q.wrap_up_s = 30;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    r.enqueue(t(1), NewItem::call("c1", T, "q")).unwrap();
    answer(&mut r, t(3), "c1");
    assert_eq!(r.presence("ann"), Some(Presence::OnCall));
    r.enqueue(t(4), NewItem::call("c2", T, "q")).unwrap();
    drain(&mut r);
    r.completed(t(63), "c1");
    assert_eq!(r.presence("ann"), Some(Presence::WrapUp { until: t(93) }));
    assert!(offers(&drain(&mut r)).is_empty());
    assert_eq!(r.poll_timeout(), Some(t(93)));
    r.handle_timeout(t(93));
    let out = drain(&mut r);
    assert_eq!(offers(&out), [("c2".into(), "ann".into())]);
    // AHT: 60 s talk + 30 s wrap-up.
    let m = &r.metrics(t(93), T)[0];
    assert_eq!(m.aht_s, 90);
}

#[test]
fn priority_and_aging_order_the_queue() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("q", T, "Q");
    q.priority_aging_per_min = 1;
    r.upsert_queue(q);
    r.enqueue(t(0), NewItem::call("old", T, "q")).unwrap();
    r.enqueue(
        t(100),
        NewItem {
            priority: 2,
            ..NewItem::call("vip", T, "q")
        },
    )
    .unwrap();
    r.enqueue(
        t(110),
        NewItem {
            priority: 1,
            ..NewItem::call("mid", T, "q")
        },
    )
    .unwrap();
    // At 130 s "old" has aged 2 points and ties "vip" (earlier wins); "mid" has 1.
    assert_eq!(r.position(t(130), "old").unwrap().0, 1);
    assert_eq!(r.position(t(130), "vip").unwrap().0, 2);
    assert_eq!(r.position(t(130), "mid").unwrap().0, 3);
    // Before aging, vip goes first.
    assert_eq!(r.position(t(101), "vip").unwrap().0, 1);
}

#[test]
fn overflow_and_max_wait() {
    let mut r = Router::default();
    let mut a = QueueConfig::new("a", T, "A");
    a.overflow = Some(("b".into(), 30));
    a.max_wait_s = Some(100);
    a.max_wait_action = MaxWaitAction::Callback;
    r.upsert_queue(a);
    let mut b = QueueConfig::new("b", T, "B");
    b.max_wait_s = Some(100);
    b.skills = vec![SkillRequirement {
        skill: "x".into(),
        min_proficiency: 1,
    }];
    r.upsert_queue(b);
    r.enqueue(t(0), NewItem::call("c1", T, "a")).unwrap();
    assert_eq!(r.poll_timeout(), Some(t(30)));
    r.handle_timeout(t(30));
    assert_eq!(
        drain(&mut r),
        [Output::Overflowed {
            item: "c1".into(),
            from: "a".into(),
            to: "b".into()
        }]
    );
    // In b: an agent with b's skill takes it.
    available(&mut r, t(40), AgentConfig::new("ann", T));
    assert!(offers(&drain(&mut r)).is_empty());
    r.enqueue(t(41), NewItem::call("c2", T, "b")).unwrap();
    r.callback("c2").unwrap();
    // Max wait counts from the first enqueue: 100 s; b's action is voicemail.
    assert_eq!(r.poll_timeout(), Some(t(100)));
    r.handle_timeout(t(100));
    assert_eq!(
        drain(&mut r),
        [Output::MaxWait {
            item: "c1".into(),
            action: MaxWaitAction::Voicemail
        }]
    );
    // The callback never times out.
    r.handle_timeout(t(500));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.position(t(500), "c2"), Some((1, 180)));
}

#[test]
fn a_callback_keeps_its_place() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    r.enqueue(t(0), NewItem::call("first", T, "q")).unwrap();
    r.enqueue(t(1), NewItem::call("second", T, "q")).unwrap();
    r.callback("first").unwrap();
    assert_eq!(r.position(t(2), "first").map(|p| p.0), Some(1));
    available(&mut r, t(3), AgentConfig::new("ann", T));
    assert_eq!(offers(&drain(&mut r)), [("first".into(), "ann".into())]);
    assert_eq!(r.metrics(t(3), T)[0].callbacks, 1);
}

#[test]
fn a_callback_requested_later_keeps_the_original_place() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    r.enqueue(t(5), NewItem::call("later", T, "q")).unwrap();
    // The caller waited since t(1), left through the flow's callback exit and asked
    // for a callback at t(9): it goes ahead of the one who came at t(5).
    r.enqueue_callback(t(9), NewItem::call("cb", T, "q"), t(1))
        .unwrap();
    assert_eq!(r.position(t(10), "cb").map(|p| p.0), Some(1));
    assert_eq!(r.position(t(10), "later").map(|p| p.0), Some(2));
    assert_eq!(r.metrics(t(10), T)[0].callbacks, 1);
    available(&mut r, t(11), AgentConfig::new("ann", T));
    assert_eq!(offers(&drain(&mut r)), [("cb".into(), "ann".into())]);
}

#[test]
fn capacity_per_channel() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("chat", T, "Chat"));
    available(&mut r, t(0), AgentConfig::new("ann", T));
    for n in 0..4 {
        let id = format!("m{n}");
        r.enqueue(
            t(1),
            NewItem {
                channel: Channel::Chat,
                ..NewItem::call(&id, T, "chat")
            },
        )
        .unwrap();
        for (item, _) in offers(&drain(&mut r)) {
            answer(&mut r, t(1), &item);
        }
    }
    // Three chats at once, the fourth waits.
    assert_eq!(r.metrics(t(2), T)[0].in_progress, 3);
    assert_eq!(r.metrics(t(2), T)[0].waiting, 1);
    assert_eq!(r.presence("ann"), Some(Presence::OnCall));
    r.completed(t(3), "m0");
    assert_eq!(offers(&drain(&mut r)), [("m3".into(), "ann".into())]);
}

#[test]
fn metrics_service_level_abandonment_and_ewt() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("q", T, "Q");
    q.sl_threshold_s = 20;
    q.wrap_up_s = 0;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    available(&mut r, t(0), AgentConfig::new("bob", T));
    // Both busy on long calls.
    for (id, at) in [("a", 1), ("b", 2)] {
        r.enqueue(t(at), NewItem::call(id, T, "q")).unwrap();
        answer(&mut r, t(at + 5), id);
    }
    r.enqueue(t(10), NewItem::call("late", T, "q")).unwrap();
    r.enqueue(t(11), NewItem::call("gone", T, "q")).unwrap();
    r.abandoned(t(40), "gone");
    // AHT default 180 s, 2 staffed: position 2 waits 2 × 180 / 2 = 180 s.
    let m = &r.metrics(t(40), T)[0];
    assert_eq!(m.waiting, 1);
    assert_eq!(m.longest_wait_s, 30);
    assert_eq!(m.agents_staffed, 2);
    assert_eq!(m.agents_free, 0);
    assert_eq!(m.estimated_wait_s, 180);
    assert_eq!(r.position(t(40), "late"), Some((1, 90)));
    r.completed(t(45), "a");
    answer(&mut r, t(46), "late");
    let m = &r.metrics(t(46), T)[0];
    // a, b within 20 s; late after 36 s; gone abandoned.
    assert_eq!(m.service_level, Some(0.5));
    assert_eq!(m.abandonment_rate, Some(0.25));
}

#[test]
fn tenants_never_mix() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", "t1", "Q"));
    available(&mut r, t(0), AgentConfig::new("other", "t2"));
    r.enqueue(t(1), NewItem::call("c", "t1", "q")).unwrap();
    assert!(offers(&drain(&mut r)).is_empty());
    assert!(r.metrics(t(1), "t2").is_empty());
}

/// Random event sequences keep the invariants: an offer goes only to an eligible,
/// skilled agent of the tenant who holds no other offer and no call; an agent never has
/// two calls; every item ends exactly once (answered, abandoned, max wait) or is still
/// queued; nothing waits while a matching agent is free (unless that agent just missed
/// or refused it).
#[test]
fn random_scenarios_keep_the_invariants() {
    let (mut total_offers, mut total_answered) = (0, 0);
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut r = Router::default();
        let strategies = [
            Strategy::LongestIdle,
            Strategy::MostSkilled,
            Strategy::RoundRobin,
        ];
        for (n, skill) in ["en", "es"].iter().enumerate() {
            let mut q = QueueConfig::new(skill, T, skill);
            q.strategy = strategies[rng.random_range(0..3)];
            q.skills = vec![SkillRequirement {
                skill: (*skill).into(),
                min_proficiency: rng.random_range(1..=3),
            }];
            q.ring_timeout_s = rng.random_range(5..20);
            q.wrap_up_s = rng.random_range(0..15);
            q.max_wait_s = rng.random_bool(0.5).then(|| rng.random_range(30..300));
            q.max_missed_offers = rng.random_range(0..4);
            if n == 0 {
                q.overflow = Some(("es".into(), 60));
            }
            r.upsert_queue(q);
        }
        let mut skills: BTreeMap<String, BTreeMap<String, u8>> = BTreeMap::new();
        for a in 0..5 {
            let mut cfg = AgentConfig::new(&format!("a{a}"), T);
            for s in ["en", "es"] {
                if rng.random_bool(0.6) {
                    cfg = cfg.skill(s, rng.random_range(1..=5));
                }
            }
            skills.insert(cfg.id.clone(), cfg.skills.clone());
            r.upsert_agent(t(0), cfg);
        }
        let mut now = 0i64;
        let mut offered: BTreeMap<String, String> = BTreeMap::new(); // item → agent
        let mut assigned: BTreeMap<String, String> = BTreeMap::new();
        let mut live: BTreeSet<String> = BTreeSet::new();
        let mut ended: BTreeSet<String> = BTreeSet::new();
        let mut next_item = 0;
        for _ in 0..400 {
            now += rng.random_range(0..8_000);
            let at = Timestamp(now);
            if r.poll_timeout().is_some_and(|d| d <= at) {
                r.handle_timeout(at);
            } else {
                match rng.random_range(0..10) {
                    0..=2 => {
                        next_item += 1;
                        let id = format!("i{next_item}");
                        let q = if rng.random_bool(0.5) { "en" } else { "es" };
                        r.enqueue(at, NewItem::call(&id, T, q)).unwrap();
                        live.insert(id);
                    }
                    3 => {
                        let a = format!("a{}", rng.random_range(0..5));
                        let st = match rng.random_range(0..3) {
                            0 => AgentStatus::Offline,
                            1 => AgentStatus::Away {
                                reason: "break".into(),
                            },
                            _ => AgentStatus::Available,
                        };
                        r.set_status(at, &a, st);
                    }
                    4 | 5 => {
                        if let Some(item) = offered.keys().next().cloned() {
                            answer(&mut r, at, &item);
                            total_answered += 1;
                            let agent = offered.remove(&item).unwrap();
                            assigned.insert(item, agent);
                        }
                    }
                    6 => {
                        if let Some(item) = assigned.keys().next().cloned() {
                            r.completed(at, &item);
                            assigned.remove(&item);
                            live.remove(&item);
                            assert!(ended.insert(item));
                        }
                    }
                    7 => {
                        if let Some(item) =
                            live.iter().find(|i| !assigned.contains_key(*i)).cloned()
                        {
                            r.abandoned(at, &item);
                            offered.remove(&item);
                            live.remove(&item);
                            assert!(ended.insert(item));
                        }
                    }
                    8 => {
                        if let Some(item) = offered.keys().next().cloned() {
                            r.missed(at, &item, Missed::Rejected).unwrap();
                            offered.remove(&item);
                        }
                    }
                    _ => {
                        if let Some(item) = live.iter().next().cloned() {
                            let _ = r.callback(&item);
                        }
                    }
                }
            }
            for o in drain(&mut r) {
                match o {
                    Output::Offer { item, agent, .. } => {
                        assert!(live.contains(&item), "seed {seed}: offer of an ended item");
                        assert!(
                            !offered.values().any(|a| *a == agent),
                            "seed {seed}: two offers"
                        );
                        assert!(
                            !assigned.values().any(|a| *a == agent),
                            "seed {seed}: busy agent"
                        );
                        assert_eq!(r.status(&agent), Some(AgentStatus::Available));
                        total_offers += 1;
                        assert!(offered.insert(item, agent).is_none());
                    }
                    Output::Revoke { item, agent } => {
                        assert_eq!(offered.remove(&item), Some(agent), "seed {seed}");
                    }
                    Output::MaxWait { item, .. } => {
                        assert!(!offered.contains_key(&item) && !assigned.contains_key(&item));
                        assert!(live.remove(&item), "seed {seed}");
                        assert!(ended.insert(item));
                    }
                    Output::Assigned { .. } => panic!("seed {seed}: no queue auto-assigns"),
                    Output::Overflowed { .. } | Output::Presence { .. } => {}
                }
            }
            // Offers only go to agents with the skill of the item's current queue.
            for (item, agent) in &offered {
                let pos = r.items.get(item).unwrap();
                let q = r.queue(&pos.queue).unwrap();
                let has = &skills[agent];
                assert!(
                    q.skills
                        .iter()
                        .all(|s| has.get(&s.skill).is_some_and(|p| *p >= s.min_proficiency)),
                    "seed {seed}: unskilled offer"
                );
            }
            // Nothing waits while a matching agent is free.
            for (id, it) in &r.items {
                if it.state != ItemState::Waiting {
                    continue;
                }
                let q = r.queue(&it.queue).unwrap();
                for a in r.agents.values() {
                    assert!(
                        !(eligible(a, at, it.channel)
                            && has_skills(a, q, &it.skills)
                            && !it.tried.iter().any(|(t, u)| *t == a.cfg.id && *u > at)),
                        "seed {seed}: {id} waits while {} is free",
                        a.cfg.id
                    );
                }
            }
        }
        assert_eq!(
            r.items.len(),
            live.len(),
            "seed {seed}: every item is queued or ended exactly once"
        );
    }
    // The scenarios do exercise routing.
    assert!(
        total_offers > 5_000 && total_answered > 1_000,
        "{total_offers} {total_answered}"
    );
}

/// Regression: the router's ring timeout and the agent's answer cross (the answer was
/// sent before the deadline but reaches the router after it re-offered the item).
/// `answered` used to take only the item and credited the answer to whoever held the
/// offer by then — the next agent — while the first agent was actually connected
/// (for a callback: both agents' calls went on to dial the customer).
#[test]
fn an_answer_crossing_the_ring_timeout_is_not_credited_to_the_next_agent() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("q", T, "Q");
    q.ring_timeout_s = 10;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    available(&mut r, t(1), AgentConfig::new("bob", T));
    drain(&mut r);
    r.enqueue_callback(t(5), NewItem::call("cb", T, "q"), t(2))
        .unwrap();
    assert_eq!(offers(&drain(&mut r)), [("cb".into(), "ann".into())]);
    // Ann's offer times out at 15 s: revoked and offered to Bob at once.
    r.handle_timeout(t(15));
    let out = drain(&mut r);
    assert!(out.contains(&Output::Revoke {
        item: "cb".into(),
        agent: "ann".into()
    }));
    assert_eq!(offers(&out), [("cb".into(), "bob".into())]);
    // Ann's answer (sent just before 15 s) arrives now: refused, nothing changes.
    assert_eq!(
        r.answered(t(15), "cb", "ann"),
        Err(RouterError::WrongState("cb".into()))
    );
    assert_eq!(r.offered_to("cb"), Some("bob"));
    assert_eq!(r.presence("bob"), Some(Presence::Ringing));
    assert_eq!(r.presence("ann"), Some(Presence::Available));
    // Bob's own answer is taken.
    r.answered(t(16), "cb", "bob").unwrap();
    assert_eq!(r.presence("bob"), Some(Presence::OnCall));
    assert_eq!(r.offered_to("cb"), None);
}

#[test]
fn a_removed_agent_is_offered_nothing_and_their_ringing_offer_moves_on() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    available(&mut r, t(0), AgentConfig::new("ann", T));
    drain(&mut r);
    r.enqueue(t(1), NewItem::call("c1", T, "q")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "ann".into())]);
    // Ann is deactivated while her phone rings: the offer is revoked, the call waits.
    r.remove_agent(t(2), "ann");
    let out = drain(&mut r);
    assert!(out.contains(&Output::Revoke {
        item: "c1".into(),
        agent: "ann".into()
    }));
    assert!(offers(&out).is_empty());
    assert_eq!(r.status("ann"), None);
    assert_eq!(r.position(t(2), "c1").map(|p| p.0), Some(1));
    assert!(r.agents(T).is_empty());
    // Her stale answer is refused; the next agent gets the call.
    assert!(r.answered(t(3), "c1", "ann").is_err());
    available(&mut r, t(4), AgentConfig::new("bob", T));
    assert_eq!(offers(&drain(&mut r)), [("c1".into(), "bob".into())]);
    // An agent removed mid-call: the call completes without them.
    r.answered(t(5), "c1", "bob").unwrap();
    r.remove_agent(t(6), "bob");
    r.completed(t(7), "c1");
    assert_eq!(r.position(t(7), "c1"), None);
    assert!(r.poll_timeout().is_none());
}

/// A chat-only agent (no extension: voice capacity 0, issue #15) takes chats and
/// email but is never offered a call, which waits for an agent with a phone; a free
/// chat-only agent does not count as free for the voice queue.
#[test]
fn a_chat_only_agent_takes_chats_and_email_never_calls() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "q"));
    let mut cfg = AgentConfig::new("carol", T);
    cfg.capacity.insert(Channel::Voice, 0);
    available(&mut r, t(0), cfg);
    r.enqueue(t(1), NewItem::call("call1", T, "q")).unwrap();
    assert!(offers(&drain(&mut r)).is_empty(), "a call for carol");
    r.enqueue(t(2), work("chat1", "q", WorkKind::Chat)).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("chat1".into(), "carol".into())]);
    r.answered(t(3), "chat1", "carol").unwrap();
    r.enqueue(t(4), work("mail1", "q", WorkKind::Email))
        .unwrap();
    assert_eq!(offers(&drain(&mut r)), [("mail1".into(), "carol".into())]);
    let m = &r.metrics(t(5), T)[0];
    let voice = m
        .channels
        .iter()
        .find(|c| c.channel == Channel::Voice)
        .unwrap();
    assert_eq!((voice.waiting, voice.agents_free), (1, 0));
    // An agent with a phone takes the call.
    available(&mut r, t(6), AgentConfig::new("dan", T));
    assert_eq!(offers(&drain(&mut r)), [("call1".into(), "dan".into())]);
}

fn work(id: &str, queue: &str, kind: WorkKind) -> NewItem {
    NewItem::work(id, T, queue, kind)
}

fn assigned(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Assigned { item, agent, .. } => Some((item.clone(), agent.clone())),
            _ => None,
        })
        .collect()
}

/// Offers every item in `out` is offered, answered by its agent.
fn answer_all(r: &mut Router, now: Timestamp, out: &[Output]) -> Vec<(String, String)> {
    let o = offers(out);
    for (item, agent) in &o {
        r.answered(now, item, agent).unwrap();
    }
    o
}

#[test]
fn default_capacity_is_five_async_items_and_the_next_waits_for_a_free_slot() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("back", T, "Back office"));
    available(&mut r, t(0), AgentConfig::new("ann", T));
    let mut got = 0;
    for n in 0..7 {
        r.enqueue(t(1), work(&format!("task{n}"), "back", WorkKind::Task))
            .unwrap();
        let out = drain(&mut r);
        got += answer_all(&mut r, t(1), &out).len();
    }
    assert_eq!(got, 5, "one agent holds at most 5 async items");
    let m = &r.metrics(t(2), T)[0];
    assert_eq!((m.in_progress, m.waiting), (5, 2));
    // A second agent takes the items beyond the first's capacity.
    available(&mut r, t(3), AgentConfig::new("bob", T));
    let out = drain(&mut r);
    assert_eq!(offers(&out), [("task5".into(), "bob".into())]);
    answer_all(&mut r, t(3), &out);
    assert_eq!(offers(&drain(&mut r)), [("task6".into(), "bob".into())]);
    // Emails and messages share the async capacity with tasks.
    r.enqueue(t(4), work("mail", "back", WorkKind::Email))
        .unwrap();
    assert_eq!(offers(&drain(&mut r)), []);
    r.completed(t(5), "task0");
    assert_eq!(offers(&drain(&mut r)), [("mail".into(), "ann".into())]);
}

#[test]
fn a_call_blocks_other_work_unless_the_agent_is_blended_and_async_never_blocks_a_call() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    available(&mut r, t(0), AgentConfig::new("ann", T));
    // Async work in progress does not keep a call away.
    r.enqueue(t(1), work("task", "q", WorkKind::Task)).unwrap();
    let out = drain(&mut r);
    answer_all(&mut r, t(1), &out);
    r.enqueue(t(2), NewItem::call("call", T, "q")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("call".into(), "ann".into())]);
    r.answered(t(2), "call", "ann").unwrap();
    // On a call: no chat (the call blocks other work by default).
    r.enqueue(t(3), work("chat", "q", WorkKind::Chat)).unwrap();
    assert_eq!(offers(&drain(&mut r)), []);
    // Blended: the chat is offered during the call.
    let mut cfg = AgentConfig::new("ann", T);
    cfg.call_blocks_other_work = false;
    r.upsert_agent(t(4), cfg);
    assert_eq!(offers(&drain(&mut r)), [("chat".into(), "ann".into())]);
    r.answered(t(4), "chat", "ann").unwrap();
    // A chat in progress keeps the next call away.
    r.completed(t(5), "call");
    r.handle_timeout(t(20));
    r.enqueue(t(21), NewItem::call("call2", T, "q")).unwrap();
    assert_eq!(offers(&drain(&mut r)), []);
    r.completed(t(22), "chat");
    assert_eq!(offers(&drain(&mut r)), [("call2".into(), "ann".into())]);
}

#[test]
fn an_auto_assign_queue_assigns_without_an_offer_up_to_capacity() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("chat", T, "Chat");
    q.auto_assign = true;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    for n in 0..4 {
        r.enqueue(t(1), work(&format!("c{n}"), "chat", WorkKind::Chat))
            .unwrap();
    }
    let out = drain(&mut r);
    assert_eq!(offers(&out), []);
    assert_eq!(assigned(&out).len(), 3, "three chats at once");
    assert_eq!(r.agent_of("c3"), None);
    r.completed(t(2), "c0");
    assert_eq!(assigned(&drain(&mut r)), [("c3".into(), "ann".into())]);
}

#[test]
fn time_to_sla_breach_raises_an_item_above_higher_priorities() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    r.upsert_agent(t(0), AgentConfig::new("ann", T));
    // P0 (3) without an SLA, P2 (1) due in two hours, P2 due in ten minutes.
    r.enqueue(
        t(0),
        NewItem {
            priority: 3,
            ..work("p0", "q", WorkKind::Task)
        },
    )
    .unwrap();
    for (id, due_min) in [("later", 120), ("soon", 10)] {
        r.enqueue(
            t(1),
            NewItem {
                priority: 1,
                sla_due: Some(t(60 * due_min)),
                ..work(id, "q", WorkKind::Task)
            },
        )
        .unwrap();
    }
    // Ten minutes before its breach: 1,000 + 2,500 > 3,000.
    r.set_status(t(2), "ann", AgentStatus::Available);
    let mut order = Vec::new();
    for _ in 0..3 {
        let o = offers(&drain(&mut r));
        for (item, agent) in &o {
            r.answered(t(3), item, agent).unwrap();
            r.completed(t(3), item);
            order.push(item.clone());
        }
    }
    assert_eq!(order, ["soon", "p0", "later"]);
}

#[test]
fn an_items_language_is_a_skill() {
    let mut r = Router::default();
    r.upsert_queue(QueueConfig::new("q", T, "Q"));
    available(&mut r, t(0), AgentConfig::new("ann", T).skill("lang:en", 5));
    available(&mut r, t(1), AgentConfig::new("bob", T).skill("lang:es", 3));
    r.enqueue(
        t(2),
        NewItem {
            language: Some("es".into()),
            ..work("hola", "q", WorkKind::Email)
        },
    )
    .unwrap();
    assert_eq!(offers(&drain(&mut r)), [("hola".into(), "bob".into())]);
}

#[test]
fn sticky_routing_prefers_the_last_agent_within_the_window() {
    let mut r = Router::default();
    let mut q = QueueConfig::new("chat", T, "Chat");
    q.sticky_window_s = 600;
    r.upsert_queue(q);
    available(&mut r, t(0), AgentConfig::new("ann", T));
    available(&mut r, t(1), AgentConfig::new("bob", T));
    let item = |id: &str| NewItem {
        customer_id: Some("cust".into()),
        ..work(id, "chat", WorkKind::Chat)
    };
    r.enqueue(t(2), item("first")).unwrap();
    // Ann has been idle the longest.
    assert_eq!(offers(&drain(&mut r)), [("first".into(), "ann".into())]);
    r.answered(t(2), "first", "ann").unwrap();
    r.completed(t(100), "first");
    drain(&mut r);
    // Bob is idle longer now (since 1 s) than Ann (since 100 s), but the customer
    // comes back within ten minutes of Ann finishing: Ann.
    r.enqueue(t(650), item("second")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("second".into(), "ann".into())]);
    r.answered(t(650), "second", "ann").unwrap();
    r.completed(t(700), "second");
    drain(&mut r);
    // Past the window: the strategy decides (Bob, idle since 1 s).
    r.enqueue(t(1301), item("third")).unwrap();
    assert_eq!(offers(&drain(&mut r)), [("third".into(), "bob".into())]);
}

#[test]
fn a_chat_overflows_to_an_email_queue_and_takes_async_capacity() {
    let mut r = Router::default();
    let mut chat = QueueConfig::new("chat", T, "Chat");
    chat.overflow = Some(("mail".into(), 60));
    r.upsert_queue(chat);
    let mut mail = QueueConfig::new("mail", T, "Mail");
    mail.channel = Some(Channel::Async);
    r.upsert_queue(mail);
    let mut cfg = AgentConfig::new("ann", T);
    cfg.capacity.insert(Channel::Chat, 1);
    available(&mut r, t(0), cfg);
    r.enqueue(t(1), work("c1", "chat", WorkKind::Chat)).unwrap();
    let out = drain(&mut r);
    answer_all(&mut r, t(1), &out);
    r.enqueue(t(2), work("c2", "chat", WorkKind::Chat)).unwrap();
    assert_eq!(offers(&drain(&mut r)), []);
    let m = &r.metrics(t(3), T)[0];
    assert_eq!(m.name, "Chat");
    let chat_m = m
        .channels
        .iter()
        .find(|c| c.channel == Channel::Chat)
        .unwrap();
    assert_eq!(
        (chat_m.waiting, chat_m.in_progress, chat_m.agents_free),
        (1, 1, 0)
    );
    // At capacity on chat; after a minute the chat becomes an email and Ann, with
    // async capacity, gets it.
    assert_eq!(r.poll_timeout(), Some(t(62)));
    r.handle_timeout(t(62));
    let out = drain(&mut r);
    assert!(out.contains(&Output::Overflowed {
        item: "c2".into(),
        from: "chat".into(),
        to: "mail".into()
    }));
    assert_eq!(offers(&out), [("c2".into(), "ann".into())]);
}

/// Randomised scenarios over voice, chat and async queues (auto-assign, sticky
/// windows, chat → email overflow), agents with random capacities, skills, languages
/// and blending, items of every kind with priorities, SLA due times and customers.
/// After every step: no agent holds more than their capacity on any channel (offered
/// items reserved), no item has two offers, no waiting item has an eligible agent with
/// capacity (unless that agent just missed or refused it), and an item of a sticky
/// queue goes to the customer's last agent when that agent, handling within the
/// window, is eligible.
#[test]
fn random_mixed_channels_keep_capacity_offers_starvation_and_stickiness() {
    let kinds = [
        WorkKind::Call,
        WorkKind::Chat,
        WorkKind::Email,
        WorkKind::Message,
        WorkKind::Task,
    ];
    let (mut total_offers, mut total_assigned, mut sticky_hits) = (0, 0, 0);
    let mut chat_only_work = 0;
    for seed in 0..150u64 {
        let mut rng = StdRng::seed_from_u64(1_000 + seed);
        let mut r = Router::default();
        let mut chat_only: std::collections::BTreeSet<String> = Default::default();
        for name in ["voice", "chat", "mail"] {
            let mut q = QueueConfig::new(name, T, name);
            q.ring_timeout_s = rng.random_range(5..20);
            q.wrap_up_s = rng.random_range(0..10);
            q.priority_aging_per_min = rng.random_range(0..2);
            q.auto_assign = name != "voice" && rng.random_bool(0.4);
            q.sticky_window_s = if rng.random_bool(0.6) {
                rng.random_range(30..600)
            } else {
                0
            };
            if name == "chat" {
                q.overflow = Some(("mail".into(), rng.random_range(20..90)));
            }
            if name == "mail" {
                q.channel = Some(Channel::Async);
            }
            r.upsert_queue(q);
        }
        for a in 0..6 {
            let mut cfg = AgentConfig::new(&format!("a{a}"), T);
            if rng.random_bool(0.3) {
                // A chat-only agent (no extension, issue #15): no voice capacity.
                cfg.capacity.insert(Channel::Voice, 0);
                chat_only.insert(format!("a{a}"));
            }
            cfg.capacity.insert(Channel::Chat, rng.random_range(0..=3));
            cfg.capacity.insert(Channel::Async, rng.random_range(0..=5));
            cfg.call_blocks_other_work = rng.random_bool(0.5);
            for l in ["en", "es"] {
                if rng.random_bool(0.7) {
                    cfg = cfg.skill(&format!("lang:{l}"), rng.random_range(1..=5));
                }
            }
            r.upsert_agent(t(0), cfg);
        }
        let mut now = 0i64;
        // The test's own model: offers, assignments, each customer's last agent.
        let mut offered: BTreeMap<String, String> = BTreeMap::new();
        let mut held: BTreeMap<String, String> = BTreeMap::new();
        let mut customer: BTreeMap<String, String> = BTreeMap::new(); // item → customer
        let mut last: BTreeMap<String, (String, i64)> = BTreeMap::new();
        let mut next_item = 0;
        for _ in 0..400 {
            now += rng.random_range(0..6_000);
            let at = Timestamp(now);
            if r.poll_timeout().is_some_and(|d| d <= at) {
                r.handle_timeout(at);
            } else {
                match rng.random_range(0..12) {
                    0..=3 => {
                        next_item += 1;
                        let id = format!("i{next_item}");
                        let kind = kinds[rng.random_range(0..kinds.len())];
                        let q = match kind.channel() {
                            Channel::Voice => "voice",
                            Channel::Chat => "chat",
                            Channel::Async => "mail",
                        };
                        let c = format!("c{}", rng.random_range(0..4));
                        customer.insert(id.clone(), c.clone());
                        let new = NewItem {
                            priority: rng.random_range(0..4),
                            sla_due: rng
                                .random_bool(0.5)
                                .then(|| Timestamp(now + rng.random_range(-600_000..3_600_000))),
                            language: rng
                                .random_bool(0.5)
                                .then(|| if rng.random_bool(0.5) { "en" } else { "es" }.into()),
                            customer_id: Some(c),
                            ..work(&id, q, kind)
                        };
                        r.enqueue(at, new).unwrap();
                    }
                    4 => {
                        let a = format!("a{}", rng.random_range(0..6));
                        let st = if rng.random_bool(0.7) {
                            AgentStatus::Available
                        } else {
                            AgentStatus::Away {
                                reason: "break".into(),
                            }
                        };
                        r.set_status(at, &a, st);
                    }
                    5 | 6 => {
                        if let Some((item, agent)) =
                            offered.iter().next().map(|(i, a)| (i.clone(), a.clone()))
                        {
                            r.answered(at, &item, &agent).unwrap();
                            offered.remove(&item);
                            last.insert(customer[&item].clone(), (agent.clone(), now));
                            held.insert(item, agent);
                            total_assigned += 1;
                        }
                    }
                    7 | 8 => {
                        let n = held.len();
                        if n > 0 {
                            let item = held.keys().nth(rng.random_range(0..n)).cloned().unwrap();
                            let agent = held.remove(&item).unwrap();
                            let c = &customer[&item];
                            if last.get(c).is_some_and(|(a, _)| *a == agent) {
                                last.insert(c.clone(), (agent, now));
                            }
                            r.completed(at, &item);
                        }
                    }
                    9 => {
                        if let Some(item) = offered.keys().next().cloned() {
                            r.missed(at, &item, Missed::Rejected).unwrap();
                            offered.remove(&item);
                        }
                    }
                    _ => {
                        // A customer gives up on a waiting or offered item.
                        let waiting: Vec<String> = r
                            .items
                            .iter()
                            .filter(|(_, i)| !matches!(i.state, ItemState::Assigned { .. }))
                            .map(|(k, _)| k.clone())
                            .collect();
                        if let Some(item) = waiting.first() {
                            r.abandoned(at, item);
                            offered.remove(item);
                        }
                    }
                }
            }
            for o in drain(&mut r) {
                let (item, agent, is_offer) = match o {
                    Output::Offer { item, agent, .. } => (item, agent, true),
                    Output::Assigned { item, agent, .. } => (item, agent, false),
                    Output::Revoke { item, agent } => {
                        assert_eq!(offered.remove(&item), Some(agent), "seed {seed}");
                        continue;
                    }
                    Output::MaxWait { .. } => panic!("seed {seed}: no maximum wait set"),
                    Output::Overflowed { .. } | Output::Presence { .. } => continue,
                };
                assert!(
                    !offered.contains_key(&item) && !held.contains_key(&item),
                    "seed {seed}: {item} offered twice"
                );
                // Sticky: the customer's last agent, within the window and eligible
                // (still, after this dispatch), would have been chosen.
                let it = &r.items[&item];
                let q = r.queue(&it.queue).unwrap();
                if let Some((sticky, when)) = last.get(&customer[&item])
                    && *sticky != agent
                    && q.sticky_window_s > 0
                    && now - when <= i64::from(q.sticky_window_s) * 1000
                    && let Some(a) = r.agents.get(sticky)
                {
                    assert!(
                        !(eligible(a, at, it.channel)
                            && has_skills(a, q, &it.skills)
                            && !it.tried.iter().any(|(t, u)| t == sticky && *u > at)),
                        "seed {seed}: {item} went to {agent}, not to the sticky {sticky}"
                    );
                } else if last.get(&customer[&item]).is_some_and(|(s, _)| *s == agent) {
                    sticky_hits += 1;
                }
                if chat_only.contains(&agent) {
                    assert_ne!(
                        r.items[&item].channel,
                        Channel::Voice,
                        "seed {seed}: a call went to the chat-only {agent}"
                    );
                    chat_only_work += 1;
                }
                if is_offer {
                    total_offers += 1;
                    offered.insert(item, agent);
                } else {
                    total_assigned += 1;
                    last.insert(customer[&item].clone(), (agent.clone(), now));
                    held.insert(item, agent);
                }
            }
            // The router forgets finished items; the model follows.
            offered.retain(|i, _| r.items.contains_key(i));
            // Capacity: assigned + offered ≤ capacity on every channel.
            for a in r.agents.values() {
                for c in Channel::ALL {
                    let n = r
                        .items
                        .values()
                        .filter(|i| i.channel == c)
                        .filter(|i| match &i.state {
                            ItemState::Offered { agent, .. }
                            | ItemState::Assigned { agent, .. } => *agent == a.cfg.id,
                            ItemState::Waiting => false,
                        })
                        .count();
                    assert!(
                        n <= cap(a, c) as usize,
                        "seed {seed}: {} holds {n} on {c:?}",
                        a.cfg.id
                    );
                }
            }
            // No item starves while an eligible agent has capacity.
            for (id, it) in &r.items {
                if it.state != ItemState::Waiting {
                    continue;
                }
                let q = r.queue(&it.queue).unwrap();
                for a in r.agents.values() {
                    assert!(
                        !(eligible(a, at, it.channel)
                            && has_skills(a, q, &it.skills)
                            && !it.tried.iter().any(|(t, u)| *t == a.cfg.id && *u > at)),
                        "seed {seed}: {id} waits while {} is free",
                        a.cfg.id
                    );
                }
            }
        }
    }
    assert!(
        total_offers > 3_000 && total_assigned > 3_000 && sticky_hits > 200,
        "{total_offers} {total_assigned} {sticky_hits}"
    );
    assert!(chat_only_work > 300, "{chat_only_work}");
}

/// The dispatcher used to check every waiting item against every agent on every
/// input (O(waiting × agents): p99 63 ms with 1,000 agents in BENCHMARKS.md). Now the
/// free agents are indexed once per pass and narrowed once per requirement, so 300
/// Spanish calls that none of 1,000 free agents can take cost at most one look at each
/// agent, not 300; and once a requirement is known unmet, only agents whose state
/// changed since are looked at again.
#[test]
fn items_nobody_free_can_serve_cost_one_look_per_agent_not_one_per_item() {
    let build = |naive: bool| {
        let mut r = Router {
            naive,
            ..Router::default()
        };
        r.upsert_queue(QueueConfig::new("q", T, "q"));
        for a in 0..1000 {
            available(
                &mut r,
                t(0),
                AgentConfig::new(&format!("a{a:04}"), T).skill("lang:en", 3),
            );
        }
        // Calls in Spanish, which nobody speaks: every agent stays free.
        for i in 0..300 {
            let new = NewItem {
                language: Some("es".into()),
                ..NewItem::call(&format!("c{i}"), T, "q")
            };
            r.enqueue(t(1), new).unwrap();
        }
        drain(&mut r);
        r.examined.set(0);
        let new = NewItem {
            language: Some("es".into()),
            ..NewItem::call("late", T, "q")
        };
        r.enqueue(t(2), new).unwrap();
        assert!(offers(&drain(&mut r)).is_empty());
        let after_arrival = r.examined.get();
        // One agent takes a break and comes back: only they are looked at again.
        r.examined.set(0);
        r.set_status(
            t(3),
            "a0007",
            AgentStatus::Away {
                reason: "break".into(),
            },
        );
        r.set_status(t(4), "a0007", AgentStatus::Available);
        assert!(offers(&drain(&mut r)).is_empty());
        (after_arrival, r.examined.get())
    };
    let (indexed, naive) = (build(false), build(true));
    assert!(
        indexed.0 <= 1_000,
        "indexed pass examined {} agents",
        indexed.0
    );
    assert!(
        indexed.1 <= 2,
        "a status change examined {} agents",
        indexed.1
    );
    assert!(naive.0 >= 300_000, "the reference examines {}", naive.0);
}

/// The indexed dispatcher makes exactly the reference dispatcher's decisions (same
/// offers, assignments, agents, order) over random mixed-channel scenarios with
/// several tenants, skills, languages, stickiness, auto-assignment and overflow.
#[test]
fn the_indexed_dispatcher_decides_exactly_as_the_reference() {
    let kinds = [
        WorkKind::Call,
        WorkKind::Chat,
        WorkKind::Email,
        WorkKind::Task,
    ];
    let mut decisions = 0;
    for seed in 0..60u64 {
        let mut rng = StdRng::seed_from_u64(7_000 + seed);
        let mut routers = [
            Router::default(),
            Router {
                naive: true,
                ..Router::default()
            },
        ];
        let mut queues = Vec::new();
        for tenant in ["t1", "t2"] {
            for (n, name) in ["voice", "chat", "mail"].into_iter().enumerate() {
                let id = format!("{tenant}-{name}");
                let mut q = QueueConfig::new(&id, tenant, name);
                q.strategy = [
                    Strategy::LongestIdle,
                    Strategy::MostSkilled,
                    Strategy::RoundRobin,
                ][rng.random_range(0..3)];
                if rng.random_bool(0.5) {
                    q.skills = vec![SkillRequirement {
                        skill: ["billing", "tech"][rng.random_range(0..2)].into(),
                        min_proficiency: rng.random_range(1..=3),
                    }];
                }
                q.ring_timeout_s = rng.random_range(5..20);
                q.wrap_up_s = rng.random_range(0..10);
                q.priority_aging_per_min = rng.random_range(0..2);
                q.auto_assign = n > 0 && rng.random_bool(0.4);
                q.sticky_window_s = if rng.random_bool(0.5) { 300 } else { 0 };
                if name == "chat" {
                    q.overflow = Some((format!("{tenant}-mail"), rng.random_range(20..90)));
                }
                if name == "mail" {
                    q.channel = Some(Channel::Async);
                }
                for r in &mut routers {
                    r.upsert_queue(q.clone());
                }
                queues.push((
                    id,
                    tenant,
                    [Channel::Voice, Channel::Chat, Channel::Async][n],
                ));
            }
        }
        let n_agents = rng.random_range(1..25);
        let mut agents = Vec::new();
        for a in 0..n_agents {
            let tenant = if a % 3 == 0 { "t2" } else { "t1" };
            let mut cfg = AgentConfig::new(&format!("a{a:02}"), tenant);
            cfg.capacity.insert(Channel::Chat, rng.random_range(0..=3));
            cfg.capacity.insert(Channel::Async, rng.random_range(0..=5));
            cfg.call_blocks_other_work = rng.random_bool(0.5);
            for s in ["billing", "tech", "lang:en", "lang:es"] {
                if rng.random_bool(0.6) {
                    cfg = cfg.skill(s, rng.random_range(1..=5));
                }
            }
            for r in &mut routers {
                r.upsert_agent(t(0), cfg.clone());
            }
            agents.push(cfg.id.clone());
        }
        let mut offered: Vec<(String, String)> = Vec::new();
        let mut held: Vec<String> = Vec::new();
        let mut now = 0i64;
        let mut next = 0;
        for step in 0..300 {
            now += rng.random_range(0..5_000);
            let at = Timestamp(now);
            let due = routers[0].poll_timeout();
            assert_eq!(due, routers[1].poll_timeout(), "seed {seed} step {step}");
            let timeout = due.is_some_and(|d| d <= at);
            let pick = rng.random_range(0..12);
            for r in &mut routers {
                if timeout {
                    r.handle_timeout(at);
                    continue;
                }
                let mut rng = StdRng::seed_from_u64(seed * 1_000 + step);
                match pick {
                    0..=3 => {
                        let (q, tenant, _) = &queues[rng.random_range(0..queues.len())];
                        let kind = match queues.iter().find(|x| x.0 == *q).map(|x| x.2) {
                            Some(Channel::Voice) => WorkKind::Call,
                            Some(Channel::Chat) => WorkKind::Chat,
                            _ => kinds[2 + rng.random_range(0..2)],
                        };
                        let new = NewItem {
                            priority: rng.random_range(0..4),
                            sla_due: rng
                                .random_bool(0.4)
                                .then(|| Timestamp(now + rng.random_range(-600_000..3_600_000))),
                            language: rng
                                .random_bool(0.4)
                                .then(|| ["en", "es"][rng.random_range(0..2)].into()),
                            skills: if rng.random_bool(0.2) {
                                vec!["tech".into()]
                            } else {
                                Vec::new()
                            },
                            customer_id: Some(format!("c{}", rng.random_range(0..5))),
                            ..NewItem::work(&format!("i{next}"), tenant, q, kind)
                        };
                        r.enqueue(at, new).unwrap();
                    }
                    4 | 5 => {
                        let a = &agents[rng.random_range(0..agents.len())];
                        let st = if rng.random_bool(0.75) {
                            AgentStatus::Available
                        } else {
                            AgentStatus::Away {
                                reason: "break".into(),
                            }
                        };
                        r.set_status(at, a, st);
                    }
                    6 | 7 => {
                        if let Some((item, agent)) = offered.first() {
                            r.answered(at, item, agent).unwrap();
                        }
                    }
                    8 | 9 => {
                        if !held.is_empty() {
                            r.completed(at, &held[rng.random_range(0..held.len())]);
                        }
                    }
                    10 => {
                        if let Some((item, _)) = offered.first() {
                            r.missed(at, item, Missed::Rejected).unwrap();
                        }
                    }
                    _ => {
                        if let Some((item, _)) = offered.last() {
                            r.abandoned(at, item);
                        }
                    }
                }
            }
            if !timeout {
                match pick {
                    0..=3 => next += 1,
                    6 | 7 if !offered.is_empty() => {
                        held.push(offered.remove(0).0);
                    }
                    8 | 9 if !held.is_empty() => {
                        let mut rng = StdRng::seed_from_u64(seed * 1_000 + step);
                        let i = rng.random_range(0..held.len());
                        held.remove(i);
                    }
                    10 if !offered.is_empty() => {
                        offered.remove(0);
                    }
                    11 => {
                        offered.pop();
                    }
                    _ => {}
                }
            }
            let (a, b) = (drain(&mut routers[0]), drain(&mut routers[1]));
            assert_eq!(a, b, "seed {seed} step {step}");
            // The free index is what a recomputation gives.
            let r = &routers[0];
            for ag in r.agents.values() {
                for c in Channel::ALL {
                    let indexed = r
                        .free
                        .get(&(ag.cfg.tenant_id.clone(), c))
                        .is_some_and(|s| s.contains(&ag.cfg.id));
                    assert_eq!(
                        indexed,
                        eligible_apart_from_wrap_up(ag, c),
                        "seed {seed} step {step}: {} on {c:?}",
                        ag.cfg.id
                    );
                }
                assert_eq!(r.wrapping.contains(&ag.cfg.id), ag.wrap_until.is_some());
            }
            for o in a {
                match o {
                    Output::Offer { item, agent, .. } => {
                        decisions += 1;
                        offered.push((item, agent));
                    }
                    Output::Assigned { item, .. } => {
                        decisions += 1;
                        held.push(item);
                    }
                    Output::Revoke { item, .. } => offered.retain(|(i, _)| *i != item),
                    _ => {}
                }
            }
        }
    }
    assert!(decisions > 2_000, "{decisions} decisions");
}
