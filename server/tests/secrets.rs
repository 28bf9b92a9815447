//! Environments' secrets are write-only: set by an admin through the
//! settings page's server function (or the CLI), refused to everyone else
//! even called directly, and never found again — not in any page or server
//! function's answer, the audit log, its exports, the checkpoint stream, the
//! database file, any file of the data directory, or the CLI's output.
//! Bad names and values are refused naming the field, changing nothing.
//!
//! A real console (see `support`) and the real `switchyard` binary on the
//! same data directory.

mod support;

use support::*;

/// Long and unlike anything else, so a substring search cannot miss it.
const SECRET: &str = "s3cr3t-Vd9qX2-never-print-me";

async fn switchyard(c: &Console, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = store::switchyard(c._dir.path());
    cmd.args(args).env("RUST_LOG", "debug");
    store::run(cmd, stdin.unwrap_or("")).await
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

#[tokio::test]
async fn a_secret_is_write_only_and_found_nowhere_afterwards() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("vera", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    let ada = c.session_for("ada").await;

    // Only admins set secrets, even calling the server function directly.
    for name in ["vera", "dora"] {
        let cookie = c.session_for(name).await;
        let r = c
            .post(
                "/api/set_secret",
                &[
                    ("environment", ENV),
                    ("name", "API_SECRET"),
                    ("secret", SECRET),
                ],
                Some(&cookie),
                &[],
            )
            .await;
        assert_eq!(r.status.as_u16(), 403, "{name}: {}", r.body);
    }
    assert_eq!(c.count("environment_secrets").await, 0);

    let r = c
        .post(
            "/api/set_secret",
            &[
                ("environment", ENV),
                ("name", "API_SECRET"),
                ("secret", SECRET),
            ],
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Replaced once, through the CLI (value on standard input).
    let cli = switchyard(
        &c,
        &["env", "secret", ENV, "API_SECRET"],
        Some(&format!("{SECRET}\n")),
    )
    .await;
    assert!(cli.status.success(), "{}", store::printed(&cli));
    let r = c
        .post(
            "/api/set_variable",
            &[
                ("environment", ENV),
                ("name", "GREETING"),
                ("value", "hello"),
            ],
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The admin's view: the secret by name, "set", never its value.
    let r = c
        .post(
            "/api/load_pipeline_settings",
            &[("environment", ENV)],
            Some(&ada),
            &[],
        )
        .await;
    let page: serde_json::Value = r.json();
    assert_eq!(page["variables"]["secrets"][0]["name"], "API_SECRET");
    assert_eq!(page["variables"]["secrets"][0]["updated_by"], "system");
    assert_eq!(page["variables"]["variables"][0]["value"], "hello");

    // Everything a person or a program can get back.
    let mut seen: Vec<(String, String)> = Vec::new();
    for cookie in [&ada, &c.session_for("vera").await] {
        for path in [
            "/".to_string(),
            format!("/environments/{ENV}/settings"),
            "/audit".to_string(),
            "/audit?q=API_SECRET".to_string(),
            "/audit/export.jsonl".to_string(),
            "/audit/export.csv".to_string(),
        ] {
            seen.push((format!("GET {path}"), c.get(&path, Some(cookie)).await.body));
        }
        for (path, form) in [
            ("/api/load_pipeline_settings", vec![("environment", ENV)]),
            ("/api/audit_page", vec![]),
            ("/api/environment_status", vec![("name", ENV)]),
            ("/api/load_overview", vec![]),
        ] {
            let r = c.post(path, &form, Some(cookie), &[]).await;
            seen.push((format!("POST {path}"), r.body));
        }
    }
    let show = switchyard(&c, &["env", "show", ENV], None).await;
    assert!(show.status.success(), "{}", store::printed(&show));
    assert!(
        store::printed(&show).contains("secret   API_SECRET (set, updated at"),
        "{}",
        store::printed(&show)
    );
    seen.push(("switchyard env show".into(), store::printed(&show)));
    seen.push(("switchyard env secret".into(), store::printed(&cli)));
    let verify = switchyard(&c, &["audit", "verify"], None).await;
    seen.push(("switchyard audit verify".into(), store::printed(&verify)));
    let audit: Vec<(String, String, Option<String>, Option<String>)> =
        engine::store::query_as("SELECT action, details, target, reason FROM audit_log")
            .fetch_all(&c.pool)
            .await
            .unwrap();
    assert!(audit.iter().any(|(a, ..)| a == "environment.secret"));
    seen.push(("audit_log rows".into(), format!("{audit:?}")));
    for (what, body) in &seen {
        assert!(!body.contains(SECRET), "the secret's value is in {what}");
    }
    // At rest: not in the database (or its WAL), the checkpoints or any file
    // of the data directory — the key file holds a key, not the value.
    match c.pool.dialect() {
        engine::store::Dialect::Sqlite => {
            engine::store::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&c.pool)
                .await
                .unwrap();
            let files = files_under(c._dir.path());
            assert!(files.iter().any(|(p, _)| p.ends_with("switchyard.db")));
        }
        // No file to read: every row of every table, as PostgreSQL writes
        // it out as JSON.
        engine::store::Dialect::Postgres => {
            for t in store::tables(&c.pool).await {
                let rows: Vec<String> = engine::store::query_scalar(&format!(
                    "SELECT CAST(row_to_json(x) AS TEXT) FROM \"{t}\" x"
                ))
                .fetch_all(&c.pool)
                .await
                .unwrap();
                assert!(
                    !rows.iter().any(|r| r.contains(SECRET)),
                    "the secret's value is in table {t}"
                );
            }
        }
    }
    let files = files_under(c._dir.path());
    for (path, bytes) in files {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret's value is in {}",
            path.display()
        );
    }
    // `secrets rotate-key` re-encrypts it under a new key file, printing
    // no value.
    let key_file = c._dir.path().join("secrets.key");
    let old_key = std::fs::read(&key_file).unwrap();
    let rotated = switchyard(&c, &["secrets", "rotate-key"], None).await;
    assert!(rotated.status.success(), "{}", store::printed(&rotated));
    assert!(
        !store::printed(&rotated).contains(SECRET),
        "{}",
        store::printed(&rotated)
    );
    assert_ne!(std::fs::read(&key_file).unwrap(), old_key, "a new key");
    let sealed_under: Vec<String> =
        engine::store::query_scalar("SELECT DISTINCT key_id FROM environment_secrets")
            .fetch_all(&c.pool)
            .await
            .unwrap();
    assert_eq!(sealed_under.len(), 1, "every row under one key");
    // And yet it is there for a slot to start with.
    let env = engine::environments::find(&c.pool, ENV).await.unwrap();
    let secrets = engine::SecretBox::open(c._dir.path()).unwrap();
    let for_slot = engine::slot_env::for_slot(&c.pool, Some(&secrets), env.id, ENV)
        .await
        .unwrap();
    assert!(for_slot
        .0
        .contains(&("API_SECRET".to_string(), SECRET.to_string())));
    assert!(for_slot
        .0
        .contains(&("GREETING".to_string(), "hello".to_string())));
}

#[tokio::test]
async fn bad_variables_are_refused_naming_the_field_and_change_nothing() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    // (server function, fields, the field named, words of the message)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: [Case; 6] = [
        (
            "/api/set_variable",
            vec![("name", "1ABC"), ("value", "x")],
            "name",
            "letter or _",
        ),
        (
            "/api/set_variable",
            vec![("name", "MY VAR"), ("value", "x")],
            "name",
            "letter or _",
        ),
        (
            "/api/set_variable",
            vec![("name", "PORT"), ("value", "9")],
            "name",
            "set by Switchyard",
        ),
        (
            "/api/set_variable",
            vec![("name", "DB_PASSWORD"), ("value", "hunter2")],
            "name",
            "looks like a credential",
        ),
        (
            "/api/set_secret",
            vec![("name", "API_TOKEN"), ("secret", "")],
            "secret",
            "cannot be empty",
        ),
        (
            "/api/set_secret",
            vec![("name", "SWITCHYARD_X"), ("secret", "y")],
            "name",
            "set by Switchyard",
        ),
    ];
    for (path, fields, field, words) in cases {
        let mut form = vec![("environment", ENV)];
        form.extend(fields.iter().copied());
        let r = c.post(path, &form, Some(&ada), &[]).await;
        assert_eq!(r.status.as_u16(), 400, "{path} {fields:?}: {}", r.body);
        match r.error() {
            AppError::InvalidInput { field: f, message } => {
                assert_eq!(f, field, "{fields:?}: {message}");
                assert!(message.contains(words), "{message}");
            }
            e => panic!("{fields:?}: {e:?}"),
        }
    }
    // An unknown environment is a 404; removing what is not there too.
    let r = c
        .post(
            "/api/set_variable",
            &[("environment", "nowhere"), ("name", "A"), ("value", "1")],
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let r = c
        .post(
            "/api/unset_variable",
            &[("environment", ENV), ("name", "A")],
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    assert_eq!(c.count("environment_variables").await, 0);
    assert_eq!(c.count("environment_secrets").await, 0);

    // A name is a variable or a secret, never both: setting one replaces
    // the other.
    let set = |path: &'static str, field: &'static str, v: &'static str| {
        let ada = ada.clone();
        let c = &c;
        async move {
            c.post(
                path,
                &[("environment", ENV), ("name", "API_URL"), (field, v)],
                Some(&ada),
                &[],
            )
            .await
        }
    };
    assert_eq!(
        set("/api/set_variable", "value", "http://a").await.status,
        StatusCode::OK
    );
    assert_eq!(
        set("/api/set_secret", "secret", "http://b").await.status,
        StatusCode::OK
    );
    assert_eq!(c.count("environment_variables").await, 0);
    assert_eq!(c.count("environment_secrets").await, 1);
}

