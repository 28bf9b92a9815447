//! First-start seeding for the embedded defaults: an admin account and the
//! demo service registered as environments `staging` and `production` (whose
//! releases must succeed in staging first), v1 live in both, and production's
//! default pre-deployment checklist.

use crate::config::Config;
use anyhow::Context;
use engine::{Actor, Engine};
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

/// Where the demo's releases go first, when the quickstart has one.
pub const DEMO_STAGING: &str = "staging";

/// Registers the demo environments if they are missing (`staging`, when
/// configured, only with a fresh `production`: it becomes production's
/// upstream) and puts v1 live where nothing is. Safe to run at every start.
pub async fn seed_demo(cfg: &Config, engine: &Engine) -> anyhow::Result<()> {
    install_demo_releases(cfg)?;
    let system = Actor::system();
    let template = format!(
        "{}/{{version}}/switchyard-demo",
        cfg.releases_dir().display()
    );
    let production = match engine.environment(&system, DEMO_ENVIRONMENT).await {
        Ok(env) => Some(env),
        Err(engine::Error::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let staging = match (production.is_none(), cfg.demo_staging) {
        (true, Some(listen)) => seed_staging(cfg, engine, &template, listen).await?,
        _ => engine.environment(&system, DEMO_STAGING).await.is_ok(),
    };
    let env = match production {
        Some(env) => env,
        None => {
            // The proxy this console starts listens there; deploys' gates
            // reach the idle slot through its preview listener.
            let config = demo_config(
                cfg,
                DEMO_ENVIRONMENT,
                &template,
                [cfg.app_listen, cfg.proxy_admin],
                cfg.proxy_preview,
                staging.then_some(DEMO_STAGING),
            )?;
            engine
                .create_environment(&system, &config, &model::ChecklistSource::Empty)
                .await?;
            tracing::info!("registered environment {DEMO_ENVIRONMENT} with the demo service");
            engine.environment(&system, DEMO_ENVIRONMENT).await?
        }
    };
    if staging {
        put_v1_live(engine, DEMO_STAGING).await?;
    }
    if env.active.is_none() {
        put_v1_live(engine, DEMO_ENVIRONMENT).await?;
        let template = engine.checklist_template(&system, DEMO_ENVIRONMENT).await?;
        if cfg.demo_checklist && template.is_empty() {
            engine
                .set_checklist_template(
                    &system,
                    DEMO_ENVIRONMENT,
                    &engine::default_checklist(staging, false),
                )
                .await?;
        }
    }
    Ok(())
}

/// Creates `staging` as an admin would (its addresses checked free, its
/// own proxy started), with no checklist: deployers try versions there
/// freely. `false` when this console cannot start its proxy
/// (`--no-spawn-proxy`).
async fn seed_staging(
    cfg: &Config,
    engine: &Engine,
    template: &str,
    listen: std::net::SocketAddr,
) -> anyhow::Result<bool> {
    if cfg.proxy != crate::config::ProxyAtStart::Spawn {
        tracing::info!("no staging environment: this console starts no proxies");
        return Ok(false);
    }
    let next = |n: u16| std::net::SocketAddr::new(listen.ip(), listen.port().saturating_add(n));
    let config = demo_config(
        cfg,
        DEMO_STAGING,
        template,
        [listen, next(1)],
        Some(next(2)),
        None,
    )?;
    engine
        .create_environment(&Actor::system(), &config, &model::ChecklistSource::Empty)
        .await
        .with_context(|| {
            format!("creating the demo's {DEMO_STAGING} environment at {listen} (--demo-staging)")
        })?;
    tracing::info!("registered environment {DEMO_STAGING} at {listen}");
    Ok(true)
}

/// A demo environment on the console's proxy token: users at
/// `[listen, admin][0]`, the proxy's admin API at `[1]`.
fn demo_config(
    cfg: &Config,
    name: &str,
    template: &str,
    [listen, admin]: [std::net::SocketAddr; 2],
    preview: Option<std::net::SocketAddr>,
    upstream: Option<&str>,
) -> anyhow::Result<model::EnvironmentConfig> {
    Ok(serde_json::from_value(serde_json::json!({
        "name": name,
        "artifact": template,
        "app_url": format!("http://{listen}/"),
        "preview_listen": preview.map(|p| p.to_string()),
        "upstream": upstream,
        "router": {
            "admin_url": format!("http://{admin}"),
            "token_file": cfg.proxy_token_file().display().to_string(),
        },
        "pipeline": { "health_deadline_ms": cfg.health_deadline.as_millis() as u64 },
    }))?)
}

/// v1 goes live as the starting point, before any checklist applies.
async fn put_v1_live(engine: &Engine, environment: &str) -> anyhow::Result<()> {
    let system = Actor::system();
    if engine
        .environment(&system, environment)
        .await?
        .active
        .is_some()
    {
        return Ok(());
    }
    let d = engine.deploy(&system, environment, "v1").await?;
    anyhow::ensure!(
        d.status == model::DeploymentStatus::Succeeded,
        "could not put the demo's v1 live in {environment}: {}",
        d.message.unwrap_or_default()
    );
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
