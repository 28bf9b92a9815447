//! Password authentication. argon2id with the crate's defaults (OWASP minimum:
//! 19 MiB, t=2, p=1), always on the blocking pool so a login never stalls the
//! async workers. Unknown users are checked against a dummy hash so that both
//! failures take the same time and give the same error.

use crate::error::{Error, Result};
use crate::store::Pool;
use crate::users::{self, User};
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// A stored argon2id PHC string. Deliberately not `Serialize` and with a
/// redacting `Debug`, so it cannot end up in a response or a log line.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub(crate) fn from_stored(s: String) -> Self {
        PasswordHash(s)
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

pub const MIN_PASSWORD_LEN: usize = 10;

/// A random 20-character password from an alphabet without look-alikes, for
/// accounts created or reset without one: shown once, never stored in clear.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn validate_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(Error::InvalidInput("password is too long".into()));
    }
    Ok(())
}

pub async fn hash_password(password: String) -> Result<PasswordHash> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|e| Error::Internal(format!("hashing password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"switchyard-dummy-password", &salt)
            .expect("argon2 with default parameters cannot fail")
            .to_string()
    })
}

fn verify(password: &str, phc: &str) -> bool {
    match argon2::PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a username and password. Every failure — unknown user, wrong
/// password, disabled account — is the same `BadCredentials` after the same
/// amount of hashing work.
pub async fn login(pool: &Pool, username: &str, password: &str) -> Result<User> {
    if username.is_empty() || password.is_empty() || password.len() > 1024 {
        // Still spend the hashing time: an empty field is not a shortcut.
        let pw = password.chars().take(1024).collect::<String>();
        let _ = tokio::task::spawn_blocking(move || verify(&pw, dummy_hash())).await;
        return Err(Error::BadCredentials);
    }
    let found = users::credentials(pool, username).await?;
    let (user, phc) = match found {
        Some((user, hash)) => (Some(user), hash.as_str().to_string()),
        None => (None, dummy_hash().to_string()),
    };
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify(&pw, &phc))
        .await
        .map_err(|e| Error::Internal(format!("verify task: {e}")))?;
    match user {
        Some(u) if ok && !u.disabled => Ok(u),
        _ => Err(Error::BadCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Role;

    #[tokio::test]
    async fn login_accepts_the_right_password_only() {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        users::create(&pool, "alice", "correct horse battery", Role::Deployer)
            .await
            .unwrap();
        let u = login(&pool, "alice", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(u.username, "alice");
        assert_eq!(u.role, Role::Deployer);

        let wrong = login(&pool, "alice", "wrong password!!").await.unwrap_err();
        let unknown = login(&pool, "mallory", "correct horse battery")
            .await
            .unwrap_err();
        // Same message for both, so the form cannot be used to enumerate users.
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert!(matches!(wrong, Error::BadCredentials));
        assert!(matches!(
            login(&pool, "", "").await.unwrap_err(),
            Error::BadCredentials
        ));
    }

    #[tokio::test]
    async fn stored_hash_is_argon2id_not_the_password() {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        users::create(&pool, "bob", "a long enough password", Role::Viewer)
            .await
            .unwrap();
        let (_, hash) = users::credentials(&pool, "bob").await.unwrap().unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"), "{}", hash.as_str());
        assert!(!hash.as_str().contains("a long enough password"));
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    }

    #[tokio::test]
    async fn bad_new_users_are_refused() {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        assert!(matches!(
            users::create(&pool, "carol", "short", Role::Viewer).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            users::create(&pool, "bad name", "long enough pw", Role::Viewer).await,
            Err(Error::InvalidInput(_))
        ));
        users::create(&pool, "dave", "long enough pw", Role::Viewer)
            .await
            .unwrap();
        assert!(matches!(
            users::create(&pool, "dave", "long enough pw", Role::Admin).await,
            Err(Error::AlreadyExists(_))
        ));
    }
}
