//! The storage handle: one pool over SQLite or PostgreSQL, migrations, transactions.
//!
//! Queries are written once against sqlx's `Any` driver with `$N` placeholders (both
//! backends accept them) and portable column types: `TEXT` ids, `BIGINT` milliseconds,
//! `BIGINT` 0/1 flags, JSON as `TEXT`. The few places where the dialects differ
//! (full-text search, transaction start) branch on [`Backend`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::Result;
use crate::events::DomainEvent;
use crate::outbox::{BroadcastSink, EventSink};
use crate::types::{Clock, SystemClock, Timestamp};

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (WAL, foreign keys on).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Parses the scheme of a database URL.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A transaction on either backend.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Cloneable handle to Parley's database and its in-process event stream.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    events: broadcast::Sender<DomainEvent>,
    /// Where the outbox relay delivers: the broadcast behind `events` first.
    sinks: Arc<std::sync::Mutex<Vec<Arc<dyn EventSink>>>>,
    clock: Arc<dyn Clock>,
    files: Option<Arc<Path>>,
    /// The triage hook [`Store::ingest`] runs (default: keyword rules).
    triage: TriageHook,
    /// The key ring channel secrets are sealed under (see [`Store::with_secret_keys`]).
    secret_keys: Arc<parley_vault::KeyRing>,
    /// The per-call lookup cache, shared by every clone (see [`crate::lookups`]).
    pub(crate) lookups: Arc<crate::lookups::Lookups>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). For SQLite the file is created if
    /// missing and switched to WAL.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            crate::Error::invalid("database_url", "must start with sqlite:// or postgres://")
        })?;
        let mut url = url.to_owned();
        if backend == Backend::Sqlite && !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // foreign_keys is per connection; busy_timeout lets writers queue
                        // instead of failing; NORMAL is durable in WAL mode up to the last
                        // checkpointed commit on power loss, and crash-safe.
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            // Persistent in the file: set once.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let (events, _) = broadcast::channel(1024);
        let sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(BroadcastSink(events.clone()))];
        Ok(Store {
            pool,
            backend,
            events,
            sinks: Arc::new(std::sync::Mutex::new(sinks)),
            clock: Arc::new(SystemClock),
            files: None,
            triage: TriageHook::default(),
            secret_keys: Arc::new(ephemeral_ring()),
            lookups: Arc::default(),
        })
    }

    /// Opens the embedded default: `parley.db` in `data_dir` (created if needed).
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            crate::Error::invalid(
                "data_dir",
                format!("cannot create {}: {e}", data_dir.display()),
            )
        })?;
        let path = data_dir.join("parley.db");
        Store::connect(&format!("sqlite://{}", path.display())).await
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> Result<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// True when the database answers and every known migration is applied.
    pub async fn ready(&self) -> Result<bool> {
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await?;
        Ok(self
            .migrator()
            .iter()
            .all(|m| applied.iter().any(|(v,)| *v == m.version)))
    }

    /// Sets the triage hook every channel's [`Store::ingest`] runs (the binary passes
    /// the local AI's; default: [`crate::conversations::RulesTriage`]). The store itself
    /// stays model-free.
    pub fn with_triage(mut self, triage: Arc<dyn crate::conversations::Triage>) -> Store {
        self.triage = TriageHook(triage);
        self
    }

    /// The triage hook [`Store::ingest`] runs.
    pub fn triage(&self) -> Arc<dyn crate::conversations::Triage> {
        self.triage.0.clone()
    }

    /// Replaces the clock (tests drive SLA timers and token expiry in virtual time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    /// Sets the root of the stored files (the data directory: `recordings/`, `tts/`):
    /// erasure and retention delete files under it.
    pub fn with_files_dir(mut self, dir: impl AsRef<Path>) -> Store {
        self.files = Some(Arc::from(dir.as_ref()));
        self
    }

    /// Seals channel secrets (access tokens, passwords) under `keys` (the data
    /// directory's key ring). Without it a store seals them under a random key that
    /// lives as long as the process: fine for tests, lost at a restart.
    pub fn with_secret_keys(mut self, keys: Arc<parley_vault::KeyRing>) -> Store {
        self.secret_keys = keys;
        self
    }

    /// The key ring channel secrets are sealed under.
    pub(crate) fn secret_keys(&self) -> &parley_vault::KeyRing {
        &self.secret_keys
    }

    /// The root of the stored files, when set.
    pub fn files_dir(&self) -> Option<&Path> {
        self.files.as_deref()
    }

    /// Writes a consistent copy of the SQLite database to `to` while Parley runs
    /// (`VACUUM INTO`: one read transaction, writers go on). `to` must not exist.
    /// PostgreSQL is backed up with `pg_dump` (see docs/operations.md).
    pub async fn backup_sqlite(&self, to: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(crate::Error::Unsupported {
                what: "parley backup (use pg_dump for PostgreSQL)",
            });
        }
        if to.exists() {
            return Err(crate::Error::invalid(
                "file",
                format!("{} exists; choose a new file", to.display()),
            ));
        }
        let path = to
            .to_str()
            .ok_or_else(|| crate::Error::invalid("file", "the backup path must be valid UTF-8"))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Now, by this store's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for benchmarks and tools in this workspace.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Subscribes to domain events committed from now on (in-process).
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.events.subscribe()
    }

    /// The relay's sinks, for reading or adding (never held across an await).
    pub(crate) fn sinks_lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn EventSink>>> {
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes live notifications that are not mutations of stored data (an agent's
    /// phone ringing, a transcript segment as it is heard) to in-process subscribers,
    /// bypassing the outbox: they are not durable and are not replayed. Mutations
    /// publish through [`Store::commit_audited`] instead.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = DomainEvent>) {
        for e in events {
            // No subscribers is fine: events are also durable as audit/case_events rows.
            let _ = self.events.send(e);
        }
    }

    /// Begins a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so that a read-then-write transaction cannot fail half way with
    /// `SQLITE_BUSY` when another writer commits in between.
    pub(crate) async fn write_tx(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for checked-out connections; flushes the SQLite WAL.
    /// Events still in the outbox are published first (bounded: 5 s).
    pub async fn close(&self) {
        // Only on a migrated database (tools such as `parley backup` open others).
        if !matches!(self.ready().await, Ok(true)) {
            return self.close_pool().await;
        }
        match tokio::time::timeout(Duration::from_secs(5), self.relay_outbox()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "outbox not flushed before closing"),
            Err(_) => tracing::warn!("outbox not flushed within 5 s before closing"),
        }
        self.close_pool().await;
    }

    async fn close_pool(&self) {
        if self.backend == Backend::Sqlite {
            let _ = self.pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
        }
        self.pool.close().await;
    }
}

/// The configured triage hook (a newtype: `dyn Triage` is not `Debug`).
#[derive(Clone)]
struct TriageHook(Arc<dyn crate::conversations::Triage>);

impl std::fmt::Debug for TriageHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TriageHook")
    }
}

impl Default for TriageHook {
    fn default() -> Self {
        TriageHook(Arc::new(crate::conversations::RulesTriage::default()))
    }
}

/// A key ring of one random key, for a store given none.
fn ephemeral_ring() -> parley_vault::KeyRing {
    parley_vault::KeyRing::new(1, rand::random())
}
