//! First-start seeding for the embedded defaults: an admin account and the
//! demo service registered as environment `production` with v1 live and the
//! default pre-deployment checklist.

use crate::config::Config;
use anyhow::Context;
use engine::{Actor, Engine, NewEnvironment};
use model::Role;

/// The releases the quickstart can deploy. `v2+unhealthy` is a build whose
/// health check never passes and `v2+errors` one that answers every second
/// request with a 500 (it fails the gates), to see a failed deploy leave users
/// where they were; `v2+slow` takes 3 s to start and `v2+laggy` answers in
/// 300 ms (it fails the p95 gate), to watch a deploy's steps go by.
pub const DEMO_VERSIONS: [&str; 7] = [
    "v1",
    "v2",
    "v3",
    "v2+unhealthy",
    "v2+errors",
    "v2+slow",
    "v2+laggy",
];

pub const DEMO_ENVIRONMENT: &str = "production";

/// Lays out `releases/<version>/switchyard-demo` for each demo version, the
/// shape the process runtime expects of a release directory.
pub fn install_demo_releases(cfg: &Config) -> anyhow::Result<()> {
    let demo = cfg.bin("switchyard-demo");
    anyhow::ensure!(
        demo.exists(),
        "{} not found: build it with `cargo build -p demo`",
        demo.display()
    );
    for v in DEMO_VERSIONS {
        let dir = cfg.releases_dir().join(v);
        std::fs::create_dir_all(&dir)?;
        let link = dir.join("switchyard-demo");
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)?;
        }
        std::os::unix::fs::symlink(&demo, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

/// Registers the demo environment if it is missing and puts v1 live if
/// nothing is. Safe to run at every start.
pub async fn seed_demo(cfg: &Config, engine: &Engine) -> anyhow::Result<()> {
    install_demo_releases(cfg)?;
    let system = Actor::system();
    let env = match engine.environment(&system, DEMO_ENVIRONMENT).await {
        Ok(env) => env,
        Err(e) if !matches!(e, engine::Error::NotFound(_)) => return Err(e.into()),
        Err(_) => {
            let template = format!(
                "{}/{{version}}/switchyard-demo",
                cfg.releases_dir().display()
            );
            let mut new = NewEnvironment::new(
                DEMO_ENVIRONMENT,
                &format!("http://{}/", cfg.app_listen),
                &template,
                &format!("http://{}", cfg.proxy_admin),
                &cfg.proxy_token_file().display().to_string(),
            );
            new.health_deadline = cfg.health_deadline;
            // The proxy this console starts listens there: deploys' gates reach
            // the idle slot through it. An environment registered before keeps
            // what it has (its running proxy may have no preview listener).
            new.preview_listen = cfg.proxy_preview.map(|a| a.to_string());
            let env = engine.register_environment(&system, &new).await?;
            tracing::info!("registered environment {DEMO_ENVIRONMENT} with the demo service");
            env
        }
    };
    if env.active.is_none() {
        // v1 goes live as the starting point, before the checklist applies.
        let d = engine.deploy(&system, DEMO_ENVIRONMENT, "v1").await?;
        anyhow::ensure!(
            d.status == model::DeploymentStatus::Succeeded,
            "could not put the demo's v1 live: {}",
            d.message.unwrap_or_default()
        );
        let template = engine.checklist_template(&system, DEMO_ENVIRONMENT).await?;
        if cfg.demo_checklist && template.is_empty() {
            engine
                .set_checklist_template(
                    &system,
                    DEMO_ENVIRONMENT,
                    &engine::default_checklist(false, false),
                )
                .await?;
        }
    }
    Ok(())
}

/// Creates the `admin` account on an empty user table. The password comes from
/// `SWITCHYARD_ADMIN_PASSWORD`, or is generated and returned to be shown once.
pub async fn ensure_admin(
    engine: &Engine,
    from_env: Option<String>,
) -> anyhow::Result<Option<(String, Option<String>)>> {
    if engine.has_accounts().await? {
        return Ok(None);
    }
    let (password, generated) = match from_env.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (engine::generate_password(), true),
    };
    engine
        .create_user(&Actor::system(), "admin", &password, Role::Admin)
        .await?;
    Ok(Some(("admin".into(), generated.then_some(password))))
}
