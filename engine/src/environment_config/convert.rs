//! Between an environment as stored and as written down
//! ([`EnvironmentConfig`]), with every field checked on the way in and named
//! when refused.

use super::{artifact, docker};
use crate::checklists::ApprovalSettings;
use crate::environments::{self, Environment, NewEnvironment, RouteClaim};
use crate::error::{Error, Result};
use crate::health::HealthExpect;
use crate::router::NginxSettings;
use crate::settings;
use crate::slot_env;
use model::{DockerConfig, EnvironmentConfig, NginxConfig, RouterConfig, RouterKind, SlotEnvView};
use std::collections::BTreeMap;
use std::time::Duration;

/// An environment as its config describes it, everything checked that can
/// be without the store.
pub(super) struct Checked {
    pub new: NewEnvironment,
    pub approval: ApprovalSettings,
    pub variables: BTreeMap<String, String>,
    pub secrets: Vec<String>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// What `env` looks like written down.
pub(super) fn to_config(
    env: &Environment,
    approval: &ApprovalSettings,
    vars: &SlotEnvView,
) -> EnvironmentConfig {
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    EnvironmentConfig {
        name: env.name.clone(),
        runtime: env.runtime,
        artifact: env.artifact_template.clone(),
        app_url: env.app_url.clone(),
        preview_listen: env.preview_listen.clone(),
        hosts: env.route.hosts.clone(),
        path_prefix: env.route.path_prefix.clone(),
        redirect_https: env.route.redirect_https,
        health_path: env.health_path.clone(),
        health_status: env.health_expect.status,
        health_body: env.health_expect.body.clone(),
        stop_grace_ms: ms(env.stop_grace),
        upstream: approval.upstream.clone(),
        backup_command: approval.backup_command.clone(),
        signoff_ttl_secs: approval.signoff_ttl.as_secs(),
        secrets: vars.secrets.iter().map(|s| s.name.clone()).collect(),
        variables: vars
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        router: RouterConfig {
            kind: env.router,
            admin_url: env.proxy_admin_url.clone(),
            token_file: env.proxy_token_file.clone(),
            nginx: env.nginx.as_ref().map(|n| NginxConfig {
                binary: path(&n.binary),
                conf: path(&n.conf),
                prefix: n.prefix.as_deref().map(path),
                include: path(&n.include),
                pid_file: path(&n.pid_file),
                upstream: n.upstream.clone(),
                reload_timeout_ms: ms(n.reload_timeout),
            }),
        },
        pipeline: settings::of(env),
        docker: DockerConfig {
            port: env.docker.port,
            volumes: env.docker.volumes.clone(),
            memory_mb: env.docker.memory_mb,
            cpus: env.docker.cpus,
            restart: env.docker.restart.clone(),
            network: env.docker.network.clone(),
            registry_user: env.docker.registry_user.clone(),
            registry_password_secret: env.docker.registry_secret.clone(),
        },
    }
}

/// Checks every field of `c` and turns it into what the store writes.
pub(super) fn check(c: &EnvironmentConfig) -> Result<Checked> {
    environments::validate_name(&c.name)?;
    artifact::check(c.runtime, &c.artifact)?;
    check_app_url(&c.app_url)?;
    let preview_listen = c
        .preview_listen
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    if let Some(l) = preview_listen {
        environments::validate_preview_listen(l)?;
    }
    let route = RouteClaim::check(&c.hosts, c.path_prefix.as_deref(), c.redirect_https)?;
    check_health_path(&c.health_path)?;
    let health_expect = check_health_expect(c.health_status, c.health_body.as_deref())?;
    if !(1..=10 * 60 * 1000).contains(&c.stop_grace_ms) {
        return Err(Error::invalid(
            "stop_grace_ms",
            "the stop grace must be between 1 ms and 10 minutes",
        ));
    }
    let upstream = c
        .upstream
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(up) = upstream {
        environments::validate_name(up).map_err(|_| {
            Error::invalid("upstream", format!("{up:?} is not an environment name"))
        })?;
        if up == c.name {
            return Err(Error::invalid(
                "upstream",
                "an environment cannot be its own upstream",
            ));
        }
    }
    let backup_command = c
        .backup_command
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    if let Some(b) = backup_command {
        if shell_words::split(b).map_or(true, |w| w.is_empty()) {
            return Err(Error::invalid(
                "backup_command",
                "the backup command does not parse as a command line",
            ));
        }
    }
    if !(1..=366 * 24 * 3600).contains(&c.signoff_ttl_secs) {
        return Err(Error::invalid(
            "signoff_ttl_secs",
            "sign-offs must stay valid between 1 second and a year",
        ));
    }
    for (name, value) in &c.variables {
        slot_env::validate_name(name).map_err(|e| rename(e, "variables", name))?;
        slot_env::refuse_secret_like(name).map_err(|e| rename(e, "variables", name))?;
        slot_env::validate_value("variables", value)?;
    }
    let mut secrets = c.secrets.clone();
    for name in &secrets {
        slot_env::validate_name(name).map_err(|e| rename(e, "secrets", name))?;
        if c.variables.contains_key(name) {
            return Err(Error::invalid(
                "secrets",
                format!("{name} is both a variable and a secret; a name is one or the other"),
            ));
        }
    }
    secrets.sort();
    secrets.dedup();
    let (admin_url, token_file, nginx) = check_router(&c.name, &c.router)?;
    let p = &c.pipeline;
    let (health_interval, health_deadline) = settings::health(p)?;
    let gates = settings::gates(p)?;
    let timings = settings::timings(p)?;
    let new = NewEnvironment {
        name: c.name.clone(),
        app_url: c.app_url.trim().to_string(),
        runtime: c.runtime,
        artifact_template: c.artifact.trim().to_string(),
        router: c.router.kind,
        proxy_admin_url: admin_url,
        proxy_token_file: token_file,
        nginx,
        preview_listen: preview_listen.map(String::from),
        route,
        health_path: c.health_path.clone(),
        health_expect,
        health_interval,
        health_deadline,
        stop_grace: Duration::from_millis(c.stop_grace_ms),
        gates,
        drain_timeout: timings.drain_timeout,
        watch_window: timings.watch_window,
        standby_window: timings.standby_window,
        hold_at_preview: timings.hold_at_preview,
        hold_timeout: timings.hold_timeout,
        docker: docker::check(&c.docker, &secrets)?,
    };
    new.validate()?;
    Ok(Checked {
        new,
        approval: ApprovalSettings {
            upstream: upstream.map(String::from),
            backup_command: backup_command.map(String::from),
            signoff_ttl: Duration::from_secs(c.signoff_ttl_secs),
        },
        variables: c.variables.clone(),
        secrets,
    })
}

/// A variable-name error, told as the list it came from.
fn rename(e: Error, field: &'static str, name: &str) -> Error {
    match e {
        Error::InvalidInput { message, .. } => Error::invalid(field, format!("{name}: {message}")),
        other => other,
    }
}

fn check_app_url(url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url.trim()).ok();
    let ok = parsed.as_ref().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if ok
        && !url
            .chars()
            .any(|c| c.is_whitespace() || "<>\"'`".contains(c))
    {
        Ok(())
    } else {
        Err(Error::invalid(
            "app_url",
            format!("{url:?} is not an http(s) address like http://shop.example.com/"),
        ))
    }
}

