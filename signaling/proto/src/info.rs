//! DTMF carried in SIP INFO bodies (no RFC; the de-facto formats of Cisco and
//! others): `application/dtmf-relay` (`Signal=5\r\nDuration=160\r\n`) and
//! `application/dtmf` (the digit, or its RFC 4733 event code, alone). Digits come
//! out as RFC 4733 does: `0`-`9`, `*`, `#`, `A`-`D`.

/// A DTMF digit from an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDtmf {
    /// The digit.
    pub digit: char,
    /// Its duration in milliseconds, when given.
    pub duration_ms: Option<u32>,
}

/// The digit of an RFC 4733 event code or a written digit (`5`, `*`, `10`, `a`).
fn digit_of(s: &str) -> Option<char> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return match n {
            0..=9 => Some(char::from(b'0' + n)),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + (n - 12))),
            _ => None,
        };
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
}

/// Parses an INFO body of the given `Content-Type` (parameters ignored); `None` for
/// other types or a body that names no digit.
pub fn parse_dtmf(content_type: &str, body: &[u8]) -> Option<InfoDtmf> {
    let ct = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match ct.as_str() {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration_ms = None;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = digit_of(v),
                    "duration" => duration_ms = v.trim().parse().ok(),
                    _ => {}
                }
            }
            Some(InfoDtmf {
                digit: digit?,
                duration_ms,
            })
        }
        "application/dtmf" => Some(InfoDtmf {
            digit: digit_of(text)?,
            duration_ms: None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_and_dtmf_bodies() {
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(InfoDtmf {
                digit: '5',
                duration_ms: Some(160)
            })
        );
        assert_eq!(
            parse_dtmf("Application/DTMF-Relay; x=y", b"signal= #\nduration=250").map(|d| d.digit),
            Some('#')
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=11\r\n").map(|d| d.digit),
            Some('#')
        );
        assert_eq!(
            parse_dtmf("application/dtmf", b"10").map(|d| d.digit),
            Some('*')
        );
        assert_eq!(
            parse_dtmf("application/dtmf", b"d\r\n").map(|d| d.digit),
            Some('D')
        );
        assert_eq!(parse_dtmf("application/dtmf", b"16"), None);
        assert_eq!(parse_dtmf("application/dtmf-relay", b"Duration=100"), None);
        assert_eq!(parse_dtmf("text/plain", b"5"), None);
        assert_eq!(parse_dtmf("application/dtmf", &[0xff, 0xfe]), None);
    }
}
