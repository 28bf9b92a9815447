//! Environments as admins create, edit, declare and archive them: the
//! checks that refuse bad input and change nothing, the all-or-nothing
//! apply, export → apply as a no-op, the audit trail, and archiving a
//! live environment against a real switchyard-proxy and real slot
//! processes (the harness of the pipeline tests).
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::environments;
use engine::{Actor, Engine, Error};
use model::{ChecklistSource, DeploymentKind, EnvironmentConfig, PlanAction, Role, SlotColor};
use std::sync::Arc;

mod support;

use support::harness::{pid_alive, pid_of, Harness, ENV};

async fn engine() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = support::harness::store_url(dir.path()).await;
    let pool = engine::store::open(&url).await.unwrap();
    let rt = Arc::new(engine::ProcessRuntime::new(dir.path().join("logs")));
    (Engine::new(pool, rt), dir)
}

/// A file declaring `shop` and `shop-staging` (staging first: production's
/// upstream).
fn file() -> String {
    r#"
[[environment]]
name = "shop-staging"
runtime = "docker"
artifact = "127.0.0.1:5000/shop:{version}"
app_url = "http://127.0.0.1:8310/"
secrets = ["API_KEY"]

[environment.variables]
GREETING = "hello from staging"

[environment.router]
admin_url = "http://127.0.0.1:8311"
token_file = "/var/lib/switchyard/staging.token"

[[environment]]
name = "shop"
runtime = "docker"
artifact = "127.0.0.1:5000/shop:{version}"
app_url = "http://127.0.0.1:8300/"
preview_listen = "127.0.0.1:8302"
upstream = "shop-staging"
backup_command = "/usr/local/bin/check-backup --token s3cr3t-in-a-command"

[environment.router]
admin_url = "http://127.0.0.1:8301"
token_file = "/var/lib/switchyard/shop.token"

[environment.pipeline]
watch_window_ms = 60000
p95_ms = 150
"#
    .to_string()
}

fn configs(text: &str) -> Vec<EnvironmentConfig> {
    engine::parse_environment_file(text).unwrap()
}

#[tokio::test]
async fn export_then_apply_changes_nothing() {
    let (engine, _dir) = engine().await;
    let system = Actor::system();
    let plan = engine.plan_apply(&system, &configs(&file())).await.unwrap();
    assert_eq!(
        plan.iter()
            .map(|p| (p.name.as_str(), p.action))
            .collect::<Vec<_>>(),
        [
            ("shop-staging", PlanAction::Create),
            ("shop", PlanAction::Create)
        ]
    );
    // Planning wrote nothing.
    assert!(engine.environment_names(&system).await.unwrap().is_empty());

    engine
        .apply_environments(&system, &configs(&file()))
        .await
        .unwrap();
    let shop = engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(shop.upstream.as_deref(), Some("shop-staging"));
    assert_eq!(shop.pipeline.p95_ms, 150);
    assert_eq!(
        shop.pipeline.p99_ms, 500,
        "an unset field takes its default"
    );
    // A new environment gets the default checklist, with the promotion item
    // (it has an upstream) and the backup item (it has a backup command).
    let checklist = engine.checklist_template(&system, "shop").await.unwrap();
    assert!(checklist.len() >= 4, "{checklist:?}");

    let exported =
        engine::render_environment_file(&engine.environment_configs(&system).await.unwrap())
            .unwrap();
    let again = engine
        .plan_apply(&system, &configs(&exported))
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|p| p.action == PlanAction::Unchanged && p.changes.is_empty()),
        "export → apply must be a no-op: {again:?}"
    );
    // A secret declared without a value yet is still declared: applying the
    // same file again changes nothing, and the export names it.
    let staging = engine
        .environment_config(&system, "shop-staging")
        .await
        .unwrap();
    assert_eq!(staging.secrets, ["API_KEY"]);
    let same_file = engine.plan_apply(&system, &configs(&file())).await.unwrap();
    assert!(
        same_file.iter().all(|p| p.changes.is_empty()),
        "the file applied twice: {same_file:?}"
    );
    // A file without an environment never drops it: the plan says so, and
    // the apply leaves it as it is.
    let only_shop: Vec<EnvironmentConfig> = configs(&exported)
        .into_iter()
        .filter(|c| c.name == "shop")
        .collect();
    let plan = engine.plan_apply(&system, &only_shop).await.unwrap();
    assert!(
        plan.iter()
            .any(|p| p.name == "shop-staging" && p.action == PlanAction::NotInFile),
        "{plan:?}"
    );
    engine
        .apply_environments(&system, &only_shop)
        .await
        .unwrap();
    assert_eq!(
        engine
            .environment_config(&system, "shop-staging")
            .await
            .unwrap(),
        staging
    );
    // Exported twice, the same bytes.
    let twice =
        engine::render_environment_file(&engine.environment_configs(&system).await.unwrap())
            .unwrap();
    assert_eq!(exported, twice);
}

