//! Signed audit checkpoints against a tamperer who can write the database
//! file (triggers dropped first) and the checkpoint file, but has no signing
//! key: cutting the newest entries, forging a checkpoint, deleting a
//! checkpoint line, editing an export — each caught; a filtered export and a
//! key rotation verify.
//!
//! Real databases (SQLite files; PostgreSQL in the test command's second pass)
//! and real checkpoint files in a temporary data directory.

use engine::audit::checkpoints::Sealed;
use engine::audit::{AuditActor, Event, Outcome};
use engine::{AuditCheckpoints, Engine};
use model::AuditFilter;
use std::path::Path;
use std::sync::Arc;

struct Log {
    engine: Engine,
    dir: tempfile::TempDir,
}

async fn log_with(n: usize) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let url = engine::store::testing::store_url(dir.path()).await;
    let pool = engine::open_database(&url).await.unwrap();
    let runtime = Arc::new(engine::ProcessRuntime::new(dir.path().join("logs")));
    let engine =
        Engine::new(pool, runtime).with_checkpoints(AuditCheckpoints::open(dir.path()).unwrap());
    let log = Log { engine, dir };
    log.append(n).await;
    log
}

impl Log {
    async fn append(&self, n: usize) {
        for i in 0..n {
            let actor = AuditActor::User {
                id: 1,
                name: if i % 3 == 0 { "dana" } else { "omar" }.into(),
            };
            let mut ev = Event::new(actor, "deploy.start", Outcome::Ok);
            ev.environment = Some("production".into());
            ev.target = Some(format!("v{i}"));
            self.engine.audit(ev).await.unwrap();
        }
    }

    fn files(&self) -> AuditCheckpoints {
        AuditCheckpoints::existing(self.dir.path())
    }

    async fn check(&self) -> Sealed {
        self.engine.check_audit(None, None).await.unwrap()
    }

    /// What an attacker with the database file does first.
    async fn drop_guards(&self) {
        engine::store::testing::drop_audit_guards(self.engine.pool()).await;
    }

    async fn delete_from(&self, id: i64) {
        engine::store::query("DELETE FROM audit_log WHERE id >= ?")
            .bind(id)
            .execute(self.engine.pool())
            .await
            .unwrap();
    }

    fn stream_lines(&self) -> Vec<String> {
        self.files().read_lines(None).unwrap()
    }

    fn write_stream(&self, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(self.files().stream_path(), text).unwrap();
    }

    async fn export(&self, filter: &AuditFilter) -> String {
        let actor = engine::Actor::system();
        let (mut text, mut cursor) = self
            .engine
            .audit_export_start(&actor, filter)
            .await
            .unwrap();
        while let Some(block) = self
            .engine
            .audit_export_block(&actor, filter, &mut cursor)
            .await
            .unwrap()
        {
            text += &block;
        }
        text
    }
}

fn key_of(dir: &Path) -> ed25519_dalek::VerifyingKey {
    AuditCheckpoints::existing(dir).public_key().unwrap()
}

#[tokio::test]
async fn an_untouched_log_verifies_against_its_newest_checkpoint() {
    let log = log_with(5).await;
    let c = log.engine.checkpoint_audit().await.unwrap().unwrap();
    assert_eq!((c.seq, c.entries), (1, 5));
    // Nothing new: no second checkpoint.
    assert!(log.engine.checkpoint_audit().await.unwrap().is_none());
    log.append(2).await;
    let c = log.engine.checkpoint_audit().await.unwrap().unwrap();
    assert_eq!((c.seq, c.entries), (2, 7));
    match log.check().await {
        Sealed::Intact { entries, newest } => {
            assert_eq!(entries, 7);
            assert_eq!(newest.unwrap().seq, 2);
        }
        other => panic!("{other:?}"),
    }
    // The key file is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(log.files().key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn entries_cut_from_the_end_are_caught() {
    let log = log_with(20).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    log.drop_guards().await;
    log.delete_from(15).await;
    match log.check().await {
        Sealed::ChainBroken { id, position, why } => {
            assert_eq!((id, position), (15, 15));
            assert!(why.contains("entries 15..20 were removed"), "{why}");
        }
        other => panic!("tail truncation went unnoticed: {other:?}"),
    }
    // Without the checkpoints the shorter chain looks whole: that is the
    // hole they close.
    assert_eq!(
        engine::audit::verify(log.engine.pool()).await.unwrap(),
        engine::AuditVerdict::Intact { entries: 14 }
    );
}

