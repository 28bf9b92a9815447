//! The dashboard: each environment's slots, the deploy and rollback forms, and
//! the deployment history. Status and history refresh every two seconds; the
//! forms sit outside the refreshing parts so typing is never interrupted.

use crate::components::{action_result, page_shell, Outcome, ResultIds};
use crate::error::AppError;
use crate::format::{countdown, duration_text, short_time};
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::{
    DeployPlan, DeploymentStatus, DeploymentView, EnvironmentView, Role, SessionUser, SlotView,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, signed_in, state};

#[cfg(feature = "ssr")]
const HISTORY_ROWS: i64 = 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub user: SessionUser,
    pub environments: Vec<String>,
}

#[server(endpoint = "load_overview")]
pub async fn load_overview() -> Result<Overview, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, user) = signed_in().await?;
            let environments = engine.environment_names(&actor).await?;
            Ok(Overview { user, environments })
        }
        .await,
    )
}

#[server(endpoint = "environment_status")]
pub async fn environment_status(name: String) -> Result<EnvironmentView, AppError> {
    crate::error::respond(
        async move { Ok(state()?.engine.environment(&actor().await?, &name).await?) }.await,
    )
}

#[server(endpoint = "deployment_history")]
pub async fn deployment_history(name: String) -> Result<Vec<DeploymentView>, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .history(&actor().await?, &name, HISTORY_ROWS)
                .await?)
        }
        .await,
    )
}

/// Deploys and answers when the deploy ends — or when it is held at
/// preview (its environment's setting), so the browser is not kept waiting
/// for a deployer's decision: the answer is then the running deployment,
/// and its page has Promote and Abort.
#[server(endpoint = "deploy")]
pub async fn deploy(environment: String, version: String) -> Result<DeploymentView, AppError> {
    crate::error::respond(
        async move {
            let actor = actor().await?;
            let prepared = state()?
                .engine
                .prepare_deploy(&actor, &environment, &version, &Default::default())
                .await?;
            crate::hold::run_until_held(&actor, prepared).await
        }
        .await,
    )
}

/// A dry run of `deploy`: the plan and its blockers; nothing changes.
#[server(endpoint = "plan_deploy")]
pub async fn plan_deploy(environment: String, version: String) -> Result<DeployPlan, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .plan_deploy(&actor().await?, &environment, &version)
                .await?)
        }
        .await,
    )
}

fn outcome_text(d: &DeploymentView) -> String {
    let msg = d.message.clone().unwrap_or_default();
    match d.status {
        DeploymentStatus::Succeeded => format!("{} #{} succeeded: {msg}", d.kind, d.id),
        DeploymentStatus::Failed => format!("{} #{} failed: {msg}", d.kind, d.id),
        DeploymentStatus::Running => format!(
            "{} #{} is held at preview: promote or abort it below or on its page",
            d.kind, d.id
        ),
    }
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| load_overview());
    page_shell(overview, None, |o| {
        let role = o.user.role;
        // One refresh for the whole page: a fetch brings every panel's
        // regions at once (a refresh per panel would fetch the page once per
        // environment).
        let regions: Vec<String> = o
            .environments
            .iter()
            .flat_map(|n| live_regions(n))
            .collect();
        let panels = o
            .environments
            .into_iter()
            .map(|name| view! { <EnvironmentPanel name role/> })
            .collect_view();
        // One <h1> per page; each environment's name is an <h2> under it.
        // Hidden on screen, where the top bar already says where this is.
        let contents = view! {
            <h1 class="visually-hidden">"Dashboard"</h1>
            <crate::live::LiveRefresh regions every_ms=2000/>
            {panels}
        };
        (o.user, contents)
    })
}

/// The ids of an environment panel's live regions: its slots, its hold and
/// traffic, its history (the forms between them are an island).
fn live_regions(name: &str) -> [String; 3] {
    [
        format!("live-{name}-status"),
        format!("live-{name}-rest"),
        format!("live-{name}-history"),
    ]
}

