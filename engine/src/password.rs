//! Passwords: the stored hash, new-password rules, hashing and checking.
//! argon2id with the crate's defaults (OWASP minimum: 19 MiB, t=2, p=1),
//! always on the blocking pool so a check never stalls the async workers.
//! Kept apart from sign-in (`auth`) and the users table (`users`), which both
//! use it, so that neither depends on the other for it.

use crate::error::{Error, Result};
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
        return Err(Error::invalid(
            "password",
            format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(Error::invalid("password", "password is too long"));
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

pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"switchyard-dummy-password", &salt)
            .expect("argon2 with default parameters cannot fail")
            .to_string()
    })
}

pub(crate) fn verify(password: &str, phc: &str) -> bool {
    match argon2::PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}
