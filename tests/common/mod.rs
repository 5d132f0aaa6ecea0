//! The end-to-end kit every integration test of the real binary uses (`mod common;`):
//! [`parley::Parley`] starts `parley` on a fresh data directory with ephemeral ports and
//! reads its start-up lines (ports, demo logins); [`http`] is an authenticated JSON
//! client (blocking and async); [`ws`] the events and softphone WebSockets; [`wait`]
//! awaits a condition with a deadline and names what it awaited when it times out;
//! [`sipp`] runs sipp scenarios from `tests/sipp/` on ports that parallel tests do not
//! share; [`slack`] a Slack-compatible Web API server that also sends signed Events
//! API requests; [`mail`] runs private Postfix and Dovecot instances (email tests). The
//! older helpers (`proto_uac.rs`, `recording.rs`, `baresip.rs`, `netns.rs`)
//! are still included by `#[path]` where they are used.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod http;
pub(crate) mod mail;
pub(crate) mod models;
pub(crate) mod parley;
pub(crate) mod sipp;
pub(crate) mod slack;
pub(crate) mod wait;
pub(crate) mod ws;
