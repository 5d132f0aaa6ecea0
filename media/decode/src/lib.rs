//! # parley-audio-decode
//!
//! Decoding audio files Parley did not make (prompt uploads, prompt files on
//! disk) with symphonia, under limits that hold whatever the file claims: a
//! few kilobytes of FLAC or ADPCM can describe hours of audio (a 10 MiB FLAC
//! of silence is about 60 hours at 48 kHz, some 40 GB as `f32`), so the
//! decoded duration, sample rate and channel count are checked while
//! decoding and the decoder stops at the first limit passed. Memory is then
//! bounded by [`Limits::max_samples`] (mono samples kept), whatever the input.
//!
//! Both the upload check (`parley-web`, which only counts) and the player
//! (`parley-media`, which keeps the mono samples) use [`decode`], and the
//! `audio_decode` fuzz target drives it with arbitrary bytes.
//!
//! ```
//! use parley_audio_decode::{Limits, decode};
//! let wav = {
//!     // 0.1 s of 8 kHz mono 16-bit silence.
//!     let mut w = b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data".to_vec();
//!     w.extend_from_slice(&1600u32.to_le_bytes());
//!     w.extend(std::iter::repeat_n(0u8, 1600));
//!     let riff = (w.len() - 8) as u32;
//!     w[4..8].copy_from_slice(&riff.to_le_bytes());
//!     w
//! };
//! let mut kept = Vec::new();
//! let info = decode(std::io::Cursor::new(wav), Some("wav"), None, &Limits::default(), |mono| {
//!     kept.extend_from_slice(mono)
//! })
//! .unwrap();
//! assert_eq!((info.frames, info.rate, info.format), (800, 8000, "wave"));
//! assert_eq!(kept.len(), 800);
//! ```

use std::time::Duration;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
pub use symphonia::core::io::MediaSource;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

/// Why a file was not decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not a container/format symphonia recognises.
    #[error("not a recognised audio format ({reason})")]
    Format {
        /// symphonia's reason.
        reason: String,
    },
    /// The content is another format than the caller expected (an upload whose
    /// Content-Type says FLAC holding an Ogg file).
    #[error("the content is {found}, not {expected}")]
    WrongFormat {
        /// What symphonia found.
        found: &'static str,
        /// What was expected.
        expected: String,
    },
    /// The file has no audio track (or no codec parameters for it).
    #[error("no audio track")]
    NoTrack,
    /// The track's codec is not supported.
    #[error("unsupported codec ({reason})")]
    Codec {
        /// symphonia's reason.
        reason: String,
    },
    /// The stream broke off in a way that cannot be skipped.
    #[error("the stream is damaged ({reason})")]
    Damaged {
        /// symphonia's reason.
        reason: String,
    },
    /// Longer than [`Limits::max_duration`] (declared or decoded).
    #[error("longer than the {} s limit", limit.as_secs())]
    TooLong {
        /// The limit.
        limit: Duration,
    },
    /// A sample rate above [`Limits::max_rate`].
    #[error("sample rate {rate} Hz is above the {limit} Hz limit")]
    RateTooHigh {
        /// The file's rate.
        rate: u32,
        /// The limit.
        limit: u32,
    },
    /// More channels than [`Limits::max_channels`].
    #[error("{channels} channels is above the limit of {limit}")]
    TooManyChannels {
        /// The file's channel count.
        channels: usize,
        /// The limit.
        limit: usize,
    },
    /// No audio came out of it.
    #[error("no audio could be decoded")]
    NoAudio,
    /// More than half of the packets did not decode.
    #[error("{bad} of {packets} packets do not decode")]
    MostlyUndecodable {
        /// Packets that failed.
        bad: u64,
        /// Packets of the track.
        packets: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What a decode may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest audio accepted. Default 5 minutes (music on hold loops).
    pub max_duration: Duration,
    /// Highest sample rate accepted. Default 96 kHz.
    pub max_rate: u32,
    /// Most channels accepted (they are mixed down to mono). Default 8.
    pub max_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_duration: Duration::from_secs(300),
            max_rate: 96_000,
            max_channels: 8,
        }
    }
}

