//! An environment's checklist template: everyone reads it, admins change it.
//! Releases already requested keep the checklist they were given.

use crate::components::{action_result, page_shell, ResultIds};
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{AutoCheck, Role, SessionUser, TemplateItem};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, authorized, signed_in, state};
#[cfg(feature = "ssr")]
use crate::fields::{choice, optional_whole_number};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistPage {
    pub me: SessionUser,
    pub environment: String,
    pub items: Vec<TemplateItem>,
}

#[server(endpoint = "load_checklist")]
pub async fn load_checklist(environment: String) -> Result<ChecklistPage, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            let items = engine.checklist_template(&actor, &environment).await?;
            Ok(ChecklistPage {
                me,
                environment,
                items,
            })
        }
        .await,
    )
}

/// `kind` is `manual` or the name of an automatic check; anything else is refused.
#[server(endpoint = "add_checklist_item")]
#[allow(clippy::too_many_arguments)]
pub async fn add_checklist_item(
    environment: String,
    title: String,
    description: String,
    required_role: String,
    kind: String,
    #[server(default)] required: Option<String>,
    #[server(default)] max_age_hours: Option<String>,
) -> Result<(), AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageChecklists, Some(&environment)).await?;
            let item = TemplateItem {
                id: 0,
                title,
                description,
                required_role: choice("required_role", &required_role)?,
                auto_check: match kind.as_str() {
                    "manual" => None,
                    other => Some(choice::<AutoCheck>("kind", other)?),
                },
                max_age_hours: optional_whole_number("max_age_hours", max_age_hours.as_deref())?,
                required: required.is_some(),
            };
            Ok(state()?
                .engine
                .add_checklist_item(&actor, &environment, item)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "remove_checklist_item")]
pub async fn remove_checklist_item(environment: String, item: i64) -> Result<(), AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .remove_checklist_item(&actor().await?, &environment, item)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "reset_checklist")]
pub async fn reset_checklist(environment: String) -> Result<(), AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .reset_checklist(&actor().await?, &environment)
                .await?)
        }
        .await,
    )
}

#[component]
pub fn ChecklistTemplatePage() -> impl IntoView {
    let params = use_params_map();
    let env = move || params.read().get("name").unwrap_or_default();
    let add = crate::flash::action::<AddChecklistItem>();
    let remove = crate::flash::action::<RemoveChecklistItem>();
    let reset = crate::flash::action::<ResetChecklist>();
    let page = Resource::new(env, load_checklist);
    let errors = move || {
        [
            add.value().get().and_then(Result::err),
            remove.value().get().and_then(Result::err),
            reset.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .map(|e| action_result(e, ResultIds::PAGE))
        .collect_view()
    };
    page_shell(page, None, move |p| {
        let admin = p.me.role == Role::Admin;
        let env = p.environment.clone();
        let contents = view! {
            <h1>{format!("Checklist of {}", p.environment)}</h1>
            <p class="notice">"Every release requested for this environment gets these items. A release deploys only when each required item is signed (never by its requester) or verified."</p>
            {errors}
            <TemplateTable items=p.items.clone() environment=env.clone() admin remove/>
            {admin.then(|| view! { <AdminForms environment=env.clone() add reset/> })}
        };
        (p.me, contents)
    })
}

#[component]
fn TemplateTable(
    items: Vec<TemplateItem>,
    environment: String,
    admin: bool,
    remove: ServerAction<RemoveChecklistItem>,
) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="notice" data-testid="no-checklist">"No checklist: any version deploys directly."</p> }.into_any();
    }
    view! {
        <table class="history" data-testid="template">
            <thead>
                <tr><th>"Item"</th><th>"Kind"</th><th>"Signed by"</th><th>"Required"</th>{admin.then(|| view! { <th></th> })}</tr>
            </thead>
            <tbody>
                {items
                    .into_iter()
                    .map(|i| {
                        let env = environment.clone();
                        let remove_label = format!("Remove {}", i.title);
                        view! {
                            <tr data-item=i.title.clone()>
                                <td><strong>{i.title.clone()}</strong><br/><small>{i.description.clone()}</small></td>
                                <td>{i.auto_check.map(|c| format!("automatic: {}", c.describe())).unwrap_or_else(|| "manual".into())}</td>
                                <td>{format!("{} or higher", i.required_role)}</td>
                                <td>{if i.required { "required" } else { "optional" }}</td>
                                {admin.then(|| view! {
                                    <td>
                                        // A step every new release loses: asked first.
                                        <details class="confirm">
                                            <summary data-testid="remove-item-open">"Remove…"</summary>
                                            <p>"New releases will not ask for it (releases already requested keep their checklist)."</p>
                                            <ActionForm action=remove attr:class="inline">
                                                <input type="hidden" name="environment" value=env/>
                                                <input type="hidden" name="item" value=i.id/>
                                                <button type="submit" class="danger" aria-label=remove_label.clone()
                                                    data-testid="remove-item-confirm">"Remove"</button>
                                            </ActionForm>
                                        </details>
                                    </td>
                                })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn AdminForms(
    environment: String,
    add: ServerAction<AddChecklistItem>,
    reset: ServerAction<ResetChecklist>,
) -> impl IntoView {
    let reset_env = environment.clone();
    view! {
        <section class="request">
            <h2>"Add an item"</h2>
            <ActionForm action=add attr:class="stacked">
                <input type="hidden" name="environment" value=environment.clone()/>
                <label>"Title" <input type="text" name="title" data-testid="item-title"/></label>
                <label>"Description" <input type="text" name="description"/></label>
                <label>"Signed by"
                    <select name="required_role" data-testid="item-role">
                        <option value="approver">"approver or higher"</option>
                        <option value="deployer">"deployer or higher"</option>
                        <option value="admin">"admin"</option>
                    </select>
                </label>
                <label>"Kind"
                    <select name="kind" data-testid="item-kind">
                        <option value="manual">"manual (a person signs)"</option>
                        {AutoCheck::ALL.into_iter().map(|c| view! { <option value=c.as_str()>{format!("automatic: {}", c.describe())}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Max backup age (hours, backup check only)" <input type="text" name="max_age_hours"/></label>
                <label class="check"><input type="checkbox" name="required" value="on" checked/>" required"</label>
                <button type="submit" data-testid="item-add">"Add item"</button>
            </ActionForm>
            <ActionForm action=reset attr:class="inline">
                <input type="hidden" name="environment" value=reset_env/>
                <button type="submit" class="danger" data-testid="checklist-reset">"Replace with the default checklist"</button>
            </ActionForm>
        </section>
    }
}
