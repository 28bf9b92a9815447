//! Releases: request one, sign its checklist, deploy it once approved.
//! Every button here is a request the engine decides on again; the page only
//! hides what the user's role cannot do.

use crate::components::{action_result, page_shell, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use crate::textarea::TextArea;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{
    ChecklistItemView, DeploymentStatus, DeploymentView, ItemState, ReleaseStatus, ReleaseSummary,
    ReleaseView, Role, SessionUser,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, signed_in, state};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleasesPage {
    pub me: SessionUser,
    pub environments: Vec<EnvironmentVersions>,
    pub releases: Vec<ReleaseSummary>,
}

/// An environment of the request form, with the versions its runtime
/// offers (newest first; a typed one is still accepted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentVersions {
    pub name: String,
    pub versions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleasePage {
    pub me: SessionUser,
    pub release: ReleaseView,
}

#[server(endpoint = "list_releases")]
pub async fn list_releases() -> Result<ReleasesPage, AppError> {
    crate::error::respond(
        async move {
            let engine = &state()?.engine;
            let (actor, me) = signed_in().await?;
            let mut environments = Vec::new();
            for name in engine.environment_names(&actor).await? {
                let versions = engine.known_versions(&actor, &name).await?;
                environments.push(EnvironmentVersions { name, versions });
            }
            Ok(ReleasesPage {
                me,
                environments,
                releases: engine.releases(&actor, None).await?,
            })
        }
        .await,
    )
}

#[server(endpoint = "load_release")]
pub async fn load_release(id: i64) -> Result<ReleasePage, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            let release = engine.release(&actor, id).await?;
            Ok(ReleasePage { me, release })
        }
        .await,
    )
}

#[server(endpoint = "request_release")]
pub async fn request_release(
    environment: String,
    version: String,
    notes: String,
    migration_sql: String,
) -> Result<ReleaseView, AppError> {
    crate::error::respond(
        async move {
            let req = model::ReleaseRequest {
                environment,
                version,
                notes,
                migration_sql,
            };
            let release = state()?
                .engine
                .request_release(&actor().await?, &req)
                .await?;
            // A new release opens on its own page, where its checklist is:
            // the browser's router follows this, and so does a form posted
            // without JavaScript (server/src/plain_forms.rs).
            leptos_axum::redirect(&format!("/releases/{}", release.id));
            Ok(release)
        }
        .await,
    )
}

/// The signer is the session's user; nothing in the form can say otherwise.
#[server(endpoint = "sign_item")]
pub async fn sign_item(
    release: i64,
    item: i64,
    revision: i64,
    note: String,
) -> Result<ReleaseView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .sign_item(&actor().await?, release, item, revision, &note)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "revoke_signoff")]
pub async fn revoke_signoff(
    release: i64,
    item: i64,
    reason: String,
) -> Result<ReleaseView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .revoke_signoff(&actor().await?, release, item, &reason)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "edit_release")]
pub async fn edit_release(
    release: i64,
    revision: i64,
    notes: String,
    migration_sql: String,
) -> Result<ReleaseView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .edit_release(&actor().await?, release, revision, &notes, &migration_sql)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "cancel_release")]
pub async fn cancel_release(
    release: i64,
    revision: i64,
    reason: String,
) -> Result<ReleaseView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .cancel_release(&actor().await?, release, revision, &reason)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "deploy_release")]
pub async fn deploy_release(release: i64, revision: i64) -> Result<DeploymentView, AppError> {
    crate::error::respond(
        async move {
            let actor = actor().await?;
            let prepared = state()?
                .engine
                .prepare_release_deploy(&actor, release, revision, &Default::default())
                .await?;
            // A held deploy answers at once; its page has Promote and Abort.
            crate::hold::run_until_held(&actor, prepared).await
        }
        .await,
    )
}

/// A refused action's answer; what succeeded shows in the page itself.
fn error_line<T>(r: Option<Result<T, AppError>>) -> Option<AnyView> {
    r?.err().map(|e| action_result(e, ResultIds::PAGE))
}

#[component]
pub fn ReleasesListPage() -> impl IntoView {
    let request = crate::flash::action::<RequestRelease>();
    let page = Resource::new(|| (), |_| list_releases());
    view! {
        {page_shell(page, None, move |p| {
            let may_request = p.me.role != Role::Viewer;
            let contents = view! {
                <h1>"Releases"</h1>
                {may_request.then(|| view! { <RequestForm action=request environments=p.environments.clone()/> })}
                <ReleaseTable rows=p.releases/>
            };
            (p.me, contents)
        })}
    }
}

