//! # parley-cases
//!
//! Parley's case and omnichannel core: tenants, users, teams and skills; customers with
//! identities on every channel; one timeline per customer; cases with a status machine,
//! custom forms and SLA clocks; internal notes with @mentions; an audit log of every
//! mutation; GDPR export and erasure. It knows nothing of SIP or HTTP.
//!
//! Storage is sqlx over SQLite (the embedded default) or PostgreSQL, chosen by URL; the
//! same code and the same test suite run on both. Every tenant-scoped call takes an
//! [`Actor`]: its `tenant_id` confines every query (isolation is enforced in SQL, not by
//! convention) and its user is the audit log's "who". Mutations write their change, their
//! audit record (and case events) and their [`DomainEvent`]s into the transactional
//! [`outbox`] in one transaction; the relay publishes after the commit.
//!
//! The status machine and SLA arithmetic ([`sla`]) are pure functions of
//! `(state, command, now)`; the store feeds them time from its [`Clock`].
//!
//! ```no_run
//! # async fn demo() -> parley_cases::Result<()> {
//! use parley_cases::{Actor, Store, customers::{NewCustomer, RawIdentity}};
//! let store = Store::connect("sqlite://./data/parley.db").await?;
//! store.migrate().await?;
//! let tenant = store.create_tenant("acme").await?;
//! let admin = Actor::system(&tenant.id);
//! let ann = store
//!     .create_customer(&admin, NewCustomer {
//!         name: "Ann".into(),
//!         identities: vec![RawIdentity { kind: "phone".into(), value: "+15550100".into() }],
//!         consent: Default::default(),
//!     })
//!     .await?;
//! let same = store.lookup_customer(&admin, "phone", "+1 555 0100").await?;
//! assert_eq!(ann.id, same.id);
//! # Ok(()) }
//! ```

pub mod agent_capacity;
pub mod analytics;
pub mod audit;
pub mod automation;
pub mod callbacks;
pub mod callers;
pub mod canned;
pub mod case_types;
pub mod cases;
pub mod conversations;
pub mod customers;
pub mod demo;
pub mod dialpolicy;
pub mod directory;
mod error;
pub mod events;
pub mod flows;
pub mod gdpr;
pub mod identity;
pub mod incidents;
pub mod kb;
pub mod lookups;
pub mod outbox;
pub mod portal;
pub mod queues;
pub mod recordings;
pub mod routing;
pub mod sla;
mod store;
pub mod surveys;
pub mod tasks;
pub mod telephony;
pub mod timeline;
pub mod transcripts;
pub mod triage;
mod types;
pub mod webhooks;
pub mod work_items;

pub use error::{Error, Result};
pub use events::DomainEvent;
pub use store::{Backend, Store};
pub use types::{Actor, Clock, ManualClock, Page, Role, SystemClock, Timestamp};
