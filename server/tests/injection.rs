//! Stored and reflected script injection, tried on every page.
//!
//! Every text column of the schema is either filled here with injection
//! payloads — straight into the database, so that what is tested is the
//! rendering, whatever validation let through or a future face writes — or
//! listed as not holding people's text. A column added by a migration and in
//! neither list fails the test until someone decides which it is.
//!
//! Then every page is rendered through the real router (server-side HTML with
//! its streamed resource chunks and hydration data) and parsed as a browser
//! does: no element, attribute or script may come out of a payload.

mod support;

use support::*;

/// Text columns whose content people write (directly, or through a name they
/// chose): filled with payloads.
const WRITABLE: &[(&str, &str)] = &[
    ("users", "username"),
    ("environments", "name"),
    ("environments", "app_url"),
    ("environments", "artifact_template"),
    ("environments", "health_path"),
    ("environments", "health_body"),
    ("environments", "upstream_environment"),
    ("environments", "backup_command"),
    ("environments", "gate_smoke_paths"),
    ("environments", "preview_listen"),
    ("environments", "nginx_conf"),
    ("environments", "nginx_include"),
    ("environments", "nginx_pid_file"),
    ("environments", "nginx_binary"),
    ("environments", "nginx_prefix"),
    ("environments", "nginx_upstream"),
    ("environments", "proxy_admin_url"),
    ("environments", "archived_by"),
    ("environments", "docker_volumes"),
    ("environments", "docker_restart"),
    ("environments", "docker_network"),
    ("environments", "docker_registry_user"),
    ("environments", "docker_registry_secret"),
    // Host names, one per line, and the route's path prefix.
    ("environments", "route_hosts"),
    ("environments", "route_path_prefix"),
    ("slots", "version"),
    ("slots", "address"),
    ("slots", "handle"),
    ("slots", "last_health_message"),
    ("deployments", "from_version"),
    ("deployments", "to_version"),
    ("deployments", "reason"),
    ("deployments", "message"),
    ("deployments", "holder"),
    ("deployment_steps", "message"),
    ("checklist_items", "title"),
    ("checklist_items", "description"),
    ("releases", "version"),
    ("releases", "artifact"),
    ("releases", "notes"),
    ("releases", "migration_sql"),
    ("release_items", "title"),
    ("release_items", "description"),
    ("signoffs", "note"),
    ("signoffs", "void_reason"),
    ("deployment_watches", "message"),
    ("login_throttle", "key"),
    ("environment_variables", "name"),
    ("environment_variables", "value"),
    ("environment_variables", "updated_by"),
    ("environment_secrets", "name"),
    ("environment_secrets", "updated_by"),
    ("environment_declared_secrets", "name"),
    ("api_tokens", "name"),
    // A JSON array of names: filled as an array holding the payload.
    ("api_tokens", "environments"),
    ("api_tokens", "last_used_ip"),
    ("freeze_windows", "reason"),
    ("freeze_windows", "created_by"),
    ("webhooks", "url"),
    ("webhooks", "created_by"),
    // The receiver's answer (a redirect's Location) is in the error text.
    ("webhook_deliveries", "last_error"),
    ("deployment_holds", "preview_url"),
    ("deployment_holds", "decided_by"),
    ("deployment_holds", "reason"),
    // JSON: filled as a setting whose header and cookie names and values
    // are the payload.
    ("deployment_holds", "canary"),
    ("deployment_holds", "canary_by"),
    // Append-only: filled through the engine's own append (see `fill_audit`).
    ("audit_log", "actor_name"),
    ("audit_log", "source_ip"),
    ("audit_log", "environment"),
    ("audit_log", "target"),
    ("audit_log", "reason"),
    ("audit_log", "details"),
];

