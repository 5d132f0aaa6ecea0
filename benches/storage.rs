//! Storage benchmark: timeline and case-list queries at scale, on SQLite and PostgreSQL.
//!
//! Seeds 1,000,000 interactions across 10,000 customers (and one case per customer),
//! then times the store's real query paths (not hand-written SQL) and prints p50/p99.
//!
//! ```text
//! cargo bench --bench storage                      # both backends
//! PARLEY_BENCH_BACKEND=sqlite cargo bench --bench storage
//! PARLEY_BENCH_INTERACTIONS=100000 cargo bench --bench storage   # quicker
//! ```
//!
//! The seeded databases are kept (SQLite under $TMPDIR/parley-bench, PostgreSQL database
//! `parley_bench`) and reused when they already hold the requested data.

use std::time::{Duration, Instant};

use parley_cases::cases::CaseFilter;
use parley_cases::sla::{CaseStatus, Priority};
use parley_cases::{Actor, Role, Store};

const CUSTOMERS: usize = 10_000;
const AGENTS: usize = 20;
const BATCH: usize = 500;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    name: String,
    n: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(name: &str, mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let pick = |q: f64| {
        samples[((n as f64 * q).ceil() as usize)
            .saturating_sub(1)
            .min(n - 1)]
    };
    let mean = samples.iter().sum::<Duration>() / n as u32;
    Stats {
        name: name.into(),
        n,
        p50: pick(0.50),
        p99: pick(0.99),
        mean,
    }
}

/// Deterministic xorshift so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "refund", "invoice", "router", "password", "delivery", "late", "broken", "thanks", "please",
    "account", "upgrade", "cancel", "billing", "charge", "help", "order", "update", "screen",
    "signal", "agent",
];