fn check_health_path(path: &str) -> Result<()> {
    let plain = path.starts_with('/')
        && path.len() <= 200
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !"#\\<>\"'`".contains(c));
    if plain {
        Ok(())
    } else {
        Err(Error::invalid(
            "health_path",
            format!("health path {path:?} must start with '/' and hold no spaces or any of # \\ < > \" ' `"),
        ))
    }
}

/// The expected status and body text: a status HTTP has, a short text (it
/// is shown in every failed probe's message). A blank text is no text.
fn check_health_expect(status: Option<u16>, body: Option<&str>) -> Result<HealthExpect> {
    if let Some(s) = status {
        if !(100..=599).contains(&s) {
            return Err(Error::invalid(
                "health_status",
                format!("{s} is not an HTTP status (100 to 599)"),
            ));
        }
    }
    let body = body.filter(|b| !b.trim().is_empty());
    if let Some(b) = body {
        if b.chars().count() > 200 || b.chars().any(char::is_control) {
            return Err(Error::invalid(
                "health_body",
                "the expected health text is one line of at most 200 characters",
            ));
        }
    }
    Ok(HealthExpect {
        status,
        body: body.map(String::from),
    })
}

/// Absolute, printable paths: they are handed to nginx and written into
/// its configuration.
fn check_path(field: &'static str, p: &str) -> Result<std::path::PathBuf> {
    if p.starts_with('/')
        && !p
            .chars()
            .any(|c| c.is_control() || c == ';' || c.is_whitespace())
    {
        Ok(p.into())
    } else {
        Err(Error::invalid(
            field,
            format!("{p:?} must be an absolute path without spaces or ';'"),
        ))
    }
}

