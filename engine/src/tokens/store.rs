//! The `api_tokens` table: free functions over the pool, like the rest of
//! the store.

use crate::error::{parse_stored, Error, Result};
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{TokenKind, TokenView};

/// One row, with the names of its owner and maker joined in.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub(crate) id: i64,
    pub(crate) prefix: String,
    pub(crate) secret_sha256: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) owner_id: i64,
    pub(crate) owner: String,
    pub(crate) role: String,
    pub(crate) environments: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) created_by: String,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) last_used_at: Option<DateTime<Utc>>,
    pub(crate) last_used_ip: Option<String>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT t.id, t.prefix, t.secret_sha256, t.name, t.kind, t.owner_id, \
     o.username AS owner, t.role, t.environments, t.created_at, c.username AS created_by, \
     t.expires_at, t.last_used_at, t.last_used_ip, t.revoked_at \
     FROM api_tokens t JOIN users o ON o.id = t.owner_id JOIN users c ON c.id = t.created_by";

impl TokenRow {
    pub(crate) fn environments(&self) -> Result<Option<Vec<String>>> {
        self.environments
            .as_deref()
            .map(|j| {
                serde_json::from_str(j)
                    .map_err(|e| Error::Internal(format!("stored token environments: {e}")))
            })
            .transpose()
    }

    pub(crate) fn view(&self) -> Result<TokenView> {
        let at = |t: &Option<DateTime<Utc>>| t.map(crate::audit::timestamp);
        Ok(TokenView {
            id: self.id,
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            kind: parse_stored::<TokenKind>(&self.kind)?,
            owner: self.owner.clone(),
            role: parse_stored(&self.role)?,
            environments: self.environments()?,
            created_at: crate::audit::timestamp(self.created_at),
            created_by: self.created_by.clone(),
            expires_at: at(&self.expires_at),
            last_used_at: at(&self.last_used_at),
            last_used_ip: self.last_used_ip.clone(),
            revoked_at: at(&self.revoked_at),
        })
    }
}

/// What a new row holds besides its times.
pub(crate) struct Insert<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) secret_sha256: &'a str,
    pub(crate) name: &'a str,
    pub(crate) kind: TokenKind,
    pub(crate) owner_id: i64,
    pub(crate) role: model::Role,
    pub(crate) environments: Option<&'a [String]>,
    pub(crate) created_by: i64,
    pub(crate) expires_at: DateTime<Utc>,
}

pub(crate) async fn insert(pool: &Pool, t: &Insert<'_>) -> Result<i64> {
    let environments = t
        .environments
        .map(|e| serde_json::to_string(e).unwrap_or_default());
    let res = crate::store::query(
        "INSERT INTO api_tokens (prefix, secret_sha256, name, kind, owner_id, role, \
         environments, created_at, created_by, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(t.prefix)
    .bind(t.secret_sha256)
    .bind(t.name)
    .bind(t.kind.as_str())
    .bind(t.owner_id)
    .bind(t.role.as_str())
    .bind(environments)
    .bind(crate::now())
    .bind(t.created_by)
    .bind(t.expires_at)
    .returning_id(pool)
    .await;
    match res {
        Ok(id) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::AlreadyExists(
            format!("a live token named {:?}", t.name),
        )),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn by_prefix(pool: &Pool, prefix: &str) -> Result<Option<TokenRow>> {
    Ok(
        crate::store::query_as::<TokenRow>(&format!("{SELECT} WHERE t.prefix = ?"))
            .bind(prefix)
            .fetch_optional(pool)
            .await?,
    )
}

pub(crate) async fn by_id(pool: &Pool, id: i64) -> Result<Option<TokenRow>> {
    Ok(
        crate::store::query_as::<TokenRow>(&format!("{SELECT} WHERE t.id = ?"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Every token, or one owner's, newest first.
pub(crate) async fn list(pool: &Pool, owner_id: Option<i64>) -> Result<Vec<TokenRow>> {
    Ok(crate::store::query_as::<TokenRow>(&format!(
        "{SELECT} WHERE (?1 IS NULL OR t.owner_id = ?1) ORDER BY t.id DESC"
    ))
    .bind(owner_id)
    .fetch_all(pool)
    .await?)
}

/// Marks a live token revoked; `false` if it was revoked already.
pub(crate) async fn revoke(pool: &Pool, id: i64, by: Option<i64>) -> Result<bool> {
    let r = crate::store::query(
        "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(crate::now())
    .bind(by)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(crate) async fn touch(pool: &Pool, id: i64, ip: Option<&str>) -> Result<()> {
    crate::store::query("UPDATE api_tokens SET last_used_at = ?, last_used_ip = ? WHERE id = ?")
        .bind(crate::now())
        .bind(ip)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