#[tokio::test]
async fn a_refused_environment_stops_the_whole_apply() {
    let (engine, _dir) = engine().await;
    let system = Actor::system();
    // The second environment's health path is wrong: the first is not
    // created either.
    let text = file().replacen(
        "upstream = \"shop-staging\"",
        "upstream = \"shop-staging\"\nhealth_path = \"health\"",
        1,
    );
    let err = engine
        .apply_environments(&system, &configs(&text))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("health_path"), "{err}");
    assert!(err.to_string().contains("environment shop:"), "{err}");
    assert!(engine.environment_names(&system).await.unwrap().is_empty());

    engine
        .apply_environments(&system, &configs(&file()))
        .await
        .unwrap();
    let before = engine.environment_configs(&system).await.unwrap();
    let audit_before = audit_count(&engine).await;
    for (bad, field) in [
        // A second environment at shop's address: taken.
        (
            file().replace("name = \"shop-staging\"", "name = \"shop-canary\""),
            "app_url",
        ),
        // shop renamed: its address belongs to an environment not in the file.
        (
            file().replace("name = \"shop\"\n", "name = \"store\"\n"),
            "app_url",
        ),
        (file().replace("{version}", "latest"), "artifact"),
        (
            file().replace("127.0.0.1:5000/shop:{version}", "Not An Image:{version}"),
            "artifact",
        ),
        // Both on one switchyard-proxy: the second would take over the
        // first's routes.
        (
            file().replace("http://127.0.0.1:8311", "http://127.0.0.1:8301/"),
            "admin_url",
        ),
        (file().replace("GREETING", "2GREETING"), "variables"),
        (file().replace("GREETING", "DB_PASSWORD"), "variables"),
        (file().replace("\"API_KEY\"", "\"GREETING\""), "secrets"),
        (
            file().replace("upstream = \"shop-staging\"", "upstream = \"nowhere\""),
            "upstream",
        ),
        (
            file().replace(
                "preview_listen = \"127.0.0.1:8302\"",
                "preview_listen = \"nowhere\"",
            ),
            "preview_listen",
        ),
        (file().replace("p95_ms = 150", "p95_ms = 0"), "p95_ms"),
        (
            file().replace("http://127.0.0.1:8310/", "ftp://x/"),
            "app_url",
        ),
        (
            file().replace("/var/lib/switchyard/shop.token", "relative.token"),
            "token_file",
        ),
    ] {
        let err = engine
            .apply_environments(&system, &configs(&bad))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
    // Malformed files never reach the engine.
    assert!(engine::parse_environment_file("[[environment]]\nname = 3").is_err());
    assert_eq!(engine.environment_configs(&system).await.unwrap(), before);
    assert_eq!(audit_count(&engine).await, audit_before);
}

#[tokio::test]
async fn edits_are_audited_field_by_field_without_credentials() {
    let (engine, _dir) = engine().await;
    let system = Actor::system();
    engine
        .apply_environments(&system, &configs(&file()))
        .await
        .unwrap();
    let mut shop = engine.environment_config(&system, "shop").await.unwrap();
    shop.health_path = "/ready".into();
    shop.backup_command = Some("/usr/local/bin/check-backup --token n3w-s3cr3t".into());
    shop.variables.insert("FEATURE".into(), "on".into());
    let changes = engine.edit_environment(&system, &shop).await.unwrap();
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["backup_command", "health_path", "variables.FEATURE"]
    );

    let entries = audit_details(&engine, "environment.edit").await;
    assert_eq!(entries.len(), 1);
    let details = entries[0].clone();
    assert!(details.contains("/ready"), "{details}");
    assert!(
        !details.contains("s3cr3t"),
        "a credential reached the audit log: {details}"
    );
    let created = audit_details(&engine, "environment.create").await.concat();
    assert!(!created.contains("s3cr3t"), "{created}");
    assert!(
        created.contains("API_KEY"),
        "secret names are audited: {created}"
    );

    // Nothing to change: nothing audited.
    assert!(engine
        .edit_environment(&system, &shop)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(audit_details(&engine, "environment.edit").await.len(), 1);
}

