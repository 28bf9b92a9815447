//! A deploy held at preview, on its deployment's page and on the
//! dashboard (`HeldOnDashboard`): where the new
//! release can be looked at (the preview address), until when, and —
//! for deployers — Promote and Abort, and the canary form: a share of new
//! users and testers (by header or cookie) sent to the held release on the
//! public address. The engine decides who may (the deploy role on the
//! environment) and whether the deploy is still held; the buttons are only
//! a convenience.

use crate::components::{action_result, ResultIds};
use crate::error::AppError;
use crate::format::short_time;
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::{CanarySetting, HoldView};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, state};

#[server(endpoint = "promote_hold")]
pub async fn promote_hold(deployment: i64) -> Result<HoldView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .promote_hold(&actor().await?, deployment)
                .await?)
        }
        .await,
    )
}

#[server(endpoint = "abort_hold")]
pub async fn abort_hold(deployment: i64, reason: String) -> Result<HoldView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .abort_hold(&actor().await?, deployment, &reason)
                .await?)
        }
        .await,
    )
}

/// The canary form's post: plain fields, parsed here (`percent` 0–100,
/// `tester_header` as `Name: value`, `tester_cookie` as `name=value`, both
/// optional); the engine checks the rest and names the field it refuses.
#[server(endpoint = "set_canary")]
pub async fn set_canary(
    deployment: i64,
    percent: String,
    tester_header: String,
    tester_cookie: String,
) -> Result<HoldView, AppError> {
    crate::error::respond(
        async move {
            let setting = canary_setting(&percent, &tester_header, &tester_cookie)?;
            Ok(state()?
                .engine
                .set_canary(&actor().await?, deployment, &setting)
                .await?)
        }
        .await,
    )
}

/// The deploy of environment `name` held at preview, if one is: its id and
/// its hold, for the dashboard's panel. The engine checks that the person
/// may view the environment before it looks anything up.
#[server(endpoint = "held_deploy")]
pub async fn held_deploy(name: String) -> Result<Option<(i64, HoldView)>, AppError> {
    crate::error::respond(
        async move {
            let engine = &state()?.engine;
            let actor = actor().await?;
            let Some(lock) = engine.environment(&actor, &name).await?.lock else {
                return Ok(None);
            };
            let d = engine.deployment(&actor, lock.deployment_id).await?;
            let running = d.deployment.status == model::DeploymentStatus::Running;
            Ok(d.hold
                .filter(|h| running && h.waiting())
                .map(|h| (d.deployment.id, h)))
        }
        .await,
    )
}

/// The form's three fields as a setting, or which one is malformed.
#[cfg(any(feature = "ssr", test))]
pub(crate) fn canary_setting(
    percent: &str,
    header: &str,
    cookie: &str,
) -> Result<CanarySetting, AppError> {
    let percent = match percent.trim() {
        "" => 0,
        p => p.parse::<u8>().ok().filter(|p| *p <= 100).ok_or_else(|| {
            AppError::invalid("percent", "the share is a whole number from 0 to 100")
        })?,
    };
    let pair = |field: &str, text: &str, sep: char, shape: &str| -> Result<_, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let (name, value) = text
            .split_once(sep)
            .ok_or_else(|| AppError::invalid(field, format!("write it as {shape}")))?;
        Ok(Some(model::NameValue {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
        }))
    };
    Ok(CanarySetting {
        percent,
        header: pair("tester_header", header, ':', "Name: value")?,
        cookie: pair("tester_cookie", cookie, '=', "name=value")?,
    })
}

/// The setting in words, as the panel shows it.
pub(crate) fn canary_text(c: &CanarySetting) -> String {
    let mut parts = vec![format!("{} % of new users", c.percent)];
    if let Some(h) = &c.header {
        parts.push(format!("testers with header {}: {}", h.name, h.value));
    }
    if let Some(k) = &c.cookie {
        parts.push(format!("testers with cookie {}={}", k.name, k.value));
    }
    parts.join(", ")
}

