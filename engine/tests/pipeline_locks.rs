//! The environment's deploy lock and what survives a dead console: the lock
//! carries its holder and a heartbeat, an admin can break it, a silent one
//! expires while a live one is never broken, a worker whose lock was taken
//! over cannot switch; and reconciliation fails interrupted deploys, closes
//! the step they left running and never stops a slot the router may serve.
//! A real `switchyard-proxy` in front of real `switchyard-demo` slot
//! processes, the engine with the process runtime and a SQLite file.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` (or
//! `cargo build --workspace`) before `cargo test`. Each test starts its own
//! proxy and slots (see `support::harness`) and kills them when it ends.

use engine::environments;
use engine::runtime::{ProcessRuntime, Runtime, SlotSpec};
use engine::Actor;
use engine::{steps, Engine, Error};
use model::{
    DeploymentKind, DeploymentStatus, DeploymentView, Role, SlotColor, SlotState, StepName,
    StepStatus,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::harness::{pid_alive, pid_of, step_names, Harness, ENV, TOKEN};

#[tokio::test]
async fn reconcile_fails_an_interrupted_deploy_and_keeps_traffic_on_the_active_slot() {
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let dora_user = dora.as_user().unwrap();

    // What a console that died in the middle of the health wait leaves behind:
    // a running deployment row and a starting green slot with a live process.
    let spec = SlotSpec {
        environment: ENV.into(),
        color: SlotColor::Green,
        version: "v2".into(),
        artifact: format!("{}/releases/v2/switchyard-demo", h.dir.path().display()),
        env: Default::default(),
        docker: Default::default(),
        registry: None,
    };
    let half = h.runtime.start(&spec).await.unwrap();
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Green,
        Some("v2"),
        SlotState::Starting,
        Some(&half.handle),
        Some(&half.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: Some(dora_user.id),
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();

    // A restarted console: new engine and runtime over the same database.
    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();

    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message.as_deref().unwrap_or("").contains("interrupted"),
        "{row:?}"
    );
    assert!(row.finished_at.is_some());
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.state, SlotState::Stopped, "{green:?}");
    assert_eq!(green.handle, None);
    let half_pid: u32 = half.handle.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(half_pid) {
        assert!(
            Instant::now() < deadline,
            "the half-started slot was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pid_alive(pid_of(&h.slot(SlotColor::Blue).await)));

    // The lock is free again.
    let d = restarted.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn reconcile_never_stops_a_slot_the_router_may_be_serving() {
    let mut h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();

    // The console died right after the proxy switched users to green and
    // before it recorded that: the proxy serves green, the records say blue.
    let spec = SlotSpec {
        environment: ENV.into(),
        color: SlotColor::Green,
        version: "v2".into(),
        artifact: format!("{}/releases/v2/switchyard-demo", h.dir.path().display()),
        env: Default::default(),
        docker: Default::default(),
        registry: None,
    };
    let green = h.runtime.start(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h
        .http
        .get(format!("http://{}/health", green.address))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "green never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Green,
        Some("v2"),
        SlotState::Healthy,
        Some(&green.handle),
        Some(&green.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();
    use engine::router::{BuiltinRouter, TrafficRouter};
    let router = BuiltinRouter::new(&env.proxy_admin_url, TOKEN.into());
    let generation = router.current().await.unwrap().generation + 1;
    router
        .apply(&model::RoutingTable {
            generation,
            active: Some(model::Upstream {
                slot: SlotColor::Green,
                address: green.address.clone(),
            }),
            preview: None,
            ..model::RoutingTable::default()
        })
        .await
        .unwrap();
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // The console restarts while the proxy is down for a moment.
    h.kill_proxy();
    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();
    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    let green_pid: u32 = green.handle.parse().unwrap();
    assert!(
        pid_alive(green_pid),
        "reconcile stopped a slot the router may be serving, without asking the router"
    );

    // The proxy is back (serving green from its state file); the next
    // reconciliation adopts what it serves.
    h.restart_proxy();
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    let admin_url = {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(h.dir.path().join("proxy-ready.json")).unwrap())
                .unwrap();
        format!("http://{}", v["admin"].as_str().unwrap())
    };
    engine::store::query("UPDATE environments SET proxy_admin_url = ? WHERE id = ?")
        .bind(&admin_url)
        .bind(env.id)
        .execute(&pool)
        .await
        .unwrap();
    restarted.reconcile().await.unwrap();
    assert_eq!(h.active().await, Some(SlotColor::Green));
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn reconcile_closes_the_step_a_dead_console_left_running() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();

    // What a console that died during the health wait leaves behind.
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();
    steps::plan(&pool, dep, engine::pipeline::DEPLOY)
        .await
        .unwrap();
    for done in [StepName::Lock, StepName::Preflight, StepName::Start] {
        steps::start(&pool, dep, done).await.unwrap();
        steps::finish(&pool, dep, done, Succeeded, "ok")
            .await
            .unwrap();
    }
    steps::start(&pool, dep, StepName::Health).await.unwrap();

    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();

    let detail = restarted.deployment(&Actor::system(), dep).await.unwrap();
    assert_eq!(detail.deployment.status, DeploymentStatus::Failed);
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Failed),
            ("gates", Skipped),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    let health = &detail.steps[3];
    assert_eq!(health.message.as_deref(), Some(steps::INTERRUPTED));
    assert!(health.finished_at.is_some());
    assert!(detail.steps[..3]
        .iter()
        .all(|s| s.message.as_deref() == Some("ok")));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

/// A console that really dies mid-deploy (its runtime is dropped while the
/// health wait runs): the next console's reconcile closes the step.
#[tokio::test]
async fn a_console_killed_during_the_health_wait_leaves_a_closed_timeline() {
    use StepStatus::*;
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // The doomed console: its own tokio runtime, pool and engine over the same
    // database, deploying a build that takes 3 s to come up.
    let url = h.db.clone();
    let logs = h.dir.path().join("logs");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let doomed = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.spawn(async move {
            let pool = engine::store::open(&url).await.unwrap();
            let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(logs)));
            let _ = engine.deploy(&Actor::system(), ENV, "v2+slow").await;
        });
        // Wait for the signal, then die without finishing anything.
        let _ = rx.recv();
        rt.shutdown_background();
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let dep = loop {
        let newest = h.history().await[0].clone();
        if newest.id != d.id {
            let detail = h
                .engine
                .deployment(&Actor::system(), newest.id)
                .await
                .unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == Running)
            {
                break newest.id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the health step never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tx.send(()).unwrap();
    doomed.join().unwrap();

    h.engine.reconcile().await.unwrap();
    let detail = h.engine.deployment(&Actor::system(), dep).await.unwrap();
    assert_eq!(
        detail.deployment.status,
        DeploymentStatus::Failed,
        "{detail:?}"
    );
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Failed),
            ("gates", Skipped),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    assert_eq!(detail.steps[3].message.as_deref(), Some(steps::INTERRUPTED));
    // Users never left v1, and the half-started slot was stopped.
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);
}

/// Starts a deploy of `v2+slow` (it binds its port after 3 s) by `who` in the
/// background and returns it once its health step runs.
async fn slow_deploy_in_health(
    h: &Harness,
    who: &Actor,
) -> (
    tokio::task::JoinHandle<engine::error::Result<DeploymentView>>,
    i64,
) {
    let before = h.history().await.first().map(|d| d.id);
    let task = tokio::spawn({
        let engine = h.engine.clone();
        let who = who.clone();
        async move { engine.deploy(&who, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let newest = h.history().await[0].clone();
        if Some(newest.id) != before {
            let detail = h
                .engine
                .deployment(&Actor::system(), newest.id)
                .await
                .unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == StepStatus::Running)
            {
                return (task, newest.id);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the slow deploy never reached its health step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lock_row(
    h: &Harness,
    dep: i64,
) -> (
    String,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    engine::store::query_as("SELECT status, holder, heartbeat_at FROM deployments WHERE id = ?")
        .bind(dep)
        .fetch_one(h.engine.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_running_deploy_holds_the_lock_with_its_console_and_a_heartbeat() {
    let mut h = Harness::new(Duration::from_secs(15)).await;
    h.engine = h.engine.clone().with_lock_timing(engine::lock::LockTiming {
        heartbeat_every: Duration::from_millis(100),
        ttl: Duration::from_secs(30),
    });
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;
    let (task, dep) = slow_deploy_in_health(&h, &dora).await;

    let (status, holder, first_beat) = lock_row(&h, dep).await;
    assert_eq!(status, "running");
    assert_eq!(
        holder.as_deref(),
        Some(h.engine.holder().to_string().as_str())
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, _, later_beat) = lock_row(&h, dep).await;
    assert!(later_beat > first_beat, "{first_beat:?} → {later_beat:?}");

    // Everyone can see who holds it.
    let lock = h.engine.environment(&vic, ENV).await.unwrap().lock.unwrap();
    assert_eq!(lock.deployment_id, dep);
    assert_eq!(lock.requested_by, "dora");
    assert_eq!(lock.holder, holder);
    assert!(lock.heartbeat_age_secs <= 1, "{lock:?}");
    // A live worker of this console is never recovered from under it.
    assert_eq!(h.engine.recover_locks().await.unwrap(), 0);

    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    assert!(h
        .engine
        .environment(&vic, ENV)
        .await
        .unwrap()
        .lock
        .is_none());
}

#[tokio::test]
async fn an_admin_breaks_a_running_deploys_lock_and_users_stay_where_they_were() {
    use engine::audit;
    let h = Harness::new(Duration::from_secs(15)).await;
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let ada = h.user("ada", Role::Admin).await;
    let (task, dep) = slow_deploy_in_health(&h, &dora).await;
    let green_pid = pid_of(&h.slot(SlotColor::Green).await);

    // Refusals change nothing: a deployer, no reason, no confirmation, a lock
    // that changed hands.
    let e = h
        .engine
        .break_lock(&dora, ENV, dep, "stuck", true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "  ", true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "reason",
                ..
            }
        ),
        "{e}"
    );
    // Unconfirmed: refused naming the checkbox, after the role (a deployer
    // asking unconfirmed hears "may not", not about the box).
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "stuck", false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "confirm",
                ..
            }
        ),
        "{e}"
    );
    let e = h
        .engine
        .break_lock(&dora, ENV, dep, "stuck", false)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h
        .engine
        .break_lock(&ada, ENV, dep + 1, "stuck", true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert_eq!(lock_row(&h, dep).await.0, "running");

    let broken = h
        .engine
        .break_lock(&ada, ENV, dep, "health wait hangs, INC-42", true)
        .await
        .unwrap();
    assert_eq!(broken.status, DeploymentStatus::Failed, "{broken:?}");
    let message = broken.message.clone().unwrap();
    assert!(
        message.starts_with(
            "lock broken by ada: health wait hangs, INC-42; the green slot it started was stopped"
        ),
        "{message}"
    );
    // The worker stopped without closing the row over the breaker's words.
    let from_worker = task.await.unwrap().unwrap();
    assert_eq!(from_worker.message.as_deref(), Some(message.as_str()));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert!(!pid_alive(green_pid), "the half-started slot still runs");
    let detail = h.engine.deployment(&ada, dep).await.unwrap();
    let health = detail.steps.iter().find(|s| s.name == "health").unwrap();
    assert_eq!(health.status, StepStatus::Failed);
    assert_eq!(
        health.message.as_deref(),
        Some("the lock was broken during this step")
    );
    let entry = audit::recent(h.engine.pool(), 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "lock.break")
        .expect("lock.break audited");
    assert_eq!(entry.actor_name, "ada");
    assert_eq!(entry.reason.as_deref(), Some("health wait hangs, INC-42"));
    assert!(
        entry.details.contains(&format!("\"deployment\":{dep}")),
        "{}",
        entry.details
    );

    // The environment is free again.
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "again", true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

/// A deployment row as another console (on another host) would leave it.
async fn foreign_lock(h: &Harness, heartbeat_age: chrono::Duration) -> i64 {
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let other = support::harness::console_elsewhere();
    let active = env.active.unwrap();
    let dep = engine::deployments::begin(
        h.engine.pool(),
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: None,
            to_version: Some("v2"),
            from_slot: Some(active),
            to_slot: Some(active.other()),
            requested_by: None,
            reason: None,
            holder: Some(&other),
        },
    )
    .await
    .unwrap();
    engine::store::query("UPDATE deployments SET heartbeat_at = ? WHERE id = ?")
        .bind(chrono::Utc::now() - heartbeat_age)
        .bind(dep)
        .execute(h.engine.pool())
        .await
        .unwrap();
    steps::plan(h.engine.pool(), dep, engine::pipeline::DEPLOY)
        .await
        .unwrap();
    dep
}

#[tokio::test]
async fn a_lock_whose_console_went_silent_expires_and_a_live_one_is_not_broken() {
    use engine::audit;
    let h = Harness::with_v1_live().await;
    let ada = h.user("ada", Role::Admin).await;

    // Another console beat 3 s ago: alive. Nobody recovers it, and an admin
    // cannot break it from here (its worker would go on acting).
    let dep = foreign_lock(&h, chrono::Duration::seconds(3)).await;
    assert_eq!(h.engine.recover_locks().await.unwrap(), 0);
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "looks stuck", true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RuleForbids(_)), "{e}");
    assert!(e.to_string().contains("console-2.internal"), "{e}");
    assert_eq!(lock_row(&h, dep).await.0, "running");
    let e = h.engine.deploy(&ada, ENV, "v3").await.unwrap_err();
    assert!(matches!(e, Error::DeployInProgress { .. }), "{e}");

    // Silent for longer than the time to live (30 s): the lock expires.
    engine::store::query("UPDATE deployments SET heartbeat_at = ? WHERE id = ?")
        .bind(chrono::Utc::now() - chrono::Duration::seconds(45))
        .bind(dep)
        .execute(h.engine.pool())
        .await
        .unwrap();
    assert_eq!(h.engine.recover_locks().await.unwrap(), 1);
    let row = engine::deployments::get(h.engine.pool(), dep)
        .await
        .unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message
            .as_deref()
            .unwrap()
            .starts_with("interrupted: its console sent no heartbeat for 45 s"),
        "{row:?}"
    );
    let entry = audit::recent(h.engine.pool(), 5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "lock.expire")
        .expect("lock.expire audited");
    assert!(
        entry.details.contains("console-2.internal"),
        "{}",
        entry.details
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let d = h.engine.deploy(&ada, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // An admin may break a silent lock without waiting for the expiry pass.
    let dep = foreign_lock(&h, chrono::Duration::seconds(120)).await;
    let broken = h
        .engine
        .break_lock(&ada, ENV, dep, "console-2 was decommissioned", true)
        .await
        .unwrap();
    assert_eq!(broken.status, DeploymentStatus::Failed);
    assert_eq!(h.users_see().await, "switchyard-demo v3\n");
    // It never got to its start step: the standby (v1 on blue) stays warm.
    let blue = h.slot(SlotColor::Blue).await;
    assert!(pid_alive(pid_of(&blue)), "{blue:?}");
    assert_eq!(blue.version.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_worker_whose_lock_was_taken_over_cannot_switch() {
    // Heartbeats far apart: the fence before the switch is what must catch
    // it, as for a console that was paused past its lock's time to live.
    let mut h = Harness::new(Duration::from_secs(15)).await;
    h.engine = h.engine.clone().with_lock_timing(engine::lock::LockTiming {
        heartbeat_every: Duration::from_secs(3600),
        ttl: Duration::from_secs(30),
    });
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let generation = environments::find(h.engine.pool(), ENV)
        .await
        .unwrap()
        .routing_generation;
    let (task, dep) = slow_deploy_in_health(&h, &Actor::system()).await;

    // Another console takes the lock over while this one waits for health.
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let held = engine::lock::of_environment(h.engine.pool(), env.id)
        .await
        .unwrap()
        .unwrap();
    let other = support::harness::console_elsewhere();
    assert!(engine::lock::take_over(h.engine.pool(), &held, &other)
        .await
        .unwrap());

    let row = task.await.unwrap().unwrap();
    // It neither switched nor closed the row the other console now holds.
    assert_eq!(row.status, DeploymentStatus::Running, "{row:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    assert_eq!(env.active, Some(SlotColor::Blue));
    assert_eq!(env.routing_generation, generation);
    let detail = h.engine.deployment(&Actor::system(), dep).await.unwrap();
    let switch = detail.steps.iter().find(|s| s.name == "switch").unwrap();
    assert_ne!(switch.status, StepStatus::Succeeded, "{detail:?}");
    let (_, holder, _) = lock_row(&h, dep).await;
    assert_eq!(holder, Some(other.to_string()));
}
