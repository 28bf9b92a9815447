//! API tokens on the engine: a token acts for its owner, never above the
//! owner's role, only within its environments, and stops at once when it is
//! revoked, expires, or its owner is disabled or demoted. Four-eyes holds:
//! a token cannot sign a release its owner requested.

use engine::environments::{self, NewEnvironment};
use engine::runtime::ProcessRuntime;
use engine::{Actor, Engine, Error};
use model::{AuditFilter, NewToken, ReleaseRequest, Role, TokenKind};
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
}

impl World {
    /// Two environments; nothing runs (the tests stop at authorization).
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = engine::store::testing::store_url(dir.path()).await;
        let pool = engine::store::open(&url).await.unwrap();
        let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))));
        for (name, port) in [("staging", 1), ("production", 2)] {
            let new = NewEnvironment::new(
                name,
                &format!("http://127.0.0.1:{port}/"),
                "/opt/app/{version}/run",
                &format!("http://127.0.0.1:{}", port + 10),
                "/nonexistent/token",
            );
            environments::create(engine.pool(), &new).await.unwrap();
        }
        World { _dir: dir, engine }
    }

    async fn user(&self, name: &str, role: Role) -> Actor {
        let u = engine::users::create(self.engine.pool(), name, "a long enough password", role)
            .await
            .unwrap();
        Actor::user(u)
    }

    async fn issue(&self, who: &Actor, role: Role, envs: Option<&[&str]>) -> String {
        self.engine
            .create_token(who, None, &token("ci", TokenKind::Personal, role, envs))
            .await
            .unwrap()
            .secret
    }

    async fn actor(&self, secret: &str) -> Result<Actor, Error> {
        self.engine
            .token_actor(secret, Some("192.0.2.7".into()))
            .await
    }
}

fn token(name: &str, kind: TokenKind, role: Role, envs: Option<&[&str]>) -> NewToken {
    NewToken {
        name: name.into(),
        kind,
        role,
        environments: envs.map(|e| e.iter().map(|s| s.to_string()).collect()),
        expires_in_days: 30,
    }
}

