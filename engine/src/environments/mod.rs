//! Environments and their two slots, as stored: the environment here, its
//! slots in `slots.rs`.

mod route;
mod slots;
#[cfg(test)]
mod tests;

pub use route::RouteClaim;
pub use slots::{
    clear_standby, mark_standby, record_health, record_stopped, set_slot, set_slot_state, slot,
    slots, Slot,
};

use crate::error::{parse_stored as parse, Error, Result};
use crate::gates::GateSettings;
use crate::health::HealthExpect;
use crate::router::NginxSettings;
use crate::runtime::DockerOptions;
use crate::store::Pool;
use model::{EnvironmentView, RouterKind, RuntimeKind, SlotColor, SlotView};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Environment {
    pub id: i64,
    pub name: String,
    pub app_url: String,
    /// Which runtime driver runs the slots; the engine looks it up by kind.
    pub runtime: RuntimeKind,
    pub artifact_template: String,
    /// Which traffic router switches users.
    pub router: RouterKind,
    /// Builtin router: switchyard-proxy's admin API and its secret's file.
    pub proxy_admin_url: String,
    pub proxy_token_file: String,
    /// Nginx router: set exactly when `router` is `nginx` (the table's CHECK
    /// refuses an nginx environment without them).
    pub nginx: Option<NginxSettings>,
    /// host:port of the router's preview listener (switchyard-proxy's
    /// `--preview`; the nginx router's preview server block): a deploy's
    /// gates reach the idle slot there. `None`: gates go to the slot directly.
    pub preview_listen: Option<String>,
    /// Builtin router: the host names (and path prefix) it is served under
    /// as a named route on a shared switchyard-proxy; empty: the proxy's
    /// default table, one environment per proxy.
    pub route: RouteClaim,
    pub health_path: String,
    /// What the health answer must be besides 2xx-reachable (see
    /// [`HealthExpect`]).
    pub health_expect: HealthExpect,
    pub health_interval: Duration,
    pub health_deadline: Duration,
    pub stop_grace: Duration,
    /// Smoke routes and performance thresholds the idle slot must pass.
    pub gates: GateSettings,
    /// How long in-flight requests to the old slot may take to finish after
    /// the switch before the deploy moves on (the slot stays up either way).
    pub drain_timeout: Duration,
    /// How long the new slot is watched after a deploy's switch (0: not at
    /// all); a breach rolls back by itself (see `crate::watch`).
    pub watch_window: Duration,
    /// How long the slot users left stays warm after a switch (0: until the
    /// next deploy). Past it the slot is stopped; a rollback then starts it
    /// again before switching.
    pub standby_window: Duration,
    /// Hold each deploy after its gates, the preview live, until a deployer
    /// promotes or aborts it, or `hold_timeout` passes (see `pipeline/hold.rs`).
    pub hold_at_preview: bool,
    pub hold_timeout: Duration,
    /// What a Docker slot's container gets besides its image.
    pub docker: DockerOptions,
    pub active: Option<SlotColor>,
    pub routing_generation: u64,
    /// Archived: out of every list and lookup by name; only reached by id
    /// (its history).
    pub archived: bool,
}

/// Settings for a new environment; the durations fall back to the defaults
/// teams use by hand (poll every 250 ms, give up after 60 s).
#[derive(Clone, Debug)]
pub struct NewEnvironment {
    pub name: String,
    pub app_url: String,
    /// `Process` by default.
    pub runtime: RuntimeKind,
    pub artifact_template: String,
    /// `Builtin` by default.
    pub router: RouterKind,
    pub proxy_admin_url: String,
    pub proxy_token_file: String,
    /// Required when `router` is `nginx`, ignored otherwise.
    pub nginx: Option<NginxSettings>,
    /// See [`Environment::preview_listen`]; checked by [`validate_preview_listen`].
    pub preview_listen: Option<String>,
    /// See [`Environment::route`]; checked by [`RouteClaim::check`].
    pub route: RouteClaim,
    pub health_path: String,
    /// What the health answer must be besides 2xx-reachable (see
    /// [`HealthExpect`]).
    pub health_expect: HealthExpect,
    pub health_interval: Duration,
    pub health_deadline: Duration,
    pub stop_grace: Duration,
    pub gates: GateSettings,
    pub drain_timeout: Duration,
    pub watch_window: Duration,
    pub standby_window: Duration,
    pub hold_at_preview: bool,
    pub hold_timeout: Duration,
    pub docker: DockerOptions,
}

