//! The audit log's seal as people meet it: the audit page shows the newest
//! signed checkpoint and warns admins when verification fails; the real
//! `switchyard audit` commands catch a log cut at its end, rotate the key,
//! and verify an export offline — and refuse an edited one.
//!
//! A real console (see `support`) on a temporary data directory, and the
//! real `switchyard` binary run against the same directory.

mod support;

use model::{AuditPage, AuditSealView, SessionUser};
use std::process::Output;
use support::*;

async fn seal_seen_by(c: &Console, cookie: &str) -> AuditSealView {
    let r = c.post("/api/audit_page", &[], Some(cookie), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, _, seal, _): (
        SessionUser,
        AuditPage,
        AuditSealView,
        app::audit::DetailFields,
    ) = r.json();
    seal
}

/// What someone with write access to the database file does.
async fn cut_the_newest_entries(c: &Console, keep: i64) {
    engine::store::testing::drop_audit_guards(&c.pool).await;
    engine::store::query("DELETE FROM audit_log WHERE id > ?")
        .bind(keep)
        .execute(&c.pool)
        .await
        .unwrap();
}

async fn switchyard(c: &Console, args: &[&str]) -> Output {
    let mut cmd = store::switchyard(c._dir.path());
    cmd.args(args).env("RUST_LOG", "warn");
    store::run(cmd, "").await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn the_audit_page_shows_the_seal_and_warns_only_admins_when_it_breaks() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("vera", Role::Viewer).await;
    let (ada, vera) = (c.session_for("ada").await, c.session_for("vera").await);
    c.engine.checkpoint_audit().await.unwrap().unwrap();
    c.engine.refresh_audit_seal().await.unwrap();
    let seal = seal_seen_by(&c, &ada).await;
    let newest = seal.newest.expect("a signed checkpoint");
    assert!(newest.entries >= 2, "{newest:?}");
    assert!(newest.key.starts_with("ed25519:"));
    assert_eq!((seal.intact, seal.problem), (Some(true), None));

    cut_the_newest_entries(&c, 1).await;
    assert!(!c.engine.refresh_audit_seal().await.unwrap());
    let seal = seal_seen_by(&c, &ada).await;
    assert_eq!(seal.intact, Some(false));
    let problem = seal.problem.expect("admins are told what failed");
    assert!(problem.contains("were removed"), "{problem}");
    let seal = seal_seen_by(&c, &vera).await;
    assert_eq!((seal.intact, seal.problem), (Some(false), None));

    // The page itself, server-rendered shell and all, answers.
    let r = c.get("/audit", Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_audit_commands_catch_a_cut_log_and_verify_exports_offline() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    for _ in 0..3 {
        let wrong = c.login("ada", "not-the-password", None).await;
        assert_eq!(wrong.status.as_u16(), 401);
    }

    let key = switchyard(&c, &["audit", "public-key"]).await;
    assert!(key.status.success(), "{key:?}");
    let key = stdout(&key).trim().to_string();
    assert!(key.starts_with("ed25519:") && key.len() == 8 + 64, "{key}");

    // An export, verified with nothing but the file and the key.
    let export = c.get("/audit/export.jsonl", Some(&ada)).await;
    assert_eq!(export.status, StatusCode::OK);
    let file = c._dir.path().join("export.jsonl");
    std::fs::write(&file, &export.body).unwrap();
    let v = switchyard(
        &c,
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    )
    .await;
    assert!(v.status.success(), "{v:?}");
    assert!(stdout(&v).contains("complete"), "{}", stdout(&v));
    // A filtered one verifies too, and says it is not complete.
    let filtered = c
        .get(
            "/audit/export.jsonl?action=auth.login&actor=ada",
            Some(&ada),
        )
        .await;
    std::fs::write(&file, &filtered.body).unwrap();
    let v = switchyard(
        &c,
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    )
    .await;
    assert!(v.status.success(), "{v:?}");
    // One entry's result changed: refused, naming the line.
    let edited = export
        .body
        .replacen("\"result\":\"failed\"", "\"result\":\"ok\"", 1);
    assert_ne!(edited, export.body);
    std::fs::write(&file, &edited).unwrap();
    let v = switchyard(
        &c,
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    )
    .await;
    assert_eq!(v.status.code(), Some(1), "{v:?}");
    assert!(
        stdout(&v).contains("export BROKEN at line"),
        "{}",
        stdout(&v)
    );

    // A rotation: verification crosses it with the old key as well.
    let r = switchyard(&c, &["audit", "rotate-key"]).await;
    assert!(r.status.success(), "{r:?}");
    let v = switchyard(&c, &["audit", "verify", "--public-key", &key]).await;
    assert!(v.status.success(), "{v:?} {}", stdout(&v));
    assert!(stdout(&v).contains("intact"));

    // The newest entries cut: caught, exit code 1, the first missing position.
    cut_the_newest_entries(&c, 2).await;
    let v = switchyard(&c, &["audit", "verify"]).await;
    assert_eq!(v.status.code(), Some(1), "{v:?}");
    assert!(stdout(&v).contains("BROKEN at entry 3"), "{}", stdout(&v));
}