#[tokio::test]
async fn a_checkpoint_forged_without_the_key_is_caught() {
    let log = log_with(20).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    log.drop_guards().await;
    log.delete_from(15).await;
    // The tamperer replaces the checkpoint file with one vouching for the
    // shorter log, signed with a key of their own.
    let forger = tempfile::tempdir().unwrap();
    let forged = AuditCheckpoints::open(forger.path()).unwrap();
    forged
        .checkpoint(log.engine.pool(), false)
        .await
        .unwrap()
        .unwrap();
    log.write_stream(&forged.read_lines(None).unwrap());
    match log.check().await {
        Sealed::StreamBroken(b) => {
            assert_eq!(b.line, 1);
            assert!(b.why.contains("trusted key"), "{}", b.why);
        }
        other => panic!("a forged checkpoint was accepted: {other:?}"),
    }
}

#[tokio::test]
async fn an_edited_checkpoint_line_fails_its_signature() {
    let log = log_with(20).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    log.drop_guards().await;
    log.delete_from(15).await;
    let lines = log.stream_lines();
    let edited = lines[0].replace("\"entries\":20", "\"entries\":14");
    assert_ne!(edited, lines[0]);
    log.write_stream(&[edited]);
    match log.check().await {
        Sealed::StreamBroken(b) => {
            assert_eq!(b.line, 1);
            assert!(b.why.contains("signature does not verify"), "{}", b.why);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_checkpoint_line_is_caught() {
    let log = log_with(3).await;
    for _ in 0..3 {
        log.append(2).await;
        log.engine.checkpoint_audit().await.unwrap().unwrap();
    }
    let mut lines = log.stream_lines();
    assert_eq!(lines.len(), 3);
    lines.remove(1);
    log.write_stream(&lines);
    match log.check().await {
        Sealed::StreamBroken(b) => {
            assert_eq!(b.line, 2);
            assert!(b.why.contains("#3 where #2 belongs"), "{}", b.why);
        }
        other => panic!("{other:?}"),
    }
    // The whole file gone: the log is no longer vouched for.
    std::fs::remove_file(log.files().stream_path()).unwrap();
    assert_eq!(log.check().await, Sealed::Unanchored { entries: 9 });
}

#[tokio::test]
async fn a_copy_kept_elsewhere_catches_a_cut_stream() {
    let log = log_with(4).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    log.append(4).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    let copy = log.dir.path().join("elsewhere.jsonl");
    std::fs::copy(log.files().stream_path(), &copy).unwrap();
    // Both the newest entries and the newest checkpoint line removed here:
    // the local files agree with each other, the copy does not.
    log.drop_guards().await;
    log.delete_from(5).await;
    let mut lines = log.stream_lines();
    lines.pop();
    log.write_stream(&lines);
    assert!(log.check().await.is_intact());
    match log.engine.check_audit(Some(&copy), None).await.unwrap() {
        Sealed::ChainBroken { position, .. } => assert_eq!(position, 5),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_key_rotation_verifies_and_the_old_key_still_leads_to_the_new() {
    let log = log_with(3).await;
    log.engine.checkpoint_audit().await.unwrap().unwrap();
    let old = key_of(log.dir.path());
    let rotation = log.engine.rotate_audit_key().await.unwrap();
    let new = key_of(log.dir.path());
    // Exported right after the rotation (the rotation is the newest
    // checkpoint): verifies with either key.
    let export = log.export(&AuditFilter::default()).await;
    for trusted in [old, new] {
        let r = engine::verify_audit_export(export.as_bytes(), &trusted).unwrap();
        assert!(r.complete && r.entries == 3, "{r:?}");
    }
    assert_ne!(old, new);
    assert_eq!(rotation.key, engine::public_key_text(&old));
    assert_eq!(
        rotation.new_key.as_deref(),
        Some(engine::public_key_text(&new).as_str())
    );
    log.append(2).await;
    let after = log.engine.checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(after.key, engine::public_key_text(&new));
    for trusted in [old, new] {
        let sealed = log.engine.check_audit(None, Some(&trusted)).await.unwrap();
        assert!(sealed.is_intact(), "{sealed:?}");
    }
    // An export verifies with either key too.
    let export = log.export(&AuditFilter::default()).await;
    for trusted in [old, new] {
        let r = engine::verify_audit_export(export.as_bytes(), &trusted).unwrap();
        assert!(r.complete);
    }
    // A stranger's key does not.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    assert!(!log
        .engine
        .check_audit(None, Some(&stranger))
        .await
        .unwrap()
        .is_intact());
    assert!(engine::verify_audit_export(export.as_bytes(), &stranger).is_err());
}

#[tokio::test]
async fn a_full_export_is_complete_and_an_edited_line_is_caught() {
    let log = log_with(30).await;
    let key = key_of(log.dir.path());
    let export = log.export(&AuditFilter::default()).await;
    let r = engine::verify_audit_export(export.as_bytes(), &key).unwrap();
    assert_eq!((r.entries, r.links, r.checkpoint_entries), (30, 0, 30));
    assert!(r.complete);

    // One changed field of one entry.
    let edited = export.replacen("\"target\":\"v7\"", "\"target\":\"v8\"", 1);
    assert_ne!(edited, export);
    let b = engine::verify_audit_export(edited.as_bytes(), &key).unwrap_err();
    assert!(b.why.contains("does not match its hash"), "{b:?}");
    // The edit with its hash recomputed: no longer the entry the chain
    // above it points to.
    let mut lines: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let i = lines.iter().position(|l| l["target"] == "v7").unwrap();
    lines[i]["target"] = "v8".into();
    let mut e: engine::audit::Entry = serde_json::from_value({
        let mut v = lines[i].clone();
        v.as_object_mut().unwrap().remove("type");
        v
    })
    .unwrap();
    e.hash = e.compute_hash();
    lines[i]["hash"] = e.hash.clone().into();
    let rehashed: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let b = engine::verify_audit_export(rehashed.as_bytes(), &key).unwrap_err();
    assert_eq!(b.line, i as u64 + 1);
    assert!(
        b.why.contains("not the entry the chain above it points to"),
        "{b:?}"
    );
    // A line removed.
    let mut short: Vec<&str> = export.lines().collect();
    short.remove(10);
    let b = engine::verify_audit_export(short.join("\n").as_bytes(), &key).unwrap_err();
    assert_eq!(b.line, 11, "{b:?}");
    assert!(b.why.starts_with("entry 20:"), "{b:?}");
}

#[tokio::test]
async fn a_filtered_export_verifies_and_shows_only_its_matches() {
    let log = log_with(30).await;
    let key = key_of(log.dir.path());
    let filter = AuditFilter {
        actor: Some("dana".into()),
        ..Default::default()
    };
    let export = log.export(&filter).await;
    let r = engine::verify_audit_export(export.as_bytes(), &key).unwrap();
    // Entries 1, 4, …, 28 are dana's; below the oldest match nothing follows.
    assert_eq!(r.entries, 10);
    assert_eq!(r.links, 20);
    assert!(!r.complete);
    assert!(
        !export.contains("\"omar\""),
        "a left-out entry's content leaked"
    );
    // A filtered-out entry's link cannot be swapped for an invented entry.
    let forged = export.replacen("\"actor_name\":\"dana\"", "\"actor_name\":\"eve\"", 1);
    assert!(engine::verify_audit_export(forged.as_bytes(), &key).is_err());
}

#[tokio::test]
async fn a_deploy_finish_signs_a_checkpoint_at_once() {
    let log = log_with(2).await;
    assert!(log.stream_lines().is_empty());
    let ev = Event::new(AuditActor::System, "deploy.finish", Outcome::Ok);
    log.engine.audit(ev).await.unwrap();
    let lines = log.stream_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("\"entries\":3"), "{}", lines[0]);
}
