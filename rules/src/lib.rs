//! # parley-rules
//!
//! Parley's automation rules engine, the pure part: rules as data (a [`Trigger`],
//! [`Condition`]s on the event's facts, [`Action`]s) and [`evaluate`], which takes
//! `now`, the tenant's [`RuleSet`] and one [`Event`] and returns the rules that fire
//! with their actions. No I/O, no clock, no database: the runtime (`src/automation.rs`
//! in the binary) reads the event stream from its stored position, builds each event's
//! facts, and applies the actions through the same audited store calls users make,
//! stamping the events they cause with the rule chain (`caused_by`) so that loop
//! protection holds across hops.
//!
//! Rules run in `position` order; a fired rule with `stop_processing` ends the
//! evaluation of that event. A rule never fires on an event its own actions caused,
//! and nothing fires on an event with [`MAX_DEPTH`] rules behind it.
//!
//! ```
//! use parley_rules::{evaluate, Event, NoCalendars, Rule, RuleSet};
//! let rule: Rule = serde_json::from_value(serde_json::json!({
//!     "id": "r1", "tenant_id": "t", "name": "refunds to billing",
//!     "trigger": {"type": "event", "kinds": ["conversation.message"]},
//!     "conditions": [{"type": "field", "field": "message.text", "op": "contains", "value": "refund"}],
//!     "actions": [{"type": "add_tags", "tags": ["billing"]}]
//! })).unwrap();
//! let rules = RuleSet::new(vec![rule]);
//! let facts = serde_json::json!({"message": {"text": "I want a Refund"}});
//! let event = Event { id: "e1", tenant_id: "t", kind: "conversation.message", at: 0,
//!                     facts: &facts, caused_by: &[] };
//! let out = evaluate(0, &rules, &event, &NoCalendars);
//! assert_eq!(out.fired.len(), 1);
//! ```

#[cfg(feature = "calendars")]
mod calendars;
mod error;
mod eval;
mod model;

#[cfg(feature = "calendars")]
pub use calendars::Calendars;
pub use error::{Error, Result};
pub use eval::{
    Blocked, Env, Evaluation, Fired, NoCalendars, RuleSet, SCHEDULE_TICK, evaluate, holds, validate,
};
pub use model::{Action, Condition, Event, MAX_DEPTH, Millis, Op, Rule, Trigger};
