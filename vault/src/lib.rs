//! # parley-vault
//!
//! Files at rest — call recordings, voicemail, attachments — sealed with a streaming
//! AEAD under a key ring. No database, no sockets: a `Write` adapter for the media
//! recorder's thread and a `Read + Seek` adapter for downloads (HTTP Range) and for
//! transcription.
//!
//! ## Format (version 1)
//!
//! The construction is Tink's "AES-GCM-HKDF streaming" (and age's STREAM): a
//! 40-byte header in the clear, then the plaintext cut into fixed-size chunks, each
//! sealed with AES-256-GCM.
//!
//! ```text
//! header: "PRLYSEAL" | version=1 | alg=1 | chunk_log2 | 0 | key id (u32 BE)
//!         | salt (16 random bytes) | nonce prefix (7 random bytes) | 0
//! chunks: AES-256-GCM(file key, nonce = prefix | counter (u32 BE) | last (0/1),
//!                     aad = header, chunk) = ciphertext | 16-byte tag
//! ```
//!
//! - The file key is HKDF-SHA256(salt, key ring key, info = "parley-vault v1"):
//!   every file has its own key, so nonces cannot repeat across files.
//! - Every chunk but the last holds exactly `2^chunk_log2` bytes (16 KiB); the last
//!   holds fewer (possibly none) and carries the `last` flag, so truncation, reordering
//!   and chunks swapped between files all fail authentication, and a plaintext offset
//!   maps to one chunk: a Range request decrypts only the chunks it touches.
//! - The header (with the key id) is the associated data of every chunk.
//!
//! A file whose writer died (`kill -9`) has no last chunk; [`recover`] re-seals the
//! chunks that authenticate. WAV files written as a stream (see [`wav_header`]) carry
//! placeholder sizes, which [`SealedReader`] fills in from the authenticated length.
//!
//! ## Keys
//!
//! [`KeyRing::load_or_create`] reads `<dir>/<id>.key` files (64 hex digits, mode
//! 0600, in a 0700 directory) and generates `1.key` when there is none. New files are
//! sealed under the highest id; older keys stay for reading. Rotating is adding the
//! next file ([`KeyRing::rotate`]) and restarting.
//!
//! ```
//! use std::io::{Read, Write};
//! let ring = parley_vault::KeyRing::new(1, [7; 32]);
//! let mut w = parley_vault::SealedWriter::new(Vec::new(), &ring)?;
//! w.write_all(b"hello")?;
//! let sealed = w.finish()?;
//! let mut r = parley_vault::SealedReader::new(std::io::Cursor::new(sealed), &ring)?;
//! let mut out = String::new();
//! r.read_to_string(&mut out)?;
//! assert_eq!(out, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The first bytes of a sealed file.
pub const MAGIC: &[u8; 8] = b"PRLYSEAL";
/// Length of the clear header.
pub const HEADER_LEN: usize = 40;
const VERSION: u8 = 1;
const ALG_AES256GCM_HKDF: u8 = 1;
const TAG_LEN: usize = 16;
const CHUNK_LOG2: u8 = 14;
const HKDF_INFO: &[u8] = b"parley-vault v1";

/// What can go wrong sealing or opening a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the file.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The header's magic is missing.
    #[error("not a sealed file")]
    NotSealed,
    /// A format version this build cannot read.
    #[error("sealed file format version {0} is not supported")]
    Version(u8),
    /// An algorithm id this build does not know.
    #[error("sealed file algorithm {0} is not supported")]
    Algorithm(u8),
    /// A chunk size outside 1 KiB ..= 1 MiB.
    #[error("sealed file chunk size 2^{0} is out of range")]
    ChunkSize(u8),
    /// The file was sealed under a key the ring does not hold.
    #[error("key {0} is not in the key ring")]
    UnknownKey(u32),
    /// A chunk does not authenticate: tampered, truncated or swapped.
    #[error("chunk {0} failed authentication (tampered or truncated)")]
    Corrupt(u64),
    /// The file has no final chunk (its writer died; see [`recover`]).
    #[error("the file ends without its final chunk")]
    Unfinished,
    /// A key file is unusable.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than 2^32 chunks.
    #[error("file too long for one sealed stream")]
    TooLong,
    /// The system random generator failed.
    #[error("no randomness available")]
    Random,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

/// The master keys: one current (sealing) key and older ones kept for reading.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    keys: BTreeMap<u32, [u8; 32]>,
    current: u32,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

impl KeyRing {
    /// A ring of one key, which seals.
    pub fn new(id: u32, key: [u8; 32]) -> KeyRing {
        KeyRing {
            keys: BTreeMap::from([(id, key)]),
            current: id,
        }
    }

