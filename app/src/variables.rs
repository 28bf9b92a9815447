//! An environment's variables and secrets on its settings page, for admins:
//! variables with their values, secrets by name only ("set, updated at T by
//! U") — a secret's value goes in through a password field and never comes
//! back out, not even to the admin who set it.

use crate::components::{action_result, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::SlotEnvView;

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, state};

#[server(endpoint = "set_variable")]
pub async fn set_variable(
    environment: String,
    name: String,
    value: String,
) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            let name = name.trim();
            state()?
                .engine
                .set_variable(&actor, &environment, name, &value)
                .await?;
            Ok(format!(
                "Variable {name} set. Slots started from now on get it."
            ))
        }
        .await,
    )
}

#[server(endpoint = "set_secret")]
pub async fn set_secret(
    environment: String,
    name: String,
    secret: String,
) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            let name = name.trim();
            state()?
                .engine
                .set_secret(&actor, &environment, name, &secret)
                .await?;
            Ok(format!(
                "Secret {name} set (encrypted; it will not be shown). Slots started from now on get it."
            ))
        }
        .await,
    )
}

#[server(endpoint = "unset_variable")]
pub async fn unset_variable(environment: String, name: String) -> Result<String, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, Some(&environment)).await?;
            state()?
                .engine
                .unset_variable(&actor, &environment, &name)
                .await?;
            Ok(format!(
                "{name} removed. Running slots keep it until they restart."
            ))
        }
        .await,
    )
}

/// The actions of the section: each shows its answer where it is, after the
/// plain post that ran it brought the page back (`flash`).
#[derive(Clone, Copy)]
pub struct VariableActions {
    pub set: ServerAction<SetVariable>,
    pub secret: ServerAction<SetSecret>,
    pub unset: ServerAction<UnsetVariable>,
}

impl VariableActions {
    pub fn new() -> Self {
        VariableActions {
            set: crate::flash::action(),
            secret: crate::flash::action(),
            unset: crate::flash::action(),
        }
    }
}

impl Default for VariableActions {
    fn default() -> Self {
        Self::new()
    }
}

/// A text answer's line under its form.
fn answer(r: Result<String, AppError>) -> AnyView {
    action_result(r, ResultIds::PAGE)
}

#[component]
pub fn VariablesSection(
    environment: String,
    vars: SlotEnvView,
    actions: VariableActions,
) -> impl IntoView {
    let none = vars.variables.is_empty() && vars.secrets.is_empty();
    let env = environment.clone();
    let rows = vars
        .variables
        .into_iter()
        .map(|v| {
            let name = v.name.clone();
            let shown = v.name.clone();
            view! {
                <tr data-variable=v.name>
                    <td><code>{shown}</code></td>
                    <td><code class="value">{v.value}</code></td>
                    <td>{format!("{} by {}", short_time(&v.updated_at), v.updated_by)}</td>
                    <td><RemoveButton environment=env.clone() name actions/></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let env = environment.clone();
    let secrets = vars
        .secrets
        .into_iter()
        .map(|s| {
            let name = s.name.clone();
            let shown = s.name.clone();
            view! {
                <tr data-secret=s.name>
                    <td><code>{shown}</code></td>
                    <td class="secret-set">"set (hidden)"</td>
                    <td>{format!("{} by {}", short_time(&s.updated_at), s.updated_by)}</td>
                    <td><RemoveButton environment=env.clone() name actions/></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let (env_a, env_b) = (environment.clone(), environment);
    view! {
        <section class="variables" data-testid="variables">
            <h2>"Variables and secrets"</h2>
            <p class="notice">
                "Set in every slot's environment beside PORT and APP_VERSION, from the next slot start. Secrets are encrypted at rest and never shown again, here or anywhere."
            </p>
            {none.then(|| view! { <p class="notice">"None yet."</p> })}
            <table class="variables">
                <thead><tr><th>"Name"</th><th>"Value"</th><th>"Updated"</th><th></th></tr></thead>
                <tbody>{rows}{secrets}</tbody>
            </table>
            <ActionForm action=actions.set attr:class="variable" attr:data-testid="set-variable">
                <input type="hidden" name="environment" value=env_a/>
                <label>"Name" <input type="text" name="name" required autocomplete="off" placeholder="DATABASE_URL"/></label>
                <label>"Value" <input type="text" name="value" autocomplete="off"/></label>
                <button type="submit">"Set variable"</button>
            </ActionForm>
            {move || actions.set.value().get().map(answer)}
            <ActionForm action=actions.secret attr:class="variable" attr:data-testid="set-secret">
                <input type="hidden" name="environment" value=env_b/>
                <label>"Name" <input type="text" name="name" required autocomplete="off" placeholder="API_TOKEN"/></label>
                <label>"Secret" <input type="password" name="secret" required autocomplete="new-password"/></label>
                <button type="submit">"Set secret"</button>
            </ActionForm>
            {move || actions.secret.value().get().map(answer)}
            {move || actions.unset.value().get().map(answer)}
        </section>
    }
    .into_any()
}

#[component]
fn RemoveButton(environment: String, name: String, actions: VariableActions) -> impl IntoView {
    view! {
        <ActionForm action=actions.unset>
            <input type="hidden" name="environment" value=environment/>
            <input type="hidden" name="name" value=name/>
            <button type="submit" class="link">"Remove"</button>
        </ActionForm>
    }
    .into_any()
}
