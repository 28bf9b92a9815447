//! The docker runtime: a slot is a container of an image, named
//! `switchyard-<environment>-<color>` and labelled as Switchyard's.
//!
//! An image that is not on the machine is pulled from its registry (`fetch`,
//! with the environment's login); one that is neither here nor in the
//! registry is an unknown release, refused before anything starts.
//!
//! The artifact is an image reference (the environment's `artifact_template`
//! with `{version}` substituted). Versions may carry semver build metadata
//! (`v2+unhealthy`) but `+` is not allowed anywhere in an image reference, so
//! this driver maps every `+` to `-`: version `v2+unhealthy` runs image tag
//! `v2-unhealthy`. (`v2+x` and `v2-x` therefore share a tag.) The container is
//! still told the real version through `APP_VERSION`.
//!
//! Containers are only ever stopped, never removed while they may be needed: a
//! stopped standby is what a late rollback starts again. A leftover *stopped*
//! container of a slot is removed when that slot is started anew.

use super::{Liveness, RunningSlot, Runtime, RuntimeError, SlotSpec};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListImagesOptions, InspectContainerOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use bollard::Docker;
use std::collections::HashMap;
use std::time::Duration;

/// Every container this driver creates carries `managed=true`; the others
/// say which environment, slot and version it is, so an operator (or a test)
/// can find them with `docker ps --filter label=...`.
pub const LABEL_MANAGED: &str = "dev.switchyard.managed";
pub const LABEL_ENVIRONMENT: &str = "dev.switchyard.environment";
pub const LABEL_SLOT: &str = "dev.switchyard.slot";
pub const LABEL_VERSION: &str = "dev.switchyard.version";


/// Requests other than `stop` are quick; `stop` waits for the grace period
/// (see `stop`), the rest use bollard's default timeout.
const STOP_SLACK: Duration = Duration::from_secs(30);

pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Connects to the Docker Engine the `docker` CLI would use (`DOCKER_HOST`,
    /// else `/var/run/docker.sock`) and agrees on an API version with it: bollard
    /// speaks a newer API than Debian's Engine 20.10 (max 1.41), which refuses
    /// requests for versions it does not know.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_defaults().map_err(|e| {
            RuntimeError::Unavailable(format!("cannot connect to the Docker Engine: {e}"))
        })?;
        Self::with_client(docker).await
    }

    /// Wraps an existing client, negotiating the API version with the daemon.
    pub async fn with_client(docker: Docker) -> Result<Self, RuntimeError> {
        let docker = docker.negotiate_version().await.map_err(|e| {
            RuntimeError::Unavailable(format!(
                "the Docker Engine does not answer (is dockerd running?): {e}"
            ))
        })?;
        Ok(DockerRuntime { docker })
    }

    /// The client, for callers that need more than the trait (tests, cleanup).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// One container per slot: a name Docker keeps unique, so two consoles
    /// (or a console and its restarted self) cannot run two copies of a slot.
    pub fn container_name(environment: &str, color: model::SlotColor) -> String {
        format!("switchyard-{environment}-{color}")
    }

    /// The image reference to run for an artifact: `+` (semver build metadata)
    /// is not valid in a Docker reference and becomes `-`.
    pub fn image_reference(artifact: &str) -> Result<String, RuntimeError> {
        let image = artifact.trim().replace('+', "-");
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RuntimeError::InvalidArtifact(format!(
                "{artifact:?} is not a Docker image reference"
            )));
        }
        Ok(image)
    }

    /// What the environment asks of the container besides ports and
    /// variables: mounts, limits, restart policy, network.
    fn host_config(spec: &SlotSpec) -> HostConfig {
        let d = &spec.docker;
        let restart = d.restart.split_once(':').map_or(d.restart.as_str(), |(n, _)| n);
        let name = match restart {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        };
        HostConfig {
            binds: Some(d.volumes.clone()).filter(|v| !v.is_empty()),
            memory: d.memory_mb.map(|m| (m as i64).saturating_mul(1024 * 1024)),
            nano_cpus: d.cpus.map(|c| (c * 1e9) as i64),
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: d
                    .restart
                    .split_once(':')
                    .and_then(|(_, n)| n.parse().ok()),
            }),
            network_mode: d.network.clone(),
            ..Default::default()
        }
    }

    /// Whether `image` is on this machine.
    async fn present(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) if status_of(&e) == Some(400) => {
                Err(RuntimeError::InvalidArtifact(format!("{image}: {e}")))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// `None` when the container does not exist.
    async fn inspect(
        &self,
        name_or_id: &str,
    ) -> Result<Option<ContainerInspectResponse>, DockerError> {
        match self
            .docker
            .inspect_container(name_or_id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes way for a new container of this slot: a stopped leftover (the
    /// previous standby, a crashed release) is removed; a running one is
    /// refused, because replacing what may be serving users is exactly what
    /// the pipeline must never do; it stops the previous standby first.
    async fn clear_leftover(&self, name: &str) -> Result<(), RuntimeError> {
        let Some(existing) = self.inspect(name).await.map_err(unavailable)? else {
            return Ok(());
        };
        let managed = existing
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_MANAGED))
            .is_some_and(|v| v == "true");
        if !managed {
            return Err(RuntimeError::StartFailed(format!(
                "a container named {name} exists and is not managed by Switchyard \
                 (no {LABEL_MANAGED}=true label): remove or rename it"
            )));
        }
        let state = existing.state.as_ref();
        let status = state.and_then(|s| s.status);
        let stopped = matches!(
            status,
            Some(
                ContainerStateStatusEnum::CREATED
                    | ContainerStateStatusEnum::EXITED
                    | ContainerStateStatusEnum::DEAD
            )
        ) && !state.and_then(|s| s.running).unwrap_or(false);
        if !stopped {
            return Err(RuntimeError::StartFailed(format!(
                "container {name} is still {}: stop that slot before starting a new release in it",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "in an unknown state".into())
            )));
        }
        let id = existing.id.unwrap_or_else(|| name.to_string());
        match self
            .docker
            .remove_container(&id, None::<RemoveContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            // Someone else removed it in between: the name is free either way.
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(RuntimeError::StartFailed(format!(
                "could not remove the stopped container {name}: {e}"
            ))),
        }
    }
}