async fn seed(
    store: &Store,
    interactions: usize,
) -> anyhow::Result<(Actor, Vec<String>, Vec<String>)> {
    let tenant = match store.tenant_by_name("bench").await? {
        Some(t) => t,
        None => store.create_tenant("bench").await?,
    };
    let actor = Actor {
        tenant_id: tenant.id.clone(),
        user_id: None,
        role: Role::Admin,
    };
    let have: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM interactions WHERE tenant_id = $1")
        .bind(&tenant.id)
        .fetch_one(store.pool())
        .await?;
    let tenant_id = tenant.id.clone();
    let load = |sql: &'static str| {
        let tenant_id = tenant_id.clone();
        async move {
            let rows: Vec<(String,)> = sqlx::query_as(sql)
                .bind(tenant_id)
                .fetch_all(store.pool())
                .await?;
            anyhow::Ok(rows.into_iter().map(|(id,)| id).collect::<Vec<_>>())
        }
    };
    if have.0 as usize == interactions {
        eprintln!("reusing seeded data ({interactions} interactions)");
        let customers = load("SELECT id FROM customers WHERE tenant_id = $1").await?;
        let agents = load("SELECT id FROM users WHERE tenant_id = $1").await?;
        return Ok((actor, customers, agents));
    }
    anyhow::ensure!(
        have.0 == 0,
        "bench tenant holds {} interactions; drop the bench database first",
        have.0
    );
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = store.now().0;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let u = store
            .create_user(
                &actor,
                parley_cases::directory::NewUser {
                    email: format!("agent{i}@bench.test"),
                    name: format!("Agent {i}"),
                    role: Role::Agent,
                    password: "bench password".into(),
                },
            )
            .await?;
        agents.push(u.id);
    }
    let customers: Vec<String> = (0..CUSTOMERS)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    for chunk in customers.chunks(BATCH) {
        let mut q = String::from(
            "INSERT INTO customers (id, tenant_id, name, created_at, updated_at) VALUES ",
        );
        let mut n = 1;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(',');
            }
            q.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                n,
                n + 1,
                n + 2,
                n + 3,
                n + 3
            ));
            n += 4;
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
        for (i, id) in chunk.iter().enumerate() {
            query = query
                .bind(id)
                .bind(&tenant.id)
                .bind(format!("Customer {i}"))
                .bind(now - 400 * 86_400_000);
        }
        query.execute(store.pool()).await?;
    }
    // One case per customer; a mix of statuses, priorities, assignees, tags.
    let statuses = [
        "new",
        "open",
        "open",
        "pending_customer",
        "on_hold",
        "resolved",
        "closed",
    ];
    let priorities = ["P0", "P1", "P2", "P2", "P3"];
    let mut case_ids = Vec::with_capacity(CUSTOMERS);
    for (ci, chunk) in customers.chunks(BATCH).enumerate() {
        let mut q = String::from(
            "INSERT INTO cases (id, tenant_id, number, customer_id, title, status, priority, assignee_id, created_at, updated_at) VALUES ",
        );
        let mut n = 1;
        for i in 0..chunk.len() {
            if i > 0 {
                q.push(',');
            }
            q.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                n,
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8,
                n + 8
            ));
            n += 9;
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
        for (i, cust) in chunk.iter().enumerate() {
            let id = uuid::Uuid::now_v7().to_string();
            case_ids.push(id.clone());
            query = query
                .bind(id)
                .bind(&tenant.id)
                .bind((ci * BATCH + i + 1) as i64)
                .bind(cust)
                .bind("Bench case")
                .bind(statuses[rng.below(statuses.len())])
                .bind(priorities[rng.below(priorities.len())])
                .bind(&agents[rng.below(AGENTS)])
                .bind(now - rng.below(365) as i64 * 86_400_000);
        }
        query.execute(store.pool()).await?;
    }
    for chunk in case_ids.chunks(BATCH) {
        let mut q = String::from("INSERT INTO case_tags (tenant_id, case_id, tag) VALUES ");
        let tagged: Vec<&String> = chunk.iter().step_by(10).collect();
        for i in 0..tagged.len() {
            if i > 0 {
                q.push(',');
            }
            q.push_str(&format!("(${}, ${}, 'vip')", 2 * i + 1, 2 * i + 2));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
        for c in tagged {
            query = query.bind(&tenant.id).bind(c);
        }
        query.execute(store.pool()).await?;
    }
    let kinds = [
        ("call", "voice"),
        ("message", "whatsapp"),
        ("message", "web_chat"),
        ("email", "email"),
        ("message", "sms"),
    ];
    let per_tx = 20_000;
    let mut done = 0;
    while done < interactions {
        let mut tx = store.pool().begin().await?;
        let end = (done + per_tx).min(interactions);
        let mut i = done;
        while i < end {
            let rows = (end - i).min(BATCH);
            let mut q = String::from(
                "INSERT INTO interactions (id, tenant_id, customer_id, kind, channel, direction, body, occurred_at, created_at) VALUES ",
            );
            let mut n = 1;
            for r in 0..rows {
                if r > 0 {
                    q.push(',');
                }
                q.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n,
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7,
                    n + 7
                ));
                n += 8;
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
            for _ in 0..rows {
                let (kind, channel) = kinds[rng.below(kinds.len())];
                let body: Vec<&str> = (0..8).map(|_| WORDS[rng.below(WORDS.len())]).collect();
                query = query
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(&tenant.id)
                    .bind(&customers[rng.below(CUSTOMERS)])
                    .bind(kind)
                    .bind(channel)
                    .bind(if rng.below(2) == 0 {
                        "inbound"
                    } else {
                        "outbound"
                    })
                    .bind(body.join(" "))
                    .bind(now - (rng.below(365 * 86_400) as i64) * 1000);
            }
            query.execute(&mut *tx).await?;
            i += rows;
        }
        tx.commit().await?;
        done = end;
        eprint!("\rseeded {done}/{interactions} interactions");
    }
    eprintln!(" in {:.1?}", started.elapsed());
    // Fresh planner statistics on both engines.
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    Ok((actor, customers, agents))
}

async fn time<F, Fut>(name: &str, n: usize, mut f: F) -> anyhow::Result<Stats>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    for i in 0..n.min(20) {
        f(i).await?; // warm-up
    }
    let mut samples = Vec::with_capacity(n);
    let mut rows = 0;
    for i in 0..n {
        let t = Instant::now();
        rows += f(i).await?;
        samples.push(t.elapsed());
    }
    anyhow::ensure!(rows > 0, "{name} returned no rows at all");
    Ok(stats(name, samples))
}

