//! One deployment's page: who moved what where, and the timeline of its steps
//! (lock, preflight, start, health, switch, standby) with when each ran and,
//! for a failed one, why. While the deployment runs the page asks again every
//! second, so the timeline fills in as the worker goes.

use crate::dashboard::{duration_text, short_time};
use crate::error::AppError;
use crate::layout::{page_error, TopBar};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{DeploymentDetail, DeploymentStatus, DeploymentView, SessionUser, StepView};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, state};

/// How often a running deployment's page refreshes.
const REFRESH: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedDeployment {
    pub me: SessionUser,
    pub detail: DeploymentDetail,
}

#[server(endpoint = "load_deployment")]
pub async fn load_deployment(id: i64) -> Result<LoadedDeployment, AppError> {
    crate::error::respond(
        async move {
            let actor = actor().await?;
            let me = actor
                .as_user()
                .map(|u| u.to_session_user())
                .ok_or(AppError::Unauthenticated)?;
            let detail = state()?.engine.deployment(&actor, id).await?;
            Ok(LoadedDeployment { me, detail })
        }
        .await,
    )
}

/// Whether the page should keep asking: the deployment still runs, or the
/// last answer was lost on the way (a refusal or a missing one is final).
fn keeps_polling(r: &Result<LoadedDeployment, AppError>) -> bool {
    match r {
        Ok(p) => {
            p.detail.deployment.status == DeploymentStatus::Running
                || p.detail
                    .watch
                    .as_ref()
                    .is_some_and(|w| w.status == model::WatchStatus::Watching)
        }
        Err(AppError::Transport(_)) => true,
        Err(_) => false,
    }
}

#[component]
pub fn DeploymentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let (tick, set_tick) = signal(0u64);
    let live = RwSignal::new(true);
    let page = Resource::new(move || (id(), tick.get()), |(id, _)| load_deployment(id));
    // Effects run only in the browser: the server renders one snapshot, the
    // browser polls while the deployment runs and stops once it has ended.
    Effect::new(move |_| {
        if let Some(r) = page.get() {
            live.set(keeps_polling(&r));
        }
    });
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if live.get_untracked() {
                    set_tick.update(|t| *t += 1);
                }
            },
            REFRESH,
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! {
                        <TopBar user=p.me.clone()/>
                        <main class="deployment">
                            <DeploymentHeader deployment=p.detail.deployment.clone() elapsed_ms=p.detail.elapsed_ms/>
                            <h2>"Steps"</h2>
                            <Timeline steps=p.detail.steps.clone()/>
                            {p.detail.watch.clone().map(|w| view! { <Watch watch=w/> })}
                        </main>
                    }
                    .into_any(),
                    Err(e) => page_error(e),
                }
            })}
        </Transition>
    }
}

fn versions(d: &DeploymentView) -> String {
    let side = |v: &Option<String>, s: Option<model::SlotColor>| match (v, s) {
        (Some(v), Some(s)) => format!("{v} ({s})"),
        (Some(v), None) => v.clone(),
        (None, Some(s)) => format!("— ({s})"),
        (None, None) => "—".into(),
    };
    format!(
        "{} → {}",
        side(&d.from_version, d.from_slot),
        side(&d.to_version, d.to_slot)
    )
}