impl NewEnvironment {
    pub fn new(
        name: &str,
        app_url: &str,
        artifact_template: &str,
        proxy_admin_url: &str,
        proxy_token_file: &str,
    ) -> Self {
        NewEnvironment {
            name: name.into(),
            app_url: app_url.into(),
            runtime: RuntimeKind::Process,
            artifact_template: artifact_template.into(),
            router: RouterKind::Builtin,
            proxy_admin_url: proxy_admin_url.into(),
            proxy_token_file: proxy_token_file.into(),
            nginx: None,
            preview_listen: None,
            route: RouteClaim::default(),
            health_path: "/health".into(),
            health_expect: HealthExpect::default(),
            health_interval: Duration::from_millis(250),
            health_deadline: Duration::from_secs(60),
            stop_grace: Duration::from_secs(10),
            gates: GateSettings::default(),
            drain_timeout: Duration::from_secs(30),
            watch_window: Duration::from_secs(300),
            standby_window: Duration::from_secs(15 * 60),
            hold_at_preview: false,
            hold_timeout: Duration::from_secs(30 * 60),
            docker: DockerOptions::default(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct EnvRow {
    id: i64,
    name: String,
    app_url: String,
    runtime: String,
    artifact_template: String,
    proxy_admin_url: String,
    proxy_token_file: String,
    health_path: String,
    health_status: Option<i64>,
    health_body: Option<String>,
    health_interval_ms: i64,
    health_deadline_ms: i64,
    stop_grace_ms: i64,
    active_color: Option<String>,
    routing_generation: i64,
    router: String,
    nginx_binary: Option<String>,
    nginx_conf: Option<String>,
    nginx_prefix: Option<String>,
    nginx_include: Option<String>,
    nginx_pid_file: Option<String>,
    nginx_upstream: Option<String>,
    nginx_reload_timeout_ms: Option<i64>,
    gate_smoke_paths: String,
    gate_sample_requests: i64,
    gate_p95_ms: i64,
    gate_p99_ms: i64,
    gate_max_error_pct: f64,
    drain_timeout_ms: i64,
    watch_window_ms: i64,
    standby_window_ms: i64,
    hold_at_preview: bool,
    hold_timeout_ms: i64,
    preview_listen: Option<String>,
    container_port: i64,
    docker_volumes: String,
    docker_memory_mb: Option<i64>,
    docker_cpus: Option<f64>,
    docker_restart: String,
    docker_network: Option<String>,
    docker_registry_user: Option<String>,
    docker_registry_secret: Option<String>,
    archived_at: Option<String>,
    route_hosts: String,
    route_path_prefix: Option<String>,
    redirect_https: bool,
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

impl TryFrom<EnvRow> for Environment {
    type Error = Error;
    fn try_from(r: EnvRow) -> Result<Self> {
        let router: RouterKind = parse(&r.router)?;
        let nginx = match (router, r.nginx_conf, r.nginx_include, r.nginx_pid_file) {
            (RouterKind::Nginx, Some(conf), Some(include), Some(pid_file)) => Some(NginxSettings {
                binary: r
                    .nginx_binary
                    .unwrap_or_else(|| NginxSettings::DEFAULT_BINARY.into())
                    .into(),
                conf: conf.into(),
                prefix: r.nginx_prefix.map(Into::into),
                include: include.into(),
                pid_file: pid_file.into(),
                upstream: r
                    .nginx_upstream
                    .unwrap_or_else(|| NginxSettings::upstream_for(&r.name)),
                reload_timeout: r
                    .nginx_reload_timeout_ms
                    .map(ms)
                    .unwrap_or(NginxSettings::DEFAULT_RELOAD_TIMEOUT),
            }),
            _ => None,
        };
        Ok(Environment {
            id: r.id,
            name: r.name,
            app_url: r.app_url,
            runtime: parse(&r.runtime)?,
            artifact_template: r.artifact_template,
            router,
            proxy_admin_url: r.proxy_admin_url,
            proxy_token_file: r.proxy_token_file,
            nginx,
            preview_listen: r.preview_listen,
            route: RouteClaim {
                hosts: r.route_hosts.lines().map(String::from).collect(),
                path_prefix: r.route_path_prefix,
                redirect_https: r.redirect_https,
            },
            health_path: r.health_path,
            health_expect: HealthExpect {
                status: r.health_status.and_then(|s| u16::try_from(s).ok()),
                body: r.health_body,
            },
            health_interval: ms(r.health_interval_ms),
            health_deadline: ms(r.health_deadline_ms),
            stop_grace: ms(r.stop_grace_ms),
            gates: GateSettings {
                smoke_paths: GateSettings::parse_smoke_paths(&r.gate_smoke_paths),
                sample_requests: r.gate_sample_requests.clamp(0, u32::MAX as i64) as u32,
                p95: ms(r.gate_p95_ms),
                p99: ms(r.gate_p99_ms),
                max_error_rate: r.gate_max_error_pct / 100.0,
            },
            drain_timeout: ms(r.drain_timeout_ms),
            watch_window: ms(r.watch_window_ms),
            standby_window: ms(r.standby_window_ms),
            hold_at_preview: r.hold_at_preview,
            hold_timeout: ms(r.hold_timeout_ms),
            docker: DockerOptions {
                port: u16::try_from(r.container_port).unwrap_or(8080),
                volumes: r.docker_volumes.lines().map(String::from).collect(),
                memory_mb: r.docker_memory_mb.map(|m| m.max(0) as u64),
                cpus: r.docker_cpus,
                restart: r.docker_restart,
                network: r.docker_network,
                registry_user: r.docker_registry_user,
                registry_secret: r.docker_registry_secret,
            },
            active: r.active_color.as_deref().map(parse).transpose()?,
            routing_generation: r.routing_generation.max(0) as u64,
            archived: r.archived_at.is_some(),
        })
    }
}

const ENV_COLUMNS: &str = "id, name, app_url, runtime, artifact_template, proxy_admin_url, proxy_token_file, \
     health_path, health_status, health_body, health_interval_ms, health_deadline_ms, stop_grace_ms, active_color, routing_generation, \
     router, nginx_binary, nginx_conf, nginx_prefix, nginx_include, nginx_pid_file, nginx_upstream, \
     nginx_reload_timeout_ms, gate_smoke_paths, gate_sample_requests, gate_p95_ms, gate_p99_ms, \
     gate_max_error_pct, drain_timeout_ms, watch_window_ms, standby_window_ms, preview_listen, \
     container_port, docker_volumes, docker_memory_mb, docker_cpus, docker_restart, docker_network, \
     docker_registry_user, docker_registry_secret, archived_at, hold_at_preview, hold_timeout_ms, \
     route_hosts, route_path_prefix, redirect_https";

impl NewEnvironment {
    /// Checks what the store cannot: the name's shape, the nginx settings'
    /// presence, the gates, the preview address.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.router == RouterKind::Nginx && self.nginx.is_none() {
            return Err(Error::invalid(
                "nginx",
                "the nginx router needs its settings (configuration, include, pid file)",
            ));
        }
        self.gates.validate()?;
        if let Some(listen) = &self.preview_listen {
            validate_preview_listen(listen)?;
        }
        let r = &self.route;
        RouteClaim::check(&r.hosts, r.path_prefix.as_deref(), r.redirect_https)?;
        if r.is_routed() && self.router != RouterKind::Builtin {
            return Err(Error::invalid(
                "hosts",
                "host names are routes on switchyard-proxy: only the builtin router has them",
            ));
        }
        Ok(())
    }

    /// The nginx settings when the router is nginx (ignored otherwise).
    fn nginx(&self) -> Option<&NginxSettings> {
        self.nginx.as_ref().filter(|_| self.router == RouterKind::Nginx)
    }
}

/// An environment name: it appears in URLs, container names and nginx
/// upstream names, so lowercase letters, digits and '-' only.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "environment name must be 1-40 characters: a-z, 0-9, '-'",
        ))
    }
}

