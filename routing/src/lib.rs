//! Parley's router for every kind of work.
//!
//! - [`router`]: the pure, sans-IO [`Router`] — queues, agents with per-channel
//!   capacity, offers, reservations, priorities with SLA urgency, skills and language,
//!   sticky routing, overflow, live metrics. Every input takes `now`.
//! - [`acd`]: its runtime, **one task** ([`Acd`]) that owns the router, follows the
//!   store's configuration events and talks to whoever offers work through channels:
//!   call tasks ([`acd::AcdMsg`] in, [`acd::AcdEvent`] out), the HTTP API's work items
//!   (`work_item.created` events in, [`acd::AcdMsg::Work`] for an agent's accept,
//!   decline and complete), and a [`acd::Dialer`] the SIP side implements to place
//!   callbacks. Nothing here knows SIP.
//!
//! The domain types the stores share (queue and agent settings, presence, channels,
//! metrics) are `parley_cases::routing`'s and re-exported here.

pub mod acd;
pub mod router;

pub use acd::Acd;
pub use parley_cases::Timestamp;
pub use parley_cases::routing::*;
pub use router::{Missed, NewItem, Output, Router, RouterError};
