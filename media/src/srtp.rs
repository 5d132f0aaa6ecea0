//! SDES-keyed SRTP/SRTCP (RFC 3711) for a SIP leg, over the `rtc-srtp` crate (the
//! same maintained implementation the WebRTC legs use for DTLS-SRTP; no crypto is
//! written here).
//!
//! One [`SrtpSession`] per leg holds two contexts: the outbound one keyed with the
//! key Parley put in its SDP, the inbound one keyed with the peer's and with a
//! 64-packet replay window for SRTP and SRTCP. A packet that fails to authenticate
//! (or is a replay) is dropped by the leg and counted; it never reaches latching,
//! the jitter buffer or anyone else.

use bytes::BytesMut;
use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc::srtp::protection_profile::ProtectionProfile;

use crate::error::{Error, Result};

/// Bytes of master key (16) and master salt (14).
pub const KEY_SALT_LEN: usize = 30;

/// Replay window (packets) of the inbound context, the RFC 3711 §3.3.2 minimum.
const REPLAY_WINDOW: usize = 64;

/// The SRTP crypto suites SDES negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// The keys of a leg's SRTP session, as negotiated in SDP.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite (both directions).
    pub profile: SrtpProfile,
    /// Master key || salt we encrypt with (the one in our SDP).
    pub local: [u8; KEY_SALT_LEN],
    /// Master key || salt the peer encrypts with (the one in its SDP).
    pub remote: [u8; KEY_SALT_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log key material.
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Why an inbound SRTP/SRTCP packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unprotect {
    /// Authentication failed, or the packet was too short to hold a tag.
    Auth,
    /// A packet already received (replay window).
    Replay,
}

/// Outbound and inbound SRTP contexts of one leg.
pub struct SrtpSession {
    keys: SrtpKeys,
    tx: Context,
    rx: Context,
    /// The inbound context of the peer's previous key after a re-key
    /// ([`SrtpSession::rekey`]): packets still sent with it are accepted until one
    /// authenticates under the new key (RFC 4568 §7.1.4: a re-offer's key may
    /// change; the switch is not synchronised with the signalling).
    rx_old: Option<Context>,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSession(..)")
    }
}

fn invalid(_: impl std::fmt::Display) -> Error {
    Error::InvalidConfig {
        what: "SRTP keys rejected by the SRTP library",
    }
}

impl SrtpSession {
    /// Builds both contexts (derives the session keys).
    pub fn new(keys: &SrtpKeys) -> Result<SrtpSession> {
        Ok(SrtpSession {
            keys: *keys,
            tx: tx_context(keys)?,
            rx: rx_context(keys)?,
            rx_old: None,
        })
    }

    /// The keys in use.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// New keys from a new offer/answer in the same session (a re-INVITE). Only the
    /// contexts whose key (or suite) changed are replaced: our own key usually stays,
    /// and its context keeps counting packets (no index reuse); a changed peer key
    /// gets a fresh inbound context, the old one is kept until a packet
    /// authenticates under the new key.
    pub fn rekey(&mut self, keys: &SrtpKeys) -> Result<()> {
        let suite_changed = keys.profile != self.keys.profile;
        if suite_changed || keys.local != self.keys.local {
            self.tx = tx_context(keys)?;
        }
        if suite_changed || keys.remote != self.keys.remote {
            let old = std::mem::replace(&mut self.rx, rx_context(keys)?);
            self.rx_old = (!suite_changed).then_some(old);
        }
        self.keys = *keys;
        Ok(())
    }

