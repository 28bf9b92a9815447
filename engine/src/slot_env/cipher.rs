//! The key that encrypts environments' secrets at rest, and the encryption.
//!
//! XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`): a random 192-bit
//! nonce per value, so values need no counter, and the environment's and
//! the secret's names as associated data, so a row copied onto another
//! secret (or another environment) fails to decrypt instead of handing one
//! service another's credential. The key lives in `secrets.key` (mode 0600)
//! in the data directory, never in the database: a copy of the database
//! alone reveals no secret.
//!
//! Each stored value names its key by an id (the first 16 hex digits of the
//! key's SHA-256), so a rotation that was cut short leaves values readable:
//! the pending key (`secrets.key.new`) is loaded beside the current one.

use crate::error::{Error, Result};
use crate::key_file;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "secrets.key";
const DOMAIN: &str = "switchyard-secret/1";
/// How a key file that does not parse is named in the error.
const WHAT: &str = "a secrets key";

/// A value as stored: which key, the nonce, the ciphertext (with its tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn from_bytes(bytes: &[u8; 32]) -> Key {
        Key {
            id: hex::encode(&Sha256::digest(bytes)[..8]),
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

/// The data directory's secrets key (and a pending one mid-rotation).
#[derive(Clone)]
pub struct SecretBox {
    dir: PathBuf,
    current: Key,
    pending: Option<Key>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: only which one.
        f.debug_struct("SecretBox")
            .field("key_id", &self.current.id)
            .finish()
    }
}

fn aad<'a>(environment: &str, name: &str, buf: &'a mut String) -> &'a [u8] {
    *buf = serde_json::json!([DOMAIN, environment, name]).to_string();
    buf.as_bytes()
}

impl SecretBox {
    /// The key of `data_dir`, created (0600) if there is none yet.
    pub fn open(data_dir: &Path) -> Result<SecretBox> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            key_file::write(&path, &rand::random())?;
        }
        let pending_path = data_dir.join(format!("{KEY_FILE}.new"));
        Ok(SecretBox {
            dir: data_dir.to_path_buf(),
            current: Key::from_bytes(&key_file::read(&path, WHAT)?),
            pending: if pending_path.exists() {
                Some(Key::from_bytes(&key_file::read(&pending_path, WHAT)?))
            } else {
                None
            },
        })
    }

    /// Encrypts `value` for secret `name` of `environment`.
    pub fn seal(&self, environment: &str, name: &str, value: &str) -> Result<Sealed> {
        let nonce: [u8; 24] = rand::random();
        let mut buf = String::new();
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad(environment, name, &mut buf),
                },
            )
            .map_err(|_| Error::Internal("encrypting a secret failed".into()))?;
        Ok(Sealed {
            key_id: self.current.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a stored value. Fails (without saying more) when the key is
    /// not this directory's, or the value was altered or moved.
    pub fn open_value(&self, environment: &str, name: &str, sealed: &Sealed) -> Result<String> {
        let key = [Some(&self.current), self.pending.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "secret {name} of {environment} was encrypted with key {}, which this data directory does not hold",
                    sealed.key_id
                ))
            })?;
        if sealed.nonce.len() != 24 {
            return Err(Error::Internal(format!("secret {name} of {environment} is damaged")));
        }
        let mut buf = String::new();
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: aad(environment, name, &mut buf),
                },
            )
            .map_err(|_| {
                Error::Internal(format!(
                    "secret {name} of {environment} does not decrypt: altered, or moved from another secret"
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| Error::Internal(format!("secret {name} of {environment} is damaged")))
    }

    /// Starts a rotation: a fresh key written beside the current one as
    /// `secrets.key.new`. Returns a box that encrypts with it and still
    /// decrypts with the old key; [`SecretBox::finish_rotation`] makes it current.
    /// A rotation that was cut short is carried on with its pending key
    /// (never overwritten: values may already be encrypted with it).
    pub fn begin_rotation(&self) -> Result<SecretBox> {
        let path = self.dir.join(format!("{KEY_FILE}.new"));
        let bytes: [u8; 32] = if path.exists() {
            key_file::read(&path, WHAT)?
        } else {
            let bytes = rand::random();
            key_file::write(&path, &bytes)?;
            bytes
        };
        Ok(SecretBox {
            dir: self.dir.clone(),
            current: Key::from_bytes(&bytes),
            pending: Some(self.current.clone()),
        })
    }

    /// After every value was re-encrypted (and committed): the new key
    /// replaces the old file.
    pub fn finish_rotation(&self) -> Result<()> {
        let from = self.dir.join(format!("{KEY_FILE}.new"));
        let to = self.dir.join(KEY_FILE);
        std::fs::rename(&from, &to)
            .map_err(|e| Error::Internal(format!("renaming {}: {e}", from.display())))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Internal(format!("syncing {}: {e}", self.dir.display())))
    }

    /// The id of the key new values are encrypted with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_as_the_secret_it_was_sealed_for() {
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::open(dir.path()).unwrap();
        let s = b.seal("shop", "DB_PASSWORD", "hunter2").unwrap();
        assert!(!s.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(b.open_value("shop", "DB_PASSWORD", &s).unwrap(), "hunter2");
        // Moved to another secret or environment: refused.
        assert!(b.open_value("shop", "API_TOKEN", &s).is_err());
        assert!(b.open_value("blog", "DB_PASSWORD", &s).is_err());
        // A flipped bit: refused.
        let mut bad = s.clone();
        bad.ciphertext[0] ^= 1;
        assert!(b.open_value("shop", "DB_PASSWORD", &bad).is_err());
        // Another directory's key: refused, by id.
        let other = SecretBox::open(tempfile::tempdir().unwrap().path()).unwrap();
        let e = other.open_value("shop", "DB_PASSWORD", &s).unwrap_err();
        assert!(e.to_string().contains("does not hold"), "{e}");
        // The key file is the owner's alone, and reopening reads the same key.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretBox::open(dir.path()).unwrap();
        assert_eq!(again.open_value("shop", "DB_PASSWORD", &s).unwrap(), "hunter2");
        // Debug output names the key, never shows it.
        let key_hex = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        let shown = format!("{again:?}");
        assert!(shown.contains(again.key_id()) && !shown.contains(key_hex.trim()), "{shown}");
    }

    #[test]
    fn a_rotation_cut_short_leaves_every_value_readable() {
        let dir = tempfile::tempdir().unwrap();
        let old = SecretBox::open(dir.path()).unwrap();
        let before = old.seal("shop", "A", "one").unwrap();
        let rotating = old.begin_rotation().unwrap();
        let after = rotating.seal("shop", "A", "one").unwrap();
        assert_ne!(before.key_id, after.key_id);
        // Cut here: reopened, both values still open.
        let reopened = SecretBox::open(dir.path()).unwrap();
        assert_eq!(reopened.open_value("shop", "A", &before).unwrap(), "one");
        assert_eq!(reopened.open_value("shop", "A", &after).unwrap(), "one");
        // Carried on, not restarted: the pending key is kept.
        let again = reopened.begin_rotation().unwrap();
        assert_eq!(again.key_id(), after.key_id);
        again.finish_rotation().unwrap();
        let done = SecretBox::open(dir.path()).unwrap();
        assert_eq!(done.key_id(), after.key_id);
        assert_eq!(done.open_value("shop", "A", &after).unwrap(), "one");
        assert!(done.open_value("shop", "A", &before).is_err());
    }
}