/// Text columns that hold no one's words: enumerations the schema checks,
/// times the console writes, hashes and secrets never rendered.
const NOT_PEOPLES_TEXT: &[(&str, &str, &str)] = &[
    (
        "users",
        "password_hash",
        "argon2 PHC string, never rendered",
    ),
    ("users", "role", "CHECK-ed enumeration"),
    ("users", "created_at", "time written by the console"),
    ("environments", "runtime", "CHECK-ed enumeration"),
    ("environments", "router", "CHECK-ed enumeration"),
    ("environments", "archived_at", "time written by the console"),
    (
        "environments",
        "proxy_token_file",
        "a secret's path, never rendered",
    ),
    ("environments", "active_color", "CHECK-ed enumeration"),
    ("environments", "created_at", "time written by the console"),
    ("slots", "color", "CHECK-ed enumeration"),
    ("slots", "state", "CHECK-ed enumeration"),
    ("slots", "last_health_at", "time written by the console"),
    ("slots", "updated_at", "time written by the console"),
    ("slots", "standby_until", "time written by the console"),
    ("deployments", "kind", "CHECK-ed enumeration"),
    ("deployments", "status", "CHECK-ed enumeration"),
    ("deployments", "from_slot", "CHECK-ed enumeration"),
    ("deployments", "to_slot", "CHECK-ed enumeration"),
    ("deployments", "started_at", "time written by the console"),
    ("deployments", "finished_at", "time written by the console"),
    ("deployments", "heartbeat_at", "time written by the console"),
    ("deployment_steps", "name", "step names are the engine's"),
    ("deployment_steps", "status", "CHECK-ed enumeration"),
    (
        "deployment_steps",
        "started_at",
        "time written by the console",
    ),
    (
        "deployment_steps",
        "finished_at",
        "time written by the console",
    ),
    ("checklist_items", "required_role", "CHECK-ed enumeration"),
    ("checklist_items", "auto_check", "CHECK-ed enumeration"),
    (
        "checklist_items",
        "created_at",
        "time written by the console",
    ),
    ("releases", "status", "CHECK-ed enumeration"),
    ("releases", "created_at", "time written by the console"),
    ("releases", "updated_at", "time written by the console"),
    ("release_items", "required_role", "CHECK-ed enumeration"),
    ("release_items", "auto_check", "CHECK-ed enumeration"),
    ("signoffs", "signed_at", "time written by the console"),
    ("signoffs", "expires_at", "time written by the console"),
    ("signoffs", "voided_at", "time written by the console"),
    ("login_throttle", "kind", "CHECK-ed enumeration"),
    (
        "environment_variables",
        "updated_at",
        "time written by the console",
    ),
    (
        "environment_secrets",
        "updated_at",
        "time written by the console",
    ),
    (
        "environment_secrets",
        "key_id",
        "hex digest, never rendered",
    ),
    (
        "deployment_watches",
        "slot",
        "slot colour written by the engine",
    ),
    ("deployment_watches", "status", "CHECK-ed enumeration"),
    (
        "deployment_watches",
        "started_at",
        "time written by the console",
    ),
    ("deployment_watches", "until", "time written by the console"),
    (
        "deployment_watches",
        "finished_at",
        "time written by the console",
    ),
    ("audit_log", "at", "time written by the console"),
    ("audit_log", "actor_kind", "CHECK-ed enumeration"),
    ("audit_log", "action", "the engine's action names"),
    ("audit_log", "result", "CHECK-ed enumeration"),
    ("audit_log", "prev_hash", "hex digest"),
    ("audit_log", "hash", "hex digest"),
    ("tower_sessions", "id", "session id, never rendered"),
    (
        "api_tokens",
        "prefix",
        "random letters and digits the console generates",
    ),
    ("api_tokens", "secret_sha256", "hex digest, never rendered"),
    ("api_tokens", "kind", "CHECK-ed enumeration"),
    ("api_tokens", "role", "CHECK-ed enumeration"),
    ("api_tokens", "created_at", "time written by the console"),
    ("api_tokens", "expires_at", "time written by the console"),
    ("api_tokens", "last_used_at", "time written by the console"),
    ("api_tokens", "revoked_at", "time written by the console"),
    ("freeze_windows", "kind", "CHECK-ed enumeration"),
    (
        "freeze_windows",
        "starts_local",
        "parsed as a date and time when written; shown rebuilt from the parsed value",
    ),
    (
        "freeze_windows",
        "ends_local",
        "parsed as a date and time when written; shown rebuilt from the parsed value",
    ),
    (
        "freeze_windows",
        "days",
        "parsed as weekdays when written; shown rebuilt from the parsed value",
    ),
    (
        "freeze_windows",
        "start_time",
        "parsed as HH:MM when written; shown rebuilt from the parsed value",
    ),
    (
        "freeze_windows",
        "time_zone",
        "an IANA zone name checked when written",
    ),
    (
        "freeze_windows",
        "created_at",
        "time written by the console",
    ),
    ("deployment_holds", "held_at", "time written by the console"),
    ("deployment_holds", "until", "time written by the console"),
    ("deployment_holds", "decision", "CHECK-ed enumeration"),
    (
        "deployment_holds",
        "canary_at",
        "time written by the console",
    ),
    (
        "deployment_holds",
        "canary_writing_since",
        "time written by the console",
    ),
    (
        "deployment_holds",
        "decided_at",
        "time written by the console",
    ),
    ("_sqlx_migrations", "description", "migration file names"),
    (
        "leases",
        "name",
        "round name the console writes; never rendered",
    ),
    (
        "leases",
        "holder",
        "console identity (host/pid/start/engine) the console writes; never rendered",
    ),
    ("leases", "expires_at", "time written by the console"),
    (
        "deployment_watches",
        "holder",
        "console identity (host/pid/start/engine) the console writes; never rendered",
    ),
    (
        "deployment_watches",
        "heartbeat_at",
        "time written by the console",
    ),
    (
        "webhooks",
        "events",
        "parsed as event names when written; shown rebuilt from the parsed value",
    ),
    ("webhooks", "format", "CHECK-ed enumeration"),
    ("webhooks", "secret_key_id", "hex key id, never rendered"),
    ("webhooks", "created_at", "time written by the console"),
    ("webhooks", "removed_at", "time written by the console"),
    (
        "webhook_deliveries",
        "message_id",
        "random id the console generates",
    ),
    (
        "webhook_deliveries",
        "event",
        "event name the console writes; shown rebuilt from the parsed value",
    ),
    (
        "webhook_deliveries",
        "payload",
        "JSON the console builds for receivers; never rendered",
    ),
    ("webhook_deliveries", "status", "CHECK-ed enumeration"),
    (
        "webhook_deliveries",
        "created_at",
        "time written by the console",
    ),
];

