//! Triage figures for BENCHMARKS.md (issue #20): held-out intent accuracy, priority
//! exact, P0 recall, real requests marked noise, a tenant intent learned from 5
//! examples on paraphrases, per-message latency (p50/p95/p99, one message at a time as
//! the ingestion path does), and memory with the embedding model loaded.
//!
//! `cargo bench --bench triage` (release). Needs `../shared/models/all-MiniLM-L6-v2`
//! (or `PARLEY_EMBEDDING_MODEL`) and reads `../shared/data/triage-dev.tsv` if present.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parley_ai::Embedder;
use parley_ai::eval::{HELDOUT_TSV, evaluate};
use parley_ai::triage::{IntentDef, Triager, parse_tsv};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("PARLEY_EMBEDDING_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/models/all-MiniLM-L6-v2"));
    let rss0 = rss_mib();
    let t0 = Instant::now();
    let e = Arc::new(Embedder::load(&dir).expect("embedding model"));
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t = Triager::with_embedder(e);
    let t1 = Instant::now();
    t.warm_up().expect("warm up");
    let warm_ms = t1.elapsed().as_secs_f64() * 1e3;
    let rss1 = rss_mib();
    println!("model load {load_ms:.0} ms, built-in examples embedded in {warm_ms:.0} ms");
    println!("RSS before {rss0:.0} MiB, with the model and examples {rss1:.0} MiB");

    let own = parse_tsv(HELDOUT_TSV);
    let dev = std::fs::read_to_string(root.join("../shared/data/triage-dev.tsv"))
        .map(|s| parse_tsv(&s))
        .unwrap_or_default();
    for (name, set) in [("crate held-out", &own), ("shared dev", &dev)] {
        if set.is_empty() {
            continue;
        }
        let r = evaluate(&t, None, set);
        println!(
            "{name}: n={} intent {:.1} % priority exact {:.1} % P0 recall {:.0} % ({}/{}) real requests marked noise {:.1} % ({}/{})",
            r.n,
            100.0 * r.intent_accuracy(),
            100.0 * r.priority_exact(),
            100.0 * r.p0_recall(),
            r.p0_found,
            r.p0_n,
            100.0 * r.noise_false_positive_rate(),
            r.noise_fp,
            r.real_n
        );
    }
    let mut all = own.clone();
    all.extend(dev.iter().cloned());
    let r = evaluate(&t, None, &all);
    println!(
        "both: n={} intent {:.1} % priority exact {:.1} % P0 recall {:.0} % noise {:.1} %",
        r.n,
        100.0 * r.intent_accuracy(),
        100.0 * r.priority_exact(),
        100.0 * r.p0_recall(),
        100.0 * r.noise_false_positive_rate()
    );

    // Latency: every held-out text, one at a time, 3 rounds.
    let mut times = Vec::new();
    for _ in 0..3 {
        for l in &all {
            let s = Instant::now();
            std::hint::black_box(t.triage(Some("bench"), &l.text));
            times.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "triage latency over {} messages: p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms max {:.1} ms",
        times.len(),
        pct(&times, 0.5),
        pct(&times, 0.95),
        pct(&times, 0.99),
        times[times.len() - 1]
    );
    let long = "My internet is down again and nobody helps. ".repeat(100);
    let s = Instant::now();
    for _ in 0..10 {
        std::hint::black_box(t.triage(None, &long));
    }
    println!(
        "a 4,400-character message (cut at 256 tokens): {:.1} ms",
        s.elapsed().as_secs_f64() * 1e3 / 10.0
    );

    // A tenant intent from 5 examples + a description, on 10 paraphrases.
    let solar = IntentDef {
        name: "solar_panels".into(),
        description: "Questions about our rooftop solar panel installations and feed-in tariffs"
            .into(),
        examples: vec![
            "When will the solar panels be installed on my roof?".into(),
            "My solar inverter shows a red light".into(),
            "How much do I get paid for the electricity my panels export?".into(),
            "Can you add two more solar panels to my installation?".into(),
            "The solar app says my panels produced nothing today".into(),
        ],
        priority: None,
    };
    let s = Instant::now();
    t.add_intent("bench", &solar).expect("intent");
    let learn_ms = s.elapsed().as_secs_f64() * 1e3;
    let paraphrases = [
        "When is the installer coming to put the panels on my house?",
        "The inverter for my PV system has an error light on",
        "What's the feed-in rate for the power my solar roof sends to the grid?",
        "I want to extend my solar array with extra panels",
        "My solar panels generated zero kWh today according to the app",
        "Is my rooftop solar covered if a storm damages a panel?",
        "How long does a solar installation take?",
        "Do the photovoltaic panels need cleaning?",
        "Why did my solar export payment go down this quarter?",
        "Can the solar panels power my house during a blackout?",
    ];
    let hits = paraphrases
        .iter()
        .filter(|p| t.triage(Some("bench"), p).intent == "solar_panels")
        .count();
    println!(
        "tenant intent from 5 examples: learned in {learn_ms:.0} ms, recognised on {hits}/{} paraphrases",
        paraphrases.len()
    );
    let r = evaluate(&t, Some("bench"), &all);
    println!(
        "held-out with that intent added: intent {:.1} %",
        100.0 * r.intent_accuracy()
    );
    println!("RSS at the end {:.0} MiB", rss_mib());
}
