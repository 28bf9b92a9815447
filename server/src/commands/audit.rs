//! `switchyard audit …`: verify the log against its signed checkpoints,
//! print the public key, rotate the signing key, verify an export offline.

use crate::console::offline_engine;
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and check it against the signed checkpoints;
    /// report the first broken link or checkpoint (exit code 1 if any).
    Verify {
        /// A copy of the checkpoint stream kept elsewhere (default: the data
        /// directory's `audit-checkpoints.jsonl`).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The key to trust, `ed25519:<hex>` (default: the data directory's
        /// signing key).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key that verifies the checkpoints.
    PublicKey,
    /// Replace the signing key; the old key signs the new one into the
    /// checkpoint stream, so verification crosses the rotation.
    RotateKey,
    /// Verify an export (`/audit/export.jsonl`) offline, with only the file
    /// and a public key: every entry is the one a signed checkpoint vouches
    /// for, and a full export is complete up to it (exit code 1 if not).
    VerifyExport {
        file: PathBuf,
        #[arg(long)]
        public_key: String,
    },
    /// Download the audit log under a filter from a console (`--server URL`
    /// with a token): JSON Lines that `audit verify-export` checks offline,
    /// or CSV.
    Export {
        /// The file to write (standard output when absent); written whole
        /// or not at all.
        #[arg(short = 'o', long)]
        file: Option<PathBuf>,
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Only this environment's entries (required for a token limited to
        /// some environments).
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// From this time (RFC 3339 or a prefix of it: `2026-11-22`).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Words to find anywhere in an entry.
        #[arg(long)]
        text: Option<String>,
    },
}

/// `switchyard audit …`: exit code 1 when something does not check out.
pub async fn run(data_dir: &Path, command: AuditCommand) -> anyhow::Result<()> {
    let checkpoints = || engine::AuditCheckpoints::existing(data_dir);
    let sealed_engine = || async {
        anyhow::Ok(
            offline_engine(data_dir)
                .await?
                .with_checkpoints(checkpoints()),
        )
    };
    match command {
        AuditCommand::Verify {
            checkpoints: file,
            public_key,
        } => {
            let trusted = public_key
                .as_deref()
                .map(engine::parse_public_key)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
            let sealed = sealed_engine()
                .await?
                .check_audit(file.as_deref(), trusted.as_ref())
                .await?;
            println!("{}", sealed.describe());
            if !sealed.is_intact() {
                std::process::exit(1);
            }
        }
        AuditCommand::PublicKey => {
            println!("{}", engine::public_key_text(&checkpoints().public_key()?));
        }
        AuditCommand::RotateKey => {
            let c = sealed_engine().await?.rotate_audit_key().await?;
            println!(
                "signing key rotated: checkpoint #{} signed by {} names {}",
                c.seq,
                c.key,
                c.new_key.as_deref().unwrap_or("")
            );
        }
        AuditCommand::VerifyExport { .. } => unreachable!("handled before the data directory"),
        AuditCommand::Export { .. } => anyhow::bail!(
            "audit export downloads from a console: add --server URL (with a token), or use \
             the Audit page's download links"
        ),
    }
    Ok(())
}

/// `switchyard audit verify-export`: needs no data directory (an auditor's
/// laptop has none).
pub fn verify_export(file: &Path, public_key: &str) -> anyhow::Result<()> {
    let key =
        engine::parse_public_key(public_key).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    match engine::verify_audit_export(reader, &key) {
        Ok(r) => {
            println!(
                "export verified: {} entries shown{}, proven against checkpoint #{} of {} ({} entries, signed by {}){}",
                r.entries,
                if r.links > 0 { format!(" and {} left out by the filter", r.links) } else { String::new() },
                r.checkpoint_seq,
                r.checkpoint_at,
                r.checkpoint_entries,
                r.key,
                if r.complete { "; complete: every entry up to the checkpoint is in it" } else { "" }
            );
            Ok(())
        }
        Err(b) => {
            println!("export BROKEN at line {}: {}", b.line, b.why);
            std::process::exit(1);
        }
    }
}
