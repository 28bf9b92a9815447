//! Queries written once for every store.
//!
//! The engine's SQL goes through [`query`], [`query_as`] and
//! [`query_scalar`] rather than sqlx's functions of the same names: the
//! values bound to a query are kept as [`Arg`]s (a closed set of types the
//! stores all understand, each `NULL` with its type) and handed to the
//! store's own driver only when the query runs, on a [`Pool`] or inside a
//! [`Tx`]. So a query's text and its binds do not name a database: the
//! same query runs on SQLite and on PostgreSQL (its `?` placeholders
//! renumbered as `$N` there, see `placeholders.rs`), rather than a copy of
//! every query per store (docs/ARCHITECTURE.md section 2).
//!
//! Rows decode with sqlx's `FromRow` (derived row structs and tuples), as
//! before.

use super::placeholders::numbered;
use super::{Backend, Pool, Tx, TxBackend};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Postgres, Sqlite};
use std::marker::PhantomData;

/// A value bound to a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `NULL` of a type: a store that types its parameters needs it.
    Null(Kind),
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Time(DateTime<Utc>),
}

/// The type of an [`Arg`], for its `NULL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Bool,
    Text,
    Bytes,
    Time,
}

/// What can be bound to a query: the types the engine stores.
pub trait Bind {
    /// The type of this value's `NULL`.
    const KIND: Kind;
    fn arg(self) -> Arg;
}

macro_rules! bind_by_value {
    ($($t:ty => $kind:ident, $v:ident => $e:expr;)+) => {
        $(
            impl Bind for $t {
                const KIND: Kind = Kind::$kind;
                fn arg(self) -> Arg {
                    let $v = self;
                    Arg::$kind($e)
                }
            }
        )+
    };
}

bind_by_value! {
    i64 => Int, v => v;
    i32 => Int, v => i64::from(v);
    u32 => Int, v => i64::from(v);
    u16 => Int, v => i64::from(v);
    f64 => Real, v => v;
    bool => Bool, v => v;
    String => Text, v => v;
    &str => Text, v => v.to_string();
    &String => Text, v => v.clone();
    Vec<u8> => Bytes, v => v;
    &[u8] => Bytes, v => v.to_vec();
    &Vec<u8> => Bytes, v => v.clone();
    DateTime<Utc> => Time, v => v;
    &DateTime<Utc> => Time, v => *v;
}

impl<T: Bind> Bind for Option<T> {
    const KIND: Kind = T::KIND;
    fn arg(self) -> Arg {
        match self {
            Some(v) => v.arg(),
            None => Arg::Null(T::KIND),
        }
    }
}

impl Bind for &Option<String> {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        self.as_deref().arg()
    }
}

impl Bind for &Option<i64> {
    const KIND: Kind = Kind::Int;
    fn arg(self) -> Arg {
        (*self).arg()
    }
}

impl Bind for &Option<DateTime<Utc>> {
    const KIND: Kind = Kind::Time;
    fn arg(self) -> Arg {
        (*self).arg()
    }
}

impl Bind for &i64 {
    const KIND: Kind = Kind::Int;
    fn arg(self) -> Arg {
        Arg::Int(*self)
    }
}

/// Where a query runs: the pool (a connection of its own) or a transaction.
pub enum On<'c> {
    Pool(&'c Pool),
    Tx(&'c mut Tx),
}

impl<'c> From<&'c Pool> for On<'c> {
    fn from(p: &'c Pool) -> Self {
        On::Pool(p)
    }
}

impl<'c> From<&'c mut Tx> for On<'c> {
    fn from(t: &'c mut Tx) -> Self {
        On::Tx(t)
    }
}

/// What a statement changed.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}


/// A statement and its binds.
#[must_use = "a query does nothing until it runs"]
pub struct Query<'q> {
    sql: &'q str,
    args: Vec<Arg>,
}

/// A query whose rows decode as `T`.
#[must_use = "a query does nothing until it runs"]
pub struct QueryAs<'q, T> {
    q: Query<'q>,
    _row: PhantomData<fn() -> T>,
}

/// A query whose rows are one value of type `T`.
#[must_use = "a query does nothing until it runs"]
pub struct QueryScalar<'q, T> {
    q: Query<'q>,
    _value: PhantomData<fn() -> T>,
}

pub fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

pub fn query_as<T>(sql: &str) -> QueryAs<'_, T> {
    QueryAs {
        q: query(sql),
        _row: PhantomData,
    }
}