    /// Adds a key; the highest id seals.
    pub fn with_key(mut self, id: u32, key: [u8; 32]) -> KeyRing {
        self.keys.insert(id, key);
        self.current = self.current.max(id);
        self
    }

    /// The id new files are sealed under.
    pub fn current_id(&self) -> u32 {
        self.current
    }

    /// Every id held.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Reads every `<id>.key` in `dir` (created 0700 if missing); with none, generates
    /// `1.key` (0600). Key files readable by group or others are refused.
    pub fn load_or_create(dir: &Path) -> Result<KeyRing> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(id) = key_file_id(&path) else {
                continue;
            };
            keys.insert(id, read_key_file(&path)?);
        }
        if keys.is_empty() {
            let id = 1;
            keys.insert(id, write_new_key(dir, id)?);
        }
        let current = keys.keys().copied().max().unwrap_or(1);
        Ok(KeyRing { keys, current })
    }

    /// Generates the next key file in `dir` (highest id + 1) and returns its id. Files
    /// sealed afterwards (after a restart) use it; the old keys keep opening old files.
    pub fn rotate(dir: &Path) -> Result<u32> {
        let ring = KeyRing::load_or_create(dir)?;
        let id = ring.current.checked_add(1).ok_or(Error::TooLong)?;
        write_new_key(dir, id)?;
        Ok(id)
    }

    fn file_key(&self, id: u32, salt: &[u8]) -> Result<LessSafeKey> {
        let master = self.keys.get(&id).ok_or(Error::UnknownKey(id))?;
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(master);
        let okm = prk
            .expand(&[HKDF_INFO], &AES_256_GCM)
            .map_err(|_| Error::Random)?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

fn key_file_id(path: &Path) -> Option<u32> {
    if path.extension()? != "key" {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

fn read_key_file(path: &Path) -> Result<[u8; 32]> {
    let bad = |reason| Error::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad("readable by group or others (chmod 600 it)"));
    }
    let text = std::fs::read_to_string(path)?;
    let hex = text.trim().as_bytes();
    if hex.len() != 64 {
        return Err(bad("not 64 hex digits"));
    }
    let mut key = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => key[i] = (h * 16 + l) as u8,
            _ => return Err(bad("not 64 hex digits")),
        }
    }
    Ok(key)
}

fn write_new_key(dir: &Path, id: u32) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| Error::Random)?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{id}.key"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(hex.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(key)
}

struct Header {
    bytes: [u8; HEADER_LEN],
    key_id: u32,
    chunk: usize,
    prefix: [u8; 7],
}

impl Header {
    fn fresh(ring: &KeyRing) -> Result<Header> {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8] = VERSION;
        bytes[9] = ALG_AES256GCM_HKDF;
        bytes[10] = CHUNK_LOG2;
        bytes[12..16].copy_from_slice(&ring.current.to_be_bytes());
        SystemRandom::new()
            .fill(&mut bytes[16..39])
            .map_err(|_| Error::Random)?;
        Header::parse(bytes)
    }

    fn parse(bytes: [u8; HEADER_LEN]) -> Result<Header> {
        if &bytes[..8] != MAGIC {
            return Err(Error::NotSealed);
        }
        if bytes[8] != VERSION {
            return Err(Error::Version(bytes[8]));
        }
        if bytes[9] != ALG_AES256GCM_HKDF {
            return Err(Error::Algorithm(bytes[9]));
        }
        if !(10..=20).contains(&bytes[10]) {
            return Err(Error::ChunkSize(bytes[10]));
        }
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&bytes[32..39]);
        Ok(Header {
            key_id: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
            chunk: 1 << bytes[10],
            prefix,
            bytes,
        })
    }

    fn nonce(&self, counter: u64, last: bool) -> Result<Nonce> {
        let counter = u32::try_from(counter).map_err(|_| Error::TooLong)?;
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.prefix);
        n[7..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        Ok(Nonce::assume_unique_for_key(n))
    }
}

/// Seals what is written to it. Call [`SealedWriter::finish`] at the end: a writer
/// dropped without it leaves an unfinished file (what a crash leaves; see [`recover`]).
pub struct SealedWriter<W: Write> {
    inner: W,
    header: Header,
    key: LessSafeKey,
    buf: Vec<u8>,
    counter: u64,
}

impl<W: Write> SealedWriter<W> {
    /// Writes the header under the ring's current key.
    pub fn new(mut inner: W, ring: &KeyRing) -> Result<SealedWriter<W>> {
        let header = Header::fresh(ring)?;
        let key = ring.file_key(header.key_id, &header.bytes[16..32])?;
        inner.write_all(&header.bytes)?;
        let buf = Vec::with_capacity(header.chunk + TAG_LEN);
        Ok(SealedWriter {
            inner,
            header,
            key,
            buf,
            counter: 0,
        })
    }

