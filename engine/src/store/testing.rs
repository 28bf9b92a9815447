//! Stores for tests: an in-memory SQLite database, or a fresh PostgreSQL
//! database on the server `SWITCHYARD_TEST_POSTGRES` names — the URL
//! `scripts/postgres.sh` writes to `.postgres.url`, whose role may create
//! databases. The test command sets it; without it a PostgreSQL case is
//! skipped with a line on standard error, except under `CI=true`, where it
//! fails, so the store matrix cannot quietly shrink to one store.

use super::{open, Pool};
use crate::error::Result;

/// The variable naming the PostgreSQL server tests use.
pub const POSTGRES_VAR: &str = "SWITCHYARD_TEST_POSTGRES";

/// Prefix of the databases tests create (the test command drops those a
/// previous run left).
pub const DATABASE_PREFIX: &str = "switchyard_test_";

pub async fn sqlite() -> Pool {
    open("sqlite::memory:").await.expect("in-memory SQLite")
}

/// The variable that picks the store of the integration tests that run
/// once per store: `postgres` for PostgreSQL, anything else SQLite.
pub const STORE_VAR: &str = "SWITCHYARD_TEST_STORE";

/// The database an integration test's engine uses: a SQLite file in
/// `dir`, or, with `SWITCHYARD_TEST_STORE=postgres`, a fresh PostgreSQL
/// database on the server [`POSTGRES_VAR`] names (the test command runs
/// those tests once per store). Call it once per database: each call on
/// PostgreSQL makes a new one.
pub async fn store_url(dir: &std::path::Path) -> String {
    match std::env::var(STORE_VAR).as_deref() {
        Ok("postgres") => postgres_url()
            .await
            .expect("SWITCHYARD_TEST_STORE=postgres needs SWITCHYARD_TEST_POSTGRES"),
        _ => format!("sqlite:{}", dir.join("switchyard.db").display()),
    }
}

/// A new, empty, migrated PostgreSQL database, or `None` (see the module).
pub async fn postgres() -> Option<Pool> {
    let url = postgres_url().await?;
    Some(open(&url).await.expect("open the test database"))
}

/// Takes the audit log's append-only triggers away, as someone with raw
/// write access to the database would before cutting or editing entries:
/// the tests of what the chain and the checkpoints then catch.
pub async fn drop_audit_guards(pool: &Pool) {
    let on = match pool.dialect() {
        super::Dialect::Sqlite => "",
        super::Dialect::Postgres => " ON audit_log",
    };
    for trigger in ["audit_log_no_update", "audit_log_no_delete"] {
        super::query(&format!("DROP TRIGGER IF EXISTS {trigger}{on}"))
            .execute(pool)
            .await
            .expect("drop the audit log's guard");
    }
}

/// The URL of a new, empty PostgreSQL database (not migrated yet), or
/// `None` (see the module).
pub async fn postgres_url() -> Option<String> {
    let Ok(server) = std::env::var(POSTGRES_VAR) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{POSTGRES_VAR} is not set: the PostgreSQL half of the store matrix would not run"
        );
        eprintln!("{POSTGRES_VAR} not set: PostgreSQL case skipped");
        return None;
    };
    Some(create_database(&server).await.expect("create a test database"))
}

/// Makes a new, empty database (C collation, as the store requires) on the
/// PostgreSQL `server` (a URL whose role may create databases); its URL. The
/// benchmarks make theirs here too, and drop them with [`drop_database`].
pub async fn create_database(server: &str) -> Result<String> {
    use sqlx::Connection;
    let name = format!(
        "{DATABASE_PREFIX}{}",
        hex::encode(rand::random::<[u8; 6]>())
    );
    let mut admin = sqlx::PgConnection::connect(server).await?;
    // C collation: the engine's text order is SQLite's (bytes), see `open`.
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(with_database(server, &name))
}

/// Drops the database `url` names (made by [`create_database`] on
/// `server`), closing whatever connections it still has.
pub async fn drop_database(server: &str, url: &str) -> Result<()> {
    use sqlx::Connection;
    let name = database_name(url);
    if !name.starts_with(DATABASE_PREFIX) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(crate::error::Error::Internal(format!(
            "refusing to drop {name}: not a database this module made"
        )));
    }
    let mut admin = sqlx::PgConnection::connect(server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// The database a URL names (the path after its authority).
fn database_name(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or("")
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user:password@host:port/database: the path starts at the
    // first '/' after the authority.
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs each `async fn case(pool: Pool)` of the calling module as two
/// tests, `on_sqlite::case` and `on_postgres::case`.
#[cfg(test)]
macro_rules! on_both_stores {
    ($($case:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::store::testing::sqlite().await).await
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(pool) = $crate::store::testing::postgres().await {
                        super::$case(pool).await
                    }
                }
            )+
        }
    };
}
#[cfg(test)]
pub(crate) use on_both_stores;

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_read_from_a_url() {
        assert_eq!(
            super::database_name("postgres://u:p@h:1/switchyard_test_ab?sslmode=disable"),
            "switchyard_test_ab"
        );
        assert_eq!(super::database_name("postgres://h/db"), "db");
    }

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            super::with_database("postgres://u:p@127.0.0.1:55432/switchyard", "t1"),
            "postgres://u:p@127.0.0.1:55432/t1"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
