//! Codecs and resampling for one leg: G.711 (from the core), Opus (libopus
//! via the `opus` crate) and a streaming 20 ms resampler (rubato's
//! synchronous FFT resampler). Everything here allocates in its constructor
//! only; the per-frame calls work in place.

use parley_media_core::g711::Law;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::error::{Error, Result};

/// Frames per second of the engine tick (20 ms).
pub const FRAMES_PER_SEC: u32 = 50;

/// Largest Opus packet we produce or accept (RFC 6716 §3.4).
pub const OPUS_MAX_PACKET: usize = 1275;

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus at 48 kHz mono (RFC 7587), with in-band FEC and DTX as negotiated
    /// (`useinbandfec=1`, `usedtx=1` in the SDP fmtp line).
    Opus {
        /// Dynamic payload type from the SDP.
        payload_type: u8,
        /// Encode in-band FEC and use it to recover single lost packets.
        fec: bool,
        /// Discontinuous transmission: send nothing during silence.
        dtx: bool,
    },
}

impl Codec {
    /// RTP payload type of this codec.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus { payload_type, .. } => payload_type,
        }
    }

    /// RTP clock rate and PCM sample rate of the codec.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus { .. } => 48000,
        }
    }

    /// PCM samples in one 20 ms frame.
    pub fn frame_samples(self) -> usize {
        (self.clock_rate() / FRAMES_PER_SEC) as usize
    }

    /// Sample rate of the PCM this codec is decoded to and encoded from on
    /// an engine mixing at `engine_rate`. Opus decodes and encodes at 8, 16
    /// or 48 kHz natively (its RTP clock stays 48 kHz, RFC 7587), so an
    /// Opus leg never needs a resampler; G.711 is 8 kHz.
    pub fn pcm_rate(self, engine_rate: u32) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus { .. } => engine_rate,
        }
    }

    /// Largest payload we accept into the jitter buffer.
    pub fn max_payload(self) -> usize {
        match self {
            Codec::Pcmu | Codec::Pcma => 480, // up to 60 ms is tolerated on input
            Codec::Opus { .. } => OPUS_MAX_PACKET,
        }
    }

    fn law(self) -> Option<Law> {
        match self {
            Codec::Pcmu => Some(Law::Ulaw),
            Codec::Pcma => Some(Law::Alaw),
            Codec::Opus { .. } => None,
        }
    }
}

/// Decoder half of a codec.
pub enum Decoder {
    /// G.711 law.
    G711(Law),
    /// libopus decoder.
    Opus(Box<opus::Decoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoder::G711(l) => write!(f, "Decoder::G711({l:?})"),
            Decoder::Opus(_) => f.write_str("Decoder::Opus"),
        }
    }
}

impl Decoder {
    /// A decoder for `codec` producing PCM at `pcm_rate`
    /// ([`Codec::pcm_rate`]).
    pub fn new(codec: Codec, pcm_rate: u32) -> Result<Self> {
        Ok(match codec.law() {
            Some(law) => Decoder::G711(law),
            None => Decoder::Opus(Box::new(opus::Decoder::new(
                pcm_rate,
                opus::Channels::Mono,
            )?)),
        })
    }

    /// Samples (at the codec's RTP clock rate) one packet carries: its
    /// packetisation time. `None` if the packet is not valid for the codec.
    pub fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        match self {
            Decoder::G711(_) => (!payload.is_empty()).then_some(payload.len()),
            Decoder::Opus(_) => opus::packet::get_nb_samples(payload, 48000).ok(),
        }
    }

    /// Decode one payload into the start of `out`; returns the samples
    /// written. With `fec`, an Opus decoder reconstructs the packet *before*
    /// `payload` from its FEC data (`out` sized to that packet).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16], fec: bool) -> Result<usize> {
        match self {
            Decoder::G711(law) => {
                let n = payload.len().min(out.len());
                law.decode(&payload[..n], &mut out[..n])?;
                Ok(n)
            }
            Decoder::Opus(d) => Ok(d.decode(payload, out, fec)?),
        }
    }

    /// Conceal one lost packet of `out.len()` samples (Opus PLC); `None` if
    /// the codec has no PLC of its own (G.711: use the core's `Plc`).
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<Option<usize>> {
        match self {
            Decoder::G711(_) => Ok(None),
            Decoder::Opus(d) => Ok(Some(d.decode(&[], out, false)?)),
        }
    }
}

/// Encoder half of a codec.
pub enum Encoder {
    /// G.711 law.
    G711(Law),
    /// libopus encoder.
    Opus(Box<opus::Encoder>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoder::G711(l) => write!(f, "Encoder::G711({l:?})"),
            Encoder::Opus(_) => f.write_str("Encoder::Opus"),
        }
    }
}

