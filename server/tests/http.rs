//! The console's HTTP surface as a browser (or an attacker's page) reaches it:
//! the real axum router from `server::http`, real server functions, a real
//! SQLite file for users, sessions and deployments, served on a loopback port.
//!
//! No proxy or slot process is involved: every request here is decided before
//! any runtime work (authentication, authorization, the same-origin guard), or
//! fails at the pipeline's preflight against an unreachable router.

mod support;

use reqwest::header::LOCATION;
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
async fn viewers_and_anonymous_callers_cannot_deploy_or_roll_back() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    c.user("abe", Role::Approver).await;

    for name in ["vera", "abe"] {
        let cookie = c.session_for(name).await;
        let r = c
            .post(
                "/api/deploy",
                &[("environment", ENV), ("version", "v2")],
                Some(&cookie),
                &[],
            )
            .await;
        assert_eq!(r.status.as_u16(), 403, "{name} deploy: {}", r.body);
        match r.error() {
            AppError::Forbidden(m) => assert!(m.ends_with("may not deploy"), "{m}"),
            e => panic!("{name} deploy: {e:?}"),
        }
        let r = c
            .post(
                "/api/rollback",
                &[("environment", ENV), ("reason", "because")],
                Some(&cookie),
                &[],
            )
            .await;
        assert_eq!(r.status.as_u16(), 403, "{name} rollback: {}", r.body);
        match r.error() {
            AppError::Forbidden(m) => assert!(m.ends_with("may not roll back"), "{m}"),
            e => panic!("{name} rollback: {e:?}"),
        }
        // Reading is allowed.
        let r = c
            .post(
                "/api/environment_status",
                &[("name", ENV)],
                Some(&cookie),
                &[],
            )
            .await;
        let v: serde_json::Value = r.json();
        assert_eq!(v["name"], ENV);
    }

    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            None,
            &[],
        )
        .await;
    assert_eq!(r.error(), AppError::Unauthenticated);
    let r = c
        .post(
            "/api/rollback",
            &[("environment", ENV), ("reason", "because")],
            None,
            &[],
        )
        .await;
    assert_eq!(r.error(), AppError::Unauthenticated);
    for path in [
        "/api/load_overview",
        "/api/environment_status",
        "/api/deployment_history",
        "/api/slot_traffic",
    ] {
        let r = c.post(path, &[("name", ENV)], None, &[]).await;
        assert_eq!(r.error(), AppError::Unauthenticated, "{path}");
    }
    let r = c
        .post("/api/load_deployment", &[("id", "1")], None, &[])
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    assert_eq!(r.error(), AppError::Unauthenticated);
    // A cookie the server never issued is no better.
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some("switchyard_session=AAAAAAAAAAAAAAAAAAAAAA"),
            &[],
        )
        .await;
    assert_eq!(r.error(), AppError::Unauthenticated);

    assert_eq!(
        c.count("deployments").await,
        0,
        "no deployment was recorded"
    );
}

#[tokio::test]
async fn cross_origin_posts_are_refused_before_anything_happens() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let sessions = c.count("tower_sessions").await;
    let evil_origin = [("origin", "http://evil.example")];
    let cross_site = [("sec-fetch-site", "cross-site")];
    let same_site = [("sec-fetch-site", "same-site")];
    let null_origin = [("origin", "null")];

    for headers in [&evil_origin[..], &cross_site, &same_site, &null_origin] {
        let r = c
            .post(
                "/api/login",
                &[("username", "dora"), ("password", PASSWORD)],
                None,
                headers,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "login with {headers:?}: {}",
            r.body
        );
        assert_eq!(r.session_cookie(), None, "login with {headers:?}");
    }
    assert_eq!(
        c.count("tower_sessions").await,
        sessions,
        "no session was created"
    );

    // Same origin, by Origin or by Sec-Fetch-Site, works.
    let by_origin = c.session_for("dora").await;
    let r = c
        .post(
            "/api/login",
            &[("username", "dora"), ("password", PASSWORD)],
            None,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);

    // A signed-in deployer's browser tricked into posting from another site.
    for headers in [&evil_origin[..], &cross_site, &same_site] {
        for (path, form) in [
            ("/api/deploy", [("environment", ENV), ("version", "v2")]),
            ("/api/rollback", [("environment", ENV), ("reason", "csrf")]),
        ] {
            let r = c.post(path, &form, Some(&by_origin), headers).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{path} with {headers:?}: {}",
                r.body
            );
        }
        let r = c.post("/api/logout", &[], Some(&by_origin), headers).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "logout with {headers:?}");
    }
    assert_eq!(
        c.count("deployments").await,
        0,
        "no deployment was recorded"
    );
    assert_eq!(c.overview_user(&by_origin).await, Ok("dora".into()));

    // The same request from the console's own page reaches the pipeline: it
    // runs (and fails at the preflight, since no proxy is running here).
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&by_origin),
            &[],
        )
        .await;
    let d: DeploymentView = r.json();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    assert_eq!(d.requested_by, "dora");
    assert_eq!(c.count("deployments").await, 1);
}

