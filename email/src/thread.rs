//! Threading keys (pure). The store resolves a thread in the order issue #18 pins:
//!
//! 1. `In-Reply-To`,
//! 2. `References` right to left,
//! 3. the `reply+<token>@` address Parley put in Reply-To,
//! 4. a case reference in the subject (`[#1234]`),
//! 5. the same sender with an open conversation on the channel within a window and the
//!    same normalised subject;
//!
//! else a new conversation. This module extracts those keys from a parsed message
//! ([`hints`]); `Store::email_thread_key` applies them.

use parley_cases::conversations::email::ThreadHints;

use crate::parse::ParsedEmail;

/// Splits `local@domain` (no spaces, one `@`, both sides non-empty).
pub fn split_address(addr: &str) -> Option<(&str, &str)> {
    let addr = addr.trim();
    let (l, d) = addr.rsplit_once('@')?;
    if l.is_empty() || d.is_empty() || addr.contains(char::is_whitespace) || d.contains('@') {
        return None;
    }
    Some((l, d))
}

/// The token of a `reply+<token>@<domain>` address (on `domain`, case-insensitive).
pub fn reply_token(addr: &str, domain: &str) -> Option<String> {
    let (local, d) = split_address(addr)?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let t = local
        .strip_prefix("reply+")
        .or_else(|| local.strip_prefix("REPLY+"))?;
    (t.len() >= 8 && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| t.to_ascii_lowercase())
}

/// The address carrying `token` on `domain`.
pub fn reply_address(token: &str, domain: &str) -> String {
    format!("reply+{token}@{domain}")
}

/// A case reference in a subject: the number of the first `[#1234]`.
pub fn case_reference(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(i) = rest.find("[#") {
        let after = &rest[i + 2..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty()
            && after[digits.len()..].starts_with(']')
            && let Ok(n) = digits.parse()
        {
            return Some(n);
        }
        rest = after;
    }
    None
}

/// Reply and forward prefixes in the languages mail clients use.
const PREFIXES: &[&str] = &[
    "re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "rif", "r", "tr", "réf", "ref", "enc",
    "odp", "res",
];

/// A subject without reply/forward prefixes (`Re:`, `RE[2]:`, `Fwd:`, `AW:` …), case
/// references and list tags, lowercased, whitespace collapsed.
pub fn normalise_subject(subject: &str) -> String {
    let mut s = subject.trim().to_string();
    loop {
        let before = s.len();
        let t = s.trim_start();
        // `[tag]` / `[#123]` at the start.
        let t = if t.starts_with('[') {
            match t.find(']') {
                Some(i) => &t[i + 1..],
                None => t,
            }
        } else {
            t
        };
        let t = t.trim_start();
        let mut next = t;
        if let Some(colon) = t.find(':') {
            let head = &t[..colon];
            let word = head.split('[').next().unwrap_or(head).trim().to_lowercase();
            if colon <= 8 && PREFIXES.contains(&word.as_str()) {
                next = &t[colon + 1..];
            }
        }
        s = next.to_string();
        if s.len() == before {
            break;
        }
    }
    // Case references anywhere.
    while let Some(i) = s.find("[#") {
        match s[i..].find(']') {
            Some(j) => s.replace_range(i..i + j + 1, ""),
            None => break,
        }
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The threading keys of a parsed message received on a channel whose support address
/// is on `domain`.
pub fn hints(p: &ParsedEmail, domain: &str) -> ThreadHints {
    let reply_token =
        p.to.iter()
            .chain(p.cc.iter())
            .chain(p.delivered_to.iter())
            .find_map(|m| reply_token(&m.address, domain));
    ThreadHints {
        in_reply_to: p.in_reply_to.clone(),
        references: p.references.iter().rev().cloned().collect(),
        reply_token,
        case_number: p.subject.as_deref().and_then(case_reference),
        sender: p.from.as_ref().map(|m| m.address.to_ascii_lowercase()),
        subject: p
            .subject
            .as_deref()
            .map(normalise_subject)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_normalise() {
        for (i, o) in [
            ("Re: Order 42", "order 42"),
            ("RE: RE: Fwd: Order  42", "order 42"),
            ("AW: WG: Bestellung", "bestellung"),
            ("Re[2]: help", "help"),
            ("[#1234] Re: broken", "broken"),
            ("Re: broken [#1234]", "broken"),
            ("[list] Re: topic", "topic"),
            ("Reminder: renew", "reminder: renew"),
            ("", ""),
        ] {
            assert_eq!(normalise_subject(i), o, "{i}");
        }
    }

    #[test]
    fn case_references() {
        assert_eq!(case_reference("Re: [#1234] broken"), Some(1234));
        assert_eq!(case_reference("[#] x [#77]"), Some(77));
        assert_eq!(case_reference("#1234"), None);
    }

    #[test]
    fn reply_tokens() {
        assert_eq!(
            reply_token("reply+Abcdef123@Example.com", "example.com").as_deref(),
            Some("abcdef123")
        );
        assert_eq!(
            reply_token("reply+abcdef123@other.com", "example.com"),
            None
        );
        assert_eq!(reply_token("reply+x@example.com", "example.com"), None);
        assert_eq!(reply_token("support@example.com", "example.com"), None);
    }
}
