//! SDES key exchange for SRTP (RFC 4568): the `a=crypto` attribute.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<len>] [<session params>]`
//!
//! What Parley supports, and what it refuses with a typed [`CryptoError`]:
//!
//! - suites `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2),
//!   a 16-byte master key and a 14-byte master salt; other suites are
//!   [`CryptoError::UnsupportedSuite`] (the answerer moves on to the offer's next line);
//! - one `inline:` key per line: several keys need MKIs, and Parley does not put an
//!   MKI in packets, so an MKI or a second key is [`CryptoError::MkiUnsupported`];
//! - a key lifetime is parsed (`2^n` or decimal); Parley never re-keys, so a lifetime
//!   below 2^31 packets is [`CryptoError::LifetimeTooShort`] (2^31 packets are
//!   497 days of 20 ms packets);
//! - session parameters (`KDR=`, `UNENCRYPTED_SRTP`, `FEC_ORDER=`...) are refused as
//!   [`CryptoError::UnsupportedSessionParam`], except `KDR=0` (no re-derivation, the
//!   default).
//!
//! Keys are only as secret as the signalling that carries them: see SECURITY.md.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Bytes of master key and master salt together (16 + 14).
pub const KEY_SALT_LEN: usize = 30;

/// An SRTP crypto suite Parley can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES counter mode, 128-bit key, HMAC-SHA1 tag of 80 bits.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The name in `a=crypto`.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite named `s` (case-sensitive, as RFC 4568's grammar).
    pub fn from_name(s: &str) -> Option<SrtpSuite> {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Some(SrtpSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(SrtpSuite::AesCm128HmacSha1_32),
            _ => None,
        }
    }
}

/// SRTP master key (16 bytes) followed by master salt (14 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySalt(pub [u8; KEY_SALT_LEN]);

impl std::fmt::Debug for KeySalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("KeySalt(..)")
    }
}

impl KeySalt {
    /// A fresh random key and salt from the OS RNG (`getrandom`); should the OS
    /// refuse, from the thread's CSPRNG (ChaCha, itself seeded from the OS).
    pub fn random() -> KeySalt {
        use rand::TryRngCore as _;
        let mut k = [0u8; KEY_SALT_LEN];
        if rand::rngs::OsRng.try_fill_bytes(&mut k).is_err() {
            rand::Rng::fill(&mut rand::rng(), &mut k[..]);
        }
        KeySalt(k)
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.0[..16]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.0[16..]
    }
}

/// One parsed `a=crypto` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag (1..=999999999) the answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: SrtpSuite,
    /// The sender's master key and salt.
    pub key: KeySalt,
}

impl CryptoAttr {
    /// The attribute value (after `crypto:`), e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`.
    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.as_str(),
            STANDARD.encode(self.key.0)
        )
    }
}

/// Why an `a=crypto` line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Fewer than three fields, or a field out of the grammar.
    #[error("malformed a=crypto: {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
    },
    /// The tag is not a number of 1..=9 digits.
    #[error("a=crypto tag {tag:?} is not 1..=9 digits")]
    BadTag {
        /// The tag as written.
        tag: String,
    },
    /// A suite Parley does not implement.
    #[error("SRTP crypto suite {suite:?} is not supported (AES_CM_128_HMAC_SHA1_80 or _32 are)")]
    UnsupportedSuite {
        /// The suite as written.
        suite: String,
    },
    /// The key method is not `inline`.
    #[error("a=crypto key method must be inline")]
    NotInline,
    /// The key is not base64, or not 30 bytes.
    #[error("a=crypto key is not base64 of 30 bytes (16-byte key, 14-byte salt)")]
    BadKey,
    /// An MKI, or more than one key.
    #[error("a=crypto MKI / several keys are not supported")]
    MkiUnsupported,
    /// A key lifetime below 2^31 (Parley does not re-key).
    #[error("a=crypto key lifetime below 2^31 packets is not supported (no re-keying)")]
    LifetimeTooShort,
    /// A session parameter Parley does not implement.
    #[error("a=crypto session parameter {param:?} is not supported")]
    UnsupportedSessionParam {
        /// The parameter as written.
        param: String,
    },
}

fn parse_lifetime(s: &str) -> Result<u64, CryptoError> {
    let bad = CryptoError::Malformed {
        what: "key lifetime",
    };
    let n = if let Some(exp) = s.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| bad.clone())?;
        if e > 63 {
            return Err(bad);
        }
        1u64 << e
    } else {
        s.parse::<u64>().map_err(|_| bad)?
    };
    if n < (1u64 << 31) {
        return Err(CryptoError::LifetimeTooShort);
    }
    Ok(n)
}