/// Markup that, if rendered raw anywhere, leaves an element carrying
/// `data-xss` or a script of its own; the tag says which column it came from.
fn markup_payload(tag: &str) -> String {
    format!(
        "{tag}</textarea></title></style></script><b data-xss=\"{tag}\">x</b>\
         <script>document.body.dataset.xss=\"{tag}\"</script>\" data-xss=\"{tag}\" ' data-xss='{tag}'"
    )
}

/// A link target that would run script if a page used it as one.
fn url_payload(tag: &str) -> String {
    format!("javascript:document.body.dataset.xss='{tag}'")
}

async fn text_columns(pool: &Pool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in store::tables(pool).await {
        for c in store::text_columns(pool, &t).await {
            out.push((t.clone(), c));
        }
    }
    out
}

#[tokio::test]
async fn every_text_column_is_either_filled_with_payloads_or_explained() {
    let c = start().await;
    let unclassified: Vec<String> = text_columns(&c.pool)
        .await
        .into_iter()
        .filter(|(t, col)| {
            !WRITABLE.contains(&(t.as_str(), col.as_str()))
                && !NOT_PEOPLES_TEXT
                    .iter()
                    .any(|(nt, nc, _)| nt == t && nc == col)
        })
        .map(|(t, col)| format!("{t}.{col}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "text columns neither in WRITABLE (gets payloads) nor in NOT_PEOPLES_TEXT (says why not): {unclassified:?}"
    );
    // And the lists name nothing that does not exist (a renamed column would
    // otherwise silently drop out of the matrix).
    let all = text_columns(&c.pool).await;
    for (t, col) in WRITABLE {
        assert!(
            all.iter().any(|(at, ac)| at == t && ac == col),
            "WRITABLE names {t}.{col}, which the schema does not have"
        );
    }
}

/// What the matrix renders: a release with items and a signature, a failed
/// deployment with steps, a running one holding the lock, a checklist, a
/// throttled sign-in, users, and audit entries.
struct Scene {
    admin: String,
    /// The release's requester: the only one shown its edit form.
    requester: String,
    release: i64,
    deployment: i64,
}

async fn build_scene(c: &Console) -> Scene {
    c.user("root", Role::Admin).await;
    let lead = engine::users::create(&c.pool, "lead", PASSWORD, Role::Approver)
        .await
        .unwrap();
    c.user("victim", Role::Viewer).await;
    // Before the checklist exists: without one, a deploy needs no release.
    let deployment = c.failed_deploy().await.id;
    let (release, item, _, _) = c.protected_release("dev").await;
    let engine = &c.engine;
    let view = engine
        .release(&engine::Actor::user(lead.clone()), release)
        .await
        .unwrap();
    engine
        .sign_item(
            &engine::Actor::user(lead),
            release,
            item,
            view.revision,
            "reviewed",
        )
        .await
        .unwrap();
    // A second deployment, running: the environment's lock, with its holder.
    engine::store::query(
        "INSERT INTO deployments (environment_id, kind, status, from_version, to_version, \
         from_slot, to_slot, reason, message, started_at, holder, heartbeat_at) \
         SELECT environment_id, kind, 'running', from_version, to_version, from_slot, to_slot, \
         reason, message, started_at, 'host/1/1/x', started_at FROM deployments WHERE id = ?",
    )
    .bind(deployment)
    .execute(&c.pool)
    .await
    .unwrap();
    // The failed deploy was held at preview and aborted with a reason:
    // its page shows the preview address, who aborted and why.
    engine::holds::begin(
        &c.pool,
        deployment,
        "http://127.0.0.1:9/",
        chrono::Utc::now() + chrono::Duration::minutes(30),
    )
    .await
    .unwrap();
    engine::store::query(
        "UPDATE deployment_holds SET decision = 'abort', decided_by = 'dev', reason = 'wrong', \
         decided_at = held_at WHERE deployment_id = ?",
    )
    .bind(deployment)
    .execute(&c.pool)
    .await
    .unwrap();
    // A freeze window (in the future: deploys go on), listed on the
    // settings page with its reason and who added it.
    engine
        .add_freeze(
            &engine::Actor::system(),
            ENV,
            &model::NewFreeze {
                reason: "holiday".into(),
                kind: model::FreezeKind::Once,
                starts: Some("2999-01-01 00:00".into()),
                ends: Some("2999-01-02 00:00".into()),
                days: None,
                start_time: None,
                duration_minutes: None,
                time_zone: None,
            },
        )
        .await
        .unwrap();
    // A sign-in throttled for a while (the key is what the person typed).
    for _ in 0..8 {
        c.login("nobody-in-particular", "wrong password!!", None)
            .await;
    }
    // A variable and a secret, shown on the settings page to admins.
    let system = engine::Actor::system();
    engine
        .set_variable(&system, ENV, "GREETING", "hello")
        .await
        .unwrap();
    engine
        .set_secret(&system, ENV, "API_SECRET", "not shown")
        .await
        .unwrap();
    // A secret the configuration declares before its value is set.
    let mut config = engine.environment_config(&system, ENV).await.unwrap();
    config.secrets.push("DECLARED_SECRET".into());
    engine.edit_environment(&system, &config).await.unwrap();
    // An archived environment, listed by name, time and who archived it.
    let mut retired = NewEnvironment::new(
        "retired",
        "http://127.0.0.1:9/",
        "/bin/true {version}",
        "http://127.0.0.1:9",
        "/nonexistent/token",
    );
    retired.watch_window = std::time::Duration::ZERO;
    let retired = environments::create(&c.pool, &retired).await.unwrap();
    engine::environments::archive(&c.pool, retired.id, "root")
        .await
        .unwrap();
    // API tokens, one used (its address is shown), one limited and revoked.
    for (owner, envs) in [("dev", None), ("root", Some(vec![ENV.to_string()]))] {
        let user = engine::users::find_by_name(&c.pool, owner)
            .await
            .unwrap()
            .unwrap();
        let actor = engine::Actor::user(user);
        let issued = engine
            .create_token(
                &actor,
                None,
                &model::NewToken {
                    name: format!("{owner}-ci"),
                    kind: model::TokenKind::Personal,
                    role: Role::Viewer,
                    environments: envs,
                    expires_in_days: 30,
                },
            )
            .await
            .unwrap();
        engine
            .token_actor(&issued.secret, Some("192.0.2.1".into()))
            .await
            .unwrap();
        if owner == "root" {
            engine.revoke_token(&actor, issued.token.id).await.unwrap();
        }
    }
    // A webhook with a delivery that was given up (so the console's round
    // leaves it), its error text from the receiver.
    let root = engine::Actor::user(
        engine::users::find_by_name(&c.pool, "root")
            .await
            .unwrap()
            .unwrap(),
    );
    let hook = engine
        .add_webhook(
            &root,
            ENV,
            &model::NewWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                events: vec![],
                format: model::WebhookFormat::Standard,
                allow_private: true,
            },
        )
        .await
        .unwrap();
    engine::store::query(
        "INSERT INTO webhook_deliveries (webhook_id, message_id, event, payload, status, \
         attempts, created_at, last_error) VALUES (?, 'msg_1', 'deploy.failed', '{}', \
         'gave_up', 3, '2026-12-05T00:00:00Z', 'redirect (302) to /x not followed')",
    )
    .bind(hook.webhook.id)
    .execute(&c.pool)
    .await
    .unwrap();
    let admin = c.session_for("root").await;
    let requester = c.session_for("dev").await;
    Scene {
        admin,
        requester,
        release,
        deployment,
    }
}

