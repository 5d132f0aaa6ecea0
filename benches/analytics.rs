//! Analytics benchmark (issue #22): a 90-day KPI report over the rollups of N
//! interactions, grouped by queue and by agent (p50/p99), and the fold's cost per event.
//!
//! ```text
//! cargo bench --profile dev --bench analytics                        # both backends, 1M
//! PARLEY_BENCH_BACKEND=sqlite PARLEY_BENCH_INTERACTIONS=10000000 cargo bench --bench analytics
//! ```
//!
//! The rollups are what the fold would write for N interactions (calls, chats, emails,
//! WhatsApp) spread over 90 days, 500 agents in 20 queues (2 channels each) and 4
//! priorities: the facts are generated and folded with the real pure fold
//! (`parley_cases::analytics::fold`) and the rows inserted in bulk. The report is the
//! store's own `analytics_kpis`. The fold's cost per event is `analytics_catch_up` over
//! `PARLEY_BENCH_EVENTS` (default 20,000) `call.ended` events written to the outbox.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parley_cases::analytics::fold::{self, Dims, Fact, MEASURES, Measures, RollupKey, m};
use parley_cases::analytics::{GroupBy, KpiQuery};
use parley_cases::{Actor, Role, Store, Timestamp};

const AGENTS: u64 = 500;
const QUEUES: u64 = 20;
const DAYS: i64 = 90;
const DAY: i64 = 86_400_000;
const CHANNELS: [&str; 4] = ["voice", "web_chat", "email", "whatsapp"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn pct(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let n = samples.len();
    samples[((n as f64 * q).ceil() as usize)
        .saturating_sub(1)
        .min(n - 1)]
}

/// The facts of one synthetic interaction.
fn interaction(r: &mut Rng, end: i64) -> Fact {
    let agent = r.below(AGENTS);
    let queue = agent % QUEUES;
    let channel = CHANNELS[((queue % 2) * 2 + r.below(2)) as usize % 4];
    let at = end - 1 - i64::try_from(r.below((DAYS * DAY) as u64)).unwrap_or(0);
    let mut ms = Measures::default();
    ms.0[m::CONTACTS] = 1;
    ms.0[m::OFFERED] = 1;
    if channel == "voice" {
        ms.0[m::CALLS_OFFERED] = 1;
        if r.below(100) < 88 {
            let wait = i64::try_from(r.below(60_000)).unwrap_or(0);
            ms.0[m::ANSWERED] = 1;
            ms.0[m::WAIT_ANSWERED_MS] = wait;
            ms.0[m::SL_MET] = i64::from(wait <= 20_000);
            ms.0[m::TALK_MS] = 60_000 + i64::try_from(r.below(600_000)).unwrap_or(0);
            ms.0[m::WRAP_MS] = i64::try_from(r.below(60_000)).unwrap_or(0);
        } else {
            ms.0[m::ABANDONED] = 1;
        }
    } else {
        let frt = i64::try_from(r.below(1_800_000)).unwrap_or(0);
        ms.0[m::FRT_N] = 1;
        ms.0[m::FRT_MS] = frt;
        let res = frt + i64::try_from(r.below(86_400_000)).unwrap_or(0);
        ms.0[m::RESOLVED] = 1;
        ms.0[m::RESOLUTION_MS] = res;
        ms.0[m::RES_B0 + fold::res_bin(res)] = 1;
        if r.below(2) == 0 {
            ms.0[m::CSAT_N] = 1;
            ms.0[m::CSAT_POSITIVE] = i64::from(r.below(100) < 80);
        }
    }
    Fact {
        key: String::new(),
        kind: "call",
        at: Timestamp(at),
        dims: Dims {
            channel: channel.into(),
            queue_id: format!("queue-{queue:02}"),
            agent_id: format!("agent-{agent:03}"),
            team_id: format!("team-{}", queue / 4),
            priority: format!("P{}", r.below(4)),
            intent: String::new(),
        },
        ref_kind: "call_record",
        ref_id: String::new(),
        value: None,
        detail: String::new(),
        measures: ms,
    }
}

async fn seed(store: &Store, tenant: &str, n: usize, end: i64) -> (usize, Duration, Duration) {
    let t = Instant::now();
    let mut rows: HashMap<RollupKey, Measures> = HashMap::new();
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..n {
        fold::fold_into(&mut rows, &interaction(&mut r, end));
    }
    let folded = t.elapsed();
    let t = Instant::now();
    let rows: Vec<(RollupKey, Measures)> = rows.into_iter().collect();
    let cols = 9 + MEASURES.len();
    let per = 60;
    for chunk in rows.chunks(per * 50) {
        let mut tx = store.pool().begin().await.unwrap();
        for part in chunk.chunks(per) {
            let values: Vec<String> = (0..part.len())
                .map(|i| {
                    let marks: Vec<String> = (0..cols)
                        .map(|c| format!("${}", i * cols + c + 1))
                        .collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO analytics_rollups (tenant_id, grain_s, bucket, channel, queue_id, agent_id, team_id, priority, intent, {}) VALUES {}",
                MEASURES.join(", "),
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (k, v) in part {
                q = q
                    .bind(tenant)
                    .bind(k.grain_s)
                    .bind(k.bucket)
                    .bind(k.dims.channel.clone())
                    .bind(k.dims.queue_id.clone())
                    .bind(k.dims.agent_id.clone())
                    .bind(k.dims.team_id.clone())
                    .bind(k.dims.priority.clone())
                    .bind(String::new());
                for x in v.0 {
                    q = q.bind(x);
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    (rows.len(), folded, t.elapsed())
}

async fn fold_cost(store: &Store, tenant: &str, events: usize, end: i64) -> Duration {
    let mut tx = store.pool().begin().await.unwrap();
    for i in 0..events {
        let at = end - DAY + (i as i64) * 1000;
        let iso = Timestamp(at).to_string();
        let rec = serde_json::json!({
            "id": format!("bench-call-{i}"), "call_id": format!("c{i}"), "direction": "inbound",
            "caller": "+15550100", "dialled": "+15550199", "queue_id": format!("queue-{:02}", i % 20),
            "agent_id": format!("agent-{:03}", i % 500), "agents": [{"agent_id": format!("agent-{:03}", i % 500), "outcome": "answered", "offered_at": iso, "talk_ms": 1000}],
            "started_at": iso, "enqueued_at": iso, "answered_at": iso, "ended_at": iso,
            "wait_ms": 5000, "talk_ms": 100000, "wrap_ms": 10000, "outcome": "answered", "sl_met": true
        });
        let stored = serde_json::json!({
            "id": format!("00000000-bench-{i:012}"), "tenant_id": tenant, "min_role": "supervisor",
            "only_users": null, "kind": "call.ended", "customer_id": null, "case_id": null, "data": rec
        });
        sqlx::query("INSERT INTO outbox (id, tenant_id, kind, event, created_at, published_at) VALUES ($1, $2, 'call.ended', $3, $4, $4)")
            .bind(format!("00000000-bench-{i:012}"))
            .bind(tenant)
            .bind(stored.to_string())
            .bind(at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let t = Instant::now();
    let n = store.analytics_catch_up().await.unwrap();
    let took = t.elapsed();
    assert_eq!(n, events, "every event folded once");
    took / u32::try_from(events).unwrap_or(1)
}

async fn run(store: Store, label: &str, n: usize) {
    store.migrate().await.unwrap();
    let tenant = store.create_tenant("bench").await.unwrap();
    let now = store.now().0;
    let end = now - now.rem_euclid(DAY);
    let (rows, folded, inserted) = seed(&store, &tenant.id, n, end).await;
    println!(
        "{label}: {n} interactions -> {rows} rollup rows (folded in {:.1} s, inserted in {:.1} s)",
        folded.as_secs_f64(),
        inserted.as_secs_f64()
    );
    let sup = Actor {
        tenant_id: tenant.id.clone(),
        user_id: None,
        role: Role::Supervisor,
    };
    for by in [GroupBy::Queue, GroupBy::Agent] {
        let q = KpiQuery {
            from: Timestamp(end - DAYS * DAY),
            to: Timestamp(end),
            group_by: by,
            ..KpiQuery::default()
        };
        let first = store.analytics_kpis(&sup, &q).await.unwrap();
        let mut samples = Vec::new();
        for _ in 0..env_usize("PARLEY_BENCH_RUNS", 30) {
            let t = Instant::now();
            let r = store.analytics_kpis(&sup, &q).await.unwrap();
            samples.push(t.elapsed());
            assert_eq!(r.rows.len(), first.rows.len());
        }
        let contacts = first.total.metrics[0].value.unwrap_or(0.0);
        assert_eq!(contacts as usize, n, "the report counts every interaction");
        println!(
            "{label}: 90-day KPI report by {by:?}: {} rows, p50 {:.1} ms, p99 {:.1} ms",
            first.rows.len(),
            pct(&mut samples, 0.5).as_secs_f64() * 1000.0,
            pct(&mut samples, 0.99).as_secs_f64() * 1000.0
        );
    }
    let events = env_usize("PARLEY_BENCH_EVENTS", 20_000);
    let per = fold_cost(&store, &tenant.id, events, end).await;
    println!(
        "{label}: fold (outbox -> fact -> 2 rollup upserts), {events} call.ended events: {:.0} µs per event",
        per.as_secs_f64() * 1e6
    );
}

#[tokio::main]
async fn main() {
    let n = env_usize("PARLEY_BENCH_INTERACTIONS", 1_000_000);
    let backend = std::env::var("PARLEY_BENCH_BACKEND").unwrap_or_else(|_| "both".into());
    if backend == "sqlite" || backend == "both" {
        let dir =
            std::env::temp_dir().join(format!("parley-bench-analytics-{}", std::process::id()));
        let store = Store::open_sqlite_dir(&dir).await.unwrap();
        run(store.clone(), "sqlite", n).await;
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
    if backend == "postgres" || backend == "both" {
        use sqlx::Connection as _;
        let admin_url = std::env::var("PARLEY_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query("DROP DATABASE IF EXISTS parley_bench_analytics WITH (FORCE)")
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE parley_bench_analytics")
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap();
        let store = Store::connect(&format!("{base}/parley_bench_analytics"))
            .await
            .unwrap();
        run(store.clone(), "postgres", n).await;
        store.close().await;
        sqlx::query("DROP DATABASE IF EXISTS parley_bench_analytics WITH (FORCE)")
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
