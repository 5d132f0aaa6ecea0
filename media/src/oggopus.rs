//! Ogg/Opus recording (RFC 7845): stereo Opus packets of 20 ms in an Ogg stream,
//! one page per second of audio (so a crash loses at most about a second, like the WAV
//! writer). Used by the recorder for paths ending in `.opus` or `.ogg`.

use std::io::Write as _;
use std::path::Path;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// An Ogg/Opus file being written.
pub(crate) struct OggOpusWriter {
    out: PacketWriter<'static, crate::recorder::FileOut>,
    enc: opus::Encoder,
    serial: u32,
    /// Input frame (per channel) at the engine rate: 20 ms.
    frame: usize,
    /// 48 kHz samples per input frame.
    granule_step: u64,
    granule: u64,
    packets: u64,
    /// Interleaved input waiting for a full frame.
    pending: Vec<i16>,
    packet: Vec<u8>,
}

/// Whether `path` asks for Ogg/Opus.
pub(crate) fn wants_ogg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("opus") || e.eq_ignore_ascii_case("ogg"))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl OggOpusWriter {
    /// Creates the file and writes the identification and comment headers. `rate` must
    /// be one of Opus's input rates (8, 12, 16, 24 or 48 kHz).
    pub(crate) fn create(
        path: &Path,
        rate: u32,
        file: crate::recorder::FileOut,
    ) -> Result<OggOpusWriter, String> {
        let mut enc = opus::Encoder::new(rate, opus::Channels::Stereo, opus::Application::Voip)
            .map_err(err)?;
        enc.set_bitrate(opus::Bitrate::Bits(32_000)).map_err(err)?;
        let pre_skip =
            u16::try_from(enc.get_lookahead().map_err(err)?.max(0) * 48_000 / rate as i32)
                .unwrap_or(0);
        let mut out = PacketWriter::new(file);
        let serial = rand_serial(path);
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(2); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&rate.to_le_bytes()); // original input rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0 (mono/stereo)
        out.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(err)?;
        let vendor = b"Parley";
        let mut tags = Vec::with_capacity(8 + 4 + vendor.len() + 4);
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        out.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(err)?;
        out.inner_mut().flush().map_err(err)?;
        let frame = (rate / 50) as usize;
        Ok(OggOpusWriter {
            out,
            enc,
            serial,
            frame,
            granule_step: 960,
            granule: u64::from(pre_skip),
            packets: 0,
            pending: Vec::with_capacity(frame * 2),
            packet: vec![0; 1500],
        })
    }

    /// Appends stereo samples (left, right); encodes every full 20 ms.
    pub(crate) fn write(&mut self, left: &[i16], right: &[i16]) -> Result<(), String> {
        for (l, r) in left.iter().zip(right) {
            self.pending.push(*l);
            self.pending.push(*r);
            if self.pending.len() == self.frame * 2 {
                self.encode_pending(false)?;
            }
        }
        Ok(())
    }

    fn encode_pending(&mut self, last: bool) -> Result<(), String> {
        self.pending.resize(self.frame * 2, 0);
        let n = self
            .enc
            .encode(&self.pending, &mut self.packet)
            .map_err(err)?;
        self.pending.clear();
        self.packets += 1;
        self.granule += self.granule_step;
        // A page per second of audio, then the file is flushed.
        let end = if last {
            PacketWriteEndInfo::EndStream
        } else if self.packets.is_multiple_of(50) {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.out
            .write_packet(self.packet[..n].to_vec(), self.serial, end, self.granule)
            .map_err(err)?;
        if !matches!(end, PacketWriteEndInfo::NormalPacket) {
            self.out.inner_mut().flush().map_err(err)?;
        }
        Ok(())
    }

    /// Encodes what is left (padded with silence) and ends the stream.
    pub(crate) fn finish(mut self) -> Result<(), String> {
        self.encode_pending(true)?;
        self.out.into_inner().close().map_err(err)
    }
}

/// A stream serial number that differs between files.
fn rand_serial(path: &Path) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    path.to_string_lossy()
        .bytes()
        .fold(nanos ^ 0x811c_9dc5, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
}
