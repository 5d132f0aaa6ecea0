//! Case status machine and SLA clocks — pure functions of (state, command, now).
//!
//! Nothing here reads a clock or a database: the store feeds `now` in and writes the
//! results, in the same transaction as the event that records them.

use serde::{Deserialize, Serialize};

use crate::types::Timestamp;
use crate::{Error, Result};

/// Where a case is in its life. Cases are never deleted: they end `closed` and can be
/// reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Just created, nobody has looked.
    New,
    /// Being worked on.
    Open,
    /// Waiting for the customer (pauses the resolution clock).
    PendingCustomer,
    /// Waiting on engineering (the clock keeps running: it is our side's wait).
    OnHold,
    /// Solved; the customer may still come back.
    Resolved,
    /// Done.
    Closed,
}

impl CaseStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::Open => "open",
            CaseStatus::PendingCustomer => "pending_customer",
            CaseStatus::OnHold => "on_hold",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
        }
    }

    /// Parses a stored or user-supplied name.
    pub fn parse(s: &str) -> Result<CaseStatus> {
        Ok(match s {
            "new" => CaseStatus::New,
            "open" => CaseStatus::Open,
            "pending_customer" => CaseStatus::PendingCustomer,
            "on_hold" => CaseStatus::OnHold,
            "resolved" => CaseStatus::Resolved,
            "closed" => CaseStatus::Closed,
            _ => {
                return Err(Error::invalid(
                    "status",
                    "must be one of new, open, pending_customer, on_hold, resolved, closed",
                ));
            }
        })
    }

    fn is_active(self) -> bool {
        !matches!(self, CaseStatus::Resolved | CaseStatus::Closed)
    }
}

/// Checks a status change. The allowed moves:
///
/// ```text
/// new ──► open ◄──► pending_customer
///  │       ▲ ▲          │
///  │       │ └──► on_hold
///  ▼       │            │
/// (any active) ──► resolved ──► closed
///                     │           │
///                     └── reopen ─┴──► open
/// ```
///
/// Every active status (new, open, pending_customer, on_hold) can go to any other active
/// status except back to `new`, and to `resolved`; `closed` is reached only from
/// `resolved`; `resolved` and `closed` reopen to `open`.
pub fn check_transition(from: CaseStatus, to: CaseStatus) -> Result<()> {
    use CaseStatus::*;
    let ok = match (from, to) {
        (a, b) if a == b => false,
        (_, New) => false,
        (a, Open | PendingCustomer | OnHold | Resolved) if a.is_active() => true,
        (Resolved, Closed) => true,
        (Resolved | Closed, Open) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidTransition {
            entity: "case",
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
        })
    }
}

/// Case priority, P0 (most urgent) to P3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Priority {
    /// Critical.
    P0,
    /// High.
    P1,
    /// Normal.
    P2,
    /// Low.
    P3,
}

impl Priority {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }

    /// Parses `P0`..`P3`.
    pub fn parse(s: &str) -> Result<Priority> {
        Ok(match s {
            "P0" => Priority::P0,
            "P1" => Priority::P1,
            "P2" => Priority::P2,
            "P3" => Priority::P3,
            _ => return Err(Error::invalid("priority", "must be P0, P1, P2 or P3")),
        })
    }
}

/// Targets for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SlaPolicy {
    /// The priority these targets apply to.
    pub priority: Priority,
    /// Minutes (of business time) until the first response is due.
    pub first_response_minutes: i64,
    /// Minutes (of business time) until resolution is due.
    pub resolution_minutes: i64,
}

/// When SLA minutes count. Business hours and holidays implement this later; the SLA
/// arithmetic below only ever goes through it.
pub trait Calendar {
    /// The instant `minutes` of counted time after `start`.
    fn add_minutes(&self, start: Timestamp, minutes: i64) -> Timestamp;
    /// Counted milliseconds between `a` and `b` (`b >= a`).
    fn counted_millis(&self, a: Timestamp, b: Timestamp) -> i64;
}

/// Every minute counts (24×7 support).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOpen;

impl Calendar for AlwaysOpen {
    fn add_minutes(&self, start: Timestamp, minutes: i64) -> Timestamp {
        start.plus_minutes(minutes)
    }

    fn counted_millis(&self, a: Timestamp, b: Timestamp) -> i64 {
        (b.0 - a.0).max(0)
    }
}

/// The SLA clock of one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SlaClock {
    /// When the first response is due (none without a policy).
    pub first_response_due_at: Option<Timestamp>,
    /// When resolution is due (none without a policy).
    pub resolution_due_at: Option<Timestamp>,
    /// Set while the resolution clock is paused (pending customer).
    pub paused_at: Option<Timestamp>,
}

impl SlaClock {
    /// The clock of a case created at `now` under `policy`.
    pub fn start(cal: &impl Calendar, now: Timestamp, policy: Option<&SlaPolicy>) -> SlaClock {
        SlaClock {
            first_response_due_at: policy.map(|p| cal.add_minutes(now, p.first_response_minutes)),
            resolution_due_at: policy.map(|p| cal.add_minutes(now, p.resolution_minutes)),
            paused_at: None,
        }
    }

