//! The database: a SQLite file by default, or PostgreSQL (`postgres://…`,
//! which several consoles can share). Migrations live in
//! `/migrations/sqlite` and `/migrations/postgres` (the same versions, each
//! in its dialect) and run at start, so a fresh database is a working store.
//!
//! Everything else in the engine reaches the database through this module:
//! [`Pool`], [`Tx`] (a transaction that writes) and the queries of
//! [`query`](mod@query), whose text and binds name no database driver
//! (docs/ARCHITECTURE.md section 2, "The store").

mod builder;
mod placeholders;
mod query;
#[cfg(any(test, feature = "internals"))]
pub mod testing;

pub use builder::QueryBuilder;
pub use query::{query, query_as, query_scalar, Query};

use crate::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// The engine's connections to its database.
#[derive(Clone, Debug)]
pub struct Pool {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database a [`Pool`] talks to, for the few statements that differ
/// (the audit log's full-text search).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A transaction that writes (see [`begin_write`]): rolled back when
/// dropped without [`Tx::commit`].
pub struct Tx {
    backend: TxBackend,
}

enum TxBackend {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.backend {
            TxBackend::Sqlite(t) => t.commit().await?,
            TxBackend::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite pool underneath, for what keeps its own tables beside
    /// the engine's (the console's sessions).
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match &self.backend {
            Backend::Sqlite(p) => Some(p),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool underneath (see [`as_sqlite`](Self::as_sqlite)).
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// A store over a pool opened elsewhere (the migration tests, which run
    /// migrations one by one before the engine reads the result).
    #[cfg(test)]
    pub(crate) fn from_sqlite(sqlite: SqlitePool) -> Pool {
        Pool {
            backend: Backend::Sqlite(sqlite),
        }
    }

    /// Closes every connection (a benchmark or test that reopens the file).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the database at `url` — `sqlite:path` (created if missing),
/// `sqlite::memory:`, or `postgres://user:password@host:port/database` —
/// and brings its schema up to date.
pub async fn open(url: &str) -> Result<Pool> {
    if is_postgres_url(url) {
        return open_postgres(url).await;
    }
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        // WAL lets the dashboard read while a deploy worker writes.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let max = if url.contains(":memory:") { 1 } else { 8 };
    let sqlite = SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await?;
    sqlx::migrate!("../migrations/sqlite").run(&sqlite).await?;
    Ok(Pool {
        backend: Backend::Sqlite(sqlite),
    })
}

async fn open_postgres(url: &str) -> Result<Pool> {
    let options = PgConnectOptions::from_str(url)?.application_name("switchyard");
    let pg = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    // The engine's SQL compares and orders text by its bytes (the audit
    // log's action ranges, its '~' upper bound, name order), as SQLite does:
    // that needs a database whose collation is C.
    let collation: String =
        sqlx::query_scalar("SELECT datcollate FROM pg_database WHERE datname = current_database()")
            .fetch_one(&pg)
            .await?;
    if !matches!(collation.as_str(), "C" | "POSIX") {
        return Err(Error::InvalidInput {
            field: "database_url",
            message: format!(
                "the database's collation is {collation:?}; Switchyard needs \"C\" (create it with \
                 CREATE DATABASE … TEMPLATE template0 LC_COLLATE 'C')"
            ),
        });
    }
    sqlx::migrate!("../migrations/postgres").run(&pg).await?;
    Ok(Pool {
        backend: Backend::Postgres(pg),
    })
}

/// Any number: the key of the advisory lock every writing transaction
/// takes on PostgreSQL.
const WRITE_LOCK: i64 = 0x5357_5244_5752_4954; // "SWRDWRIT"

/// A transaction that will write. On SQLite it takes the write lock at
/// `BEGIN` (`IMMEDIATE`), waiting up to the busy timeout for another
/// writer: a deferred transaction that reads before it writes is refused
/// outright (SQLITE_BUSY_SNAPSHOT, "database is locked") when another
/// connection committed in between — a session write, a deploy step — and
/// the person's action fails with an internal error. On PostgreSQL it takes
/// one transaction-scoped advisory lock, shared by every console on the
/// database, so writing transactions run one at a time there too: the
/// audit chain's read-last-then-append and the other read-then-write
/// transactions keep the meaning they have on SQLite. Every writing
/// transaction in the engine begins here.
pub async fn begin_write(pool: &Pool) -> Result<Tx> {
    let backend = match &pool.backend {
        Backend::Sqlite(p) => TxBackend::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        Backend::Postgres(p) => {
            let mut tx = p.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
            TxBackend::Postgres(tx)
        }
    };
    Ok(Tx { backend })
}
