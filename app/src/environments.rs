//! The Environments page, for admins: every live environment with its
//! artifact and address, a form to create one, an edit form per environment
//! and its archive button, and the archived ones.
//!
//! The browser sets what a team changes day to day. Fields that name a
//! command or a file on the console's host — a process environment's
//! command line, the backup command, the proxy token file, nginx's files —
//! are set with `switchyard env` or an applied file instead: an admin
//! session in a browser must not be a shell on the host, nor a way to read
//! its files. For the same reason a builtin router's admin address must be
//! on loopback (the console sends the proxy's token there), and a Docker
//! mount from the browser is a named volume: a host directory (a source
//! starting with `/`) set with the CLI or a file is kept, a new one refused.
// The browser's side of the forms' server functions takes one argument per
// field, as the server's does, but the macro does not carry its allow over.
#![cfg_attr(not(feature = "ssr"), allow(clippy::too_many_arguments))]

use crate::components::{action_result, page_shell, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use crate::textarea::TextArea;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{ArchivedEnvironment, EnvironmentConfig, RuntimeKind, SessionUser};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, signed_in, state};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentsPage {
    pub me: SessionUser,
    pub environments: Vec<LiveEnvironment>,
    pub archived: Vec<ArchivedEnvironment>,
    /// The console's own switchyard-proxy admin address, the form's default.
    pub proxy_admin_url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveEnvironment {
    pub config: EnvironmentConfig,
    /// Users are served by one of its slots (archiving needs confirmation).
    pub serving: bool,
}

#[server(endpoint = "load_environments")]
pub async fn load_environments() -> Result<EnvironmentsPage, AppError> {
    crate::error::respond(
        async move {
            let st = state()?;
            let (actor, me) = signed_in().await?;
            // Variables' values are on this page: admins only.
            st.engine
                .authorize(&actor, engine::Action::ManageEnvironments, None)
                .await?;
            let mut environments = Vec::new();
            for mut config in st.engine.environment_configs(&actor).await? {
                // Host-side fields never reach a browser: the backup command
                // may carry a credential, the token file is a secret's path.
                config.backup_command = config.backup_command.map(|_| "(set)".to_string());
                config.router.token_file = String::new();
                let view = st.engine.environment(&actor, &config.name).await?;
                environments.push(LiveEnvironment {
                    config,
                    serving: view.active.is_some(),
                });
            }
            Ok(EnvironmentsPage {
                me,
                environments,
                archived: st.engine.archived_environments(&actor).await?,
                proxy_admin_url: st.proxy.admin_url.clone(),
            })
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use crate::fields::whole_number;

    /// A builtin router's admin address from the browser: on loopback only
    /// (the console sends the proxy's token there).
    pub fn loopback_admin_url(raw: &str) -> Result<String, AppError> {
        let raw = raw.trim();
        let host = raw
            .strip_prefix("http://")
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .map(|authority| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
        match host {
            Some("127.0.0.1" | "localhost" | "[::1]") => Ok(raw.trim_end_matches('/').to_string()),
            _ => Err(AppError::invalid(
                "admin_url",
                "switchyard-proxy's admin address must be on this host, like http://127.0.0.1:8081 \
                 (other addresses: `switchyard env edit` or an applied file)",
            )),
        }
    }

    /// Empty text is "not set".
    pub fn optional(raw: &str) -> Option<String> {
        Some(raw.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// The form's host names: one line, separated by commas or spaces
    /// (each is checked by the engine, named `hosts`).
    pub fn hosts(raw: &str) -> Vec<String> {
        raw.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect()
    }

    /// Mounts from the form, one per line, checked by the engine as a
    /// file's are; then a host directory (a source starting with `/`) not
    /// among `current` is refused: it would hand the browser the host's
    /// files (see the module's documentation).
    pub fn mounts(raw: &str, current: &[String]) -> Result<Vec<String>, AppError> {
        let mounts = engine::Engine::mounts_from_lines(raw)?;
        for (i, line) in raw.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('/') && !current.iter().any(|m| m == line) {
                return Err(AppError::invalid(
                    "volumes",
                    format!(
                        "volumes, line {}: {line:?} mounts a directory of the console's host: \
                         set host directories with `switchyard env edit` or an applied file; \
                         here, use a named volume such as shop-data:/data",
                        i + 1
                    ),
                ));
            }
        }
        Ok(mounts)
    }

    /// The secret a login given with a new environment is kept in.
    pub const REGISTRY_SECRET: &str = "REGISTRY_PASSWORD";

    /// A registry login given with a new environment: the user, and the
    /// password as the value of [`REGISTRY_SECRET`] (never echoed back).
    /// Both or neither.
    pub fn registry_login(
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Option<(String, String)>, AppError> {
        let user = user.as_deref().and_then(optional);
        let password = password.filter(|p| !p.is_empty());
        match (user, password) {
            (None, None) => Ok(None),
            (Some(u), Some(p)) => Ok(Some((u, p))),
            (Some(_), None) => Err(AppError::invalid(
                "registry_password",
                "a registry login needs its password",
            )),
            (None, Some(_)) => Err(AppError::invalid(
                "registry_user",
                "a registry password needs the user it logs in",
            )),
        }
    }

    /// The container settings a browser may set (mounts are the host's:
    /// `switchyard env edit` or a file), over `current`.
    pub fn docker(
        current: model::DockerConfig,
        port: &str,
        memory_mb: &str,
        cpus: &str,
        restart: &str,
        network: &str,
    ) -> Result<model::DockerConfig, AppError> {
        let cpus = match cpus.trim() {
            "" => None,
            raw => Some(crate::fields::number("cpus", raw)?),
        };
        Ok(model::DockerConfig {
            port: whole_number("port", port)?,
            memory_mb: crate::fields::optional_whole_number("memory_mb", Some(memory_mb))?,
            cpus,
            restart: restart.trim().to_string(),
            network: optional(network),
            ..current
        })
    }

    /// Hours from the form, seconds in the config; an unchanged field keeps
    /// a value that is not whole hours.
    /// The expected health status: blank for any 2xx.
    pub fn health_status(raw: Option<&str>) -> Result<Option<u16>, AppError> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                AppError::invalid(
                    "health_status",
                    format!("{s:?} is not an HTTP status such as 200; leave it empty for any 2xx"),
                )
            }),
        }
    }

    pub fn ttl_secs(raw: &str, current: u64) -> Result<u64, AppError> {
        let hours: u64 = whole_number("signoff_ttl_hours", raw)?;
        Ok(if hours == current / 3600 {
            current
        } else {
            hours.saturating_mul(3600)
        })
    }
}

/// The docker runtime only: a process environment runs a command on the
/// console's host (see the module's documentation).
#[cfg(feature = "ssr")]
fn browser_runtime(raw: &str) -> Result<RuntimeKind, AppError> {
    match crate::fields::choice::<RuntimeKind>("runtime", raw)? {
        RuntimeKind::Docker => Ok(RuntimeKind::Docker),
        RuntimeKind::Process => Err(AppError::invalid(
            "runtime",
            "a process environment runs a command on the console's host: create it with \
             `switchyard env create` or `switchyard apply`",
        )),
    }
}

#[server(endpoint = "create_environment")]
#[allow(clippy::too_many_arguments)]
pub async fn create_environment(
    name: String,
    runtime: String,
    artifact: String,
    app_url: String,
    preview_listen: String,
    health_path: String,
    admin_url: String,
    upstream: String,
    signoff_ttl_hours: String,
    checklist: String,
    port: String,
    memory_mb: String,
    cpus: String,
    restart: String,
    network: String,
    volumes: Option<String>,
    registry_user: Option<String>,
    registry_password: Option<String>,
    health_status: Option<String>,
    health_body: Option<String>,
    hosts: Option<String>,
    path_prefix: Option<String>,
    redirect_https: Option<String>,
) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, None).await?;
            let st = state()?;
            let checklist = match checklist.trim() {
                "default" => model::ChecklistSource::Default,
                "empty" => model::ChecklistSource::Empty,
                other => match other.strip_prefix("copy:") {
                    Some(from) => model::ChecklistSource::CopyFrom(from.to_string()),
                    None => {
                        return Err(AppError::invalid(
                            "checklist",
                            "choose the default checklist, none, or an environment's to copy",
                        ))
                    }
                },
            };
            let login = ssr::registry_login(registry_user, registry_password)?;
            let mut config = EnvironmentConfig {
                name: name.trim().to_string(),
                runtime: browser_runtime(&runtime)?,
                artifact: artifact.trim().to_string(),
                app_url: app_url.trim().to_string(),
                preview_listen: ssr::optional(&preview_listen),
                hosts: ssr::hosts(hosts.as_deref().unwrap_or_default()),
                path_prefix: path_prefix.as_deref().and_then(ssr::optional),
                redirect_https: redirect_https.is_some(),
                health_path: health_path.trim().to_string(),
                health_status: ssr::health_status(health_status.as_deref())?,
                health_body: health_body.as_deref().and_then(ssr::optional),
                stop_grace_ms: 10_000,
                upstream: ssr::optional(&upstream),
                backup_command: None,
                signoff_ttl_secs: ssr::ttl_secs(&signoff_ttl_hours, 0)?,
                secrets: Vec::new(),
                variables: Default::default(),
                router: model::RouterConfig {
                    kind: model::RouterKind::Builtin,
                    admin_url: ssr::loopback_admin_url(&admin_url)?,
                    token_file: st.proxy.token_file.clone(),
                    nginx: None,
                },
                pipeline: Default::default(),
                docker: ssr::docker(
                    Default::default(),
                    &port,
                    &memory_mb,
                    &cpus,
                    &restart,
                    &network,
                )?,
            };
            config.docker.volumes = ssr::mounts(volumes.as_deref().unwrap_or_default(), &[])?;
            // The password is stored as a secret with the environment, in
            // the same transaction; the login names it.
            let mut secret_values = Vec::new();
            if let Some((user, password)) = login {
                config.docker.registry_user = Some(user);
                config.docker.registry_password_secret = Some(ssr::REGISTRY_SECRET.to_string());
                config.secrets = vec![ssr::REGISTRY_SECRET.to_string()];
                secret_values.push((ssr::REGISTRY_SECRET.to_string(), password));
            }
            let created = st
                .engine
                .create_environment_with_secrets(&actor, &config, &checklist, &secret_values)
                .await
                .map_err(|e| match e {
                    // The password's own checks (length, NUL), by the form's name.
                    engine::Error::InvalidInput {
                        field: "secret",
                        message,
                    } => AppError::invalid("registry_password", message),
                    e => e.into(),
                })?;
            Ok(format!(
                "Environment {} created. Deploy its first version from the dashboard.",
                created.name
            ))
        }
        .await,
    )
}