fn bad_token(r: Result<Actor, Error>) -> &'static str {
    match r {
        Err(Error::BadToken(why)) => why,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_acts_for_its_owner_under_its_own_role_and_is_audited_as_a_token() {
    let w = World::new().await;
    let alice = w.user("alice", Role::Deployer).await;
    let issued = w
        .engine
        .create_token(
            &alice,
            None,
            &token("ci", TokenKind::Personal, Role::Viewer, None),
        )
        .await
        .unwrap();
    assert!(issued
        .secret
        .starts_with(&format!("sy_{}_", issued.token.prefix)));
    assert_eq!(issued.token.owner, "alice");
    assert_eq!(issued.token.role, Role::Viewer);
    assert!(
        !format!("{issued:?}").contains(&issued.secret),
        "Debug hides it"
    );

    let via_token = w.actor(&issued.secret).await.unwrap();
    assert_eq!(via_token.as_user().unwrap().username, "alice");
    assert_eq!(via_token.as_user().unwrap().role, Role::Viewer);
    // A viewer token of a deployer cannot deploy: the token's role decides.
    let refused = w.engine.deploy(&via_token, "staging", "v1").await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );

    let page = w
        .engine
        .audit_search(&Actor::system(), &AuditFilter::default(), 10)
        .await
        .unwrap();
    let denied = &page.entries[0];
    assert_eq!(denied.action, "deploy.request");
    assert_eq!(denied.actor_kind, "token");
    assert_eq!(
        denied.actor_name,
        format!("alice (token ci sy_{})", issued.token.prefix)
    );
    let created = page
        .entries
        .iter()
        .find(|e| e.action == "token.create")
        .unwrap();
    assert!(
        !created.details.contains(&issued.secret[12..]),
        "no secret in the audit log"
    );

    // Its last use is recorded, with the address.
    let listed = w.engine.tokens(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    assert_eq!(listed[0].last_used_ip.as_deref(), Some("192.0.2.7"));
}

#[tokio::test]
async fn a_token_never_exceeds_its_owner_and_follows_the_owner_s_changes() {
    let w = World::new().await;
    let admin = w.user("root", Role::Admin).await;
    let approver = w.user("ana", Role::Approver).await;
    let refused = w
        .engine
        .create_token(
            &approver,
            None,
            &token("x", TokenKind::Personal, Role::Deployer, None),
        )
        .await;
    assert!(
        matches!(&refused, Err(Error::InvalidInput { field: "role", .. })),
        "{refused:?}"
    );
    // Service tokens are for admins only.
    let refused = w
        .engine
        .create_token(
            &approver,
            None,
            &token("x", TokenKind::Service, Role::Viewer, None),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );

    let secret = w.issue(&approver, Role::Approver, None).await;
    assert!(w.actor(&secret).await.is_ok());
    // Demoted to viewer: the approver token is above its owner now.
    let ana_id = approver.as_user().unwrap().id;
    w.engine
        .change_role(&admin, ana_id, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        bad_token(w.actor(&secret).await),
        "its role is above its owner's current role"
    );
    w.engine
        .change_role(&admin, ana_id, Role::Approver)
        .await
        .unwrap();
    assert!(w.actor(&secret).await.is_ok());
    // Disabled: dead.
    w.engine
        .set_user_disabled(&admin, ana_id, true)
        .await
        .unwrap();
    assert_eq!(bad_token(w.actor(&secret).await), "its owner is disabled");
}

#[tokio::test]
async fn revoked_expired_forged_and_malformed_tokens_let_nobody_in() {
    let w = World::new().await;
    let alice = w.user("alice", Role::Deployer).await;
    let secret = w.issue(&alice, Role::Deployer, None).await;
    // The right prefix with another secret.
    let forged = format!("{}{}", &secret[..12], "0".repeat(64));
    assert_eq!(bad_token(w.actor(&forged).await), "unknown token");
    assert_eq!(bad_token(w.actor("sy_nope").await), "malformed token");
    assert_eq!(
        bad_token(w.actor(&format!("Bearer {secret}")).await),
        "malformed token"
    );

    engine::store::query("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z'")
        .execute(w.engine.pool())
        .await
        .unwrap();
    assert_eq!(bad_token(w.actor(&secret).await), "expired");

    let other = w
        .engine
        .create_token(
            &alice,
            None,
            &token("ci2", TokenKind::Personal, Role::Viewer, None),
        )
        .await
        .unwrap();
    assert!(w.actor(&other.secret).await.is_ok());
    // Someone else cannot revoke it (and does not learn it exists).
    let bob = w.user("bob", Role::Deployer).await;
    let not_theirs = w.engine.revoke_token(&bob, other.token.id).await;
    assert!(
        matches!(not_theirs, Err(Error::NotFound(_))),
        "{not_theirs:?}"
    );
    assert!(w.actor(&other.secret).await.is_ok());
    let revoked = w.engine.revoke_token(&alice, other.token.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(bad_token(w.actor(&other.secret).await), "revoked");
    let again = w.engine.revoke_token(&alice, other.token.id).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    // A token cannot make tokens.
    let live = w
        .engine
        .create_token(
            &alice,
            None,
            &token("ci3", TokenKind::Personal, Role::Viewer, None),
        )
        .await
        .unwrap()
        .secret;
    let via = w.actor(&live).await.unwrap();
    let refused = w
        .engine
        .create_token(
            &via,
            None,
            &token("y", TokenKind::Personal, Role::Viewer, None),
        )
        .await;
    assert!(matches!(refused, Err(Error::RuleForbids(_))), "{refused:?}");
}

#[tokio::test]
async fn a_limited_token_acts_only_on_its_environments() {
    let w = World::new().await;
    let admin = w.user("root", Role::Admin).await;
    let issued = w
        .engine
        .create_token(
            &admin,
            None,
            &token(
                "deploy-staging",
                TokenKind::Service,
                Role::Admin,
                Some(&["staging"]),
            ),
        )
        .await
        .unwrap();
    let ci = w.actor(&issued.secret).await.unwrap();
    assert_eq!(w.engine.environment_names(&ci).await.unwrap(), ["staging"]);
    assert!(w.engine.environment(&ci, "staging").await.is_ok());
    for refused in [
        w.engine.environment(&ci, "production").await.map(|_| ()),
        w.engine.history(&ci, "production", 10).await.map(|_| ()),
        w.engine.deploy(&ci, "production", "v1").await.map(|_| ()),
        w.engine
            .rollback(&ci, "production", "undo")
            .await
            .map(|_| ()),
        // Whole-console actions are never a limited token's.
        w.engine.list_users(&ci).await.map(|_| ()),
        w.engine.environment_configs(&ci).await.map(|_| ()),
    ] {
        assert!(matches!(refused, Err(Error::RuleForbids(_))), "{refused:?}");
    }
    // The audit log: only its environments', named.
    let all = w
        .engine
        .audit_search(&ci, &AuditFilter::default(), 10)
        .await;
    assert!(matches!(
        all,
        Err(Error::InvalidInput {
            field: "environment",
            ..
        })
    ));
    let other = AuditFilter {
        environment: Some("production".into()),
        ..AuditFilter::default()
    };
    assert!(w.engine.audit_search(&ci, &other, 10).await.is_err());
    let own = AuditFilter {
        environment: Some("staging".into()),
        ..AuditFilter::default()
    };
    assert!(w.engine.audit_search(&ci, &own, 10).await.is_ok());

    // Unknown environments are refused when the token is made.
    let refused = w
        .engine
        .create_token(
            &admin,
            None,
            &token("typo", TokenKind::Service, Role::Viewer, Some(&["prod"])),
        )
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::InvalidInput {
                field: "environments",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_token_cannot_sign_a_release_its_owner_requested() {
    let w = World::new().await;
    let admin = w.user("root", Role::Admin).await;
    w.engine
        .set_checklist_template(
            &admin,
            "production",
            &engine::default_checklist(false, false),
        )
        .await
        .unwrap();
    let release = w
        .engine
        .request_release(
            &admin,
            &ReleaseRequest {
                environment: "production".into(),
                version: "v2".into(),
                notes: String::new(),
                migration_sql: String::new(),
            },
        )
        .await
        .unwrap();
    let secret = w.issue(&admin, Role::Admin, None).await;
    let via = w.actor(&secret).await.unwrap();
    let item = release
        .items
        .iter()
        .find(|i| i.auto_check.is_none())
        .unwrap();
    let refused = w
        .engine
        .sign_item(&via, release.id, item.id, release.revision, "looks fine")
        .await;
    assert!(matches!(refused, Err(Error::RuleForbids(_))), "{refused:?}");
}
