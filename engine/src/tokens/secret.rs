//! The token string: `sy_<prefix>_<secret>`. The prefix (8 lowercase
//! letters and digits) finds the row and is safe to show; the secret is 32
//! random bytes in hex (256 bits), stored only as its SHA-256.

use crate::error::{Error, Result};
use rand::Rng;
use sha2::{Digest, Sha256};

const PREFIX_LEN: usize = 8;
const SECRET_BYTES: usize = 32;
const PREFIX_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A token as presented: its prefix and the hash of its secret.
pub(crate) struct Presented {
    pub(crate) prefix: String,
    pub(crate) secret_sha256: String,
}

/// A fresh token: the whole string (shown once) and what is stored.
pub(crate) fn generate() -> (String, Presented) {
    let mut rng = rand::rngs::OsRng;
    let prefix: String = (0..PREFIX_LEN)
        .map(|_| PREFIX_ALPHABET[rng.gen_range(0..PREFIX_ALPHABET.len())] as char)
        .collect();
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes);
    let secret = hex::encode(bytes);
    let full = format!("sy_{prefix}_{secret}");
    let stored = Presented {
        prefix,
        secret_sha256: hash(&secret),
    };
    (full, stored)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Reads a presented token. Anything not shaped like one of ours is
/// refused before the database is asked.
pub(crate) fn parse(token: &str) -> Result<Presented> {
    let malformed = || Error::BadToken("malformed token");
    let rest = token.strip_prefix("sy_").ok_or_else(malformed)?;
    let (prefix, secret) = rest.split_once('_').ok_or_else(malformed)?;
    let prefix_ok =
        prefix.len() == PREFIX_LEN && prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b));
    let secret_ok = secret.len() == SECRET_BYTES * 2
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !prefix_ok || !secret_ok {
        return Err(malformed());
    }
    Ok(Presented {
        prefix: prefix.to_string(),
        secret_sha256: hash(secret),
    })
}

/// Compares two hashes without stopping at the first difference, so the
/// time taken says nothing about how much of a guess was right.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_to_what_is_stored() {
        let (full, stored) = generate();
        assert!(full.starts_with("sy_"));
        assert_eq!(full.len(), 3 + PREFIX_LEN + 1 + SECRET_BYTES * 2);
        let back = parse(&full).unwrap();
        assert_eq!(back.prefix, stored.prefix);
        assert!(same_hash(&back.secret_sha256, &stored.secret_sha256));
        assert!(
            !full.contains(&stored.secret_sha256),
            "only the hash is kept"
        );
    }

    #[test]
    fn two_tokens_differ() {
        let (a, _) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        let (good, _) = generate();
        let cases = [
            String::new(),
            "Bearer x".into(),
            good.replacen("sy_", "xx_", 1),
            good[..good.len() - 1].to_string(),
            format!("{good}0"),
            good.to_uppercase(),
            good.replacen('_', "-", 2),
        ];
        for c in cases {
            assert!(
                matches!(parse(&c), Err(Error::BadToken("malformed token"))),
                "{c:?} was accepted"
            );
        }
    }

    #[test]
    fn same_hash_tells_any_difference() {
        assert!(same_hash("abcd", "abcd"));
        assert!(!same_hash("abcd", "abce"));
        assert!(!same_hash("abcd", "abc"));
    }
}
