//! An environment's deployment lock: who holds it, from which console, when
//! that console last beat — and, for admins, breaking it. Breaking is the
//! override for a worker that is stuck or whose console is gone; the server
//! decides whether it may happen (it refuses to break a live worker in
//! another console) and audits it with the reason.

use crate::components::{action_result, page_shell, Outcome, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{DeploymentStatus, DeploymentView, LockView, Role, SessionUser};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, signed_in, state};
#[cfg(feature = "ssr")]
use crate::fields::whole_number;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockPage {
    pub me: SessionUser,
    pub environment: String,
    pub lock: Option<LockView>,
}

#[server(endpoint = "environment_lock")]
pub async fn environment_lock(environment: String) -> Result<LockPage, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            let env = engine.environment(&actor, &environment).await?;
            Ok(LockPage {
                me,
                environment: env.name,
                lock: env.lock,
            })
        }
        .await,
    )
}

/// `deployment` is the deployment the admin looked at; `confirm` the
/// explicit confirmation every destructive action needs (checked by the
/// engine, after the role).
#[server(endpoint = "break_lock")]
pub async fn break_lock(
    environment: String,
    deployment: String,
    reason: String,
    #[server(default)] confirm: Option<String>,
) -> Result<DeploymentView, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::BreakLock, Some(&environment)).await?;
            let deployment = whole_number("deployment", &deployment)?;
            let confirmed = confirm.as_deref() == Some("on");
            Ok(state()?
                .engine
                .break_lock(&actor, &environment, deployment, &reason, confirmed)
                .await?)
        }
        .await,
    )
}

#[component]
pub fn LockDetailPage() -> impl IntoView {
    let params = use_params_map();
    let env = move || params.read().get("name").unwrap_or_default();
    let breaker = crate::flash::action::<BreakLock>();
    let page = Resource::new(env, environment_lock);
    page_shell(page, None, move |p| {
        let admin = p.me.role == Role::Admin;
        let contents = view! {
            <h1>{format!("Deployment lock of {}", p.environment)}</h1>
            <p class="notice">
                "One deployment runs per environment at a time. Its console refreshes a heartbeat every few seconds; a lock whose console is gone or silent for 30 s is recovered by itself."
            </p>
            {lock_view(p.lock.clone())}
            {match (admin, p.lock) {
                (true, Some(lock)) => view! {
                    <BreakForm environment=p.environment.clone() lock breaker/>
                }.into_any(),
                _ => ().into_any(),
            }}
            {move || breaker.value().get().map(break_result)}
            <p><a href="/">"Back to the environments"</a></p>
        };
        (p.me, contents)
    })
}

fn lock_view(lock: Option<LockView>) -> AnyView {
    let Some(l) = lock else {
        return view! { <p class="notice" data-testid="lock-free">"Not locked: no deployment runs."</p> }
            .into_any();
    };
    view! {
        <dl class="lock" data-testid="lock">
            <dt>"Deployment"</dt>
            <dd>
                <a href=format!("/deployments/{}", l.deployment_id) data-testid="lock-deployment">
                    {format!("#{} ({})", l.deployment_id, l.kind)}
                </a>
            </dd>
            <dt>"Requested by"</dt>
            <dd>{l.requested_by.clone()}</dd>
            <dt>"Since"</dt>
            <dd>{short_time(&l.since)}</dd>
            <dt>"Console"</dt>
            <dd data-testid="lock-holder">{l.holder.clone().unwrap_or_else(|| "unknown (recorded before holders were)".into())}</dd>
            <dt>"Last heartbeat"</dt>
            <dd data-testid="lock-heartbeat">{format!("{} s ago", l.heartbeat_age_secs)}</dd>
        </dl>
    }
    .into_any()
}

#[component]
fn BreakForm(
    environment: String,
    lock: LockView,
    breaker: ServerAction<BreakLock>,
) -> impl IntoView {
    view! {
        <ActionForm action=breaker attr:class="break-lock">
            <input type="hidden" name="environment" value=environment/>
            <input type="hidden" name="deployment" value=lock.deployment_id/>
            <label>
                "Reason"
                <input type="text" name="reason" required placeholder="why the lock must go" data-testid="break-reason"/>
            </label>
            <label class="confirm">
                <input type="checkbox" name="confirm" data-testid="break-confirm"/>
                {format!(
                    " Stop deployment #{} and clean up what it started; users stay on the slot the router serves",
                    lock.deployment_id
                )}
            </label>
            <button type="submit" class="danger" data-testid="break-lock" disabled=move || breaker.pending().get()>
                "Break lock"
            </button>
        </ActionForm>
    }
}

/// Breaking ends the deployment as failed: that is the good outcome here.
fn break_result(r: Result<DeploymentView, AppError>) -> AnyView {
    let outcome = match r {
        Ok(d) => {
            let text = format!(
                "Lock broken. Deployment #{} {}: {}",
                d.id,
                d.status,
                d.message.unwrap_or_default()
            );
            if d.status == DeploymentStatus::Failed {
                Outcome::Done(text)
            } else {
                Outcome::Said(text)
            }
        }
        Err(e) => e.into(),
    };
    action_result(outcome, ResultIds::PAGE)
}
