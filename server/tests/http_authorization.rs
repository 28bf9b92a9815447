//! Who may do what, decided on the server whatever the browser sends: the
//! role matrix over every server function, viewers, approvers and anonymous
//! callers refused deploys and rollbacks, cross-origin posts refused before
//! anything happens, and forged fields in a sign form ignored.
//!
//! The real axum router from `server::http`, real server functions and a
//! real SQLite file, served on a loopback port (see `support`). No proxy or
//! slot process is involved: every request here is decided before any
//! runtime work, or fails at the pipeline's preflight against an unreachable
//! router.

mod support;

use support::*;

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
    let target_id: i64 =
        engine::store::query_scalar("SELECT id FROM users WHERE username = 'target'")
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
        (
            "/api/slot_output",
            vec![("environment", ENV), ("color", "blue")],
            [false, true, false, true],
        ),
        (
            "/api/set_variable",
            vec![("environment", ENV), ("name", "GREETING"), ("value", "hi")],
            [false, false, false, true],
        ),
        (
            "/api/set_secret",
            vec![
                ("environment", ENV),
                ("name", "API_SECRET"),
                ("secret", "matrix"),
            ],
            [false, false, false, true],
        ),
        (
            "/api/unset_variable",
            vec![("environment", ENV), ("name", "GREETING")],
            [false, false, false, true],
        ),
        // Allowed roles are told the failed deploy cannot be promoted.
        (
            "/api/promote",
            vec![("deployment", &did), ("environment", ENV)],
            [false, true, true, true],
        ),
        (
            "/api/load_environments",
            vec![],
            [false, false, false, true],
        ),
        // The admin creates, edits and archives an environment of its own
        // (the matrix's other rows keep using ENV).
        (
            "/api/create_environment",
            vec![
                ("name", "matrix"),
                ("runtime", "docker"),
                ("artifact", "127.0.0.1:5000/matrix:{version}"),
                ("app_url", "http://127.0.0.1:9/"),
                ("preview_listen", ""),
                ("health_path", "/health"),
                ("admin_url", "http://127.0.0.1:2"),
                ("upstream", ""),
                ("signoff_ttl_hours", "24"),
                ("checklist", "default"),
                ("port", "8080"),
                ("memory_mb", ""),
                ("cpus", ""),
                ("restart", "no"),
                ("network", ""),
            ],
            [false, false, false, true],
        ),
        (
            "/api/edit_environment",
            vec![
                ("environment", "matrix"),
                ("artifact", "127.0.0.1:5000/matrix-app:{version}"),
                ("app_url", "http://127.0.0.1:9/"),
                ("preview_listen", ""),
                ("health_path", "/ready"),
                ("stop_grace_ms", "5000"),
                ("admin_url", "http://127.0.0.1:2"),
                ("upstream", ""),
                ("signoff_ttl_hours", "24"),
                ("port", "9000"),
                ("memory_mb", "256"),
                ("cpus", "1"),
                ("restart", "unless-stopped"),
                ("network", ""),
            ],
            [false, false, false, true],
        ),
        (
            "/api/archive_environment",
            vec![("environment", "matrix")],
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
            let variables_before = c.count("environment_variables").await;
            let secrets_before = c.count("environment_secrets").await;
            let environments_before = c.count("environments").await;
            let r = c.post(path, form, Some(&cookie), &[]).await;
            // A role refusal reads "<role> may not <action>"; rules say more.
            let denied = r.status.as_u16() == 403 && r.body.contains(" may not ");
            report.push(format!("{path} {name} -> {}", r.status));
            if allowed[i] {
                assert!(!denied, "{name} should be allowed {path}: {}", r.body);
                // Reads have everything they need here, and so do the
                // admin's own environment's create, edit and archive: they
                // must fully succeed.
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
                    "/api/slot_output",
                    "/api/load_environments",
                    "/api/create_environment",
                    "/api/edit_environment",
                    "/api/archive_environment",
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
                    ("environment_variables", variables_before),
                    ("environment_secrets", secrets_before),
                    ("environments", environments_before),
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
    assert_eq!(report.len(), 4 * 41, "{report:#?}");

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

/// The signer is whoever the session says: user ids or roles slipped into a
/// sign form are ignored, and the requester is refused however they dress up.
#[tokio::test]
async fn forged_fields_in_a_sign_form_change_nothing() {
    let c = start().await;
    c.user("abe", Role::Approver).await;
    let (release, reviewed, _, _) = c.protected_release("rita").await;
    let ids: Vec<(String, i64)> = engine::store::query_as("SELECT username, id FROM users")
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
    let signer: String = engine::store::query_scalar(
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
