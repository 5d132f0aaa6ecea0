//! Data at rest, the binary's side: the data directory's lock, the recording key
//! ring, closing calls a crash cut off, the retention purge task, and
//! `parley backup` / `parley restore` / `parley keys rotate`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use parley_cases::Store;

use crate::config::Config;

/// How often the retention purge runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// An exclusive lock on `<data>/parley.lock`, held while Parley serves: a second
/// `parley serve` and `parley restore` on the same data directory refuse to run.
/// The kernel drops it when the process dies, `kill -9` included.
pub(crate) struct DataLock(#[allow(dead_code)] File);

pub(crate) fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataLock> {
    parley_vault::create_private_dir(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join("parley.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(DataLock(f)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another Parley is running on the data directory {}",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The recording key ring: `<data>/keys/` (or `PARLEY_RECORDING_KEY_DIR`), generated
/// at the first start.
pub(crate) fn load_keys(cfg: &Config) -> anyhow::Result<Arc<parley_vault::KeyRing>> {
    let dir = cfg.recording_key_dir();
    let ring = parley_vault::KeyRing::load_or_create(&dir)
        .with_context(|| format!("cannot load the recording keys in {}", dir.display()))?;
    tracing::info!(dir = %dir.display(), keys = ?ring.ids(), sealing = ring.current_id(), "recording keys loaded");
    Ok(Arc::new(ring))
}

/// The web chat's visitor-token secret: `<data>/chat-token.key` (32 random bytes,
/// owner-only), generated at the first start. Replacing the file ends every visitor
/// token (their widgets start a new conversation).
pub(crate) fn load_chat_secret(data_dir: &Path) -> anyhow::Result<parley_web::chat::ChatSecret> {
    use std::io::Write as _;
    let path = data_dir.join("chat-token.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not 32 bytes", path.display()))?;
            Ok(parley_web::chat::ChatSecret::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(parley_web::chat::ChatSecret::new(key))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Calls left in progress by a crash: their recordings are recovered (a sealed file
/// loses only its last unfinished chunk) and linked, and each becomes a call record
/// with cause `server_restart`. Runs before SIP starts.
pub(crate) async fn close_interrupted_calls(
    store: &Store,
    data_dir: &Path,
    keys: &parley_vault::KeyRing,
) -> anyhow::Result<usize> {
    let calls = store.interrupted_calls().await?;
    for call in &calls {
        let recording = match &call.recording {
            Some(loc) if !loc.starts_with('/') && !loc.contains("..") => {
                let path = data_dir.join(loc);
                let ring = keys.clone();
                let recovered =
                    tokio::task::spawn_blocking(move || recover_recording(&path, &ring)).await?;
                match recovered {
                    Ok(size) => Some((loc.clone(), size)),
                    Err(e) => {
                        tracing::warn!(location = %loc, error = %e, "recording of an interrupted call not recovered");
                        None
                    }
                }
            }
            _ => None,
        };
        let rec = store.close_interrupted_call(call, recording).await?;
        tracing::warn!(call_id = %rec.call_id, tenant = %call.tenant_id, recording = ?rec.recording, "call cut off by a restart closed with cause server_restart");
    }
    Ok(calls.len())
}

/// The playable length of a recording after a crash: a sealed file is re-sealed from
/// its whole chunks; a plain WAV is kept as hound last flushed it.
fn recover_recording(path: &Path, keys: &parley_vault::KeyRing) -> anyhow::Result<u64> {
    if parley_vault::is_unfinished(path, keys) {
        return Ok(parley_vault::recover(path, keys)?);
    }
    Ok(parley_vault::open(path, keys)?.len())
}

/// Deletes expired recordings now and then every hour, until the process ends.
pub(crate) fn spawn_purge(store: Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            match store.purge_expired_recordings().await {
                Ok(r) if r.files > 0 || r.call_records > 0 => {
                    tracing::info!(
                        files = r.files,
                        interactions = r.interactions,
                        call_records = r.call_records,
                        "retention: expired recordings deleted"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention purge failed"),
            }
        }
    });
}

/// `parley backup FILE`: a consistent copy of the SQLite database, taken while Parley
/// runs (or not). PostgreSQL: pg_dump.
pub(crate) async fn backup(cfg: &Config, file: &Path) -> anyhow::Result<()> {
    let url = cfg.database_url();
    if !url.starts_with("sqlite:") {
        bail!(
            "parley backup copies the SQLite database; for PostgreSQL use pg_dump (docs/operations.md)"
        );
    }
    let store = crate::open_store(cfg).await?;
    let r = store.backup_sqlite(file).await;
    store.close().await;
    r.with_context(|| format!("cannot write the backup to {}", file.display()))?;
    set_private(file)?;
    Ok(())
}

/// `parley restore FILE`: replaces the SQLite database with a backup. Refuses while
/// a Parley serves on the data directory; the database it replaces is kept beside it.
pub(crate) fn restore(cfg: &Config, file: &Path) -> anyhow::Result<PathBuf> {
    let url = cfg.database_url();
    let Some(db) = sqlite_path(&url) else {
        bail!(
            "parley restore replaces the SQLite database; for PostgreSQL use pg_restore/psql (docs/operations.md)"
        );
    };
    let mut header = [0u8; 16];
    File::open(file)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .with_context(|| format!("cannot read {}", file.display()))?;
    if &header != b"SQLite format 3\0" {
        bail!("{} is not an SQLite database", file.display());
    }
    let _lock = lock_data_dir(&cfg.data_dir).context("refusing to restore")?;
    let tmp = db.with_extension("db.restoring");
    std::fs::copy(file, &tmp).with_context(|| format!("cannot copy to {}", tmp.display()))?;
    set_private(&tmp)?;
    let kept = db.with_extension(format!(
        "db.before-restore-{}",
        jiff::Timestamp::now().as_second()
    ));
    if db.exists() {
        std::fs::rename(&db, &kept)?;
    }
    // A WAL or shared-memory file of the replaced database must not be applied to
    // the restored one.
    for suffix in ["wal", "shm"] {
        let side = PathBuf::from(format!("{}-{suffix}", db.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}-{suffix}", kept.display()))?;
        }
    }
    std::fs::rename(&tmp, &db)?;
    Ok(kept)
}

/// The database file of a `sqlite://` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod 600 {}", path.display()))
}

/// `parley keys rotate`: the next recording key; new recordings use it after a
/// restart, older ones stay readable with the old keys.
pub(crate) fn rotate_keys(cfg: &Config) -> anyhow::Result<u32> {
    let dir = cfg.recording_key_dir();
    parley_vault::KeyRing::rotate(&dir)
        .with_context(|| format!("cannot rotate the keys in {}", dir.display()))
}
