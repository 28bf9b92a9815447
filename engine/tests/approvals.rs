//! Release approvals end to end on the engine: checklists copied onto
//! releases, four-eyes, role per item, voiding on edit, expiry, automatic
//! checks, and deploys that only run — and only start — when approved.
//! Deploys go through a real switchyard-proxy to real demo slot processes.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::checklists::{self, ApprovalSettings};
use engine::environments::{self, NewEnvironment};
use engine::runtime::ProcessRuntime;
use engine::Actor;
use engine::{Engine, Error};
use model::{AutoCheck, DeploymentStatus, ItemState, ReleaseRequest, ReleaseView, Role, SlotColor};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

mod support;

use support::{sibling_bin, spawn_proxy};

const TOKEN: &str = "approvals-test-admin-token";

struct World {
    dir: tempfile::TempDir,
    engine: Engine,
    proxies: Vec<Child>,
    http: reqwest::Client,
}

impl Drop for World {
    fn drop(&mut self) {
        for p in &mut self.proxies {
            let _ = p.kill();
            let _ = p.wait();
        }
        // Slot processes run the demo through symlinks under `dir`.
        let _ = std::process::Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(self.dir.path().join("releases").display().to_string())
            .status();
    }
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let demo = sibling_bin("switchyard-demo");
        for v in ["v1", "v2", "v3"] {
            let release = dir.path().join("releases").join(v);
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&demo, release.join("switchyard-demo")).unwrap();
        }
        let db = support::harness::store_url(dir.path()).await;
        let pool = engine::store::open(&db).await.unwrap();
        let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))));
        World {
            dir,
            engine,
            proxies: vec![],
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// An environment behind its own proxy; `protected` gives it the default
    /// checklist (every manual item required).
    async fn environment(&mut self, name: &str, protected: bool) -> String {
        let state = self.dir.path().join(format!("proxy-{name}"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        let (child, info) = spawn_proxy(&state);
        self.proxies.push(child);
        let template = format!(
            "{}/releases/{{version}}/switchyard-demo",
            self.dir.path().display()
        );
        let mut new = NewEnvironment::new(
            name,
            &format!("http://{}/", info.public),
            &template,
            &format!("http://{}", info.admin),
            &state.join("proxy-token").display().to_string(),
        );
        new.health_interval = Duration::from_millis(50);
        new.health_deadline = Duration::from_secs(5);
        new.stop_grace = Duration::from_secs(2);
        environments::create(self.engine.pool(), &new)
            .await
            .unwrap();
        if protected {
            self.engine
                .set_checklist_template(
                    &Actor::system(),
                    name,
                    &checklists::default_template(false, false),
                )
                .await
                .unwrap();
        }
        info.public
    }

    async fn user(&self, name: &str, role: Role) -> Actor {
        let u = engine::users::create(self.engine.pool(), name, "a long enough password", role)
            .await
            .unwrap();
        Actor::user(u)
    }

    async fn users_see(&self, public: &str) -> String {
        self.http
            .get(format!("http://{public}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn request(&self, who: &Actor, env: &str, version: &str, sql: &str) -> ReleaseView {
        self.engine
            .request_release(
                who,
                &ReleaseRequest {
                    environment: env.into(),
                    version: version.into(),
                    notes: "release notes".into(),
                    migration_sql: sql.into(),
                },
            )
            .await
            .unwrap()
    }

    /// Signs every manual item that asks for exactly the signer's role.
    async fn sign_all(&self, signer: &Actor, release: &ReleaseView) -> ReleaseView {
        let role = signer.as_user().unwrap().role;
        let mut view = release.clone();
        for item in &release.items {
            if item.auto_check.is_none() && item.required_role == role {
                view = self
                    .engine
                    .sign_item(signer, release.id, item.id, view.revision, "checked")
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{} signing {:?}: {e}", signer_name(signer), item.title)
                    });
            }
        }
        view
    }
}

fn signer_name(a: &Actor) -> String {
    a.as_user().map(|u| u.username.clone()).unwrap_or_default()
}

fn item<'a>(view: &'a ReleaseView, title: &str) -> &'a model::ChecklistItemView {
    view.items
        .iter()
        .find(|i| i.title == title)
        .unwrap_or_else(|| panic!("no item {title:?}"))
}

