//! After the switch: the watch window that rolls back by itself on errors or
//! a dead slot (with the evidence), passes when quiet and ends early on a
//! manual rollback; the dashboard's traffic figures per slot; the standby
//! window that stops the old slot, and the cold rollback that starts it
//! again, even when a console died during it. A real `switchyard-proxy` in
//! front of real `switchyard-demo` slot processes, the engine with the
//! process runtime and a SQLite file.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` (or
//! `cargo build --workspace`) before `cargo test`. Each test starts its own
//! proxy and slots (see `support::harness`) and kills them when it ends.

use engine::environments;
use engine::Actor;
use engine::{steps, Engine, Error};
use model::{DeploymentKind, DeploymentStatus, Role, SlotColor, SlotState, StepName, StepStatus};
use std::time::{Duration, Instant};

mod support;

use support::harness::{kill_group, pid_alive, step_names, Harness, Load, ENV};

/// Waits (up to 30 s) for a deploy's watch window to end, and returns it.
async fn watch_outcome(h: &Harness, actor: &Actor, id: i64) -> model::WatchView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let w = h
            .engine
            .deployment(actor, id)
            .await
            .unwrap()
            .watch
            .expect("the deploy is watched");
        // A breach is recorded before its rollback runs: wait for its end too.
        let settled = match w.status {
            model::WatchStatus::Watching => false,
            model::WatchStatus::Breached => {
                w.rollback_id.is_some()
                    || w.message
                        .as_deref()
                        .is_some_and(|m| m.contains("the automatic rollback was refused"))
            }
            _ => true,
        };
        if settled {
            return w;
        }
        assert!(Instant::now() < deadline, "still watching: {w:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Turns the watch on for the harness's environment.
async fn watch_for(h: &Harness, window: Duration) {
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let timings = environments::Timings {
        watch_window: window,
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_after_the_switch_roll_back_by_themselves_with_the_evidence() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    // Gates that let a bad build through (no smoke route, no sample): the
    // watch is the last line of defence.
    let lax = engine::gates::GateSettings {
        smoke_paths: vec![],
        sample_requests: 0,
        ..env.gates.clone()
    };
    environments::set_gates(h.engine.pool(), env.id, &lax)
        .await
        .unwrap();
    watch_for(&h, Duration::from_secs(60)).await;

    let load = Load::start(&h, 4);
    let d = h.engine.deploy(&dora, ENV, "v2+errors").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    load.finish().await;

    assert_eq!(w.status, WatchStatus::Breached, "{w:?}");
    assert_eq!(w.slot, SlotColor::Green);
    let evidence = w.message.clone().unwrap();
    assert!(evidence.starts_with("error rate "), "{evidence}");
    assert!(evidence.contains("(limit < 1.0 %)"), "{evidence}");
    let rb = h
        .engine
        .deployment(&dora, w.rollback_id.expect("a rollback was started"))
        .await
        .unwrap()
        .deployment;
    assert_eq!(
        (rb.kind, rb.status, rb.requested_by.as_str()),
        (
            DeploymentKind::Rollback,
            DeploymentStatus::Succeeded,
            "system"
        )
    );
    let reason = rb.reason.unwrap();
    assert!(
        reason.starts_with(&format!(
            "automatic rollback of deployment #{}: error rate ",
            d.id
        )),
        "{reason}"
    );
    assert!(
        evidence.contains(&format!("rolled back by deployment #{}", rb.id)),
        "{evidence}"
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
}

#[tokio::test]
async fn a_slot_that_dies_after_the_switch_is_rolled_back_from() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    watch_for(&h, Duration::from_secs(60)).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    let green = h.slot(SlotColor::Green).await;
    kill_group(green.handle.unwrap().parse().unwrap());
    let w = watch_outcome(&h, &dora, d.id).await;
    assert_eq!(w.status, WatchStatus::Breached, "{w:?}");
    let evidence = w.message.clone().unwrap();
    assert!(
        evidence.starts_with("3 failed health probes in a row (last: connection refused"),
        "{evidence}"
    );
    assert!(w.rollback_id.is_some(), "{w:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

#[tokio::test]
async fn a_quiet_window_passes_and_a_manual_rollback_ends_one_early() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    watch_for(&h, Duration::from_secs(2)).await;

    let load = Load::start(&h, 2);
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let watching = h
        .engine
        .deployment(&dora, d.id)
        .await
        .unwrap()
        .watch
        .unwrap();
    assert_eq!(watching.status, WatchStatus::Watching, "{watching:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    let answers = load.finish().await;
    assert!(answers.iter().all(|a| matches!(a, Ok((200, _)))));
    assert_eq!(w.status, WatchStatus::Passed, "{w:?}");
    let m = w.message.unwrap();
    assert!(m.starts_with("passed: no breach in 2 s; "), "{m}");
    assert!(m.contains(" answers since the switch, errors 0.0 %"), "{m}");
    assert_eq!(w.rollback_id, None);
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // A person rolls back while v3 is watched: the watch ends, it does not
    // fight the rollback.
    watch_for(&h, Duration::from_secs(60)).await;
    let d = h.engine.deploy(&dora, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let r = h
        .engine
        .rollback(&dora, ENV, "changed my mind")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    assert_eq!(w.status, WatchStatus::Stopped, "{w:?}");
    assert!(
        w.message
            .as_deref()
            .unwrap()
            .starts_with("ended early: traffic moved"),
        "{w:?}"
    );
    assert_eq!(w.rollback_id, None);
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // Watching is off when the window is 0.
    watch_for(&h, Duration::ZERO).await;
    let d = h.engine.deploy(&dora, ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.engine.deployment(&dora, d.id).await.unwrap().watch, None);
}

#[tokio::test]
async fn the_dashboard_reads_what_users_got_from_each_slot() {
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let load = Load::start(&h, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.finish().await;
    assert!(answers.iter().all(|a| matches!(a, Ok((200, _)))));

    let t = h.engine.traffic(&vic, ENV).await.unwrap();
    assert_eq!(t.unavailable, None);
    let series = t.series.unwrap();
    assert_eq!((series.window_secs, series.step_secs), (300, 10));
    let slot = |c: SlotColor| series.slots.iter().find(|s| s.slot == c).unwrap();
    let (blue, green) = (slot(SlotColor::Blue), slot(SlotColor::Green));
    assert_eq!(blue.points.len(), 30);
    let now = blue.points.last().unwrap();
    assert_eq!(now.ago_secs, 0);
    // The proxy is younger than one step: the newest point holds every answer.
    let served = now.requests_per_sec * 10.0;
    assert!(
        served >= answers.len() as f64 * 0.5,
        "{} answers, chart says {:.1}/s",
        answers.len(),
        now.requests_per_sec
    );
    assert_eq!(now.error_rate, 0.0);
    assert!(now.p95_ms.is_some());
    assert!(green.points.iter().all(|p| p.requests_per_sec == 0.0));

    // Without a proxy the panel says so; the call itself does not fail.
    h.kill_proxy();
    let t = h.engine.traffic(&vic, ENV).await.unwrap();
    assert_eq!(t.series, None);
    assert!(
        t.unavailable
            .as_deref()
            .unwrap()
            .starts_with("traffic figures unavailable: "),
        "{t:?}"
    );
    let e = h.engine.traffic(&vic, "nowhere").await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_standby_past_its_window_is_stopped_and_a_rollback_starts_it_again() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let timings = environments::Timings {
        standby_window: Duration::from_secs(1),
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let blue = h.slot(SlotColor::Blue).await;
    let until = blue
        .standby_until
        .expect("blue is the standby, with a deadline");
    assert!(h.slot(SlotColor::Green).await.standby_until.is_none());
    let standby_step = h.engine.deployment(&dora, d.id).await.unwrap().steps[7]
        .message
        .clone()
        .unwrap();
    assert!(
        standby_step.contains(&format!("until {} UTC", until.format("%H:%M:%S"))),
        "{standby_step}"
    );

    // Inside the window nothing happens.
    h.engine.expire_standbys().await.unwrap();
    let pid: u32 = h
        .slot(SlotColor::Blue)
        .await
        .handle
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));

    // Past it, the standby is stopped; its version and deadline stay.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.engine.expire_standbys().await.unwrap();
    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(
        (blue.handle.as_deref(), blue.state, blue.version.as_deref()),
        (None, SlotState::Stopped, Some("v1"))
    );
    assert_eq!(blue.standby_until, Some(until));
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(pid), "the expired standby's process ended");
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v2\n",
        "users never noticed"
    );

    // The rollback starts v1 again in blue, waits for health, then switches.
    let r = h.engine.rollback(&dora, ENV, "v2 is wrong").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let detail = h.engine.deployment(&dora, r.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("switch", Succeeded)
        ]
    );
    assert!(
        detail.steps[1]
            .message
            .as_deref()
            .unwrap()
            .starts_with("v1 started again in blue"),
        "{detail:?}"
    );
    // v2, the slot users left, is the standby now, with a fresh deadline.
    let green = h.slot(SlotColor::Green).await;
    assert!(green.handle.is_some());
    assert!(green.standby_until.unwrap() > until);
    assert_eq!(h.slot(SlotColor::Blue).await.standby_until, None);

    // A slot whose deploy failed is no standby: nothing to roll back to.
    let f = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(f.status, DeploymentStatus::Failed);
    let e = h.engine.rollback(&dora, ENV, "again").await.unwrap_err();
    assert!(matches!(e, Error::NoStandby(_)), "{e}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

#[tokio::test]
async fn an_interrupted_cold_rollback_stops_the_slot_it_started_again_and_keeps_its_version() {
    use engine::runtime::Runtime as _;
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();
    // A standby window of 1 ms: after the deploy, the expiry pass stops blue.
    environments::set_timings(
        &pool,
        env.id,
        environments::Timings {
            drain_timeout: Duration::from_secs(5),
            watch_window: Duration::ZERO,
            standby_window: Duration::from_millis(1),
            hold_at_preview: false,
            hold_timeout: Duration::from_secs(1800),
        },
    )
    .await
    .unwrap();
    let d = h.engine.deploy(&Actor::system(), ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.engine.expire_standbys().await.unwrap();
    assert_eq!(h.slot(SlotColor::Blue).await.handle, None);

    // A console that died while a cold rollback waited for blue's health:
    // blue runs again, users are still on green.
    let env = environments::find(&pool, ENV).await.unwrap();
    let again = h
        .runtime
        .start(&Engine::spec(&env, SlotColor::Blue, "v1"))
        .await
        .unwrap();
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Blue,
        Some("v1"),
        SlotState::Starting,
        Some(&again.handle),
        Some(&again.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Rollback,
            from_version: Some("v2"),
            to_version: Some("v1"),
            from_slot: Some(SlotColor::Green),
            to_slot: Some(SlotColor::Blue),
            requested_by: None,
            reason: Some("bad release"),
            holder: None,
        },
    )
    .await
    .unwrap();
    steps::plan(&pool, dep, engine::pipeline::ROLLBACK_COLD)
        .await
        .unwrap();
    for done in [StepName::Lock, StepName::Start] {
        steps::start(&pool, dep, done).await.unwrap();
        steps::finish(&pool, dep, done, StepStatus::Succeeded, "ok")
            .await
            .unwrap();
    }
    steps::start(&pool, dep, StepName::Health).await.unwrap();

    let restarted = Engine::new(pool.clone(), h.runtime.clone());
    restarted.reconcile().await.unwrap();
    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message
            .as_deref()
            .unwrap()
            .contains("the blue slot it started was stopped"),
        "{row:?}"
    );
    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(blue.handle, None, "{blue:?}");
    assert!(!pid_alive(again.handle.parse().unwrap()));
    // Still the standby a rollback can start again.
    assert_eq!(blue.version.as_deref(), Some("v1"));
    assert!(blue.standby_until.is_some(), "{blue:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    let r = restarted
        .rollback(&Actor::system(), ENV, "bad release, again")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

/// Who watches `dep`'s window, and when it last said so.
async fn watcher(h: &Harness, dep: i64) -> (Option<String>, Option<chrono::DateTime<chrono::Utc>>) {
    engine::store::query_as(
        "SELECT holder, heartbeat_at FROM deployment_watches WHERE deployment_id = ?",
    )
    .bind(dep)
    .fetch_one(h.engine.pool())
    .await
    .unwrap()
}

async fn set_watcher(h: &Harness, dep: i64, holder: &str, beat: chrono::DateTime<chrono::Utc>) {
    engine::store::query(
        "UPDATE deployment_watches SET holder = ?, heartbeat_at = ? WHERE deployment_id = ?",
    )
    .bind(holder)
    .bind(beat)
    .bind(dep)
    .execute(h.engine.pool())
    .await
    .unwrap();
}

/// Consoles sharing a database (issue 18) watch a window one at a time: a
/// console that starts leaves a live console's window alone, takes over one
/// whose console went silent past the lock's time to live, and the console
/// that lost it stops watching. A breach then rolls back once, not once per
/// console.
#[tokio::test]
async fn a_window_has_one_watcher_and_passes_on_only_when_its_console_goes_silent() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    watch_for(&h, Duration::from_secs(60)).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let (holder, beat) = watcher(&h, d.id).await;
    assert_eq!(holder, Some(h.engine.holder().to_string()));
    assert!(beat.is_some());

    // A console of another host watches it and beats: only its beat says
    // whether it lives. A console that starts now leaves it alone, and the
    // first console, which lost the window, stops writing to it.
    let elsewhere = support::harness::console_elsewhere().to_string();
    set_watcher(&h, d.id, &elsewhere, chrono::Utc::now()).await;
    let starting = Engine::new(h.engine.pool().clone(), h.runtime.clone());
    assert_eq!(starting.resume_watches().await.unwrap(), 0);
    let lost_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (holder, beat) = watcher(&h, d.id).await;
    assert_eq!(holder.as_deref(), Some(elsewhere.as_str()));
    assert!(beat.unwrap() < lost_at, "nobody else beat for it: {beat:?}");

    // Silent past the lock's time to live (30 s): taken over, once.
    set_watcher(
        &h,
        d.id,
        &elsewhere,
        chrono::Utc::now() - chrono::Duration::seconds(60),
    )
    .await;
    assert_eq!(starting.resume_watches().await.unwrap(), 1);
    assert_eq!(
        starting.resume_watches().await.unwrap(),
        0,
        "its own window"
    );
    assert_eq!(
        watcher(&h, d.id).await.0,
        Some(starting.holder().to_string())
    );

    // The new slot dies: the console that watches rolls back, once.
    let green = h.slot(SlotColor::Green).await;
    kill_group(green.handle.unwrap().parse().unwrap());
    let w = watch_outcome(&h, &dora, d.id).await;
    assert_eq!(w.status, WatchStatus::Breached, "{w:?}");
    assert!(w.rollback_id.is_some(), "{w:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rollbacks: Vec<_> = h
        .history()
        .await
        .into_iter()
        .filter(|x| x.id > d.id && x.kind == DeploymentKind::Rollback)
        .collect();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
    assert_eq!(
        watcher(&h, d.id).await.0,
        Some(starting.holder().to_string())
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
}
