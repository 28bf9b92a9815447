//! The JSON Lines export an auditor can verify offline, with nothing but
//! the file and a public key (`switchyard audit verify-export`).
//!
//! Layout, one JSON object per line, each with a `type`:
//! - `key_rotation` (0 or more, oldest first) and then one `checkpoint`,
//!   each carrying the checkpoint stream's line verbatim in `line`;
//! - then, newest first from the checkpoint's last entry down, an `entry`
//!   (every field, its `prev_hash` and `hash`) for each entry the filter
//!   matched and a `link` (`id`, `body_digest`, `prev_hash`) for each one it
//!   left out, down to the oldest match.
//!
//! Walking down from the signed head hash, each line must hash to what the
//! line above it pointed at, so every entry shown is the one the checkpoint
//! vouched for; a full export reaches entry 1 and the genesis hash with no
//! links, so it is complete up to the checkpoint.

use super::checkpoint::{self, Checkpoint};
use super::{link_hash, Entry, GENESIS};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// One line of the export.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    KeyRotation {
        line: String,
    },
    Checkpoint {
        line: String,
    },
    /// The stored row, field for field (`Entry`'s own serde form).
    Entry(Box<Entry>),
    Link {
        id: i64,
        body_digest: String,
        prev_hash: String,
    },
}

impl Line {
    /// The line's text, with its newline.
    pub fn render(&self) -> String {
        let mut s = serde_json::to_string(self).expect("an export line serializes");
        s.push('\n');
        s
    }

    /// An entry the filter matched, or the link standing for one it did not.
    pub fn for_entry(e: Entry, matched: bool) -> Line {
        if matched {
            Line::Entry(Box::new(e))
        } else {
            Line::Link {
                id: e.id,
                body_digest: e.body_digest(),
                prev_hash: e.prev_hash,
            }
        }
    }
}

/// What a verified export holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries shown in full, and links standing for left-out ones.
    pub entries: u64,
    pub links: u64,
    /// The checkpoint the export is proven against.
    pub checkpoint_seq: u64,
    pub checkpoint_entries: u64,
    pub checkpoint_at: String,
    pub key: String,
    /// Every entry from 1 to the checkpoint's last is shown in full.
    pub complete: bool,
}

/// Where an export failed: its 1-based line number and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportBroken {
    pub line: u64,
    pub why: String,
}

/// Verifies an export against a public key the auditor trusts.
pub fn verify_export(
    reader: impl BufRead,
    trusted: &VerifyingKey,
) -> Result<ExportReport, ExportBroken> {
    let trusted = checkpoint::public_key_text(trusted);
    // Keys the rotations carried trust across, oldest first.
    let mut keys: Vec<String> = Vec::new();
    let mut anchor: Option<Checkpoint> = None;
    // Walking down: the id and hash the next line must have.
    let (mut want_id, mut want_hash) = (0i64, String::new());
    let (mut entries, mut links) = (0u64, 0u64);
    let mut number = 0u64;
    for text in reader.lines() {
        number += 1;
        let broken = |why: String| ExportBroken { line: number, why };
        let text = text.map_err(|e| broken(format!("unreadable: {e}")))?;
        let line: Line = serde_json::from_str(&text)
            .map_err(|e| broken(format!("not an export line: {e}")))?;
        match (line, &anchor) {
            (Line::KeyRotation { line }, None) => {
                let r = signed(&line).map_err(broken)?;
                let Some(new_key) = r.new_key.clone() else {
                    return Err(broken("a key_rotation line that names no new key".into()));
                };
                if let Some(last) = keys.last() {
                    if *last != r.key {
                        return Err(broken(format!(
                            "a rotation from {} where {last} was the key",
                            r.key
                        )));
                    }
                } else {
                    keys.push(r.key);
                }
                keys.push(new_key);
            }
            (Line::Checkpoint { line }, None) => {
                let c = signed(&line).map_err(broken)?;
                if keys.last().is_some_and(|k| *k != c.key) {
                    return Err(broken(format!(
                        "signed by {} where the rotations lead to {}",
                        c.key,
                        keys.last().map_or("", String::as_str)
                    )));
                }
                if keys.is_empty() {
                    keys.push(c.key.clone());
                }
                // A rotation as the anchor: its new key signed it too.
                keys.extend(c.new_key.clone());
                if !keys.contains(&trusted) {
                    return Err(broken(format!(
                        "signed by {}, which the trusted key {trusted} does not lead to",
                        c.key
                    )));
                }
                want_id = c.entries as i64;
                want_hash = c.head.clone();
                anchor = Some(c);
            }
            (Line::KeyRotation { .. } | Line::Checkpoint { .. }, Some(_)) => {
                return Err(broken("a second checkpoint after the entries began".into()))
            }
            (Line::Entry(_) | Line::Link { .. }, None) => {
                return Err(broken("an entry before the checkpoint that vouches for it".into()))
            }
            (line, Some(_)) => {
                let (id, body, prev) = match line {
                    Line::Entry(e) => {
                        let hash_matches = e.hash_checks_out();
                        if !hash_matches {
                            return Err(broken(format!(
                                "entry {}: its content does not match its hash",
                                e.id
                            )));
                        }
                        if e.hash != want_hash {
                            return Err(broken(format!(
                                "entry {}: not the entry the chain above it points to",
                                e.id
                            )));
                        }
                        entries += 1;
                        (e.id, None, e.prev_hash)
                    }
                    Line::Link {
                        id,
                        body_digest,
                        prev_hash,
                    } => {
                        links += 1;
                        (id, Some(body_digest), prev_hash)
                    }
                    _ => unreachable!("matched above"),
                };
                if id != want_id || id < 1 {
                    return Err(broken(format!(
                        "entry {id} where entry {want_id} belongs: entries are missing or moved"
                    )));
                }
                if let Some(body) = body {
                    if link_hash(&body, &prev) != want_hash {
                        return Err(broken(format!(
                            "the link for entry {id} does not match the chain above it"
                        )));
                    }
                }
                if id == 1 && prev != GENESIS {
                    return Err(broken("entry 1 does not start the chain".into()));
                }
                want_id -= 1;
                want_hash = prev;
            }
        }
    }
    let Some(c) = anchor else {
        return Err(ExportBroken {
            line: number,
            why: "no checkpoint: nothing in this file is vouched for".into(),
        });
    };
    Ok(ExportReport {
        entries,
        links,
        checkpoint_seq: c.seq,
        checkpoint_entries: c.entries,
        checkpoint_at: c.at.clone(),
        key: c.key.clone(),
        complete: want_id == 0 && links == 0,
    })
}

/// A checkpoint line whose signatures check out.
fn signed(line: &str) -> Result<Checkpoint, String> {
    let c = Checkpoint::parse(line)?;
    c.check_signatures()?;
    Ok(c)
}
