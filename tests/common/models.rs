//! The shared local models (`../shared/models/`) for tests that need them: missing is a
//! panic under `CI=true`, a loud warning and `None` (skip) otherwise.

use std::path::PathBuf;

/// The sentence-embedding model directory: `PARLEY_EMBEDDING_MODEL`, else
/// `../shared/models/all-MiniLM-L6-v2`.
pub(crate) fn embedding_model() -> Option<PathBuf> {
    let path = std::env::var_os("PARLEY_EMBEDDING_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models/all-MiniLM-L6-v2")
        });
    if path.join("model.safetensors").is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no embedding model at {} (set PARLEY_EMBEDDING_MODEL)",
        path.display()
    );
    eprintln!(
        "\n!!! NO EMBEDDING MODEL at {}: set PARLEY_EMBEDDING_MODEL; SKIPPING this test !!!\n",
        path.display()
    );
    None
}
