//! An environment's pipeline settings: everyone reads them, admins change
//! them. The values are what the next deploy waits for and judges by (health
//! wait, gates, drain, watch and standby windows, the hold at preview).
// The browser's side of `save_pipeline_settings` takes one argument per form
// field, as the server's does, but the macro does not carry its allow over.
#![cfg_attr(not(feature = "ssr"), allow(clippy::too_many_arguments))]

use crate::components::{action_result, page_shell, Outcome, ResultIds};
use crate::error::AppError;
use crate::textarea::TextArea;
use crate::variables::{VariableActions, VariablesSection};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{PipelineSettings, Role, SessionUser, SlotEnvView};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, signed_in, state};
#[cfg(feature = "ssr")]
use crate::fields::{number, whole_number};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingsPage {
    pub me: SessionUser,
    pub environment: String,
    pub settings: PipelineSettings,
    /// Variables and secret names: admins only (`None` for everyone else).
    pub variables: Option<SlotEnvView>,
}

#[server(endpoint = "load_pipeline_settings")]
pub async fn load_pipeline_settings(environment: String) -> Result<SettingsPage, AppError> {
    crate::error::respond(
        async move {
            let engine = &state()?.engine;
            let (actor, me) = signed_in().await?;
            let settings = engine.pipeline_settings(&actor, &environment).await?;
            // Only admins are asked: anyone else's read would be a refusal
            // (and an audit entry) for a page they may see.
            let variables = if me.role == Role::Admin {
                Some(engine.slot_env(&actor, &environment).await?)
            } else {
                None
            };
            Ok(SettingsPage {
                me,
                environment,
                settings,
                variables,
            })
        }
        .await,
    )
}

/// Every field is text as the browser sends it; the server parses and the
/// engine checks ranges, so a malformed form is refused and changes nothing.
#[server(endpoint = "save_pipeline_settings")]
#[allow(clippy::too_many_arguments)]
pub async fn save_pipeline_settings(
    environment: String,
    health_interval_ms: String,
    health_deadline_ms: String,
    smoke_paths: String,
    sample_requests: String,
    p95_ms: String,
    p99_ms: String,
    max_error_pct: String,
    drain_timeout_ms: String,
    watch_window_ms: String,
    standby_window_ms: String,
    // A checkbox: sent ("on") only when ticked. Both are optional so a
    // form from before the hold existed still saves (hold off, 30 min).
    hold_at_preview: Option<String>,
    hold_timeout_ms: Option<String>,
) -> Result<PipelineSettings, AppError> {
    crate::error::respond(
        async move {
            // Refuse roles before looking at the form: a viewer learns
            // nothing about which fields would have passed.
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            let settings = PipelineSettings {
                health_interval_ms: whole_number("health_interval_ms", &health_interval_ms)?,
                health_deadline_ms: whole_number("health_deadline_ms", &health_deadline_ms)?,
                smoke_paths,
                sample_requests: whole_number("sample_requests", &sample_requests)?,
                p95_ms: whole_number("p95_ms", &p95_ms)?,
                p99_ms: whole_number("p99_ms", &p99_ms)?,
                max_error_pct: number("max_error_pct", &max_error_pct)?,
                drain_timeout_ms: whole_number("drain_timeout_ms", &drain_timeout_ms)?,
                watch_window_ms: whole_number("watch_window_ms", &watch_window_ms)?,
                standby_window_ms: whole_number("standby_window_ms", &standby_window_ms)?,
                hold_at_preview: match hold_at_preview.as_deref() {
                    None => false,
                    Some("on" | "true") => true,
                    Some(_) => {
                        return Err(AppError::invalid(
                            "hold_at_preview",
                            "tick the box or leave it out",
                        ))
                    }
                },
                hold_timeout_ms: match hold_timeout_ms.as_deref() {
                    None => PipelineSettings::default().hold_timeout_ms,
                    Some(raw) => whole_number("hold_timeout_ms", raw)?,
                },
            };
            Ok(state()?
                .engine
                .set_pipeline_settings(&actor, &environment, &settings)
                .await?)
        }
        .await,
    )
}