/// A slot's recent output is for deployers and admins, and a secret the
/// service printed is masked by name.
#[tokio::test]
async fn slot_output_masks_secrets_and_is_for_deployers() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    c.user("vera", Role::Viewer).await;
    c.engine
        .set_secret(&engine::Actor::system(), ENV, "API_SECRET", SECRET)
        .await
        .unwrap();
    // What the process runtime wrote for a slot whose service printed its
    // own credential.
    let logs = c._dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join(format!("{ENV}-blue.log")),
        format!("starting\nconnecting with token {SECRET}\nready\n"),
    )
    .unwrap();
    let dora = c.session_for("dora").await;
    let r = c
        .post(
            "/api/slot_output",
            &[("environment", ENV), ("color", "blue")],
            Some(&dora),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out: model::SlotOutputView = r.json();
    assert_eq!(
        out.text,
        "starting\nconnecting with token [secret API_SECRET]\nready\n"
    );
    assert!(!r.body.contains(SECRET));
    // A slot that never ran printed nothing; a colour that is not one is
    // refused by name.
    let r = c
        .post(
            "/api/slot_output",
            &[("environment", ENV), ("color", "green")],
            Some(&dora),
            &[],
        )
        .await;
    assert_eq!(r.json::<model::SlotOutputView>().text, "");
    let r = c
        .post(
            "/api/slot_output",
            &[("environment", ENV), ("color", "purple")],
            Some(&dora),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert!(matches!(r.error(), AppError::InvalidInput { field, .. } if field == "color"));
    // Viewers do not read slots' output.
    let vera = c.session_for("vera").await;
    let r = c
        .post(
            "/api/slot_output",
            &[("environment", ENV), ("color", "blue")],
            Some(&vera),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
}

/// The Environments page's create form takes a registry login: the password
/// becomes the new environment's secret REGISTRY_PASSWORD in the same
/// transaction (audited by name only), the login names it, and its value is
/// found nowhere afterwards. A create refused for any field stores no
/// secret; half a login is refused naming the missing half.
#[tokio::test]
async fn a_registry_password_given_at_create_is_a_secret_found_nowhere() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let nul_password = format!("{SECRET}\0");
    let mut seen: Vec<(String, String)> = Vec::new();
    for (overrides, field) in [
        (vec![("health_path", "health")], "health_path"),
        (vec![("registry_user", "")], "registry_user"),
        (vec![("registry_password", "")], "registry_password"),
        (vec![("registry_user", "c:i")], "registry_user"),
        (
            vec![("registry_password", nul_password.as_str())],
            "registry_password",
        ),
    ] {
        let audit_before = c.count("audit_log").await;
        let r = c
            .post(
                "/api/create_environment",
                &registry_form(&overrides),
                Some(&ada),
                &[],
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{overrides:?}: {}", r.body);
        assert!(
            matches!(r.error(), AppError::InvalidInput { field: f, .. } if f == field),
            "{overrides:?}: {}",
            r.body
        );
        seen.push((format!("refused create {overrides:?}"), r.body));
        assert_eq!(c.count("environments").await, 1, "{overrides:?}");
        assert_eq!(c.count("environment_secrets").await, 0, "{overrides:?}");
        assert_eq!(c.count("audit_log").await, audit_before, "{overrides:?}");
    }

    let r = c
        .post(
            "/api/create_environment",
            &registry_form(&[]),
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    seen.push(("create".into(), r.body));
    let system = engine::Actor::system();
    let shop = c.engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(shop.docker.registry_user.as_deref(), Some("ci"));
    assert_eq!(
        shop.docker.registry_password_secret.as_deref(),
        Some("REGISTRY_PASSWORD")
    );
    assert_eq!(shop.secrets, ["REGISTRY_PASSWORD"]);
    let env = engine::environments::find(&c.pool, "shop").await.unwrap();
    let key = engine::SecretBox::open(c._dir.path()).unwrap();
    assert_eq!(
        engine::slot_env::secret_value(&c.pool, Some(&key), env.id, "shop", "REGISTRY_PASSWORD")
            .await
            .unwrap()
            .as_deref(),
        Some(SECRET),
        "stored, sealed, for the pull"
    );
    let audit: Vec<(String, Option<String>, String)> = engine::store::query_as(
        "SELECT action, target, details FROM audit_log WHERE environment = 'shop' ORDER BY id",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert_eq!(audit[0].0, "environment.create", "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|(a, t, _)| a == "environment.secret" && t.as_deref() == Some("REGISTRY_PASSWORD")),
        "{audit:?}"
    );

    // Everything an admin can get back, and every audit row.
    for path in [
        "/environments",
        "/environments/shop",
        "/environments/shop/settings",
        "/audit",
        "/audit/export.jsonl",
        "/audit/export.csv",
    ] {
        seen.push((format!("GET {path}"), c.get(path, Some(&ada)).await.body));
    }
    for (path, form) in [
        ("/api/load_environments", vec![]),
        ("/api/load_pipeline_settings", vec![("environment", "shop")]),
        ("/api/audit_page", vec![]),
    ] {
        let r = c.post(path, &form, Some(&ada), &[]).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
        seen.push((format!("POST {path}"), r.body));
    }
    let all_audit: Vec<(String, String, Option<String>, Option<String>)> =
        engine::store::query_as("SELECT action, details, target, reason FROM audit_log")
            .fetch_all(&c.pool)
            .await
            .unwrap();
    seen.push(("audit_log rows".into(), format!("{all_audit:?}")));
    let show = switchyard(&c, &["env", "show", "shop"], None).await;
    assert!(show.status.success(), "{}", store::printed(&show));
    seen.push(("switchyard env show".into(), store::printed(&show)));
    let export = switchyard(&c, &["export"], None).await;
    assert!(export.status.success(), "{}", store::printed(&export));
    seen.push(("switchyard export".into(), store::printed(&export)));
    for (what, body) in &seen {
        assert!(!body.contains(SECRET), "the password is in {what}");
    }
}

/// The create form of the Environments page with a registry login, with
/// `overrides`.
fn registry_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
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
        ("registry_user", "ci"),
        ("registry_password", SECRET),
    ];
    for (k, v) in overrides {
        form.iter_mut().find(|(f, _)| f == k).unwrap().1 = v;
    }
    form
}
