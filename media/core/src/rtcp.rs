//! RTCP (RFC 3550 §6): zero-copy parsing of compound packets (SR, RR, SDES,
//! BYE, others passed through) and a writer that appends packets to a
//! caller-provided buffer.
//!
//! ```
//! use parley_media_core::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter};
//! let mut buf = [0u8; 128];
//! let mut w = RtcpWriter::new(&mut buf);
//! w.receiver_report(0x1111, &[]).unwrap();
//! w.sdes_cname(0x1111, b"agent@parley").unwrap();
//! let n = w.finish();
//! let compound = RtcpCompound::parse(&buf[..n]).unwrap();
//! assert_eq!(compound.iter().count(), 2);
//! ```

use crate::error::{Error, Result};

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type of application-defined.
pub const PT_APP: u8 = 204;
/// SDES item type CNAME.
pub const SDES_CNAME: u8 = 1;

const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The middle 32 bits of a 64-bit NTP timestamp (the LSR / DLSR unit:
/// 1/65536 s).
pub fn compact_ntp(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp, 32.32 fixed point.
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the NTP time.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// Source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire; clamped on write).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp (0 if none).
    pub last_sr: u32,
    /// Delay since that SR, 1/65536 s (0 if none).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let lost = be32(b, 4) & 0x00FF_FFFF;
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn write(&self, out: &mut [u8]) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0x00FF_FFFF;
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&(u32::from(self.fraction_lost) << 24 | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Report blocks of an SR or RR, parsed lazily.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        self.chunks.next().map(ReportBlock::parse)
    }
}

/// A parsed sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// Sender information.
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// Reception report blocks.
    pub fn blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            chunks: self.blocks.chunks_exact(REPORT_BLOCK_LEN),
        }
    }
}

/// A parsed receiver report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// SSRC of the packet sender.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// Reception report blocks.
    pub fn blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            chunks: self.blocks.chunks_exact(REPORT_BLOCK_LEN),
        }
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 = CNAME, 2 = NAME ...).
    pub kind: u8,
    /// Item text (UTF-8 by the RFC, not checked here).
    pub value: &'a [u8],
}

/// One SDES chunk: an SSRC and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// Iterate over the items of this chunk.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { rest: self.items }
    }
    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SDES_CNAME).map(|i| i.value)
    }
}

/// Iterator over SDES items of one chunk (already validated).
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        let kind = *self.rest.first()?;
        if kind == 0 {
            return None;
        }
        let len = usize::from(*self.rest.get(1)?);
        let value = self.rest.get(2..2 + len)?;
        self.rest = &self.rest[2 + len..];
        Some(SdesItem { kind, value })
    }
}

/// Walk one chunk starting at `at`; returns (items slice, next chunk offset).
fn sdes_chunk(body: &[u8], at: usize) -> Result<(u32, &[u8], usize)> {
    if body.len() < at + 4 {
        return Err(Error::SdesOverrun { offset: at });
    }
    let ssrc = be32(body, at);
    let start = at + 4;
    let mut i = start;
    loop {
        let Some(&kind) = body.get(i) else {
            return Err(Error::SdesOverrun { offset: i });
        };
        if kind == 0 {
            // End of list, then pad to the next 32-bit boundary.
            let end = (i + 1).div_ceil(4) * 4;
            if end > body.len() {
                return Err(Error::SdesOverrun { offset: i });
            }
            return Ok((ssrc, &body[start..i], end));
        }
        let Some(&len) = body.get(i + 1) else {
            return Err(Error::SdesOverrun { offset: i });
        };
        i += 2 + usize::from(len);
        if i > body.len() {
            return Err(Error::SdesOverrun { offset: i });
        }
    }
}

/// A parsed SDES packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// Iterate over the chunks.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            at: 0,
            left: self.count,
        }
    }
    /// The CNAME of `ssrc`, if described here.
    pub fn cname(&self, ssrc: u32) -> Option<&'a [u8]> {
        self.chunks()
            .find(|c| c.ssrc == ssrc)
            .and_then(|c| c.cname())
    }
}

/// Iterator over SDES chunks (already validated).
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    at: usize,
    left: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;
    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        let (ssrc, items, next) = sdes_chunk(self.body, self.at).ok()?;
        self.left -= 1;
        self.at = next;
        Some(SdesChunk { ssrc, items })
    }
}