    fn seal(&mut self, last: bool) -> Result<()> {
        let nonce = self.header.nonce(self.counter, last)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.header.bytes), &mut self.buf)
            .map_err(|_| Error::TooLong)?;
        self.buf.extend_from_slice(tag.as_ref());
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the final chunk and returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        self.seal(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.header.chunk - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.header.chunk {
            self.seal(false).map_err(io_err)?;
        }
        Ok(n)
    }

    /// Flushes the chunks sealed so far (a partial chunk waits until it is full).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Creates `path` (mode 0600, replacing it) sealed under the ring's current key.
pub fn create(path: &Path, ring: &KeyRing) -> Result<SealedWriter<BufWriter<File>>> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    SealedWriter::new(BufWriter::new(f), ring)
}

/// Seals a short value (a channel's access token, a password) in memory: the same
/// format as a sealed file, so a value sealed under an older key still opens after a
/// rotation.
pub fn seal_bytes(plain: &[u8], ring: &KeyRing) -> Result<Vec<u8>> {
    let mut w = SealedWriter::new(Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN), ring)?;
    w.write_all(plain)?;
    w.finish()
}

/// Opens what [`seal_bytes`] sealed.
pub fn open_bytes(sealed: &[u8], ring: &KeyRing) -> Result<Vec<u8>> {
    let mut r = SealedReader::new(io::Cursor::new(sealed), ring)?;
    let mut out = Vec::with_capacity(usize::try_from(r.len()).unwrap_or(0));
    r.read_to_end(&mut out)?;
    Ok(out)
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Reads (and seeks in) the plaintext of a sealed file, decrypting only the chunks
/// it touches.
pub struct SealedReader<R: Read + Seek> {
    inner: R,
    header: Header,
    key: LessSafeKey,
    len: u64,
    chunks: u64,
    pos: u64,
    cur: Option<(u64, Vec<u8>)>,
}

impl<R: Read + Seek> SealedReader<R> {
    /// Reads the header and works out the plaintext length from the framing. An
    /// unfinished file is [`Error::Unfinished`].
    pub fn new(mut inner: R, ring: &KeyRing) -> Result<SealedReader<R>> {
        inner.seek(SeekFrom::Start(0))?;
        let mut bytes = [0u8; HEADER_LEN];
        read_full(&mut inner, &mut bytes).map_err(|_| Error::NotSealed)?;
        let header = Header::parse(bytes)?;
        let key = ring.file_key(header.key_id, &header.bytes[16..32])?;
        let size = inner.seek(SeekFrom::End(0))?;
        let body = size - HEADER_LEN as u64;
        let sealed_chunk = (header.chunk + TAG_LEN) as u64;
        let (full, rem) = (body / sealed_chunk, body % sealed_chunk);
        if rem < TAG_LEN as u64 {
            return Err(Error::Unfinished);
        }
        let len = full * header.chunk as u64 + rem - TAG_LEN as u64;
        let mut r = SealedReader {
            inner,
            header,
            key,
            len,
            chunks: full + 1,
            pos: 0,
            cur: None,
        };
        // The last chunk authenticates the length: check it now, not at the end of a
        // download.
        r.load(r.chunks - 1)?;
        Ok(r)
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn decrypt(&mut self, idx: u64, last: bool) -> Result<Vec<u8>> {
        let sealed_chunk = (self.header.chunk + TAG_LEN) as u64;
        self.inner
            .seek(SeekFrom::Start(HEADER_LEN as u64 + idx * sealed_chunk))?;
        let want = if last {
            (self.len - idx * self.header.chunk as u64) as usize + TAG_LEN
        } else {
            sealed_chunk as usize
        };
        let mut buf = vec![0u8; want];
        read_full(&mut self.inner, &mut buf).map_err(|_| Error::Corrupt(idx))?;
        let nonce = self.header.nonce(idx, last)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(&self.header.bytes), &mut buf)
            .map_err(|_| Error::Corrupt(idx))?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }

    fn load(&mut self, idx: u64) -> Result<()> {
        if self.cur.as_ref().is_some_and(|(i, _)| *i == idx) {
            return Ok(());
        }
        let mut buf = self.decrypt(idx, idx + 1 == self.chunks)?;
        if idx == 0 {
            fill_wav_sizes(&mut buf, self.len);
        }
        self.cur = Some((idx, buf));
        Ok(())
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf)
}

impl<R: Read + Seek> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let chunk = self.header.chunk as u64;
        let idx = self.pos / chunk;
        self.load(idx).map_err(io_err)?;
        let Some((_, buf)) = &self.cur else {
            return Ok(0);
        };
        let off = (self.pos - idx * chunk) as usize;
        let n = (buf.len() - off).min(out.len());
        out[..n].copy_from_slice(&buf[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SealedReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.pos = pos;
        Ok(pos)
    }
}

/// A stored file: sealed, or plain (written before encryption, or by hand).
pub enum VaultFile {
    /// A sealed file.
    Sealed(Box<SealedReader<File>>),
    /// A plain file and its length.
    Plain(File, u64),
}

impl VaultFile {
    /// The plaintext length.
    pub fn len(&self) -> u64 {
        match self {
            VaultFile::Sealed(r) => r.len(),
            VaultFile::Plain(_, n) => *n,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, VaultFile::Sealed(_))
    }
}

impl Read for VaultFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            VaultFile::Sealed(r) => r.read(out),
            VaultFile::Plain(f, _) => f.read(out),
        }
    }
}

