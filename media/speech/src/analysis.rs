//! What a call's transcript says: sentiment per utterance (VADER's offline lexicon),
//! a call-level trend, per-tenant phrase alerts, sustained-negative alerts, keywords,
//! a rule-based intent and a post-call summary behind [`Summarizer`]. Pure: segments
//! go in, alerts and a [`CallInsights`] come out.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use serde::Serialize;

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The customer (the inbound leg).
    Caller,
    /// The agent (the bridged agent leg).
    Agent,
}

impl Speaker {
    /// `caller` / `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
        }
    }

    /// `Caller` / `Agent`, for transcripts.
    pub fn label(self) -> &'static str {
        match self {
            Speaker::Caller => "Caller",
            Speaker::Agent => "Agent",
        }
    }
}

fn analyzer() -> &'static vader_sentiment::SentimentIntensityAnalyzer<'static> {
    static A: OnceLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> = OnceLock::new();
    A.get_or_init(vader_sentiment::SentimentIntensityAnalyzer::new)
}

/// VADER's compound score of `text`, -1 (negative) … +1 (positive).
pub fn sentiment(text: &str) -> f32 {
    if text.trim().is_empty() {
        return 0.0;
    }
    analyzer()
        .polarity_scores(text)
        .get("compound")
        .copied()
        .unwrap_or(0.0) as f32
}

/// One transcribed utterance as the analysis sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Who spoke.
    pub speaker: Speaker,
    /// Start, ms from the call's start.
    pub start_ms: u64,
    /// End, ms.
    pub end_ms: u64,
    /// The words.
    pub text: String,
    /// Compound sentiment.
    pub sentiment: f32,
}

/// Per-tenant alert rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Phrases that raise an alert when said (case-insensitive, whole words).
    pub phrases: Vec<String>,
    /// A caller utterance at or below this is negative.
    pub negative_threshold: f32,
    /// Negative caller utterances in a row that raise the sustained-negative alert.
    pub negative_run: usize,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            phrases: vec![
                "cancel my account".into(),
                "lawyer".into(),
                "complaint".into(),
                "speak to a manager".into(),
            ],
            negative_threshold: -0.3,
            negative_run: 3,
        }
    }
}

/// An alert for supervisors.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A watched phrase was said.
    Phrase {
        /// The rule's phrase.
        phrase: String,
        /// Who said it.
        speaker: Speaker,
        /// When, ms.
        at_ms: u64,
    },
    /// The caller has been negative for several utterances.
    SustainedNegative {
        /// Negative utterances in a row.
        utterances: usize,
        /// Their mean sentiment.
        mean: f32,
        /// When, ms.
        at_ms: u64,
    },
}

/// A post-call summariser (extractive today; an LLM provider can implement it later).
pub trait Summarizer: Send + Sync {
    /// A short summary of the transcript.
    fn summarize(&self, lines: &[Line], keywords: &[String]) -> String;
}

/// Picks the most informative utterances (keyword density, strong sentiment), in
/// call order, up to three.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractiveSummarizer;