#[tokio::test]
async fn only_admins_manage_environments_and_are_refused_before_any_lookup() {
    let (engine, _dir) = engine().await;
    let system = Actor::system();
    engine
        .apply_environments(&system, &configs(&file()))
        .await
        .unwrap();
    let shop = engine.environment_config(&system, "shop").await.unwrap();
    for role in [Role::Viewer, Role::Deployer, Role::Approver] {
        let who = user(&engine, &format!("{role}-user"), role).await;
        for env in ["shop", "no-such-environment"] {
            let mut c = shop.clone();
            c.name = env.into();
            let refused = [
                engine.environment_config(&who, env).await.err(),
                engine.edit_environment(&who, &c).await.err(),
                engine
                    .create_environment(&who, &c, &ChecklistSource::Default)
                    .await
                    .err(),
                engine.archive_environment(&who, env, true).await.err(),
                engine.plan_apply(&who, &[c.clone()]).await.err(),
                engine.apply_environments(&who, &[c.clone()]).await.err(),
            ];
            for e in refused {
                assert!(matches!(e, Some(Error::Forbidden { .. })), "{role}: {e:?}");
            }
        }
    }
    assert_eq!(
        engine.environment_configs(&system).await.unwrap().len(),
        2,
        "nothing was created"
    );
}

#[tokio::test]
async fn create_copies_a_checklist_and_never_overwrites() {
    let (engine, _dir) = engine().await;
    let system = Actor::system();
    engine
        .apply_environments(&system, &configs(&file()))
        .await
        .unwrap();
    let mut canary = engine.environment_config(&system, "shop").await.unwrap();
    canary.name = "shop-canary".into();
    canary.app_url = "http://127.0.0.1:8320/".into();
    canary.preview_listen = None;
    canary.router.admin_url = "http://127.0.0.1:8321".into();
    engine
        .create_environment(&system, &canary, &ChecklistSource::CopyFrom("shop".into()))
        .await
        .unwrap();
    let items = |list: Vec<model::TemplateItem>| {
        list.into_iter()
            .map(|i| (i.title, i.required_role, i.auto_check, i.required))
            .collect::<Vec<_>>()
    };
    let shop = items(engine.checklist_template(&system, "shop").await.unwrap());
    assert!(!shop.is_empty());
    assert_eq!(
        items(
            engine
                .checklist_template(&system, "shop-canary")
                .await
                .unwrap()
        ),
        shop
    );
    let err = engine
        .create_environment(&system, &canary, &ChecklistSource::Empty)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
}

async fn audit_count(engine: &Engine) -> i64 {
    engine::store::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(engine.pool())
        .await
        .unwrap()
}

/// The details of every audit entry of `action`, oldest first.
async fn audit_details(engine: &Engine, action: &str) -> Vec<String> {
    engine::store::query_scalar("SELECT details FROM audit_log WHERE action = ? ORDER BY id")
        .bind(action)
        .fetch_all(engine.pool())
        .await
        .unwrap()
}

async fn user(engine: &Engine, name: &str, role: Role) -> Actor {
    Actor::user(
        engine::users::create(engine.pool(), name, "a long enough password", role)
            .await
            .unwrap(),
    )
}

