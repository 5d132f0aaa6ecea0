//! Test harness: a fresh store per test on SQLite (temp file) or PostgreSQL (a database
//! created for the test and dropped after it).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use parley_cases::{Actor, ManualClock, Store, Timestamp};
use sqlx::Connection as _;

pub struct Harness {
    pub store: Store,
    pub clock: ManualClock,
    cleanup: Cleanup,
    /// The database's URL, for opening it again ([`Harness::reopen`]).
    url: String,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    PgDb { admin_url: String, name: String },
}

/// 2026-01-05T09:00:00Z, a Monday.
pub const T0: Timestamp = Timestamp(1_767_603_600_000);

pub fn pg_admin_url() -> String {
    std::env::var("PARLEY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = std::env::temp_dir().join(format!("parley-test-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sqlite_dir(&dir).await.unwrap();
        let url = format!("sqlite://{}", dir.join("parley.db").display());
        Harness::finish(store, Cleanup::Dir(dir), url).await
    }

    /// None (with a loud warning) when PostgreSQL is unreachable, unless CI=true, where
    /// that is a failure: CI must run every storage test on both backends.
    pub async fn postgres() -> Option<Harness> {
        let admin_url = pg_admin_url();
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL at {admin_url} is required under CI=true: {e}");
                }
                eprintln!(
                    "\n!!! WARNING: PostgreSQL unreachable at {admin_url} ({e}); SKIPPING the PostgreSQL half of this test !!!\n"
                );
                return None;
            }
        };
        let name = format!("parley_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap();
        let url = format!("{base}/{name}");
        let store = Store::connect(&url).await.unwrap();
        Some(Harness::finish(store, Cleanup::PgDb { admin_url, name }, url).await)
    }

    /// A second, independent store on the same database (as after a restart), on the
    /// same clock.
    pub async fn reopen(&self) -> Store {
        let store = Store::connect(&self.url).await.unwrap();
        store.with_clock(Arc::new(self.clock.clone()))
    }

    async fn finish(store: Store, cleanup: Cleanup, url: String) -> Harness {
        store.migrate().await.unwrap();
        let clock = ManualClock::new(T0);
        let store = store.with_clock(Arc::new(clock.clone()));
        Harness {
            store,
            clock,
            cleanup,
            url,
        }
    }

    pub async fn close(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::PgDb { admin_url, name } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
            }
        }
    }

    /// A tenant with an admin actor.
    pub async fn tenant(&self, name: &str) -> Actor {
        let t = self.store.create_tenant(name).await.unwrap();
        Actor::system(t.id)
    }
}

/// Defines `mod $name { sqlite(), postgres() }`: the same body on both backends.
#[macro_export]
macro_rules! on_both {
    ($name:ident, |$h:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($h: &common::Harness) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let h = common::Harness::sqlite().await;
                run(&h).await;
                h.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(h) = common::Harness::postgres().await else { return };
                run(&h).await;
                h.close().await;
            }
        }
    };
}
