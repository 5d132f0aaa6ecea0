//! MIME parsing (pure; mail-parser 0.11): one entry, [`parse`], that never panics and
//! never refuses a message that has a header: a malformed one is returned with
//! `malformed: true` (the caller stores it raw and flags it; the mailbox goes on).
//!
//! What comes out: the threading headers (Message-ID, In-Reply-To, References), the
//! addresses, the subject, the text (the plain part, or the HTML part as text), the
//! sanitised HTML (ammonia: no scripts, styles or event handlers; remote images lose
//! their `src` until the agent asks for the original, `cid:` images stay), the
//! attachments (inline images with their Content-ID, calendar invites as files), the
//! *visible* text (quoted history and signature folded away), automatic-mail and
//! bounce classification ([`crate::noise`]).

use std::collections::HashSet;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use crate::noise::{self, AutoKind, Bounce};
use crate::{Error, Result};

/// An address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address.
    pub address: String,
}

/// A file carried by the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// File name (a made-up one when the part has none).
    pub name: String,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// Content-ID of an inline part (without angle brackets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// Shown inline in the HTML (`Content-Disposition: inline` with a Content-ID).
    pub inline: bool,
    /// Size in bytes.
    pub size: usize,
    /// The decoded bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ParsedEmail {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids.
    pub in_reply_to: Vec<String>,
    /// References ids, oldest first.
    pub references: Vec<String>,
    /// From.
    pub from: Option<Mailbox>,
    /// To.
    pub to: Vec<Mailbox>,
    /// Cc.
    pub cc: Vec<Mailbox>,
    /// Reply-To.
    pub reply_to: Vec<Mailbox>,
    /// Delivered-To / X-Original-To (where the MTA delivered it).
    pub delivered_to: Vec<Mailbox>,
    /// Subject (decoded).
    pub subject: Option<String>,
    /// Date, seconds since the epoch.
    pub date: Option<i64>,
    /// The whole text.
    pub text: String,
    /// The text without quoted history and signature (what the timeline shows).
    pub visible_text: String,
    /// Sanitised HTML.
    pub html: Option<String>,
    /// Remote images were removed from the HTML.
    pub remote_images: bool,
    /// Files, inline images included.
    pub attachments: Vec<Attachment>,
    /// Automatic mail.
    pub auto: Option<AutoKind>,
    /// A delivery failure report.
    pub bounce: Option<Bounce>,
    /// Something in it could not be decoded as declared (stored raw, flagged).
    pub malformed: bool,
}

