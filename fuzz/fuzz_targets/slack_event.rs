//! Slack Events API requests (issue #21), as they reach `POST /hooks/v1/slack/{tenant}`.
//!
//! The input is split at the first NUL: the headers' values (timestamp, a newline, the
//! signature) and the body. Properties: verification and parsing never panic; a body
//! signed with the secret at a fresh timestamp always verifies, and with one byte more
//! it never does.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-signing-secret";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let head = String::from_utf8_lossy(head);
    let (ts, sig) = head.split_once('\n').unwrap_or((&head, ""));
    let _ = parley_slack::verify(SECRET, Some(ts), Some(sig), body, NOW);
    let _ = parley_slack::parse_event(body);

    let fresh = NOW.to_string();
    let good = parley_slack::sign(SECRET, &fresh, body);
    assert!(parley_slack::verify(SECRET, Some(&fresh), Some(&good), body, NOW).is_ok());
    let mut longer = body.to_vec();
    longer.push(b'x');
    assert!(parley_slack::verify(SECRET, Some(&fresh), Some(&good), &longer, NOW).is_err());
});
