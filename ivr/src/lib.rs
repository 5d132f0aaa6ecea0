//! Parley IVR: the flow model, the validator, a pure interpreter and a
//! virtual-time simulator. No I/O anywhere in this crate.
//!
//! # Layout
//!
//! - [`model`]: the flow JSON (schema [`SCHEMA_VERSION`]): nodes keyed by id,
//!   each with typed exits.
//! - [`validate()`]: every problem of a flow before it is published, each naming
//!   its node ([`ValidationError`]).
//! - [`interp`]: the interpreter. Its contract is
//!   `step(env, state, event, now) -> (state, actions)`: it never reads a clock,
//!   never sleeps, never touches a socket. Timers are actions
//!   ([`Action::StartTimer`]) answered by events ([`Event::TimerFired`]); results
//!   of webhooks, customer lookups and queues come back as events.
//! - [`simulate()`]: runs a scripted call in virtual time and returns a [`Trace`].
//!
//! The call task that owns a real call is a thin loop: feed each event to
//! [`CallState::handle`], execute the returned actions, persist
//! [`CallState::trail`] on the call's timeline when the flow ends.
//!
//! # Example
//!
//! ```
//! use parley_ivr::{Action, CallInfo, CallState, Env, Event, Flow};
//!
//! let flow = Flow::from_json(r#"{
//!   "version": 1, "id": "hello", "start": "hi",
//!   "nodes": {
//!     "hi":  {"type": "play", "prompts": [{"tts": "Hello {{caller_number}}"}], "next": "bye"},
//!     "bye": {"type": "hangup"}
//!   }
//! }"#)?;
//! assert!(parley_ivr::validate(&flow, &Default::default()).is_empty());
//!
//! let env = Env::new([flow]);
//! let call = CallInfo { caller_number: "+15550123".into(), ..Default::default() };
//! let now = jiff::Timestamp::UNIX_EPOCH;
//! let state = CallState::new("hello".into(), &call);
//!
//! let (state, actions) = parley_ivr::step(&env, state, Event::Start, now);
//! assert!(matches!(&actions[0], Action::Play { prompts, .. }
//!     if prompts == &[parley_ivr::Prompt::Tts("Hello +15550123".into())]));
//!
//! let (state, actions) = parley_ivr::step(&env, state, Event::PlaybackDone, now);
//! assert!(matches!(actions[0], Action::Hangup { .. }));
//! assert!(state.is_ended());
//! # Ok::<(), parley_ivr::Error>(())
//! ```

pub mod condition;
mod error;
pub mod interp;
pub mod model;
pub mod sim;
pub mod validate;

pub use condition::{Calendar, Condition, Variables};
pub use error::{Error, Result};
pub use interp::{
    Action, CallInfo, CallState, EndReason, Env, Event, QueueOutcome, QueueState, TrailEntry,
    TrailItem, step,
};
pub use model::{Flow, FlowId, Node, NodeId, NodeKind, Prompt, SCHEMA_VERSION};
pub use sim::{Script, ScriptStep, Trace, TraceEntry, TraceItem, simulate};
pub use validate::{
    ValidationError, ValidationErrorKind, ValidationOptions, ValidationWarning,
    ValidationWarningKind, check, validate, validate_flows, warnings,
};

#[cfg(test)]
mod tests;