fn strip_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t
            .split_whitespace()
            .map(strip_id)
            .filter(|s| !s.is_empty())
            .collect(),
        HeaderValue::TextList(l) => l
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(strip_id)
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| {
                let address = x.address()?.trim().to_string();
                if address.is_empty() {
                    return None;
                }
                Some(Mailbox {
                    name: x
                        .name()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                    address,
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Sanitises HTML: returns it and whether remote images were removed.
pub fn sanitise_html(html: &str) -> (String, bool) {
    let remote = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = remote.clone();
    let clean = ammonia::Builder::default()
        .add_url_schemes(["cid"])
        .add_tag_attributes("img", ["width", "height"])
        .attribute_filter(move |el, attr, value| {
            if el == "img" && attr == "src" {
                let v = value.trim_start().to_ascii_lowercase();
                if v.starts_with("cid:") {
                    return Some(value.into());
                }
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
            Some(value.into())
        })
        .clean(html)
        .to_string();
    (clean, remote.load(std::sync::atomic::Ordering::Relaxed))
}

/// Lines that open the quoted history (everything from them on is folded).
fn opens_quote(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    if lower.starts_with("-----original message-----")
        || lower.starts_with("-----ursprüngliche nachricht-----")
        || lower.starts_with("-----message d'origine-----")
        || lower == "________________________________"
    {
        return true;
    }
    // "On Mon, 1 Jan 2024 at 10:00, Alice <a@x> wrote:" (Gmail, Apple Mail, Thunderbird),
    // possibly wrapped over two lines.
    let joined = match next {
        Some(n) if !lower.ends_with(':') => format!("{lower} {}", n.trim().to_lowercase()),
        _ => lower.clone(),
    };
    for (start, end) in [
        ("on ", "wrote:"),
        ("le ", "a écrit :"),
        ("le ", "a écrit:"),
        ("am ", "schrieb:"),
        ("el ", "escribió:"),
        ("il ", "ha scritto:"),
        ("op ", "geschreven:"),
    ] {
        if lower.starts_with(start) && (lower.ends_with(end) || joined.ends_with(end)) {
            return true;
        }
    }
    // Outlook's header block: "From: …" followed by "Sent: …" / "Date: …".
    if (lower.starts_with("from:") || lower.starts_with("von:") || lower.starts_with("de :"))
        && next.is_some_and(|n| {
            let n = n.trim().to_lowercase();
            n.starts_with("sent:") || n.starts_with("date:") || n.starts_with("gesendet:")
        })
    {
        return true;
    }
    false
}

/// Signature openers (the rest of the message is folded).
fn opens_signature(line: &str) -> bool {
    let l = line.trim_end_matches(['\r']);
    if l == "-- " || l == "--" {
        return true;
    }
    let lower = l.trim().to_lowercase();
    [
        "sent from my iphone",
        "sent from my ipad",
        "sent from my android",
        "sent from my samsung",
        "sent from my mobile",
        "sent from mail for windows",
        "get outlook for ios",
        "get outlook for android",
        "envoyé de mon iphone",
        "von meinem iphone gesendet",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// The text without quoted history and signature. Forwarded mail is kept whole (the
/// forwarded message is what the customer sends). Never empty when `text` is not.
pub fn fold(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let forwarded = lines.iter().take(5).any(|l| {
        let l = l.trim().to_lowercase();
        l.contains("forwarded message") || l.starts_with("begin forwarded message")
    });
    if forwarded {
        return text.trim().to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if opens_quote(line, lines.get(i + 1).copied()) || opens_signature(line) {
            break;
        }
        if line.trim_start().starts_with('>') {
            // Interleaved quotes: skip the quoted line, keep going.
            continue;
        }
        out.push(line);
    }
    let folded = out.join("\n").trim().to_string();
    if folded.is_empty() {
        text.trim().to_string()
    } else {
        folded
    }
}

/// Parses a raw message. Only bytes with no header at all are refused.
pub fn parse(raw: &[u8]) -> Result<ParsedEmail> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::NotAMessage("empty"));
    }
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(Error::NotAMessage("no header"))?;
    if msg.headers().is_empty() {
        return Err(Error::NotAMessage("no header"));
    }
    let mut p = ParsedEmail {
        message_id: msg.message_id().map(strip_id).filter(|s| !s.is_empty()),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from: mailboxes(msg.from()).into_iter().next(),
        to: mailboxes(msg.to()),
        cc: mailboxes(msg.cc()),
        reply_to: mailboxes(msg.reply_to()),
        subject: msg.subject().map(|s| s.trim().to_string()),
        date: msg.date().map(mail_parser::DateTime::to_timestamp),
        ..ParsedEmail::default()
    };
    for (name, value) in msg.headers_raw() {
        if name.eq_ignore_ascii_case("delivered-to") || name.eq_ignore_ascii_case("x-original-to") {
            let a = value.trim().trim_start_matches('<').trim_end_matches('>');
            if crate::thread::split_address(a).is_some() {
                p.delivered_to.push(Mailbox {
                    name: None,
                    address: a.to_string(),
                });
            }
        }
    }
    p.malformed = msg.parts.iter().any(|part| part.is_encoding_problem)
        || (p.from.is_none() && p.message_id.is_none());
    p.text = msg
        .body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    if let Some(h) = msg.body_html(0) {
        // A text-only message has its text as html too (mail-parser converts); keep
        // HTML only where the sender wrote some.
        if msg.html_body_count() > 0
            && msg
                .html_part(0)
                .is_some_and(|part| matches!(part.body, PartType::Html(_)))
        {
            let (clean, remote) = sanitise_html(&h);
            p.html = Some(clean);
            p.remote_images = remote;
        }
    }
    p.visible_text = fold(&p.text);
    // Attachments: what mail-parser lists, without the bodies it already chose.
    let bodies: HashSet<u32> = msg
        .text_body
        .iter()
        .chain(msg.html_body.iter())
        .copied()
        .collect();
    for (n, id) in msg.attachments.iter().enumerate() {
        if bodies.contains(id) {
            continue;
        }
        let Some(part) = msg.parts.get(usize::try_from(*id).unwrap_or(usize::MAX)) else {
            continue;
        };
        let ct = part
            .content_type()
            .map(|c| {
                format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream"))
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let content_id = part.content_id().map(strip_id);
        let inline = content_id.is_some()
            && part
                .content_disposition()
                .is_none_or(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let bytes = part.contents().to_vec();
        let name = part
            .attachment_name()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default_name(n, &ct));
        p.attachments.push(Attachment {
            name,
            content_type: ct,
            content_id,
            inline,
            size: bytes.len(),
            bytes,
        });
    }
    // Automatic mail and bounces.
    let subject = p.subject.clone();
    p.auto = noise::classify(msg.headers_raw(), subject.as_deref());
    p.bounce = bounce(&msg);
    Ok(p)
}

fn default_name(n: usize, ct: &str) -> String {
    let ext = match ct {
        "text/calendar" => "ics",
        "message/rfc822" => "eml",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        _ => "bin",
    };
    format!("attachment-{}.{ext}", n + 1)
}

/// A header's value in a bare header block (`text/rfc822-headers`), unfolded.
fn header_in(block: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(name) {
            let mut v = v.trim().to_string();
            while let Some(n) = lines.peek().filter(|n| n.starts_with([' ', '\t'])) {
                v.push(' ');
                v.push_str(n.trim());
                lines.next();
            }
            return Some(v);
        }
    }
    None
}

fn bounce(msg: &mail_parser::Message<'_>) -> Option<Bounce> {
    let ct = msg.content_type()?;
    if !(ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status")))
    {
        return None;
    }
    let mut status_body = None;
    let mut original = None;
    for part in &msg.parts {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let sub = pct.subtype().unwrap_or_default().to_ascii_lowercase();
        let top = pct.ctype().to_ascii_lowercase();
        if (top == "message" || top == "text")
            && (sub == "delivery-status" || sub == "global-delivery-status")
        {
            status_body = Some(String::from_utf8_lossy(part.contents()).into_owned());
        } else if (top == "message" && sub == "rfc822")
            || (top == "text" && sub == "rfc822-headers")
        {
            let inner = match part.message() {
                Some(m) => m.message_id().map(strip_id),
                None => header_in(part.contents(), "message-id").map(|v| strip_id(&v)),
            };
            if original.is_none() {
                original = inner;
            }
        }
    }
    noise::delivery_status(&status_body?, original)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_cuts_quotes_and_signatures() {
        assert_eq!(
            fold("Thanks!\n\nOn Mon, 1 Jan 2024 at 10:00, Support <s@x> wrote:\n> old\n"),
            "Thanks!"
        );
        assert_eq!(fold("Hi\n-- \nAlice\n"), "Hi");
        assert_eq!(fold("> only quote\n"), "> only quote");
        assert_eq!(
            fold("See below\n\nFrom: Support <s@x>\nSent: Monday\nTo: a\n\nold"),
            "See below"
        );
    }

    #[test]
    fn html_is_sanitised_and_remote_images_dropped() {
        let (h, remote) = sanitise_html(
            "<p onclick=x()>Hi<script>alert(1)</script><img src=\"https://t.example/p.gif\"><img src=\"cid:logo\"></p>",
        );
        assert!(remote);
        assert!(!h.contains("script") && !h.contains("onclick") && !h.contains("t.example"));
        assert!(h.contains("cid:logo"));
    }
}
