//! # parley-ai
//!
//! Parley's local AI, offline and in pure Rust:
//!
//! * [`embed`]: sentence embeddings with all-MiniLM-L6-v2 (candle's BERT and the
//!   `tokenizers` crate; no downloads at build or run time): mean pooling over the
//!   tokens, L2-normalised, at most 256 tokens, batched.
//!
//! ```no_run
//! let e = parley_ai::Embedder::load("../shared/models/all-MiniLM-L6-v2")?;
//! let v = e.embed(&["my internet is down", "no connection at home"])?;
//! assert!(parley_ai::embed::cosine(&v[0], &v[1]) > 0.5);
//! # Ok::<(), parley_ai::Error>(())
//! ```

pub mod embed;
pub mod error;
pub mod eval;
mod hook;
pub mod signals;
pub mod triage;

pub use embed::Embedder;
pub use error::{Error, Result};
pub use triage::Triager;