/// Archiving a live environment: refused without confirmation and while a
/// deployment runs; confirmed, its slots stop (idle first), it leaves the
/// lists, a deploy to it is refused, and its history stays.
#[tokio::test]
async fn archiving_a_live_environment_stops_its_slots_and_keeps_history() {
    let h = Harness::with_v1_live().await;
    let system = Actor::system();
    let d = h.engine.deploy(&system, ENV, "v2").await.unwrap();
    assert_eq!(d.status, model::DeploymentStatus::Succeeded, "{d:?}");
    // v2 serves on green, v1 stays warm on blue.
    let (blue, green) = (
        h.slot(SlotColor::Blue).await,
        h.slot(SlotColor::Green).await,
    );
    let (standby_pid, live_pid) = (pid_of(&blue), pid_of(&green));
    assert!(pid_alive(standby_pid) && pid_alive(live_pid));

    let err = h
        .engine
        .archive_environment(&system, ENV, false)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("confirm"), "{err}");
    assert!(pid_alive(live_pid));

    // A running deployment (its lock) refuses the archive.
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let dep = engine::deployments::begin(
        h.engine.pool(),
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Rollback,
            from_version: Some("v2"),
            to_version: Some("v1"),
            from_slot: Some(SlotColor::Green),
            to_slot: Some(SlotColor::Blue),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();
    let err = h
        .engine
        .archive_environment(&system, ENV, true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeployInProgress { .. }), "{err:?}");
    engine::deployments::finish(
        h.engine.pool(),
        dep,
        None,
        model::DeploymentStatus::Failed,
        "test",
    )
    .await
    .unwrap();

    h.engine
        .archive_environment(&system, ENV, true)
        .await
        .unwrap();
    for _ in 0..50 {
        if !pid_alive(standby_pid) && !pid_alive(live_pid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!pid_alive(standby_pid), "the standby slot still runs");
    assert!(!pid_alive(live_pid), "the live slot still runs");
    assert!(h
        .engine
        .environment_names(&system)
        .await
        .unwrap()
        .is_empty());
    let archived = h.engine.archived_environments(&system).await.unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].name, ENV);

    let err = h.engine.deploy(&system, ENV, "v3").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    // A deploy that had looked the environment up before the archive is
    // refused by the store itself.
    let err = engine::deployments::begin(
        h.engine.pool(),
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: None,
            to_version: Some("v3"),
            from_slot: None,
            to_slot: Some(SlotColor::Blue),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    // History stays.
    let kept: i64 =
        engine::store::query_scalar("SELECT COUNT(*) FROM deployments WHERE environment_id = ?")
            .bind(env.id)
            .fetch_one(h.engine.pool())
            .await
            .unwrap();
    assert_eq!(kept, 3, "v1, v2 and the test's rollback row");
    // The name stays taken.
    let mut again = h.engine.environment_configs(&system).await.unwrap().pop();
    assert!(again.is_none());
    again = Some(model::EnvironmentConfig {
        name: ENV.into(),
        upstream: None,
        ..engine::parse_environment_file(&file()).unwrap().remove(1)
    });
    let err = h
        .engine
        .create_environment(&system, &again.unwrap(), &ChecklistSource::Empty)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
}

/// Promotion: a succeeded deploy offers the environments downstream of it;
/// promoting asks for a release of the same version there, whose
/// "succeeded upstream" item is verified from history. Viewers, failed
/// deploys and environments that do not take releases from it are refused.
#[tokio::test]
async fn a_succeeded_deploy_is_promoted_downstream() {
    let h = Harness::with_v1_live().await;
    let system = Actor::system();
    let dana = h.user("dana", Role::Deployer).await;
    let vera = h.user("vera", Role::Viewer).await;
    let downstream = |name: &str, port: u16, upstream: Option<&str>| EnvironmentConfig {
        name: name.into(),
        app_url: format!("http://127.0.0.1:{port}/"),
        upstream: upstream.map(String::from),
        preview_listen: None,
        runtime: model::RuntimeKind::Process,
        artifact: "/nonexistent/{version}/app".into(),
        router: model::RouterConfig {
            kind: model::RouterKind::Builtin,
            admin_url: format!("http://127.0.0.1:{}", port + 1),
            token_file: "/nonexistent/token".into(),
            nginx: None,
        },
        ..engine::parse_environment_file(&file()).unwrap().remove(1)
    };
    h.engine
        .create_environment(
            &system,
            &downstream("live", 18400, Some(ENV)),
            &ChecklistSource::Default,
        )
        .await
        .unwrap();
    h.engine
        .create_environment(
            &system,
            &downstream("elsewhere", 18410, None),
            &ChecklistSource::Default,
        )
        .await
        .unwrap();

    let shipped = h.engine.deploy(&system, ENV, "v2").await.unwrap();
    assert_eq!(shipped.status, model::DeploymentStatus::Succeeded);
    let detail = h.engine.deployment(&dana, shipped.id).await.unwrap();
    assert_eq!(detail.promote_to, ["live"]);

    let err = h
        .engine
        .promote(&vera, shipped.id, "live")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = h
        .engine
        .promote(&dana, shipped.id, "elsewhere")
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("environment"), "{err}");
    let failed = h.engine.deploy(&system, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(failed.status, model::DeploymentStatus::Failed);
    assert!(h
        .engine
        .deployment(&dana, failed.id)
        .await
        .unwrap()
        .promote_to
        .is_empty());
    let err = h
        .engine
        .promote(&dana, failed.id, "live")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    let release = h.engine.promote(&dana, shipped.id, "live").await.unwrap();
    assert_eq!(release.environment, "live");
    assert_eq!(release.version, "v2");
    assert!(
        release.notes.starts_with("Promoted from production"),
        "{}",
        release.notes
    );
    let upstream_item = release
        .items
        .iter()
        .find(|i| i.auto_check == Some(model::AutoCheck::UpstreamSucceeded))
        .expect("the default checklist asks for the upstream");
    assert_eq!(
        upstream_item.state,
        model::ItemState::Verified,
        "{upstream_item:?}"
    );

    // Archived, its releases stay readable (history), and stay out of reach
    // of a deploy.
    h.engine
        .archive_environment(&system, "live", false)
        .await
        .unwrap();
    let listed = h.engine.releases(&dana, None).await.unwrap();
    assert!(listed.iter().any(|r| r.id == release.id), "{listed:?}");
    let again = h.engine.release(&dana, release.id).await.unwrap();
    assert!(!again.deployable, "{again:?}");
}

