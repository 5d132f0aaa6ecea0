//! RTP packets (RFC 3550 §5): a zero-copy view for parsing and a writer into
//! a caller-provided buffer.
//!
//! ```
//! use parley_media_core::rtp::{RtpHeader, RtpPacket};
//! let mut buf = [0u8; 200];
//! let header = RtpHeader { payload_type: 0, sequence: 7, timestamp: 160, ssrc: 0x1234, ..Default::default() };
//! let n = header.write(&[0xFF; 160], &mut buf).unwrap();
//! let pkt = RtpPacket::parse(&buf[..n]).unwrap();
//! assert_eq!(pkt.sequence(), 7);
//! assert_eq!(pkt.payload().len(), 160);
//! ```

use crate::error::{Error, Result};

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// A header extension (RFC 3550 §5.3.1): 16-bit profile field and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// Profile-defined identifier (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension data, a whole number of 32-bit words.
    pub data: &'a [u8],
}

impl<'a> HeaderExtension<'a> {
    /// Profile value of RFC 8285 one-byte header extensions.
    pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

    /// Iterate over RFC 8285 extension elements `(id, data)`: one-byte form
    /// for profile 0xBEDE, two-byte form for 0x1000..=0x100F. Empty for other
    /// profiles. Stops at the first malformed element; padding is skipped.
    pub fn elements(&self) -> ExtensionElements<'a> {
        let form = if self.profile == Self::ONE_BYTE_PROFILE {
            Some(false)
        } else if self.profile & 0xFFF0 == 0x1000 {
            Some(true)
        } else {
            None
        };
        ExtensionElements {
            rest: if form.is_some() { self.data } else { &[] },
            two_byte: form.unwrap_or(false),
        }
    }
}

/// Iterator over RFC 8285 header extension elements.
#[derive(Debug, Clone)]
pub struct ExtensionElements<'a> {
    rest: &'a [u8],
    two_byte: bool,
}

impl<'a> Iterator for ExtensionElements<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        loop {
            let (&first, tail) = self.rest.split_first()?;
            if first == 0 {
                // Padding byte.
                self.rest = tail;
                continue;
            }
            let (id, len, header) = if self.two_byte {
                let &len = tail.first()?;
                (first, usize::from(len), 2)
            } else {
                let id = first >> 4;
                if id == 15 {
                    // Reserved: stop processing (RFC 8285 §4.2).
                    self.rest = &[];
                    return None;
                }
                (id, usize::from(first & 0x0F) + 1, 1)
            };
            let Some(data) = self.rest.get(header..header + len) else {
                self.rest = &[];
                return None;
            };
            self.rest = &self.rest[header + len..];
            return Some((id, data));
        }
    }
}

