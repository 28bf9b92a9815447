//! The Tokens page: everyone signed in makes personal API tokens for
//! pipelines and the remote CLI (admins also service tokens), sees their
//! prefix, scope, expiry and last use, and revokes them. A new token's
//! secret is shown once, with a Copy button; the engine keeps only its hash.

use crate::components::{action_result, page_shell, CopyButton, Outcome, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::{IssuedToken, Role, SessionUser, TokenKind, TokenView};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, signed_in, state};
#[cfg(feature = "ssr")]
use crate::fields::{choice, whole_number};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokensPage {
    pub me: SessionUser,
    pub tokens: Vec<TokenView>,
    /// The environments a token may be limited to.
    pub environments: Vec<String>,
}

#[server(endpoint = "load_tokens")]
pub async fn load_tokens() -> Result<TokensPage, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            Ok(TokensPage {
                me,
                tokens: engine.tokens(&actor).await?,
                environments: engine.environment_names(&actor).await?,
            })
        }
        .await,
    )
}

/// Makes a token for the signed-in person; `environments` is a
/// comma-separated list (empty: every environment its role reaches).
#[server(endpoint = "create_token")]
pub async fn create_token(
    name: String,
    kind: String,
    role: String,
    environments: String,
    expires_in_days: String,
) -> Result<IssuedToken, AppError> {
    crate::error::respond(
        async move {
            let actor = actor().await?;
            let new = model::NewToken {
                name: name.trim().to_string(),
                kind: choice("kind", &kind)?,
                role: choice("role", &role)?,
                environments: split_environments(&environments),
                expires_in_days: whole_number("expires_in_days", &expires_in_days)?,
            };
            Ok(state()?.engine.create_token(&actor, None, &new).await?)
        }
        .await,
    )
}

#[server(endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<TokenView, AppError> {
    crate::error::respond(
        async move { Ok(state()?.engine.revoke_token(&actor().await?, id).await?) }.await,
    )
}

/// `"staging, production"` → both names; blank → none (all).
pub fn split_environments(raw: &str) -> Option<Vec<String>> {
    let names: Vec<String> = raw
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!names.is_empty()).then_some(names)
}

/// The secret, once: in a read-only field to select, with a Copy button.
fn issued(r: Option<Result<IssuedToken, AppError>>) -> Option<AnyView> {
    Some(match r? {
        Ok(t) => {
            let secret = t.secret.clone();
            view! {
                <section class="issued-token" role="status" data-testid="issued-token">
                    <h2>{format!("Token {} made", t.token.name)}</h2>
                    <p>"Copy it now: it is shown once and cannot be read again, here or anywhere. Store it as your pipeline's secret (SWITCHYARD_TOKEN)."</p>
                    <label>"Token"
                        <input type="text" readonly value=t.secret data-testid="token-secret"
                            autocomplete="off" spellcheck="false"/>
                    </label>
                    <CopyButton text=secret testid="copy-token"/>
                </section>
            }
            .into_any()
        }
        Err(e) => action_result(e, ResultIds::PAGE),
    })
}

fn revoked(r: Option<Result<TokenView, AppError>>) -> Option<AnyView> {
    let outcome = match r? {
        Ok(t) => Outcome::Done(format!(
            "Token {} (sy_{}) revoked: it no longer works.",
            t.name, t.prefix
        )),
        Err(e) => e.into(),
    };
    Some(action_result(outcome, ResultIds::PAGE))
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let revoke = crate::flash::action::<RevokeToken>();
    let page = Resource::new(|| (), |_| load_tokens());
    view! {
        {page_shell(page, None, move |p| {
            let admin = p.me.role == Role::Admin;
            let contents = view! {
                <h1>"API tokens"</h1>
                <p class="notice">
                    "A token lets a pipeline or the remote CLI (switchyard --server URL …) act for you over the REST API (/api/v1). It never has more rights than you: its role stays within yours, it stops when you are disabled, and it cannot sign a release you requested."
                </p>
                <TokenCreate me=p.me.clone() environments=p.environments admin/>
                <div id=TOKENS_REGION class="region">
                    <TokenTable tokens=p.tokens revoke/>
                </div>
            };
            (p.me, contents)
        })}
        {move || revoked(revoke.value().get())}
    }
}

/// The id of the token table: fetched again after a token is made.
const TOKENS_REGION: &str = "tokens-region";