    /// Encrypts the RTP packet `buf[..len]` in place (the tag is appended); `None`
    /// if `buf` has no room for it or the context refuses (2^48 packets).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let out = self.tx.encrypt_rtp(buf.get(..len)?).ok()?;
        copy_back(buf, &out)
    }

    /// Encrypts the RTCP compound `buf[..len]` in place (index and tag appended).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let out = self.tx.encrypt_rtcp(buf.get(..len)?).ok()?;
        copy_back(buf, &out)
    }

    /// Authenticates and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, buf: &[u8]) -> std::result::Result<BytesMut, Unprotect> {
        match self.rx.decrypt_rtp(buf).map_err(classify) {
            Ok(p) => {
                self.rx_old = None;
                Ok(p)
            }
            Err(Unprotect::Auth) if self.rx_old.is_some() => {
                self.rx_old.as_mut().map_or(Err(Unprotect::Auth), |old| {
                    old.decrypt_rtp(buf).map_err(classify)
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Authenticates and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, buf: &[u8]) -> std::result::Result<BytesMut, Unprotect> {
        match self.rx.decrypt_rtcp(buf).map_err(classify) {
            Err(Unprotect::Auth) if self.rx_old.is_some() => {
                self.rx_old.as_mut().map_or(Err(Unprotect::Auth), |old| {
                    old.decrypt_rtcp(buf).map_err(classify)
                })
            }
            r => r,
        }
    }
}

fn tx_context(keys: &SrtpKeys) -> Result<Context> {
    let provider = rtc::srtp::crypto::default_provider().map_err(invalid)?;
    let (k, s) = keys.local.split_at(16);
    Context::new(k, s, keys.profile.profile(), None, None, provider.crypto()).map_err(invalid)
}

fn rx_context(keys: &SrtpKeys) -> Result<Context> {
    let provider = rtc::srtp::crypto::default_provider().map_err(invalid)?;
    let (k, s) = keys.remote.split_at(16);
    Context::new(
        k,
        s,
        keys.profile.profile(),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        provider.crypto(),
    )
    .map_err(invalid)
}

fn classify(e: rtc::shared::error::Error) -> Unprotect {
    match e {
        rtc::shared::error::Error::SrtpSsrcDuplicated(..)
        | rtc::shared::error::Error::SrtcpSsrcDuplicated(..) => Unprotect::Replay,
        _ => Unprotect::Auth,
    }
}

fn copy_back(buf: &mut [u8], out: &[u8]) -> Option<usize> {
    buf.get_mut(..out.len())?.copy_from_slice(out);
    Some(out.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair(profile: SrtpProfile) -> (SrtpSession, SrtpSession) {
        let a = [1u8; KEY_SALT_LEN];
        let b = [2u8; KEY_SALT_LEN];
        let ours = SrtpKeys {
            profile,
            local: a,
            remote: b,
        };
        let theirs = SrtpKeys {
            profile,
            local: b,
            remote: a,
        };
        (
            SrtpSession::new(&ours).unwrap(),
            SrtpSession::new(&theirs).unwrap(),
        )
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![
            0x80,
            0,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            0,
            160,
            1,
            2,
            3,
            4,
        ];
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    #[test]
    fn round_trip_tags_replay_and_tamper() {
        for (profile, tag) in [
            (SrtpProfile::AesCm128HmacSha1_80, 10),
            (SrtpProfile::AesCm128HmacSha1_32, 4),
        ] {
            let (mut a, mut b) = pair(profile);
            let plain = rtp(7);
            let mut buf = [0u8; 1500];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = a.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(n, plain.len() + tag);
            assert_ne!(&buf[12..plain.len()], &plain[12..], "payload is encrypted");
            let mut tampered = buf[..n].to_vec();
            tampered[20] ^= 1;
            assert_eq!(b.unprotect_rtp(&tampered).err(), Some(Unprotect::Auth));
            assert_eq!(&b.unprotect_rtp(&buf[..n]).unwrap()[..], &plain[..]);
            assert_eq!(b.unprotect_rtp(&buf[..n]).err(), Some(Unprotect::Replay));
            // The key the peer sends with is not ours: our own packets do not decrypt.
            assert_eq!(a.unprotect_rtp(&buf[..n]).err(), Some(Unprotect::Auth));
        }
    }

    fn protect(s: &mut SrtpSession, seq: u16) -> Vec<u8> {
        let plain = rtp(seq);
        let mut buf = [0u8; 1500];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn rekey_takes_the_peers_new_key_keeps_ours_and_the_old_key_until_the_new_one_is_used() {
        let profile = SrtpProfile::AesCm128HmacSha1_80;
        let (mut ours, mut theirs) = pair(profile);
        assert!(theirs.unprotect_rtp(&protect(&mut ours, 1)).is_ok());
        assert!(ours.unprotect_rtp(&protect(&mut theirs, 1)).is_ok());
        // The peer re-offers with a new key (RFC 4568 §7.1.4); ours stays.
        let new = [3u8; KEY_SALT_LEN];
        let mut rekeyed = *ours.keys();
        rekeyed.remote = new;
        ours.rekey(&rekeyed).unwrap();
        let mut theirs_new = SrtpSession::new(&SrtpKeys {
            profile,
            local: new,
            remote: [1u8; KEY_SALT_LEN],
        })
        .unwrap();
        // A packet still in flight under the old key is accepted ...
        assert!(ours.unprotect_rtp(&protect(&mut theirs, 2)).is_ok());
        // ... the new key works ...
        assert!(ours.unprotect_rtp(&protect(&mut theirs_new, 3)).is_ok());
        // ... and once it has, the old key no longer does.
        assert_eq!(
            ours.unprotect_rtp(&protect(&mut theirs, 4)).err(),
            Some(Unprotect::Auth)
        );
        // Our outbound context was kept: its packet index goes on (seq 2 after 1,
        // accepted by the peer's replay window, never a reused index).
        assert!(theirs.unprotect_rtp(&protect(&mut ours, 2)).is_ok());
        assert_eq!(
            theirs.unprotect_rtp(&protect(&mut ours, 2)).err(),
            Some(Unprotect::Replay)
        );
    }
}