/// Runs a prepared deploy and answers when it ends — or as soon as it is
/// held at preview, with the running deployment: a page's request must not
/// wait for a deployer's decision (the deploy goes on either way).
#[cfg(feature = "ssr")]
pub async fn run_until_held(
    actor: &engine::Actor,
    prepared: engine::pipeline::PreparedDeploy,
) -> Result<model::DeploymentView, AppError> {
    let engine = state()?.engine.clone();
    let id = prepared.deployment_id();
    let runner = engine.clone();
    let mut run = tokio::spawn(async move { runner.execute(prepared).await });
    loop {
        tokio::select! {
            ended = &mut run => {
                let done = ended
                    .map_err(|e| engine::Error::Internal(format!("deploy task: {e}")))?;
                return Ok(done?);
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                let d = engine.deployment(actor, id).await?;
                if d.hold.as_ref().is_some_and(|h| h.waiting())
                    && d.deployment.status == model::DeploymentStatus::Running
                {
                    return Ok(d.deployment);
                }
            }
        }
    }
}

/// The two decisions and the canary, made once per page.
#[derive(Clone, Copy)]
pub struct HoldActions {
    pub promote: ServerAction<PromoteHold>,
    pub abort: ServerAction<AbortHold>,
    pub canary: ServerAction<SetCanary>,
}

impl HoldActions {
    pub fn new() -> Self {
        HoldActions {
            promote: crate::flash::action(),
            abort: crate::flash::action(),
            canary: crate::flash::action(),
        }
    }
}

impl Default for HoldActions {
    fn default() -> Self {
        Self::new()
    }
}

fn decided_text(h: &HoldView) -> String {
    let by = h.decided_by.clone().unwrap_or_else(|| "system".into());
    match h.decision.as_deref() {
        Some("promote") => format!("Promoted by {by}"),
        Some("timeout") => format!("Aborted: the hold timed out at {}", short_time(&h.until)),
        _ => format!("Aborted by {by}: {}", h.reason.clone().unwrap_or_default()),
    }
}

