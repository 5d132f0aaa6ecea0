//! Why a call is turned away before it is set up, as a type: each variant names the
//! reason, and the SIP final response the caller gets follows from it
//! ([`Refused::status`]). Routing, SRTP admission and media set-up return it; the
//! call's [`Call::reject`](super::Call) sends it.

#[cfg(doc)]
use super::Cause;

/// Why Parley turns a call away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The caller already has its answer — a digest challenge, or a refusal the step
    /// sent itself (the dial policy's 403, the session timer's 422): nothing more is
    /// sent, the call just ends.
    Answered,
    /// 403: the caller may not use this number (its credentials were refused, or it
    /// belongs to another tenant).
    Forbidden,
    /// 404: no such number or service, or no trunk to dial it out through.
    NotFound,
    /// 480: no phone of the target could be reached, or none answered.
    Unavailable,
    /// 488: the SDP offer cannot be answered (no common codec, the SRTP policy).
    NotAcceptable,
    /// 500: a database lookup failed.
    ServerError,
    /// 503: no media engine, or no media leg for the call.
    MediaUnavailable,
    /// 503: the trunk's transport (TCP, TLS) could not be connected.
    TrunkUnreachable,
    /// Every fork ended: busy, declined, or another status, as [`Cause::to_caller`]
    /// picks it from the forks' causes (RFC 3261 §16.7).
    ForkStatus(u16, &'static str),
}

impl Refused {
    /// The final response the caller gets (`None`: it already has one).
    pub(crate) fn status(self) -> Option<(u16, &'static str)> {
        Some(match self {
            Refused::Answered => return None,
            Refused::Forbidden => (403, "Forbidden"),
            Refused::NotFound => (404, "Not Found"),
            Refused::Unavailable => (480, "Temporarily Unavailable"),
            Refused::NotAcceptable => (488, "Not Acceptable Here"),
            Refused::ServerError => (500, "Server Internal Error"),
            Refused::MediaUnavailable => (503, "Media Not Available"),
            Refused::TrunkUnreachable => (503, "Trunk Unreachable"),
            Refused::ForkStatus(code, reason) => (code, reason),
        })
    }

    /// Whether the refusal goes to a caller that has not authenticated (403, 404):
    /// those answers are rate-limited like challenges, so that a scanner learns little.
    pub(crate) fn is_unauthenticated(self) -> bool {
        matches!(self, Refused::Forbidden | Refused::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_names_its_sip_status() {
        assert_eq!(Refused::Answered.status(), None);
        assert_eq!(
            Refused::NotAcceptable.status(),
            Some((488, "Not Acceptable Here"))
        );
        assert_eq!(
            Refused::MediaUnavailable.status(),
            Some((503, "Media Not Available"))
        );
        assert_eq!(
            Refused::ForkStatus(486, "Busy Here").status(),
            Some((486, "Busy Here"))
        );
        assert!(Refused::NotFound.is_unauthenticated());
        assert!(!Refused::ServerError.is_unauthenticated());
    }
}
