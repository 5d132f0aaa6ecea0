//! parley-ai's tests, one binary: the embedder and triage on the shared model.

mod common;
mod embedder;
mod signals;
mod triage;
