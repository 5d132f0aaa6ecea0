//! Stream framing for TCP/TLS (`message::frame`).
//!
//! The input is a stream buffer. Properties: framing never panics; every frame
//! length is within the buffer and the size limit; keep-alives are only CR/LF;
//! the framer and the message parser agree on where a message ends (a framed
//! message parses with exactly the body the framer counted, and a buffer holding
//! exactly one parseable message with a Content-Length is framed as that message);
//! consuming frames one after another always makes progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::message::{Frame, MessageExt, SipMessage, frame, parse};

/// Small enough that the fuzzer reaches the size limit paths.
const MAX: usize = 1024;

fn body_len(m: &SipMessage) -> usize {
    match m {
        SipMessage::Request(r) => r.body().len(),
        SipMessage::Response(r) => r.body().len(),
    }
}

fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fuzz_target!(|data: &[u8]| {
    // A whole message on its own: the framer must cut it where the parser does.
    if data.first().is_some_and(|&b| b != b'\r' && b != b'\n')
        && let Ok(m) = parse(data, MAX)
        && m.hdrs().count("Content-Length") == 1
        && let Some(head) = head_len(data)
    {
        let want = head + body_len(&m);
        match frame(data, MAX) {
            Ok(Frame::Message { len }) => assert_eq!(len, want, "framer and parser disagree"),
            other => panic!("a parseable message is framed as {other:?}, expected {want} bytes"),
        }
    }

    let mut rest = data;
    // Each step consumes at least one byte, so this ends.
    for _ in 0..=data.len() {
        match frame(rest, MAX) {
            Ok(Frame::NeedMore) | Err(_) => break,
            Ok(Frame::KeepAlive { len, ping }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "keep-alive len {len} of {}",
                    rest.len()
                );
                assert!(
                    rest[..len].iter().all(|&b| b == b'\r' || b == b'\n'),
                    "keep-alive consumed non-CRLF bytes"
                );
                if ping {
                    assert!(rest[..len].windows(4).any(|w| w == b"\r\n\r\n"));
                }
                rest = &rest[len..];
            }
            Ok(Frame::Message { len }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "message len {len} of {}",
                    rest.len()
                );
                assert!(len <= MAX, "frame of {len} bytes above the {MAX} limit");
                let msg = &rest[..len];
                if let Ok(m) = parse(msg, MAX) {
                    let head = head_len(msg).unwrap_or(len);
                    assert_eq!(
                        head + body_len(&m),
                        len,
                        "the parser dropped bytes of a framed message"
                    );
                    let printed = m.to_bytes();
                    assert_eq!(parse(&printed, usize::MAX).ok(), Some(m));
                }
                rest = &rest[len..];
            }
        }
        if rest.is_empty() {
            break;
        }
    }
});
