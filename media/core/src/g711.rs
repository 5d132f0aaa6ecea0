//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA) companding.
//!
//! Implemented from the segment (chord) algorithm of ITU-T G.711 §3 and §4.
//! Linear samples are 16-bit two's complement; the standard's µ-law works on
//! 14-bit and A-law on 13-bit magnitudes, so decoded values are the standard's
//! reconstruction levels scaled by 4 (µ-law) and 8 (A-law): µ-law decodes to
//! ±{0 ..= 32124}, A-law to ±{8 ..= 32256}.
//!
//! The segment algorithm is written once as `const fn`s; from them the
//! compiler builds the decode tables (256 entries) and the encode tables
//! (16 KiB µ-law, 8 KiB A-law; one lookup per sample). The encode tables are
//! exact because every decision boundary falls on the table's step; a unit
//! test checks them against the algorithm for all 65536 inputs.
//!
//! ```
//! use parley_media_core::g711;
//! assert_eq!(g711::ulaw_decode(0xFF), 0);
//! assert_eq!(g711::alaw_decode(0xD5), 8);
//! let mut bytes = [0u8; 160];
//! let pcm = [1000i16; 160];
//! g711::ulaw_encode_slice(&pcm, &mut bytes).unwrap();
//! let mut back = [0i16; 160];
//! g711::ulaw_decode_slice(&bytes, &mut back).unwrap();
//! assert!((back[0] - 1000).abs() < 40);
//! ```

use crate::error::{Error, Result};

/// µ-law bias added to the magnitude before segment search (33 in 14-bit units).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent before the bias is added.
const ULAW_CLIP: i32 = 32635;

/// Decode one µ-law byte by the G.711 expansion rule (const, used for the table).
const fn ulaw_expand(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Decode one A-law byte by the G.711 expansion rule (const, used for the table).
const fn alaw_expand(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        s => ((mantissa << 4) + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_expand(i as u8)
        } else {
            ulaw_expand(i as u8)
        };
        i += 1;
    }
    table
}

/// µ-law code → 16-bit linear, all 256 codes (computed at compile time).
pub static ULAW_TO_LINEAR: [i16; 256] = build_table(false);
/// A-law code → 16-bit linear, all 256 codes (computed at compile time).
pub static ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// µ-law segment/mantissa code (without sign, not inverted) of a magnitude
/// 0..=32768, by the G.711 segment algorithm.
const fn ulaw_code_of_magnitude(magnitude: i32) -> u8 {
    let clipped = if magnitude > ULAW_CLIP {
        ULAW_CLIP
    } else {
        magnitude
    };
    let biased = clipped + ULAW_BIAS;
    // biased is in 132..=32767: its highest set bit is bit 7..=14.
    let exponent = (31 - biased.leading_zeros() as i32 - 7) as u8;
    let mantissa = ((biased >> (exponent + 3)) & 0x0F) as u8;
    (exponent << 4) | mantissa
}

/// Reference µ-law encoder straight from the segment algorithm.
#[cfg(test)]
const fn ulaw_compress(sample: i16) -> u8 {
    let s = sample as i32;
    let (sign, magnitude) = if s < 0 { (0x80u8, -s) } else { (0u8, s) };
    !(sign | ulaw_code_of_magnitude(magnitude))
}

/// All µ-law decision boundaries fall on multiples of 4 of the magnitude
/// (the bias 132 is 4 mod 8). So with `y = x` for `x >= 0` and `y = x - 1`
/// for `x < 0`, every group of inputs sharing `y >> 2` shares one code, and a
/// table indexed by `(y >> 2) + 8193` (16385 entries) is exact.
const fn build_ulaw_encode_table() -> [u8; 16385] {
    let mut t = [0u8; 16385];
    let mut i = 0;
    while i < 16385 {
        let group = i as i32 - 8193;
        t[i] = if group >= 0 {
            !ulaw_code_of_magnitude(group << 2)
        } else {
            // y in [4g, 4g+3] with y = x - 1, so x = 4g + 1 .. 4g + 4 and
            // the magnitudes are -4g - 4 ..= -4g - 1; take the largest.
            !(0x80 | ulaw_code_of_magnitude(-4 * group - 1))
        };
        i += 1;
    }
    t
}

