//! Signed checkpoints: the audit log's anchor outside the database.
//!
//! The hash chain finds any entry that was edited, removed or moved — but not
//! entries cut from the end, since the shorter chain is still a valid chain.
//! A checkpoint is a signed statement "after N entries the head hash was H",
//! written where the database's writer cannot rewrite it unnoticed: an
//! append-only file of the data directory (and, when configured, a command
//! that ships each one elsewhere). Checkpoints chain too (each carries the
//! hash of the line before it) and are signed with Ed25519, so a line cannot
//! be changed, removed from the middle or forged without the key.
//!
//! A key rotation is a checkpoint that names the next key and is signed by
//! both keys, so trust in either one carries across it.

use super::sha256_hex;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What every signature covers first: no other Switchyard signature (or
/// anyone else's) can be replayed as a checkpoint.
const DOMAIN: &str = "switchyard-audit-checkpoint/1";

/// The `prev` of the first checkpoint.
pub use super::GENESIS;

/// One line of the checkpoint stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// How many entries the log held, and the hash of the last of them
    /// ([`GENESIS`] when it held none).
    pub entries: u64,
    pub head: String,
    /// When it was signed (RFC 3339, UTC).
    pub at: String,
    /// SHA-256 of the previous line's text ([`GENESIS`] for the first).
    pub prev: String,
    /// The key that signed it, `ed25519:<hex>`.
    pub key: String,
    /// A rotation: the key that signs from the next checkpoint on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_key: Option<String>,
    /// `key`'s signature over [`Checkpoint::signed_bytes`].
    pub sig: String,
    /// A rotation: `new_key`'s signature over the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sig: Option<String>,
}

/// What a checkpoint line failed on.
pub type Why = String;

/// The text of a public key as printed by `switchyard audit public-key`.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", hex::encode(key.as_bytes()))
}

/// Parses `ed25519:<64 hex digits>` (the prefix may be left out).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, Why> {
    let text = text.trim();
    let hex_part = text.strip_prefix("ed25519:").unwrap_or(text);
    let bytes: [u8; 32] = hex::decode(hex_part)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "a public key is `ed25519:` and 64 hex digits".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())
}

fn parse_signature(text: &str) -> Result<Signature, Why> {
    let bytes: [u8; 64] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "its signature is not 128 hex digits".to_string())?;
    Ok(Signature::from_bytes(&bytes))
}

impl Checkpoint {
    /// A signed checkpoint after `prev_line` (the previous line's text).
    pub(crate) fn sign(
        key: &SigningKey,
        seq: u64,
        entries: u64,
        head: String,
        at: String,
        prev_line: Option<&str>,
        rotate_to: Option<&SigningKey>,
    ) -> Checkpoint {
        let mut c = Checkpoint {
            seq,
            entries,
            head,
            at,
            prev: prev_line.map_or_else(|| GENESIS.to_string(), line_hash),
            key: public_key_text(&key.verifying_key()),
            new_key: rotate_to.map(|k| public_key_text(&k.verifying_key())),
            sig: String::new(),
            new_sig: None,
        };
        let bytes = c.signed_bytes();
        c.sig = hex::encode(key.sign(&bytes).to_bytes());
        c.new_sig = rotate_to.map(|k| hex::encode(k.sign(&bytes).to_bytes()));
        c
    }