    /// The clock after a status change at `now`.
    pub fn on_transition(
        self,
        cal: &impl Calendar,
        now: Timestamp,
        from: CaseStatus,
        to: CaseStatus,
        policy: Option<&SlaPolicy>,
    ) -> SlaClock {
        let mut c = self;
        // Leaving a pause: the due time moves out by the counted time spent paused.
        if let (Some(paused), true) = (c.paused_at, to != CaseStatus::PendingCustomer) {
            let shift = cal.counted_millis(paused, now);
            c.resolution_due_at = c.resolution_due_at.map(|d| Timestamp(d.0 + shift));
            c.paused_at = None;
        }
        if to == CaseStatus::PendingCustomer && c.paused_at.is_none() {
            c.paused_at = Some(now);
        }
        // Reopening starts a fresh resolution target.
        if !from.is_active() && to.is_active() {
            c.resolution_due_at = policy.map(|p| cal.add_minutes(now, p.resolution_minutes));
        }
        c
    }

    /// The clock after the priority (and so the policy) changed: due times move by the
    /// difference between the old and new targets.
    pub fn on_policy_change(
        self,
        old: Option<&SlaPolicy>,
        new: Option<&SlaPolicy>,
        created_at: Timestamp,
        cal: &impl Calendar,
    ) -> SlaClock {
        let mut c = self;
        match (old, new) {
            (Some(o), Some(n)) => {
                let shift = |d: Option<Timestamp>, om: i64, nm: i64| {
                    d.map(|d| Timestamp(d.0 + (nm - om) * 60_000))
                };
                c.first_response_due_at = shift(
                    c.first_response_due_at,
                    o.first_response_minutes,
                    n.first_response_minutes,
                );
                c.resolution_due_at = shift(
                    c.resolution_due_at,
                    o.resolution_minutes,
                    n.resolution_minutes,
                );
            }
            (None, Some(n)) => {
                let fresh = SlaClock::start(cal, created_at, Some(n));
                c.first_response_due_at = fresh.first_response_due_at;
                c.resolution_due_at = fresh.resolution_due_at;
            }
            (_, None) => {
                c.first_response_due_at = None;
                c.resolution_due_at = None;
            }
        }
        c
    }
}

/// An SLA milestone of one target (first response or resolution): a warning when a
/// share of its time is used, or the breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// This percentage of the target's time is used ([`WARN_AT`]).
    Warning(u8),
    /// The due time passed.
    Breached,
}

impl Milestone {
    /// Stored name (`warning_75`, `breached`).
    pub fn as_str(self) -> String {
        match self {
            Milestone::Warning(p) => format!("warning_{p}"),
            Milestone::Breached => "breached".to_owned(),
        }
    }
}

/// The shares of a target's time at which a warning is raised (`sla.warning`, its
/// `percent`); automation rules pick the ones they act on.
pub const WARN_AT: [u8; 3] = [50, 75, 90];