#[server(endpoint = "edit_environment")]
#[allow(clippy::too_many_arguments)]
pub async fn edit_environment(
    environment: String,
    artifact: String,
    app_url: String,
    preview_listen: String,
    health_path: String,
    stop_grace_ms: String,
    admin_url: String,
    upstream: String,
    signoff_ttl_hours: String,
    port: String,
    memory_mb: String,
    cpus: String,
    restart: String,
    network: String,
    registry_user: Option<String>,
    registry_password_secret: Option<String>,
    volumes: Option<String>,
    health_status: Option<String>,
    health_body: Option<String>,
    hosts: Option<String>,
    path_prefix: Option<String>,
    redirect_https: Option<String>,
) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            let st = state()?;
            let mut config = st.engine.environment_config(&actor, &environment).await?;
            let artifact = artifact.trim();
            if config.runtime == RuntimeKind::Process && artifact != config.artifact {
                return Err(AppError::invalid(
                    "artifact",
                    "a process environment's command line runs on the console's host: change it \
                     with `switchyard env edit` or an applied file",
                ));
            }
            config.artifact = artifact.to_string();
            config.app_url = app_url.trim().to_string();
            config.preview_listen = ssr::optional(&preview_listen);
            config.health_path = health_path.trim().to_string();
            // Absent from an older form: left as it is.
            if health_status.is_some() {
                config.health_status = ssr::health_status(health_status.as_deref())?;
            }
            if let Some(body) = health_body {
                config.health_body = ssr::optional(&body);
            }
            // The route's fields come together; a form without them (older,
            // or an nginx environment's) leaves them as they are.
            if let Some(hosts) = hosts {
                config.hosts = ssr::hosts(&hosts);
                config.path_prefix = path_prefix.as_deref().and_then(ssr::optional);
                config.redirect_https = redirect_https.is_some();
            }
            config.stop_grace_ms = crate::fields::whole_number("stop_grace_ms", &stop_grace_ms)?;
            config.upstream = ssr::optional(&upstream);
            config.signoff_ttl_secs = ssr::ttl_secs(&signoff_ttl_hours, config.signoff_ttl_secs)?;
            if let Some(raw) = volumes {
                config.docker.volumes = ssr::mounts(&raw, &config.docker.volumes)?;
            }
            config.docker =
                ssr::docker(config.docker, &port, &memory_mb, &cpus, &restart, &network)?;
            // The pull's login: a user and the name of one of the
            // environment's secrets (its value is set on the settings page).
            if let Some(user) = registry_user {
                config.docker.registry_user = ssr::optional(&user);
            }
            if let Some(secret) = registry_password_secret {
                config.docker.registry_password_secret = ssr::optional(&secret);
            }
            if config.router.kind == model::RouterKind::Builtin {
                let admin_url = admin_url.trim().trim_end_matches('/');
                if admin_url != config.router.admin_url.trim_end_matches('/') {
                    config.router.admin_url = ssr::loopback_admin_url(admin_url)?;
                    config.router.token_file = st.proxy.token_file.clone();
                }
            }
            let changes = st.engine.edit_environment(&actor, &config).await?;
            Ok(if changes.is_empty() {
                "Nothing changed.".to_string()
            } else {
                let fields: Vec<String> = changes.into_iter().map(|c| c.field).collect();
                format!(
                    "Saved ({}). The next deploy uses the new settings.",
                    fields.join(", ")
                )
            })
        }
        .await,
    )
}