/// Overwrites every writable column of every row with `payload(tag)`, the
/// tag naming the column; the old value follows it, so unique columns stay
/// unique.
async fn fill(c: &Console, payload: fn(&str) -> String) {
    for (table, column) in WRITABLE.iter().filter(|(t, _)| *t != "audit_log") {
        // The signed-in admin keeps a name they can sign in with.
        let rows = if *table == "users" {
            "WHERE role <> 'admin'"
        } else {
            ""
        };
        let postgres = c.pool.dialect() == engine::store::Dialect::Postgres;
        let value = if (*table, *column) == ("api_tokens", "environments") {
            if postgres {
                "CAST(json_build_array(CAST(? AS TEXT) || '#') AS TEXT)"
            } else {
                "json_array(? || '#')"
            }
        } else if (*table, *column) == ("deployment_holds", "canary") {
            if postgres {
                "CAST(json_build_object('percent', 10, \
                 'header', json_build_object('name', CAST(?1 AS TEXT), 'value', CAST(?1 AS TEXT)), \
                 'cookie', json_build_object('name', CAST(?1 AS TEXT), 'value', CAST(?1 AS TEXT))) AS TEXT)"
            } else {
                "json_object('percent', 10, 'header', json_object('name', ?1, 'value', ?1), \
                 'cookie', json_object('name', ?1, 'value', ?1))"
            }
        } else {
            "? || '#' || COALESCE({column}, '')"
        };
        let value = value.replace("{column}", column);
        engine::store::query(&format!("UPDATE {table} SET {column} = {value} {rows}"))
            .bind(payload(&format!("{table}.{column}")))
            .execute(&c.pool)
            .await
            .unwrap_or_else(|e| panic!("filling {table}.{column}: {e}"));
    }
    fill_audit(c, payload).await;
}