type RouterParts = (String, String, Option<NginxSettings>);

fn check_router(env_name: &str, r: &RouterConfig) -> Result<RouterParts> {
    match r.kind {
        RouterKind::Builtin => {
            // Loopback TCP, or the proxy's unix socket (`--admin-socket`).
            match r.admin_url.trim().strip_prefix("unix:") {
                Some(socket) => {
                    check_path("admin_url", socket)?;
                }
                None => {
                    let admin = reqwest::Url::parse(r.admin_url.trim()).ok();
                    if !admin.is_some_and(|u| u.scheme() == "http" && u.host_str().is_some()) {
                        return Err(Error::invalid(
                            "admin_url",
                            "the builtin router needs switchyard-proxy's admin address, like \
                             http://127.0.0.1:9100 or unix:/run/switchyard/proxy.sock",
                        ));
                    }
                }
            }
            check_path("token_file", r.token_file.trim())?;
            Ok((
                r.admin_url.trim().to_string(),
                r.token_file.trim().to_string(),
                None,
            ))
        }
        RouterKind::Nginx => {
            let n = r.nginx.as_ref().ok_or_else(|| {
                Error::invalid(
                    "nginx",
                    "the nginx router needs its [router.nginx] settings (conf, include, pid_file)",
                )
            })?;
            let upstream = if n.upstream.trim().is_empty() {
                NginxSettings::upstream_for(env_name)
            } else {
                n.upstream.trim().to_string()
            };
            if !upstream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::invalid(
                    "upstream_name",
                    "an nginx upstream name holds letters, digits, '_' and '-' only",
                ));
            }
            if !(100..=5 * 60 * 1000).contains(&n.reload_timeout_ms) {
                return Err(Error::invalid(
                    "reload_timeout_ms",
                    "the nginx reload timeout must be between 100 ms and 5 minutes",
                ));
            }
            let binary = if n.binary.trim().is_empty() {
                NginxSettings::DEFAULT_BINARY.into()
            } else {
                check_path("binary", n.binary.trim())?
            };
            let settings = NginxSettings {
                binary,
                conf: check_path("conf", n.conf.trim())?,
                prefix: n
                    .prefix
                    .as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| check_path("prefix", p))
                    .transpose()?,
                include: check_path("include", n.include.trim())?,
                pid_file: check_path("pid_file", n.pid_file.trim())?,
                upstream,
                reload_timeout: Duration::from_millis(n.reload_timeout_ms),
            };
            // The builtin's columns are not used by an nginx environment.
            Ok((r.admin_url.clone(), r.token_file.clone(), Some(settings)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that leaves `[pipeline]` out gets what a new environment
    /// gets: the two defaults are one.
    #[test]
    fn the_files_defaults_are_a_new_environments() {
        let n = NewEnvironment::new("x", "http://a/", "run {version}", "http://b", "/t");
        let d = model::PipelineSettings::default();
        assert_eq!(
            settings::health(&d).unwrap(),
            (n.health_interval, n.health_deadline)
        );
        assert_eq!(settings::gates(&d).unwrap(), n.gates);
        let t = settings::timings(&d).unwrap();
        assert_eq!(
            (t.drain_timeout, t.watch_window, t.standby_window),
            (n.drain_timeout, n.watch_window, n.standby_window)
        );
    }
}