#[component]
fn EnvironmentPanel(name: String, role: Role) -> impl IntoView {
    // Server HTML: the live parts are kept current by the page's
    // `LiveRefresh` (the page's HTML fetched again and the regions swapped),
    // so the WASM carries none of their views; only the forms are an island.
    let env_name = name.clone();
    let status = Resource::new(|| (), move |_| environment_status(env_name.clone()));
    let env_name = name.clone();
    let history = Resource::new(|| (), move |_| deployment_history(env_name.clone()));
    let can_operate = matches!(role, Role::Deployer | Role::Admin);
    let env_name = name.clone();
    let first_plan = Resource::new(
        || (),
        move |_| crate::rollback::plan_rollback(env_name.clone()),
    );
    let [top, rest, bottom] = live_regions(&name);
    view! {
        <section class="environment" data-environment=name.clone()>
            <h2>{name.clone()}</h2>
            <p class="env-links">
                <a href="/releases" data-testid="releases-link">"Releases"</a>
                " · "
                <a href=format!("/environments/{name}/checklist") data-testid="checklist-link">"Checklist"</a>
                " · "
                <a href=format!("/environments/{name}/settings") data-testid="settings-link">"Pipeline settings"</a>
            </p>
            <div id=top class="region">
            <Transition fallback=|| view! { <p class="notice">"Loading slots…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(env) => view! { <EnvironmentStatus env/> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            </div>
            <div id=rest class="region">
            <crate::hold::HeldOnDashboard name=name.clone() may_decide=can_operate/>
            <h3 class="traffic-heading">"Traffic through the router"</h3>
            <crate::traffic::TrafficPanel name=name.clone()/>
            </div>
            // Outside the refreshed regions: an island with its own refresh,
            // whose choice of slot a swap would otherwise reset.
            {can_operate.then(|| view! { <crate::slot_output::SlotOutputPanel name=name.clone()/> })}
            {if can_operate {
                let name = name.clone();
                view! {
                    <Suspense fallback=|| view! { <p class="notice">"Loading the rollback plan…"</p> }>
                        {move || {
                            let name = name.clone();
                            Suspend::new(async move {
                                let plan = first_plan.await.ok();
                                view! { <OperateForms name plan/> }
                            })
                        }}
                    </Suspense>
                }.into_any()
            } else {
                view! { <p class="notice">"Your role can view this environment but not change it."</p> }.into_any()
            }}
            <div id=bottom class="region">
            <h3 class="history-heading">"History"</h3>
            <Transition fallback=|| view! { <p class="notice">"Loading history…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(rows) => view! { <History rows/> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            </div>
        </section>
    }
}

/// A deploy's or rollback's answer: it ran (and how that went) or it was refused.
fn run_result(r: Option<Result<DeploymentView, AppError>>) -> Option<AnyView> {
    let outcome = match r? {
        Ok(d) if d.status == DeploymentStatus::Succeeded => Outcome::Done(outcome_text(&d)),
        Ok(d) if d.status == DeploymentStatus::Running => Outcome::Said(outcome_text(&d)),
        Ok(d) => Outcome::Failed(outcome_text(&d)),
        Err(e) => e.into(),
    };
    Some(action_result(outcome, ResultIds::RUN))
}

/// A deploy held at preview: where to promote or abort it.
fn held_link(r: Option<Result<DeploymentView, AppError>>) -> Option<AnyView> {
    match r? {
        Ok(d) if d.status == DeploymentStatus::Running => Some(
            view! {
                <p><a href=format!("/deployments/{}", d.id) data-testid="held-link">{format!("Open deployment #{} to promote or abort it", d.id)}</a></p>
            }
            .into_any(),
        ),
        _ => None,
    }
}

/// Where to go when a direct deploy is refused for want of approvals: the
/// environment deploys signed releases, listed (and requested) on Releases.
fn release_next_step(r: Option<Result<DeploymentView, AppError>>) -> Option<AnyView> {
    match r? {
        // The engine's two refusals for approvals (`Error::NotApproved`),
        // which reach the browser as a conflict with their message.
        Err(AppError::Conflict(why))
            if why.contains("requires an approved release") || why.contains("is not approved") =>
        {
            Some(
            view! {
                <p class="next-step" data-testid="deploy-next-step">
                    "This environment deploys approved releases: "
                    <a href="/releases">"deploy an approved release or request one on Releases"</a>
                </p>
            }
            .into_any(),
            )
        }
        _ => None,
    }
}

/// A dry run's answer: the steps a deploy would take and what blocks it.
fn plan_view(r: Result<DeployPlan, AppError>) -> impl IntoView {
    match r {
        Ok(p) => {
            let verdict = if p.ready {
                format!("Deploying {} to {} would start now:", p.version, p.environment)
            } else {
                format!("Deploying {} to {} is blocked:", p.version, p.environment)
            };
            view! {
                <div class="plan-result" data-testid="plan" data-ready=p.ready.to_string()>
                    <p><strong>{verdict}</strong> " nothing was changed."</p>
                    <ul class="blockers" data-testid="plan-blockers">
                        {p.blockers.into_iter().map(|b| view! { <li class="error">{b}</li> }).collect_view()}
                    </ul>
                    <ol class="plan-steps">
                        {p.steps.into_iter().map(|s| {
                            let name = s.name.clone();
                            view! {
                                <li data-step=name data-testid="plan-step">
                                    <strong>{s.name}</strong> " — " {s.detail}
                                </li>
                            }
                        }).collect_view()}
                    </ol>
                </div>
            }
            .into_any()
        }
        Err(e) => view! { <p class="result error" role="status" data-testid="plan-error">{e.to_string()}</p> }.into_any(),
    }
}

/// Deploy and rollback, shown only to roles that may use them (the server
/// refuses everyone else anyway): the dashboard's one island.
#[island]
fn OperateForms(name: String, plan: Option<crate::rollback::RollbackPlan>) -> impl IntoView {
    let deploy = crate::flash::action_in::<Deploy>(&name);
    let rollback = crate::flash::action_in::<crate::rollback::Rollback>(&name);
    let live_plan = RwSignal::new(plan);
    let env_name = name.clone();
    Effect::new(move |first: Option<()>| {
        let _ = (deploy.version().get(), rollback.version().get());
        if first.is_some() {
            let name = env_name.clone();
            leptos::task::spawn_local(async move {
                if let Ok(plan) = crate::rollback::plan_rollback(name).await {
                    live_plan.set(Some(plan));
                }
            });
        }
    });
    let rollback_plan = Signal::derive(move || live_plan.get());
    let deploy_env = name.clone();
    let plan_env = name.clone();
    let plan = crate::flash::action_in::<PlanDeploy>(&name);
    view! {
        <div class="actions">
            <ActionForm action=deploy attr:class="deploy">
                <input type="hidden" name="environment" value=deploy_env/>
                <label>"Version" <input type="text" name="version" placeholder="e.g. v2" data-testid="deploy-version"/></label>
                <button type="submit" disabled=move || deploy.pending().get()>
                    {move || if deploy.pending().get() { "Deploying…" } else { "Deploy" }}
                </button>
            </ActionForm>
            <crate::rollback::RollbackForm name rollback plan=rollback_plan/>
        </div>
        <ActionForm action=plan attr:class="plan">
            <input type="hidden" name="environment" value=plan_env/>
            <label>"Version" <input type="text" name="version" placeholder="e.g. v2" data-testid="plan-version"/></label>
            <button type="submit" disabled=move || plan.pending().get()>"Plan (dry run)"</button>
        </ActionForm>
        {move || run_result(deploy.value().get())}
        {move || held_link(deploy.value().get())}
        {move || release_next_step(deploy.value().get())}
        {move || run_result(rollback.value().get())}
        {move || plan.value().get().map(plan_view)}
    }
}

#[component]
fn EnvironmentStatus(env: EnvironmentView) -> impl IntoView {
    // What users get, in one line: on a phone the slot cards stack and the
    // active one may be the second (style/main.css shows this line there).
    let live = env
        .active
        .and_then(|color| env.slots.iter().find(|s| s.color == color))
        .map(|s| {
            let version = s.version.clone().unwrap_or_else(|| "no version".into());
            format!("{version} ({})", s.color)
        });
    view! {
        <p class="live" data-testid="live-version">
            {match live {
                Some(l) => view! { "Users get " <strong>{l}</strong> }.into_any(),
                None => "Nothing is live yet".into_any(),
            }}
        </p>
        <p class="app-url">
            "Users reach " <a href=crate::links::web_link(&env.app_url) data-testid="app-url">{env.app_url.clone()}</a>
        </p>
        {env.preview_url.map(|url| view! {
            <p class="preview-url">
                "Deploys' gates reach the idle slot at "
                <a href=url.clone() data-testid="preview-url">{url.clone()}</a>
                " (the preview address; no users there)"
            </p>
        })}
        {env.frozen.map(|f| view! {
            <p class="banner frozen" data-testid="frozen">{f} " · rollbacks still go through."</p>
        })}
        {env.in_progress.map(|m| {
            let lock = format!("/environments/{}/lock", env.name);
            let follow = env.lock.as_ref().map(|l| {
                let id = l.deployment_id;
                view! { " · " <a href=format!("/deployments/{id}") data-testid="in-progress-link">{format!("deployment #{id}")}</a> }
            });
            let beat = env
                .lock
                .as_ref()
                .map(|l| format!(" — heartbeat {} s ago", l.heartbeat_age_secs))
                .unwrap_or_default();
            view! {
                <p class="banner" data-testid="in-progress">
                    {m} {beat} {follow} " · " <a href=lock data-testid="lock-link">"lock details"</a>
                </p>
            }
        })}
        <div class="slots">
            {env.slots.into_iter().map(|s| view! { <SlotCard view=s/> }).collect_view()}
        </div>
    }
}

#[component]
fn SlotCard(view: SlotView) -> impl IntoView {
    let slot = view;
    let marker = if slot.active {
        "active"
    } else if slot.address.is_some() {
        "standby"
    } else {
        "idle"
    };
    let health = match (slot.last_health_ok, &slot.last_health_message) {
        (Some(true), Some(m)) => format!("healthy ({m})"),
        (Some(false), Some(m)) => format!("failing ({m})"),
        _ => "not probed yet".to_string(),
    };
    // The standby's window, refreshed with the card every 2 s.
    let window = match (
        slot.active,
        slot.address.is_some(),
        slot.standby_until.as_deref(),
    ) {
        (false, true, Some(until)) => Some(format!(
            "warm until {}{}",
            short_time(until),
            slot.standby_left_secs
                .map(|s| format!(" ({} left)", countdown(s)))
                .unwrap_or_default()
        )),
        (false, true, None) => Some("warm until the next deploy".to_string()),
        (false, false, Some(_)) => {
            Some("not running; a rollback starts it again first".to_string())
        }
        _ => None,
    };
    let checked = slot
        .last_health_at
        .as_deref()
        .map(short_time)
        .unwrap_or_default();
    view! {
        <div class=format!("slot {} {}", slot.color, marker) data-slot=slot.color.to_string()>
            <div class="slot-head">
                <span class="color">{slot.color.to_string()}</span>
                <span class="marker" data-testid="slot-marker">{marker}</span>
            </div>
            <dl>
                <dt>"Version"</dt>
                <dd data-testid="slot-version">{slot.version.unwrap_or_else(|| "—".into())}</dd>
                <dt>"State"</dt>
                <dd data-testid="slot-state">{slot.state.to_string()}</dd>
                <dt>"Health"</dt>
                <dd title=checked>{health}</dd>
                <dt>"Address"</dt>
                <dd>{slot.address.unwrap_or_else(|| "—".into())}</dd>
                {window.map(|w| view! { <dt>"Standby"</dt><dd data-testid="slot-standby">{w}</dd> })}
            </dl>
        </div>
    }
}

#[component]
fn History(rows: Vec<DeploymentView>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="notice">"No deployments yet."</p> }.into_any();
    }
    view! {
        <table class="history" data-testid="history">
            <thead>
                <tr>
                    <th>"#"</th><th>"Kind"</th><th>"Status"</th><th>"From → to"</th>
                    <th>"Who"</th><th>"When"</th><th>"Duration"</th><th>"Details"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|d| {
                        let versions = format!(
                            "{} → {}",
                            d.from_version.clone().unwrap_or_else(|| "—".into()),
                            d.to_version.clone().unwrap_or_else(|| "—".into()),
                        );
                        let details = match (&d.reason, &d.message) {
                            (Some(r), Some(m)) => format!("{m} — reason: {r}"),
                            (Some(r), None) => format!("reason: {r}"),
                            (None, Some(m)) => m.clone(),
                            (None, None) => String::new(),
                        };
                        view! {
                            <tr class=format!("status-{}", d.status)>
                                <td>
                                    <a
                                        href=format!("/audit?environment={}&q=deployment%20{}", d.environment, d.id)
                                        title="audit entries of this deployment"
                                    >
                                        {d.id}
                                    </a>
                                </td>
                                <td>{d.kind.to_string()}</td>
                                <td>
                                    <a
                                        href=format!("/deployments/{}", d.id)
                                        title="steps of this deployment"
                                        data-testid="deployment-link"
                                    >
                                        {d.status.to_string()}
                                    </a>
                                </td>
                                <td>{versions}</td>
                                <td>{d.requested_by.clone()}</td>
                                <td>{short_time(&d.started_at)}</td>
                                <td>{duration_text(d.duration_ms)}</td>
                                <td>{details}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
