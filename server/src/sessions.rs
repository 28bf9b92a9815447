//! Where sign-in sessions are kept: in the engine's own database, SQLite or
//! PostgreSQL, so that consoles sharing a PostgreSQL database recognise each
//! other's sessions (signed in on one, served by another).

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session store of the console's database.
#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Sessions {
    /// The store beside the engine's tables, its own table created if
    /// missing.
    pub async fn open(pool: &engine::Pool) -> anyhow::Result<Sessions> {
        let sessions = if let Some(p) = pool.as_postgres() {
            let store = PostgresStore::new(p.clone());
            store.migrate().await?;
            Sessions::Postgres(store)
        } else if let Some(p) = pool.as_sqlite() {
            let store = SqliteStore::new(p.clone());
            store.migrate().await?;
            Sessions::Sqlite(store)
        } else {
            anyhow::bail!("the database is neither SQLite nor PostgreSQL");
        };
        Ok(sessions)
    }
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.create(record).await,
            Sessions::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.save(record).await,
            Sessions::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Sqlite(s) => s.load(id).await,
            Sessions::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.delete(id).await,
            Sessions::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for Sessions {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.delete_expired().await,
            Sessions::Postgres(s) => s.delete_expired().await,
        }
    }
}
