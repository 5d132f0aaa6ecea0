//! Digest authentication (RFC 2617, RFC 7616, RFC 8760 for SIP): challenge and
//! credentials parsing/printing, response computation and verification, a
//! stateless nonce scheme and nonce-count replay protection.

use crate::error::{Error, Result};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (the default when absent).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 7616 / RFC 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Algorithm {
    /// Parses the `algorithm` parameter (case-insensitive).
    pub fn parse(s: &str) -> Result<Algorithm> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            _ => {
                return Err(Error::UnsupportedAlgorithm {
                    algorithm: s.to_owned(),
                });
            }
        })
    }

    /// The parameter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex hash of `data` with this algorithm's hash function.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `auth`
    Auth,
    /// `auth-int` (the body is hashed too)
    AuthInt,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Parses `Digest a=b, c="d"` into the scheme and `(name, unquoted value)` pairs.
pub fn parse_auth_params(value: &str) -> Result<(String, Vec<(String, String)>)> {
    let value = value.trim();
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    };
    if scheme.is_empty() {
        return Err(Error::InvalidAuth {
            reason: "missing scheme",
        });
    }
    let mut params = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ns = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = &rest[ns..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(Error::InvalidAuth {
                reason: "parameter without '='",
            });
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut closed = false;
            let mut seg = i;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        val.push_str(&rest[seg..i]);
                        seg = i + 1;
                        i += 2;
                    }
                    b'"' => {
                        val.push_str(&rest[seg..i]);
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return Err(Error::InvalidAuth {
                    reason: "unterminated quoted string",
                });
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            val.push_str(&rest[vs..i]);
        }
        if name.is_empty() {
            return Err(Error::InvalidAuth {
                reason: "empty parameter name",
            });
        }
        params.push((name.to_ascii_lowercase(), val));
    }
    Ok((scheme.to_owned(), params))
}

fn find<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// Realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo.
    pub opaque: Option<String>,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Offered qop values (empty: legacy RFC 2069 mode).
    pub qop: Vec<String>,
    /// Whether the previous nonce was stale.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a header value.
    pub fn parse(value: &str) -> Result<DigestChallenge> {
        let (scheme, p) = parse_auth_params(value)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(Error::InvalidAuth {
                reason: "scheme is not Digest",
            });
        }
        Ok(DigestChallenge {
            realm: find(&p, "realm")
                .ok_or(Error::InvalidAuth {
                    reason: "missing realm",
                })?
                .to_owned(),
            nonce: find(&p, "nonce")
                .ok_or(Error::InvalidAuth {
                    reason: "missing nonce",
                })?
                .to_owned(),
            opaque: find(&p, "opaque").map(str::to_owned),
            algorithm: find(&p, "algorithm")
                .map(Algorithm::parse)
                .transpose()?
                .unwrap_or(Algorithm::Md5),
            qop: find(&p, "qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: find(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Builds the credentials answering this challenge (qop=auth when offered,
    /// legacy mode otherwise). `cnonce` should be random; `nc` counts uses of this nonce.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> DigestCredentials {
        let qop = self
            .qop
            .iter()
            .any(|q| q.eq_ignore_ascii_case("auth"))
            .then_some(Qop::Auth);
        let mut c = DigestCredentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: self.algorithm,
            algorithm_explicit: true,
            cnonce: qop.map(|_| cnonce.to_owned()),
            opaque: self.opaque.clone(),
            qop,
            nc: qop.map(|_| nc),
        };
        c.response = c.expected_response(method, password, b"");
        c
    }
}

impl fmt::Display for DigestChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        )?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            write!(f, ", qop={}", quote(&self.qop.join(",")))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// `Authorization` / `Proxy-Authorization` digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// User name.
    pub username: String,
    /// Realm.
    pub realm: String,
    /// Nonce echoed from the challenge.
    pub nonce: String,
    /// digest-uri.
    pub uri: String,
    /// The response hash (hex).
    pub response: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Whether `algorithm=` was present (printed back only then).
    pub algorithm_explicit: bool,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// Opaque echoed from the challenge.
    pub opaque: Option<String>,
    /// Chosen qop.
    pub qop: Option<Qop>,
    /// Nonce count (with qop).
    pub nc: Option<u32>,
}