async fn run(backend: &str, interactions: usize) -> anyhow::Result<Vec<Stats>> {
    let store = match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join("parley-bench");
            Store::open_sqlite_dir(&dir).await?
        }
        _ => {
            let admin = std::env::var("PARLEY_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
            let exists: Option<(i32,)> =
                sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = 'parley_bench'")
                    .fetch_optional(&mut conn)
                    .await?;
            if exists.is_none() {
                sqlx::query("CREATE DATABASE parley_bench")
                    .execute(&mut conn)
                    .await?;
            }
            Store::connect(&format!("{base}/parley_bench")).await?
        }
    };
    store.migrate().await?;
    let (actor, customers, agents) = seed(&store, interactions).await?;
    let mut rng = Rng(42);
    let picks: Vec<usize> = (0..5000).map(|_| rng.below(customers.len())).collect();
    let mut out = Vec::new();
    let s = &store;
    let a = &actor;
    out.push(
        time("timeline: latest 50 of one customer", 2000, |i| {
            let id = customers[picks[i]].clone();
            async move { Ok(s.timeline(a, &id, Some(50), None).await?.items.len()) }
        })
        .await?,
    );
    out.push(
        time("timeline: second page (cursor)", 500, |i| {
            let id = customers[picks[i + 2000]].clone();
            async move {
                let p = s.timeline(a, &id, Some(50), None).await?;
                match p.next_cursor {
                    Some(c) => Ok(s.timeline(a, &id, Some(50), Some(&c)).await?.items.len()),
                    None => Ok(0),
                }
            }
        })
        .await?,
    );
    let filters: Vec<(&str, CaseFilter)> = vec![
        ("cases: latest 50, no filter", CaseFilter::default()),
        (
            "cases: status=open",
            CaseFilter {
                status: Some(CaseStatus::Open),
                ..Default::default()
            },
        ),
        (
            "cases: priority=P0 + status=open",
            CaseFilter {
                status: Some(CaseStatus::Open),
                priority: Some(Priority::P0),
                ..Default::default()
            },
        ),
        (
            "cases: assignee=one agent",
            CaseFilter {
                assignee_id: Some(agents[3].clone()),
                ..Default::default()
            },
        ),
        (
            "cases: tag=vip",
            CaseFilter {
                tag: Some("vip".into()),
                ..Default::default()
            },
        ),
    ];
    for (name, f) in filters {
        let f = &f;
        out.push(
            time(name, 300, |_| async move {
                Ok(s.list_cases(a, f).await?.items.len())
            })
            .await?,
        );
    }
    out.push(
        time("search: one word (50 newest hits)", 100, |i| async move {
            Ok(s.search_interactions(a, WORDS[i % WORDS.len()], Some(50))
                .await?
                .len())
        })
        .await?,
    );
    store.close().await;
    Ok(out)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs bench targets with no arguments… and `cargo bench`
    // passes `--bench`; only run the heavy seeding for the latter.
    if !std::env::args().any(|a| a == "--bench") {
        println!("storage bench: run with `cargo bench --bench storage`");
        return Ok(());
    }
    let interactions = env_usize("PARLEY_BENCH_INTERACTIONS", 1_000_000);
    let which = std::env::var("PARLEY_BENCH_BACKEND").unwrap_or_else(|_| "both".into());
    let backends: Vec<&str> = match which.as_str() {
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        _ => vec!["sqlite", "postgres"],
    };
    let date = jiff::Zoned::now().date();
    println!(
        "\n### Storage queries — {interactions} interactions, {CUSTOMERS} customers, {CUSTOMERS} cases ({date}, {})\n",
        machine()
    );
    println!("| backend | query | n | p50 | p99 | mean |");
    println!("|---|---|---:|---:|---:|---:|");
    for b in backends {
        for s in run(b, interactions).await? {
            println!(
                "| {b} | {} | {} | {:.2?} | {:.2?} | {:.2?} |",
                s.name, s.n, s.p50, s.p99, s.mean
            );
        }
    }
    Ok(())
}