/// Parses the value of an `a=crypto` attribute (without `crypto:`).
pub fn parse_crypto(value: &str) -> Result<CryptoAttr, CryptoError> {
    let mut fields = value.split_ascii_whitespace();
    let tag_s = fields
        .next()
        .ok_or(CryptoError::Malformed { what: "tag" })?;
    let suite_s = fields.next().ok_or(CryptoError::Malformed {
        what: "crypto suite",
    })?;
    let key_params = fields.next().ok_or(CryptoError::Malformed {
        what: "key parameters",
    })?;
    if tag_s.is_empty() || tag_s.len() > 9 || !tag_s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::BadTag {
            tag: tag_s.to_owned(),
        });
    }
    let tag: u32 = tag_s.parse().map_err(|_| CryptoError::BadTag {
        tag: tag_s.to_owned(),
    })?;
    let suite = SrtpSuite::from_name(suite_s).ok_or_else(|| CryptoError::UnsupportedSuite {
        suite: suite_s.to_owned(),
    })?;
    if key_params.contains(';') {
        return Err(CryptoError::MkiUnsupported);
    }
    let inline = key_params
        .strip_prefix("inline:")
        .ok_or(CryptoError::NotInline)?;
    let mut parts = inline.split('|');
    let b64 = parts.next().unwrap_or_default();
    let mut seen_lifetime = false;
    for p in parts {
        if p.contains(':') {
            return Err(CryptoError::MkiUnsupported);
        }
        if seen_lifetime {
            return Err(CryptoError::Malformed {
                what: "key parameters",
            });
        }
        parse_lifetime(p)?;
        seen_lifetime = true;
    }
    let raw = STANDARD.decode(b64).map_err(|_| CryptoError::BadKey)?;
    let key: [u8; KEY_SALT_LEN] = raw.try_into().map_err(|_| CryptoError::BadKey)?;
    for param in fields {
        if param != "KDR=0" {
            return Err(CryptoError::UnsupportedSessionParam {
                param: param.to_owned(),
            });
        }
    }
    Ok(CryptoAttr {
        tag,
        suite,
        key: KeySalt(key),
    })
}

/// The keys of an SRTP session agreed by offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedSrtp {
    /// The suite (both directions).
    pub suite: SrtpSuite,
    /// The key we encrypt with (the one in our SDP).
    pub local: KeySalt,
    /// The key the peer encrypts with (the one in its SDP): we decrypt with it.
    pub remote: KeySalt,
}

/// SRTP policy of a peer (trunk or phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: `RTP/SAVP` m-lines are declined.
    Off,
    /// SRTP answered when offered; our offers are plain `RTP/AVP` (an `RTP/SAVP`
    /// offer is refused by peers without SRTP, and `a=crypto` in an `RTP/AVP` offer
    /// is outside RFC 4568).
    #[default]
    Optional,
    /// SRTP only: a plain offer gets 488, our offers are `RTP/SAVP`.
    Required,
}

impl SrtpPolicy {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }

    /// Parses `off` / `optional` / `required`.
    pub fn parse(s: &str) -> Option<SrtpPolicy> {
        match s {
            "off" => Some(SrtpPolicy::Off),
            "optional" => Some(SrtpPolicy::Optional),
            "required" => Some(SrtpPolicy::Required),
            _ => None,
        }
    }
}

/// Our side of SDES in offer/answer: the policy and the key we send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSrtp {
    /// What we accept.
    pub policy: SrtpPolicy,
    /// Our master key and salt (put in our `a=crypto`).
    pub key: KeySalt,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn parses_rfc4568_examples_and_refuses_what_parley_cannot_do() {
        // RFC 4568 §9.1's example (with its lifetime and MKI) refuses on the MKI.
        assert_eq!(
            parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4")),
            Err(CryptoError::LifetimeTooShort)
        );
        assert_eq!(
            parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31|1:4")),
            Err(CryptoError::MkiUnsupported)
        );
        let a = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31")).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(&a.key.0[..4], b"YS__");
        let a = parse_crypto(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY} KDR=0")).unwrap();
        assert_eq!((a.tag, a.suite), (7, SrtpSuite::AesCm128HmacSha1_32));
        // Printing and parsing round trip.
        assert_eq!(parse_crypto(&a.to_value()).unwrap(), a);
        let cases: &[(&str, CryptoError)] = &[
            ("", CryptoError::Malformed { what: "tag" }),
            (
                "1",
                CryptoError::Malformed {
                    what: "crypto suite",
                },
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80",
                CryptoError::Malformed {
                    what: "key parameters",
                },
            ),
            (
                "x AES_CM_128_HMAC_SHA1_80 inline:AA",
                CryptoError::BadTag { tag: "x".into() },
            ),
            (
                "1234567890 AES_CM_128_HMAC_SHA1_80 inline:AA",
                CryptoError::BadTag {
                    tag: "1234567890".into(),
                },
            ),
            (
                "1 F8_128_HMAC_SHA1_80 inline:AA",
                CryptoError::UnsupportedSuite {
                    suite: "F8_128_HMAC_SHA1_80".into(),
                },
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 uri:x", CryptoError::NotInline),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!", CryptoError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", CryptoError::BadKey),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:A;inline:B",
                CryptoError::MkiUnsupported,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:A|2^99",
                CryptoError::Malformed {
                    what: "key lifetime",
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_crypto(line).as_ref(), Err(want), "{line}");
        }
        assert_eq!(
            parse_crypto(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"
            )),
            Err(CryptoError::UnsupportedSessionParam {
                param: "UNENCRYPTED_SRTP".into()
            })
        );
    }

    #[test]
    fn key_material_is_not_printed() {
        assert_eq!(format!("{:?}", KeySalt([7; 30])), "KeySalt(..)");
    }
}