#[tokio::test]
async fn requester_cannot_sign_and_each_item_needs_its_role() {
    let mut w = World::new().await;
    w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let erin = w.user("erin", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    let victor = w.user("victor", Role::Viewer).await;
    let release = w.request(&dana, "production", "v2", "").await;
    let code_reviewed = item(&release, "Code reviewed").id;
    let rollback_plan = item(&release, "Rollback plan confirmed").id;
    let migrations = item(&release, "Migrations additive-only").id;

    // Four-eyes: the requester is refused even on an item their role covers.
    let err = w
        .engine
        .sign_item(&dana, release.id, rollback_plan, 1, "I promise")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RuleForbids(_)), "{err}");
    assert!(err.to_string().contains("four-eyes"), "{err}");
    // A deployer may sign a deployer item but not an approver item.
    let err = w
        .engine
        .sign_item(&erin, release.id, code_reviewed, 1, "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("approver or higher"), "{err}");
    w.engine
        .sign_item(&erin, release.id, rollback_plan, 1, "on call, plan read")
        .await
        .unwrap();
    // Viewers sign nothing; automatic items are not signed by anyone.
    let err = w
        .engine
        .sign_item(&victor, release.id, code_reviewed, 1, "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    let err = w
        .engine
        .sign_item(&alice, release.id, migrations, 1, "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("verified by Switchyard"), "{err}");
    // A second signature on a signed item is refused with who signed it.
    let err = w
        .engine
        .sign_item(&alice, release.id, rollback_plan, 1, "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already signed by erin"), "{err}");

    let view = w
        .engine
        .sign_item(&alice, release.id, code_reviewed, 1, "reviewed PR 42")
        .await
        .unwrap();
    let signed = item(&view, "Code reviewed");
    assert_eq!(signed.state, ItemState::Signed);
    let signoff = signed.signoff.as_ref().unwrap();
    assert_eq!(signoff.signed_by, "alice");
    assert_eq!(signoff.note, "reviewed PR 42");
    assert_eq!(item(&view, "Tests passing").state, ItemState::Pending);
    assert!(!view.deployable);

    // What the page offers follows the same rules.
    let as_dana = w.engine.release(&dana, release.id).await.unwrap();
    assert!(
        as_dana.items.iter().all(|i| !i.can_sign),
        "requester offered a signature"
    );
    let as_victor = w.engine.release(&victor, release.id).await.unwrap();
    assert!(as_victor.items.iter().all(|i| !i.can_sign && !i.can_revoke));
    assert!(!as_victor.can_edit && !as_victor.can_deploy);

    // Refusals are in the audit log with who asked.
    let denied: i64 = engine::store::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'release.sign' AND result = 'denied'",
    )
    .fetch_one(w.engine.pool())
    .await
    .unwrap();
    assert!(denied >= 3, "denied signatures audited: {denied}");
}