/// The audit log refuses UPDATE: its payloads go in as new entries, through
/// the same append every action uses, and through a failed sign-in.
async fn fill_audit(c: &Console, payload: fn(&str) -> String) {
    let engine = &c.engine;
    let p = |col: &str| payload(&format!("audit_log.{col}"));
    let mut ev = engine::audit::Event::new(
        engine::audit::AuditActor::Anonymous {
            attempted: p("actor_name"),
        },
        "auth.login",
        engine::audit::Outcome::Failed,
    );
    ev.source_ip = Some(p("source_ip"));
    ev.environment = Some(p("environment"));
    ev.target = Some(p("target"));
    ev.reason = Some(p("reason"));
    ev.details = serde_json::json!({ "error": p("details"), "link": p("details.link") });
    engine.audit(ev).await.unwrap();
    c.login(&p("login.username"), "wrong password!!", None)
        .await;
}

/// Every page of the console (each is rendered for the admin, who sees the
/// most, and for the requester of the release, who alone sees its edit form),
/// with the status each of them gets: a refusal or a missing page is still a
/// whole page, and its status never depends on timing (pages render whole).
async fn pages(c: &Console, s: &Scene) -> Vec<(String, (StatusCode, StatusCode))> {
    let env: String = engine::store::query_scalar("SELECT name FROM environments LIMIT 1")
        .fetch_one(&c.pool)
        .await
        .unwrap();
    let env = model::query_value(&env);
    let reflected = model::query_value(&markup_payload("reflected.query"));
    const OK: StatusCode = StatusCode::OK;
    const BOTH: (StatusCode, StatusCode) = (OK, OK);
    const MISSING: (StatusCode, StatusCode) = (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND);
    vec![
        ("/login".into(), BOTH),
        ("/".into(), BOTH),
        ("/releases".into(), BOTH),
        (format!("/releases/{}", s.release), BOTH),
        (format!("/deployments/{}", s.deployment), BOTH),
        (format!("/deployments/{}", s.deployment + 1), BOTH),
        ("/audit".into(), BOTH),
        (
            format!(
                "/audit?actor={reflected}&action={reflected}&environment={reflected}&since=2026-11-22&until=2026-11-22T18:00&q={reflected}"
            ),
            BOTH,
        ),
        // A bound that is no time is refused, and the form shows it back.
        (
            format!("/audit?since={reflected}&until={reflected}"),
            (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST),
        ),
        // Only admins manage people.
        ("/users".into(), (OK, StatusCode::FORBIDDEN)),
        ("/tokens".into(), BOTH),
        (format!("/environments/{env}/checklist"), BOTH),
        (format!("/environments/{env}/lock"), BOTH),
        (format!("/environments/{env}/settings"), BOTH),
        // Only admins manage webhooks.
        (
            format!("/environments/{env}/webhooks"),
            (OK, StatusCode::FORBIDDEN),
        ),
        // Only admins manage environments (variables' values are there).
        ("/environments".into(), (OK, StatusCode::FORBIDDEN)),
        (format!("/environments/{env}"), (OK, StatusCode::FORBIDDEN)),
        (format!("/environments/{reflected}"), (OK, StatusCode::FORBIDDEN)),
        (format!("/environments/{reflected}/settings"), MISSING),
        (format!("/no-such-page/{reflected}"), MISSING),
    ]
}

