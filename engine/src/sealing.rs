//! The audit log's seal, as the console uses it: signed checkpoints (at an
//! interval, at every deploy and rollback finish, before every export), the
//! console's own periodic verification for the audit page, and the export
//! an auditor verifies offline. The formats live in `audit::checkpoint` and
//! `audit::export`; the files in `audit::checkpoints`.

use crate::actor::Actor;
use crate::audit::checkpoints::{Checkpoints, Seal, Sealed};
use crate::audit::export::Line;
use crate::audit::{self, Checkpoint, Entry};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rbac::Action;
use model::{AuditFilter, AuditSealView, CheckpointView};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

/// Entries per block of an export (one filtered query and one range query).
const EXPORT_BLOCK: i64 = 1000;

/// Audit actions after which a checkpoint is signed at once: an incident
/// review needs exactly these entries, so they must not wait for the round.
const CHECKPOINT_AFTER: [&str; 2] = ["deploy.finish", "rollback.finish"];

/// Where an export stands between blocks: the highest id not yet written.
#[derive(Clone, Copy, Debug)]
pub struct ExportCursor {
    next: Option<i64>,
}

impl From<&Checkpoint> for CheckpointView {
    fn from(c: &Checkpoint) -> Self {
        CheckpointView {
            seq: c.seq,
            at: c.at.clone(),
            entries: c.entries,
            key: c.key.clone(),
        }
    }
}

impl Sealed {
    /// A line for people: what the verification found.
    pub fn describe(&self) -> String {
        match self {
            Sealed::Intact { entries, newest } => match newest {
                Some(c) => format!(
                    "audit log intact: {entries} entries, every link checks out; \
                     checkpoint #{} of {} vouches for {} of them (signed by {})",
                    c.seq, c.at, c.entries, c.key
                ),
                None => "audit log intact: no entries and no checkpoint yet".to_string(),
            },
            Sealed::StreamBroken(b) => {
                format!("audit checkpoints BROKEN at line {}: {}", b.line, b.why)
            }
            Sealed::ChainBroken { id, position, why } => {
                format!("audit log BROKEN at entry {id} (position {position}): {why}")
            }
            Sealed::Unanchored { entries } => format!(
                "audit log NOT VOUCHED FOR: {entries} entries but no checkpoint \
                 (the checkpoint file is missing or empty; a console signs one when it starts)"
            ),
        }
    }

    pub fn is_intact(&self) -> bool {
        matches!(self, Sealed::Intact { .. })
    }
}

impl Engine {
    /// Signs checkpoints into `files` from now on.
    pub fn with_checkpoints(mut self, files: Checkpoints) -> Self {
        self.sealing = Some(std::sync::Arc::new(Seal {
            files,
            last_check: Mutex::new(None),
        }));
        self
    }

    fn sealing(&self) -> Result<&Seal> {
        self.sealing
            .as_deref()
            .ok_or_else(|| Error::Internal("this console signs no audit checkpoints".to_string()))
    }

    /// Signs a checkpoint if entries were appended since the newest one
    /// (the console's round and `CHECKPOINT_AFTER`).
    pub async fn checkpoint_audit(&self) -> Result<Option<Checkpoint>> {
        self.sealing()?.files.checkpoint(self.pool(), false).await
    }

    /// Called after every append: checkpoints at once after a finish.
    pub(crate) async fn checkpoint_after(&self, action: &str) {
        if self.sealing.is_some() && CHECKPOINT_AFTER.contains(&action) {
            if let Err(e) = self.checkpoint_audit().await {
                tracing::error!(error = %e, "could not sign an audit checkpoint");
            }
        }
    }

    /// Replaces the signing key; the checkpoint that does it is signed by
    /// both keys (`switchyard audit rotate-key`).
    pub async fn rotate_audit_key(&self) -> Result<Checkpoint> {
        self.sealing()?
            .files
            .checkpoint(self.pool(), true)
            .await?
            .ok_or_else(|| Error::Internal("the rotation wrote no checkpoint".into()))
    }

    /// Verifies the chain and the checkpoint stream (`file`, or the data
    /// directory's own) against `trusted` (or the signing key's own public
    /// half): `switchyard audit verify`.
    pub async fn check_audit(
        &self,
        file: Option<&Path>,
        trusted: Option<&ed25519_dalek::VerifyingKey>,
    ) -> Result<Sealed> {
        let files = &self.sealing()?.files;
        let trusted = match trusted {
            Some(k) => *k,
            None => files.public_key()?,
        };
        files.check(self.pool(), file, &trusted).await
    }