#[server(endpoint = "archive_environment")]
pub async fn archive_environment(
    environment: String,
    confirm: Option<String>,
) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            state()?
                .engine
                .archive_environment(&actor, &environment, confirm.is_some())
                .await?;
            Ok(format!(
                "{environment} archived: its slots are stopped; its history and audit entries stay."
            ))
        }
        .await,
    )
}

/// A text answer's line under its form.
fn answer(r: Result<String, AppError>) -> AnyView {
    action_result(r, ResultIds::PAGE)
}

#[component]
pub fn EnvironmentsListPage() -> impl IntoView {
    let create = crate::flash::action::<CreateEnvironment>();
    let edit = crate::flash::action::<EditEnvironment>();
    let archive = crate::flash::action::<ArchiveEnvironment>();
    let params = use_params_map();
    let selected = move || params.read().get("name");
    let page = Resource::new(|| (), |_| load_environments());
    page_shell(page, None, move |p| {
        let chosen = selected();
        let names: Vec<String> = p
            .environments
            .iter()
            .map(|e| e.config.name.clone())
            .collect();
        let rows = p
            .environments
            .iter()
            .map(|e| environment_row(&e.config, e.serving))
            .collect_view();
        let editing = chosen.and_then(|name| {
            p.environments
                .iter()
                .find(|e| e.config.name == name)
                .cloned()
        });
        let archived = p.archived.clone();
        let contents = view! {
            <h1>"Environments"</h1>
            <section data-testid="environments">
                <table class="environments">
                    <thead><tr><th>"Name"</th><th>"Runtime"</th><th>"Artifact"</th><th>"Users reach"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
            {move || create.value().get().map(answer)}
            {move || edit.value().get().map(answer)}
            {move || archive.value().get().map(answer)}
            {editing.map(|e| view! { <EditForm live=e edit archive/> }.into_any())}
            <CreateForm create names proxy_admin_url=p.proxy_admin_url.clone()/>
            {(!archived.is_empty()).then(|| archived_list(archived))}
        };
        (p.me, contents)
    })
}