#[tokio::test]
async fn pages_need_a_session_and_get_never_deploys() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;

    let r = c.get("/", None).await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.body);
    assert_eq!(r.headers.get(LOCATION).unwrap(), "/login");
    let r = c.get("/login", None).await;
    assert_eq!(r.status, StatusCode::OK);

    let cookie = c.session_for("dora").await;
    let r = c.get("/", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    for path in [
        "/api/deploy?environment=production&version=v2",
        "/api/rollback?environment=production&reason=get",
    ] {
        let r = c.get(path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    assert_eq!(c.count("deployments").await, 0);
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

/// The audit export needs a session, follows the page's filter, and every
/// login attempt and refusal shows up in it — without the password.
#[tokio::test]
async fn audit_export_is_signed_in_only_and_follows_the_filter() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    let r = c.get("/audit/export.csv", None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);

    let wrong = c.login("vera", "guessing-the-password", None).await;
    assert_eq!(wrong.status.as_u16(), 401);
    let cookie = c.session_for("vera").await;
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);

    let jsonl = c.get("/audit/export.jsonl", Some(&cookie)).await;
    assert_eq!(jsonl.status.as_u16(), 200, "{}", jsonl.body);
    let entries: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    // Newest first.
    assert_eq!(
        actions,
        [
            ("deploy.request", "denied"),
            ("auth.login", "ok"),
            ("auth.login", "failed")
        ]
    );
    assert!(entries[0]["source_ip"]
        .as_str()
        .unwrap()
        .starts_with("127."));
    assert!(!jsonl.body.contains("guessing-the-password"));
    assert!(!jsonl.body.contains(PASSWORD));

    let csv = c
        .get(
            "/audit/export.csv?action=auth.login&actor=vera",
            Some(&cookie),
        )
        .await;
    assert_eq!(csv.status.as_u16(), 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].starts_with("id,at,actor_kind,actor_name"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 3, "header + two login attempts: {}", csv.body);
    assert!(lines[1].contains(",auth.login,") && lines[1].contains(",ok,"));
    assert!(lines[2].contains(",failed,"));
}

/// Every server function × every role, asked directly over HTTP (not through
/// hidden buttons): allowed calls pass authorization, the rest get 403 and
/// change nothing.
#[tokio::test]
async fn every_action_by_every_role_is_decided_on_the_server() {
    let c = start().await;
    for (name, role) in [
        ("vera", Role::Viewer),
        ("dora", Role::Deployer),
        ("abe", Role::Approver),
        ("ada", Role::Admin),
    ] {
        c.user(name, role).await;
    }
    c.user("target", Role::Viewer).await;
    let target_id: i64 = tower_sessions_sqlx_store::sqlx::query_scalar(
        "SELECT id FROM users WHERE username = 'target'",
    )
    .fetch_one(&c.pool)
    .await
    .unwrap();
    let tid = target_id.to_string();
    // A protected environment and a release by someone outside the matrix,
    // so four-eyes never hides a role decision.
    // A deployment to read, recorded before the environment is protected.
    let did = c.failed_deploy().await.id.to_string();
    let (release, reviewed, rollback_plan, template_item) = c.protected_release("rita").await;
    let (rid, reviewed, rollback_plan, template_item) = (
        release.to_string(),
        reviewed.to_string(),
        rollback_plan.to_string(),
        template_item.to_string(),
    );

    // (endpoint, form, roles allowed: viewer, deployer, approver, admin).
    // "Allowed" means the role may ask; the request can still be refused by a
    // rule (a deployer cannot sign an approver's item, only the requester
    // edits), which is a different answer from the role refusal checked here.
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, [bool; 4]);
    let matrix: Vec<Row> = vec![
        ("/api/load_overview", vec![], [true, true, true, true]),
        (
            "/api/environment_status",
            vec![("name", ENV)],
            [true, true, true, true],
        ),
        (
            "/api/deployment_history",
            vec![("name", ENV)],
            [true, true, true, true],
        ),
        (
            "/api/slot_traffic",
            vec![("name", ENV)],
            [true, true, true, true],
        ),
        ("/api/audit_page", vec![], [true, true, true, true]),
        (
            "/api/load_deployment",
            vec![("id", &did)],
            [true, true, true, true],
        ),
        (
            "/api/deploy",
            vec![("environment", ENV), ("version", "v2")],
            [false, true, false, true],
        ),
        (
            "/api/rollback",
            vec![("environment", ENV), ("reason", "matrix")],
            [false, true, false, true],
        ),
        (
            "/api/plan_deploy",
            vec![("environment", ENV), ("version", "v2")],
            [false, true, false, true],
        ),
        ("/api/list_users", vec![], [false, false, false, true]),
        (
            "/api/create_user",
            vec![("username", "newbie"), ("role", "viewer")],
            [false, false, false, true],
        ),
        (
            "/api/change_role",
            vec![("user_id", &tid), ("role", "deployer")],
            [false, false, false, true],
        ),
        (
            "/api/set_user_disabled",
            vec![("user_id", &tid), ("disabled", "false")],
            [false, false, false, true],
        ),
        (
            "/api/reset_password",
            vec![("user_id", &tid)],
            [false, false, false, true],
        ),
        ("/api/list_releases", vec![], [true, true, true, true]),
        (
            "/api/load_release",
            vec![("id", &rid)],
            [true, true, true, true],
        ),
        (
            "/api/load_checklist",
            vec![("environment", ENV)],
            [true, true, true, true],
        ),
        (
            "/api/request_release",
            vec![
                ("environment", ENV),
                ("version", "v3"),
                ("notes", ""),
                ("migration_sql", ""),
            ],
            [false, true, true, true],
        ),
        (
            "/api/sign_item",
            vec![
                ("release", &rid),
                ("item", &rollback_plan),
                ("revision", "1"),
                ("note", "matrix"),
            ],
            [false, true, true, true],
        ),
        (
            "/api/revoke_signoff",
            vec![
                ("release", &rid),
                ("item", &rollback_plan),
                ("reason", "matrix"),
            ],
            [false, true, true, true],
        ),
        (
            "/api/sign_item",
            vec![
                ("release", &rid),
                ("item", &reviewed),
                ("revision", "1"),
                ("note", "matrix"),
            ],
            [false, true, true, true],
        ),
        (
            "/api/deploy_release",
            vec![("release", &rid), ("revision", "1")],
            [false, true, false, true],
        ),
        (
            "/api/edit_release",
            vec![
                ("release", &rid),
                ("revision", "1"),
                ("notes", "matrix"),
                ("migration_sql", ""),
            ],
            [false, true, true, true],
        ),
        (
            "/api/add_checklist_item",
            vec![
                ("environment", ENV),
                ("title", "Matrix item"),
                ("description", ""),
                ("required_role", "approver"),
                ("kind", "manual"),
                ("required", "on"),
            ],
            [false, false, false, true],
        ),
        (
            "/api/remove_checklist_item",
            vec![("environment", ENV), ("item", &template_item)],
            [false, false, false, true],
        ),
        (
            "/api/reset_checklist",
            vec![("environment", ENV)],
            [false, false, false, true],
        ),
        (
            "/api/cancel_release",
            vec![("release", &rid), ("revision", "2"), ("reason", "matrix")],
            [false, true, true, true],
        ),
        (
            "/api/environment_lock",
            vec![("environment", ENV)],
            [true, true, true, true],
        ),
        (
            "/api/load_pipeline_settings",
            vec![("environment", ENV)],
            [true, true, true, true],
        ),
        (
            "/api/save_pipeline_settings",
            vec![
                ("environment", ENV),
                ("health_interval_ms", "250"),
                ("health_deadline_ms", "60000"),
                ("smoke_paths", "/"),
                ("sample_requests", "50"),
                ("p95_ms", "200"),
                ("p99_ms", "500"),
                ("max_error_pct", "1"),
                ("drain_timeout_ms", "30000"),
                ("watch_window_ms", "300000"),
                ("standby_window_ms", "900000"),
            ],
            [false, false, false, true],
        ),
        // Nothing is locked here: an admin is told so; everyone else is
        // refused before that is even looked at.
        (
            "/api/break_lock",
            vec![
                ("environment", ENV),
                ("deployment", &did),
                ("reason", "matrix"),
                ("confirm", "on"),
            ],
            [false, false, false, true],
        ),
        (
            "/api/break_lock",
            vec![
                ("environment", ENV),
                ("deployment", &did),
                ("reason", "matrix"),
            ],
            [false, false, false, true],
        ),
    ];
    let mut report = Vec::new();
    for (i, name) in ["vera", "dora", "abe", "ada"].into_iter().enumerate() {
        let cookie = c.session_for(name).await;
        for (path, form, allowed) in &matrix {
            let users_before = c.count("users").await;
            let deployments_before = c.count("deployments").await;
            let signoffs_before = c.count("signoffs").await;
            let releases_before = c.count("releases").await;
            let template_before = c.count("checklist_items").await;
            let r = c.post(path, form, Some(&cookie), &[]).await;
            // A role refusal reads "<role> may not <action>"; rules say more.
            let denied = r.status.as_u16() == 403 && r.body.contains(" may not ");
            report.push(format!("{path} {name} -> {}", r.status));
            if allowed[i] {
                assert!(!denied, "{name} should be allowed {path}: {}", r.body);
                // Reads have everything they need here: they must fully succeed.
                let read = [
                    "/api/load_overview",
                    "/api/environment_status",
                    "/api/deployment_history",
                    "/api/slot_traffic",
                    "/api/audit_page",
                    "/api/load_deployment",
                    "/api/list_users",
                    "/api/list_releases",
                    "/api/load_release",
                    "/api/load_checklist",
                    "/api/environment_lock",
                    "/api/load_pipeline_settings",
                ];
                if read.contains(path) {
                    assert!(
                        r.status.is_success(),
                        "{name} {path}: {} {}",
                        r.status,
                        r.body
                    );
                }
                assert_ne!(r.status.as_u16(), 401, "{name} {path}: {}", r.body);
            } else {
                assert!(
                    denied,
                    "{name} must be refused {path}: {} {}",
                    r.status, r.body
                );
                assert!(
                    matches!(r.error(), AppError::Forbidden(_)),
                    "{path}: {}",
                    r.body
                );
                assert_eq!(
                    c.count("users").await,
                    users_before,
                    "{name} {path} changed users"
                );
                assert_eq!(
                    c.count("deployments").await,
                    deployments_before,
                    "{name} {path} recorded a deployment"
                );
                for (table, before) in [
                    ("signoffs", signoffs_before),
                    ("releases", releases_before),
                    ("checklist_items", template_before),
                ] {
                    assert_eq!(
                        c.count(table).await,
                        before,
                        "{name} {path} changed {table}"
                    );
                }
            }
        }
    }
    assert_eq!(report.len(), 4 * 32, "{report:#?}");

    // GET routes: the deployment's event stream is a read every role may
    // follow (a finished deployment: its final state, then the end), and
    // nobody without a session.
    let events = format!("/api/deployments/{did}/events");
    for name in ["vera", "dora", "abe", "ada"] {
        let cookie = c.session_for(name).await;
        let r = c.get(&events, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!(
            r.headers.get("content-type").unwrap(),
            "text/event-stream",
            "{name}"
        );
        assert!(
            r.body.starts_with("event: done\ndata: {"),
            "{name}: {}",
            r.body
        );
        assert_eq!(r.body.matches("\n\n").count(), 1, "{name}: {}", r.body);
    }
    let r = c.get(&events, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
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
    let dora_id: i64 = tower_sessions_sqlx_store::sqlx::query_scalar(
        "SELECT id FROM users WHERE username = 'dora'",
    )
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
    assert!(matches!(r.error(), AppError::Refused(m) if m.contains("unknown role")));

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
    let ada_id: i64 = tower_sessions_sqlx_store::sqlx::query_scalar(
        "SELECT id FROM users WHERE username = 'ada'",
    )
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
    assert!(matches!(r.error(), AppError::Refused(m) if m.contains("last enabled admin")));
    let r = c
        .post(
            "/api/change_role",
            &[("user_id", &ada), ("role", "viewer")],
            Some(&admin),
            &[],
        )
        .await;
    assert!(matches!(r.error(), AppError::Refused(m) if m.contains("last enabled admin")));

    // Every change is in the audit log, and no password is.
    let actions: Vec<String> = tower_sessions_sqlx_store::sqlx::query_scalar(
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
    let dump: Vec<String> = tower_sessions_sqlx_store::sqlx::query_scalar(
        "SELECT actor_name || details || COALESCE(target, '') FROM audit_log",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert!(!dump
        .iter()
        .any(|d| d.contains(&new_password) || d.contains(PASSWORD)));
}

/// The signer is whoever the session says: user ids or roles slipped into a
/// sign form are ignored, and the requester is refused however they dress up.
#[tokio::test]
async fn forged_fields_in_a_sign_form_change_nothing() {
    let c = start().await;
    c.user("abe", Role::Approver).await;
    let (release, reviewed, _, _) = c.protected_release("rita").await;
    let ids: Vec<(String, i64)> =
        tower_sessions_sqlx_store::sqlx::query_as("SELECT username, id FROM users")
            .fetch_all(&c.pool)
            .await
            .unwrap();
    let id = |n: &str| ids.iter().find(|(u, _)| u == n).unwrap().1.to_string();
    let (rid, item) = (release.to_string(), reviewed.to_string());

    // The requester claims to be abe, with abe's role: four-eyes still holds.
    let rita = c.session_for("rita").await;
    let abe_id = id("abe");
    let forged = [
        ("release", rid.as_str()),
        ("item", item.as_str()),
        ("revision", "1"),
        ("note", "lgtm"),
        ("signed_by", abe_id.as_str()),
        ("user_id", abe_id.as_str()),
        ("role", "admin"),
    ];
    let r = c.post("/api/sign_item", &forged, Some(&rita), &[]).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    assert!(r.body.contains("four-eyes"), "{}", r.body);
    assert_eq!(c.count("signoffs").await, 0);

    // abe signs while naming rita as the signer: the signature is abe's.
    let abe = c.session_for("abe").await;
    let rita_id = id("rita");
    let forged = [
        ("release", rid.as_str()),
        ("item", item.as_str()),
        ("revision", "1"),
        ("note", "lgtm"),
        ("signed_by", rita_id.as_str()),
    ];
    let r = c.post("/api/sign_item", &forged, Some(&abe), &[]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    let signer: String = tower_sessions_sqlx_store::sqlx::query_scalar(
        "SELECT u.username FROM signoffs s JOIN users u ON u.id = s.signed_by",
    )
    .fetch_one(&c.pool)
    .await
    .unwrap();
    assert_eq!(signer, "abe");

    // A stale form (revision 0) and a GET are refused; neither signs.
    let stale = [
        ("release", rid.as_str()),
        ("item", item.as_str()),
        ("revision", "0"),
        ("note", ""),
    ];
    let r = c.post("/api/sign_item", &stale, Some(&abe), &[]).await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    let r = c
        .get(
            &format!("/api/sign_item?release={rid}&item={item}&revision=1"),
            Some(&abe),
        )
        .await;
    assert!(!r.status.is_success(), "GET signed: {}", r.status);
    assert_eq!(c.count("signoffs").await, 1);
}

/// A deployment's page data over HTTP: its steps say where and why it
/// stopped, every role can read it, and an unknown id is a 404.
#[tokio::test]
async fn a_deployment_reads_with_its_steps_and_says_why_it_failed() {
    let c = start().await;
    let d = c.failed_deploy().await;
    c.user("vera", Role::Viewer).await;
    let cookie = c.session_for("vera").await;
    let r = c
        .post(
            "/api/load_deployment",
            &[("id", &d.id.to_string())],
            Some(&cookie),
            &[],
        )
        .await;
    let v: serde_json::Value = r.json();
    assert_eq!(v["me"]["username"], "vera");
    assert_eq!(v["detail"]["deployment"]["id"], d.id);
    assert_eq!(v["detail"]["deployment"]["status"], "failed");
    let steps: Vec<(String, String)> = v["detail"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("lock", "succeeded"),
        ("preflight", "failed"),
        ("start", "skipped"),
        ("health", "skipped"),
        ("gates", "skipped"),
        ("switch", "skipped"),
        ("drain", "skipped"),
        ("standby", "skipped"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, expected, "{}", r.body);
    let why = v["detail"]["steps"][1]["message"].as_str().unwrap();
    assert!(why.contains("traffic router"), "{why}");
    assert!(
        !r.body.contains("http-test-token"),
        "the proxy token leaked: {}",
        r.body
    );

    let r = c
        .post(
            "/api/load_deployment",
            &[("id", "9999")],
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    assert!(matches!(r.error(), AppError::NotFound(_)), "{}", r.body);
    let r = c.get("/api/deployments/9999/events", Some(&cookie)).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let r = c
        .get(&format!("/api/deployments/{}/events", d.id), Some(&cookie))
        .await;
    assert!(r.body.contains("traffic router"), "{}", r.body);
    assert!(
        !r.body.contains("http-test-token"),
        "the proxy token leaked: {}",
        r.body
    );

    // The page itself needs a session, like every other page, and renders
    // the timeline on the server.
    let path = format!("/deployments/{}", d.id);
    let page = c.get(&path, None).await;
    assert!(
        page.status.is_redirection(),
        "{}: {}",
        page.status,
        page.body
    );
    assert_eq!(page.headers.get(LOCATION).unwrap(), "/login");
    let page = c.get(&path, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Preflight checks"), "{}", page.body);
    assert!(page.body.contains("traffic router"), "{}", page.body);
}