impl Summarizer for ExtractiveSummarizer {
    fn summarize(&self, lines: &[Line], keywords: &[String]) -> String {
        let kw: HashSet<&str> = keywords.iter().map(String::as_str).collect();
        let mut scored: Vec<(f32, usize)> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.text.split_whitespace().count() >= 3)
            .map(|(i, l)| {
                let words = words(&l.text);
                let hits = words.iter().filter(|w| kw.contains(w.as_str())).count() as f32;
                let caller = if l.speaker == Speaker::Caller {
                    0.5
                } else {
                    0.0
                };
                (
                    hits / (words.len() as f32).sqrt().max(1.0) + l.sentiment.abs() + caller,
                    i,
                )
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut pick: Vec<usize> = scored.iter().take(3).map(|s| s.1).collect();
        pick.sort_unstable();
        pick.iter()
            .map(|&i| format!("{}: {}", lines[i].speaker.label(), lines[i].text.trim()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "got", "had",
    "has", "have", "he", "her", "here", "hi", "hello", "him", "his", "how", "i", "if", "im", "in",
    "into", "is", "it", "its", "just", "know", "like", "me", "my", "no", "not", "now", "of", "ok",
    "okay", "on", "one", "or", "our", "out", "please", "she", "so", "that", "the", "their", "them",
    "then", "there", "they", "this", "to", "up", "us", "very", "was", "we", "well", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "yes", "you", "your", "thank",
    "thanks", "want", "need", "today", "dont", "really", "going", "let", "see", "also", "too",
    "some", "more", "than", "only", "over",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.replace('\'', "").to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Intents recognised by keyword rules: (intent, trigger words or phrases), most
/// specific first.
pub const INTENTS: &[(&str, &[&str])] = &[
    (
        "cancel",
        &["cancel", "close my account", "terminate", "unsubscribe"],
    ),
    (
        "billing",
        &[
            "bill", "billing", "invoice", "charge", "charged", "refund", "payment", "balance",
        ],
    ),
    (
        "technical_support",
        &[
            "broken",
            "not working",
            "error",
            "internet",
            "outage",
            "reset",
        ],
    ),
    ("sales", &["buy", "upgrade", "new plan", "pricing", "offer"]),
    (
        "appointment",
        &["appointment", "schedule", "book", "reschedule"],
    ),
    // Generic: only when nothing more specific was asked for.
    (
        "complaint",
        &["complaint", "lawyer", "unacceptable", "terrible", "manager"],
    ),
];

/// Whether `phrase` occurs in `text` on word boundaries (case-insensitive).
pub fn contains_phrase(text: &str, phrase: &str) -> bool {
    let t = format!(" {} ", words(text).join(" "));
    let p = words(phrase).join(" ");
    !p.is_empty() && t.contains(&format!(" {p} "))
}

/// The first intent (in [`INTENTS`] order) whose triggers occur in `text`.
pub fn detect_intent(text: &str) -> Option<&'static str> {
    INTENTS
        .iter()
        .find(|(_, triggers)| triggers.iter().any(|t| contains_phrase(text, t)))
        .map(|(name, _)| *name)
}

/// The call-level sentiment trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Mean sentiment of all utterances.
    pub overall: f32,
    /// Mean of the caller's first half of utterances.
    pub caller_start: f32,
    /// Mean of the caller's second half.
    pub caller_end: f32,
    /// `improving`, `worsening` or `steady` (caller, ±0.2).
    pub direction: &'static str,
    /// (end ms, rolling mean of the last three utterances) per utterance.
    pub points: Vec<(u64, f32)>,
}

/// Everything stored with the call when it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallInsights {
    /// `Caller: …` / `Agent: …` lines in time order.
    pub transcript: String,
    /// The trend.
    pub trend: Trend,
    /// The summary.
    pub summary: String,
    /// Keywords (most frequent content words, then matched alert phrases).
    pub keywords: Vec<String>,
    /// Detected intent.
    pub intent: Option<String>,
    /// Alerts raised during the call.
    pub alerts: Vec<Alert>,
}

fn mean(v: impl Iterator<Item = f32>) -> f32 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f32 }
}

/// The running analysis of one call.
#[derive(Debug, Clone)]
pub struct CallAnalysis {
    rules: AlertRules,
    lines: Vec<Line>,
    fired: HashSet<String>,
    negative_run: usize,
    negative_alerted: bool,
    alerts: Vec<Alert>,
}

impl CallAnalysis {
    /// A new call with these rules.
    pub fn new(rules: AlertRules) -> Self {
        CallAnalysis {
            rules,
            lines: Vec::new(),
            fired: HashSet::new(),
            negative_run: 0,
            negative_alerted: false,
            alerts: Vec::new(),
        }
    }