/// The form that makes a token, and the secret it shows once: an island,
/// the only part of the page that needs the browser.
#[island]
fn TokenCreate(me: SessionUser, environments: Vec<String>, admin: bool) -> impl IntoView {
    let create = crate::flash::action::<CreateToken>();
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(_))) {
            crate::live::refresh_now(&[TOKENS_REGION]);
        }
    });
    view! {
        <TokenForm me environments admin create/>
        {move || issued(create.value().get())}
    }
}

#[component]
fn TokenForm(
    me: SessionUser,
    environments: Vec<String>,
    admin: bool,
    create: ServerAction<CreateToken>,
) -> impl IntoView {
    let hint = format!("Empty: all. Known: {}", environments.join(", "));
    view! {
        <ActionForm action=create attr:class="create-token" attr:data-testid="create-token">
            <label>"Name" <input type="text" name="name" required maxlength="64" autocomplete="off"
                placeholder="ci-deploy" pattern="[A-Za-z0-9._\\-]+" data-testid="token-name"/></label>
            <label>"Kind"
                <select name="kind" data-testid="token-kind">
                    <option value=TokenKind::Personal.as_str() selected>"personal"</option>
                    {admin.then(|| view! { <option value=TokenKind::Service.as_str()>"service (for a pipeline)"</option> })}
                </select>
            </label>
            <label>"Role"
                <select name="role" data-testid="token-role">
                    {Role::ALL
                        .into_iter()
                        .filter(|r| *r == me.role || *r == Role::Viewer || me.role == Role::Admin)
                        .map(|r| view! { <option value=r.as_str() selected=r == me.role>{r.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>"Environments" <input type="text" name="environments" autocomplete="off"
                placeholder="staging, production" title=hint data-testid="token-environments"/></label>
            <label>"Expires in (days)" <input type="number" name="expires_in_days" min="1" max="366"
                value="90" required data-testid="token-days"/></label>
            <button type="submit">"Make token"</button>
        </ActionForm>
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenView>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="notice" data-testid="no-tokens">"No tokens yet."</p> }.into_any();
    }
    let dash = || "—".to_string();
    // The table scrolls inside its own box on a phone; the box takes focus
    // so a keyboard can scroll it even when no row has a button (all
    // revoked).
    view! {
        <div class="tokens-scroll" tabindex="0" role="region" aria-label="API tokens">
        <table class="tokens" data-testid="tokens-table">
            <thead>
                <tr><th>"Token"</th><th>"Owner"</th><th>"Role"</th><th>"Environments"</th>
                    <th>"Expires"</th><th>"Last used"</th><th></th></tr>
            </thead>
            <tbody>
                {tokens.into_iter().map(|t| {
                    let live = t.revoked_at.is_none();
                    let scope = t.environments.clone().map_or_else(|| "all".to_string(), |e| e.join(", "));
                    let last = t.last_used_at.as_deref().map_or_else(dash, |at| {
                        format!("{} from {}", short_time(at), t.last_used_ip.clone().unwrap_or_default())
                    });
                    let expires = t.expires_at.as_deref().map_or_else(dash, short_time);
                    let label = format!("Revoke {}", t.name);
                    view! {
                        <tr data-token=t.name.clone()>
                            <td><strong>{t.name.clone()}</strong>" "<code>{format!("sy_{}", t.prefix)}</code>" "<span class="badge">{t.kind.as_str()}</span></td>
                            <td>{t.owner.clone()}</td>
                            <td>{t.role.as_str()}</td>
                            <td>{scope}</td>
                            <td>{expires}</td>
                            <td>{last}</td>
                            <td>
                                {if live {
                                    view! {
                                        <details class="confirm">
                                            <summary data-testid="revoke-open">"Revoke…"</summary>
                                            <p>"Pipelines using it stop working at once."</p>
                                            <ActionForm action=revoke attr:class="inline">
                                                <input type="hidden" name="id" value=t.id.to_string()/>
                                                <button type="submit" class="danger" aria-label=label data-testid="revoke-confirm">"Revoke"</button>
                                            </ActionForm>
                                        </details>
                                    }.into_any()
                                } else {
                                    view! { <span class="muted">"revoked"</span> }.into_any()
                                }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_are_split_on_commas_and_spaces_and_blank_means_all() {
        assert_eq!(split_environments("  "), None);
        assert_eq!(
            split_environments("staging, production\nqa"),
            Some(vec!["staging".into(), "production".into(), "qa".into()])
        );
    }
}