/// A parsed BYE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// Reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl Bye<'_> {
    /// The sources leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport(SenderReport<'a>),
    /// Receiver report.
    ReceiverReport(ReceiverReport<'a>),
    /// Source description.
    Sdes(Sdes<'a>),
    /// Goodbye.
    Bye(Bye<'a>),
    /// APP, feedback (RFC 4585) or unknown types, passed through.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count / format field.
        count: u8,
        /// Body after the 4-byte header, without padding.
        body: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    /// Parse the packet at `offset` of `buf`; returns it and the next offset.
    fn parse_at(buf: &'a [u8], offset: usize) -> Result<(RtcpPacket<'a>, usize)> {
        let rest = &buf[offset..];
        if rest.len() < 4 {
            return Err(Error::RtcpTooShort {
                offset,
                len: rest.len(),
                needed: 4,
            });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(Error::BadVersion { version });
        }
        let padded = rest[0] & 0x20 != 0;
        let count = rest[0] & 0x1F;
        let packet_type = rest[1];
        let total = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if rest.len() < total {
            return Err(Error::RtcpTooShort {
                offset,
                len: rest.len(),
                needed: total,
            });
        }
        let mut end = total;
        if padded {
            let padding = usize::from(rest[total - 1]);
            if padding == 0 || padding > total - 4 {
                return Err(Error::PaddingOverflow {
                    padding,
                    len: total,
                });
            }
            end -= padding;
        }
        let body = &rest[4..end];
        let too_short = |needed: usize| Error::RtcpTooShort {
            offset,
            len: body.len() + 4,
            needed: needed + 4,
        };
        let blocks_len = REPORT_BLOCK_LEN * usize::from(count);
        let packet = match packet_type {
            PT_SR => {
                let needed = 4 + SENDER_INFO_LEN + blocks_len;
                if body.len() < needed {
                    return Err(too_short(needed));
                }
                let info = SenderInfo {
                    ntp_timestamp: u64::from(be32(body, 4)) << 32 | u64::from(be32(body, 8)),
                    rtp_timestamp: be32(body, 12),
                    packet_count: be32(body, 16),
                    octet_count: be32(body, 20),
                };
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: be32(body, 0),
                    info,
                    blocks: &body[24..24 + blocks_len],
                })
            }
            PT_RR => {
                let needed = 4 + blocks_len;
                if body.len() < needed {
                    return Err(too_short(needed));
                }
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: be32(body, 0),
                    blocks: &body[4..4 + blocks_len],
                })
            }
            PT_SDES => {
                let mut at = 0;
                for _ in 0..count {
                    let (_, _, next) = sdes_chunk(body, at)?;
                    at = next;
                }
                RtcpPacket::Sdes(Sdes { count, body })
            }
            PT_BYE => {
                let ssrc_len = 4 * usize::from(count);
                if body.len() < ssrc_len {
                    return Err(too_short(ssrc_len));
                }
                let reason = match body.get(ssrc_len) {
                    None => None,
                    Some(&len) => {
                        let len = usize::from(len);
                        let r = body
                            .get(ssrc_len + 1..ssrc_len + 1 + len)
                            .ok_or_else(|| too_short(ssrc_len + 1 + len))?;
                        Some(r)
                    }
                };
                RtcpPacket::Bye(Bye {
                    ssrcs: &body[..ssrc_len],
                    reason,
                })
            }
            _ => RtcpPacket::Other {
                packet_type,
                count,
                body,
            },
        };
        Ok((packet, offset + total))
    }

    /// Packet type number.
    pub fn packet_type(&self) -> u8 {
        match self {
            RtcpPacket::SenderReport(_) => PT_SR,
            RtcpPacket::ReceiverReport(_) => PT_RR,
            RtcpPacket::Sdes(_) => PT_SDES,
            RtcpPacket::Bye(_) => PT_BYE,
            RtcpPacket::Other { packet_type, .. } => *packet_type,
        }
    }
}

/// A validated compound RTCP packet; iterate to get its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound<'a> {
    buf: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Parse and validate a compound packet per RFC 3550 §6.1 / A.2:
    /// every packet well formed, lengths add up exactly, the first is SR or RR.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let c = Self::parse_lenient(buf)?;
        let first = buf[1];
        if first != PT_SR && first != PT_RR {
            return Err(Error::RtcpBadFirstPacket { packet_type: first });
        }
        Ok(c)
    }

    /// Like [`parse`](Self::parse) but accepts any first packet (reduced-size
    /// RTCP, RFC 5506).
    pub fn parse_lenient(buf: &'a [u8]) -> Result<Self> {
        if buf.is_empty() {
            return Err(Error::RtcpTooShort {
                offset: 0,
                len: 0,
                needed: 4,
            });
        }
        let mut offset = 0;
        while offset < buf.len() {
            let (_, next) = RtcpPacket::parse_at(buf, offset)?;
            offset = next;
        }
        Ok(RtcpCompound { buf })
    }

    /// Iterate over the packets.
    pub fn iter(&self) -> RtcpIter<'a> {
        RtcpIter {
            buf: self.buf,
            offset: 0,
        }
    }
}