fn environment_row(c: &EnvironmentConfig, serving: bool) -> AnyView {
    let name = c.name.clone();
    view! {
        <tr data-environment=c.name.clone()>
            <td><a href=format!("/environments/{name}")>{c.name.clone()}</a></td>
            <td>{c.runtime.to_string()}</td>
            <td><code>{c.artifact.clone()}</code></td>
            <td>{c.app_url.clone()} {serving.then(|| view! { <span class="badge">"serving"</span> })}</td>
            <td>
                <a href=format!("/environments/{name}/settings")>"Pipeline, variables"</a>
                " · "
                <a href=format!("/environments/{name}/checklist")>"Checklist"</a>
                " · "
                <a href=format!("/environments/{name}/webhooks")>"Webhooks"</a>
            </td>
        </tr>
    }
    .into_any()
}

fn archived_list(archived: Vec<ArchivedEnvironment>) -> AnyView {
    let items = archived
        .into_iter()
        .map(|a| {
            let shown = a.name.clone();
            view! {
                <li data-archived=a.name>
                    <strong>{shown}</strong>
                    {format!(" archived {} by {}", short_time(&a.archived_at), a.archived_by)}
                </li>
            }
        })
        .collect_view();
    view! {
        <section data-testid="archived-environments">
            <h2>"Archived"</h2>
            <p class="notice">"Their deployments and audit entries stay; their names stay taken."</p>
            <ul>{items}</ul>
        </section>
    }
    .into_any()
}

