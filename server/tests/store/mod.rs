//! Which store a test's consoles use. The test command runs the server
//! tests twice: on SQLite (each console's file in its data directory) and,
//! with `SWITCHYARD_TEST_STORE=postgres`, on a fresh PostgreSQL database per
//! data directory (`engine::store::testing`). The database is made the first
//! time a directory asks and recorded in it, so every console, CLI command
//! and pool a test opens on that directory meets the same one — a console
//! restarted after a crash included.
#![allow(dead_code)] // each test file uses its own part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RECORDED: &str = "test-database.url";

/// The PostgreSQL database of `dir`'s consoles, or `None` on SQLite (the
/// console's default file in `dir`).
pub fn postgres_url(dir: &Path) -> Option<String> {
    if std::env::var(engine::store::testing::STORE_VAR).as_deref() != Ok("postgres") {
        return None;
    }
    let recorded = dir.join(RECORDED);
    if let Ok(url) = std::fs::read_to_string(&recorded) {
        return Some(url);
    }
    // Made on a thread of its own: callers may be inside a runtime.
    let at: PathBuf = dir.to_path_buf();
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(engine::store::testing::store_url(&at))
    })
    .join()
    .unwrap();
    std::fs::write(&recorded, &url).unwrap();
    Some(url)
}

/// The database URL of `dir`'s consoles, whichever the store.
pub fn url(dir: &Path) -> String {
    postgres_url(dir).unwrap_or_else(|| format!("sqlite:{}", dir.join("switchyard.db").display()))
}

/// A pool on `dir`'s database, as the offline commands open it.
pub async fn pool(dir: &Path) -> engine::store::Pool {
    engine::store::open(&url(dir)).await.unwrap()
}

/// `switchyard --data-dir dir` on `dir`'s database: the CLI's offline
/// commands and `serve`.
pub fn switchyard(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.arg("--data-dir").arg(dir);
    if let Some(url) = postgres_url(dir) {
        c.env("SWITCHYARD_DATABASE_URL", url);
    }
    c
}

/// Runs `cmd` to its end with `stdin` as its input, off the test's thread.
///
/// A `#[tokio::test]` runs the console it started on the test's own single
/// thread. Waiting for a child process on that thread freezes the console
/// wherever it stands, a writing transaction included; on PostgreSQL that
/// transaction holds the write lock (`engine::store::begin_write`), so a CLI
/// command that needs it would wait for a console that cannot go on. A CI
/// run hung that way for its whole time limit.
pub async fn run(mut cmd: Command, stdin: &str) -> Output {
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `switchyard --data-dir dir args…` run to its end (see [`run`]): whether it
/// succeeded, and what it printed on stdout then stderr.
pub async fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = switchyard(dir);
    cmd.args(args);
    let out = run(cmd, "").await;
    (out.status.success(), printed(&out))
}

/// What a command printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names of the tables (not SQLite's own nor the full-text index's
/// shadow tables).
pub async fn tables(pool: &engine::store::Pool) -> Vec<String> {
    let sql = match pool.dialect() {
        engine::store::Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        }
        engine::store::Dialect::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        }
    };
    let names: Vec<String> = engine::store::query_scalar(sql)
        .fetch_all(pool)
        .await
        .unwrap();
    names
        .into_iter()
        .filter(|t| !t.starts_with("sqlite_") && !t.starts_with("audit_fts"))
        .collect()
}

/// `table`'s text columns.
pub async fn text_columns(pool: &engine::store::Pool, table: &str) -> Vec<String> {
    let sql = match pool.dialect() {
        engine::store::Dialect::Sqlite => {
            "SELECT name FROM pragma_table_info(?) WHERE upper(type) = 'TEXT'"
        }
        engine::store::Dialect::Postgres => {
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = ? AND data_type = 'text' \
             ORDER BY ordinal_position"
        }
    };
    engine::store::query_scalar(sql)
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap()
}
