//! What a slot's process environment holds besides `PORT` and
//! `APP_VERSION`: an environment's plain variables and its secrets, stored
//! here (secrets encrypted by `cipher`) and handed to the runtime at start
//! as a `runtime::SlotEnv`, whose `Debug` shows names only.

pub mod cipher;

use crate::error::{Error, Result};
use crate::store::Pool;
use cipher::{SecretBox, Sealed};
use crate::runtime::SlotEnv;
use model::{SecretView, SlotEnvView, VariableView};

/// Longest name and value accepted.
const MAX_NAME: usize = 128;
const MAX_VALUE: usize = 32 * 1024;

/// Names the runtime sets itself, or keeps for Switchyard.
const RESERVED: [&str; 2] = ["PORT", "APP_VERSION"];

/// Name endings that say "this is a credential": such a name set as a plain
/// variable (shown on pages, in exports and the audit log) is refused.
const SECRET_LIKE: [&str; 8] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "PRIVATE_KEY",
    "CREDENTIALS",
    "_PASS",
];

/// A variable or secret name: a shell identifier, not one the runtime sets.
pub fn validate_name(name: &str) -> Result<()> {
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start
        || name.len() > MAX_NAME
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::invalid(
            "name",
            format!(
                "a variable name is a letter or _ followed by letters, digits or _ \
                 (at most {MAX_NAME}), like DATABASE_URL"
            ),
        ));
    }
    if RESERVED.contains(&name) || name.starts_with("SWITCHYARD_") {
        return Err(Error::invalid(
            "name",
            format!("{name} is set by Switchyard itself (PORT, APP_VERSION, SWITCHYARD_*)"),
        ));
    }
    Ok(())
}

/// A value: at most 32 KiB, no NUL (a process environment cannot hold one).
pub fn validate_value(field: &'static str, value: &str) -> Result<()> {
    if value.len() > MAX_VALUE {
        return Err(Error::invalid(field, format!("at most {MAX_VALUE} bytes")));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "a value cannot hold a NUL character"));
    }
    Ok(())
}

/// Refuses a plain variable whose name says it is a credential.
pub fn refuse_secret_like(name: &str) -> Result<()> {
    let upper = name.to_ascii_uppercase();
    match SECRET_LIKE.iter().find(|s| upper.ends_with(*s)) {
        Some(_) => Err(Error::invalid(
            "name",
            format!(
                "{name} looks like a credential: set it as a secret, which is encrypted \
                 and never shown, exported or audited"
            ),
        )),
        None => Ok(()),
    }
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    name: String,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl SecretRow {
    fn sealed(self) -> (String, Sealed) {
        (
            self.name,
            Sealed {
                key_id: self.key_id,
                nonce: self.nonce,
                ciphertext: self.ciphertext,
            },
        )
    }
}

/// Names and values of the variables, names and times of the secrets.
pub async fn view(pool: &Pool, env_id: i64) -> Result<SlotEnvView> {
    let variables = crate::store::query_as::<(String, String, String, String)>(
        "SELECT name, value, updated_at, updated_by FROM environment_variables \
         WHERE environment_id = ? ORDER BY name",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(name, value, updated_at, updated_by)| VariableView {
        name,
        value,
        updated_at,
        updated_by,
    })
    .collect();
    let secrets = crate::store::query_as::<(String, String, String)>(
        "SELECT name, updated_at, updated_by FROM environment_secrets \
         WHERE environment_id = ? ORDER BY name",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(name, updated_at, updated_by)| SecretView {
        name,
        updated_at,
        updated_by,
    })
    .collect();
    Ok(SlotEnvView { variables, secrets })
}

/// The value a variable had, `None` if unset.
pub async fn variable(pool: &Pool, env_id: i64, name: &str) -> Result<Option<String>> {
    Ok(crate::store::query_scalar(
        "SELECT value FROM environment_variables WHERE environment_id = ? AND name = ?",
    )
    .bind(env_id)
    .bind(name)
    .fetch_optional(pool)
    .await?)
}

/// Whether a secret of that name is set.
pub async fn has_secret(pool: &Pool, env_id: i64, name: &str) -> Result<bool> {
    Ok(crate::store::query_scalar::<i64>(
        "SELECT COUNT(*) FROM environment_secrets WHERE environment_id = ? AND name = ?",
    )
    .bind(env_id)
    .bind(name)
    .fetch_one(pool)
    .await?
        > 0)
}

/// Sets a variable (or, with `sealed`, a secret) in one transaction that
/// also removes the name from the other table: a name is one or the other.
pub async fn set(
    pool: &Pool,
    env_id: i64,
    name: &str,
    value: Setting<'_>,
    by: &str,
) -> Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    set_in(&mut tx, env_id, name, value, by).await?;
    tx.commit().await?;
    Ok(())
}