impl DigestCredentials {
    /// Parses a header value.
    pub fn parse(value: &str) -> Result<DigestCredentials> {
        let (scheme, p) = parse_auth_params(value)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(Error::InvalidAuth {
                reason: "scheme is not Digest",
            });
        }
        let req = |n: &str, reason: &'static str| {
            find(&p, n)
                .map(str::to_owned)
                .ok_or(Error::InvalidAuth { reason })
        };
        let qop = match find(&p, "qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
            Some(_) => {
                return Err(Error::InvalidAuth {
                    reason: "unknown qop",
                });
            }
        };
        let nc = match find(&p, "nc") {
            None => None,
            Some(n) => Some(
                u32::from_str_radix(n, 16)
                    .ok()
                    .filter(|_| n.len() == 8)
                    .ok_or(Error::InvalidAuth {
                        reason: "nc is not 8 hex digits",
                    })?,
            ),
        };
        let cnonce = find(&p, "cnonce").map(str::to_owned);
        if qop.is_some() && (nc.is_none() || cnonce.is_none()) {
            return Err(Error::InvalidAuth {
                reason: "qop without nc or cnonce",
            });
        }
        Ok(DigestCredentials {
            username: req("username", "missing username")?,
            realm: req("realm", "missing realm")?,
            nonce: req("nonce", "missing nonce")?,
            uri: req("uri", "missing uri")?,
            response: req("response", "missing response")?,
            algorithm: find(&p, "algorithm")
                .map(Algorithm::parse)
                .transpose()?
                .unwrap_or(Algorithm::Md5),
            algorithm_explicit: find(&p, "algorithm").is_some(),
            cnonce,
            opaque: find(&p, "opaque").map(str::to_owned),
            qop,
            nc,
        })
    }

    /// HA1 for a user (what a registrar may store instead of the password).
    pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
        alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
    }

    /// The response expected for this request from a stored HA1 (of the plain algorithm).
    pub fn expected_response_from_ha1(&self, method: &str, ha1: &str, body: &[u8]) -> String {
        let alg = self.algorithm;
        let ha1 = if alg.is_sess() {
            alg.hash_hex(
                format!(
                    "{ha1}:{}:{}",
                    self.nonce,
                    self.cnonce.as_deref().unwrap_or_default()
                )
                .as_bytes(),
            )
        } else {
            ha1.to_owned()
        };
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                alg.hash_hex(format!("{method}:{}:{}", self.uri, alg.hash_hex(body)).as_bytes())
            }
            _ => alg.hash_hex(format!("{method}:{}", self.uri).as_bytes()),
        };
        match (self.qop, self.nc, &self.cnonce) {
            (Some(q), Some(nc), Some(cn)) => alg.hash_hex(
                format!("{ha1}:{}:{nc:08x}:{cn}:{}:{ha2}", self.nonce, q.as_str()).as_bytes(),
            ),
            _ => alg.hash_hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes()),
        }
    }

    /// The response expected for this request given the password.
    pub fn expected_response(&self, method: &str, password: &str, body: &[u8]) -> String {
        let ha1 = Self::ha1(self.algorithm, &self.username, &self.realm, password);
        self.expected_response_from_ha1(method, &ha1, body)
    }

    /// Verifies the response (constant-time comparison) given the password.
    pub fn verify(&self, method: &str, password: &str, body: &[u8]) -> bool {
        ct_eq(
            self.expected_response(method, password, body).as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }

    /// Verifies the response given a stored HA1.
    pub fn verify_ha1(&self, method: &str, ha1: &str, body: &[u8]) -> bool {
        ct_eq(
            self.expected_response_from_ha1(method, ha1, body)
                .as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

impl fmt::Display for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        )?;
        if self.algorithm_explicit || self.algorithm != Algorithm::Md5 {
            write!(f, ", algorithm={}", self.algorithm)?;
        }
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", quote(c))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if let Some(q) = self.qop {
            write!(f, ", qop={}", q.as_str())?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Verdict on a nonce presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Issued by us and still fresh.
    Valid,
    /// Issued by us but expired: challenge again with `stale=true`.
    Stale,
    /// Not issued by us (or corrupted, or from the future).
    Invalid,
}

/// Stateless nonces: `hex(timestamp ‖ random ‖ HMAC-SHA256(secret, timestamp ‖ random)[..16])`.
///
/// Time is passed in as a [`Duration`] since the UNIX epoch (wall-clock time, so that
/// nonces survive restarts and are valid across nodes sharing the secret).
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Vec<u8>,
    lifetime: Duration,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// A new issuer with a server secret and nonce lifetime.
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        NonceIssuer {
            secret: secret.to_vec(),
            lifetime,
        }
    }

    /// Issues a nonce at `now` with caller-provided randomness.
    pub fn issue(&self, now: Duration, random: [u8; 8]) -> String {
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&now.as_secs().to_be_bytes());
        data[8..].copy_from_slice(&random);
        let mac = hmac_sha256(&self.secret, &data);
        let mut out = hex::encode(data);
        out.push_str(&hex::encode(&mac[..16]));
        out
    }

    /// Issues a nonce at `now` with randomness from `rng`.
    pub fn issue_with_rng<R: rand::Rng + ?Sized>(&self, now: Duration, rng: &mut R) -> String {
        self.issue(now, rng.random())
    }

    /// Checks a nonce at `now`.
    pub fn check(&self, nonce: &str, now: Duration) -> NonceStatus {
        let Ok(raw) = hex::decode(nonce) else {
            return NonceStatus::Invalid;
        };
        if raw.len() != 32 {
            return NonceStatus::Invalid;
        }
        let mac = hmac_sha256(&self.secret, &raw[..16]);
        if !ct_eq(&mac[..16], &raw[16..]) {
            return NonceStatus::Invalid;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let ts = u64::from_be_bytes(ts);
        let now = now.as_secs();
        if ts > now.saturating_add(1) {
            return NonceStatus::Invalid;
        }
        if now - ts.min(now) > self.lifetime.as_secs() {
            NonceStatus::Stale
        } else {
            NonceStatus::Valid
        }
    }
}