#[component]
fn DeploymentHeader(deployment: DeploymentView, elapsed_ms: i64) -> impl IntoView {
    let d = deployment;
    let running = d.status == DeploymentStatus::Running;
    let duration = if running {
        format!("{} so far", duration_text(Some(elapsed_ms)))
    } else {
        duration_text(d.duration_ms)
    };
    let audit = format!(
        "/audit?environment={}&q=deployment%20{}",
        d.environment, d.id
    );
    view! {
        <h1>{format!("Deployment #{} — {} in {}", d.id, d.kind, d.environment)}</h1>
        <p class="env-links">
            <a href="/">"Environments"</a>
            " · "
            <a href=audit data-testid="deployment-audit-link">"Audit entries"</a>
        </p>
        {running.then(|| view! {
            <p class="banner" data-testid="deployment-live">"Running — this page follows it live."</p>
        })}
        <dl class="release-facts deployment-facts">
            <dt>"Environment"</dt><dd data-testid="deployment-environment">{d.environment.clone()}</dd>
            <dt>"Status"</dt>
            <dd>
                <span class=format!("step-status {}", d.status) data-testid="deployment-status">{d.status.to_string()}</span>
            </dd>
            <dt>"From → to"</dt><dd data-testid="deployment-versions">{versions(&d)}</dd>
            <dt>"Who"</dt><dd data-testid="deployment-who">{d.requested_by.clone()}</dd>
            <dt>"Started"</dt><dd>{short_time(&d.started_at)}</dd>
            <dt>"Duration"</dt><dd data-testid="deployment-duration">{duration}</dd>
            {d.reason.clone().map(|r| view! { <dt>"Reason"</dt><dd>{r}</dd> })}
            {d.message.clone().map(|m| view! { <dt>"Result"</dt><dd data-testid="deployment-message">{m}</dd> })}
        </dl>
    }
}

/// The watch window after the switch: live figures while it runs, the
/// evidence and the automatic rollback after a breach.
#[component]
fn Watch(watch: model::WatchView) -> impl IntoView {
    let w = watch;
    let heading = match w.status {
        model::WatchStatus::Watching => {
            format!("Watching {} until {}", w.slot, short_time(&w.until))
        }
        model::WatchStatus::Passed => format!(
            "Watched {} until {}: no breach",
            w.slot,
            short_time(&w.until)
        ),
        model::WatchStatus::Breached => {
            format!("{} breached a threshold: rolled back automatically", w.slot)
        }
        model::WatchStatus::Stopped => format!("Watch of {} ended early", w.slot),
    };
    view! {
        <section class=format!("watch {}", w.status) data-testid="watch">
            <h2>"Watch window"</h2>
            <p>
                <span class=format!("step-status {}", w.status) data-testid="watch-status">{w.status.to_string()}</span>
                " "
                {heading}
            </p>
            {w.message.clone().map(|m| view! { <p class="step-message" data-testid="watch-message">{m}</p> })}
            {w.rollback_id.map(|id| view! {
                <p><a href=format!("/deployments/{id}") data-testid="watch-rollback-link">{format!("Automatic rollback #{id}")}</a></p>
            })}
        </section>
    }
}

fn step_label(name: &str) -> &str {
    match name {
        "lock" => "Lock the environment",
        "preflight" => "Preflight checks",
        "start" => "Start the release in the idle slot",
        "health" => "Wait until healthy",
        "gates" => "Smoke routes and performance sample",
        "switch" => "Switch traffic",
        "drain" => "Drain the old slot",
        "standby" => "Keep the old slot warm",
        other => other,
    }
}

#[component]
fn Timeline(steps: Vec<StepView>) -> impl IntoView {
    if steps.is_empty() {
        return view! {
            <p class="notice" data-testid="no-steps">
                "No steps were recorded for this deployment (it ran before Switchyard recorded them)."
            </p>
        }
        .into_any();
    }
    view! {
        <ol class="timeline" data-testid="steps">
            {steps.into_iter().map(|s| view! { <StepRow step=s/> }).collect_view()}
        </ol>
    }
    .into_any()
}

#[component]
fn StepRow(step: StepView) -> impl IntoView {
    let s = step;
    let duration = match s.status {
        model::StepStatus::Running => format!("{} so far", duration_text(s.duration_ms)),
        _ if s.duration_ms.is_some() => duration_text(s.duration_ms),
        _ => String::new(),
    };
    let started = s.started_at.as_deref().map(short_time).unwrap_or_default();
    view! {
        <li class=format!("step {}", s.status) data-step=s.name.clone() data-testid="step">
            <div class="step-head">
                <strong class="step-name">{step_label(&s.name).to_string()}</strong>
                <span class=format!("step-status {}", s.status) data-testid="step-status">{s.status.to_string()}</span>
                <span class="meta" data-testid="step-started">{started}</span>
                <span class="meta" data-testid="step-duration">{duration}</span>
            </div>
            {s.message.map(|m| view! { <p class="step-message" data-testid="step-message">{m}</p> })}
        </li>
    }
}
