//! Console users. The password hash stays inside this module, `password`
//! and `auth`; what leaves the engine is `model::SessionUser`.

use crate::error::{parse_stored, Error, Result};
use crate::password::{hash_password, validate_new_password, PasswordHash};
use crate::store::Pool;
use model::{Role, SessionUser, UserView};

#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    /// Sessions from before a bump are void (disable, password reset).
    pub auth_epoch: i64,
    /// Sessions from before a bump get a new id under the new role.
    pub role_epoch: i64,
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
    auth_epoch: i64,
    role_epoch: i64,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<User> {
        Ok(User {
            id: r.id,
            username: r.username,
            role: parse_stored(&r.role)?,
            disabled: r.disabled,
            auth_epoch: r.auth_epoch,
            role_epoch: r.role_epoch,
        })
    }
}

impl User {
    pub fn to_view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            role: self.role,
            disabled: self.disabled,
        }
    }
}

const USER_COLUMNS: &str = "id, username, role, disabled, auth_epoch, role_epoch";

/// Usernames are short and boring on purpose: they show up in history and logs.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "username",
            "username must be 1-64 characters: letters, digits, '_', '-', '.'",
        ))
    }
}

pub async fn create(pool: &Pool, username: &str, password: &str, role: Role) -> Result<User> {
    validate_username(username)?;
    validate_new_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    let res = crate::store::query(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(username)
    .bind(hash.as_str())
    .bind(role.as_str())
    .bind(crate::now())
    .returning_id(pool)
    .await;
    match res {
        Ok(id) => Ok(User {
            id,
            username: username.to_string(),
            role,
            disabled: false,
            auth_epoch: 0,
            role_epoch: 0,
        }),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(Error::AlreadyExists(format!("user {username:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn find(pool: &Pool, id: i64) -> Result<Option<User>> {
    crate::store::query_as::<UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(User::try_from)
        .transpose()
}

pub async fn find_by_name(pool: &Pool, username: &str) -> Result<Option<User>> {
    crate::store::query_as::<UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?
    .map(User::try_from)
    .transpose()
}

pub async fn count(pool: &Pool) -> Result<i64> {
    Ok(crate::store::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

/// The stored hash for `username`, if such an enabled user exists.
pub(crate) async fn credentials(
    pool: &Pool,
    username: &str,
) -> Result<Option<(User, PasswordHash)>> {
    let Some(user) = crate::store::query_as::<UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let hash: String = crate::store::query_scalar("SELECT password_hash FROM users WHERE id = ?")
        .bind(user.id)
        .fetch_one(pool)
        .await?;
    Ok(Some((
        User::try_from(user)?,
        PasswordHash::from_stored(hash),
    )))
}

pub async fn list(pool: &Pool) -> Result<Vec<User>> {
    crate::store::query_as::<UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY username"
    ))
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(User::try_from)
    .collect()
}

/// Enabled admins other than `except`: the console must always keep one.
pub async fn other_enabled_admins(pool: &Pool, except: i64) -> Result<i64> {
    Ok(crate::store::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = FALSE AND id != ?",
    )
    .bind(except)
    .fetch_one(pool)
    .await?)
}

pub async fn set_role(pool: &Pool, id: i64, role: Role) -> Result<()> {
    crate::store::query("UPDATE users SET role = ?, role_epoch = role_epoch + 1 WHERE id = ?")
        .bind(role.as_str())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_disabled(pool: &Pool, id: i64, disabled: bool) -> Result<()> {
    crate::store::query("UPDATE users SET disabled = ?, auth_epoch = auth_epoch + 1 WHERE id = ?")
        .bind(disabled)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_password(pool: &Pool, id: i64, password: &str) -> Result<()> {
    validate_new_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    crate::store::query("UPDATE users SET password_hash = ?, auth_epoch = auth_epoch + 1 WHERE id = ?")
        .bind(hash.as_str())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