/// The HTTP status of an error the daemon answered with; `None` when the
/// daemon was not reached at all.
fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The tags a registry lists for `repo` (`host[:port]/path`), by the
/// registry API (the Docker Engine API has no such call); empty when it
/// cannot be asked or does not answer in 2 s. Plain HTTP for a loopback
/// registry, HTTPS otherwise.
async fn registry_tags(repo: &str, login: Option<&super::RegistryLogin>) -> Vec<String> {
    let Some((host, path)) = split_registry(repo) else {
        return Vec::new();
    };
    let loopback = ["127.", "localhost", "[::1]"].iter().any(|p| host.starts_with(p));
    let scheme = if loopback { "http" } else { "https" };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(c) => c,
        Err(_) => return Vec::new(),
    };
    let mut req = client.get(format!("{scheme}://{host}/v2/{path}/tags/list"));
    if let Some(l) = login {
        req = req.basic_auth(&l.username, Some(&l.password));
    }
    #[derive(serde::Deserialize)]
    struct Tags {
        tags: Option<Vec<String>>,
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => r
            .json::<Tags>()
            .await
            .ok()
            .and_then(|t| t.tags)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Orders `v10` after `v9`: digit runs compare as numbers.
fn natural_key(tag: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = tag;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    key
}

/// The registry's answer to a pull or an inspect, without the request.
fn registry_answer(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `host[:port]/path` → (host, path) when the first component names a
/// registry (Docker's rule: it holds a '.' or ':', or is `localhost`);
/// `None` for a Docker Hub name.
fn split_registry(reference: &str) -> Option<(&str, &str)> {
    reference
        .split_once('/')
        .filter(|(h, _)| h.contains(['.', ':']) || *h == "localhost")
}

/// The login for the registry `image` names (its first path component when
/// that is a host), from the spec; `None` without one.
fn credentials(image: &str, spec: &SlotSpec) -> Option<DockerCredentials> {
    let login = spec.registry.as_ref()?;
    let host = split_registry(image).map(|(h, _)| h);
    Some(DockerCredentials {
        username: Some(login.username.clone()),
        password: Some(login.password.clone()),
        serveraddress: host.map(String::from),
        ..Default::default()
    })
}

fn unavailable(e: DockerError) -> RuntimeError {
    RuntimeError::Unavailable(format!("Docker Engine: {e}"))
}

/// The Docker API takes whole seconds; round up so a slot gets at least the
/// grace it was promised.
fn grace_seconds(grace: Duration) -> i32 {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    secs.min(i32::MAX as u64) as i32
}

/// Loopback port nobody listens on right now (bind port 0). Chosen here,
/// rather than letting Docker assign one at start, so the slot's address is
/// known even when its container exits before it could be inspected (a
/// release that crashes at start): `start` then has one contract for both
/// drivers, launched-with-an-address, and liveness reports the exit. The port
/// is free again before Docker binds it; a collision in that gap fails the
/// start ("port is already allocated"), which the pipeline reports.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn describe_exit(c: &ContainerInspectResponse) -> String {
    let Some(state) = &c.state else {
        return "state unknown".into();
    };
    let mut why = match (state.status, state.exit_code) {
        (Some(ContainerStateStatusEnum::CREATED), _) => "created but never started".to_string(),
        (_, Some(code)) => format!("exit code {code}"),
        (status, None) => status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "exited".into()),
    };
    if state.oom_killed == Some(true) {
        why.push_str(", killed: out of memory");
    }
    if let Some(err) = state.error.as_deref().filter(|e| !e.is_empty()) {
        why.push_str(&format!(" ({err})"));
    }
    why
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn check(&self, spec: &SlotSpec) -> Result<(), RuntimeError> {
        let image = Self::image_reference(&spec.artifact)?;
        if self.present(&image).await? {
            return Ok(());
        }
        // Not here: the registry must have it (asked with the environment's
        // login; Docker answers from the registry's manifest, nothing is
        // downloaded).
        match self
            .docker
            .inspect_registry_image(&image, credentials(&image, spec))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e).is_some() => Err(RuntimeError::ArtifactNotFound(format!(
                "image {image} is neither on this machine nor in its registry ({})",
                registry_answer(&e)
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// For `repo:{version}`: the repository's local tags (newest image
    /// first), then the registry's (asked with the login; natural order,
    /// highest first). The registry is given 2 s.
    async fn versions(
        &self,
        template: &str,
        registry: Option<&super::RegistryLogin>,
        limit: usize,
    ) -> Result<Vec<String>, RuntimeError> {
        let Some(repo) = template.trim().strip_suffix(":{version}") else {
            return Ok(Vec::new());
        };
        let options = ListImagesOptions {
            filters: Some(HashMap::from([(
                "reference".to_string(),
                vec![format!("{repo}:*")],
            )])),
            ..Default::default()
        };
        let mut local: Vec<(i64, String)> = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(unavailable)?
            .into_iter()
            .flat_map(|i| {
                let created = i.created;
                i.repo_tags
                    .into_iter()
                    .filter_map(move |t| Some((created, t.strip_prefix(repo)?.strip_prefix(':')?.to_string())))
            })
            .collect();
        local.sort_by(|a, b| b.cmp(a));
        let mut versions: Vec<String> = local.into_iter().map(|(_, t)| t).collect();
        let mut remote = registry_tags(repo, registry).await;
        remote.sort_by_key(|t| std::cmp::Reverse(natural_key(t)));
        for tag in remote {
            if !versions.contains(&tag) {
                versions.push(tag);
            }
        }
        versions.truncate(limit);
        Ok(versions)
    }

    async fn fetch(
        &self,
        spec: &SlotSpec,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        use futures_util::StreamExt;
        let image = Self::image_reference(&spec.artifact)?;
        if self.present(&image).await? {
            return Ok(());
        }
        progress(format!("pulling {image}"));
        let options = CreateImageOptions {
            from_image: Some(image.clone()),
            ..Default::default()
        };
        let mut pull = self
            .docker
            .create_image(Some(options), None, credentials(&image, spec));
        // Layers report their own progress; the step shows the latest line
        // and how many layers are done.
        let mut done = std::collections::HashSet::new();
        while let Some(info) = pull.next().await {
            match info {
                Ok(info) => {
                    if let Some(err) = info.error {
                        return Err(RuntimeError::ArtifactNotFound(format!(
                            "pulling {image}: {err}"
                        )));
                    }
                    let status = info.status.unwrap_or_default();
                    if let Some(id) = &info.id {
                        if status.starts_with("Pull complete") || status.starts_with("Already exists") {
                            done.insert(id.clone());
                        }
                    }
                    let detail = info.progress.unwrap_or_default();
                    progress(format!(
                        "pulling {image}: {status} {detail} ({} layers done)",
                        done.len()
                    ));
                }
                Err(e) if status_of(&e).is_some() => {
                    return Err(RuntimeError::ArtifactNotFound(format!(
                        "pulling {image}: {}",
                        registry_answer(&e)
                    )))
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        if self.present(&image).await? {
            progress(format!("pulled {image} ({} layers)", done.len()));
            Ok(())
        } else {
            Err(RuntimeError::ArtifactNotFound(format!(
                "pulling {image} ended without the image"
            )))
        }
    }

    async fn start(&self, spec: &SlotSpec) -> Result<RunningSlot, RuntimeError> {
        // Normally fetched by the start step already (with its progress).
        self.fetch(spec, &|_| {}).await?;
        let image = Self::image_reference(&spec.artifact)?;
        let name = Self::container_name(&spec.environment, spec.color);
        self.clear_leftover(&name).await?;

        let host_port = free_port()?;
        // Inside its own network namespace the service listens on all
        // interfaces (the image's business: the demo's sets HOST=0.0.0.0);
        // only the host side of the published port is kept to loopback.
        let port_key = format!("{}/tcp", spec.docker.port);
        let labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_ENVIRONMENT.to_string(), spec.environment.clone()),
            (LABEL_SLOT.to_string(), spec.color.to_string()),
            (LABEL_VERSION.to_string(), spec.version.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(
                spec.env
                    .0
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .chain([
                        format!("PORT={}", spec.docker.port),
                        format!("APP_VERSION={}", spec.version),
                    ])
                    .collect(),
            ),
            labels: Some(labels),
            exposed_ports: Some(HashMap::from([(port_key.clone(), HashMap::new())])),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    port_key.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(host_port.to_string()),
                    }]),
                )])),
                // Restart policy `no` unless the environment says otherwise:
                // a slot that dies stays dead so the health wait and liveness
                // see it, and Switchyard decides.
                ..Self::host_config(spec)
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => RuntimeError::ArtifactNotFound(format!(
                    "image {image} is not on this machine: pull, build or import it"
                )),
                Some(409) => RuntimeError::StartFailed(format!(
                    "container {name} was created by someone else meanwhile: {e}"
                )),
                Some(_) => RuntimeError::StartFailed(format!("creating container {name}: {e}")),
                None => unavailable(e),
            })?;
        if let Err(e) = self
            .docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
        {
            // Nothing ran: leave no half-made slot behind.
            let _ = self
                .docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(match status_of(&e) {
                Some(_) => RuntimeError::StartFailed(format!("starting container {name}: {e}")),
                None => unavailable(e),
            });
        }
        tracing::info!(env = %spec.environment, slot = %spec.color, version = %spec.version,
            container = %created.id, %image, host_port, "started slot container");
        Ok(RunningSlot {
            handle: created.id,
            address: format!("127.0.0.1:{host_port}"),
        })
    }

    /// `docker stop`: SIGTERM, then SIGKILL by the daemon once `grace` (whole
    /// seconds, rounded up) has passed. The container is kept: a rollback after
    /// the standby window starts it again.
    async fn stop(&self, handle: &str, grace: Duration) -> Result<(), RuntimeError> {
        if self.liveness(handle).await != Liveness::Running {
            return Ok(());
        }
        // The request lasts as long as the grace period; bollard's default
        // timeout (2 min) must not cut a longer one short.
        let docker = self.docker.clone().with_timeout(grace + STOP_SLACK);
        let options = StopContainerOptions {
            t: Some(grace_seconds(grace)),
            ..Default::default()
        };
        match docker.stop_container(handle, Some(options)).await {
            Ok(()) => {}
            Err(e) if status_of(&e) == Some(404) => return Ok(()),
            Err(e) => {
                return Err(RuntimeError::StopFailed {
                    handle: handle.into(),
                    reason: e.to_string(),
                })
            }
        }
        match self.liveness(handle).await {
            Liveness::Exited(_) => Ok(()),
            Liveness::Running => Err(RuntimeError::StopFailed {
                handle: handle.into(),
                reason: "still running after docker stop".into(),
            }),
        }
    }

    /// Running while Docker says so. When the daemon cannot be asked, the
    /// answer is `Running`: liveness feeds decisions that mark slots stopped,
    /// and a daemon hiccup must not make Switchyard forget a container that
    /// may be serving users (the health probe still tells whether it works).
    async fn recent_output(
        &self,
        environment: &str,
        color: model::SlotColor,
        max_bytes: usize,
    ) -> Result<String, RuntimeError> {
        use futures_util::StreamExt;
        let name = Self::container_name(environment, color);
        let options = bollard::query_parameters::LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail("2000")
            .build();
        let mut stream = self.docker.logs(&name, Some(options));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(out) => bytes.extend_from_slice(out.as_ref()),
                // Never started here (or removed): nothing to show.
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(String::new()),
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(super::tail_lines(&bytes, max_bytes))
    }

    async fn liveness(&self, handle: &str) -> Liveness {
        match self.inspect(handle).await {
            Ok(None) => Liveness::Exited("container gone".into()),
            Ok(Some(c)) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                Liveness::Running
            }
            Ok(Some(c)) => Liveness::Exited(describe_exit(&c)),
            Err(e) => {
                tracing::warn!(container = handle, error = %e, "cannot inspect container; assuming it still runs");
                Liveness::Running
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_with_build_metadata_map_to_valid_tags() {
        assert_eq!(
            DockerRuntime::image_reference("switchyard-demo:v2+unhealthy").unwrap(),
            "switchyard-demo:v2-unhealthy"
        );
        assert_eq!(
            DockerRuntime::image_reference("registry.local/app:2.0.0-rc.1+build.7").unwrap(),
            "registry.local/app:2.0.0-rc.1-build.7"
        );
        assert_eq!(
            DockerRuntime::image_reference("switchyard-demo:v1").unwrap(),
            "switchyard-demo:v1"
        );
        for bad in ["", "  ", "app:v1 --privileged"] {
            assert!(matches!(
                DockerRuntime::image_reference(bad),
                Err(RuntimeError::InvalidArtifact(_))
            ));
        }
    }

    #[test]
    fn grace_rounds_up_to_whole_seconds() {
        assert_eq!(grace_seconds(Duration::ZERO), 0);
        assert_eq!(grace_seconds(Duration::from_millis(300)), 1);
        assert_eq!(grace_seconds(Duration::from_secs(10)), 10);
        assert_eq!(grace_seconds(Duration::from_millis(10_001)), 11);
    }

    #[test]
    fn container_names_follow_environment_and_color() {
        assert_eq!(
            DockerRuntime::container_name("production", model::SlotColor::Green),
            "switchyard-production-green"
        );
    }
}
