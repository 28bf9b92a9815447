//! The database: a SQLite file by default. Migrations live in `/migrations/sqlite` and
//! run at start, so a fresh file is a working store.
//!
//! Everything else in the engine reaches the database through this module:
//! [`Pool`], [`Tx`] (a transaction that writes) and the queries of
//! [`query`](mod@query), whose text and binds name no database driver. That
//! keeps the SQL in one dialect-neutral place per use, ready for a second
//! store (PostgreSQL, docs/ARCHITECTURE.md section 10).

mod builder;
mod query;

pub use builder::QueryBuilder;
pub use query::{query, query_as, query_scalar, Query};

use crate::error::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

/// The engine's connections to its database.
#[derive(Clone, Debug)]
pub struct Pool {
    sqlite: SqlitePool,
}

/// A transaction that writes (see [`begin_write`]): rolled back when
/// dropped without [`Tx::commit`].
pub struct Tx {
    sqlite: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        Ok(self.sqlite.commit().await?)
    }
}

impl Pool {
    /// The SQLite pool underneath, for what stores its own tables beside
    /// the engine's (the console's sessions).
    pub fn as_sqlite(&self) -> &SqlitePool {
        &self.sqlite
    }

    /// A store over a pool opened elsewhere (the migration tests, which run
    /// migrations one by one before the engine reads the result).
    #[cfg(test)]
    pub(crate) fn from_sqlite(sqlite: SqlitePool) -> Pool {
        Pool { sqlite }
    }

    /// Closes every connection (a benchmark or test that reopens the file).
    pub async fn close(&self) {
        self.sqlite.close().await
    }
}

/// Opens (creating if needed) the database at `url` (`sqlite:path` or
/// `sqlite::memory:`) and brings its schema up to date.
pub async fn open(url: &str) -> Result<Pool> {
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
    Ok(Pool { sqlite })
}

/// A transaction that will write: it takes SQLite's write lock at `BEGIN`
/// (`IMMEDIATE`), waiting up to the busy timeout for another writer. A
/// deferred transaction that reads before it writes is refused outright
/// (SQLITE_BUSY_SNAPSHOT, "database is locked") when another connection
/// committed in between — a session write, a deploy step — and the
/// person's action fails with an internal error. Every writing transaction
/// in the engine begins here.
pub async fn begin_write(pool: &Pool) -> Result<Tx> {
    Ok(Tx {
        sqlite: pool.sqlite.begin_with("BEGIN IMMEDIATE").await?,
    })
}
