//! The dashboard's rollback form, which says what it will do before anyone
//! presses it: the version and slot users go back to, from which, whether
//! that slot starts again first, and why it cannot when there is no standby.
//! The confirmation is a `<details>` element, so it works before the WASM
//! arrives; the server decides anyway (`Engine::rollback`).

use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::html;
use leptos::prelude::*;
use model::{DeploymentStatus, DeploymentView, EnvironmentView, SlotColor};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, state};

/// Switches users back to the standby (the engine checks the role, the
/// reason and the standby).
#[server(endpoint = "rollback")]
pub async fn rollback(environment: String, reason: String) -> Result<DeploymentView, AppError> {
    crate::error::respond(
        async move {
            Ok(state()?
                .engine
                .rollback(&actor().await?, &environment, &reason)
                .await?)
        }
        .await,
    )
}

/// What a rollback would do now, read from the environment's slots.
#[derive(Clone, Debug, PartialEq)]
pub enum RollbackTarget {
    /// Users would move from `from` to `to` ("v2 (blue)"); `cold`: the
    /// standby's window stopped it, so it starts again first.
    Ready {
        from: String,
        to: String,
        cold: bool,
    },
    /// Why there is nothing to roll back to.
    Blocked(String),
}

fn slot_text(version: Option<&str>, color: SlotColor) -> String {
    format!("{} ({color})", version.unwrap_or("no version"))
}

/// The same rule the engine applies, told in advance: the slot users are
/// not on must hold a version and be warm, or have been stopped by its
/// standby window (then it starts again).
pub fn rollback_target(env: &EnvironmentView) -> RollbackTarget {
    let Some(active) = env.active else {
        return RollbackTarget::Blocked(
            "Nothing is live yet: there is nothing to go back to.".into(),
        );
    };
    let slot = |color: SlotColor| env.slots.iter().find(|s| s.color == color);
    let (Some(live), Some(standby)) = (slot(active), slot(active.other())) else {
        return RollbackTarget::Blocked("The slots are not known yet.".into());
    };
    let from = slot_text(live.version.as_deref(), active);
    match (
        &standby.version,
        standby.address.is_some(),
        standby.standby_until.is_some(),
    ) {
        (Some(v), true, _) => RollbackTarget::Ready {
            from,
            to: slot_text(Some(v), standby.color),
            cold: false,
        },
        (Some(v), false, true) => RollbackTarget::Ready {
            from,
            to: slot_text(Some(v), standby.color),
            cold: true,
        },
        (Some(v), false, false) => RollbackTarget::Blocked(format!(
            "No standby to roll back to: the {} slot holds {v}, which is not running \
             (its deploy did not go live). Deploy a known-good version instead.",
            standby.color
        )),
        (None, _, _) => RollbackTarget::Blocked(format!(
            "No standby to roll back to: the {} slot has never run a version.",
            standby.color
        )),
    }
}

/// Reasons people give most; free text is still accepted.
const PRESET_REASONS: [&str; 5] = [
    "Error rate up after the deploy",
    "Latency up after the deploy",
    "A feature is broken",
    "Data looks wrong",
    "Asked by the on-call engineer",
];

