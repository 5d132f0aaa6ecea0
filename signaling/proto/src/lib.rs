//! `parley-sip-proto`: the pure, I/O-free SIP protocol core of Parley.
//!
//! It parses and prints SIP messages (RFC 3261) with validation beyond what the
//! `rsip` crate does, frames messages on stream transports, runs the RFC 3261 §17
//! transaction state machines with their timers, computes and checks digest
//! authentication (RFC 2617 / 7616 / 8760), negotiates SDP offer/answer (RFC 3264)
//! and tracks dialogs (RFC 3261 §12). It never touches a socket or a clock.
//!
//! # The sans-IO contract
//!
//! State machines such as [`transaction::TransactionLayer`] take the current time
//! as an argument and return work to do instead of doing it:
//!
//! 1. feed an input: `handle_incoming(now, msg, from)`, `send_request(now, ...)`,
//!    `send_response(now, ...)` or `handle_timeout(now)`;
//! 2. drain `poll_output()` until it returns `None`, sending every
//!    [`transaction::Output::Transmit`] and handing every event to the TU;
//! 3. sleep until `poll_timeout()` (or the next packet) and go to 1.
//!
//! The runtime crate owns sockets, timers and tasks; tests drive the same code in
//! virtual time.
//!
//! # Modules
//!
//! - [`message`]: parse/validate/print, typed header views, response building,
//!   stream framing ([`message::frame`]).
//! - [`transaction`]: client and server transactions, timers A–M, matching, CANCEL,
//!   merged-request detection.
//! - [`auth`]: digest challenges and credentials, MD5 / SHA-256, stateless nonces,
//!   nonce-count replay protection.
//! - [`offer_answer`]: SDP offer/answer with the `sdp` crate.
//! - [`sdes`]: SRTP keys in SDP (`a=crypto`, RFC 4568) and the per-peer SRTP policy.
//! - [`dialog`]: dialog state, route sets and in-dialog requests.
//!
//! # Non-goals
//!
//! Sockets, DNS (RFC 3263), TLS, timers and tasks (the runtime crate); proxy
//! behaviour (forking, stateless forwarding); RFC 2543 transaction matching beyond
//! the branch string; multipart and S/MIME bodies; ICE/DTLS (the media engine).
//!
//! # Example
//!
//! ```
//! use parley_sip_proto::message::{MessageExt, SipMessage};
//! use parley_sip_proto::transaction::{Output, TransactionLayer, TuEvent};
//! use std::time::Instant;
//!
//! let bytes = b"OPTIONS sip:parley@192.0.2.2 SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9\r\n\
//! Max-Forwards: 70\r\n\
//! To: <sip:parley@192.0.2.2>\r\n\
//! From: <sip:alice@example.com>;tag=9fxced76sl\r\n\
//! Call-ID: 3848276298220188511@192.0.2.1\r\n\
//! CSeq: 1 OPTIONS\r\n\
//! Content-Length: 0\r\n\r\n";
//!
//! let now = Instant::now();
//! let from = "192.0.2.1:5060".parse().unwrap();
//! let mut layer = TransactionLayer::default();
//! layer.handle_incoming(now, SipMessage::parse(bytes)?, from);
//!
//! // Drain the outputs; the TU answers the request it is given.
//! while let Some(out) = layer.poll_output() {
//!     match out {
//!         Output::Event(TuEvent::Request { request, .. }) => {
//!             let ok = request.make_response(200, None, Some("a1b2"));
//!             layer.send_response(now, ok)?;
//!         }
//!         Output::Transmit(t) => {
//!             // The runtime would write `t.bytes` to `t.dest` here.
//!             assert!(t.bytes.starts_with(b"SIP/2.0 200 OK\r\n"));
//!         }
//!         _ => {}
//!     }
//! }
//! // Timer J keeps the transaction for 32 s to absorb retransmissions.
//! assert!(layer.poll_timeout().is_some());
//! # Ok::<(), parley_sip_proto::Error>(())
//! ```

pub mod auth;
pub mod dialog;
pub mod error;
pub mod info;
pub mod message;
pub mod offer_answer;
pub mod sdes;
pub mod session_timer;
pub mod transaction;

pub use error::{Error, Result};