    /// The lines so far, in arrival order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Adds an utterance; returns the alerts it raises (each phrase once per call;
    /// sustained negative once until the caller recovers).
    pub fn add(&mut self, line: Line) -> Vec<Alert> {
        let mut out = Vec::new();
        for p in &self.rules.phrases {
            if !self.fired.contains(p) && contains_phrase(&line.text, p) {
                self.fired.insert(p.clone());
                out.push(Alert::Phrase {
                    phrase: p.clone(),
                    speaker: line.speaker,
                    at_ms: line.end_ms,
                });
            }
        }
        if line.speaker == Speaker::Caller {
            if line.sentiment <= self.rules.negative_threshold {
                self.negative_run += 1;
            } else if line.sentiment > 0.0 {
                self.negative_run = 0;
                self.negative_alerted = false;
            }
            if self.negative_run >= self.rules.negative_run.max(1) && !self.negative_alerted {
                self.negative_alerted = true;
                let n = self.negative_run;
                let recent = self
                    .lines
                    .iter()
                    .filter(|l| l.speaker == Speaker::Caller)
                    .rev()
                    .take(n - 1)
                    .map(|l| l.sentiment)
                    .chain(std::iter::once(line.sentiment));
                out.push(Alert::SustainedNegative {
                    utterances: n,
                    mean: mean(recent),
                    at_ms: line.end_ms,
                });
            }
        }
        self.lines.push(line);
        self.alerts.extend(out.iter().cloned());
        out
    }