/// The rollback form of one environment. `target` follows the status the
/// dashboard refreshes; the reason typed stays while it refreshes, and is
/// cleared (and the confirmation closed) after a rollback succeeded.
#[component]
pub fn RollbackForm(
    name: String,
    rollback: ServerAction<Rollback>,
    target: Signal<Option<RollbackTarget>>,
) -> impl IntoView {
    let reason: NodeRef<html::Input> = NodeRef::new();
    let confirm: NodeRef<html::Details> = NodeRef::new();
    Effect::new(move |_| {
        let succeeded = matches!(
            rollback.value().get(),
            Some(Ok(d)) if d.status == DeploymentStatus::Succeeded
        );
        if succeeded {
            if let Some(input) = reason.get_untracked() {
                input.set_value("");
            }
            if let Some(details) = confirm.get_untracked() {
                details.set_open(false);
            }
        }
    });
    let presets_id = format!("rollback-reasons-{name}");
    let blocked = move || matches!(target.get(), Some(RollbackTarget::Blocked(_)));
    let summary = move || match target.get() {
        Some(RollbackTarget::Ready { to, .. }) => format!("Roll back to {to}…"),
        Some(RollbackTarget::Blocked(_)) => "Roll back (no standby)".to_string(),
        None => "Roll back…".to_string(),
    };
    let plan = move || match target.get() {
        Some(RollbackTarget::Ready { from, to, cold }) => {
            let restart = if cold {
                " The standby's window stopped it: it starts again first (seconds, not milliseconds)."
            } else {
                " It is warm: users move at once."
            };
            format!("Users move from {from} to {to}.{restart}")
        }
        Some(RollbackTarget::Blocked(why)) => why,
        None => "Reading the slots…".to_string(),
    };
    let confirm_label = move || match target.get() {
        Some(RollbackTarget::Ready { to, .. }) => format!("Confirm: roll back to {to}"),
        _ => "Roll back".to_string(),
    };
    view! {
        <ActionForm action=rollback attr:class="rollback">
            <input type="hidden" name="environment" value=name/>
            <details class="rollback-confirm" node_ref=confirm data-testid="rollback">
                <summary data-testid="rollback-open">{summary}</summary>
                <p data-testid="rollback-plan" class:error=blocked>{plan}</p>
                <label>
                    "Reason "
                    <input type="text" name="reason" list=presets_id.clone() node_ref=reason
                        placeholder="why users go back" data-testid="rollback-reason"/>
                </label>
                <datalist id=presets_id>
                    {PRESET_REASONS.map(|r| view! { <option value=r></option> }).collect_view()}
                </datalist>
                <button type="submit" class="danger" data-testid="rollback-confirm"
                    disabled=move || rollback.pending().get() || blocked()>
                    {confirm_label}
                </button>
            </details>
        </ActionForm>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{SlotState, SlotView};

    fn slot(color: SlotColor, version: Option<&str>, running: bool, window: bool) -> SlotView {
        SlotView {
            color,
            version: version.map(String::from),
            state: if running {
                SlotState::Healthy
            } else {
                SlotState::Stopped
            },
            active: false,
            address: running.then(|| "127.0.0.1:9000".to_string()),
            last_health_ok: None,
            last_health_message: None,
            last_health_at: None,
            standby_until: window.then(|| "2026-12-04T22:00:00Z".to_string()),
            standby_left_secs: None,
        }
    }

    fn env(active: Option<SlotColor>, green: SlotView) -> EnvironmentView {
        EnvironmentView {
            name: "production".into(),
            app_url: "http://127.0.0.1:8080/".into(),
            preview_url: None,
            active,
            slots: vec![slot(SlotColor::Blue, Some("v2"), true, false), green],
            in_progress: None,
            lock: None,
        }
    }

    #[test]
    fn names_the_version_and_slot_users_go_back_to() {
        let warm = env(
            Some(SlotColor::Blue),
            slot(SlotColor::Green, Some("v1"), true, true),
        );
        assert_eq!(
            rollback_target(&warm),
            RollbackTarget::Ready {
                from: "v2 (blue)".into(),
                to: "v1 (green)".into(),
                cold: false
            }
        );
        let cold = env(
            Some(SlotColor::Blue),
            slot(SlotColor::Green, Some("v1"), false, true),
        );
        assert!(matches!(
            rollback_target(&cold),
            RollbackTarget::Ready { cold: true, .. }
        ));
    }

    #[test]
    fn says_why_when_there_is_no_standby() {
        let failed_deploy = env(
            Some(SlotColor::Blue),
            slot(SlotColor::Green, Some("v3"), false, false),
        );
        match rollback_target(&failed_deploy) {
            RollbackTarget::Blocked(why) => assert!(why.contains("holds v3"), "{why}"),
            other => panic!("{other:?}"),
        }
        let never = env(
            Some(SlotColor::Blue),
            slot(SlotColor::Green, None, false, false),
        );
        assert!(
            matches!(rollback_target(&never), RollbackTarget::Blocked(w) if w.contains("never run"))
        );
        let nothing_live = env(None, slot(SlotColor::Green, None, false, false));
        assert!(
            matches!(rollback_target(&nothing_live), RollbackTarget::Blocked(w) if w.contains("Nothing is live"))
        );
    }
}
