//! Test helpers: the shared embedding model.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;

/// The embedding model: `PARLEY_EMBEDDING_MODEL`, else the shared test model next to the
/// project. Missing: a panic under `CI=true`, a loud warning (and `None`: skip) otherwise.
pub fn model_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = std::env::var_os("PARLEY_EMBEDDING_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/models/all-MiniLM-L6-v2"));
    if path.join("model.safetensors").is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no embedding model at {} (set PARLEY_EMBEDDING_MODEL)",
            path.display()
        );
    }
    eprintln!(
        "\n!!! NO EMBEDDING MODEL at {}: set PARLEY_EMBEDDING_MODEL; SKIPPING this test !!!\n",
        path.display()
    );
    None
}
