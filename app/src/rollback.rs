//! The dashboard's rollback form, which says what it will do before anyone
//! presses it: the version and slot users go back to, from which, whether
//! that slot starts again first, why it cannot when there is no standby, and
//! that it would undo a rollback made minutes ago. The plan is computed on
//! the server ([`plan_rollback`]), so the page has it before the WASM
//! arrives; the confirmation is a `<details>` element, so it works without
//! JavaScript; the server decides anyway (`Engine::rollback`).

use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::html;
use leptos::prelude::*;
use model::{DeploymentStatus, DeploymentView, EnvironmentView, SlotColor};
use serde::{Deserialize, Serialize};

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

/// What pressing Roll back would do now, and what to know first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackPlan {
    pub target: RollbackTarget,
    /// Set when the last change of what users get was a rollback made
    /// within [`RECENT_MINUTES`]: rolling back again would undo it.
    pub undoes: Option<String>,
}

/// How long after a rollback a second one is called out as undoing it.
pub const RECENT_MINUTES: i64 = 15;

/// The plan of a rollback of `environment` now (the engine checks the role
/// to read it, as for the dashboard).
#[server(endpoint = "plan_rollback")]
pub async fn plan_rollback(environment: String) -> Result<RollbackPlan, AppError> {
    crate::error::respond(
        async move {
            let engine = &state()?.engine;
            let actor = actor().await?;
            let env = engine.environment(&actor, &environment).await?;
            let history = engine.history(&actor, &environment, 10).await?;
            Ok(RollbackPlan {
                target: rollback_target(&env),
                undoes: recent_rollback(&history, chrono::Utc::now()),
            })
        }
        .await,
    )
}

/// The warning for a rollback that would undo the one made at most
/// [`RECENT_MINUTES`] before `now`: the newest change of what users get
/// (`history` is newest first) was that rollback.
#[cfg(feature = "ssr")]
pub fn recent_rollback(
    history: &[DeploymentView],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let last = history
        .iter()
        .find(|d| d.status == DeploymentStatus::Succeeded)?;
    if last.kind != model::DeploymentKind::Rollback {
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc3339(last.finished_at.as_deref()?).ok()?;
    let minutes = (now - at.with_timezone(&chrono::Utc)).num_minutes();
    if !(0..RECENT_MINUTES).contains(&minutes) {
        return None;
    }
    let ago = match minutes {
        0 => "less than a minute ago".to_string(),
        1 => "1 minute ago".to_string(),
        m => format!("{m} minutes ago"),
    };
    let undone = last.from_version.as_deref().unwrap_or("the version before");
    Some(format!(
        "{} rolled users back from {undone} to {} {ago} (#{}): rolling back now returns them to {undone}, the version that was rolled back.",
        last.requested_by,
        last.to_version.as_deref().unwrap_or("the standby"),
        last.id,
    ))
}

/// What a rollback would do now, read from the environment's slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// The rollback form of one environment. `plan` follows the status the
/// dashboard refreshes; the reason typed stays while it refreshes, and is
/// cleared (and the confirmation closed) after a rollback succeeded.
#[component]
pub fn RollbackForm(
    name: String,
    rollback: ServerAction<Rollback>,
    plan: Signal<Option<RollbackPlan>>,
) -> impl IntoView {
    let target = Signal::derive(move || plan.get().map(|p| p.target));
    let undoes = move || {
        plan.get().and_then(|p| p.undoes).map(|w| {
            view! { <p class="warning" role="note" data-testid="rollback-undoes">{w}</p> }
        })
    };
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
    let plan_text = move || match target.get() {
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
                <p data-testid="rollback-plan" class:error=blocked>{plan_text}</p>
                {undoes}
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
            frozen: None,
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

    #[cfg(feature = "ssr")]
    fn run(
        id: i64,
        kind: model::DeploymentKind,
        status: DeploymentStatus,
        from: &str,
        to: &str,
        at: &str,
    ) -> DeploymentView {
        DeploymentView {
            id,
            environment: "production".into(),
            kind,
            status,
            from_version: Some(from.into()),
            to_version: Some(to.into()),
            from_slot: None,
            to_slot: None,
            requested_by: "dana".into(),
            reason: None,
            message: None,
            started_at: at.into(),
            finished_at: Some(at.into()),
            duration_ms: Some(10),
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn warns_only_when_rolling_back_would_undo_a_recent_rollback() {
        use model::DeploymentKind::{Deploy, Rollback};
        use DeploymentStatus::{Failed, Succeeded};
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T07:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let rolled_back = run(
            7,
            Rollback,
            Succeeded,
            "v2+slow",
            "v2",
            "2026-12-05T06:57:00Z",
        );
        let deployed = run(
            6,
            Deploy,
            Succeeded,
            "v2",
            "v2+slow",
            "2026-12-05T06:50:00Z",
        );
        let w = recent_rollback(&[rolled_back.clone(), deployed.clone()], now).unwrap();
        assert!(
            w.contains("dana rolled users back from v2+slow to v2 3 minutes ago (#7)"),
            "{w}"
        );
        assert!(w.contains("returns them to v2+slow"), "{w}");
        // A failed attempt since does not change what users get.
        let failed = run(8, Deploy, Failed, "v2", "v3", "2026-12-05T06:59:00Z");
        assert!(recent_rollback(&[failed, rolled_back.clone()], now).is_some());
        // Older than the window, or the last change was a deploy: no warning.
        let later = now + chrono::Duration::minutes(RECENT_MINUTES);
        assert_eq!(recent_rollback(&[rolled_back], later), None);
        assert_eq!(recent_rollback(&[deployed], now), None);
        assert_eq!(recent_rollback(&[], now), None);
    }
}