/// A parsed RTP packet borrowing the input slice. Parsing checks every length;
/// accessors never fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    padding: usize,
    extension: Option<HeaderExtension<'a>>,
    payload_start: usize,
    payload_end: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Parse and validate a packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let len = buf.len();
        if len < RTP_HEADER_LEN {
            return Err(Error::RtpTooShort {
                len,
                needed: RTP_HEADER_LEN,
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(Error::BadVersion { version });
        }
        let csrc_count = usize::from(buf[0] & 0x0F);
        let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
        if len < offset {
            return Err(Error::RtpTooShort {
                len,
                needed: offset,
            });
        }
        let extension = if buf[0] & 0x10 != 0 {
            if len < offset + 4 {
                return Err(Error::RtpTooShort {
                    len,
                    needed: offset + 4,
                });
            }
            let profile = be16(buf, offset);
            let words = usize::from(be16(buf, offset + 2));
            let start = offset + 4;
            let end = start + 4 * words;
            if len < end {
                return Err(Error::RtpTooShort { len, needed: end });
            }
            offset = end;
            Some(HeaderExtension {
                profile,
                data: &buf[start..end],
            })
        } else {
            None
        };
        let padding = if buf[0] & 0x20 != 0 {
            let padding = usize::from(buf[len - 1]);
            if padding == 0 || padding > len - offset {
                return Err(Error::PaddingOverflow { padding, len });
            }
            padding
        } else {
            0
        };
        Ok(RtpPacket {
            buf,
            padding,
            extension,
            payload_start: offset,
            payload_end: len - padding,
        })
    }

    /// Always 2 for a parsed packet.
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }
    /// Padding bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    /// Number of padding bytes (including the count byte).
    pub fn padding_len(&self) -> usize {
        self.padding
    }
    /// Extension bit.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }
    /// Number of CSRCs.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.buf[0] & 0x0F)
    }
    /// The `i`-th CSRC, if present.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < self.csrc_count()).then(|| be32(self.buf, RTP_HEADER_LEN + 4 * i))
    }
    /// Iterate over the CSRC list.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.csrc_count()).map(|i| be32(self.buf, RTP_HEADER_LEN + 4 * i))
    }
    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    /// Payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }
    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    /// Synchronisation source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }
    /// Header extension, if the X bit is set.
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        self.extension
    }
    /// Payload, without header, extension and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
    /// Length of the header (fixed part, CSRCs and extension).
    pub fn header_len(&self) -> usize {
        self.payload_start
    }
    /// The whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Header fields for writing a packet with [`RtpHeader::write`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// Marker bit (start of talkspurt, start of a DTMF event).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: &'a [u32],
    /// Optional header extension; data must be a multiple of 4 bytes.
    pub extension: Option<HeaderExtension<'a>>,
    /// Padding bytes to append (0 = none), including the count byte.
    pub padding: u8,
}

impl RtpHeader<'_> {
    /// Bytes the header occupies.
    pub fn header_len(&self) -> usize {
        RTP_HEADER_LEN + 4 * self.csrcs.len() + self.extension.map_or(0, |e| 4 + e.data.len())
    }

    /// Write header, `payload` and padding into `out`; returns the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.payload_type > 127 {
            return Err(Error::OutOfRange {
                field: "payload_type",
                value: u64::from(self.payload_type),
                max: 127,
            });
        }
        if self.csrcs.len() > 15 {
            return Err(Error::OutOfRange {
                field: "csrc_count",
                value: self.csrcs.len() as u64,
                max: 15,
            });
        }
        if let Some(ext) = self.extension {
            if ext.data.len() % 4 != 0 {
                return Err(Error::ExtensionNotAligned {
                    len: ext.data.len(),
                });
            }
            if ext.data.len() / 4 > usize::from(u16::MAX) {
                return Err(Error::OutOfRange {
                    field: "extension_words",
                    value: (ext.data.len() / 4) as u64,
                    max: u64::from(u16::MAX),
                });
            }
        }
        let header_len = self.header_len();
        let total = header_len + payload.len() + usize::from(self.padding);
        if out.len() < total {
            return Err(Error::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        out[0] = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if self.extension.is_some() { 0x10 } else { 0 }
            | self.csrcs.len() as u8;
        out[1] = if self.marker { 0x80 } else { 0 } | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = RTP_HEADER_LEN;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some(ext) = self.extension {
            out[at..at + 2].copy_from_slice(&ext.profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            at += 4;
            out[at..at + ext.data.len()].copy_from_slice(ext.data);
            at += ext.data.len();
        }
        out[at..at + payload.len()].copy_from_slice(payload);
        at += payload.len();
        if self.padding > 0 {
            let p = usize::from(self.padding);
            out[at..at + p - 1].fill(0);
            out[at + p - 1] = self.padding;
            at += p;
        }
        Ok(at)
    }
}

/// Extend a 16-bit sequence number to 64 bits relative to a reference
/// extended sequence, choosing the value closest to it (handles wrap-around
/// in both directions).
pub fn extend_seq(reference: u64, seq: u16) -> u64 {
    let ref_low = reference as u16;
    let delta = seq.wrapping_sub(ref_low) as i16;
    let ext = reference as i64 + i64::from(delta);
    if ext < 0 {
        // Before the start of the extended space: treat as ahead.
        reference + u64::from(seq.wrapping_sub(ref_low))
    } else {
        ext as u64
    }
}