impl Limits {
    /// Most mono samples a decode hands out: the memory a caller keeping them
    /// needs is `4 * max_samples()` bytes (28.8 M samples, 115 MB by default, for a
    /// file at the highest rate; 2.4 M at 8 kHz).
    pub fn max_samples(&self) -> u64 {
        self.max_duration.as_millis() as u64 * u64::from(self.max_rate) / 1000
    }

    fn frames_allowed(&self, rate: u32) -> u64 {
        self.max_duration.as_millis() as u64 * u64::from(rate) / 1000
    }
}

/// What was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Frames (mono samples) decoded.
    pub frames: u64,
    /// Sample rate.
    pub rate: u32,
    /// Packets of the track, and those that did not decode (skipped).
    pub packets: u64,
    /// Packets that did not decode.
    pub bad_packets: u64,
    /// symphonia's short name of the format ("wav", "mp3", "ogg", "flac").
    pub format: &'static str,
}

impl Decoded {
    /// The decoded length.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.frames * 1_000_000 / u64::from(self.rate.max(1)))
    }
}

/// Decode `source` (a [`std::fs::File`] or a [`std::io::Cursor`] over bytes;
/// `ext` is a hint such as "wav"; with `expect`, a container other than that
/// symphonia short name is refused before decoding),
/// handing each packet's audio, mixed down to mono, to `sink`. Stops with an
/// error at the first limit passed; corrupt packets are skipped (as players
/// do) unless they are most of the file.
pub fn decode<R>(
    source: R,
    ext: Option<&str>,
    expect: Option<&str>,
    limits: &Limits,
    mut sink: impl FnMut(&[f32]),
) -> Result<Decoded>
where
    R: MediaSource + 'static,
{
    let mss = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| Error::Format {
            reason: e.to_string(),
        })?;
    let format_name = format.format_info().short_name;
    if let Some(expected) = expect
        && expected != format_name
    {
        return Err(Error::WrongFormat {
            found: format_name,
            expected: expected.to_owned(),
        });
    }
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(Error::NoTrack)?;
    let track_id = track.id;
    let declared_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(Error::NoTrack)?
        .clone();
    // What the header declares is checked first (refused without decoding) ...
    check_rate(params.sample_rate, limits)?;
    if let Some(ch) = params.channels.as_ref().map(|c| c.count()) {
        check_channels(ch, limits)?;
    }
    if let (Some(rate), Some(n)) = (params.sample_rate, declared_frames)
        && n > limits.frames_allowed(rate)
    {
        return Err(Error::TooLong {
            limit: limits.max_duration,
        });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| Error::Codec {
            reason: e.to_string(),
        })?;
    // ... and what comes out is checked again, packet by packet.
    let (mut frames, mut rate, mut packets, mut bad) = (0u64, 0u32, 0u64, 0u64);
    let mut interleaved: Vec<f32> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) | Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                return Err(Error::Damaged {
                    reason: e.to_string(),
                });
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            Err(SymError::DecodeError(_)) => {
                bad += 1;
                continue;
            }
            Err(e) => {
                return Err(Error::Damaged {
                    reason: e.to_string(),
                });
            }
        };
        let spec = buf.spec();
        check_rate(Some(spec.rate()), limits)?;
        let channels = spec.channels().count().max(1);
        check_channels(channels, limits)?;
        if rate != 0 && spec.rate() != rate {
            // A rate change mid-stream: the duration so far is in the old rate.
            return Err(Error::Damaged {
                reason: "the sample rate changes within the stream".into(),
            });
        }
        rate = spec.rate();
        let n = u64::try_from(buf.frames()).unwrap_or(u64::MAX);
        frames = frames.saturating_add(n);
        if frames > limits.frames_allowed(rate) {
            return Err(Error::TooLong {
                limit: limits.max_duration,
            });
        }
        buf.copy_to_vec_interleaved(&mut interleaved);
        mono.clear();
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        sink(&mono);
    }
    if frames == 0 || rate == 0 {
        return Err(Error::NoAudio);
    }
    if bad * 2 > packets {
        return Err(Error::MostlyUndecodable { bad, packets });
    }
    Ok(Decoded {
        frames,
        rate,
        packets,
        bad_packets: bad,
        format: format_name,
    })
}