    /// Verifies and remembers the outcome for the audit page (the
    /// console's round).
    pub async fn refresh_audit_seal(&self) -> Result<bool> {
        let sealed = self.check_audit(None, None).await?;
        if !sealed.is_intact() {
            tracing::error!(problem = %sealed.describe(), "the audit log failed verification");
        }
        let intact = sealed.is_intact();
        *self.sealing()?.last_check.lock().expect("seal lock") =
            Some((audit::timestamp(crate::now()), sealed));
        Ok(intact)
    }

    /// The newest checkpoint and the last verification, for the audit page.
    pub async fn audit_seal(&self, actor: &Actor) -> Result<AuditSealView> {
        actor.may(Action::ViewAudit)?;
        let Some(sealing) = self.sealing.as_deref() else {
            return Ok(AuditSealView::default());
        };
        // The file's tail only: the page loads often and the stream grows
        // by a line a minute.
        let newest = sealing.files.newest()?;
        let last = sealing.last_check.lock().expect("seal lock").clone();
        let admin = actor.may(Action::ManageUsers).is_ok();
        Ok(AuditSealView {
            newest: newest.as_ref().map(CheckpointView::from),
            checked_at: last.as_ref().map(|(at, _)| at.clone()),
            intact: last.as_ref().map(|(_, s)| s.is_intact()),
            problem: last
                .filter(|(_, s)| admin && !s.is_intact())
                .map(|(_, s)| s.describe()),
        })
    }

    /// Starts a verifiable export: signs a checkpoint of the log as it is,
    /// and returns the lines that vouch for what follows (the rotations and
    /// that checkpoint) and the cursor for [`Engine::audit_export_block`].
    /// Everything an export under `filter` may be refused for is decided
    /// here, before its first byte, so a refusal is an answer and not a
    /// download cut short.
    pub async fn audit_export_start(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
    ) -> Result<(String, ExportCursor)> {
        crate::queries::may_read_audit(actor, filter)?;
        let sealing = self.sealing()?;
        sealing.files.checkpoint(self.pool(), false).await?;
        let lines = sealing.files.read_lines(None)?;
        let (anchor, earlier) = lines
            .split_last()
            .ok_or_else(|| Error::Internal("no checkpoint to export against".into()))?;
        // The rotations before the anchor carry trust to its key; the anchor
        // itself may be a rotation (the verifier takes its new key too).
        let mut head = String::new();
        for line in earlier {
            if Checkpoint::parse(line)
                .map_err(Error::Internal)?
                .new_key
                .is_some()
            {
                head += &Line::KeyRotation { line: line.clone() }.render();
            }
        }
        let entries = Checkpoint::parse(anchor).map_err(Error::Internal)?.entries;
        head += &Line::Checkpoint {
            line: anchor.clone(),
        }
        .render();
        Ok((
            head,
            ExportCursor {
                next: (entries > 0).then_some(entries as i64),
            },
        ))
    }

    /// The next block of a verifiable export, newest first: matched
    /// entries in full, left-out ones as links; `None` when the oldest
    /// match has been written.
    pub async fn audit_export_block(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        cursor: &mut ExportCursor,
    ) -> Result<Option<String>> {
        crate::queries::may_read_audit(actor, filter)?;
        let Some(hi) = cursor.next else {
            return Ok(None);
        };
        let lo = (hi - EXPORT_BLOCK + 1).max(1);
        let matched: Option<HashSet<i64>> = if audit::filters_nothing(filter) {
            None
        } else {
            let f = AuditFilter {
                before: Some(filter.before.map_or(hi + 1, |b| b.min(hi + 1))),
                ..filter.clone()
            };
            let page = audit::search(self.pool(), &f, EXPORT_BLOCK).await?;
            if page.entries.is_empty() {
                cursor.next = None;
                return Ok(None);
            }
            Some(page.entries.iter().map(|e| e.id).collect())
        };
        let rows: Vec<Entry> = crate::store::query_as(
            "SELECT * FROM audit_log WHERE id BETWEEN ? AND ? ORDER BY id DESC",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(self.pool())
        .await?;
        let text = rows
            .into_iter()
            .map(|e| {
                let shown = matched.as_ref().is_none_or(|ids| ids.contains(&e.id));
                Line::for_entry(e, shown).render()
            })
            .collect();
        cursor.next = (lo > 1).then_some(lo - 1);
        Ok(Some(text))
    }
}