pub fn query_scalar<T>(sql: &str) -> QueryScalar<'_, T> {
    QueryScalar {
        q: query(sql),
        _value: PhantomData,
    }
}

/// Rows every store can decode into `T` (`#[derive(sqlx::FromRow)]` and
/// tuples of the types below are).
pub trait Row:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// Values every store can decode into `T`.
pub trait Value:
    sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Postgres>
    + for<'r> sqlx::Decode<'r, Postgres>
    + Send
    + Unpin
{
}
impl<T> Value for T where
    T: sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Postgres>
        + for<'r> sqlx::Decode<'r, Postgres>
        + Send
        + Unpin
{
}

/// Runs `$call` (a sqlx `execute`/`fetch_*` method) on the sqlx query that
/// `$build` makes of `$q`'s text and binds, wherever `$on` says, in that
/// store's driver.
macro_rules! run {
    ($q:expr, $on:expr, $build:path, $call:ident) => {
        run!($q, $on, $build, $call, |r| r)
    };
    ($q:expr, $on:expr, $build:path, $call:ident, $then:expr) => {{
        let q: Query<'_> = $q;
        match $on.into() {
            On::Pool(Pool {
                backend: Backend::Sqlite(p),
            }) => $build(q.sql, sqlite_args(q.args)?).$call(p).await.map($then),
            On::Pool(Pool {
                backend: Backend::Postgres(p),
            }) => $build(&numbered(q.sql), postgres_args(q.args)?).$call(p).await.map($then),
            On::Tx(Tx {
                backend: TxBackend::Sqlite(t),
            }) => $build(q.sql, sqlite_args(q.args)?).$call(&mut **t).await.map($then),
            On::Tx(Tx {
                backend: TxBackend::Postgres(t),
            }) => $build(&numbered(q.sql), postgres_args(q.args)?).$call(&mut **t).await.map($then),
        }
    }};
}

impl<'q> Query<'q> {
    pub fn bind(mut self, value: impl Bind) -> Self {
        self.args.push(value.arg());
        self
    }

    pub(super) fn from_parts(sql: &'q str, args: Vec<Arg>) -> Self {
        Query { sql, args }
    }

    /// Runs an `INSERT … RETURNING id` (every store has it; SQLite's
    /// `last_insert_rowid` has no counterpart elsewhere): the new row's id.
    pub async fn returning_id<'c>(self, on: impl Into<On<'c>>) -> Result<i64, sqlx::Error> {
        QueryScalar::<i64>::from_query(self).fetch_one(on).await
    }

    /// [`returning_id`](Self::returning_id) of an insert that may write no
    /// row (`INSERT … SELECT … WHERE`).
    pub async fn optional_id<'c>(
        self,
        on: impl Into<On<'c>>,
    ) -> Result<Option<i64>, sqlx::Error> {
        QueryScalar::<i64>::from_query(self).fetch_optional(on).await
    }

    pub async fn execute<'c>(self, on: impl Into<On<'c>>) -> Result<Done, sqlx::Error> {
        run!(self, on, sqlx::query_with, execute, |r| Done {
            rows_affected: r.rows_affected()
        })
    }
}

/// `bind` and the three `fetch_*` methods of a query whose rows decode
/// through `$build` (sqlx's `query_as_with` or `query_scalar_with`).
macro_rules! fetching {
    ($query:ident, $bound:ident, $build:path, $marker:ident) => {
        impl<'q, T: $bound> $query<'q, T> {
            pub(super) fn from_query(q: Query<'q>) -> Self {
                $query {
                    q,
                    $marker: PhantomData,
                }
            }

            pub fn bind(mut self, value: impl Bind) -> Self {
                self.q = self.q.bind(value);
                self
            }

            pub async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> Result<Vec<T>, sqlx::Error> {
                run!(self.q, on, $build, fetch_all)
            }

            pub async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> Result<T, sqlx::Error> {
                run!(self.q, on, $build, fetch_one)
            }

            pub async fn fetch_optional<'c>(
                self,
                on: impl Into<On<'c>>,
            ) -> Result<Option<T>, sqlx::Error> {
                run!(self.q, on, $build, fetch_optional)
            }
        }
    };
}

fetching!(QueryAs, Row, sqlx::query_as_with, _row);
fetching!(QueryScalar, Value, sqlx::query_scalar_with, _value);