/// Decode into one mono buffer (at most [`Limits::max_samples`] samples).
pub fn decode_mono<R>(source: R, ext: Option<&str>, limits: &Limits) -> Result<(Vec<f32>, Decoded)>
where
    R: MediaSource + 'static,
{
    let mut out = Vec::new();
    let info = decode(source, ext, None, limits, |m| out.extend_from_slice(m))?;
    Ok((out, info))
}

fn check_rate(rate: Option<u32>, limits: &Limits) -> Result<()> {
    match rate {
        Some(r) if r > limits.max_rate => Err(Error::RateTooHigh {
            rate: r,
            limit: limits.max_rate,
        }),
        _ => Ok(()),
    }
}

fn check_channels(channels: usize, limits: &Limits) -> Result<()> {
    if channels > limits.max_channels {
        return Err(Error::TooManyChannels {
            channels,
            limit: limits.max_channels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Cursor;

    /// `secs` of 8 kHz mono silence as FLAC, made by sox.
    fn silence_flac(name: &str, secs: u32) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("parley-decode-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("silence.flac");
        let ok = std::process::Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
            .arg(&path)
            .args(["trim", "0", &secs.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "sox failed");
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }

    #[test]
    fn a_10_mib_flac_of_silence_is_refused_without_decoding_it_all() {
        // Regression: uploads and prompt files were decoded in full, whatever
        // their length; the player kept every sample (hours of audio as f32).
        let flac = silence_flac("10mib", 7800);
        assert!(flac.len() >= 10 << 20, "{} bytes", flac.len());
        let limits = Limits::default();
        // As made: STREAMINFO declares the length, refused before decoding.
        let mut handed_out = 0u64;
        let err = decode(
            Cursor::new(flac.clone()),
            Some("flac"),
            Some("flac"),
            &limits,
            |m| {
                handed_out += m.len() as u64;
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::TooLong {
                limit: limits.max_duration
            }
        );
        assert_eq!(handed_out, 0);
        // A header that hides the length (total samples 0 = unknown): decoding
        // stops at the limit, so no more than the limit is ever handed out.
        let mut hidden = flac;
        assert_eq!(&hidden[..4], b"fLaC");
        hidden[21] &= 0xF0;
        hidden[22..26].fill(0);
        let mut handed_out = 0u64;
        let err = decode(Cursor::new(hidden), Some("flac"), None, &limits, |m| {
            handed_out += m.len() as u64;
        })
        .unwrap_err();
        assert_eq!(
            err,
            Error::TooLong {
                limit: limits.max_duration
            }
        );
        assert!(handed_out <= limits.max_samples(), "{handed_out}");
        assert!(handed_out <= 300 * 8000, "{handed_out}");
    }

    #[test]
    fn a_short_file_within_the_limits_decodes_and_a_tighter_limit_refuses_it() {
        let flac = silence_flac("short", 2);
        let (mono, info) =
            decode_mono(Cursor::new(flac.clone()), Some("flac"), &Limits::default()).unwrap();
        assert_eq!((info.frames, info.rate, info.format), (16000, 8000, "flac"));
        assert_eq!(mono.len(), 16000);
        assert_eq!(info.duration(), Duration::from_secs(2));
        let tight = Limits {
            max_duration: Duration::from_secs(1),
            ..Limits::default()
        };
        assert!(matches!(
            decode_mono(Cursor::new(flac.clone()), Some("flac"), &tight),
            Err(Error::TooLong { .. })
        ));
        let low_rate = Limits {
            max_rate: 4000,
            ..Limits::default()
        };
        assert_eq!(
            decode_mono(Cursor::new(flac.clone()), Some("flac"), &low_rate).unwrap_err(),
            Error::RateTooHigh {
                rate: 8000,
                limit: 4000
            }
        );
        assert!(matches!(
            decode(
                Cursor::new(flac),
                Some("flac"),
                Some("ogg"),
                &Limits::default(),
                |_| ()
            ),
            Err(Error::WrongFormat { found: "flac", .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"fLaC",
            b"RIFF\x00\x00\x00\x00WAVE",
            &[0xFF, 0xFB, 0x90, 0x00],
        ] {
            assert!(decode_mono(Cursor::new(bytes.to_vec()), None, &Limits::default()).is_err());
        }
    }
}