/// Where a target due at `due` (of `target_minutes` counted time) stands at `now`:
/// the share of its time used, in percent (past 100 once breached), and the milestones
/// passed. Time counts through `cal` (business hours), and a paused clock
/// (`paused_at`, pending customer) stands still: a pause moves the due time out when
/// it ends ([`SlaClock::on_transition`]), so the share is measured back from `due`.
pub fn sla_progress(
    cal: &impl Calendar,
    due: Timestamp,
    target_minutes: i64,
    now: Timestamp,
    paused_at: Option<Timestamp>,
) -> (i64, Vec<Milestone>) {
    let at = paused_at.map_or(now, |p| p.min(now));
    let target = target_minutes.max(1).saturating_mul(60_000);
    let remaining = if at <= due {
        cal.counted_millis(at, due)
    } else {
        -cal.counted_millis(due, at)
    };
    let percent = (target - remaining).saturating_mul(100) / target;
    let mut out: Vec<Milestone> = WARN_AT
        .iter()
        .filter(|&&p| percent >= i64::from(p))
        .map(|&p| Milestone::Warning(p))
        .collect();
    if at >= due {
        out.push(Milestone::Breached);
    }
    (percent, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseStatus::*;

    const ALL: [CaseStatus; 6] = [New, Open, PendingCustomer, OnHold, Resolved, Closed];

    #[test]
    fn transition_table() {
        // (from, to, allowed) for every pair: the whole table as data.
        let allowed = [
            (New, Open),
            (New, PendingCustomer),
            (New, OnHold),
            (New, Resolved),
            (Open, PendingCustomer),
            (Open, OnHold),
            (Open, Resolved),
            (PendingCustomer, Open),
            (PendingCustomer, OnHold),
            (PendingCustomer, Resolved),
            (OnHold, Open),
            (OnHold, PendingCustomer),
            (OnHold, Resolved),
            (Resolved, Closed),
            (Resolved, Open),
            (Closed, Open),
        ];
        for from in ALL {
            for to in ALL {
                let want = allowed.contains(&(from, to));
                assert_eq!(
                    check_transition(from, to).is_ok(),
                    want,
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    fn policy() -> SlaPolicy {
        SlaPolicy {
            priority: Priority::P1,
            first_response_minutes: 60,
            resolution_minutes: 480,
        }
    }

    #[test]
    fn pending_customer_pauses_resolution_clock() {
        let t0 = Timestamp(0);
        let c = SlaClock::start(&AlwaysOpen, t0, Some(&policy()));
        assert_eq!(c.first_response_due_at, Some(t0.plus_minutes(60)));
        assert_eq!(c.resolution_due_at, Some(t0.plus_minutes(480)));
        let c = c.on_transition(
            &AlwaysOpen,
            t0.plus_minutes(10),
            Open,
            PendingCustomer,
            Some(&policy()),
        );
        assert_eq!(c.paused_at, Some(t0.plus_minutes(10)));
        let c = c.on_transition(
            &AlwaysOpen,
            t0.plus_minutes(130),
            PendingCustomer,
            Open,
            Some(&policy()),
        );
        assert_eq!(c.paused_at, None);
        assert_eq!(c.resolution_due_at, Some(t0.plus_minutes(600)));
        // On hold (engineering) does not pause.
        let c = c.on_transition(
            &AlwaysOpen,
            t0.plus_minutes(140),
            Open,
            OnHold,
            Some(&policy()),
        );
        assert_eq!(c.paused_at, None);
    }

    #[test]
    fn reopen_restarts_resolution_target() {
        let c = SlaClock::start(&AlwaysOpen, Timestamp(0), Some(&policy()));
        let c = c.on_transition(
            &AlwaysOpen,
            Timestamp(0).plus_minutes(1000),
            Resolved,
            Open,
            Some(&policy()),
        );
        assert_eq!(c.resolution_due_at, Some(Timestamp(0).plus_minutes(1480)));
    }

    #[test]
    fn priority_change_moves_due_times() {
        let p0 = SlaPolicy {
            priority: Priority::P0,
            first_response_minutes: 15,
            resolution_minutes: 240,
        };
        let c = SlaClock::start(&AlwaysOpen, Timestamp(0), Some(&policy()));
        let c = c.on_policy_change(Some(&policy()), Some(&p0), Timestamp(0), &AlwaysOpen);
        assert_eq!(c.first_response_due_at, Some(Timestamp(0).plus_minutes(15)));
        assert_eq!(c.resolution_due_at, Some(Timestamp(0).plus_minutes(240)));
        let c = c.on_policy_change(Some(&p0), None, Timestamp(0), &AlwaysOpen);
        assert_eq!(c.resolution_due_at, None);
    }

    /// Open 09:00–17:00 every day (UTC), counted by the minute.
    struct NineToFive;

    impl NineToFive {
        fn open(t: i64) -> bool {
            let h = t.rem_euclid(86_400_000) / 3_600_000;
            (9..17).contains(&h)
        }
    }

    impl Calendar for NineToFive {
        fn add_minutes(&self, start: Timestamp, minutes: i64) -> Timestamp {
            let mut t = start.0;
            let mut left = minutes;
            while left > 0 {
                if NineToFive::open(t) {
                    left -= 1;
                }
                t += 60_000;
            }
            Timestamp(t)
        }

        fn counted_millis(&self, a: Timestamp, b: Timestamp) -> i64 {
            let mut n = 0;
            let mut t = a.0;
            while t < b.0 {
                if NineToFive::open(t) {
                    n += 60_000;
                }
                t += 60_000;
            }
            n
        }
    }

    #[test]
    fn warnings_and_breach_follow_business_hours_in_virtual_time() {
        use super::{Milestone::*, sla_progress};
        let day = 86_400_000;
        // Created 16:00 with a 4 hour target: due 12:00 the next day (1 h today, 3 h tomorrow).
        let created = Timestamp(day + 16 * 3_600_000);
        let due = NineToFive.add_minutes(created, 240);
        assert_eq!(due, Timestamp(2 * day + 12 * 3_600_000));
        let at = |h: i64| Timestamp(day + h * 3_600_000);
        // 17:00: 25 %; all night long still 25 % (closed); 10:00 next day 50 %.
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(17), None),
            (25, vec![])
        );
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(24 + 8), None),
            (25, vec![])
        );
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(24 + 10), None),
            (50, vec![Warning(50)])
        );
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(24 + 11), None),
            (75, vec![Warning(50), Warning(75)])
        );
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(24 + 12), None),
            (100, vec![Warning(50), Warning(75), Warning(90), Breached])
        );
        // Pending customer since 10:00: the clock stands still at 50 %, however late.
        assert_eq!(
            sla_progress(&NineToFive, due, 240, at(24 + 16), Some(at(24 + 10))),
            (50, vec![Warning(50)])
        );
        // Every minute counts without business hours.
        let due = AlwaysOpen.add_minutes(created, 240);
        assert_eq!(sla_progress(&AlwaysOpen, due, 240, at(19), None).0, 75);
    }
}
