//! Sign-in: a username and password checked against the users table.
//! Unknown users are checked against a dummy hash so that both failures take
//! the same time and give the same error (hashing lives in `password`).

use crate::error::{Error, Result};
use crate::password::{dummy_hash, verify};
use crate::store::Pool;
use crate::users::{self, User};

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
            Err(Error::InvalidInput {
                field: "password",
                ..
            })
        ));
        assert!(matches!(
            users::create(&pool, "bad name", "long enough pw", Role::Viewer).await,
            Err(Error::InvalidInput {
                field: "username",
                ..
            })
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
