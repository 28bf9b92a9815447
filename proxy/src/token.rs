//! The shared secret that guards the admin API.

use std::fmt;
use std::path::{Path, PathBuf};

/// Read from a file (never a flag, so it does not show in `ps`); `Debug`
/// redacts it so it cannot leak into logs by accident.
#[derive(Clone)]
pub struct AdminToken(String);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read admin token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token file {path} is empty: put a shared secret in it")]
    Empty { path: PathBuf },
}

impl AdminToken {
    /// `None` for an empty (or all-whitespace) secret, which would let anyone in.
    pub fn new(secret: &str) -> Option<AdminToken> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| AdminToken(secret.to_string()))
    }

    /// Surrounding whitespace is dropped: `echo secret > file` adds a newline.
    pub fn from_file(path: &Path) -> Result<AdminToken, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AdminToken::new(&text).ok_or_else(|| TokenError::Empty {
            path: path.to_path_buf(),
        })
    }

    /// Constant-time comparison: the time taken depends on the lengths only,
    /// never on how many leading bytes of a guess are right.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = expected.len() ^ presented.len();
        for (i, &e) in expected.iter().enumerate() {
            let p = presented.get(i).copied().unwrap_or(0);
            diff |= usize::from(e ^ p);
        }
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_secret() {
        let t = AdminToken::new("s3cret\n").unwrap();
        assert!(t.matches(b"s3cret"));
        assert!(!t.matches(b"s3cre"));
        assert!(!t.matches(b"s3cret!"));
        assert!(!t.matches(b"S3cret"));
        assert!(!t.matches(b""));
    }

    #[test]
    fn empty_secret_is_refused_and_debug_is_redacted() {
        assert!(AdminToken::new(" \n").is_none());
        let t = AdminToken::new("hunter2").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = AdminToken::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(
            AdminToken::from_file(&empty),
            Err(TokenError::Empty { .. })
        ));
    }
}
