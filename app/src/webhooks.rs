//! An environment's webhooks (admins): subscribe a URL to events, see each
//! subscription's delivery log (time, event, attempts, the receiver's answer,
//! the next attempt) and send a delivery again. A new subscription's signing
//! secret is shown once, with a Copy button.
// The browser's stub of `add_webhook` takes one argument per form field
// (one per event checkbox), and `#[server]` does not copy the allow onto it.
#![cfg_attr(not(feature = "ssr"), allow(clippy::too_many_arguments))]

use crate::components::{action_result, page_shell, CopyButton, Outcome, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use model::{
    CreatedWebhook, DeliveryStatus, DeliveryView, SessionUser, WebhookEvent, WebhookFormat,
    WebhookView,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, signed_in, state};
#[cfg(feature = "ssr")]
use crate::fields::choice;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhooksPage {
    pub me: SessionUser,
    pub environment: String,
    /// Each subscription with its latest deliveries, newest first.
    pub webhooks: Vec<(WebhookView, Vec<DeliveryView>)>,
}

#[server(endpoint = "load_webhooks")]
pub async fn load_webhooks(environment: String) -> Result<WebhooksPage, AppError> {
    crate::error::respond(
        async move {
            let engine = state()?.engine;
            let (actor, me) = signed_in().await?;
            let mut webhooks = Vec::new();
            for w in engine.webhooks(&actor, &environment).await? {
                let log = engine.webhook_deliveries(&actor, w.id).await?;
                webhooks.push((w, log));
            }
            Ok(WebhooksPage {
                me,
                environment,
                webhooks,
            })
        }
        .await,
    )
}

/// The form field of each event's checkbox.
fn field(e: WebhookEvent) -> String {
    e.as_str().replace('.', "_")
}

/// Subscribes `url`; one checkbox per event (none ticked: every event).
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "add_webhook")]
pub async fn add_webhook(
    environment: String,
    url: String,
    format: String,
    #[server(default)] allow_private: Option<String>,
    #[server(default)] release_requested: Option<String>,
    #[server(default)] signature_needed: Option<String>,
    #[server(default)] item_signed: Option<String>,
    #[server(default)] deploy_started: Option<String>,
    #[server(default)] deploy_succeeded: Option<String>,
    #[server(default)] deploy_failed: Option<String>,
    #[server(default)] rollback_automatic: Option<String>,
    #[server(default)] lock_broken: Option<String>,
    #[server(default)] standby_expired: Option<String>,
) -> Result<CreatedWebhook, AppError> {
    crate::error::respond(
        async move {
            // Before the form is read: a refused role learns nothing from it.
            let actor = authorized(engine::Action::ManageEnvironments, None).await?;
            let ticked = [
                release_requested,
                signature_needed,
                item_signed,
                deploy_started,
                deploy_succeeded,
                deploy_failed,
                rollback_automatic,
                lock_broken,
                standby_expired,
            ];
            let events = WebhookEvent::ALL
                .into_iter()
                .zip(ticked)
                .filter(|(_, on)| on.as_deref() == Some("on"))
                .map(|(e, _)| e)
                .collect();
            let new = model::NewWebhook {
                url,
                events,
                format: choice("format", &format)?,
                allow_private: allow_private.as_deref() == Some("on"),
            };
            Ok(state()?
                .engine
                .add_webhook(&actor, &environment, &new)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "remove_webhook")]
pub async fn remove_webhook(id: i64) -> Result<WebhookView, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, None).await?;
            Ok(state()?.engine.remove_webhook(&actor, id).await?)
        }
        .await,
    )
}

#[server(endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(delivery: i64) -> Result<DeliveryView, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::ManageEnvironments, None).await?;
            Ok(state()?.engine.redeliver_webhook(&actor, delivery).await?)
        }
        .await,
    )
}