#[component]
fn RequestForm(
    action: ServerAction<RequestRelease>,
    environments: Vec<EnvironmentVersions>,
) -> impl IntoView {
    // The version field suggests the chosen environment's versions: the
    // first environment's as rendered, then `VersionSuggestions` follows the
    // choice in the browser.
    let first = environments
        .first()
        .map(|e| format!("versions-{}", e.name))
        .unwrap_or_default();
    let options = environments
        .iter()
        .map(|e| view! { <option value=e.name.clone()>{e.name.clone()}</option> })
        .collect_view();
    let lists = environments
        .into_iter()
        .map(|e| {
            let id = format!("versions-{}", e.name);
            let items = e
                .versions
                .into_iter()
                .map(|v| view! { <option value=v/> })
                .collect_view();
            view! { <datalist id=id data-versions-of=e.name>{items}</datalist> }
        })
        .collect_view();
    view! {
        <section class="request">
            <h2>"Request a release"</h2>
            <ActionForm action attr:class="stacked">
                <label>"Environment"
                    <select name="environment" data-testid="request-environment">
                        {options}
                    </select>
                </label>
                <label>"Version"
                    <input type="text" name="version" placeholder="e.g. v2" autocomplete="off"
                        list=first data-testid="request-version"/>
                </label>
                {lists}
                <VersionSuggestions/>
                <label>"Notes" <TextArea name="notes" rows=3 attr:data-testid="request-notes"/></label>
                <label>"Migration SQL (optional)"
                    <TextArea name="migration_sql" rows=4 attr:placeholder="ALTER TABLE … ADD COLUMN … DEFAULT …" attr:data-testid="request-sql"/>
                </label>
                <button type="submit" data-testid="request-submit" disabled=move || action.pending().get()>"Request release"</button>
            </ActionForm>
            {move || error_line(action.value().get())}
        </section>
    }
}

/// Points the version field's suggestions (`list`) at the datalist of the
/// environment chosen: behaviour only, over the server-rendered form, so the
/// WASM carries no view of it.
#[island]
fn VersionSuggestions() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        use leptos::wasm_bindgen::{closure::Closure, JsCast};
        let doc = document();
        let field = |id: &str| {
            doc.query_selector(&format!("[data-testid={id}]"))
                .ok()
                .flatten()
        };
        let (Some(select), Some(input)) = (field("request-environment"), field("request-version"))
        else {
            return;
        };
        let follow = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            let chosen = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
                .map(|s| s.value());
            if let Some(chosen) = chosen {
                let _ = input.set_attribute("list", &format!("versions-{chosen}"));
            }
        });
        let _ = select.add_event_listener_with_callback("change", follow.as_ref().unchecked_ref());
        // Lives as long as the page (every navigation loads a new document).
        follow.forget();
    });
}