/// The binds as PostgreSQL's driver takes them: each `NULL` with its
/// type, since the server types every parameter.
fn postgres_args(args: Vec<Arg>) -> Result<PgArguments, sqlx::Error> {
    let mut out = PgArguments::default();
    for a in args {
        let added = match a {
            Arg::Null(kind) => match kind {
                Kind::Int => out.add(None::<i64>),
                Kind::Real => out.add(None::<f64>),
                Kind::Bool => out.add(None::<bool>),
                Kind::Text => out.add(None::<String>),
                Kind::Bytes => out.add(None::<Vec<u8>>),
                Kind::Time => out.add(None::<DateTime<Utc>>),
            },
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            Arg::Time(v) => out.add(v),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// The binds as SQLite's driver takes them.
fn sqlite_args<'q>(args: Vec<Arg>) -> Result<SqliteArguments<'q>, sqlx::Error> {
    let mut out = SqliteArguments::default();
    for a in args {
        let added = match a {
            Arg::Null(kind) => match kind {
                Kind::Int => out.add(None::<i64>),
                Kind::Real => out.add(None::<f64>),
                Kind::Bool => out.add(None::<bool>),
                Kind::Text => out.add(None::<String>),
                Kind::Bytes => out.add(None::<Vec<u8>>),
                Kind::Time => out.add(None::<DateTime<Utc>>),
            },
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            Arg::Time(v) => out.add(v),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn binds_round_trip_with_their_nulls_typed(pool: Pool) {
        // Microseconds: what both stores keep of a time.
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let row: (i64, Option<i64>, String, Option<String>, bool, DateTime<Utc>, f64) =
            query_as("SELECT ?, ?, ?, ?, ?, ?, ?")
                .bind(7_i64)
                .bind(None::<i64>)
                .bind("seven")
                .bind(&None::<String>)
                .bind(true)
                .bind(now)
                .bind(0.5_f64)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(row, (7, None, "seven".into(), None, true, now, 0.5));
        // Numbered placeholders name the same value twice.
        let twice: (i64, i64) = query_as("SELECT ?1, ?1 + 1")
            .bind(41_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(twice, (41, 42));
    }

    async fn a_transaction_sees_its_own_writes_and_rolls_back_unless_committed(pool: Pool) {
        query("CREATE TABLE t (v BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        {
            let mut tx = crate::store::begin_write(&pool).await.unwrap();
            let done = query("INSERT INTO t (v) VALUES (?)")
                .bind(1_i64)
                .execute(&mut tx)
                .await
                .unwrap();
            assert_eq!(done.rows_affected(), 1);
            let n: i64 = query_scalar("SELECT COUNT(*) FROM t")
                .fetch_one(&mut tx)
                .await
                .unwrap();
            assert_eq!(n, 1);
            // Dropped without commit.
        }
        let n: i64 = query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
        let mut tx = crate::store::begin_write(&pool).await.unwrap();
        let id: Option<i64> = query("INSERT INTO t (v) SELECT ? WHERE ? RETURNING v")
            .bind(5_i64)
            .bind(false)
            .optional_id(&mut tx)
            .await
            .unwrap();
        assert_eq!(id, None);
        let id = query("INSERT INTO t (v) VALUES (?) RETURNING v")
            .bind(6_i64)
            .returning_id(&mut tx)
            .await
            .unwrap();
        assert_eq!(id, 6);
        tx.commit().await.unwrap();
        let all: Vec<i64> = query_scalar("SELECT v FROM t")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(all, [6]);
    }

    /// Two writing transactions on PostgreSQL run one after the other, as
    /// on SQLite: the second waits for the first's commit.
    async fn writing_transactions_take_turns(pool: Pool) {
        if pool.dialect() == crate::store::Dialect::Sqlite {
            // One connection in memory: SQLite's own lock is what
            // `begin_write` takes there (tested by the engine's tests).
            return;
        }
        let first = crate::store::begin_write(&pool).await.unwrap();
        let p2 = pool.clone();
        let second = tokio::spawn(async move {
            let t = std::time::Instant::now();
            let tx = crate::store::begin_write(&p2).await.unwrap();
            tx.commit().await.unwrap();
            t.elapsed()
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second writer did not wait");
        first.commit().await.unwrap();
        let waited = second.await.unwrap();
        assert!(waited >= std::time::Duration::from_millis(250), "{waited:?}");
    }

    crate::store::testing::on_both_stores!(
        binds_round_trip_with_their_nulls_typed,
        a_transaction_sees_its_own_writes_and_rolls_back_unless_committed,
        writing_transactions_take_turns,
    );
}