#[component]
pub fn WebhooksDetailPage() -> impl IntoView {
    let params = use_params_map();
    let env = move || params.read().get("name").unwrap_or_default();
    let remove = crate::flash::action::<RemoveWebhook>();
    let redeliver = crate::flash::action::<RedeliverWebhook>();
    let page = Resource::new(env, load_webhooks);
    view! {
        {page_shell(page, None, move |p| {
            let environment = p.environment.clone();
            let contents = view! {
                <h1>{format!("Webhooks of {}", p.environment)}</h1>
                <p class="notice">
                    "Each subscription gets the events it asks for as a signed POST (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). A delivery that does not get a 2xx answer is tried again, waiting 10 s, then twice as long each time (at most an hour), for 24 hours. Redirects are not followed; an attempt may take 10 s."
                </p>
                <WebhookAdd environment=environment/>
                <h2>"Subscriptions and deliveries"</h2>
                // Outside the region it refreshes: a region with the focus
                // in it is left alone.
                <crate::live::RefreshButton regions=vec![WEBHOOKS_REGION.to_string()]
                    label="Refresh the delivery log".to_string() testid="webhooks-refresh".to_string()/>
                <div id=WEBHOOKS_REGION class="region">
                {if p.webhooks.is_empty() {
                    view! { <p class="notice" data-testid="no-webhooks">"No webhooks yet."</p> }.into_any()
                } else {
                    p.webhooks
                        .into_iter()
                        .map(|(w, log)| view! { <Subscription webhook=w log remove redeliver/> })
                        .collect_view()
                        .into_any()
                }}
                </div>
                <p><a href=format!("/environments/{}/settings", p.environment)>"Back to the environment's settings"</a></p>
            };
            (p.me, contents)
        })}
        {move || removed(remove.value().get())}
        {move || redelivered(redeliver.value().get())}
    }
}

/// The id of the subscriptions and their delivery logs: fetched again after
/// an add, or when asked.
const WEBHOOKS_REGION: &str = "webhooks-region";

/// The add form and the signing secret it shows once: an island, as the
/// secret never passes through the session (`flash::SHOWN_ONCE`).
#[island]
fn WebhookAdd(environment: String) -> impl IntoView {
    let add = crate::flash::action::<AddWebhook>();
    Effect::new(move |_| {
        if matches!(add.value().get(), Some(Ok(_))) {
            crate::live::refresh_now(&[WEBHOOKS_REGION]);
        }
    });
    view! {
        <WebhookForm environment add/>
        {move || created(add.value().get())}
    }
}

#[component]
fn WebhookForm(environment: String, add: ServerAction<AddWebhook>) -> impl IntoView {
    view! {
        <ActionForm action=add attr:class="add-webhook" attr:data-testid="add-webhook">
            <input type="hidden" name="environment" value=environment/>
            <label>"URL" <input type="url" name="url" required maxlength="2000" autocomplete="off"
                placeholder="https://hooks.example.com/switchyard" data-testid="webhook-url"/></label>
            <label>"Format"
                <select name="format" data-testid="webhook-format">
                    <option value=WebhookFormat::Standard.as_str() selected>"Standard Webhooks (JSON)"</option>
                    <option value=WebhookFormat::Slack.as_str()>"Slack message"</option>
                </select>
            </label>
            <fieldset class="webhook-events">
                <legend>"Events (none ticked: all)"</legend>
                {WebhookEvent::ALL.into_iter().map(|e| view! {
                    <label class="check">
                        <input type="checkbox" name=field(e) value="on" data-testid=format!("webhook-event-{}", e.as_str())/>
                        " " {e.as_str()}
                    </label>
                }).collect_view()}
            </fieldset>
            <label class="check">
                <input type="checkbox" name="allow_private" value="on" data-testid="webhook-allow-private"/>
                " Allow loopback and private addresses (refused otherwise)"
            </label>
            <button type="submit" data-testid="webhook-add">"Add webhook"</button>
        </ActionForm>
    }
}