#[component]
fn ReleaseTable(rows: Vec<ReleaseSummary>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="notice">"No releases requested yet."</p> }.into_any();
    }
    view! {
        <table class="history" data-testid="releases">
            <thead>
                <tr>
                    <th>"#"</th><th>"Environment"</th><th>"Version"</th><th>"Requested by"</th>
                    <th>"When"</th><th>"Signatures"</th><th>"Status"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|r| {
                        let status = match (r.status, &r.last_deployment) {
                            (ReleaseStatus::Cancelled, _) => "cancelled".to_string(),
                            (_, Some(d)) => format!("deploy {d}"),
                            (_, None) if r.signatures_complete => "signed".to_string(),
                            _ => "awaiting sign-off".to_string(),
                        };
                        view! {
                            <tr data-testid="release-row" data-release=r.id>
                                <td><a href=format!("/releases/{}", r.id)>{r.id}</a></td>
                                <td>{r.environment}</td>
                                <td><a href=format!("/releases/{}", r.id)>{r.version}</a></td>
                                <td>{r.requested_by}</td>
                                <td>{short_time(&r.created_at)}</td>
                                <td>{format!("{}/{}", r.signed, r.to_sign)}</td>
                                <td>{status}</td>
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
pub fn ReleaseDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let sign = crate::flash::action::<SignItem>();
    let revoke = crate::flash::action::<RevokeSignoff>();
    let edit = crate::flash::action::<EditRelease>();
    let cancel = crate::flash::action::<CancelRelease>();
    let deploy = crate::flash::action::<DeployRelease>();
    let page = Resource::new(id, load_release);
    page_shell(page, None, move |p| {
        let contents = view! {
            <ReleaseHeader release=p.release.clone()/>
            {move || error_line(sign.value().get())}
            {move || error_line(revoke.value().get())}
            {move || error_line(edit.value().get())}
            {move || error_line(cancel.value().get())}
            <Checklist release=p.release.clone() sign revoke/>
            <DeployBox release=p.release.clone() deploy/>
            {p.release.can_edit.then(|| view! { <EditForms release=p.release.clone() edit cancel/> })}
        };
        (p.me, contents)
    })
}

#[component]
fn ReleaseHeader(release: ReleaseView) -> impl IntoView {
    let status = match release.status {
        ReleaseStatus::Cancelled => "cancelled",
        ReleaseStatus::Open if release.deployable => "approved",
        ReleaseStatus::Open => "awaiting sign-off",
    };
    view! {
        <h1>{format!("Release #{} — {} to {}", release.id, release.version, release.environment)}</h1>
        <dl class="release-facts">
            <dt>"Status"</dt><dd data-testid="release-status">{status}</dd>
            <dt>"Requested by"</dt><dd data-testid="release-requester">{release.requested_by.clone()}</dd>
            <dt>"Requested"</dt><dd>{short_time(&release.created_at)}</dd>
            <dt>"Revision"</dt><dd data-testid="release-revision">{release.revision}</dd>
            <dt>"Artifact"</dt><dd><code>{release.artifact.clone()}</code></dd>
            <dt>"Notes"</dt><dd class="pre">{release.notes.clone()}</dd>
        </dl>
        {(!release.migration_sql.trim().is_empty()).then(|| view! {
            <h3>"Migration SQL"</h3>
            <pre class="sql" data-testid="release-sql">{release.migration_sql.clone()}</pre>
        })}
    }
}

#[component]
fn Checklist(
    release: ReleaseView,
    sign: ServerAction<SignItem>,
    revoke: ServerAction<RevokeSignoff>,
) -> impl IntoView {
    if release.items.is_empty() {
        return view! { <p class="notice">"This environment has no checklist: nothing to sign."</p> }.into_any();
    }
    let id = release.id;
    let revision = release.revision;
    view! {
        <h2>"Pre-deployment checklist"</h2>
        <ol class="checklist" data-testid="checklist">
            {release
                .items
                .into_iter()
                .map(|item| view! { <ChecklistRow item release=id revision sign revoke/> })
                .collect_view()}
        </ol>
    }
    .into_any()
}

#[component]
fn ChecklistRow(
    item: ChecklistItemView,
    release: i64,
    revision: i64,
    sign: ServerAction<SignItem>,
    revoke: ServerAction<RevokeSignoff>,
) -> impl IntoView {
    let state_class = match item.state {
        ItemState::Signed | ItemState::Verified => "ok",
        ItemState::Pending => "pending",
        ItemState::Failed | ItemState::NotVerified => "bad",
    };
    let kind = match item.auto_check {
        Some(_) => "automatic".to_string(),
        None => format!("signed by a {} or higher", item.required_role),
    };
    let requirement = if item.required {
        "required"
    } else {
        "optional"
    };
    let signoff = item.signoff.clone().map(|s| {
        view! {
            <p class="signoff" data-testid="signoff">
                {format!("Signed by {} at {} — valid until {}", s.signed_by, short_time(&s.signed_at), short_time(&s.expires_at))}
                {(!s.note.is_empty()).then(|| view! { <q>{s.note.clone()}</q> })}
            </p>
        }
    });
    let item_id = item.id;
    view! {
        <li class=format!("item {state_class}") data-item=item.title.clone()>
            <div class="item-head">
                <strong>{item.title.clone()}</strong>
                <span class="state" data-testid="item-state">{item.state.as_str()}</span>
                <span class="meta">{format!("{requirement} · {kind}")}</span>
            </div>
            <p class="description">{item.description.clone()}</p>
            <p class="summary" data-testid="item-summary">{item.summary.clone()}</p>
            {(!item.evidence.is_empty()).then(|| view! {
                <ul class="evidence" data-testid="item-evidence">
                    {item.evidence.iter().map(|e| view! { <li><code>{e.clone()}</code></li> }).collect_view()}
                </ul>
            })}
            {signoff}
            {item.can_sign.then(|| view! {
                <ActionForm action=sign attr:class="inline">
                    <input type="hidden" name="release" value=release/>
                    <input type="hidden" name="item" value=item_id/>
                    <input type="hidden" name="revision" value=revision/>
                    <input type="text" name="note" placeholder="note (what you checked)" data-testid="sign-note"/>
                    <button type="submit" data-testid="sign">"Sign"</button>
                </ActionForm>
            })}
            {item.can_revoke.then(|| view! {
                <ActionForm action=revoke attr:class="inline">
                    <input type="hidden" name="release" value=release/>
                    <input type="hidden" name="item" value=item_id/>
                    <input type="text" name="reason" placeholder="why revoke" data-testid="revoke-reason"/>
                    <button type="submit" class="danger" data-testid="revoke">"Revoke"</button>
                </ActionForm>
            })}
        </li>
    }
}

#[component]
fn DeployBox(release: ReleaseView, deploy: ServerAction<DeployRelease>) -> impl IntoView {
    let blockers = release.blockers.clone();
    let result = move || {
        let (class, text) = match deploy.value().get()? {
            Ok(d) if d.status == DeploymentStatus::Succeeded => (
                "result ok",
                format!(
                    "deployment #{} succeeded: {}",
                    d.id,
                    d.message.unwrap_or_default()
                ),
            ),
            Ok(d) if d.status == DeploymentStatus::Running => (
                "result",
                format!(
                    "deployment #{} is held at preview: promote or abort it on /deployments/{}",
                    d.id, d.id
                ),
            ),
            Ok(d) => (
                "result error",
                format!(
                    "deployment #{} failed: {}",
                    d.id,
                    d.message.unwrap_or_default()
                ),
            ),
            Err(e) => ("result error", e.to_string()),
        };
        Some(view! { <p class=class role="status" data-testid="action-result">{text}</p> })
    };
    view! {
        <section class="deploy-box">
            <h2>"Deploy"</h2>
            {(!blockers.is_empty()).then(|| view! {
                <ul class="blockers" data-testid="blockers">
                    {blockers.iter().map(|b| view! { <li>{b.clone()}</li> }).collect_view()}
                </ul>
            })}
            // Each deployment of this release, linked: where its steps,
            // its live progress or its hold are.
            {release.deployments.iter().map(|(id, status)| view! {
                <p class="notice">
                    <a href=format!("/deployments/{id}") data-testid="release-deployment">{format!("Deployment #{id}")}</a>
                    {format!(": {status}")}
                </p>
            }).collect_view()}
            {if release.can_deploy {
                view! {
                    <ActionForm action=deploy>
                        <input type="hidden" name="release" value=release.id/>
                        <input type="hidden" name="revision" value=release.revision/>
                        <button type="submit" data-testid="deploy-release" disabled=move || deploy.pending().get()>
                            {move || if deploy.pending().get() { "Deploying…" } else { "Deploy this release" }}
                        </button>
                    </ActionForm>
                }
                .into_any()
            } else if release.deployable {
                view! { <p class="notice">"Approved. A deployer can deploy it."</p> }.into_any()
            } else {
                view! { <p class="notice" data-testid="not-deployable">"Not deployable until every required item is satisfied."</p> }.into_any()
            }}
            {result}
        </section>
    }
}

#[component]
fn EditForms(
    release: ReleaseView,
    edit: ServerAction<EditRelease>,
    cancel: ServerAction<CancelRelease>,
) -> impl IntoView {
    view! {
        <section class="edit">
            <h2>"Edit"</h2>
            <p class="notice">"Saving a change voids every signature: signers approved what they saw."</p>
            <ActionForm action=edit attr:class="stacked">
                <input type="hidden" name="release" value=release.id/>
                <input type="hidden" name="revision" value=release.revision/>
                <label>"Notes" <TextArea name="notes" rows=3 value=release.notes.clone() attr:data-testid="edit-notes"/></label>
                <label>"Migration SQL" <TextArea name="migration_sql" rows=4 value=release.migration_sql.clone() attr:data-testid="edit-sql"/></label>
                <button type="submit" data-testid="edit-submit">"Save changes"</button>
            </ActionForm>
            <ActionForm action=cancel attr:class="inline">
                <input type="hidden" name="release" value=release.id/>
                <input type="hidden" name="revision" value=release.revision/>
                <input type="text" name="reason" placeholder="why cancel" data-testid="cancel-reason"/>
                <button type="submit" class="danger" data-testid="cancel-release">"Cancel release"</button>
            </ActionForm>
        </section>
    }
}