/// One labelled text field.
fn text(label: &'static str, name: &'static str, value: String, hint: &'static str) -> AnyView {
    view! {
        <label class="setting">
            <span>{label}</span>
            <input type="text" name=name value=value autocomplete="off" data-field=name/>
            <small>{hint}</small>
        </label>
    }
    .into_any()
}

#[component]
fn CreateForm(
    create: ServerAction<CreateEnvironment>,
    names: Vec<String>,
    proxy_admin_url: String,
) -> impl IntoView {
    let copies = names
        .into_iter()
        .map(|n| {
            let value = format!("copy:{n}");
            view! { <option value=value>{format!("a copy of {n}'s")}</option> }
        })
        .collect_view();
    view! {
        <section data-testid="create-environment">
            <h2>"New environment"</h2>
            <ActionForm action=create attr:class="settings">
                {text("Name", "name", String::new(), "a-z, 0-9 and '-'; never changes")}
                <label class="setting">
                    <span>"Runtime"</span>
                    <select name="runtime" data-field="runtime">
                        <option value="docker">"docker"</option>
                    </select>
                    <small>"process environments run a command on this host: `switchyard env create`"</small>
                </label>
                {text("Image", "artifact", String::new(), "with {version}, e.g. 127.0.0.1:5000/shop:{version}")}
                {text("Users reach", "app_url", String::new(), "e.g. http://127.0.0.1:8300/")}
                {text("Preview address", "preview_listen", String::new(), "host:port where gates reach the idle slot; empty: the slot directly")}
                {text("Health path", "health_path", "/health".into(), "")}
                {text("Health status", "health_status", String::new(), "the status it must answer; empty: any 2xx")}
                {text("Health text", "health_body", String::new(), "text its answer must contain; empty: none")}
                {text("switchyard-proxy admin", "admin_url", proxy_admin_url, "on this host")}
                <RouteFields hosts=String::new() path_prefix=String::new() redirect_https=false/>
                {text("Upstream environment", "upstream", String::new(), "a release must succeed there first; empty: none")}
                {text("Sign-offs valid (hours)", "signoff_ttl_hours", "24".into(), "")}
                <DockerFields d=model::DockerConfig::default()/>
                <fieldset data-testid="new-registry-login">
                    <legend>"Registry login (pulls)"</legend>
                    {text("User", "registry_user", String::new(), "empty: pull without a login")}
                    <label class="setting">
                        <span>"Password"</span>
                        <input type="password" name="registry_password" autocomplete="new-password" data-field="registry_password"/>
                        <small>"kept encrypted as the secret REGISTRY_PASSWORD, never shown again"</small>
                    </label>
                </fieldset>
                <label class="setting">
                    <span>"Checklist"</span>
                    <select name="checklist" data-field="checklist">
                        <option value="default">"the default checklist"</option>
                        <option value="empty">"none (deploys need no release)"</option>
                        {copies}
                    </select>
                </label>
                <button type="submit" data-testid="create-environment-submit" disabled=move || create.pending().get()>"Create environment"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

#[component]
fn EditForm(
    live: LiveEnvironment,
    edit: ServerAction<EditEnvironment>,
    archive: ServerAction<ArchiveEnvironment>,
) -> impl IntoView {
    let c = live.config;
    let process = c.runtime == RuntimeKind::Process;
    let builtin = c.router.kind == model::RouterKind::Builtin;
    let (name, name_b) = (c.name.clone(), c.name.clone());
    let artifact = c.artifact.clone();
    view! {
        <section data-testid="edit-environment" data-editing=c.name.clone()>
            <h2>{format!("Edit {}", c.name)}</h2>
            <ActionForm action=edit attr:class="settings">
                <input type="hidden" name="environment" value=name/>
                <label class="setting">
                    <span>{if process { "Command" } else { "Image" }}</span>
                    <input type="text" name="artifact" value=artifact readonly=process data-field="artifact"/>
                    <small>{if process { "runs on this host: `switchyard env edit`" } else { "with {version}" }}</small>
                </label>
                {text("Users reach", "app_url", c.app_url.clone(), "")}
                {text("Preview address", "preview_listen", c.preview_listen.clone().unwrap_or_default(), "empty: gates call the slot directly")}
                {text("Health path", "health_path", c.health_path.clone(), "")}
                {text("Health status", "health_status", c.health_status.map(|s| s.to_string()).unwrap_or_default(), "the status it must answer; empty: any 2xx")}
                {text("Health text", "health_body", c.health_body.clone().unwrap_or_default(), "text its answer must contain; empty: none")}
                {text("Stop grace (ms)", "stop_grace_ms", c.stop_grace_ms.to_string(), "between SIGTERM and SIGKILL")}
                <label class="setting">
                    <span>"switchyard-proxy admin"</span>
                    <input type="text" name="admin_url" value=c.router.admin_url.clone() readonly=!builtin data-field="admin_url"/>
                    <small>{if builtin { "on this host" } else { "nginx router: `switchyard env edit`" }}</small>
                </label>
                {builtin.then(|| view! {
                    <RouteFields
                        hosts=c.hosts.join(", ")
                        path_prefix=c.path_prefix.clone().unwrap_or_default()
                        redirect_https=c.redirect_https
                    />
                })}
                {text("Upstream environment", "upstream", c.upstream.clone().unwrap_or_default(), "empty: none")}
                {text("Sign-offs valid (hours)", "signoff_ttl_hours", (c.signoff_ttl_secs / 3600).to_string(), "")}
                <DockerFields d=c.docker.clone()/>
                <fieldset data-testid="registry-login">
                    <legend>"Registry login (pulls)"</legend>
                    {text("User", "registry_user", c.docker.registry_user.clone().unwrap_or_default(), "empty: pull without a login")}
                    {text("Password secret", "registry_password_secret", c.docker.registry_password_secret.clone().unwrap_or_default(), "the name of one of this environment's secrets (settings page)")}
                </fieldset>
                <p class="notice">
                    {format!(
                        "Backup command: {}. Set with `switchyard env edit` or an applied file.",
                        if c.backup_command.is_some() { "set" } else { "none" }
                    )}
                </p>
                <button type="submit" data-testid="edit-environment-submit" disabled=move || edit.pending().get()>"Save"</button>
            </ActionForm>
            <ActionForm action=archive attr:class="archive" attr:data-testid="archive-environment">
                <input type="hidden" name="environment" value=name_b/>
                {live.serving.then(|| view! {
                    <label>
                        <input type="checkbox" name="confirm" data-field="confirm"/>
                        " Users are served by this environment: stop both slots"
                    </label>
                })}
                <button type="submit" class="danger" disabled=move || archive.pending().get()>"Archive"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// The host names an environment is served under on a shared
/// switchyard-proxy (its named route), with the route's prefix and redirect.
#[component]
fn RouteFields(hosts: String, path_prefix: String, redirect_https: bool) -> impl IntoView {
    view! {
        <fieldset data-testid="route-settings">
            <legend>"Host names (shared proxy)"</legend>
            {text("Host names", "hosts", hosts, "e.g. shop.example.com, *.shop.example.com; empty: this environment has the proxy to itself")}
            {text("Path prefix", "path_prefix", path_prefix, "e.g. /api: only those paths; empty: every path")}
            <label class="setting">
                <span>"Redirect to HTTPS"</span>
                <input type="checkbox" name="redirect_https" checked=redirect_https data-field="redirect_https"/>
                <small>"plain HTTP answers 308 to https:// (the proxy needs --tls-listen and --tls-dir)"</small>
            </label>
        </fieldset>
    }
    .into_any()
}

/// A Docker environment's container settings.
#[component]
fn DockerFields(d: model::DockerConfig) -> impl IntoView {
    let restart = d.restart.clone();
    let options = ["no", "on-failure", "unless-stopped", "always"]
        .into_iter()
        .chain(
            (!["no", "on-failure", "unless-stopped", "always"].contains(&restart.as_str()))
                .then_some(restart.as_str()),
        )
        .map(|o| {
            let selected = o == restart;
            let o = o.to_string();
            view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
        })
        .collect_view();
    let mounts = d.volumes.join("\n");
    view! {
        <fieldset data-testid="docker-settings">
            <legend>"Docker containers"</legend>
            {text("Container port", "port", d.port.to_string(), "the service listens there inside the container (told as PORT)")}
            {text("Memory limit (MB)", "memory_mb", d.memory_mb.map(|m| m.to_string()).unwrap_or_default(), "empty: no limit")}
            {text("CPU limit", "cpus", d.cpus.map(|c| c.to_string()).unwrap_or_default(), "CPUs, e.g. 0.5; empty: no limit")}
            <label class="setting">
                <span>"Restart policy"</span>
                <select name="restart" data-field="restart">{options}</select>
                <small>"no: Switchyard decides what a dead slot means"</small>
            </label>
            {text("Network", "network", d.network.clone().unwrap_or_default(), "empty: Docker's default bridge")}
            <label class="setting">
                <span>"Mounts"</span>
                <TextArea name="volumes" rows=3 value=mounts attr:data-field="volumes"/>
                <small>"one per line, volume:/path[:ro], e.g. shop-data:/var/lib/shop; host directories: `switchyard env edit`"</small>
            </label>
        </fieldset>
    }
    .into_any()
}
