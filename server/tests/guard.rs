//! What every request passes before a page or server function sees it: the
//! Host allow-list, refusals written to the audit log (and bounded under a
//! flood), security headers, and no name probing by refused callers.

mod support;

use support::*;

/// Audit entries with this action, oldest first: (source address, details).
async fn audited(c: &Console, action: &str) -> Vec<(Option<String>, serde_json::Value)> {
    let rows: Vec<(Option<String>, String)> = engine::store::query_as(
        "SELECT source_ip, details FROM audit_log WHERE action = ? ORDER BY id",
    )
    .bind(action)
    .fetch_all(&c.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(ip, d)| (ip, serde_json::from_str(&d).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_host_the_console_does_not_serve_is_refused_and_audited() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let port = c.origin.rsplit(':').next().unwrap().to_string();
    // DNS rebinding: the attacker's name, resolved to the console's address.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("rebind.example:{port}"),
    ] {
        let r = c
            .http
            .get(format!("{}/login", c.origin))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "Host {host}");
        let r = c
            .http
            .post(format!("{}/api/login", c.origin))
            .header("host", host)
            .form(&[("username", "dora"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::MISDIRECTED_REQUEST,
            "POST with Host {host}"
        );
    }
    assert_eq!(c.count("tower_sessions").await, 0, "no session was created");
    // Six refusals from one address in a minute: one entry, the path named.
    let entries = audited(&c, "request.unknown_host").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0.as_deref(), Some("127.0.0.1"));
    assert_eq!(entries[0].1["path"], "/login");

    // The console's own names still work.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = c
            .http
            .get(format!("{}/login", c.origin))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "Host {host}");
    }
}

#[tokio::test]
async fn refused_requests_are_audited_once_a_minute_with_the_count_left_out() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let dora = c.session_for("dora").await;
    let before = c.count("audit_log").await;

    // A flood of forged cross-site posts and of posts without a session.
    for _ in 0..50 {
        let r = c
            .post(
                "/api/rollback",
                &[("environment", ENV), ("reason", "csrf")],
                Some(&dora),
                &[("origin", "http://evil.example")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .post(
                "/api/rollback",
                &[("environment", ENV), ("reason", "x")],
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let cross = audited(&c, "request.cross_origin").await;
    let anonymous = audited(&c, "request.unauthenticated").await;
    assert_eq!(cross.len(), 1, "{cross:?}");
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");
    assert_eq!(cross[0].1["path"], "/api/rollback");
    assert_eq!(cross[0].1["method"], "POST");
    assert_eq!(cross[0].1["similar_refusals_not_logged"], 0);
    assert_eq!(
        c.count("audit_log").await,
        before + 2,
        "the flood grew the log by one entry per kind"
    );
    assert_eq!(c.count("deployments").await, 0, "nothing ran");

    // The audit page finds them by action.
    let admin = {
        c.user("root", Role::Admin).await;
        c.session_for("root").await
    };
    let r = c
        .post(
            "/api/audit_page",
            &[("filter[action]", "request")],
            Some(&admin),
            &[],
        )
        .await;
    // The answer is (user, page, seal, detail fields); only the page matters here.
    let (_, page, _, _): (
        serde_json::Value,
        model::AuditPage,
        model::AuditSealView,
        serde_json::Value,
    ) = r.json();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"request.cross_origin"), "{actions:?}");
    assert!(actions.contains(&"request.unauthenticated"), "{actions:?}");
}

#[tokio::test]
async fn a_refused_caller_learns_nothing_about_which_names_or_ids_exist() {
    let c = start().await;
    c.user("vic", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    let (release, item, ..) = c.protected_release("dev").await;
    let vic = c.session_for("vic").await;
    let dora = c.session_for("dora").await;
    let (release, item) = (release.to_string(), item.to_string());

    // The same answer for a release that exists and one that does not.
    for id in [release.as_str(), "999999"] {
        let form = [
            ("release", id),
            ("item", item.as_str()),
            ("revision", "1"),
            ("note", "x"),
        ];
        let r = c.post("/api/sign_item", &form, Some(&vic), &[]).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "sign release {id}: {}",
            r.body
        );
        let r = c
            .post(
                "/api/deploy_release",
                &[("release", id), ("revision", "1")],
                Some(&vic),
                &[],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "deploy release {id}: {}",
            r.body
        );
        let r = c
            .post(
                "/api/edit_release",
                &[
                    ("release", id),
                    ("revision", "1"),
                    ("notes", "x"),
                    ("migration_sql", ""),
                ],
                Some(&vic),
                &[],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "edit release {id}: {}",
            r.body
        );
    }
    // And for an environment that exists and one that does not.
    for env in [ENV, "no-such-environment"] {
        let r = c
            .post(
                "/api/reset_checklist",
                &[("environment", env)],
                Some(&dora),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "reset {env}: {}", r.body);
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let dora = c.session_for("dora").await;
    let pages = [c.get("/login", None).await, c.get("/", Some(&dora)).await];
    let api = c.post("/api/whoami", &[], Some(&dora), &[]).await;
    let refused = c
        .post(
            "/api/whoami",
            &[],
            Some(&dora),
            &[("origin", "http://evil.example")],
        )
        .await;
    for r in pages.iter().chain([&api, &refused]) {
        let h = |name: &str| r.headers.get(name).map(|v| v.to_str().unwrap().to_string());
        let csp = h("content-security-policy").expect("a CSP");
        assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(h("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(h("referrer-policy").as_deref(), Some("same-origin"));
        assert_eq!(h("cache-control").as_deref(), Some("no-store"));
    }
    // The nonce in the policy is the one on the page's inline scripts, and
    // it is new for every answer.
    let nonce_of = |r: &Resp| {
        let csp = r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        csp.split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string()
    };
    let (a, b) = (nonce_of(&pages[0]), nonce_of(&pages[1]));
    assert_ne!(a, b);
    assert!(
        pages[0].body.contains(&format!("nonce=\"{a}\"")),
        "the hydration script has no nonce"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_are_answered_429_with_retry_after() {
    let c = start().await;
    c.user("tess", Role::Deployer).await;
    for _ in 0..5 {
        let r = c.login("tess", "not the password", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Locked now (1 s after the fifth failure, doubling after each more):
    // the right password too gets the same refusal, and no session.
    let r = c.login("tess", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(matches!(r.error(), AppError::Throttled { .. }));
    assert_eq!(r.session_cookie(), None);
    // A name that does not exist is locked the same way: a 429 says
    // nothing about whether the account exists.
    for _ in 0..5 {
        c.login("nobody-by-that-name", "not the password", None)
            .await;
    }
    let r = c.login("nobody-by-that-name", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // Once the lock has passed, the right password works.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = c.login("tess", PASSWORD, None).await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}
