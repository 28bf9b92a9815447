//! The database: a SQLite file by default. Migrations live in `/migrations/sqlite` and
//! run at start, so a fresh file is a working store.

use crate::error::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub type Pool = SqlitePool;

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
    let pool = SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await?;
    sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// A transaction that will write: it takes SQLite's write lock at `BEGIN`
/// (`IMMEDIATE`), waiting up to the busy timeout for another writer. A
/// deferred transaction that reads before it writes is refused outright
/// (SQLITE_BUSY_SNAPSHOT, "database is locked") when another connection
/// committed in between — a session write, a deploy step — and the
/// person's action fails with an internal error. Every writing transaction
/// in the engine begins here.
pub(crate) async fn begin_write(pool: &Pool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}