#[component]
pub fn SettingsDetailPage() -> impl IntoView {
    let params = use_params_map();
    let env = move || params.read().get("name").unwrap_or_default();
    let save = crate::flash::action::<SavePipelineSettings>();
    let vars = VariableActions::new();
    let page = Resource::new(env, load_pipeline_settings);
    page_shell(page, None, move |p| {
        let admin = p.me.role == Role::Admin;
        let contents = view! {
            <h1>{format!("Pipeline settings of {}", p.environment)}</h1>
            <p class="notice">
                "What the next deploy waits for and judges by. A deploy already running keeps the settings it started with."
            </p>
            <SettingsForm environment=p.environment.clone() s=p.settings.clone() admin save/>
            {move || save.value().get().map(save_result)}
            <crate::freezes::FreezesSection environment=p.environment.clone() admin/>
            {p.variables.clone().map(|v| view! {
                <VariablesSection environment=p.environment.clone() vars=v actions=vars/>
            }.into_any())}
        };
        (p.me, contents)
    })
}

/// One labelled number field; read-only for everyone but admins.
fn field(
    label: &'static str,
    name: &'static str,
    value: String,
    hint: &'static str,
    admin: bool,
) -> impl IntoView {
    view! {
        <label class="setting">
            <span>{label}</span>
            <input type="text" name=name value=value readonly=!admin data-setting=name/>
            <small>{hint}</small>
        </label>
    }
}

#[component]
fn SettingsForm(
    environment: String,
    s: PipelineSettings,
    admin: bool,
    save: ServerAction<SavePipelineSettings>,
) -> impl IntoView {
    view! {
        <ActionForm action=save attr:class="settings">
            <input type="hidden" name="environment" value=environment/>
            <fieldset>
                <legend>"Health wait"</legend>
                {field("Interval (ms)", "health_interval_ms", s.health_interval_ms.to_string(), "how often the new slot is probed", admin)}
                {field("Deadline (ms)", "health_deadline_ms", s.health_deadline_ms.to_string(), "not healthy by then: the deploy fails, users stay", admin)}
            </fieldset>
            <fieldset>
                <legend>"Gates (before the switch)"</legend>
                <label class="setting">
                    <span>"Smoke routes"</span>
                    <TextArea name="smoke_paths" rows=3 readonly=!admin value=s.smoke_paths.clone() attr:data-setting="smoke_paths"/>
                    <small>"one path per line; each must answer 2xx"</small>
                </label>
                {field("Sample requests", "sample_requests", s.sample_requests.to_string(), "0 turns the performance sample off", admin)}
                {field("p95 below (ms)", "p95_ms", s.p95_ms.to_string(), "", admin)}
                {field("p99 below (ms)", "p99_ms", s.p99_ms.to_string(), "", admin)}
                {field("Errors below (%)", "max_error_pct", s.max_error_pct.to_string(), "", admin)}
            </fieldset>
            <fieldset>
                <legend>"After the switch"</legend>
                {field("Drain timeout (ms)", "drain_timeout_ms", s.drain_timeout_ms.to_string(), "how long in-flight requests on the old slot may take", admin)}
                {field("Watch window (ms)", "watch_window_ms", s.watch_window_ms.to_string(), "a breach rolls back by itself; 0 turns it off", admin)}
                {field("Standby window (ms)", "standby_window_ms", s.standby_window_ms.to_string(), "the old slot stays warm this long; 0 = until the next deploy", admin)}
            </fieldset>
            <fieldset>
                <legend>"Hold at preview"</legend>
                <label class="setting">
                    <span>"Hold each deploy after its gates"</span>
                    <input type="checkbox" name="hold_at_preview" checked=s.hold_at_preview disabled=!admin data-testid="hold-at-preview"/>
                    <small>"the new release waits on the preview address until a deployer promotes or aborts it"</small>
                </label>
                {field("Hold timeout (ms)", "hold_timeout_ms", s.hold_timeout_ms.to_string(), "not decided by then: the deploy is aborted, users stay (10 s to 24 h)", admin)}
            </fieldset>
            {admin.then(|| view! {
                <button type="submit" data-testid="save-settings" disabled=move || save.pending().get()>"Save settings"</button>
            })}
        </ActionForm>
    }
}

fn save_result(r: Result<PipelineSettings, AppError>) -> AnyView {
    let outcome = match r {
        Ok(_) => Outcome::Done("Saved. The next deploy uses these settings.".into()),
        Err(e) => e.into(),
    };
    action_result(outcome, ResultIds::PAGE)
}
