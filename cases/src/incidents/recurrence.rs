//! Recurrence detection (issue #21), pure: a burst of similar inbound messages across
//! customers (→ suggest an incident, with the matching conversations ready to link), the
//! same customer with the same problem again within N days (→ repeat contact), and the
//! symptoms of a resolved incident coming back (→ reopen suggestion).
//!
//! Similarity is token overlap (Jaccard over lower-cased content words); an embedding
//! similarity can replace [`similarity`] without changing the callers.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::types::Timestamp;

/// An inbound message, as recurrence detection sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Inbound {
    /// The conversation.
    pub conversation_id: String,
    /// The customer.
    pub customer_id: String,
    /// The text.
    pub text: String,
    /// When it arrived.
    pub at: Timestamp,
}

/// Words that say nothing about the problem.
const STOP: &[&str] = &[
    "the", "and", "for", "you", "your", "are", "but", "not", "can", "cannot", "can't", "this",
    "that", "with", "have", "has", "had", "was", "were", "been", "from", "what", "when", "why",
    "how", "who", "will", "would", "could", "should", "please", "help", "hello", "thanks", "thank",
    "there", "here", "again", "just", "any", "all", "its", "it's", "our", "out", "get", "got",
    "does", "did", "doesn't", "don't", "isn't", "now", "today", "still", "some", "too", "very",
    "also", "into", "them", "they", "their", "then", "than", "one", "hi", "hey",
];

/// The content words of a text: lower-cased, 3 characters or more, stop words removed,
/// a trailing plural `s` dropped.
pub fn tokens(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .map(|w| {
            if w.len() > 4 && w.ends_with('s') && !w.ends_with("ss") {
                w[..w.len() - 1].to_owned()
            } else {
                w
            }
        })
        .collect()
}

/// Jaccard similarity of two token sets (0 when either is empty).
pub fn similarity(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    inter as f64 / union as f64
}

/// Thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Two messages are "the same problem" at this similarity or more.
    pub threshold: f64,
    /// A burst needs this many distinct customers.
    pub min_customers: usize,
    /// Repeat contact: the same customer again within this many days.
    pub repeat_days: i64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            threshold: 0.3,
            min_customers: 3,
            repeat_days: 7,
        }
    }
}

/// A group of similar messages from several customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Burst {
    /// The words most of its messages share.
    pub terms: Vec<String>,
    /// The conversations, ready to link.
    pub conversation_ids: Vec<String>,
    /// Distinct customers.
    pub customers: usize,
}

/// Groups messages by similarity (single link to the group's first message, in time
/// order) and returns the groups with at least `min_customers` distinct customers,
/// largest first.
pub fn bursts(msgs: &[Inbound], p: Params) -> Vec<Burst> {
    let mut sorted: Vec<&Inbound> = msgs.iter().collect();
    sorted.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then(a.conversation_id.cmp(&b.conversation_id))
    });
    let mut groups: Vec<(BTreeSet<String>, Vec<&Inbound>)> = Vec::new();
    for m in sorted {
        let t = tokens(&m.text);
        if t.is_empty() {
            continue;
        }
        let best = groups
            .iter_mut()
            .map(|g| (similarity(&g.0, &t), g))
            .filter(|(s, _)| *s >= p.threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((_, g)) => g.1.push(m),
            None => groups.push((t, vec![m])),
        }
    }
    let mut out: Vec<Burst> = groups
        .into_iter()
        .filter_map(|(seed, members)| {
            let customers: BTreeSet<&str> =
                members.iter().map(|m| m.customer_id.as_str()).collect();
            if customers.len() < p.min_customers {
                return None;
            }
            let mut convs: Vec<String> =
                members.iter().map(|m| m.conversation_id.clone()).collect();
            convs.sort();
            convs.dedup();
            // Terms: the seed's words found in at least half of the members.
            let sets: Vec<BTreeSet<String>> = members.iter().map(|m| tokens(&m.text)).collect();
            let terms = seed
                .into_iter()
                .filter(|w| sets.iter().filter(|s| s.contains(w)).count() * 2 >= sets.len())
                .collect();
            Some(Burst {
                terms,
                conversation_ids: convs,
                customers: customers.len(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.customers.cmp(&a.customers).then(a.terms.cmp(&b.terms)));
    out
}

/// A customer back with the same problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Repeat {
    /// The customer.
    pub customer_id: String,
    /// Their conversations about it, oldest first.
    pub conversation_ids: Vec<String>,
}

/// The same customer, a similar message in another conversation within `repeat_days`.
pub fn repeats(msgs: &[Inbound], p: Params) -> Vec<Repeat> {
    let mut sorted: Vec<&Inbound> = msgs.iter().collect();
    sorted.sort_by(|a, b| {
        a.customer_id
            .cmp(&b.customer_id)
            .then(a.at.cmp(&b.at))
            .then(a.conversation_id.cmp(&b.conversation_id))
    });
    let window = p.repeat_days * 24 * 60;
    let mut out: Vec<Repeat> = Vec::new();
    for (i, m) in sorted.iter().enumerate() {
        let tm = tokens(&m.text);
        for earlier in sorted[..i].iter().rev() {
            if earlier.customer_id != m.customer_id {
                break;
            }
            if earlier.conversation_id == m.conversation_id
                || earlier.at.plus_minutes(window) < m.at
                || similarity(&tokens(&earlier.text), &tm) < p.threshold
            {
                continue;
            }
            match out.iter_mut().find(|r| r.customer_id == m.customer_id) {
                Some(r) => {
                    for c in [&earlier.conversation_id, &m.conversation_id] {
                        if !r.conversation_ids.contains(c) {
                            r.conversation_ids.push(c.clone());
                        }
                    }
                }
                None => out.push(Repeat {
                    customer_id: m.customer_id.clone(),
                    conversation_ids: vec![
                        earlier.conversation_id.clone(),
                        m.conversation_id.clone(),
                    ],
                }),
            }
            break;
        }
    }
    out
}

/// A resolved incident whose symptoms are back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Reopen {
    /// The incident.
    pub incident_id: String,
    /// The conversations showing the symptoms.
    pub conversation_ids: Vec<String>,
}

/// Messages that arrived after an incident was resolved and resemble its symptoms
/// (its title and notes) as much as the threshold asks; at least `min_customers - 1`
/// customers (two by default) make a reopen suggestion.
pub fn reopens(
    resolved: &[(String, String, Timestamp)],
    msgs: &[Inbound],
    p: Params,
) -> Vec<Reopen> {
    let mut out = Vec::new();
    for (id, symptoms, resolved_at) in resolved {
        let s = tokens(symptoms);
        let hits: Vec<&Inbound> = msgs
            .iter()
            .filter(|m| m.at > *resolved_at)
            .filter(|m| {
                let t = tokens(&m.text);
                // Containment of the message in the symptoms: symptoms are long.
                let inter = t.intersection(&s).count();
                !t.is_empty() && inter as f64 / t.len() as f64 >= p.threshold.max(0.5)
            })
            .collect();
        let customers: BTreeSet<&str> = hits.iter().map(|m| m.customer_id.as_str()).collect();
        if customers.len() >= p.min_customers.saturating_sub(1).max(1) {
            let mut convs: Vec<String> = hits.iter().map(|m| m.conversation_id.clone()).collect();
            convs.sort();
            convs.dedup();
            out.push(Reopen {
                incident_id: id.clone(),
                conversation_ids: convs,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_noise() {
        let t = tokens("Hello, I CAN'T log in to my account since this morning!!");
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            ["account", "log", "morning", "since"]
        );
    }
}