#[tokio::test]
async fn deploy_waits_for_the_checklist_and_then_goes_live() {
    let mut w = World::new().await;
    let public = w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let erin = w.user("erin", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    let bob = w.user("bob", Role::Approver).await;

    let release = w.request(&dana, "production", "v2", "").await;
    // Neither by version nor by release id while items are pending.
    let err = w
        .engine
        .deploy(&dana, "production", "v2")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotApproved(_)), "{err}");
    assert!(err.to_string().contains("Code reviewed"), "{err}");
    let err = w
        .engine
        .deploy_release(&dana, release.id, release.revision)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotApproved(_)), "{err}");
    // An approver signs, but approvers do not deploy.
    let view = w.sign_all(&alice, &release).await;
    assert!(
        !view.deployable,
        "rollback plan needs a deployer: {:?}",
        view.blockers
    );
    let err = w
        .engine
        .deploy_release(&bob, release.id, view.revision)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    let rollback_plan = item(&view, "Rollback plan confirmed").id;
    let view = w
        .engine
        .sign_item(&erin, release.id, rollback_plan, view.revision, "ok")
        .await
        .unwrap();
    assert!(view.deployable, "blockers: {:?}", view.blockers);
    assert_eq!(
        item(&view, "Migrations additive-only").state,
        ItemState::Verified
    );
    assert_eq!(item(&view, "Idle slot ready").state, ItemState::Verified);
    // Optional and unconfigured: shown as not verified, not a blocker.
    assert_eq!(
        item(&view, "Staging deployment successful").state,
        ItemState::NotVerified
    );

    let dep = w
        .engine
        .deploy_release(&dana, release.id, view.revision)
        .await
        .unwrap();
    assert_eq!(dep.status, DeploymentStatus::Succeeded, "{dep:?}");
    assert_eq!(w.users_see(&public).await, "switchyard-demo v2\n");
    let view = w.engine.release(&dana, release.id).await.unwrap();
    assert_eq!(view.deployments, vec![(dep.id, "succeeded".to_string())]);
    // Live, the release is read-only: what was deployed stays what it says,
    // and the version goes out again only through a new release.
    assert!(
        !view.can_edit && !view.can_deploy && !view.deployable,
        "{view:?}"
    );
    let went_live = format!("went live with deployment #{}", dep.id);
    assert!(view.blockers[0].contains(&went_live), "{:?}", view.blockers);
    let err = w
        .engine
        .edit_release(&dana, release.id, view.revision, "other notes", "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(_)) && err.to_string().contains("read-only"),
        "{err}"
    );
    let err = w
        .engine
        .cancel_release(&dana, release.id, view.revision, "too late")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let err = w
        .engine
        .deploy_release(&dana, release.id, view.revision)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotApproved(_)) && err.to_string().contains(&went_live),
        "{err}"
    );
    let same = w.engine.release(&dana, release.id).await.unwrap();
    assert_eq!((same.revision, same.notes), (view.revision, view.notes));
    assert_eq!(same.deployments.len(), 1, "no second deployment");

    // Rollback needs no approvals (it is the emergency exit), only a reason.
    let release3 = w.request(&dana, "production", "v3", "").await;
    let view3 = w.sign_all(&alice, &release3).await;
    w.engine
        .sign_item(
            &erin,
            release3.id,
            item(&view3, "Rollback plan confirmed").id,
            1,
            "",
        )
        .await
        .unwrap();
    let dep = w.engine.deploy(&dana, "production", "v3").await.unwrap();
    assert_eq!(dep.status, DeploymentStatus::Succeeded, "{dep:?}");
    let err = w
        .engine
        .rollback(&dana, "production", " ")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reason"), "{err}");
    let back = w
        .engine
        .rollback(&dana, "production", "error rate up")
        .await
        .unwrap();
    assert_eq!(back.status, DeploymentStatus::Succeeded);
    assert_eq!(w.users_see(&public).await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn editing_voids_signatures_and_stale_forms_are_refused() {
    let mut w = World::new().await;
    w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    let release = w.request(&dana, "production", "v2", "").await;
    let reviewed = item(&release, "Code reviewed").id;
    let tests = item(&release, "Tests passing").id;
    w.engine
        .sign_item(&alice, release.id, reviewed, 1, "")
        .await
        .unwrap();

    // Only the requester (or an admin) edits; the edit voids the signature.
    let err = w
        .engine
        .edit_release(&alice, release.id, 1, "mine now", "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RuleForbids(_)), "{err}");
    let edited = w
        .engine
        .edit_release(
            &dana,
            release.id,
            1,
            "now with a migration",
            "CREATE TABLE t (id INT)",
        )
        .await
        .unwrap();
    assert_eq!(edited.revision, 2);
    assert_eq!(item(&edited, "Code reviewed").state, ItemState::Pending);
    assert!(item(&edited, "Code reviewed").signoff.is_none());

    // A form loaded before the edit is refused and changes nothing.
    let err = w
        .engine
        .sign_item(&alice, release.id, tests, 1, "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(
        err.to_string().contains("changed since you loaded it"),
        "{err}"
    );
    let err = w
        .engine
        .deploy_release(&dana, release.id, 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed since you loaded it"),
        "{err}"
    );
    let err = w
        .engine
        .edit_release(&dana, release.id, 1, "again", "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let view = w.engine.release(&alice, release.id).await.unwrap();
    assert_eq!(view.revision, 2);
    assert!(view.items.iter().all(|i| i.signoff.is_none()));
    let voided: String = engine::store::query_scalar("SELECT void_reason FROM signoffs")
        .fetch_one(w.engine.pool())
        .await
        .unwrap();
    assert_eq!(voided, "release edited (revision 2)");
}

#[tokio::test]
async fn a_signature_revoked_after_the_request_stops_the_worker() {
    let mut w = World::new().await;
    let public = w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let erin = w.user("erin", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    // v1 live first, through its own approved release.
    for version in ["v1", "v2"] {
        let r = w.request(&dana, "production", version, "").await;
        let v = w.sign_all(&alice, &r).await;
        w.engine
            .sign_item(&erin, r.id, item(&v, "Rollback plan confirmed").id, 1, "")
            .await
            .unwrap();
        if version == "v1" {
            let d = w.engine.deploy_release(&dana, r.id, 1).await.unwrap();
            assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
            continue;
        }
        // The deploy is accepted (approved, lock taken) ...
        let prepared = w
            .engine
            .prepare_release_deploy(&dana, r.id, 1, &Default::default())
            .await
            .unwrap();
        // ... then, before its worker starts, alice withdraws her review.
        w.engine
            .revoke_signoff(&alice, r.id, item(&v, "Code reviewed").id, "found a bug")
            .await
            .unwrap();
        let d = w.engine.execute(prepared).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
        let message = d.message.unwrap_or_default();
        assert!(
            message.contains("approvals re-checked at start"),
            "{message}"
        );
        assert!(message.contains("Code reviewed"), "{message}");
    }
    // Nothing was started: users are on v1 and the idle slot is untouched.
    assert_eq!(w.users_see(&public).await, "switchyard-demo v1\n");
    let env = environments::find(w.engine.pool(), "production")
        .await
        .unwrap();
    assert_eq!(env.active, Some(SlotColor::Blue));
    let green = environments::slot(w.engine.pool(), env.id, SlotColor::Green)
        .await
        .unwrap();
    assert_eq!(green.version, None, "the idle slot was touched: {green:?}");
}

#[tokio::test]
async fn expired_signatures_do_not_count() {
    let mut w = World::new().await;
    w.environment("production", true).await;
    w.engine
        .set_approval_settings(
            &Actor::system(),
            "production",
            &ApprovalSettings {
                upstream: None,
                backup_command: None,
                signoff_ttl: Duration::from_secs(1),
            },
        )
        .await
        .unwrap();
    let dana = w.user("dana", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    let release = w.request(&dana, "production", "v2", "").await;
    let reviewed = item(&release, "Code reviewed").id;
    let view = w
        .engine
        .sign_item(&alice, release.id, reviewed, 1, "")
        .await
        .unwrap();
    assert_eq!(item(&view, "Code reviewed").state, ItemState::Signed);
    // Validity is wall-clock time: past it, the signature is gone for good.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let view = w.engine.release(&alice, release.id).await.unwrap();
    let expired = item(&view, "Code reviewed");
    assert_eq!(expired.state, ItemState::Pending);
    assert!(expired.summary.contains("expired"), "{}", expired.summary);
    assert!(expired.can_sign, "an expired item can be signed again");
    // Signing again replaces the expired signature.
    let view = w
        .engine
        .sign_item(&alice, release.id, reviewed, 1, "looked again")
        .await
        .unwrap();
    assert_eq!(item(&view, "Code reviewed").state, ItemState::Signed);
}

#[tokio::test]
async fn an_item_of_another_release_is_not_found_and_changes_nothing() {
    let mut w = World::new().await;
    w.environment("staging", true).await;
    w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let alice = w.user("alice", Role::Approver).await;
    let staging = w.request(&dana, "staging", "v2", "").await;
    let production = w.request(&dana, "production", "v2", "").await;
    let foreign = item(&staging, "Code reviewed").id;
    let err = w
        .engine
        .sign_item(&alice, production.id, foreign, 1, "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let n: i64 = engine::store::query_scalar("SELECT COUNT(*) FROM signoffs")
        .fetch_one(w.engine.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn breaking_or_unreadable_migrations_block_with_the_statement() {
    let mut w = World::new().await;
    w.environment("production", true).await;
    let dana = w.user("dana", Role::Deployer).await;
    let breaking = w
        .request(
            &dana,
            "production",
            "v2",
            "ALTER TABLE customers ADD COLUMN tier TEXT DEFAULT 'basic';\nALTER TABLE customers DROP COLUMN phone;",
        )
        .await;
    let check = item(&breaking, "Migrations additive-only");
    assert_eq!(check.state, ItemState::Failed);
    assert_eq!(check.evidence.len(), 1, "{:?}", check.evidence);
    assert!(
        check.evidence[0].starts_with("ALTER TABLE customers DROP COLUMN phone"),
        "{:?}",
        check.evidence
    );
    assert!(breaking
        .blockers
        .iter()
        .any(|b| b.starts_with("Migrations additive-only")));

    let unreadable = w
        .request(
            &dana,
            "production",
            "v3",
            "ALTER TABLE customers FROBNICATE phone",
        )
        .await;
    let check = item(&unreadable, "Migrations additive-only");
    assert_eq!(check.state, ItemState::NotVerified);
    assert!(!unreadable.deployable);
}

#[tokio::test]
async fn promotion_needs_success_upstream_and_backup_command_is_run() {
    let mut w = World::new().await;
    w.environment("staging", false).await;
    w.environment("production", false).await;
    let backup_ok = w.dir.path().join("backup-ok");
    std::fs::write(&backup_ok, "").unwrap();
    let mut template = checklists::default_template(true, true);
    // Only the automatic items, so the checks decide on their own.
    template.retain(|i| i.auto_check.is_some());
    w.engine
        .set_checklist_template(&Actor::system(), "production", &template)
        .await
        .unwrap();
    // The command sees the item's limit and answers with its exit status.
    let command = format!(
        "sh -c 'test \"$SWITCHYARD_BACKUP_MAX_AGE_HOURS\" = 24 && test -e {}'",
        backup_ok.display()
    );
    w.engine
        .set_approval_settings(
            &Actor::system(),
            "production",
            &ApprovalSettings {
                upstream: Some("staging".into()),
                backup_command: Some(command),
                signoff_ttl: checklists::DEFAULT_SIGNOFF_TTL,
            },
        )
        .await
        .unwrap();
    let dana = w.user("dana", Role::Deployer).await;
    let release = w.request(&dana, "production", "v2", "").await;
    let upstream = item(&release, "Staging deployment successful");
    assert_eq!(upstream.auto_check, Some(AutoCheck::UpstreamSucceeded));
    assert_eq!(upstream.state, ItemState::Failed, "{}", upstream.summary);
    assert_eq!(item(&release, "Backup verified").state, ItemState::Verified);
    assert!(!release.deployable);

    // Staging has no required items: any version deploys there directly.
    let staged = w.engine.deploy(&dana, "staging", "v2").await.unwrap();
    assert_eq!(staged.status, DeploymentStatus::Succeeded, "{staged:?}");
    std::fs::remove_file(&backup_ok).unwrap();
    let view = w.engine.release(&dana, release.id).await.unwrap();
    let upstream = item(&view, "Staging deployment successful");
    assert_eq!(upstream.state, ItemState::Verified);
    assert!(
        upstream.evidence[0].starts_with(&format!("deployment #{} by dana", staged.id)),
        "{:?}",
        upstream.evidence
    );
    let backup = item(&view, "Backup verified");
    assert_eq!(backup.state, ItemState::Failed);
    assert!(
        backup.evidence[0].contains("exit status: 1"),
        "{:?}",
        backup.evidence
    );
    assert!(!view.deployable);
    assert_eq!(view.blockers.len(), 1, "{:?}", view.blockers);
}

#[tokio::test]
async fn templates_are_admin_only_and_validated() {
    let mut w = World::new().await;
    w.environment("production", false).await;
    let alice = w.user("alice", Role::Approver).await;
    let admin = w.user("root", Role::Admin).await;
    let template = checklists::default_template(false, false);
    let err = w
        .engine
        .set_checklist_template(&alice, "production", &template)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    let mut bad = template.clone();
    bad[0].required_role = Role::Viewer;
    let err = w
        .engine
        .set_checklist_template(&admin, "production", &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("viewers cannot sign"), "{err}");
    assert!(w
        .engine
        .checklist_template(&alice, "production")
        .await
        .unwrap()
        .is_empty());
    w.engine
        .set_checklist_template(&admin, "production", &template)
        .await
        .unwrap();
    let stored = w
        .engine
        .checklist_template(&alice, "production")
        .await
        .unwrap();
    assert_eq!(stored.len(), template.len());
    assert_eq!(stored[0].title, "Code reviewed");
}