static ULAW_ENCODE: [u8; 16385] = build_ulaw_encode_table();

/// Encode one 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let x = i32::from(sample);
    let y = x + (x >> 31); // x - 1 for negative x
    ULAW_ENCODE[((y >> 2) + 8193) as usize]
}

/// Decode one µ-law byte to 16-bit linear.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// A-law segment/mantissa code (before the even-bit inversion and sign) of a
/// 12-bit magnitude (the 13-bit linear value without sign).
const fn alaw_code_of_magnitude(magnitude: u16) -> u8 {
    if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let segment = (15 - magnitude.leading_zeros() as u16) - 4; // 1..=7
        ((segment as u8) << 4) | ((magnitude >> segment) & 0x0F) as u8
    }
}

/// Reference A-law encoder straight from the segment algorithm.
#[cfg(test)]
const fn alaw_compress(sample: i16) -> u8 {
    // 13-bit domain: positive x >> 3, negative values use the one's
    // complement so that -1..=-8 land on the smallest negative level.
    if sample >= 0 {
        alaw_code_of_magnitude((sample >> 3) as u16) ^ 0xD5
    } else {
        alaw_code_of_magnitude(((!sample) >> 3) as u16) ^ 0x55
    }
}

/// Indexed by the 13-bit two's complement value `sample >> 3`: the full
/// A-law code, sign and even-bit inversion included.
const fn build_alaw_encode_table() -> [u8; 8192] {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = if i < 4096 {
            alaw_code_of_magnitude(i as u16) ^ 0xD5
        } else {
            // value = i - 8192 < 0; one's complement magnitude = 8191 - i.
            alaw_code_of_magnitude((8191 - i) as u16) ^ 0x55
        };
        i += 1;
    }
    t
}

static ALAW_ENCODE: [u8; 8192] = build_alaw_encode_table();

/// Encode one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as usize) & 0x1FFF]
}

/// Decode one A-law byte to 16-bit linear.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

fn check_len(input: usize, output: usize) -> Result<()> {
    if input == output {
        Ok(())
    } else {
        Err(Error::LengthMismatch { input, output })
    }
}

/// Encode a frame of linear samples to µ-law into `out` (same length).
pub fn ulaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> Result<()> {
    check_len(pcm.len(), out.len())?;
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ulaw_encode(s);
    }
    Ok(())
}

/// Decode a frame of µ-law bytes to linear samples into `out` (same length).
pub fn ulaw_decode_slice(codes: &[u8], out: &mut [i16]) -> Result<()> {
    check_len(codes.len(), out.len())?;
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ULAW_TO_LINEAR[usize::from(c)];
    }
    Ok(())
}

/// Encode a frame of linear samples to A-law into `out` (same length).
pub fn alaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> Result<()> {
    check_len(pcm.len(), out.len())?;
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = alaw_encode(s);
    }
    Ok(())
}

/// Decode a frame of A-law bytes to linear samples into `out` (same length).
pub fn alaw_decode_slice(codes: &[u8], out: &mut [i16]) -> Result<()> {
    check_len(codes.len(), out.len())?;
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ALAW_TO_LINEAR[usize::from(c)];
    }
    Ok(())
}

/// The two G.711 laws, for code that picks one at run time (from SDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP static payload type 0 (PCMU).
    Ulaw,
    /// A-law, RTP static payload type 8 (PCMA).
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law for a static payload type, if it is 0 or 8.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The code for silence (linear 0).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encode a frame into `out` (same length).
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> Result<()> {
        match self {
            Law::Ulaw => ulaw_encode_slice(pcm, out),
            Law::Alaw => alaw_encode_slice(pcm, out),
        }
    }

    /// Decode a frame into `out` (same length).
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> Result<()> {
        match self {
            Law::Ulaw => ulaw_decode_slice(codes, out),
            Law::Alaw => alaw_decode_slice(codes, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_segment_algorithm_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), ulaw_compress(x), "ulaw {x}");
            assert_eq!(alaw_encode(x), alaw_compress(x), "alaw {x}");
        }
    }
}