/// [`set`] inside the caller's transaction (a secret given with a new
/// environment is written with it).
pub async fn set_in(
    conn: &mut crate::store::Tx,
    env_id: i64,
    name: &str,
    value: Setting<'_>,
    by: &str,
) -> Result<()> {
    let at = crate::audit::timestamp(crate::now());
    let other = match value {
        Setting::Plain(_) => "environment_secrets",
        Setting::Secret(_) => "environment_variables",
    };
    crate::store::query(&format!(
        "DELETE FROM {other} WHERE environment_id = ? AND name = ?"
    ))
    .bind(env_id)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    match value {
        Setting::Plain(v) => {
            crate::store::query(
                "INSERT INTO environment_variables (environment_id, name, value, updated_at, updated_by) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (environment_id, name) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(env_id)
            .bind(name)
            .bind(v)
            .bind(&at)
            .bind(by)
            .execute(&mut *conn)
            .await?;
        }
        Setting::Secret(s) => {
            crate::store::query(
                "INSERT INTO environment_secrets (environment_id, name, key_id, nonce, ciphertext, updated_at, updated_by) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (environment_id, name) DO UPDATE SET \
                 key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(env_id)
            .bind(name)
            .bind(&s.key_id)
            .bind(&s.nonce)
            .bind(&s.ciphertext)
            .bind(&at)
            .bind(by)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// What [`set`] stores.
pub enum Setting<'a> {
    Plain(&'a str),
    Secret(Sealed),
}

/// Removes a variable or secret; whether there was one.
pub async fn unset(pool: &Pool, env_id: i64, name: &str) -> Result<bool> {
    let mut tx = crate::store::begin_write(pool).await?;
    let mut removed = 0;
    for table in [
        "environment_variables",
        "environment_secrets",
        "environment_declared_secrets",
    ] {
        removed += crate::store::query(&format!(
            "DELETE FROM {table} WHERE environment_id = ? AND name = ?"
        ))
        .bind(env_id)
        .bind(name)
        .execute(&mut tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(removed > 0)
}

/// One decrypted secret of `env`, `None` when it is not set.
pub async fn secret_value(
    pool: &Pool,
    secrets: Option<&SecretBox>,
    env_id: i64,
    env_name: &str,
    name: &str,
) -> Result<Option<String>> {
    let row: Option<SecretRow> = crate::store::query_as(
        "SELECT name, key_id, nonce, ciphertext FROM environment_secrets \
         WHERE environment_id = ? AND name = ?",
    )
    .bind(env_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let secrets = secrets.ok_or_else(|| {
        Error::Internal(format!(
            "environment {env_name} has secrets but this console holds no secrets key"
        ))
    })?;
    let (name, sealed) = row.sealed();
    secrets.open_value(env_name, &name, &sealed).map(Some)
}

/// The decrypted secrets of `env` (to mask them in what a slot printed).
pub async fn secret_values(
    pool: &Pool,
    secrets: Option<&SecretBox>,
    env_id: i64,
    env_name: &str,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<SecretRow> = crate::store::query_as(
        "SELECT name, key_id, nonce, ciphertext FROM environment_secrets \
         WHERE environment_id = ? ORDER BY name",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let secrets = secrets.ok_or_else(|| {
        Error::Internal(format!(
            "environment {env_name} has secrets but this console holds no secrets key"
        ))
    })?;
    rows.into_iter()
        .map(|row| {
            let (name, sealed) = row.sealed();
            let value = secrets.open_value(env_name, &name, &sealed)?;
            Ok((name, value))
        })
        .collect()
}

/// Everything a slot of `env` starts with: variables, then secrets
/// decrypted (a secret wins over a variable of the same name, which the
/// store does not allow anyway).
pub async fn for_slot(
    pool: &Pool,
    secrets: Option<&SecretBox>,
    env_id: i64,
    env_name: &str,
) -> Result<SlotEnv> {
    let mut vars: Vec<(String, String)> = crate::store::query_as(
        "SELECT name, value FROM environment_variables WHERE environment_id = ? ORDER BY name",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?;
    for (name, value) in secret_values(pool, secrets, env_id, env_name).await? {
        vars.retain(|(n, _)| *n != name);
        vars.push((name, value));
    }
    Ok(SlotEnv(vars))
}

/// Re-encrypts every secret with `to` in one transaction
/// (`switchyard secrets rotate-key`); how many.
pub async fn reencrypt_all(pool: &Pool, from: &SecretBox, to: &SecretBox) -> Result<u64> {
    let mut tx = crate::store::begin_write(pool).await?;
    #[derive(sqlx::FromRow)]
    struct Stored {
        environment_id: i64,
        environment: String,
        #[sqlx(flatten)]
        secret: SecretRow,
    }
    let rows: Vec<Stored> = crate::store::query_as(
        "SELECT s.environment_id, e.name AS environment, s.name, s.key_id, s.nonce, s.ciphertext \
         FROM environment_secrets s JOIN environments e ON e.id = s.environment_id",
    )
    .fetch_all(&mut tx)
    .await?;
    let count = rows.len() as u64;
    for row in rows {
        let (name, sealed) = row.secret.sealed();
        let value = from.open_value(&row.environment, &name, &sealed)?;
        let s = to.seal(&row.environment, &name, &value)?;
        crate::store::query(
            "UPDATE environment_secrets SET key_id = ?, nonce = ?, ciphertext = ? \
             WHERE environment_id = ? AND name = ?",
        )
        .bind(&s.key_id)
        .bind(&s.nonce)
        .bind(&s.ciphertext)
        .bind(row.environment_id)
        .bind(&name)
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(count)
}

/// Makes `env_id`'s plain variables exactly `wanted` and drops every secret
/// not named in `keep_secrets`, inside the caller's transaction (an edit or
/// an apply). A variable whose value is unchanged keeps its "updated at/by".
/// Names are checked by the caller.
pub async fn write_declared(
    conn: &mut crate::store::Tx,
    env_id: i64,
    wanted: &std::collections::BTreeMap<String, String>,
    keep_secrets: &[String],
    by: &str,
) -> Result<()> {
    let at = crate::audit::timestamp(crate::now());
    let current: Vec<(String, String)> = crate::store::query_as(
        "SELECT name, value FROM environment_variables WHERE environment_id = ?",
    )
    .bind(env_id)
    .fetch_all(&mut *conn)
    .await?;
    for (name, value) in &current {
        if wanted.get(name) != Some(value) {
            crate::store::query("DELETE FROM environment_variables WHERE environment_id = ? AND name = ?")
                .bind(env_id)
                .bind(name)
                .execute(&mut *conn)
                .await?;
        }
    }
    for (name, value) in wanted {
        if current.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        crate::store::query(
            "INSERT INTO environment_variables (environment_id, name, value, updated_at, updated_by) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(env_id)
        .bind(name)
        .bind(value)
        .bind(&at)
        .bind(by)
        .execute(&mut *conn)
        .await?;
    }
    let secrets: Vec<String> =
        crate::store::query_scalar("SELECT name FROM environment_secrets WHERE environment_id = ?")
            .bind(env_id)
            .fetch_all(&mut *conn)
            .await?;
    for name in secrets.iter().filter(|n| !keep_secrets.contains(n)) {
        crate::store::query("DELETE FROM environment_secrets WHERE environment_id = ? AND name = ?")
            .bind(env_id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    // Declared names stay declared before their value is set (see
    // [`declared`]).
    crate::store::query("DELETE FROM environment_declared_secrets WHERE environment_id = ?")
        .bind(env_id)
        .execute(&mut *conn)
        .await?;
    for name in keep_secrets {
        crate::store::query("INSERT INTO environment_declared_secrets (environment_id, name) VALUES (?, ?)")
            .bind(env_id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The secrets `env_id`'s configuration declares, set or not: a file may
/// name one whose value an admin sets later (`switchyard env secret`), and
/// its export must still name it.
pub async fn declared(pool: &Pool, env_id: i64) -> Result<Vec<String>> {
    Ok(crate::store::query_scalar(
        "SELECT name FROM environment_declared_secrets WHERE environment_id = ? \
         UNION SELECT name FROM environment_secrets WHERE environment_id = ? ORDER BY name",
    )
    .bind(env_id)
    .bind(env_id)
    .fetch_all(pool)
    .await?)
}
