//! Hold at preview, end to end: real `switchyard-demo` slot processes, a real
//! `switchyard-proxy`, the process runtime and a SQLite file. A held deploy
//! waits after its gates with the new slot answering on its address and users
//! still on the old one, until a deployer promotes or aborts it or its
//! timeout aborts it.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::environments;
use engine::{Actor, Engine, Error};
use model::{DeploymentDetail, DeploymentStatus, DeploymentView, Role, SlotColor, StepStatus};
use std::time::{Duration, Instant};

mod support;

use support::harness::{pid_alive, pid_of, step_names, Harness, ENV};

/// v1 live, and the environment set (by an admin, audited) to hold deploys.
async fn held_environment() -> Harness {
    let h = Harness::with_v1_live().await;
    let admin = h.user("ada", Role::Admin).await;
    let mut s = h.engine.pipeline_settings(&admin, ENV).await.unwrap();
    s.hold_at_preview = true;
    s.hold_timeout_ms = 10 * 60_000;
    let after = h
        .engine
        .set_pipeline_settings(&admin, ENV, &s)
        .await
        .unwrap();
    assert!(after.hold_at_preview);
    h
}

/// Starts a deploy of `version` in the background and waits until it is
/// held; returns its id, the task and what the page shows.
async fn deploy_until_held(
    h: &Harness,
    actor: &Actor,
    version: &str,
) -> (
    i64,
    tokio::task::JoinHandle<engine::error::Result<DeploymentView>>,
    DeploymentDetail,
) {
    let (engine, actor2, v) = (h.engine.clone(), actor.clone(), version.to_string());
    let task = tokio::spawn(async move { engine.deploy(&actor2, ENV, &v).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the deploy was never held");
        if let Some(d) = h.history().await.first() {
            if d.to_version.as_deref() == Some(version) {
                let detail = h.engine.deployment(actor, d.id).await.unwrap();
                // The hold's row lands a moment before the step's message,
                // so wait for both: the page shows them together.
                let hold_running = detail.steps.iter().any(|s| {
                    s.name == "hold" && s.status == StepStatus::Running && s.message.is_some()
                });
                if hold_running && detail.hold.is_some() {
                    return (d.id, task, detail);
                }
                assert_eq!(
                    detail.deployment.status,
                    DeploymentStatus::Running,
                    "{detail:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit_actions(engine: &Engine) -> Vec<(String, Option<String>)> {
    engine::store::query_as("SELECT action, reason FROM audit_log ORDER BY id")
        .fetch_all(engine.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_held_deploy_waits_with_users_on_the_old_slot_until_promoted() {
    let h = held_environment().await;
    let dana = h.user("dana", Role::Deployer).await;
    let (id, task, detail) = deploy_until_held(&h, &dana, "v2").await;
    let hold = detail.hold.unwrap();
    // The new slot answers where the hold says; users are still on v1.
    let green = h.slot(SlotColor::Green).await;
    let addr = hold.preview_url.trim_start_matches("http://").to_string();
    assert_eq!(addr, green.address.clone().unwrap());
    assert_eq!(h.get(&addr).await, "switchyard-demo v2\n");
    let step = detail.steps.iter().find(|s| s.name == "hold").unwrap();
    let msg = step.message.clone().unwrap_or_default();
    assert!(
        msg.contains("held, preview at") && msg.contains(&hold.until),
        "{msg}"
    );
    // Held for a while: still on v1, the lock still held.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let e = h.engine.deploy(&dana, ENV, "v3").await.unwrap_err();
    assert!(matches!(e, Error::DeployInProgress { .. }), "{e}");

    let view = h.engine.promote_hold(&dana, id).await.unwrap();
    assert_eq!(view.decision.as_deref(), Some("promote"));
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    let d = h.engine.deployment(&dana, id).await.unwrap();
    assert_eq!(
        step_names(&d.steps),
        vec![
            ("lock", StepStatus::Succeeded),
            ("preflight", StepStatus::Succeeded),
            ("start", StepStatus::Succeeded),
            ("health", StepStatus::Succeeded),
            ("gates", StepStatus::Succeeded),
            ("hold", StepStatus::Succeeded),
            ("switch", StepStatus::Succeeded),
            ("drain", StepStatus::Succeeded),
            ("standby", StepStatus::Succeeded),
        ]
    );
    let hold_msg = d.steps[5].message.clone().unwrap();
    assert!(hold_msg.starts_with("promoted by dana"), "{hold_msg}");
    // Decided once: a second promote changes nothing.
    let e = h.engine.promote_hold(&dana, id).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
    assert!(e.to_string().contains("promoted by dana"), "{e}");
    let actions = audit_actions(&h.engine).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    let hold_at = names.iter().position(|a| *a == "deploy.hold").unwrap();
    let promote_at = names.iter().position(|a| *a == "deploy.promote").unwrap();
    assert!(hold_at < promote_at, "{names:?}");
}

#[tokio::test]
async fn an_aborted_hold_stops_the_new_slot_and_users_keep_the_old_one() {
    let h = held_environment().await;
    let dana = h.user("dana", Role::Deployer).await;
    let viewer = h.user("vic", Role::Viewer).await;
    let (id, task, _) = deploy_until_held(&h, &dana, "v2").await;
    let green_pid = pid_of(&h.slot(SlotColor::Green).await);

    // A viewer may neither promote nor abort; nothing changes.
    let e = h.engine.promote_hold(&viewer, id).await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h.engine.abort_hold(&viewer, id, "no").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    // An abort needs a reason.
    let e = h.engine.abort_hold(&dana, id, "  ").await.unwrap_err();
    assert_eq!(e.field(), Some("reason"), "{e}");
    let held = h.engine.deployment(&dana, id).await.unwrap();
    assert!(held.hold.unwrap().waiting());

    let view = h
        .engine
        .abort_hold(&dana, id, "the <b>preview</b> looks wrong")
        .await
        .unwrap();
    assert_eq!(view.decision.as_deref(), Some("abort"));
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Failed, "{done:?}");
    let message = done.message.unwrap();
    assert!(
        message.contains("aborted by dana") && message.contains("users stay on blue"),
        "{message}"
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(green_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!pid_alive(green_pid), "the held slot was not stopped");
    // Too late to promote now.
    let e = h.engine.promote_hold(&dana, id).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
    let actions = audit_actions(&h.engine).await;
    assert!(actions.contains(&(
        "deploy.abort".to_string(),
        Some("the <b>preview</b> looks wrong".to_string())
    )));
    assert!(!actions.iter().any(|(a, _)| a == "deploy.promote"));
    // The lock is free again: the next deploy gets as far as its own hold.
    let (next, task, _) = deploy_until_held(&h, &dana, "v3").await;
    h.engine.abort_hold(&dana, next, "done").await.unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Failed, "{done:?}");
}

#[tokio::test]
async fn a_hold_that_times_out_is_aborted_and_a_late_promote_is_refused() {
    let h = held_environment().await;
    // Below the settings' 10 s minimum, written straight to the store so
    // the test does not wait.
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let mut t = env.timings();
    t.hold_timeout = Duration::from_secs(1);
    environments::set_timings(h.engine.pool(), env.id, t)
        .await
        .unwrap();
    let dana = h.user("dana", Role::Deployer).await;
    let started = Instant::now();
    let done = h.engine.deploy(&dana, ENV, "v2").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(done.status, DeploymentStatus::Failed, "{done:?}");
    assert!(
        done.message
            .as_deref()
            .unwrap()
            .contains("the hold timed out"),
        "{done:?}"
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let e = h.engine.promote_hold(&dana, done.id).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    let d = h.engine.deployment(&dana, done.id).await.unwrap();
    assert_eq!(d.hold.unwrap().decision.as_deref(), Some("timeout"));
    let actions = audit_actions(&h.engine).await;
    assert!(actions.contains(&(
        "deploy.abort".to_string(),
        Some("the hold timed out".to_string())
    )));
}

#[tokio::test]
async fn only_held_deploys_can_be_promoted_and_settings_are_bounded() {
    let h = Harness::with_v1_live().await;
    let dana = h.user("dana", Role::Deployer).await;
    let admin = h.user("ada", Role::Admin).await;
    let v1 = h.history().await[0].id;
    let e = h.engine.promote_hold(&dana, v1).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
    let e = h.engine.promote_hold(&dana, 9999).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    // A hold timeout out of bounds is refused, naming the field; nothing changes.
    let mut s = h.engine.pipeline_settings(&admin, ENV).await.unwrap();
    s.hold_at_preview = true;
    s.hold_timeout_ms = 1000;
    let e = h
        .engine
        .set_pipeline_settings(&admin, ENV, &s)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("hold_timeout_ms"), "{e}");
    assert!(
        !h.engine
            .pipeline_settings(&admin, ENV)
            .await
            .unwrap()
            .hold_at_preview
    );
    // A deployer may not turn the hold on.
    let e = h
        .engine
        .set_pipeline_settings(&dana, ENV, &s)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
}
