//! An environment's freeze windows, on its settings page: times when it
//! takes no deploys (rollbacks always go through). Everyone signed in sees
//! them, with the one holding now and when each next begins; admins add
//! and delete them. The engine checks every field (naming the bad one),
//! authorizes and audits (`freeze.add`, `freeze.remove`), as for the API.
// The browser's side of `add_freeze` takes one argument per form field, as
// the server's does, but the macro does not carry its allow over.
#![cfg_attr(not(feature = "ssr"), allow(clippy::too_many_arguments))]

use crate::components::{action_result, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::{FreezeKind, FreezeView};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, authorized, state};

#[server(endpoint = "load_freezes")]
pub async fn load_freezes(environment: String) -> Result<Vec<FreezeView>, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .freezes(&actor().await?, &environment)
                .await?)
        }
        .await,
    )
}

/// Every field is text as the browser sends it; the ones the kind does not
/// use may be empty. The engine refuses a bad one by name and writes nothing.
#[server(endpoint = "add_freeze")]
#[allow(clippy::too_many_arguments)]
pub async fn add_freeze(
    environment: String,
    reason: String,
    kind: String,
    starts: Option<String>,
    ends: Option<String>,
    days: Option<String>,
    start_time: Option<String>,
    duration_minutes: Option<String>,
    time_zone: Option<String>,
) -> Result<FreezeView, AppError> {
    crate::error::respond(
        async move {
            // The role first: who may not add learns nothing from the form.
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
            let new = model::NewFreeze {
                reason,
                kind: crate::fields::choice("kind", &kind)?,
                starts: given(starts),
                ends: given(ends),
                days: given(days),
                start_time: given(start_time),
                duration_minutes: crate::fields::optional_whole_number(
                    "duration_minutes",
                    duration_minutes.as_deref(),
                )?,
                time_zone: given(time_zone),
            };
            Ok(state()?
                .engine
                .add_freeze(&actor, &environment, &new)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "remove_freeze")]
pub async fn remove_freeze(environment: String, id: i64) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            state()?
                .engine
                .remove_freeze(&actor().await?, &environment, id)
                .await?;
            Ok(format!("Freeze window {id} deleted."))
        }
        .await,
    )
}

fn when(f: &FreezeView) -> String {
    match (&f.active_until, &f.next_start) {
        (Some(until), _) => format!("holds now, until {}", short_time(until)),
        (None, Some(next)) => format!("next from {}", short_time(next)),
        (None, None) => "over".to_string(),
    }
}