pub async fn create(pool: &Pool, new: &NewEnvironment) -> Result<Environment> {
    new.validate()?;
    let mut tx = crate::store::begin_write(pool).await?;
    insert(&mut tx, new).await?;
    tx.commit().await?;
    find(pool, &new.name).await
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The columns an environment's settings are written to, in the order
/// [`bind_settings`] binds them: everything but its identity (id, name,
/// creation time) and its state (active slot, routing generation, archive).
const SETTINGS_COLUMNS: [&str; 41] = [
    "app_url",
    "runtime",
    "artifact_template",
    "proxy_admin_url",
    "proxy_token_file",
    "health_path",
    "health_status",
    "health_body",
    "health_interval_ms",
    "health_deadline_ms",
    "stop_grace_ms",
    "router",
    "nginx_binary",
    "nginx_conf",
    "nginx_prefix",
    "nginx_include",
    "nginx_pid_file",
    "nginx_upstream",
    "nginx_reload_timeout_ms",
    "gate_smoke_paths",
    "gate_sample_requests",
    "gate_p95_ms",
    "gate_p99_ms",
    "gate_max_error_pct",
    "drain_timeout_ms",
    "watch_window_ms",
    "standby_window_ms",
    "preview_listen",
    "container_port",
    "docker_volumes",
    "docker_memory_mb",
    "docker_cpus",
    "docker_restart",
    "docker_network",
    "docker_registry_user",
    "docker_registry_secret",
    "hold_at_preview",
    "hold_timeout_ms",
    "route_hosts",
    "route_path_prefix",
    "redirect_https",
];

use crate::store::Query;

/// Binds `new`'s settings in [`SETTINGS_COLUMNS`]' order.
fn bind_settings<'q>(q: Query<'q>, new: &'q NewEnvironment) -> Query<'q> {
    let nginx = new.nginx();
    q.bind(&new.app_url)
        .bind(new.runtime.as_str())
        .bind(&new.artifact_template)
        .bind(&new.proxy_admin_url)
        .bind(&new.proxy_token_file)
        .bind(&new.health_path)
        .bind(new.health_expect.status.map(i64::from))
        .bind(new.health_expect.body.as_deref())
        .bind(new.health_interval.as_millis() as i64)
        .bind(new.health_deadline.as_millis() as i64)
        .bind(new.stop_grace.as_millis() as i64)
        .bind(new.router.as_str())
        .bind(nginx.map(|n| path(&n.binary)))
        .bind(nginx.map(|n| path(&n.conf)))
        .bind(nginx.and_then(|n| n.prefix.as_deref().map(path)))
        .bind(nginx.map(|n| path(&n.include)))
        .bind(nginx.map(|n| path(&n.pid_file)))
        .bind(nginx.map(|n| n.upstream.clone()))
        .bind(nginx.map(|n| n.reload_timeout.as_millis() as i64))
        .bind(new.gates.smoke_paths_text())
        .bind(new.gates.sample_requests as i64)
        .bind(new.gates.p95.as_millis() as i64)
        .bind(new.gates.p99.as_millis() as i64)
        .bind(new.gates.max_error_rate * 100.0)
        .bind(new.drain_timeout.as_millis().max(1) as i64)
        .bind(new.watch_window.as_millis() as i64)
        .bind(new.standby_window.as_millis() as i64)
        .bind(new.preview_listen.as_deref())
        .bind(new.docker.port as i64)
        .bind(new.docker.volumes.join("\n"))
        .bind(new.docker.memory_mb.map(|m| m as i64))
        .bind(new.docker.cpus)
        .bind(&new.docker.restart)
        .bind(new.docker.network.as_deref())
        .bind(new.docker.registry_user.as_deref())
        .bind(new.docker.registry_secret.as_deref())
        .bind(new.hold_at_preview)
        .bind(new.hold_timeout.as_millis() as i64)
        .bind(new.route.hosts.join("\n"))
        .bind(new.route.path_prefix.as_deref())
        .bind(new.route.redirect_https)
}

/// Inserts a checked environment and its two stopped slots, inside the
/// caller's transaction (an apply writes many at once). Its id.
pub async fn insert(conn: &mut crate::store::Tx, new: &NewEnvironment) -> Result<i64> {
    let sql = format!(
        "INSERT INTO environments (name, created_at, {}) VALUES (?, ?{}) RETURNING id",
        SETTINGS_COLUMNS.join(", "),
        ", ?".repeat(SETTINGS_COLUMNS.len())
    );
    let q = crate::store::query(&sql).bind(&new.name).bind(crate::now());
    let res = bind_settings(q, new).returning_id(&mut *conn).await;
    let id = match res {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::AlreadyExists(format!(
                "environment {:?} (names stay taken after archiving: history refers to them)",
                new.name
            )))
        }
        Err(e) => return Err(e.into()),
    };
    for color in SlotColor::ALL {
        crate::store::query("INSERT INTO slots (environment_id, color, updated_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(color.as_str())
            .bind(crate::now())
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

/// Replaces every setting of environment `id` with `new`'s (its name and
/// its slots, active color and routing generation stay), inside the
/// caller's transaction. Takes effect from the next deploy.
pub async fn update(
    conn: &mut crate::store::Tx,
    id: i64,
    new: &NewEnvironment,
) -> Result<()> {
    let sets: Vec<String> = SETTINGS_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    let sql = format!(
        "UPDATE environments SET {} WHERE id = ? AND archived_at IS NULL",
        sets.join(", ")
    );
    let updated = bind_settings(crate::store::query(&sql), new)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(updated.rows_affected(), id)
}

/// Archives environment `env_id`: refused while a deployment runs (checked
/// in the same statement, so a deploy cannot slip in between; a deploy
/// begun after it finds the environment archived).
pub async fn archive(pool: &Pool, env_id: i64, by: &str) -> Result<()> {
    let updated = crate::store::query(
        "UPDATE environments SET archived_at = ?, archived_by = ? \
         WHERE id = ? AND archived_at IS NULL AND NOT EXISTS \
         (SELECT 1 FROM deployments WHERE environment_id = ? AND status = 'running')",
    )
    .bind(crate::audit::timestamp(crate::now()))
    .bind(by)
    .bind(env_id)
    .bind(env_id)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    if let Some((by, since)) = crate::deployments::in_progress(pool, env_id).await? {
        return Err(Error::DeployInProgress { by, since });
    }
    Err(Error::NotFound(format!("environment {env_id}")))
}

/// Undoes [`archive`] when what has to follow it failed (removing the
/// environment's route from its proxy): the environment stays live.
pub(crate) async fn unarchive(pool: &Pool, env_id: i64) -> Result<()> {
    crate::store::query("UPDATE environments SET archived_at = NULL, archived_by = NULL WHERE id = ?")
        .bind(env_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The live environments that take releases from `upstream` (promotion).
pub async fn downstream_of(pool: &Pool, upstream: &str) -> Result<Vec<String>> {
    Ok(crate::store::query_scalar(
        "SELECT name FROM environments WHERE upstream_environment = ? AND archived_at IS NULL \
         ORDER BY name",
    )
    .bind(upstream)
    .fetch_all(pool)
    .await?)
}

/// The archived environments, most recent first.
pub async fn archived(pool: &Pool) -> Result<Vec<model::ArchivedEnvironment>> {
    let rows: Vec<(String, String, Option<String>)> = crate::store::query_as(
        "SELECT name, archived_at, archived_by FROM environments \
         WHERE archived_at IS NOT NULL ORDER BY archived_at DESC, name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, archived_at, by)| model::ArchivedEnvironment {
            name,
            archived_at,
            archived_by: by.unwrap_or_default(),
        })
        .collect())
}

/// The live (not archived) environment of that name.
pub async fn find(pool: &Pool, name: &str) -> Result<Environment> {
    crate::store::query_as::<EnvRow>(&format!(
        "SELECT {ENV_COLUMNS} FROM environments WHERE name = ? AND archived_at IS NULL"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("environment {name:?}")))?
    .try_into()
}

/// By id, archived or not (history refers to archived ones by id).
pub async fn get(pool: &Pool, id: i64) -> Result<Environment> {
    crate::store::query_as::<EnvRow>(&format!(
        "SELECT {ENV_COLUMNS} FROM environments WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("environment {id}")))?
    .try_into()
}

/// The live environments (archived ones are left out).
pub async fn list(pool: &Pool) -> Result<Vec<Environment>> {
    crate::store::query_as::<EnvRow>(&format!(
        "SELECT {ENV_COLUMNS} FROM environments WHERE archived_at IS NULL ORDER BY name"
    ))
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Environment::try_from)
    .collect()
}

/// An update by id that matched no row names the environment it missed.
fn found(rows: u64, env_id: i64) -> Result<()> {
    if rows == 0 {
        return Err(Error::NotFound(format!("environment {env_id}")));
    }
    Ok(())
}

/// Replaces an environment's gate settings, refusing invalid ones. Takes
/// effect from the next deploy's gates step.
pub async fn set_gates(pool: &Pool, env_id: i64, gates: &GateSettings) -> Result<()> {
    gates.validate()?;
    let updated = crate::store::query(
        "UPDATE environments SET gate_smoke_paths = ?, gate_sample_requests = ?, gate_p95_ms = ?, \
         gate_p99_ms = ?, gate_max_error_pct = ? WHERE id = ?",
    )
    .bind(gates.smoke_paths_text())
    .bind(gates.sample_requests as i64)
    .bind(gates.p95.as_millis() as i64)
    .bind(gates.p99.as_millis() as i64)
    .bind(gates.max_error_rate * 100.0)
    .bind(env_id)
    .execute(pool)
    .await?;
    found(updated.rows_affected(), env_id)
}

/// Replaces the health wait's interval and deadline (checked by the caller,
/// see [`crate::settings`]). Takes effect from the next deploy.
pub async fn set_health(
    pool: &Pool,
    env_id: i64,
    interval: Duration,
    deadline: Duration,
) -> Result<()> {
    let updated = crate::store::query(
        "UPDATE environments SET health_interval_ms = ?, health_deadline_ms = ? WHERE id = ?",
    )
    .bind(interval.as_millis() as i64)
    .bind(deadline.as_millis() as i64)
    .bind(env_id)
    .execute(pool)
    .await?;
    found(updated.rows_affected(), env_id)
}

/// The pipeline's waiting times, as an operator sets them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timings {
    /// More than 0.
    pub drain_timeout: Duration,
    /// 0 turns the watch off.
    pub watch_window: Duration,
    /// 0 keeps the standby warm until the next deploy.
    pub standby_window: Duration,
    /// Hold deploys at preview, and for how long at most.
    pub hold_at_preview: bool,
    pub hold_timeout: Duration,
}

impl Environment {
    pub fn timings(&self) -> Timings {
        Timings {
            drain_timeout: self.drain_timeout,
            watch_window: self.watch_window,
            standby_window: self.standby_window,
            hold_at_preview: self.hold_at_preview,
            hold_timeout: self.hold_timeout,
        }
    }
}

/// Replaces an environment's timings. Takes effect from the next deploy.
pub async fn set_timings(pool: &Pool, env_id: i64, t: Timings) -> Result<()> {
    if t.drain_timeout.is_zero() {
        return Err(Error::invalid(
            "drain_timeout_ms",
            "the drain timeout must be above 0",
        ));
    }
    let updated = crate::store::query(
        "UPDATE environments SET drain_timeout_ms = ?, watch_window_ms = ?, standby_window_ms = ?, \
         hold_at_preview = ?, hold_timeout_ms = ? WHERE id = ?",
    )
    .bind(t.drain_timeout.as_millis() as i64)
    .bind(t.watch_window.as_millis() as i64)
    .bind(t.standby_window.as_millis() as i64)
    .bind(t.hold_at_preview)
    .bind(t.hold_timeout.as_millis() as i64)
    .bind(env_id)
    .execute(pool)
    .await?;
    found(updated.rows_affected(), env_id)
}

/// A preview listen address is written into nginx's configuration and
/// handed to switchyard-proxy: `host:port`, nothing else.
pub fn validate_preview_listen(listen: &str) -> Result<()> {
    let ok = match listen.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "preview_listen",
            format!(
            "preview listen address {listen:?} must be host:port, e.g. 127.0.0.1:8082"
        )))
    }
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
/// Sets (or, with `None`, removes) the router's preview listen address.
/// Takes effect from the next deploy's gates step; the router's listener
/// itself is the operator's (switchyard-proxy's `--preview`, or nginx).
pub async fn set_preview_listen(pool: &Pool, env_id: i64, listen: Option<&str>) -> Result<()> {
    if let Some(l) = listen {
        validate_preview_listen(l)?;
    }
    let updated = crate::store::query("UPDATE environments SET preview_listen = ? WHERE id = ?")
        .bind(listen)
        .bind(env_id)
        .execute(pool)
        .await?;
    found(updated.rows_affected(), env_id)
}

