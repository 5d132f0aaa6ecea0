//! Session timers (RFC 4028), sans-IO: negotiation of `Session-Expires` / `Min-SE`
//! on a session-refresh request we receive (UAS, §9) or on the response to one we
//! sent (UAC, §7.2), and the timer itself: when the refresher must refresh (half the
//! interval, §10) and when the other side gives up on a session that was not
//! refreshed (the interval minus the lesser of 32 s and a third of it, §10).
//!
//! [`SessionTimer::poll`] takes `now` and says what is due; the call task sends the
//! refresh (re-INVITE or UPDATE) or the BYE.

use std::time::{Duration, Instant};

use crate::message::{Headers, split_comma_list};

/// Who refreshes, as the `refresher` parameter names it (relative to the dialog's
/// initial INVITE transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC of the transaction refreshes.
    Uac,
    /// The UAS of the transaction refreshes.
    Uas,
}

impl Refresher {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A parsed `Session-Expires` value (`delta-seconds *(;param)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    /// The `refresher` parameter, if present and valid.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses a header value; `None` when the delta is not a number.
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';');
        let delta = parts.next()?.trim().parse::<u32>().ok()?;
        let mut refresher = None;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            if k.trim().eq_ignore_ascii_case("refresher") {
                refresher = match v.trim().to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => None,
                };
            }
        }
        Some(SessionExpires { delta, refresher })
    }

    /// The header value.
    pub fn to_header(self) -> String {
        match self.refresher {
            Some(r) => format!("{};refresher={}", self.delta, r.as_str()),
            None => self.delta.to_string(),
        }
    }

    /// `Session-Expires` (or its compact form `x`) of a message.
    pub fn of(headers: &Headers) -> Option<SessionExpires> {
        headers
            .get("Session-Expires")
            .or_else(|| headers.get("x"))
            .and_then(SessionExpires::parse)
    }
}

/// `Min-SE` of a message (delta-seconds, parameters ignored).
pub fn min_se(headers: &Headers) -> Option<u32> {
    headers
        .get("Min-SE")?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whether a header list (`Supported`, `Require`; `k` is Supported's compact form)
/// names the `timer` option tag.
pub fn supports_timer(headers: &Headers) -> bool {
    ["Supported", "k"].iter().any(|h| {
        headers
            .get_all(h)
            .flat_map(split_comma_list)
            .any(|t| t.trim().eq_ignore_ascii_case("timer"))
    })
}

/// Our policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The interval we ask for / accept at most (seconds; RFC 4028 recommends 1800).
    pub session_expires: u32,
    /// The smallest interval we accept (seconds; at least 90 per §4, lower values
    /// only for tests).
    pub min_se: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            session_expires: 1800,
            min_se: 90,
        }
    }
}

/// What we (as UAS of a session-refresh request) agree to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The `Session-Expires` to put in our 2xx.
    pub session_expires: SessionExpires,
    /// Whether the 2xx carries `Require: timer` (the UAC supports the extension).
    pub require_timer: bool,
    /// Whether we are the refresher.
    pub we_refresh: bool,
}

/// The outcome of a session-refresh request we received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasDecision {
    /// No session timer for this session (the UAC asked for none and does not
    /// support the extension).
    None,
    /// Answer 422 with `Min-SE: min_se` (the interval is below our minimum).
    TooSmall {
        /// Our minimum, for the `Min-SE` header of the 422.
        min_se: u32,
    },
    /// Accept with these values.
    Accept(Negotiated),
}

/// UAS behaviour (§9) for an INVITE or UPDATE with the request's headers.
pub fn uas_decide(req: &Headers, cfg: &SessionTimerConfig) -> UasDecision {
    let supported = supports_timer(req);
    let their_min = min_se(req).unwrap_or(90).max(cfg.min_se);
    let Some(se) = SessionExpires::of(req) else {
        if !supported {
            return UasDecision::None;
        }
        // The UAC supports timers but asked for none: we may ask (§9), and it
        // refreshes (it knows the extension).
        return UasDecision::Accept(Negotiated {
            session_expires: SessionExpires {
                delta: cfg.session_expires.max(their_min),
                refresher: Some(Refresher::Uac),
            },
            require_timer: true,
            we_refresh: false,
        });
    };
    if se.delta < cfg.min_se {
        return UasDecision::TooSmall { min_se: cfg.min_se };
    }
    // We may lower the interval, never below the request's Min-SE (or 90 s).
    let delta = se.delta.min(cfg.session_expires.max(their_min));
    let refresher = match (se.refresher, supported) {
        (Some(r), _) => r,
        // Not chosen by the UAC: let it refresh when it can, else we do (§9).
        (None, true) => Refresher::Uac,
        (None, false) => Refresher::Uas,
    };
    UasDecision::Accept(Negotiated {
        session_expires: SessionExpires {
            delta,
            refresher: Some(refresher),
        },
        require_timer: supported,
        we_refresh: refresher == Refresher::Uas,
    })
}

/// The headers of a session-refresh request we send (§7.1): `Session-Expires` with
/// the current interval and who refreshes, `Min-SE`, `Supported: timer`. As we send
/// it, we are its UAC; `we_refresh` keeps us the refresher.
pub fn refresh_headers(
    interval: u32,
    we_refresh: bool,
    cfg: &SessionTimerConfig,
) -> [(&'static str, String); 3] {
    let refresher = if we_refresh {
        Refresher::Uac
    } else {
        Refresher::Uas
    };
    [
        (
            "Session-Expires",
            SessionExpires {
                delta: interval,
                refresher: Some(refresher),
            }
            .to_header(),
        ),
        ("Min-SE", cfg.min_se.to_string()),
        ("Supported", "timer".to_owned()),
    ]
}

/// UAC behaviour (§7.2) for the 2xx to a session-refresh request we sent: the
/// interval and refresher it names (`refresher=uac` is us). Without
/// `Session-Expires` in the 2xx the peer does not do timers: we keep refreshing
/// with our own interval (§7.2: the UAC may still refresh).
pub fn uac_on_2xx(resp: &Headers, sent_interval: u32) -> (u32, bool) {
    match SessionExpires::of(resp) {
        Some(se) => (se.delta, se.refresher != Some(Refresher::Uas)),
        None => (sent_interval, true),
    }
}

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// We are the refresher and half the interval has passed: send a refresh.
    Refresh,
    /// The session expired without a refresh: send BYE (§10).
    Expired,
}

/// One session's timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    we_refresh: bool,
    refreshed_at: Instant,
    refresh_sent: bool,
}

impl SessionTimer {
    /// A timer started by a successful session refresh (or the initial 2xx) at `now`.
    pub fn new(now: Instant, interval_secs: u32, we_refresh: bool) -> SessionTimer {
        SessionTimer {
            interval: Duration::from_secs(u64::from(interval_secs)),
            we_refresh,
            refreshed_at: now,
            refresh_sent: false,
        }
    }

    /// A successful refresh (2xx to a refresh request, either way) at `now` with the
    /// interval and refresher it negotiated.
    pub fn refreshed(&mut self, now: Instant, interval_secs: u32, we_refresh: bool) {
        *self = SessionTimer::new(now, interval_secs, we_refresh);
    }

    /// The interval in seconds.
    pub fn interval_secs(&self) -> u32 {
        u32::try_from(self.interval.as_secs()).unwrap_or(u32::MAX)
    }

    /// Whether we refresh.
    pub fn we_refresh(&self) -> bool {
        self.we_refresh
    }

    fn refresh_at(&self) -> Option<Instant> {
        (self.we_refresh && !self.refresh_sent).then(|| self.refreshed_at + self.interval / 2)
    }

    /// When the session is considered expired: for the refresher, at the end of the
    /// interval (its refresh failed); for the other side, the interval minus the
    /// lesser of 32 s and a third of it (§10).
    fn expires_at(&self) -> Instant {
        if self.we_refresh {
            self.refreshed_at + self.interval
        } else {
            let margin = (self.interval / 3).min(Duration::from_secs(32));
            self.refreshed_at + self.interval - margin
        }
    }

    /// The next instant something is due.
    pub fn next_deadline(&self) -> Instant {
        match self.refresh_at() {
            Some(r) => r.min(self.expires_at()),
            None => self.expires_at(),
        }
    }

    /// What is due at `now` (a refresh is reported once).
    pub fn poll(&mut self, now: Instant) -> Option<Due> {
        if now >= self.expires_at() {
            return Some(Due::Expired);
        }
        if self.refresh_at().is_some_and(|r| now >= r) {
            self.refresh_sent = true;
            return Some(Due::Refresh);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in list {
            h.push(n, *v);
        }
        h
    }

    #[test]
    fn parses_session_expires_and_min_se() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=uas"),
            Some(SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 90 ; REFRESHER = UAC ;x=y"),
            Some(SessionExpires {
                delta: 90,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(SessionExpires::parse("abc"), None);
        assert_eq!(
            SessionExpires::parse("90;refresher=me").unwrap().refresher,
            None
        );
        let h = headers(&[("x", "120"), ("Min-SE", "100;foo")]);
        assert_eq!(SessionExpires::of(&h).unwrap().delta, 120);
        assert_eq!(min_se(&h), Some(100));
        assert_eq!(
            SessionExpires::parse("600;refresher=uac")
                .unwrap()
                .to_header(),
            "600;refresher=uac"
        );
    }

    #[test]
    fn uas_rejects_too_small_intervals_with_422() {
        let cfg = SessionTimerConfig::default();
        let h = headers(&[("Session-Expires", "30"), ("Supported", "timer")]);
        assert_eq!(uas_decide(&h, &cfg), UasDecision::TooSmall { min_se: 90 });
    }

    #[test]
    fn uas_keeps_the_uacs_refresher_and_lowers_long_intervals() {
        let cfg = SessionTimerConfig::default();
        let h = headers(&[
            ("Session-Expires", "7200;refresher=uas"),
            ("Supported", "100rel, timer"),
        ]);
        let UasDecision::Accept(n) = uas_decide(&h, &cfg) else {
            panic!()
        };
        assert_eq!(n.session_expires.delta, 1800);
        assert_eq!(n.session_expires.refresher, Some(Refresher::Uas));
        assert!(n.we_refresh && n.require_timer);
        // Never below the request's Min-SE.
        let h = headers(&[("Session-Expires", "4000"), ("Min-SE", "3600")]);
        let UasDecision::Accept(n) = uas_decide(&h, &cfg) else {
            panic!()
        };
        assert_eq!(n.session_expires.delta, 3600);
        // No Supported: timer and no refresher: we refresh, no Require.
        assert_eq!(n.session_expires.refresher, Some(Refresher::Uas));
        assert!(n.we_refresh && !n.require_timer);
    }

    #[test]
    fn uas_without_session_expires() {
        let cfg = SessionTimerConfig::default();
        assert_eq!(uas_decide(&headers(&[]), &cfg), UasDecision::None);
        let UasDecision::Accept(n) = uas_decide(&headers(&[("k", "timer")]), &cfg) else {
            panic!()
        };
        assert_eq!(n.session_expires.refresher, Some(Refresher::Uac));
        assert!(!n.we_refresh && n.require_timer);
    }

    #[test]
    fn uac_reads_the_2xx() {
        assert_eq!(
            uac_on_2xx(&headers(&[("Session-Expires", "900;refresher=uac")]), 1800),
            (900, true)
        );
        assert_eq!(
            uac_on_2xx(&headers(&[("Session-Expires", "900;refresher=uas")]), 1800),
            (900, false)
        );
        assert_eq!(uac_on_2xx(&headers(&[]), 1800), (1800, true));
        let [se, min, sup] = refresh_headers(600, true, &SessionTimerConfig::default());
        assert_eq!(se.1, "600;refresher=uac");
        assert_eq!(min.1, "90");
        assert_eq!(sup.1, "timer");
    }

    #[test]
    fn the_refresher_refreshes_at_half_the_interval_in_virtual_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = SessionTimer::new(t0, 1800, true);
        assert_eq!(t.next_deadline(), t0 + 900 * s);
        assert_eq!(t.poll(t0 + 899 * s), None);
        assert_eq!(t.poll(t0 + 900 * s), Some(Due::Refresh));
        // Reported once; then the end of the interval is next.
        assert_eq!(t.poll(t0 + 901 * s), None);
        assert_eq!(t.next_deadline(), t0 + 1800 * s);
        // The refresh succeeded: the clock restarts.
        t.refreshed(t0 + 905 * s, 1800, true);
        assert_eq!(t.next_deadline(), t0 + 1805 * s);
        assert_eq!(t.poll(t0 + 1805 * s), Some(Due::Refresh));
        // It failed: the session expires at the end of the interval.
        assert_eq!(t.poll(t0 + 2704 * s), None);
        assert_eq!(t.poll(t0 + 2705 * s), Some(Due::Expired));
    }

    #[test]
    fn the_other_side_expires_before_the_end_of_the_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // 1800 s: 32 s before the end.
        let mut t = SessionTimer::new(t0, 1800, false);
        assert_eq!(t.next_deadline(), t0 + 1768 * s);
        assert_eq!(t.poll(t0 + 900 * s), None, "we do not refresh");
        assert_eq!(t.poll(t0 + 1767 * s), None);
        assert_eq!(t.poll(t0 + 1768 * s), Some(Due::Expired));
        // 90 s: a third (30 s) before the end.
        let mut t = SessionTimer::new(t0, 90, false);
        assert_eq!(t.poll(t0 + 59 * s), None);
        assert_eq!(t.poll(t0 + 60 * s), Some(Due::Expired));
        // A refresh by the peer restarts it.
        t.refreshed(t0 + 50 * s, 90, false);
        assert_eq!(t.poll(t0 + 60 * s), None);
        assert_eq!(t.poll(t0 + 110 * s), Some(Due::Expired));
    }
}
