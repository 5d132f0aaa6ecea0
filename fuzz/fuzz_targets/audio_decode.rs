//! Prompt upload / prompt file decoding (`parley_audio_decode::decode`) on
//! arbitrary bytes, with each container hint.
//!
//! Properties: decoding never panics; whatever the input claims, no more than
//! the limits' samples are ever handed out (here 2 s at most 48 kHz: the
//! decoder must stop at the limit, not after decoding what a header promises);
//! a success reports exactly the frames it handed out, at a rate within the
//! limit.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use parley_audio_decode::{Limits, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let ext = ["wav", "mp3", "ogg", "flac"][usize::from(selector % 4)];
    let limits = Limits {
        max_duration: Duration::from_secs(2),
        max_rate: 48_000,
        max_channels: 8,
    };
    let mut handed_out = 0u64;
    let result = decode(
        std::io::Cursor::new(bytes.to_vec()),
        Some(ext),
        None,
        &limits,
        |m| {
            handed_out += m.len() as u64;
        },
    );
    assert!(
        handed_out <= limits.max_samples(),
        "{handed_out} samples handed out, limit {}",
        limits.max_samples()
    );
    if let Ok(info) = result {
        assert_eq!(info.frames, handed_out);
        assert!(info.rate > 0 && info.rate <= limits.max_rate);
        assert!(info.bad_packets * 2 <= info.packets);
    }
});