/// Replay protection: remembers the highest nonce-count used with each nonce.
#[derive(Debug, Clone, Default)]
pub struct NonceCounter {
    highest: HashMap<String, u32>,
    capacity: usize,
}

impl NonceCounter {
    /// Tracks at most `capacity` nonces (the table is cleared when full; stateless
    /// nonces expire anyway, so a cleared entry can at worst accept one replay of a
    /// still-fresh nonce with a higher nc).
    pub fn new(capacity: usize) -> Self {
        NonceCounter {
            highest: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Accepts `nc` for `nonce` if it is above every nc seen for it, and records it.
    pub fn check_and_record(&mut self, nonce: &str, nc: u32) -> bool {
        match self.highest.get_mut(nonce) {
            Some(h) if nc <= *h => false,
            Some(h) => {
                *h = nc;
                true
            }
            None => {
                if self.highest.len() >= self.capacity {
                    self.highest.clear();
                }
                self.highest.insert(nonce.to_owned(), nc);
                true
            }
        }
    }

    /// Forgets a nonce (e.g. once it turned stale).
    pub fn forget(&mut self, nonce: &str) {
        self.highest.remove(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_section_3_5_example() {
        let h = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let c = DigestCredentials::parse(h).unwrap();
        assert_eq!(
            c.expected_response("GET", "Circle Of Life", b""),
            "6629fae49393a05397450978507c4ef1"
        );
        assert!(c.verify("GET", "Circle Of Life", b""));
        assert!(!c.verify("GET", "circle of life", b""));
        assert!(!c.verify("POST", "Circle Of Life", b""));
    }

    fn rfc7616(alg: &str, response: &str) -> DigestCredentials {
        let h = format!(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="{response}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        );
        DigestCredentials::parse(&h).unwrap()
    }

    #[test]
    fn rfc7616_section_3_9_1_md5() {
        let c = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        assert!(c.verify("GET", "Circle of Life", b""));
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256() {
        let c = rfc7616(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(c.verify("GET", "Circle of Life", b""));
        let ha1 = DigestCredentials::ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(c.verify_ha1("GET", &ha1, b""));
    }

    #[test]
    fn legacy_no_qop_round_trip() {
        let ch = DigestChallenge::parse(
            r#"Digest realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e""#,
        )
        .unwrap();
        assert!(ch.qop.is_empty());
        let c = ch.answer("bob", "zanzibar", "REGISTER", "sip:atlanta.com", "x", 1);
        assert!(c.qop.is_none() && c.nc.is_none());
        let printed = c.to_string();
        let back = DigestCredentials::parse(&printed).unwrap();
        assert_eq!(back.response, c.response);
        assert!(back.verify("REGISTER", "zanzibar", b""));
    }

    #[test]
    fn challenge_print_parse_round_trip() {
        let ch = DigestChallenge {
            realm: "parley".into(),
            nonce: "abc".into(),
            opaque: Some("o\"q".into()),
            algorithm: Algorithm::Sha256,
            qop: vec!["auth".into()],
            stale: true,
        };
        assert_eq!(DigestChallenge::parse(&ch.to_string()).unwrap(), ch);
        let c = ch.answer("alice", "pw", "INVITE", "sip:bob@parley", "cn", 1);
        let back = DigestCredentials::parse(&c.to_string()).unwrap();
        assert_eq!(back, c);
        assert!(back.verify("INVITE", "pw", b""));
    }

    #[test]
    fn malformed_params_are_structured_errors() {
        assert!(matches!(
            DigestCredentials::parse(r#"Digest username="unterminated"#),
            Err(Error::InvalidAuth { .. })
        ));
        assert!(matches!(
            DigestCredentials::parse(
                r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=ROT13"#
            ),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            DigestCredentials::parse(
                r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth"#
            ),
            Err(Error::InvalidAuth { .. })
        ));
    }

    #[test]
    fn nonce_valid_stale_invalid() {
        let issuer = NonceIssuer::new(b"server secret", Duration::from_secs(300));
        let t0 = Duration::from_secs(1_800_000_000);
        let n = issuer.issue(t0, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(issuer.check(&n, t0), NonceStatus::Valid);
        assert_eq!(
            issuer.check(&n, t0 + Duration::from_secs(300)),
            NonceStatus::Valid
        );
        assert_eq!(
            issuer.check(&n, t0 + Duration::from_secs(301)),
            NonceStatus::Stale
        );
        assert_eq!(
            issuer.check(&n, t0 - Duration::from_secs(10)),
            NonceStatus::Invalid
        );
        let other = NonceIssuer::new(b"other secret", Duration::from_secs(300));
        assert_eq!(other.check(&n, t0), NonceStatus::Invalid);
        let mut tampered = n.clone().into_bytes();
        tampered[15] = if tampered[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            issuer.check(&String::from_utf8(tampered).unwrap(), t0),
            NonceStatus::Invalid
        );
        assert_eq!(issuer.check("zz", t0), NonceStatus::Invalid);
    }

    #[test]
    fn nonce_count_replay() {
        let mut c = NonceCounter::new(16);
        assert!(c.check_and_record("n", 1));
        assert!(!c.check_and_record("n", 1));
        assert!(c.check_and_record("n", 3));
        assert!(!c.check_and_record("n", 2));
        assert!(c.check_and_record("m", 1));
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
