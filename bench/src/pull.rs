//! `switchyard-bench pull`: a Docker deploy whose image must be pulled from
//! the registry first, beside a deploy of an image already on the machine,
//! through the whole pipeline (preflight asks the registry, the start step
//! pulls, then health, gates, switch, drain) with the environment's login.
//!
//! Set-up (not timed): `runs` images `<registry>/shop:pull-<n>-<i>`, each the
//! demo plus a layer of `layer_mb` random bytes of its own, built and pushed
//! with a throwaway Docker client configuration and removed here, so each
//! pulled deploy really downloads its layer. The registry is the one
//! `scripts/registry.sh` runs. Each pulled deploy of image i is followed by
//! a deploy of image i−1, which is then on the machine (local).

use crate::rig::{spawn_proxy, Samples};
use anyhow::{bail, Context};
use engine::environments::{self, NewEnvironment};
use engine::runtime::{DockerOptions, DockerRuntime, ProcessRuntime};
use engine::{Actor, Engine};
use model::{DeploymentStatus, RuntimeKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub runs: usize,
    pub layer_mb: usize,
    pub bin_dir: PathBuf,
    /// Where `scripts/registry.sh` keeps the registry's address and login.
    pub registry_dir: PathBuf,
}

fn read(dir: &Path, file: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(dir.join(file))
        .with_context(|| {
            format!(
                "{}: run `bash scripts/registry.sh` first",
                dir.join(file).display()
            )
        })?
        .trim()
        .to_string())
}

fn docker(args: &[&str], config: &Path) -> anyhow::Result<()> {
    let out = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Builds and pushes the images, removing them here. Their tags.
fn prepare(
    root: &Path,
    registry: &str,
    user: &str,
    password: &str,
    opts: &Options,
) -> anyhow::Result<Vec<String>> {
    let config = root.join("docker-config");
    std::fs::create_dir_all(&config)?;
    let login = Command::new("docker")
        .env("DOCKER_CONFIG", &config)
        .args(["login", "-u", user, "--password-stdin", registry])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(password.as_bytes())?;
            c.wait()
        })?;
    anyhow::ensure!(login.success(), "docker login to {registry} failed");
    let nonce = std::process::id();
    let mut tags = Vec::new();
    for i in 0..=opts.runs {
        let ctx = root.join(format!("image-{i}"));
        std::fs::create_dir_all(&ctx)?;
        let mut layer = vec![0u8; opts.layer_mb * 1024 * 1024];
        for chunk in layer.chunks_mut(8) {
            chunk.copy_from_slice(&rand_u64().to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(ctx.join("payload"), layer)?;
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM switchyard-demo:v1\nCOPY payload /payload\n",
        )?;
        let tag = format!("pull-{nonce}-{i}");
        let image = format!("{registry}/shop:{tag}");
        docker(
            &["build", "--quiet", "-t", &image, &ctx.display().to_string()],
            &config,
        )?;
        docker(&["push", "--quiet", &image], &config)?;
        docker(&["rmi", &image], &config)?;
        tags.push(tag);
    }
    let _ = std::fs::remove_dir_all(&config);
    Ok(tags)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

pub async fn pull(data_dir: &Path, opts: Options) -> anyhow::Result<()> {
    let root = data_dir.join("bench-pull");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let registry = read(&opts.registry_dir, "address")?;
    let user = read(&opts.registry_dir, "user")?;
    let password = read(&opts.registry_dir, "password")?;
    println!(
        "pull benchmark: {} runs, a {} MB layer of its own per image, registry {registry} (docker-registry, htpasswd login)",
        opts.runs, opts.layer_mb
    );
    let tags = prepare(&root, &registry, &user, &password, &opts)?;
    let runtime = Arc::new(DockerRuntime::connect().await?);

    let proxy = spawn_proxy(&opts.bin_dir, &root)?;
    let pool =
        engine::store::open(&format!("sqlite:{}", root.join("switchyard.db").display())).await?;
    let env_name = format!("bench-pull-{}", std::process::id());
    let mut new = NewEnvironment::new(
        &env_name,
        &format!("http://{}/", proxy.public),
        &format!("{registry}/shop:{{version}}"),
        &format!("http://{}", proxy.admin),
        &root.join("proxy-token").display().to_string(),
    );
    new.runtime = RuntimeKind::Docker;
    new.stop_grace = Duration::from_secs(5);
    new.watch_window = Duration::ZERO;
    new.docker = DockerOptions {
        registry_user: Some(user),
        registry_secret: Some("REGISTRY_PASSWORD".into()),
        ..Default::default()
    };
    environments::create(&pool, &new).await?;
    let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(root.join("logs"))))
        .with_runtime(RuntimeKind::Docker, runtime)
        .with_secrets(engine::SecretBox::open(&root)?);
    let actor = Actor::system();
    engine
        .set_secret(&actor, &env_name, "REGISTRY_PASSWORD", &password)
        .await?;

    let mut pulled = Samples::default();
    let mut local = Samples::default();
    let deploy = |version: String| {
        let engine = engine.clone();
        let env_name = env_name.clone();
        let actor = actor.clone();
        async move {
            let t = Instant::now();
            let d = engine.deploy(&actor, &env_name, &version).await?;
            let took = t.elapsed();
            anyhow::ensure!(
                d.status == DeploymentStatus::Succeeded,
                "deploy {version}: {d:?}"
            );
            Ok::<_, anyhow::Error>(took)
        }
    };
    // The first image goes live untimed (no standby to stop yet).
    deploy(tags[0].clone()).await?;
    for i in 1..tags.len() {
        pulled.push(deploy(tags[i].clone()).await?);
        local.push(deploy(tags[i - 1].clone()).await?);
    }
    println!(
        "{}",
        pulled.row(&format!("deploy with a pull ({} MB layer)", opts.layer_mb))
    );
    println!("{}", local.row("deploy of an image on the machine"));
    println!(
        "  {:<38} {:>8.1} ms (median with pull − median local)",
        "pull cost",
        pulled
            .quantile(0.5)
            .saturating_sub(local.quantile(0.5))
            .as_secs_f64()
            * 1000.0
    );
    // Leave nothing behind: both slots' containers and the pulled images.
    for color in model::SlotColor::ALL {
        let name = DockerRuntime::container_name(&env_name, color);
        let _ = docker(&["rm", "-f", &name], &root);
    }
    for tag in &tags {
        let _ = docker(&["rmi", &format!("{registry}/shop:{tag}")], &root);
    }
    drop(proxy);
    Ok(())
}