impl Encoder {
    /// An encoder for `codec` taking PCM at `pcm_rate`
    /// ([`Codec::pcm_rate`]; Opus: VoIP application, 24 kbit/s VBR, the
    /// given `complexity` 0..=10, FEC/DTX as negotiated).
    pub fn new(codec: Codec, pcm_rate: u32, complexity: u8) -> Result<Self> {
        Ok(match codec {
            Codec::Pcmu | Codec::Pcma => Encoder::G711(codec.law().unwrap_or(Law::Ulaw)),
            Codec::Opus { fec, dtx, .. } => {
                let mut e =
                    opus::Encoder::new(pcm_rate, opus::Channels::Mono, opus::Application::Voip)?;
                e.set_bitrate(opus::Bitrate::Bits(24_000))?;
                e.set_complexity(i32::from(complexity.min(10)))?;
                e.set_inband_fec(fec)?;
                if fec {
                    e.set_packet_loss_perc(5)?;
                }
                e.set_dtx(dtx)?;
                Encoder::Opus(Box::new(e))
            }
        })
    }

    /// Encode one frame; returns the payload length. With Opus DTX a
    /// payload of 2 bytes or less means "silence, nothing to send".
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize> {
        match self {
            Encoder::G711(law) => {
                let n = pcm.len().min(out.len());
                law.encode(&pcm[..n], &mut out[..n])?;
                Ok(n)
            }
            Encoder::Opus(e) => Ok(e.encode(pcm, out)?),
        }
    }
}

/// Streaming resampler between two of 8, 16 and 48 kHz for 20 ms mono
/// frames (rubato `Fft`, fixed input and output size). Adds the FFT's delay
/// (a few ms) once; allocation-free per frame.
pub struct FrameResampler {
    inner: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    in_frame: usize,
    out_frame: usize,
}

impl std::fmt::Debug for FrameResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameResampler")
            .field("in_frame", &self.in_frame)
            .field("out_frame", &self.out_frame)
            .finish()
    }
}

impl FrameResampler {
    /// A resampler from `from` Hz to `to` Hz over 20 ms frames.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let in_frame = (from / FRAMES_PER_SEC) as usize;
        let out_frame = (to / FRAMES_PER_SEC) as usize;
        let inner = Fft::<f32>::new(from as usize, to as usize, in_frame, 1, FixedSync::Both)
            .map_err(|e| Error::Resample {
                what: e.to_string(),
            })?;
        if inner.input_frames_next() != in_frame || inner.output_frames_next() != out_frame {
            return Err(Error::Resample {
                what: format!(
                    "{from}->{to} Hz cannot run on 20 ms frames (chunks {} -> {})",
                    inner.input_frames_next(),
                    inner.output_frames_next()
                ),
            });
        }
        Ok(FrameResampler {
            inner,
            input: vec![0.0; in_frame],
            output: vec![0.0; out_frame],
            in_frame,
            out_frame,
        })
    }

    /// Samples per input frame.
    pub fn input_frame(&self) -> usize {
        self.in_frame
    }

    /// Samples per output frame.
    pub fn output_frame(&self) -> usize {
        self.out_frame
    }

    /// Resample one frame. `input` and `output` must have exactly the frame
    /// sizes of [`input_frame`](Self::input_frame) and
    /// [`output_frame`](Self::output_frame).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<()> {
        if input.len() != self.in_frame || output.len() != self.out_frame {
            return Err(Error::Core(parley_media_core::Error::LengthMismatch {
                input: input.len(),
                output: output.len(),
            }));
        }
        for (d, &s) in self.input.iter_mut().zip(input) {
            *d = f32::from(s) / 32768.0;
        }
        let adapter_in =
            InterleavedSlice::new(&self.input, 1, self.in_frame).map_err(|e| Error::Resample {
                what: e.to_string(),
            })?;
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.output, 1, self.out_frame)
            .map_err(|e| Error::Resample {
                what: e.to_string(),
            })?;
        self.inner
            .process_into_buffer(&adapter_in, &mut adapter_out, None)
            .map_err(|e| Error::Resample {
                what: e.to_string(),
            })?;
        for (d, &s) in output.iter_mut().zip(&self.output) {
            *d = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

/// Resample a whole clip (prompt files) from `from` to `to` Hz.
pub fn resample_clip(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut r =
        Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input).map_err(|e| {
            Error::Resample {
                what: e.to_string(),
            }
        })?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| Error::Resample {
        what: e.to_string(),
    })?;
    let out = r
        .process_all(&input, samples.len(), None)
        .map_err(|e| Error::Resample {
            what: e.to_string(),
        })?;
    Ok(out.take_data())
}