impl<'a> IntoIterator for RtcpCompound<'a> {
    type Item = RtcpPacket<'a>;
    type IntoIter = RtcpIter<'a>;
    fn into_iter(self) -> RtcpIter<'a> {
        self.iter()
    }
}

/// Iterator over the packets of a validated compound packet.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = RtcpPacket<'a>;
    fn next(&mut self) -> Option<RtcpPacket<'a>> {
        if self.offset >= self.buf.len() {
            return None;
        }
        let (p, next) = RtcpPacket::parse_at(self.buf, self.offset).ok()?;
        self.offset = next;
        Some(p)
    }
}

/// Appends RTCP packets to a caller buffer to build a compound packet.
#[derive(Debug)]
pub struct RtcpWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> RtcpWriter<'b> {
    /// Start writing at the beginning of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        RtcpWriter { buf, len: 0 }
    }

    fn reserve(&mut self, needed: usize) -> Result<&mut [u8]> {
        let available = self.buf.len() - self.len;
        if available < needed {
            return Err(Error::BufferTooSmall { needed, available });
        }
        Ok(&mut self.buf[self.len..self.len + needed])
    }

    fn header(out: &mut [u8], count: usize, pt: u8, total: usize) {
        out[0] = 0x80 | count as u8;
        out[1] = pt;
        out[2..4].copy_from_slice(&((total / 4 - 1) as u16).to_be_bytes());
    }

    fn check_count(n: usize) -> Result<()> {
        if n > 31 {
            return Err(Error::OutOfRange {
                field: "rtcp_count",
                value: n as u64,
                max: 31,
            });
        }
        Ok(())
    }

    /// Append a sender report.
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<()> {
        Self::check_count(blocks.len())?;
        let total = 8 + SENDER_INFO_LEN + REPORT_BLOCK_LEN * blocks.len();
        let out = self.reserve(total)?;
        Self::header(out, blocks.len(), PT_SR, total);
        out[4..8].copy_from_slice(&ssrc.to_be_bytes());
        out[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
        out[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        out[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
        out[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
        for (b, chunk) in blocks
            .iter()
            .zip(out[28..].chunks_exact_mut(REPORT_BLOCK_LEN))
        {
            b.write(chunk);
        }
        self.len += total;
        Ok(())
    }

    /// Append a receiver report.
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<()> {
        Self::check_count(blocks.len())?;
        let total = 8 + REPORT_BLOCK_LEN * blocks.len();
        let out = self.reserve(total)?;
        Self::header(out, blocks.len(), PT_RR, total);
        out[4..8].copy_from_slice(&ssrc.to_be_bytes());
        for (b, chunk) in blocks
            .iter()
            .zip(out[8..].chunks_exact_mut(REPORT_BLOCK_LEN))
        {
            b.write(chunk);
        }
        self.len += total;
        Ok(())
    }

    /// Append an SDES packet with one chunk holding a CNAME item.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<()> {
        if cname.len() > 255 {
            return Err(Error::OutOfRange {
                field: "cname_len",
                value: cname.len() as u64,
                max: 255,
            });
        }
        // header + ssrc + type + len + text + at least one null, padded to 4.
        let total = 4 + (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
        let out = self.reserve(total)?;
        Self::header(out, 1, PT_SDES, total);
        out[4..8].copy_from_slice(&ssrc.to_be_bytes());
        out[8] = SDES_CNAME;
        out[9] = cname.len() as u8;
        out[10..10 + cname.len()].copy_from_slice(cname);
        out[10 + cname.len()..].fill(0);
        self.len += total;
        Ok(())
    }

    /// Append a BYE for `ssrcs` with an optional reason.
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<()> {
        Self::check_count(ssrcs.len())?;
        let reason_len = match reason {
            Some(r) if r.len() > 255 => {
                return Err(Error::OutOfRange {
                    field: "bye_reason_len",
                    value: r.len() as u64,
                    max: 255,
                });
            }
            Some(r) => (1 + r.len()).div_ceil(4) * 4,
            None => 0,
        };
        let total = 4 + 4 * ssrcs.len() + reason_len;
        let out = self.reserve(total)?;
        Self::header(out, ssrcs.len(), PT_BYE, total);
        for (s, chunk) in ssrcs.iter().zip(out[4..].chunks_exact_mut(4)) {
            chunk.copy_from_slice(&s.to_be_bytes());
        }
        if let Some(r) = reason {
            let at = 4 + 4 * ssrcs.len();
            out[at] = r.len() as u8;
            out[at + 1..at + 1 + r.len()].copy_from_slice(r);
            out[at + 1 + r.len()..].fill(0);
        }
        self.len += total;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finish; returns the compound packet length.
    pub fn finish(self) -> usize {
        self.len
    }
}