    /// The trend so far.
    pub fn trend(&self) -> Trend {
        let mut sorted: Vec<&Line> = self.lines.iter().collect();
        sorted.sort_by_key(|l| l.start_ms);
        let caller: Vec<f32> = sorted
            .iter()
            .filter(|l| l.speaker == Speaker::Caller)
            .map(|l| l.sentiment)
            .collect();
        let half = caller.len() / 2;
        let (a, b) = if caller.len() < 2 {
            (mean(caller.iter().copied()), mean(caller.iter().copied()))
        } else {
            (
                mean(caller[..half].iter().copied()),
                mean(caller[half..].iter().copied()),
            )
        };
        let direction = if b - a > 0.2 {
            "improving"
        } else if a - b > 0.2 {
            "worsening"
        } else {
            "steady"
        };
        let points = sorted
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let from = i.saturating_sub(2);
                (l.end_ms, mean(sorted[from..=i].iter().map(|l| l.sentiment)))
            })
            .collect();
        Trend {
            overall: mean(sorted.iter().map(|l| l.sentiment)),
            caller_start: a,
            caller_end: b,
            direction,
            points,
        }
    }

    /// Up to `n` keywords: the most frequent content words (at least twice, or the
    /// top ones), then alert phrases that were said.
    pub fn keywords(&self, n: usize) -> Vec<String> {
        let mut freq: BTreeMap<String, usize> = BTreeMap::new();
        for l in &self.lines {
            for w in words(&l.text) {
                if w.len() > 2
                    && !STOPWORDS.contains(&w.as_str())
                    && !w.chars().all(|c| c.is_ascii_digit())
                {
                    *freq.entry(w).or_default() += 1;
                }
            }
        }
        let mut v: Vec<(String, usize)> = freq.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut out: Vec<String> = v.into_iter().take(n).map(|(w, _)| w).collect();
        for p in &self.rules.phrases {
            if self.fired.contains(p) && !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// The intent of the whole call: the caller's first utterance with one, else any.
    pub fn intent(&self) -> Option<&'static str> {
        let by = |who: Option<Speaker>| {
            self.lines
                .iter()
                .filter(|l| who.is_none_or(|w| l.speaker == w))
                .find_map(|l| detect_intent(&l.text))
        };
        by(Some(Speaker::Caller)).or_else(|| by(None))
    }

    /// The transcript, summary and the rest, for storage.
    pub fn finish(&self, summarizer: &dyn Summarizer) -> CallInsights {
        let mut sorted = self.lines.clone();
        sorted.sort_by_key(|l| l.start_ms);
        let keywords = self.keywords(8);
        let transcript = sorted
            .iter()
            .map(|l| format!("{}: {}", l.speaker.label(), l.text.trim()))
            .collect::<Vec<_>>()
            .join("\n");
        CallInsights {
            transcript,
            trend: self.trend(),
            summary: summarizer.summarize(&sorted, &keywords),
            keywords,
            intent: self.intent().map(str::to_owned),
            alerts: self.alerts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(speaker: Speaker, t: u64, text: &str) -> Line {
        Line {
            speaker,
            start_ms: t,
            end_ms: t + 1000,
            text: text.into(),
            sentiment: sentiment(text),
        }
    }

    #[test]
    fn lexicon_scores_fixed_utterances() {
        assert!(sentiment("Thank you so much, that was really helpful, great service!") > 0.5);
        assert!(sentiment("This is terrible, I am angry and very disappointed.") < -0.5);
        assert!(sentiment("My account number is four five six.").abs() < 0.1);
        assert_eq!(sentiment("   "), 0.0);
    }

    #[test]
    fn phrase_alerts_fire_once_on_word_boundaries() {
        let mut a = CallAnalysis::new(AlertRules::default());
        let al = a.add(line(
            Speaker::Caller,
            0,
            "I want to CANCEL my account right now.",
        ));
        assert_eq!(
            al,
            vec![Alert::Phrase {
                phrase: "cancel my account".into(),
                speaker: Speaker::Caller,
                at_ms: 1000
            }]
        );
        assert!(
            a.add(line(Speaker::Caller, 2000, "Cancel my account!"))
                .is_empty()
        );
        // "lawyers" is not "lawyer"; "mylawyer" neither.
        assert!(
            a.add(line(Speaker::Agent, 3000, "Our lawyers say so."))
                .is_empty()
        );
        let al = a.add(line(Speaker::Caller, 4000, "I will call my lawyer."));
        assert!(matches!(&al[..], [Alert::Phrase { phrase, .. }] if phrase == "lawyer"));
    }

    #[test]
    fn sustained_negative_raises_one_alert_until_recovery() {
        let rules = AlertRules {
            phrases: vec![],
            ..AlertRules::default()
        };
        let mut a = CallAnalysis::new(rules);
        let bad = [
            "This is terrible and I am furious.",
            "Your service is awful, horrible.",
            "I hate this, it is a disaster.",
            "Still awful and useless.",
        ];
        let mut alerts = Vec::new();
        for (i, t) in bad.iter().enumerate() {
            alerts.extend(a.add(line(Speaker::Caller, i as u64 * 2000, t)));
            // The agent's words do not break the caller's run.
            alerts.extend(a.add(line(Speaker::Agent, i as u64 * 2000 + 1000, "I am sorry.")));
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(
            matches!(alerts[0], Alert::SustainedNegative { utterances: 3, mean, .. } if mean < -0.3)
        );
        // Recovery re-arms it.
        assert!(
            a.add(line(
                Speaker::Caller,
                9000,
                "Great, thank you, that helps a lot!"
            ))
            .is_empty()
        );
        let mut again = Vec::new();
        for t in bad.iter().take(3) {
            again.extend(a.add(line(Speaker::Caller, 10_000, t)));
        }
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn trend_keywords_intent_and_summary() {
        let mut a = CallAnalysis::new(AlertRules::default());
        a.add(line(
            Speaker::Caller,
            0,
            "My bill is wrong, I was charged twice, this is terrible.",
        ));
        a.add(line(
            Speaker::Agent,
            2000,
            "I can refund the second charge on your bill today.",
        ));
        a.add(line(
            Speaker::Caller,
            4000,
            "The bill problem again, awful.",
        ));
        a.add(line(
            Speaker::Caller,
            6000,
            "Great, thank you so much, wonderful help.",
        ));
        a.add(line(Speaker::Caller, 8000, "Perfect, I am happy now."));
        let ins = a.finish(&ExtractiveSummarizer);
        assert_eq!(ins.intent.as_deref(), Some("billing"));
        assert_eq!(ins.keywords.first().map(String::as_str), Some("bill"));
        assert_eq!(ins.trend.direction, "improving");
        assert!(ins.trend.caller_end > ins.trend.caller_start);
        assert_eq!(ins.trend.points.len(), 5);
        assert!(ins.transcript.starts_with("Caller: My bill is wrong"));
        assert!(ins.transcript.contains("\nAgent: I can refund"));
        assert!(ins.summary.contains("bill"), "{}", ins.summary);
        assert!(ins.summary.len() < ins.transcript.len());
    }

    #[test]
    fn intents_from_keywords() {
        assert_eq!(
            detect_intent("I'd like to check my balance"),
            Some("billing")
        );
        assert_eq!(detect_intent("please cancel the contract"), Some("cancel"));
        assert_eq!(
            detect_intent("my internet is not working"),
            Some("technical_support")
        );
        assert_eq!(detect_intent("hello there"), None);
    }
}
