//! One deployment's page: who moved what where, and the timeline of its steps
//! (lock, preflight, start, health, switch, standby) with when each ran and,
//! for a failed one, why. While the deployment runs (or its watch window
//! does) the browser follows it: each server-sent event
//! (`/api/deployments/{id}/events`, see the server's `events` module) fetches
//! the page again and swaps its live region; if the stream cannot be opened
//! or breaks, the page is fetched every second instead (`live::LiveFollow`).

use crate::components::page_shell;
use crate::error::AppError;
use crate::format::{duration_text, short_time};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{DeploymentDetail, DeploymentStatus, DeploymentView, Role, SessionUser, StepView};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{signed_in, state};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedDeployment {
    pub me: SessionUser,
    pub detail: DeploymentDetail,
}

/// Promotion: the version a succeeded deploy shipped, requested as a
/// release of an environment downstream of it. Opens that release.
#[server(endpoint = "promote")]
pub async fn promote(deployment: i64, environment: String) -> Result<i64, AppError> {
    crate::error::respond(
        async move {
            let (actor, _) = signed_in().await?;
            let release = state()?
                .engine
                .promote(&actor, deployment, &environment)
                .await?;
            // The release it made opens on its own page, with or without
            // JavaScript (as `request_release` does).
            leptos_axum::redirect(&format!("/releases/{}", release.id));
            Ok(release.id)
        }
        .await,
    )
}

#[server(endpoint = "load_deployment")]
pub async fn load_deployment(id: i64) -> Result<LoadedDeployment, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            let detail = engine.deployment(&actor, id).await?;
            Ok(LoadedDeployment { me, detail })
        }
        .await,
    )
}

/// Whether the page has more to show: the deployment still runs, or its
/// watch window does.
fn keeps_following(d: &DeploymentDetail) -> bool {
    d.deployment.status == DeploymentStatus::Running
        || d.watch
            .as_ref()
            .is_some_and(|w| w.status == model::WatchStatus::Watching)
}

/// The id of the part of the page that follows the deployment.
const LIVE_REGION: &str = "deployment-region";

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
    let page = Resource::new(id, load_deployment);
    let promote = crate::flash::action::<Promote>();
    let hold_actions = crate::hold::HoldActions::new();
    page_shell(page, Some("deployment"), move |p| {
        let d = p.detail;
        let may_request = p.me.role != Role::Viewer;
        // While it runs, the browser follows it: each event of the
        // deployment's stream fetches this page again and swaps the
        // region (`live::LiveFollow`), so the WASM carries none of the
        // views below. The region says whether it still follows.
        let following = keeps_following(&d);
        let events = format!("/api/deployments/{}/events", d.deployment.id);
        let offers = (may_request && !d.promote_to.is_empty())
                .then(|| view! { <Promotions deployment=d.deployment.id targets=d.promote_to.clone() action=promote/> });
        let running = d.deployment.status == DeploymentStatus::Running;
        let hold = d.hold.clone().map(|h| {
            view! {
                <crate::hold::HoldPanel deployment=d.deployment.id hold=h running
                    may_decide=may_request actions=hold_actions/>
            }
        });
        let contents = view! {
            {following.then(|| view! {
                <crate::live::LiveFollow regions=vec![LIVE_REGION.to_string()] events/>
            })}
            <div id=LIVE_REGION class="region" data-follow=following.then_some("true")>
                <DeploymentHeader deployment=d.deployment elapsed_ms=d.elapsed_ms/>
                {hold}
                {offers}
                <h2>"Steps"</h2>
                <Timeline steps=d.steps/>
                {d.watch.map(|w| view! { <Watch watch=w/> })}
            </div>
        };
        (p.me, contents)
    })
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
/// "Promote to production": one button per environment downstream.
#[component]
fn Promotions(
    deployment: i64,
    targets: Vec<String>,
    action: ServerAction<Promote>,
) -> impl IntoView {
    let buttons = targets
        .into_iter()
        .map(|t| {
            let label = format!("Promote to {t}");
            let marker = t.clone();
            view! {
                <ActionForm action attr:class="promote" attr:data-promote-to=marker>
                    <input type="hidden" name="deployment" value=deployment.to_string()/>
                    <input type="hidden" name="environment" value=t/>
                    <button type="submit" disabled=move || action.pending().get()>{label}</button>
                </ActionForm>
            }
        })
        .collect_view();
    view! {
        <section class="promotions" data-testid="promotions">
            {buttons}
            {move || action.value().get().and_then(|r| r.err()).map(|e| crate::components::action_result(e, crate::components::ResultIds::PAGE))}
        </section>
    }
    .into_any()
}

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
        "hold" => "Hold at preview",
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
