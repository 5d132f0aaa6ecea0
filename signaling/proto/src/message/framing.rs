//! Stream framing for connection-oriented transports (TCP, TLS).

use super::header::canonical_name;
use super::{find_subslice, parse_content_length};
use crate::error::{Error, Result};

/// What [`frame`] found at the start of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `len` bytes of keep-alive CRLFs (RFC 5626 §3.5.1) to consume. `ping` is true
    /// when they contained a double CRLF, which the runtime answers with a single
    /// CRLF "pong".
    KeepAlive {
        /// Bytes to consume.
        len: usize,
        /// Whether a CRLFCRLF ping was seen.
        ping: bool,
    },
    /// A complete message occupies the first `len` bytes.
    Message {
        /// Bytes of the message (headers and body).
        len: usize,
    },
    /// Not enough bytes yet.
    NeedMore,
}

/// Finds the first complete message (or keep-alive) in a stream buffer.
///
/// On a stream, Content-Length is mandatory (RFC 3261 §18.3); its absence is an
/// error. `max_size` bounds header section plus body.
pub fn frame(buf: &[u8], max_size: usize) -> Result<Frame> {
    let ws = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    if ws > 0 {
        // Consume whole CRLF pairs only; a lone trailing CR waits for its LF.
        let mut len = 0;
        while len < ws {
            if buf[len] == b'\n' {
                len += 1;
            } else if len + 1 < buf.len() {
                len += if buf[len + 1] == b'\n' { 2 } else { 1 };
            } else {
                break;
            }
        }
        if len == 0 {
            return Ok(Frame::NeedMore);
        }
        let ping = find_subslice(&buf[..len], b"\r\n\r\n").is_some();
        return Ok(Frame::KeepAlive { len, ping });
    }
    let Some(head_end) = find_subslice(buf, b"\r\n\r\n") else {
        if buf.len() > max_size {
            return Err(Error::TooLarge {
                size: buf.len(),
                limit: max_size,
            });
        }
        return Ok(Frame::NeedMore);
    };
    let head = &buf[..head_end];
    // Find Content-Length the way the parser does: a line starting with SP/HT
    // continues the previous header (RFC 3261 §7.3.1), so it is part of a
    // folded Content-Length value, or ignored.
    let mut declared = None;
    let mut folded: Option<Vec<u8>> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(v) = folded.as_mut() {
                v.push(b' ');
                v.extend_from_slice(line);
            }
            continue;
        }
        if let Some(v) = folded.take() {
            set_content_length(&mut declared, &v)?;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        if canonical_name(name.trim()) == "Content-Length" {
            folded = Some(line[colon + 1..].to_vec());
        }
    }
    if let Some(v) = folded.take() {
        set_content_length(&mut declared, &v)?;
    }
    let declared = declared.ok_or(Error::MissingHeader {
        name: "Content-Length",
    })?;
    let total = (head_end + 4)
        .checked_add(declared)
        .ok_or(Error::TooLarge {
            size: usize::MAX,
            limit: max_size,
        })?;
    if total > max_size {
        return Err(Error::TooLarge {
            size: total,
            limit: max_size,
        });
    }
    if buf.len() < total {
        return Ok(Frame::NeedMore);
    }
    Ok(Frame::Message { len: total })
}

fn set_content_length(declared: &mut Option<usize>, value: &[u8]) -> Result<()> {
    let v = std::str::from_utf8(value).map_err(|_| Error::InvalidHeader {
        name: "Content-Length",
        reason: "not a non-negative integer",
    })?;
    if declared.is_some() {
        return Err(Error::DuplicateHeader {
            name: "Content-Length",
        });
    }
    *declared = Some(parse_content_length(v)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nbody";

    #[test]
    fn keepalive_ping_and_pong() {
        assert_eq!(
            frame(b"\r\n\r\n", 100).unwrap(),
            Frame::KeepAlive { len: 4, ping: true }
        );
        assert_eq!(
            frame(b"\r\n", 100).unwrap(),
            Frame::KeepAlive {
                len: 2,
                ping: false
            }
        );
        assert_eq!(frame(b"\r", 100).unwrap(), Frame::NeedMore);
    }

    #[test]
    fn message_with_body_and_pipelining() {
        let mut buf = MSG.to_vec();
        buf.extend_from_slice(MSG);
        assert_eq!(
            frame(&buf, 1000).unwrap(),
            Frame::Message { len: MSG.len() }
        );
        for cut in 0..MSG.len() {
            assert_eq!(
                frame(&MSG[..cut], 1000).unwrap(),
                Frame::NeedMore,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn missing_content_length_is_an_error_on_streams() {
        assert_eq!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", 100),
            Err(Error::MissingHeader {
                name: "Content-Length"
            })
        );
    }

    #[test]
    fn too_large() {
        assert!(matches!(frame(MSG, 10), Err(Error::TooLarge { .. })));
        assert!(matches!(
            frame(&[b'a'; 50], 10),
            Err(Error::TooLarge { .. })
        ));
    }
}