/// What a browser would build from `html` that came out of a payload.
fn injected(html: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let mut found = Vec::new();
    for node in doc.root_element().descendants() {
        let Some(el) = scraper::ElementRef::wrap(node) else {
            continue;
        };
        let e = el.value();
        for (name, value) in e.attrs() {
            if name == "data-xss" {
                found.push(format!("<{} data-xss={value:?}>", e.name()));
            }
            if name.starts_with("on") {
                found.push(format!("<{} {name}={value:?}>", e.name()));
            }
            let is_url = matches!(
                name,
                "href" | "src" | "action" | "formaction" | "xlink:href"
            );
            if is_url && value.trim().to_ascii_lowercase().starts_with("javascript:") {
                found.push(format!("<{} {name}={value:?}>", e.name()));
            }
        }
        if e.name() == "script" {
            let text: String = el.text().collect();
            if text.trim_start().starts_with("document.body.dataset.xss") {
                found.push(format!("<script>{}</script>", text.trim()));
            }
        }
    }
    found
}

async fn assert_no_injection(c: &Console, s: &Scene, payload: fn(&str) -> String) {
    fill(c, payload).await;
    let mut failures = Vec::new();
    let people = [("admin", &s.admin), ("requester", &s.requester)];
    for ((path, statuses), (who, session)) in pages(c, s)
        .await
        .into_iter()
        .flat_map(|p| people.map(|who| (p.clone(), who)))
    {
        let r = c.get(&path, Some(session)).await;
        let expected = match who {
            "admin" => statuses.0,
            _ => statuses.1,
        };
        assert_eq!(r.status, expected, "GET {path} as the {who}");
        assert!(
            r.body.contains("</html>"),
            "GET {path}: the page did not render to the end"
        );
        for f in injected(&r.body) {
            failures.push(format!("{path} as the {who}: {f}"));
        }
    }
    assert!(
        failures.is_empty(),
        "payloads came out as markup:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn no_payload_in_any_writable_field_becomes_markup_on_any_page() {
    let c = start().await;
    let s = build_scene(&c).await;
    // The detector itself finds what it looks for.
    assert_eq!(
        injected(&format!("<p>{}</p>", markup_payload("t"))).len(),
        2
    );
    assert_no_injection(&c, &s, markup_payload).await;

    // The payload is on the pages, as text: the fields were rendered.
    let release = c
        .get(&format!("/releases/{}", s.release), Some(&s.requester))
        .await;
    assert!(
        release.body.contains("releases.notes&lt;"),
        "the release page does not show its notes"
    );
    assert!(
        release.body.contains("data-testid=\"edit-notes\""),
        "the requester is not shown the edit form"
    );
    let audit = c.get("/audit", Some(&s.admin)).await;
    assert!(
        audit.body.contains("audit_log.reason&lt;"),
        "the audit page does not show the entry"
    );
    let envs = c.get("/environments/x", Some(&s.admin)).await;
    for shown in [
        "environments.archived_by&lt;",
        "environments.artifact_template&lt;",
    ] {
        assert!(
            envs.body.contains(shown),
            "the environments page does not show {shown}"
        );
    }
}

#[tokio::test]
async fn no_writable_field_becomes_a_script_link() {
    let c = start().await;
    let s = build_scene(&c).await;
    assert_eq!(
        injected(&format!("<a href=\"{}\">x</a>", url_payload("t"))).len(),
        1
    );
    assert_no_injection(&c, &s, url_payload).await;
}