/// The freeze windows of `environment`; `admin` adds the forms.
#[component]
pub fn FreezesSection(environment: String, admin: bool) -> impl IntoView {
    let add = crate::flash::action::<AddFreeze>();
    let remove = crate::flash::action::<RemoveFreeze>();
    let env = environment.clone();
    let list = Resource::new(|| (), move |_| load_freezes(env.clone()));
    let env = environment.clone();
    let rows = move || {
        let env = env.clone();
        Suspend::new(async move {
            match list.await {
                Ok(all) if all.is_empty() => {
                    view! { <p class="notice" data-testid="no-freezes">"No freeze windows: deploys are allowed at any time."</p> }.into_any()
                }
                Ok(all) => view! {
                    <table class="freezes" data-testid="freezes">
                        <thead><tr><th>"Reason"</th><th>"When"</th><th>"Status"</th><th>"Added"</th><th></th></tr></thead>
                        <tbody>
                            {all.into_iter().map(|f| {
                                let active = f.active_until.is_some();
                                let status = when(&f);
                                let added = format!("{} by {}", short_time(&f.created_at), f.created_by);
                                let remove_form = admin.then(|| view! { <RemoveFreezeForm environment=env.clone() id=f.id remove/> });
                                view! {
                                    <tr data-freeze=f.id.to_string() class:active=active>
                                        <td data-testid="freeze-reason">{f.reason}</td>
                                        <td>{f.schedule}</td>
                                        <td data-testid="freeze-status">{status}</td>
                                        <td>{added}</td>
                                        <td>{remove_form}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            }
        })
    };
    let form = admin.then(|| view! { <AddFreezeForm environment=environment.clone() add/> });
    view! {
        <section class="freezes" data-testid="freeze-windows">
            <h2>"Freeze windows"</h2>
            <p class="notice">
                "While a window holds, deploys are refused with its reason; rollbacks always go through. An admin may deploy anyway with a reason (audited)."
            </p>
            <Transition fallback=|| view! { <p class="notice">"Loading freeze windows…"</p> }>
                {rows}
            </Transition>
            {form}
            {move || add.value().get().map(|r| action_result(r.map(|f| format!("Freeze window added: {}", f.schedule)), ResultIds::PAGE))}
            {move || remove.value().get().map(|r| action_result(r, ResultIds::PAGE))}
        </section>
    }
}

#[component]
fn AddFreezeForm(environment: String, add: ServerAction<AddFreeze>) -> impl IntoView {
    view! {
        <ActionForm action=add attr:class="settings freeze-add" attr:data-testid="add-freeze">
            <input type="hidden" name="environment" value=environment/>
            <fieldset>
                <legend>"Add a freeze window"</legend>
                <label class="setting">
                    <span>"Reason"</span>
                    <input type="text" name="reason" required data-testid="freeze-reason-input" placeholder="e.g. holiday freeze"/>
                </label>
                <label class="setting">
                    <span>"Kind"</span>
                    <select name="kind" data-testid="freeze-kind">
                        <option value=FreezeKind::Once.as_str()>"Once (from – to)"</option>
                        <option value=FreezeKind::Weekly.as_str()>"Weekly (days, start, duration)"</option>
                    </select>
                </label>
                <label class="setting">
                    <span>"From (once)"</span>
                    <input type="text" name="starts" placeholder="YYYY-MM-DD HH:MM" data-testid="freeze-starts"/>
                </label>
                <label class="setting">
                    <span>"To (once)"</span>
                    <input type="text" name="ends" placeholder="YYYY-MM-DD HH:MM" data-testid="freeze-ends"/>
                </label>
                <label class="setting">
                    <span>"Days (weekly)"</span>
                    <input type="text" name="days" placeholder="fri,sat,sun" data-testid="freeze-days"/>
                </label>
                <label class="setting">
                    <span>"Start (weekly)"</span>
                    <input type="text" name="start_time" placeholder="HH:MM" data-testid="freeze-start-time"/>
                </label>
                <label class="setting">
                    <span>"Duration in minutes (weekly)"</span>
                    <input type="text" name="duration_minutes" placeholder="e.g. 3720" data-testid="freeze-duration"/>
                </label>
                <label class="setting">
                    <span>"Time zone"</span>
                    <input type="text" name="time_zone" value="UTC" data-testid="freeze-zone"/>
                    <small>"an IANA name, e.g. Europe/Berlin; the times above are read in it"</small>
                </label>
            </fieldset>
            <button type="submit" data-testid="freeze-add" disabled=move || add.pending().get()>"Add freeze window"</button>
        </ActionForm>
    }
}

/// Delete, behind a confirmation: the button only opens it.
#[component]
fn RemoveFreezeForm(
    environment: String,
    id: i64,
    remove: ServerAction<RemoveFreeze>,
) -> impl IntoView {
    view! {
        <ActionForm action=remove>
            <input type="hidden" name="environment" value=environment/>
            <input type="hidden" name="id" value=id.to_string()/>
            <details class="rollback-confirm" data-testid="freeze-delete">
                <summary data-testid="freeze-delete-open">"Delete…"</summary>
                <p>"Deploys are allowed again when no other window holds."</p>
                <button type="submit" class="danger" data-testid="freeze-delete-confirm" disabled=move || remove.pending().get()>"Confirm: delete this window"</button>
            </details>
        </ActionForm>
    }
}