impl Seek for VaultFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            VaultFile::Sealed(r) => r.seek(to),
            VaultFile::Plain(f, _) => f.seek(to),
        }
    }
}

/// Opens a stored file, sealed or not.
pub fn open(path: &Path, ring: &KeyRing) -> Result<VaultFile> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 8];
    let sealed = f.read_exact(&mut magic).is_ok() && &magic == MAGIC;
    if sealed {
        return Ok(VaultFile::Sealed(Box::new(SealedReader::new(f, ring)?)));
    }
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(0))?;
    Ok(VaultFile::Plain(f, len))
}

/// Whether `path` is a sealed file that lacks its final chunk (its writer died).
pub fn is_unfinished(path: &Path, ring: &KeyRing) -> bool {
    matches!(open(path, ring), Err(Error::Unfinished | Error::Corrupt(_)))
}

/// Re-seals an unfinished (or tail-corrupt) sealed file from the chunks that
/// authenticate, in place (through a temporary file and a rename). Returns the
/// plaintext length kept. A complete file is left alone.
pub fn recover(path: &Path, ring: &KeyRing) -> Result<u64> {
    match open(path, ring) {
        Ok(f) => return Ok(f.len()),
        Err(Error::Unfinished | Error::Corrupt(_)) => {}
        Err(e) => return Err(e),
    }
    let mut f = File::open(path)?;
    let mut bytes = [0u8; HEADER_LEN];
    f.read_exact(&mut bytes)?;
    let header = Header::parse(bytes)?;
    let key = ring.file_key(header.key_id, &header.bytes[16..32])?;
    let size = f.metadata()?.len();
    let sealed_chunk = (header.chunk + TAG_LEN) as u64;
    let full = (size - HEADER_LEN as u64) / sealed_chunk;
    let mut r = SealedReader {
        inner: f,
        header,
        key,
        len: full * (sealed_chunk - TAG_LEN as u64),
        chunks: full + 1, // every chunk read is taken as a middle one
        pos: 0,
        cur: None,
    };
    let tmp = path.with_extension("recover.tmp");
    let mut w = create(&tmp, ring)?;
    let mut kept = 0u64;
    for idx in 0..full {
        match r.decrypt(idx, false) {
            Ok(buf) => {
                w.write_all(&buf)?;
                kept += buf.len() as u64;
            }
            Err(_) => break,
        }
    }
    w.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(kept)
}

/// A 44-byte header of a streamed PCM WAV file (16-bit, `channels`, `rate`) whose
/// RIFF and data sizes are the "unknown" placeholder `0xFFFFFFFF`. Sealed files fill
/// them in on reading ([`SealedReader`]) from their authenticated length.
pub fn wav_header(channels: u16, rate: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block = channels * 2;
    h[..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// Fills the placeholder sizes of a [`wav_header`] at the start of `buf`, for a file
/// of `len` bytes (data rounded down to whole sample frames).
fn fill_wav_sizes(buf: &mut [u8], len: u64) {
    if buf.len() < 44
        || &buf[..4] != b"RIFF"
        || &buf[8..12] != b"WAVE"
        || &buf[36..40] != b"data"
        || buf[40..44] != u32::MAX.to_le_bytes()
    {
        return;
    }
    let block = u64::from(u16::from_le_bytes([buf[32], buf[33]]).max(1));
    let data = (len - 44) / block * block;
    let riff = u32::try_from(data + 36).unwrap_or(u32::MAX);
    let data = u32::try_from(data).unwrap_or(u32::MAX);
    buf[4..8].copy_from_slice(&riff.to_le_bytes());
    buf[40..44].copy_from_slice(&data.to_le_bytes());
}

#[cfg(test)]
mod tests;
