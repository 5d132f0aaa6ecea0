//! Measuring triage on a labelled set: what `benches/triage.rs` records in
//! BENCHMARKS.md and the tests hold to.

use parley_cases::sla::Priority;

use crate::triage::{Labelled, NOISE_INTENTS, Triager};

/// Held-out examples written for this crate (never trained on).
pub const HELDOUT_TSV: &str = include_str!("../data/triage-heldout.tsv");

/// Triage's figures on a labelled set.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Examples.
    pub n: usize,
    /// Intent right.
    pub intent_ok: usize,
    /// Priority exactly right (of the examples labelled with one).
    pub priority_ok: usize,
    /// Examples labelled with a priority.
    pub priority_n: usize,
    /// P0 examples found P0.
    pub p0_found: usize,
    /// P0 examples.
    pub p0_n: usize,
    /// Real requests (not noise) marked noise.
    pub noise_fp: usize,
    /// Real requests.
    pub real_n: usize,
    /// The misses: (text, expected intent/priority, got intent/priority).
    pub misses: Vec<(String, String, String)>,
}

impl Report {
    /// Intent accuracy, 0 to 1.
    pub fn intent_accuracy(&self) -> f64 {
        ratio(self.intent_ok, self.n)
    }
    /// Priority exact, 0 to 1.
    pub fn priority_exact(&self) -> f64 {
        ratio(self.priority_ok, self.priority_n)
    }
    /// P0 recall, 0 to 1.
    pub fn p0_recall(&self) -> f64 {
        ratio(self.p0_found, self.p0_n)
    }
    /// Share of real requests marked noise, 0 to 1.
    pub fn noise_false_positive_rate(&self) -> f64 {
        ratio(self.noise_fp, self.real_n)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Triages every example (as `tenant`) and counts.
pub fn evaluate(t: &Triager, tenant: Option<&str>, set: &[Labelled]) -> Report {
    let mut r = Report::default();
    for l in set {
        let got = t.triage(tenant, &l.text);
        r.n += 1;
        let intent_ok = got.intent == l.intent;
        r.intent_ok += usize::from(intent_ok);
        let mut priority_ok = true;
        if let Some(p) = l.priority {
            r.priority_n += 1;
            priority_ok = got.priority == p;
            r.priority_ok += usize::from(priority_ok);
            if p == Priority::P0 {
                r.p0_n += 1;
                r.p0_found += usize::from(got.priority == Priority::P0);
            }
        }
        if !NOISE_INTENTS.contains(&l.intent.as_str()) {
            r.real_n += 1;
            r.noise_fp += usize::from(got.noise);
        }
        if !intent_ok || !priority_ok {
            r.misses.push((
                l.text.clone(),
                format!("{}/{}", l.intent, l.priority.map_or("-", |p| p.as_str())),
                format!("{}/{}", got.intent, got.priority.as_str()),
            ));
        }
    }
    r
}
