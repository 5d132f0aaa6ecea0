//! Routing decisions under load: one router with 1,000 agents (blended: 1 call,
//! 3 chats, 5 async items each; two of four skills, languages), 12 queues over voice,
//! chat and async (some auto-assigning, some sticky), items of every kind with P0–P3
//! priorities, SLA due times and returning customers, kept at about 95 % of the
//! agents' capacity so a backlog waits. Every step is one router input (an arrival, an
//! answer, a decline, a completion, a status change, a timeout) plus draining the
//! decisions it yields — what the runtime's task does per message — timed alone.
//!
//! `cargo bench -p parley-routing --bench routing` (env: `AGENTS`, `STEPS`, `SEED`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use parley_routing::{
    AgentConfig, AgentStatus, Channel, Missed, NewItem, Output, QueueConfig, Router,
    SkillRequirement, Timestamp, WorkKind,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T: &str = "tenant";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let agents = env("AGENTS", 1000);
    let steps = env("STEPS", 200_000);
    let mut rng = StdRng::seed_from_u64(env("SEED", 7));
    let mut r = Router::default();
    let skills = ["billing", "tech", "sales", "vip"];
    let mut queues: Vec<(String, WorkKind)> = Vec::new();
    for (n, kind) in [WorkKind::Call, WorkKind::Chat, WorkKind::Email]
        .into_iter()
        .enumerate()
    {
        for s in skills {
            let id = format!("{}-{s}", kind.as_str());
            let mut q = QueueConfig::new(&id, T, &id);
            q.skills = vec![SkillRequirement {
                skill: s.into(),
                min_proficiency: 1,
            }];
            q.priority_aging_per_min = 1;
            q.auto_assign = n == 2 && s != "vip";
            q.sticky_window_s = if n > 0 { 600 } else { 0 };
            q.ring_timeout_s = 20;
            q.wrap_up_s = 5;
            r.upsert_queue(q);
            queues.push((id, kind));
        }
    }
    let now0 = Timestamp(0);
    for a in 0..agents {
        let mut cfg = AgentConfig::new(&format!("agent{a:04}"), T);
        cfg.call_blocks_other_work = a % 3 != 0;
        for s in 0..2 {
            let skill = skills[(a as usize + s * 3) % skills.len()];
            cfg = cfg.skill(skill, rng.random_range(1..=5));
        }
        cfg = cfg.skill(if a % 4 == 0 { "lang:es" } else { "lang:en" }, 4);
        let id = cfg.id.clone();
        r.upsert_agent(now0, cfg);
        r.set_status(now0, &id, AgentStatus::Available);
    }
    while r.poll_output().is_some() {}

    let capacity = agents * 9;
    let mut now = 0i64;
    let mut offered: Vec<(String, String)> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    let mut live = 0u64;
    let mut next = 0u64;
    let mut times_ns: Vec<u64> = Vec::with_capacity(steps as usize);
    let mut decisions = 0u64;
    let mut per_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let started = Instant::now();
    for _ in 0..steps {
        now += rng.random_range(0..20);
        let at = Timestamp(now);
        let pick = rng.random_range(0..100);
        let t0 = Instant::now();
        let kind: &'static str = if r.poll_timeout().is_some_and(|d| d <= at) {
            r.handle_timeout(at);
            "timeout"
        } else if live < capacity * 95 / 100 && pick < 45 {
            next += 1;
            let (q, kind) = &queues[rng.random_range(0..queues.len())];
            let new = NewItem {
                priority: rng.random_range(0..4),
                sla_due: rng
                    .random_bool(0.3)
                    .then(|| Timestamp(now + rng.random_range(0..3_600_000))),
                language: rng.random_bool(0.2).then(|| "es".to_owned()),
                customer_id: Some(format!("cust{}", rng.random_range(0..5_000))),
                ..NewItem::work(&format!("w{next}"), T, q, *kind)
            };
            live += 1;
            r.enqueue(at, new).unwrap();
            "enqueue"
        } else if !offered.is_empty() && pick < 75 {
            let i = rng.random_range(0..offered.len());
            let (item, agent) = offered.swap_remove(i);
            if pick < 72 {
                if r.answered(at, &item, &agent).is_ok() {
                    held.push(item);
                }
                "answer"
            } else {
                let _ = r.missed(at, &item, Missed::Rejected);
                "decline"
            }
        } else if !held.is_empty() && pick < 98 {
            let i = rng.random_range(0..held.len());
            let item = held.swap_remove(i);
            live -= 1;
            r.completed(at, &item);
            "complete"
        } else {
            let a = format!("agent{:04}", rng.random_range(0..agents));
            let st = if rng.random_bool(0.5) {
                AgentStatus::Available
            } else {
                AgentStatus::Away {
                    reason: "break".into(),
                }
            };
            r.set_status(at, &a, st);
            "status"
        };
        let mut outs = Vec::new();
        while let Some(o) = r.poll_output() {
            outs.push(o);
        }
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        times_ns.push(ns);
        *per_kind.entry(kind).or_default() += 1;
        for o in outs {
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
                Output::MaxWait { .. } => live -= 1,
                Output::Overflowed { .. } | Output::Presence { .. } => {}
            }
        }
    }
    let wall = started.elapsed();
    times_ns.sort_unstable();
    let q = |p: f64| times_ns[((times_ns.len() as f64 * p) as usize).min(times_ns.len() - 1)];
    let m = r.metrics(Timestamp(now), T);
    let waiting: u32 = m.iter().map(|q| q.waiting).sum();
    let in_progress: u32 = m.iter().map(|q| q.in_progress).sum();
    println!(
        "routing: {agents} agents, {} queues, {steps} steps in {:.2} s, {decisions} offers/assignments",
        queues.len(),
        wall.as_secs_f64()
    );
    println!("steps by input: {per_kind:?}");
    println!("at the end: {waiting} waiting, {in_progress} in progress");
    for c in Channel::ALL {
        let (w, p): (u32, u32) = m
            .iter()
            .flat_map(|q| q.channels.iter())
            .filter(|x| x.channel == c)
            .fold((0, 0), |(w, p), x| (w + x.waiting, p + x.in_progress));
        println!("  {c:?}: {w} waiting, {p} in progress");
    }
    println!(
        "step latency: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        q(0.50) as f64 / 1e3,
        q(0.90) as f64 / 1e3,
        q(0.99) as f64 / 1e3,
        q(0.999) as f64 / 1e3,
        *times_ns.last().unwrap_or(&0) as f64 / 1e3
    );
}
