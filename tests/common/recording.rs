//! Reading a recording the way Parley stores it: sealed under the data directory's
//! key ring (`<data>/keys`), decrypted as it is read.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::BufReader;
use std::path::Path;

/// The plaintext of the recording at `location` (relative to `data_dir`).
pub(crate) fn open(data_dir: &Path, location: &str) -> parley_vault::VaultFile {
    let ring = parley_vault::KeyRing::load_or_create(&data_dir.join("keys")).unwrap();
    let f = parley_vault::open(&data_dir.join(location), &ring)
        .unwrap_or_else(|e| panic!("recording {location}: {e}"));
    assert!(f.is_sealed(), "recording {location} is sealed at rest");
    f
}

/// The recording at `location` as a WAV.
pub(crate) fn wav(
    data_dir: &Path,
    location: &str,
) -> hound::WavReader<BufReader<parley_vault::VaultFile>> {
    hound::WavReader::new(BufReader::new(open(data_dir, location))).unwrap()
}
