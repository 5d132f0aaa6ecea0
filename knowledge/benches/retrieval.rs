//! Answer retrieval latency on the demo knowledge base: every labelled question of
//! `tests/fixtures/questions.tsv`, many rounds; p50/p95/max of
//! (a) `answer::answer` on a built index (BM25 search, coverage, passage), and
//! (b) `Knowledge::answer` through a SQLite store (the per-call `kb_revision` check
//! included), as the HTTP API and the bot call it. Also the time to build the index
//! (what a change to the knowledge base costs). Harness-less:
//! `cargo bench -p parley-knowledge --bench retrieval`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use parley_cases::kb::{DEMO_ARTICLES, PublishedArticle, parse_markdown, validate};
use parley_cases::{Actor, Store};
use parley_knowledge::answer::{self, DEFAULT_MIN_COVERAGE, Signals};
use parley_knowledge::{ArticleIndex, Knowledge};

fn questions() -> Vec<String> {
    include_str!("../tests/fixtures/questions.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.splitn(3, '\t').nth(2).map(str::to_owned))
        .collect()
}

fn articles() -> Vec<PublishedArticle> {
    DEMO_ARTICLES
        .iter()
        .map(|(_, t)| {
            let a = validate(&parse_markdown(t).unwrap()).unwrap();
            PublishedArticle {
                slug: a.slug,
                title: a.title,
                body: a.body,
                tags: a.tags,
                version: 1,
            }
        })
        .collect()
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let p = |q: f64| d[((d.len() as f64 * q) as usize).min(d.len() - 1)];
    println!(
        "{what}: n={} p50={:?} p95={:?} max={:?}",
        d.len(),
        p(0.5),
        p(0.95),
        d[d.len() - 1]
    );
}

fn main() {
    let qs = questions();
    let mut builds = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = ArticleIndex::build(articles()).unwrap();
        builds.push(t.elapsed());
    }
    report("index build (12 articles)", builds);
    let idx = ArticleIndex::build(articles()).unwrap();
    let mut pure = Vec::new();
    for _ in 0..50 {
        for q in &qs {
            let t = Instant::now();
            let _ =
                answer::answer(&idx, q, Signals::default(), None, DEFAULT_MIN_COVERAGE).unwrap();
            pure.push(t.elapsed());
        }
    }
    report("answer on the index", pure);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("parley-kb-bench-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sqlite_dir(&dir).await.unwrap();
        store.migrate().await.unwrap();
        let t = store.create_tenant("bench").await.unwrap();
        let actor = Actor::system(&t.id);
        let files: Vec<(String, String)> = DEMO_ARTICLES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        store.import_kb_articles(&actor, &files).await.unwrap();
        let kb = Knowledge::new();
        let mut full = Vec::new();
        for _ in 0..20 {
            for q in &qs {
                let t = Instant::now();
                let _ = kb.answer(&store, &actor, q).await.unwrap();
                full.push(t.elapsed());
            }
        }
        report("Knowledge::answer through SQLite", full);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}