/// The proxy of an environment on the console's token and host: a port in
/// use is refused naming its field, with nothing written; a free one gets a
/// real switchyard-proxy started, which users reach at once; a running
/// proxy is not moved to another address.
#[tokio::test]
async fn a_created_environment_gets_its_own_proxy_on_free_ports_only() {
    let (engine, dir) = engine().await;
    let token = dir.path().join("proxy.token");
    std::fs::write(&token, "lifecycle-test-token").unwrap();
    let engine = engine.with_proxy_launcher(engine::ProxyLauncher::new(
        support::sibling_bin("switchyard-proxy"),
        token.clone(),
        dir.path().to_path_buf(),
        dir.path().join("logs"),
    ));
    // Stops the proxy this test starts, however it ends.
    struct StopProxy(std::path::PathBuf);
    impl Drop for StopProxy {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pkill")
                .arg("-f")
                .arg(&self.0)
                .status();
        }
    }
    let _stop = StopProxy(dir.path().join("proxy-shop-routing.json"));
    let system = Actor::system();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ports: Vec<u16> = {
        let held: Vec<_> = (0..4)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        held.iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect()
    };
    let config = |app: u16, admin: u16| {
        configs(&format!(
            r#"
[[environment]]
name = "shop"
artifact = "/opt/shop/{{version}}/shop"
app_url = "http://127.0.0.1:{app}/"
preview_listen = "127.0.0.1:{preview}"

[environment.router]
admin_url = "http://127.0.0.1:{admin}"
token_file = "{token}"
"#,
            preview = ports[2],
            token = token.display()
        ))
        .remove(0)
    };
    let before = audit_count(&engine).await;
    let in_use = taken.local_addr().unwrap().port();
    let err = engine
        .create_environment(&system, &config(in_use, ports[1]), &ChecklistSource::Empty)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field: "app_url", message } if message.contains("already in use")),
        "{err:?}"
    );
    assert!(engine.environment_names(&system).await.unwrap().is_empty());
    assert_eq!(audit_count(&engine).await, before, "nothing was written");

    engine
        .create_environment(
            &system,
            &config(ports[0], ports[1]),
            &ChecklistSource::Empty,
        )
        .await
        .unwrap();
    // Users reach the new proxy at once: nothing is live yet, so 503.
    let users = reqwest::get(format!("http://127.0.0.1:{}/", ports[0]))
        .await
        .expect("the console started the environment's proxy");
    assert_eq!(users.status(), 503);
    let status = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/admin/status", ports[1]))
        .bearer_auth("lifecycle-test-token")
        .send()
        .await
        .unwrap();
    assert!(
        status.status().is_success(),
        "the proxy holds the console's token"
    );

    let err = engine
        .edit_environment(&system, &config(ports[3], ports[1]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field: "app_url", message } if message.contains("does not move a running proxy")),
        "{err:?}"
    );
    let kept = engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(kept.app_url, format!("http://127.0.0.1:{}/", ports[0]));
}