    /// Everything but the signatures, as a JSON array in a fixed order.
    fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            DOMAIN,
            self.seq,
            self.entries,
            self.head,
            self.at,
            self.prev,
            self.key,
            self.new_key
        ])
        .to_string()
        .into_bytes()
    }

    /// The line as written to the stream (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serializes")
    }

    pub fn parse(line: &str) -> Result<Checkpoint, Why> {
        serde_json::from_str(line).map_err(|e| format!("not a checkpoint: {e}"))
    }

    /// The key that signs the checkpoint after this one.
    pub fn next_key(&self) -> &str {
        self.new_key.as_deref().unwrap_or(&self.key)
    }

    /// Both signatures check out against the keys the checkpoint names.
    pub fn check_signatures(&self) -> Result<(), Why> {
        let bytes = self.signed_bytes();
        let key = parse_public_key(&self.key)?;
        key.verify(&bytes, &parse_signature(&self.sig)?)
            .map_err(|_| format!("its signature does not verify with {}", self.key))?;
        match (&self.new_key, &self.new_sig) {
            (None, None) => Ok(()),
            (Some(new_key), Some(new_sig)) => parse_public_key(new_key)?
                .verify(&bytes, &parse_signature(new_sig)?)
                .map_err(|_| format!("the new key {new_key} did not sign its rotation")),
            _ => Err("a rotation needs both the new key and its signature".to_string()),
        }
    }
}

/// SHA-256 of a line's text: what the next checkpoint's `prev` holds.
pub fn line_hash(line: &str) -> String {
    sha256_hex(line.as_bytes())
}

/// A checkpoint stream that checked out.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Every checkpoint, oldest first.
    pub checkpoints: Vec<Checkpoint>,
}

impl Stream {
    pub fn newest(&self) -> Option<&Checkpoint> {
        self.checkpoints.last()
    }

    /// What each checkpoint vouches for, for the chain walk.
    pub fn anchors(&self) -> super::Anchors {
        self.checkpoints
            .iter()
            .filter(|c| c.entries > 0)
            .map(|c| {
                (
                    c.entries,
                    super::Anchor {
                        seq: c.seq,
                        at: c.at.clone(),
                        head: c.head.clone(),
                    },
                )
            })
            .collect()
    }
}

/// Where a stream broke: its 1-based line number and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamBroken {
    pub line: u64,
    pub why: Why,
}

/// Checks a checkpoint stream line by line: each line parses, follows the
/// one before it (sequence and hash), is signed by the key the stream had
/// reached, never vouches for fewer entries than an earlier one — and the
/// `trusted` key is one of the stream's keys, so a stream re-signed by
/// someone else's key is refused.
pub fn check_stream<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    trusted: &VerifyingKey,
) -> Result<Stream, StreamBroken> {
    let trusted = public_key_text(trusted);
    let mut stream = Stream::default();
    let mut prev_line: Option<&str> = None;
    let mut trusted_seen = false;
    let mut number = 0u64;
    for line in lines {
        number += 1;
        let broken = |why: Why| StreamBroken { line: number, why };
        if line.trim().is_empty() {
            return Err(broken("an empty line".into()));
        }
        let c = Checkpoint::parse(line).map_err(broken)?;
        let last = stream.checkpoints.last();
        let expected_seq = last.map_or(1, |l| l.seq + 1);
        let expected_prev = prev_line.map_or_else(|| GENESIS.to_string(), line_hash);
        if c.seq != expected_seq {
            return Err(broken(format!(
                "checkpoint #{} where #{expected_seq} belongs: a line was removed or moved",
                c.seq
            )));
        }
        if c.prev != expected_prev {
            return Err(broken(
                "it does not follow the line before it: a line was changed, removed or moved"
                    .into(),
            ));
        }
        if let Some(l) = last {
            if c.key != l.next_key() {
                return Err(broken(format!(
                    "signed by {} where {} signs",
                    c.key,
                    l.next_key()
                )));
            }
            if c.entries < l.entries {
                return Err(broken(format!(
                    "it vouches for {} entries after one vouched for {}",
                    c.entries, l.entries
                )));
            }
        }
        c.check_signatures().map_err(broken)?;
        trusted_seen |= c.key == trusted || c.new_key.as_deref() == Some(trusted.as_str());
        stream.checkpoints.push(c);
        prev_line = Some(line);
    }
    if number > 0 && !trusted_seen {
        return Err(StreamBroken {
            line: 1,
            why: format!("no checkpoint is signed by the trusted key {trusted}"),
        });
    }
    Ok(stream)
}
