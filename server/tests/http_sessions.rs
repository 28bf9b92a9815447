//! Signing in and staying signed in over HTTP: the session cookie and its
//! attributes, a fresh session id at every login (no fixation), one answer
//! for a wrong password and an unknown user, logout ending the session, and
//! admin account changes (role, disable, password reset) reaching sessions
//! that are already live.
//!
//! The real axum router from `server::http`, real server functions and a
//! real SQLite file, served on a loopback port (see `support`). No proxy or
//! slot process is involved: every request here is decided before any
//! runtime work, or fails at the pipeline's preflight against an unreachable
//! router.

mod support;

use support::*;

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_under_a_fresh_id() {
    let c = start().await;
    c.user("alice", Role::Deployer).await;
    c.user("bob", Role::Viewer).await;

    let r = c.login("alice", PASSWORD, None).await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
    let set = r.session_cookie().expect("a session cookie");
    let attrs: Vec<String> = set
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "{set}");
    assert!(attrs.iter().any(|a| a == "samesite=strict"), "{set}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{set}");
    let alice = r.session();
    assert_eq!(c.overview_user(&alice).await, Ok("alice".into()));

    // Signing in on a browser that already holds a session id gets a new id,
    // and the old one stops working (no session fixation).
    let r = c.login("bob", PASSWORD, Some(&alice)).await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
    let bob = r.session();
    assert_ne!(bob, alice, "the session id must change on login");
    assert_eq!(c.overview_user(&bob).await, Ok("bob".into()));
    assert_eq!(
        c.overview_user(&alice).await,
        Err(AppError::Unauthenticated)
    );

    // A planted, made-up id is not adopted either.
    let planted = "switchyard_session=AAAAAAAAAAAAAAAAAAAAAA";
    let r = c.login("alice", PASSWORD, Some(planted)).await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
    assert_ne!(r.session(), planted);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let c = start().await;
    c.user("alice", Role::Deployer).await;
    let sessions = c.count("tower_sessions").await;

    let wrong = c.login("alice", "not the password", None).await;
    let unknown = c.login("mallory", "not the password", None).await;
    let empty = c.login("", "", None).await;
    assert_eq!(wrong.error(), AppError::BadCredentials);
    assert_eq!(wrong.status.as_u16(), 401);
    for r in [&unknown, &empty] {
        assert_eq!(r.status, wrong.status);
        assert_eq!(r.body, wrong.body, "the answer must not tell users apart");
    }
    for r in [&wrong, &unknown, &empty] {
        assert_eq!(r.session_cookie(), None, "no session for a failed login");
    }
    assert_eq!(c.count("tower_sessions").await, sessions);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let cookie = c.session_for("dora").await;
    assert_eq!(c.overview_user(&cookie).await, Ok("dora".into()));
    let sessions = c.count("tower_sessions").await;

    let r = c.post("/api/logout", &[], Some(&cookie), &[]).await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
    assert_eq!(
        c.count("tower_sessions").await,
        sessions - 1,
        "the session is deleted"
    );

    // The old cookie (a copy kept by an attacker, say) no longer authorizes.
    assert_eq!(
        c.overview_user(&cookie).await,
        Err(AppError::Unauthenticated)
    );
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(r.error(), AppError::Unauthenticated);
    assert_eq!(c.count("deployments").await, 0);
    let r = c.get("/", Some(&cookie)).await;
    assert!(r.status.is_redirection());
}

/// Admin changes take effect on the user's very next request: a disabled
/// account or a reset password ends its sessions; a role change keeps the
/// session but under a new id and the new role.
#[tokio::test]
async fn account_changes_reach_live_sessions() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("dora", Role::Deployer).await;
    let admin = c.session_for("ada").await;
    let dora = c.session_for("dora").await;
    let dora_id: i64 = engine::store::query_scalar("SELECT id FROM users WHERE username = 'dora'")
        .fetch_one(&c.pool)
        .await
        .unwrap();
    let id = dora_id.to_string();

    // A forged role value is refused, not defaulted.
    let r = c
        .post(
            "/api/change_role",
            &[("user_id", &id), ("role", "root")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, message } if field == "role" && message.contains("unknown role"))
    );

    // Role change: dora's next request cycles her session id and sees the new role.
    let r = c
        .post(
            "/api/change_role",
            &[("user_id", &id), ("role", "viewer")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = c.post("/api/load_overview", &[], Some(&dora), &[]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let cycled = r.session();
    assert_ne!(cycled, dora, "the session id must change with the role");
    let overview: serde_json::Value = r.json();
    assert_eq!(overview["user"]["role"], "viewer");
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&cycled),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "the new role applies at once");

    // Disable: the session ends.
    let r = c
        .post(
            "/api/set_user_disabled",
            &[("user_id", &id), ("disabled", "true")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = c.post("/api/load_overview", &[], Some(&cycled), &[]).await;
    assert_eq!(r.error(), AppError::Unauthenticated);
    let r = c.login("dora", PASSWORD, None).await;
    assert_eq!(r.status.as_u16(), 401, "a disabled account cannot sign in");

    // Enable + reset password: old sessions end; the old password no longer works.
    let r = c
        .post(
            "/api/set_user_disabled",
            &[("user_id", &id), ("disabled", "false")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(r.status.is_success());
    let again = c.session_for("dora").await;
    let r = c
        .post(
            "/api/reset_password",
            &[("user_id", &id)],
            Some(&admin),
            &[],
        )
        .await;
    let issued: serde_json::Value = r.json();
    let new_password = issued["password"].as_str().unwrap().to_string();
    let r = c.post("/api/load_overview", &[], Some(&again), &[]).await;
    assert_eq!(r.error(), AppError::Unauthenticated);
    assert_eq!(c.login("dora", PASSWORD, None).await.status.as_u16(), 401);
    assert!(c
        .login("dora", &new_password, None)
        .await
        .status
        .is_success());

    // The last enabled admin cannot lock everyone out.
    let ada_id: i64 = engine::store::query_scalar("SELECT id FROM users WHERE username = 'ada'")
        .fetch_one(&c.pool)
        .await
        .unwrap();
    let ada = ada_id.to_string();
    let r = c
        .post(
            "/api/set_user_disabled",
            &[("user_id", &ada), ("disabled", "true")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(matches!(r.error(), AppError::Conflict(m) if m.contains("last enabled admin")));
    let r = c
        .post(
            "/api/change_role",
            &[("user_id", &ada), ("role", "viewer")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(matches!(r.error(), AppError::Conflict(m) if m.contains("last enabled admin")));

    // Every change is in the audit log, and no password is.
    let actions: Vec<String> = engine::store::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'user.%' ORDER BY id",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "user.role",
            "user.disable",
            "user.enable",
            "user.password_reset"
        ]
    );
    let dump: Vec<String> = engine::store::query_scalar(
        "SELECT actor_name || details || COALESCE(target, '') FROM audit_log",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert!(!dump
        .iter()
        .any(|d| d.contains(&new_password) || d.contains(PASSWORD)));
}