#[component]
fn Subscription(
    webhook: WebhookView,
    log: Vec<DeliveryView>,
    remove: ServerAction<RemoveWebhook>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let events = if webhook.events.is_empty() {
        "all events".to_string()
    } else {
        webhook
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let remove_label = format!("Remove the webhook to {}", webhook.url);
    view! {
        <section class="webhook" data-testid="webhook" data-webhook=webhook.id.to_string()>
            <h3><code>{webhook.url.clone()}</code></h3>
            <p>
                {format!("{} · {}", webhook.format.as_str(), events)}
                {webhook.allow_private.then(|| view! { " " <span class="badge">"private targets allowed"</span> })}
                {format!(" · added by {} at {}", webhook.created_by, short_time(&webhook.created_at))}
            </p>
            <details class="confirm">
                <summary data-testid="webhook-remove-open">"Remove…"</summary>
                <p>"It gets nothing more; deliveries still waiting are given up."</p>
                <ActionForm action=remove attr:class="inline">
                    <input type="hidden" name="id" value=webhook.id.to_string()/>
                    <button type="submit" class="danger" aria-label=remove_label data-testid="webhook-remove">"Remove"</button>
                </ActionForm>
            </details>
            {delivery_log(webhook.id, log, redeliver)}
        </section>
    }
}

fn delivery_log(
    webhook: i64,
    log: Vec<DeliveryView>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> AnyView {
    if log.is_empty() {
        return view! { <p class="notice" data-testid="no-deliveries">"No deliveries yet."</p> }
            .into_any();
    }
    let dash = || "—".to_string();
    view! {
        <div class="tokens-scroll" tabindex="0" role="region" aria-label=format!("Deliveries of webhook {webhook}")>
        <table class="deliveries" data-testid="deliveries">
            <thead>
                <tr><th>"Queued"</th><th>"Event"</th><th>"Status"</th><th>"Attempts"</th>
                    <th>"Answer"</th><th>"Next attempt"</th><th></th></tr>
            </thead>
            <tbody>
                {log.into_iter().map(|d| {
                    let answer = match (d.last_status_code, &d.last_error) {
                        (Some(code), None) => code.to_string(),
                        (Some(code), Some(e)) => format!("{code}: {e}"),
                        (None, Some(e)) => e.clone(),
                        (None, None) => dash(),
                    };
                    let status = match d.status {
                        DeliveryStatus::Pending => "waiting",
                        DeliveryStatus::Delivered => "delivered",
                        DeliveryStatus::GaveUp => "given up",
                    };
                    let label = format!("Send delivery {} again", d.id);
                    view! {
                        <tr data-testid="delivery" data-status=d.status.as_str()>
                            <td>{short_time(&d.created_at)}{d.redelivery_of.map(|o| format!(" (again, #{o})"))}</td>
                            <td>{d.event.as_str()}</td>
                            <td>{status}</td>
                            <td>{d.attempts}</td>
                            <td data-testid="delivery-answer">{answer}</td>
                            <td>{d.next_attempt_at.as_deref().map_or_else(dash, short_time)}</td>
                            <td>
                                <ActionForm action=redeliver attr:class="inline">
                                    <input type="hidden" name="delivery" value=d.id.to_string()/>
                                    <button type="submit" aria-label=label data-testid="redeliver">"Redeliver"</button>
                                </ActionForm>
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

/// The secret, once: in a read-only field to select, with a Copy button.
fn created(r: Option<Result<CreatedWebhook, AppError>>) -> Option<AnyView> {
    Some(match r? {
        Ok(c) => {
            let secret = c.secret.clone();
            view! {
                <section class="issued-token" role="status" data-testid="webhook-created">
                    <h2>"Webhook added"</h2>
                    <p>"Copy its signing secret now: it is shown once. Receivers check each delivery's webhook-signature with it."</p>
                    <label>"Signing secret"
                        <input type="text" readonly value=c.secret data-testid="webhook-secret"
                            autocomplete="off" spellcheck="false"/>
                    </label>
                    <CopyButton text=secret testid="copy-webhook-secret"/>
                </section>
            }
            .into_any()
        }
        Err(e) => action_result(e, ResultIds::PAGE),
    })
}

fn removed(r: Option<Result<WebhookView, AppError>>) -> Option<AnyView> {
    let outcome = match r? {
        Ok(w) => Outcome::Done(format!("Webhook to {} removed.", w.url)),
        Err(e) => e.into(),
    };
    Some(action_result(outcome, ResultIds::PAGE))
}

fn redelivered(r: Option<Result<DeliveryView, AppError>>) -> Option<AnyView> {
    let outcome = match r? {
        Ok(d) => Outcome::Done(format!(
            "Delivery #{} queued: it is sent within a second.",
            d.id
        )),
        Err(e) => e.into(),
    };
    Some(action_result(outcome, ResultIds::PAGE))
}