/// "Held at preview — <address>, until <time>" while waiting (with the
/// buttons for deployers while the deployment runs); how it ended after.
#[component]
pub fn HoldPanel(
    deployment: i64,
    hold: HoldView,
    running: bool,
    may_decide: bool,
    actions: HoldActions,
) -> impl IntoView {
    let waiting = hold.waiting() && running;
    let address = hold.preview_url.clone();
    let heading = if waiting {
        "Held at preview".to_string()
    } else {
        decided_text(&hold)
    };
    let busy = move || {
        actions.promote.pending().get()
            || actions.abort.pending().get()
            || actions.canary.pending().get()
    };
    let current = hold.canary.clone().filter(|c| !c.is_off());
    let canary_line = current.as_ref().map(|c| {
        let lead = if waiting {
            "Canary: "
        } else {
            "Canary while held: "
        };
        view! { <p data-testid="hold-canary">{format!("{lead}{}", canary_text(c))}</p> }
    });
    let shown = hold.canary.clone().unwrap_or_default();
    let header_now = shown
        .header
        .map(|h| format!("{}: {}", h.name, h.value))
        .unwrap_or_default();
    let cookie_now = shown
        .cookie
        .map(|c| format!("{}={}", c.name, c.value))
        .unwrap_or_default();
    let canary_form = (waiting && may_decide).then(|| {
        view! {
            <ActionForm action=actions.canary attr:class="hold-canary-form">
                <input type="hidden" name="deployment" value=deployment.to_string()/>
                <fieldset data-testid="hold-canary-form">
                    <legend>"Canary on the public address"</legend>
                    <label>
                        "New users to the held release (%) "
                        <input type="number" name="percent" min="0" max="100" step="1"
                            value=shown.percent.to_string() data-testid="hold-canary-percent"/>
                    </label>
                    <label>
                        "Testers' header "
                        <input type="text" name="tester_header" maxlength="330" placeholder="X-Tester: me"
                            value=header_now data-testid="hold-canary-header"/>
                    </label>
                    <label>
                        "Testers' cookie "
                        <input type="text" name="tester_cookie" maxlength="330" placeholder="tester=yes"
                            value=cookie_now data-testid="hold-canary-cookie"/>
                    </label>
                    <p class="hint">"Each new user keeps the release they got (a cookie). Requests with the header or cookie always reach the held release. 0 % and empty fields end it; promote and abort end it too."</p>
                    <button type="submit" data-testid="hold-canary-save" disabled=busy>"Set canary"</button>
                </fieldset>
            </ActionForm>
        }
    });
    let canary_said = move || {
        actions.canary.value().get().map(|r| {
            action_result(
                r.map(|h| match h.canary.filter(|c| !c.is_off()) {
                    Some(c) => format!("Canary set: {}", canary_text(&c)),
                    None => "Canary off: every user is on the current release".to_string(),
                }),
                ResultIds::PAGE,
            )
        })
    };
    let buttons = (waiting && may_decide).then(|| {
        view! {
            <div class="hold-actions">
                <ActionForm action=actions.promote attr:class="hold-promote">
                    <input type="hidden" name="deployment" value=deployment.to_string()/>
                    <button type="submit" data-testid="hold-promote" disabled=busy>"Promote: switch users to it"</button>
                </ActionForm>
                <ActionForm action=actions.abort attr:class="hold-abort">
                    <input type="hidden" name="deployment" value=deployment.to_string()/>
                    <details class="rollback-confirm" data-testid="hold-abort">
                        <summary data-testid="hold-abort-open">"Abort…"</summary>
                        <p>"The new release is stopped; users stay on the version they have."</p>
                        <label>
                            "Reason "
                            <input type="text" name="reason" required placeholder="why it is not promoted" data-testid="hold-abort-reason"/>
                        </label>
                        <button type="submit" class="danger" data-testid="hold-abort-confirm" disabled=busy>"Confirm: abort this deploy"</button>
                    </details>
                </ActionForm>
            </div>
        }
    });
    let refused = move || {
        let promote = actions.promote.value().get().and_then(|r| r.err());
        let abort = actions.abort.value().get().and_then(|r| r.err());
        promote.or(abort).map(|e| action_result(e, ResultIds::PAGE))
    };
    view! {
        <section class="hold" data-testid="hold">
            <h2>{heading}</h2>
            <p>
                {if waiting { "The new release answers on the preview address " } else { "Preview address: " }}
                <a href=crate::links::web_link(&address) data-testid="hold-preview">{address.clone()}</a>
                {waiting.then(|| format!(", until {} — not decided by then, it is aborted.", short_time(&hold.until)))}
            </p>
            {canary_line}
            {buttons}
            {canary_form}
            {canary_said}
            {refused}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_fields_parse_or_name_the_field() {
        let s = canary_setting(" 25 ", "X-Tester: me", "tester=yes").unwrap();
        assert_eq!(s.percent, 25);
        assert_eq!(s.header.as_ref().unwrap().name, "X-Tester");
        assert_eq!(s.header.as_ref().unwrap().value, "me");
        assert_eq!(s.cookie.as_ref().unwrap().value, "yes");
        assert_eq!(
            canary_setting("", "", "").unwrap(),
            CanarySetting::default()
        );
        let field = |r: Result<CanarySetting, AppError>| match r {
            Err(AppError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(canary_setting("101", "", "")), "percent");
        assert_eq!(field(canary_setting("-1", "", "")), "percent");
        assert_eq!(field(canary_setting("5", "X-Tester", "")), "tester_header");
        assert_eq!(field(canary_setting("5", "", "tester")), "tester_cookie");
        assert_eq!(
            canary_text(&s),
            "25 % of new users, testers with header X-Tester: me, testers with cookie tester=yes"
        );
    }
}

/// The dashboard's copy of a held deploy's panel: whoever started the deploy
/// from the dashboard promotes, aborts or sets the canary there. Server HTML
/// in a region the dashboard's `LiveRefresh` swaps; a region with the focus
/// in it is left alone, so a canary being typed survives the refreshes.
#[component]
pub fn HeldOnDashboard(name: String, may_decide: bool) -> impl IntoView {
    let actions = HoldActions::new();
    let held = Resource::new(|| (), move |_| held_deploy(name.clone()));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                held.await.ok().flatten().map(|(deployment, hold)| {
                    view! {
                        <div class="dashboard-hold" data-testid="dashboard-hold">
                            <HoldPanel deployment hold running=true may_decide actions/>
                        </div>
                    }
                })
            })}
        </Suspense>
    }
}
