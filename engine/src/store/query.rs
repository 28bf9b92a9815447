//! Queries written once for every store.
//!
//! The engine's SQL goes through [`query`], [`query_as`] and
//! [`query_scalar`] rather than sqlx's functions of the same names: the
//! values bound to a query are kept as [`Arg`]s (a closed set of types the
//! stores all understand, each `NULL` with its type) and handed to the
//! store's own driver only when the query runs, on a [`Pool`] or inside a
//! [`Tx`]. So a query's text and its binds do not name a database, and a
//! second store is a second arm in [`run`] rather than a second copy of
//! every query (docs/ARCHITECTURE.md, "The store").
//!
//! Rows decode with sqlx's `FromRow` (derived row structs and tuples), as
//! before.

use super::{Pool, Tx};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteArguments, SqliteQueryResult, SqliteRow};
use sqlx::{Arguments, Sqlite, SqliteConnection, SqlitePool};
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

impl From<SqliteQueryResult> for Done {
    fn from(r: SqliteQueryResult) -> Self {
        Done {
            rows_affected: r.rows_affected(),
        }
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

/// Rows a store can decode into `T`.
pub trait Row: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin {}

/// Values a store can decode into `T`.
pub trait Value: sqlx::Type<Sqlite> + for<'r> sqlx::Decode<'r, Sqlite> + Send + Unpin {}
impl<T> Value for T where T: sqlx::Type<Sqlite> + for<'r> sqlx::Decode<'r, Sqlite> + Send + Unpin {}

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
        let args = sqlite_args(self.args)?;
        let q = sqlx::query_with(self.sql, args);
        Ok(match on.into() {
            On::Pool(p) => q.execute(p.sqlite()).await?,
            On::Tx(t) => q.execute(t.sqlite()).await?,
        }
        .into())
    }
}

/// Runs `$call` (a sqlx `fetch_*` method) on a sqlx query built from `$q`
/// with `$build`, wherever `$on` says.
macro_rules! run {
    ($q:expr, $on:expr, $build:path, $call:ident) => {{
        let q = $q;
        let args = sqlite_args(q.args)?;
        let built = $build(q.sql, args);
        match $on.into() {
            On::Pool(p) => built.$call(p.sqlite()).await,
            On::Tx(t) => built.$call(t.sqlite()).await,
        }
    }};
}

impl<'q, T: Row> QueryAs<'q, T> {
    pub(super) fn from_query(q: Query<'q>) -> Self {
        QueryAs {
            q,
            _row: PhantomData,
        }
    }

    pub fn bind(mut self, value: impl Bind) -> Self {
        self.q = self.q.bind(value);
        self
    }

    pub async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> Result<Vec<T>, sqlx::Error> {
        run!(self.q, on, sqlx::query_as_with, fetch_all)
    }

    pub async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> Result<T, sqlx::Error> {
        run!(self.q, on, sqlx::query_as_with, fetch_one)
    }

    pub async fn fetch_optional<'c>(
        self,
        on: impl Into<On<'c>>,
    ) -> Result<Option<T>, sqlx::Error> {
        run!(self.q, on, sqlx::query_as_with, fetch_optional)
    }
}

impl<'q, T: Value> QueryScalar<'q, T> {
    fn from_query(q: Query<'q>) -> Self {
        QueryScalar {
            q,
            _value: PhantomData,
        }
    }

    pub fn bind(mut self, value: impl Bind) -> Self {
        self.q = self.q.bind(value);
        self
    }

    pub async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> Result<Vec<T>, sqlx::Error> {
        run!(self.q, on, sqlx::query_scalar_with, fetch_all)
    }

    pub async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> Result<T, sqlx::Error> {
        run!(self.q, on, sqlx::query_scalar_with, fetch_one)
    }

    pub async fn fetch_optional<'c>(
        self,
        on: impl Into<On<'c>>,
    ) -> Result<Option<T>, sqlx::Error> {
        run!(self.q, on, sqlx::query_scalar_with, fetch_optional)
    }
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

impl Pool {
    fn sqlite(&self) -> &SqlitePool {
        &self.sqlite
    }
}

impl Tx {
    fn sqlite(&mut self) -> &mut SqliteConnection {
        &mut self.sqlite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_round_trip_with_their_nulls_typed() {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        let now = chrono::Utc::now();
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
    }

    #[tokio::test]
    async fn a_transaction_sees_its_own_writes_and_rolls_back_unless_committed() {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        query("CREATE TABLE t (v INTEGER)")
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
    }
}
