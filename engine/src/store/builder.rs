//! A query put together from optional parts (the audit log's filters),
//! its values bound as in [`query`](super::query).

use super::query::{Arg, Bind, Query, QueryAs, Row};

/// SQL text with `?` where each pushed value goes.
pub struct QueryBuilder {
    sql: String,
    args: Vec<Arg>,
}

impl QueryBuilder {
    pub fn new(start: &str) -> Self {
        QueryBuilder {
            sql: start.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (never a value: those go through [`push_bind`](Self::push_bind)).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn push_bind(&mut self, value: impl Bind) -> &mut Self {
        self.sql.push('?');
        self.args.push(value.arg());
        self
    }

    /// The query, its rows decoded as `T`.
    pub fn build_query_as<T: Row>(&mut self) -> QueryAs<'_, T> {
        let args = std::mem::take(&mut self.args);
        QueryAs::from_query(Query::from_parts(&self.sql, args))
    }
}