/// Records a routing generation the router now has, for a write that did
/// not change the active slot (a preview published or withdrawn). Never
/// lowers it: the router refuses anything not newer than what it has.
pub async fn record_generation(pool: &Pool, env_id: i64, generation: u64) -> Result<()> {
    crate::store::query(
        "UPDATE environments SET routing_generation = ? WHERE id = ? AND routing_generation < ?",
    )
    .bind(generation as i64)
    .bind(env_id)
    .bind(generation as i64)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_active(pool: &Pool, env_id: i64, color: SlotColor, generation: u64) -> Result<()> {
    crate::store::query("UPDATE environments SET active_color = ?, routing_generation = ? WHERE id = ?")
        .bind(color.as_str())
        .bind(generation as i64)
        .bind(env_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn view(pool: &Pool, env: &Environment) -> Result<EnvironmentView> {
    let slots = slots(pool, env.id).await?;
    // One read of the running deployment serves the banner and the lock view.
    let now = crate::now();
    let held = crate::lock::of_environment(pool, env.id).await?;
    let hold = match &held {
        Some(l) => crate::holds::get(pool, l.deployment_id)
            .await?
            .filter(|h| h.decision.is_none()),
        None => None,
    };
    let in_progress = held.as_ref().map(|l| match &hold {
        Some(h) => format!(
            "deploy #{} by {} held at preview {} until {}: a deployer promotes or aborts it",
            l.deployment_id,
            l.requested_by,
            h.preview_url,
            h.until.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => format!(
            "deploy in progress by {} since {}",
            l.requested_by,
            l.since.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    });
    let lock = held.map(|l| model::LockView {
        deployment_id: l.deployment_id,
        kind: l.kind,
        heartbeat_age_secs: l.heartbeat_age(now).as_secs(),
        requested_by: l.requested_by,
        since: l.since.to_rfc3339(),
        holder: l.holder,
    });
    Ok(EnvironmentView {
        name: env.name.clone(),
        app_url: env.app_url.clone(),
        preview_url: env.preview_listen.as_deref().map(|l| preview_url(env, l)),
        active: env.active,
        in_progress,
        lock,
        // Filled by `Engine::environment`, which knows the freeze windows.
        frozen: None,
        slots: slots
            .into_iter()
            .map(|s| SlotView {
                color: s.color,
                active: env.active == Some(s.color),
                version: s.version,
                state: s.state,
                address: s.address,
                last_health_ok: s.last_health_ok,
                last_health_message: s.last_health_message,
                last_health_at: s.last_health_at.map(|t| t.to_rfc3339()),
                standby_until: s.standby_until.map(|t| t.to_rfc3339()),
                standby_left_secs: s.standby_until.map(|t| (t - now).num_seconds().max(0)),
            })
            .collect(),
    })
}

/// Where a person reaches `env`'s preview: the listener's address, or, for
/// an environment sharing its proxy by host name, its first exact host at
/// the listener's port (the shared preview listener picks the route by
/// host, so the bare address would answer 404).
fn preview_url(env: &Environment, listen: &str) -> String {
    let host = match env.router {
        RouterKind::Builtin => env.route.first_exact_host(),
        _ => None,
    };
    format!("{}/", crate::router::person_preview_url(listen, host))
}
