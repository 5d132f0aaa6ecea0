//! Call audio (8 kHz G.711, or the engine rate) to whisper's 16 kHz mono f32, one
//! 20 ms frame at a time with rubato's synchronous FFT resampler.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::error::{Error, Result};

/// whisper's sample rate.
pub const WHISPER_RATE: u32 = 16_000;

/// Resamples 20 ms frames from one rate to 16 kHz (a copy when it already is).
pub struct Upsampler {
    inner: Option<Fft<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
    in_frame: usize,
    out_frame: usize,
}

impl std::fmt::Debug for Upsampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upsampler")
            .field("in_frame", &self.in_frame)
            .field("out_frame", &self.out_frame)
            .finish()
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Resample {
        what: e.to_string(),
    }
}

impl Upsampler {
    /// A resampler from `from` Hz (8, 16 or 48 kHz) over 20 ms frames.
    pub fn new(from: u32) -> Result<Self> {
        let in_frame = (from / 50) as usize;
        let out_frame = (WHISPER_RATE / 50) as usize;
        let inner = if from == WHISPER_RATE {
            None
        } else {
            let r = Fft::<f32>::new(
                from as usize,
                WHISPER_RATE as usize,
                in_frame,
                1,
                FixedSync::Both,
            )
            .map_err(err)?;
            if r.input_frames_next() != in_frame || r.output_frames_next() != out_frame {
                return Err(Error::Resample {
                    what: format!("{from} Hz cannot run on 20 ms frames"),
                });
            }
            Some(r)
        };
        Ok(Upsampler {
            inner,
            input: vec![0.0; in_frame],
            output: vec![0.0; out_frame],
            in_frame,
            out_frame,
        })
    }

    /// Input samples per frame.
    pub fn input_frame(&self) -> usize {
        self.in_frame
    }

    /// Resamples one frame (exactly [`input_frame`](Self::input_frame) samples;
    /// shorter input is padded with silence) and appends 320 samples to `out`.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<f32>) -> Result<()> {
        self.input.fill(0.0);
        for (d, &s) in self.input.iter_mut().zip(pcm) {
            *d = f32::from(s) / 32768.0;
        }
        match self.inner.as_mut() {
            None => out.extend_from_slice(&self.input),
            Some(r) => {
                let a_in = InterleavedSlice::new(&self.input, 1, self.in_frame).map_err(err)?;
                let mut a_out =
                    InterleavedSlice::new_mut(&mut self.output, 1, self.out_frame).map_err(err)?;
                r.process_into_buffer(&a_in, &mut a_out, None)
                    .map_err(err)?;
                out.extend_from_slice(&self.output);
            }
        }
        Ok(())
    }
}

/// Resamples a whole clip (voicemail, tests) to 16 kHz f32.
pub fn clip_to_16k(pcm: &[i16], rate: u32) -> Result<Vec<f32>> {
    let mut up = Upsampler::new(rate)?;
    let n = up.input_frame();
    let mut out =
        Vec::with_capacity(pcm.len() * WHISPER_RATE as usize / rate.max(1) as usize + 320);
    for chunk in pcm.chunks(n) {
        up.process(chunk, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_8k_and_keeps_a_tone() {
        let mut up = Upsampler::new(8000).expect("resampler");
        let tone: Vec<i16> = (0..8000)
            .map(|i| {
                (10000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        let mut out = Vec::new();
        for c in tone.chunks(160) {
            up.process(c, &mut out).expect("process");
        }
        assert_eq!(out.len(), 16000);
        let peak = out[4000..].iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((0.25..0.35).contains(&peak), "peak {peak}");
    }
}
