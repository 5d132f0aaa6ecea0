//! The parse corpus: real-world-shaped messages under `tests/corpus/*.eml` (Outlook,
//! Gmail, Apple Mail, mobile clients, forwarded mail, non-UTF-8 charsets, encoded
//! words, inline images, a calendar invite, malformed MIME, a bounce, automatic mail),
//! each with its expected parse result in the `.json` beside it. Run with
//! `UPDATE_EXPECT=1` to rewrite the expectations from the current behaviour (then
//! review the diff). The 20 MB attachment is generated, not stored.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use parley_email::parse;
use serde_json::{Value, json};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
}

fn summary(raw: &[u8]) -> Value {
    match parse(raw) {
        Ok(p) => {
            let mut v = serde_json::to_value(&p).unwrap();
            // Threading keys as the store will try them.
            v["thread_hints"] = {
                let h = parley_email::thread::hints(&p, "example.com");
                json!({
                    "in_reply_to": h.in_reply_to,
                    "references_right_to_left": h.references,
                    "reply_token": h.reply_token,
                    "case_number": h.case_number,
                    "sender": h.sender,
                    "subject": h.subject,
                })
            };
            v
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

#[test]
fn corpus_parses_as_expected() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let files = corpus();
    assert!(files.len() >= 12, "corpus missing");
    let mut failures = Vec::new();
    for eml in files {
        let raw = fs::read(&eml).unwrap();
        let got = summary(&raw);
        let expect_path = eml.with_extension("json");
        if update {
            let mut s = serde_json::to_string_pretty(&got).unwrap();
            s.push('\n');
            fs::write(&expect_path, s).unwrap();
            continue;
        }
        let want: Value = serde_json::from_str(
            &fs::read_to_string(&expect_path)
                .unwrap_or_else(|_| panic!("{} has no .json (UPDATE_EXPECT=1)", eml.display())),
        )
        .unwrap();
        if got != want {
            failures.push(format!(
                "{}:\n got: {}\nwant: {}",
                eml.display(),
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A 20 MB attachment (base64 in the message: ~27 MB) parses whole, bytes exact.
#[test]
fn twenty_megabyte_attachment() {
    let size = 20 << 20;
    let data: Vec<u8> = (0..size)
        .map(|i: usize| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    let b64 = {
        use std::fmt::Write;
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::with_capacity(size * 4 / 3 + size / 50);
        for (n, c) in data.chunks(3).enumerate() {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let x = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i > c.len() {
                    s.push('=');
                } else {
                    s.push(char::from(A[((x >> (18 - 6 * i)) & 63) as usize]));
                }
            }
            if n % 19 == 18 {
                s.push_str("\r\n");
            }
        }
        let _ = write!(s, "\r\n");
        s
    };
    let raw = format!(
        "From: Big <big@example.org>\r\nTo: support@example.com\r\nSubject: logs\r\nMessage-ID: <big-1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nLogs attached.\r\n--b\r\nContent-Type: application/zip; name=logs.zip\r\nContent-Disposition: attachment; filename=logs.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}--b--\r\n"
    );
    let p = parse(raw.as_bytes()).unwrap();
    assert_eq!(p.visible_text, "Logs attached.");
    assert_eq!(p.attachments.len(), 1);
    assert_eq!(p.attachments[0].name, "logs.zip");
    assert_eq!(p.attachments[0].size, size);
    assert!(p.attachments[0].bytes == data, "bytes differ");
}

/// Not a message: empty input or no header is refused; anything else parses.
#[test]
fn garbage_is_refused_or_flagged_never_panics() {
    assert!(parse(b"").is_err());
    assert!(parse(b"   \r\n").is_err());
    for junk in [
        &b"\xff\xfe\x00garbage"[..],
        b"Subject: only\r\n",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"From: <>\r\nContent-Transfer-Encoding: base64\r\n\r\n====",
    ] {
        let _ = parse(junk);
    }
}
