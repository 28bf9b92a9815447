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
//! on loopback (the console sends the proxy's token there).
// The browser's side of the forms' server functions takes one argument per
// field, as the server's does, but the macro does not carry its allow over.
#![cfg_attr(not(feature = "ssr"), allow(clippy::too_many_arguments))]

use crate::components::{action_result, page_shell, Loading, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
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
            let (actor, me) = signed_in().await?;
            let st = state()?;
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
            let config = EnvironmentConfig {
                name: name.trim().to_string(),
                runtime: browser_runtime(&runtime)?,
                artifact: artifact.trim().to_string(),
                app_url: app_url.trim().to_string(),
                preview_listen: ssr::optional(&preview_listen),
                health_path: health_path.trim().to_string(),
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
            let created = st
                .engine
                .create_environment(&actor, &config, &checklist)
                .await?;
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
            config.stop_grace_ms = crate::fields::whole_number("stop_grace_ms", &stop_grace_ms)?;
            config.upstream = ssr::optional(&upstream);
            config.signoff_ttl_secs = ssr::ttl_secs(&signoff_ttl_hours, config.signoff_ttl_secs)?;
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
    let create = ServerAction::<CreateEnvironment>::new();
    let edit = ServerAction::<EditEnvironment>::new();
    let archive = ServerAction::<ArchiveEnvironment>::new();
    let params = use_params_map();
    let selected = move || params.read().get("name");
    let page = Resource::new(
        move || {
            (
                create.version().get(),
                edit.version().get(),
                archive.version().get(),
            )
        },
        |_| load_environments(),
    );
    page_shell(page, Loading::Suspense, "Loading…", None, move |p| {
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
                {text("switchyard-proxy admin", "admin_url", proxy_admin_url, "on this host")}
                {text("Upstream environment", "upstream", String::new(), "a release must succeed there first; empty: none")}
                {text("Sign-offs valid (hours)", "signoff_ttl_hours", "24".into(), "")}
                <DockerFields d=model::DockerConfig::default()/>
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
                {text("Stop grace (ms)", "stop_grace_ms", c.stop_grace_ms.to_string(), "between SIGTERM and SIGKILL")}
                <label class="setting">
                    <span>"switchyard-proxy admin"</span>
                    <input type="text" name="admin_url" value=c.router.admin_url.clone() readonly=!builtin data-field="admin_url"/>
                    <small>{if builtin { "on this host" } else { "nginx router: `switchyard env edit`" }}</small>
                </label>
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

/// A Docker environment's container settings (mounts listed, set on the
/// host's side).
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
    let mounts = if d.volumes.is_empty() {
        "none".to_string()
    } else {
        d.volumes.join(", ")
    };
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
            <p class="notice">{format!("Mounts: {mounts}. Set with `switchyard env edit` or an applied file.")}</p>
        </fieldset>
    }
    .into_any()
}
