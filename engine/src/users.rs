//! Console users. The password hash stays inside this module and `auth`; what
//! leaves the engine is `model::SessionUser`.

use crate::auth::{self, PasswordHash};
use crate::error::{Error, Result};
use crate::store::Pool;
use model::{Role, SessionUser};

#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
}

impl User {
    pub fn to_session_user(&self) -> SessionUser {
        SessionUser {
            id: self.id,
            username: self.username.clone(),
            role: self.role,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<User> {
        Ok(User {
            id: r.id,
            username: r.username,
            role: r
                .role
                .parse()
                .map_err(|e| Error::Internal(format!("{e}")))?,
            disabled: r.disabled,
        })
    }
}

/// Usernames are short and boring on purpose: they show up in history and logs.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "username must be 1-64 characters: letters, digits, '_', '-', '.'".into(),
        ))
    }
}

pub async fn create(pool: &Pool, username: &str, password: &str, role: Role) -> Result<User> {
    validate_username(username)?;
    auth::validate_new_password(password)?;
    let hash = auth::hash_password(password.to_string()).await?;
    let res = sqlx::query(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(username)
    .bind(hash.as_str())
    .bind(role.as_str())
    .bind(crate::now())
    .execute(pool)
    .await;
    match res {
        Ok(r) => Ok(User {
            id: r.last_insert_rowid(),
            username: username.to_string(),
            role,
            disabled: false,
        }),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(Error::AlreadyExists(format!("user {username:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn find(pool: &Pool, id: i64) -> Result<Option<User>> {
    sqlx::query_as::<_, UserRow>("SELECT id, username, role, disabled FROM users WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(User::try_from)
        .transpose()
}

pub async fn count(pool: &Pool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

/// The stored hash for `username`, if such an enabled user exists.
pub(crate) async fn credentials(
    pool: &Pool,
    username: &str,
) -> Result<Option<(User, PasswordHash)>> {
    let row: Option<(i64, String, String, bool, String)> = sqlx::query_as(
        "SELECT id, username, role, disabled, password_hash FROM users WHERE username = ?",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(|(id, username, role, disabled, hash)| {
        let user = User::try_from(UserRow {
            id,
            username,
            role,
            disabled,
        })?;
        Ok((user, PasswordHash::from_stored(hash)))
    })
    .transpose()
}
