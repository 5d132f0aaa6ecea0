//! Email parsing (issue #18): the one parse entry of every inbound mail (IMAP and the
//! SMTP receiver).
//!
//! Properties: `parse` never panics on any bytes; the threading keys, subject
//! helpers, quote folding and the DSN reader never panic on what it returns (or on the
//! raw text); attachment sizes match their bytes. Seeds: the parse corpus
//! (`email/tests/corpus/*.eml`), copied to `seeds/email_parse/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_email::{parse, thread};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse(data) {
        for a in &p.attachments {
            assert_eq!(a.size, a.bytes.len());
        }
        let _ = thread::hints(&p, "example.com");
        if let Some(s) = &p.subject {
            let _ = thread::normalise_subject(s);
            let _ = thread::case_reference(s);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parley_email::noise::delivery_status(s, None);
        let _ = parley_email::parse::fold(s);
    }
});
