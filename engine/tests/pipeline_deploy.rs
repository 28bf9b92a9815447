//! The deploy pipeline end to end, its outcomes: a deploy moves users to the
//! new slot and keeps the old one warm, a rollback switches back without
//! restarting anything; bad versions, missing reasons, dead standbys, the
//! wrong roles and a second concurrent deploy are refused without moving
//! users; a failed switch leaves the previous slot active; and every action
//! leaves exactly its audit entry. A real `switchyard-proxy` in front of real
//! `switchyard-demo` slot processes, the engine with the process runtime and
//! a SQLite file.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` (or
//! `cargo build --workspace`) before `cargo test`. Each test starts its own
//! proxy and slots (see `support::harness`) and kills them when it ends.

use engine::runtime::{Liveness, Runtime};
use engine::{Actor, Engine, Error};
use model::{DeploymentKind, DeploymentStatus, DeploymentView, Role, SlotColor, SlotState};
use std::time::{Duration, Instant};

mod support;

use support::harness::{kill_group, pid_alive, pid_of, Harness, ENV, TOKEN};

#[tokio::test]
async fn deploy_switches_users_keeps_old_slot_warm_and_rollback_restarts_nothing() {
    // Bootstrap: the system puts v1 live on blue.
    let h = Harness::with_v1_live().await;
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let boot = &h.history().await[0];
    assert_eq!(boot.kind, DeploymentKind::Deploy);
    assert_eq!(boot.requested_by, "system");
    assert_eq!(boot.to_version.as_deref(), Some("v1"));

    // A deployer ships v2: users move to green, blue stays up as standby.
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    assert_eq!(h.active().await, Some(SlotColor::Green));

    let blue = h.slot(SlotColor::Blue).await;
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(blue.version.as_deref(), Some("v1"));
    assert!(
        pid_alive(pid_of(&blue)),
        "standby process must keep running"
    );
    assert_eq!(
        h.get(blue.address.as_deref().unwrap()).await,
        "switchyard-demo v1\n",
        "the standby still answers on its own address"
    );
    assert_eq!(green.version.as_deref(), Some("v2"));
    assert_eq!(green.state, SlotState::Healthy);

    let view = h.engine.environment(&dora, ENV).await.unwrap();
    assert_eq!(view.active, Some(SlotColor::Green));
    assert_eq!(view.in_progress, None);

    let history = h.history().await;
    assert_eq!(history.len(), 2);
    let row = &history[0];
    assert_eq!(row.kind, DeploymentKind::Deploy);
    assert_eq!(row.status, DeploymentStatus::Succeeded);
    assert_eq!(row.from_version.as_deref(), Some("v1"));
    assert_eq!(row.to_version.as_deref(), Some("v2"));
    assert_eq!(row.from_slot, Some(SlotColor::Blue));
    assert_eq!(row.to_slot, Some(SlotColor::Green));
    assert_eq!(row.requested_by, "dora");
    assert!(row.finished_at.is_some());

    // Roll back: users get v1 again, from the very same processes.
    let pids_before = (pid_of(&blue), pid_of(&green));
    let r = h
        .engine
        .rollback(&dora, ENV, "v2 breaks checkout")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let pids_after = (
        pid_of(&h.slot(SlotColor::Blue).await),
        pid_of(&h.slot(SlotColor::Green).await),
    );
    assert_eq!(pids_before, pids_after, "a rollback restarts nothing");
    assert!(pid_alive(pids_after.0) && pid_alive(pids_after.1));
    assert_eq!(
        h.runtime.started.lock().unwrap().len(),
        2,
        "only the two deploys started processes"
    );

    let row = &h.history().await[0];
    assert_eq!(row.id, r.id);
    assert_eq!(row.kind, DeploymentKind::Rollback);
    assert_eq!(row.status, DeploymentStatus::Succeeded);
    assert_eq!(row.reason.as_deref(), Some("v2 breaks checkout"));
    assert_eq!(row.requested_by, "dora");
    assert_eq!(row.from_version.as_deref(), Some("v2"));
    assert_eq!(row.to_version.as_deref(), Some("v1"));
    let ms = row.duration_ms.expect("a finished rollback has a duration");
    assert!(
        ms < 1000,
        "rollback took {ms} ms; it is a switch, not a redeploy"
    );
}

/// Asserts `r` is a refusal of the given kind and that users still get `expected`.
async fn assert_refused(
    h: &Harness,
    what: &str,
    r: Result<DeploymentView, Error>,
    expected: &str,
) -> Error {
    let err = match r {
        Err(e) => e,
        Ok(d) => panic!("{what}: expected a refusal, got {d:?}"),
    };
    assert_eq!(h.users_see().await, expected, "{what}: users moved");
    err
}

#[tokio::test]
async fn bad_versions_leave_users_on_the_slot_they_were_on() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let v1 = "switchyard-demo v1\n";
    let rows = h.history().await.len();

    let e = assert_refused(&h, "empty", h.engine.deploy(&dora, ENV, "").await, v1).await;
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "version",
                ..
            }
        ),
        "{e}"
    );
    let e = assert_refused(&h, "blank", h.engine.deploy(&dora, ENV, "   ").await, v1).await;
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "version",
                ..
            }
        ),
        "{e}"
    );
    for bad in [
        "v1;rm -rf /",
        "../v1",
        "v1/../../bin",
        "v 2",
        "$(id)",
        ".hidden",
    ] {
        let e = assert_refused(&h, bad, h.engine.deploy(&dora, ENV, bad).await, v1).await;
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    field: "version",
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    let e = assert_refused(&h, "unknown", h.engine.deploy(&dora, ENV, "v9").await, v1).await;
    assert!(matches!(e, Error::UnknownVersion { .. }), "{e}");
    assert!(e.to_string().contains("v9"), "{e}");
    // Refusals happen before anything is recorded or started.
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.runtime.started.lock().unwrap().len(), 1);
    assert_eq!(h.slot(SlotColor::Green).await.state, SlotState::Stopped);

    // A build whose health check never passes: a failed deployment, users stay.
    let d = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("health"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.handle, None, "the failed slot is stopped: {green:?}");
    assert_eq!(green.address, None);
    assert_ne!(green.state, SlotState::Healthy);
    let unhealthy_pid = *h.runtime.started.lock().unwrap().last().unwrap();
    assert!(
        !pid_alive(unhealthy_pid),
        "the unhealthy slot's process is gone"
    );
    assert!(pid_alive(pid_of(&h.slot(SlotColor::Blue).await)));

    // A build that exits at start.
    let d = h.engine.deploy(&dora, ENV, "v2+crash").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("process exited"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);

    let history = h.history().await;
    assert_eq!(history.len(), rows + 2);
    assert!(history[..2]
        .iter()
        .all(|d| d.status == DeploymentStatus::Failed && d.requested_by == "dora"));

    // And the environment still deploys fine afterwards.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn rollback_refusals_change_nothing() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let v1 = "switchyard-demo v1\n";

    // Right after the first deploy there is nothing to roll back to.
    let e = assert_refused(
        &h,
        "no standby",
        h.engine.rollback(&dora, ENV, "just because").await,
        v1,
    )
    .await;
    assert!(matches!(e, Error::NoStandby(_)), "{e}");

    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let v2 = "switchyard-demo v2\n";
    let rows = h.history().await.len();
    for reason in ["", "   "] {
        let e = assert_refused(
            &h,
            "no reason",
            h.engine.rollback(&dora, ENV, reason).await,
            v2,
        )
        .await;
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
    }
    let e = assert_refused(
        &h,
        "long reason",
        h.engine.rollback(&dora, ENV, &"x".repeat(501)).await,
        v2,
    )
    .await;
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
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.active().await, Some(SlotColor::Green));

    // A standby whose process died is not a rollback target.
    let blue_pid = pid_of(&h.slot(SlotColor::Blue).await);
    kill_group(blue_pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.runtime.liveness(&blue_pid.to_string()).await == Liveness::Running {
        assert!(Instant::now() < deadline, "blue did not die");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = assert_refused(
        &h,
        "dead standby",
        h.engine.rollback(&dora, ENV, "v2 is bad").await,
        v2,
    )
    .await;
    assert!(matches!(e, Error::NoStandby(_)), "{e}");
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.active().await, Some(SlotColor::Green));
}

#[tokio::test]
async fn viewers_and_approvers_cannot_deploy_or_roll_back() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let v2 = "switchyard-demo v2\n";
    let rows = h.history().await.len();
    let started = h.runtime.started.lock().unwrap().len();

    for (name, role) in [("vera", Role::Viewer), ("abe", Role::Approver)] {
        let actor = h.user(name, role).await;
        let e = assert_refused(&h, name, h.engine.deploy(&actor, ENV, "v3").await, v2).await;
        assert!(matches!(e, Error::Forbidden { .. }), "{name}: {e}");
        assert_eq!(e.to_string(), format!("{role} may not deploy"));
        let e = assert_refused(
            &h,
            name,
            h.engine.rollback(&actor, ENV, "I want to").await,
            v2,
        )
        .await;
        assert!(matches!(e, Error::Forbidden { .. }), "{name}: {e}");
        assert_eq!(e.to_string(), format!("{role} may not roll back"));
        // Reading is allowed.
        assert_eq!(
            h.engine.environment(&actor, ENV).await.unwrap().active,
            Some(SlotColor::Green)
        );
    }
    // A disabled deployer is treated as signed out.
    let mut gone = h
        .user("gone", Role::Deployer)
        .await
        .as_user()
        .cloned()
        .unwrap();
    gone.disabled = true;
    let e = assert_refused(
        &h,
        "disabled",
        h.engine.deploy(&Actor::user(gone), ENV, "v3").await,
        v2,
    )
    .await;
    assert!(matches!(e, Error::Unauthenticated), "{e}");

    assert_eq!(h.history().await.len(), rows, "no deployment was recorded");
    assert_eq!(
        h.runtime.started.lock().unwrap().len(),
        started,
        "nothing was started"
    );
    assert_eq!(h.active().await, Some(SlotColor::Green));
    assert_eq!(h.slot(SlotColor::Blue).await.version.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_second_deploy_while_one_runs_is_refused_with_who_and_since() {
    // +slow binds its port after 3 s: give it room.
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let dora = h.user("dora", Role::Deployer).await;
    let sam = h.user("sam", Role::Deployer).await;

    let first = tokio::spawn({
        let engine = h.engine.clone();
        let dora = dora.clone();
        async move { engine.deploy(&dora, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let in_progress = loop {
        if let Some(s) = h.engine.environment(&sam, ENV).await.unwrap().in_progress {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the slow deploy never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        in_progress.starts_with("deploy in progress by dora since "),
        "{in_progress}"
    );

    let e = h.engine.deploy(&sam, ENV, "v3").await.unwrap_err();
    assert!(
        matches!(&e, Error::DeployInProgress { by, .. } if by == "dora"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("deploy in progress by dora since "),
        "{e}"
    );
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v1\n",
        "users stay on v1 meanwhile"
    );

    let d = first.await.unwrap().unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2+slow\n");
    let history = h.history().await;
    assert_eq!(
        history.len(),
        2,
        "the refused deploy left no row: {history:?}"
    );
    // The lock is released: the next deploy goes through.
    let d = h.engine.deploy(&sam, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v3\n");
}

/// Consoles sharing one database (replicas: two engines, each with its
/// own pool) asked for a deploy of one environment at the same moment:
/// exactly one runs; the other is told who holds the environment.
#[tokio::test]
async fn two_consoles_racing_one_environment_deploy_once() {
    let h = Harness::with_v1_live().await;
    let other = Engine::new(engine::store::open(&h.db).await.unwrap(), h.runtime.clone());
    let dora = h.user("dora", Role::Deployer).await;
    let sam = h.user("sam", Role::Deployer).await;
    let (a, b) = tokio::join!(
        h.engine.deploy(&dora, ENV, "v2"),
        other.deploy(&sam, ENV, "v3")
    );
    let (won, lost, winner, version) = match (a, b) {
        (Ok(d), Err(e)) => (d, e, "dora", "v2"),
        (Err(e), Ok(d)) => (d, e, "sam", "v3"),
        (a, b) => panic!("exactly one deploy must run: {a:?} / {b:?}"),
    };
    assert_eq!(won.status, DeploymentStatus::Succeeded, "{won:?}");
    assert!(
        matches!(&lost, Error::DeployInProgress { by, .. } if by == winner),
        "{lost:?}"
    );
    assert_eq!(h.users_see().await, format!("switchyard-demo {version}\n"));
    assert_eq!(
        h.history().await.len(),
        2,
        "v1 and the winner's deploy only"
    );
}

#[tokio::test]
async fn a_failed_switch_leaves_the_previous_slot_active() {
    let mut h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;

    // The proxy dies after the preflight passed and the new slot was launched:
    // the switch step cannot reach it.
    let proxy = h.proxy.clone();
    *h.runtime.after_start.lock().unwrap() = Some(Box::new(move || {
        if let Some(mut p) = proxy.lock().unwrap().take() {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }));
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("switch"), "{msg}");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let blue = h.slot(SlotColor::Blue).await;
    assert!(pid_alive(pid_of(&blue)), "the active slot was not touched");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.handle, None, "the new slot was stopped: {green:?}");
    let v2_pid = *h.runtime.started.lock().unwrap().last().unwrap();
    assert!(!pid_alive(v2_pid));

    // The proxy comes back from its state file still serving v1.
    h.restart_proxy();
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

/// Each action leaves exactly its audit entry, in order, with who, where and
/// why — and the chain verifies. Passwords never appear.
#[tokio::test]
async fn every_action_leaves_exactly_its_audit_entry() {
    use engine::audit::{self, Verdict};
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let before = audit::recent(&pool, 1000).await.unwrap().len();

    let admin = Actor::system();
    let dora = h
        .engine
        .create_user(&admin, "dora", "dora's long password", Role::Deployer)
        .await
        .unwrap();
    let vic = h
        .engine
        .create_user(&admin, "vic", "vic's long password", Role::Viewer)
        .await
        .unwrap();
    let ip = Some("192.0.2.7".to_string());
    h.engine
        .login("dora", "dora's long password", ip.clone())
        .await
        .unwrap();
    assert!(h
        .engine
        .login("dora", "not the password at all", ip.clone())
        .await
        .is_err());
    let dora = Actor::user(dora).from_ip(ip.clone());
    let vic = Actor::user(vic).from_ip(ip.clone());
    assert!(h.engine.deploy(&vic, ENV, "v2").await.is_err());
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    let failed = h.engine.deploy(&dora, ENV, "v2+crash").await.unwrap();
    assert_eq!(failed.status, DeploymentStatus::Failed);
    // The failed deploy replaced the standby, so deploy v3 to have one again.
    h.engine.deploy(&dora, ENV, "v3").await.unwrap();
    h.engine
        .rollback(&dora, ENV, "checkout errors after v3")
        .await
        .unwrap();
    h.engine.logout(&dora).await.unwrap();

    let mut rows = audit::recent(&pool, 1000).await.unwrap();
    rows.truncate(rows.len() - before);
    rows.reverse();
    let seen: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|e| {
            (
                e.action.clone(),
                e.actor_name.clone(),
                e.result.clone(),
                e.target.clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let expected = vec![
        (s("user.create"), s("system"), s("ok"), Some(s("dora"))),
        (s("user.create"), s("system"), s("ok"), Some(s("vic"))),
        (s("auth.login"), s("dora"), s("ok"), None),
        (s("auth.login"), s("dora"), s("failed"), None),
        (s("deploy.request"), s("vic"), s("denied"), None),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v2"))),
        (s("deploy.finish"), s("dora"), s("ok"), Some(s("v2"))),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v2+crash"))),
        (
            s("deploy.finish"),
            s("dora"),
            s("failed"),
            Some(s("v2+crash")),
        ),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v3"))),
        (s("deploy.finish"), s("dora"), s("ok"), Some(s("v3"))),
        (s("rollback.start"), s("dora"), s("ok"), Some(s("v2"))),
        (s("rollback.finish"), s("dora"), s("ok"), Some(s("v2"))),
        (s("auth.logout"), s("dora"), s("ok"), None),
    ];
    assert_eq!(seen, expected);

    let failed_login = &rows[3];
    assert_eq!(failed_login.actor_kind, "anonymous");
    let rollback = &rows[11];
    assert_eq!(rollback.reason.as_deref(), Some("checkout errors after v3"));
    assert_eq!(rollback.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(rollback.environment.as_deref(), Some(ENV));
    assert!(rows[8].details.contains("exited"), "{}", rows[8].details);

    let everything: String = audit::recent(&pool, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    for secret in [
        "dora's long password",
        "not the password at all",
        TOKEN,
        "$argon2",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the audit log"
        );
    }
    assert!(matches!(
        audit::verify(&pool).await.unwrap(),
        Verdict::Intact { .. }
    ));
}

/// An environment's health expectations: a 200 whose body lacks the
/// expected text, or a status other than the expected one, is not healthy,
/// so the deploy fails and users stay; met, the same build goes live.
#[tokio::test]
async fn a_health_answer_must_meet_the_environments_expectations() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let system = Actor::system();
    let expect = |status: Option<u16>, body: Option<&str>| {
        let (h, system) = (&h, &system);
        let body = body.map(String::from);
        async move {
            let mut config = h.engine.environment_config(system, ENV).await.unwrap();
            config.health_status = status;
            config.health_body = body;
            h.engine.edit_environment(system, &config).await.unwrap();
        }
    };
    let v1 = "switchyard-demo v1\n";

    // The demo answers {"status":"ok",…}: it never says "ready".
    expect(None, Some("\"status\":\"ready\"")).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.unwrap_or_default();
    assert!(msg.contains("lacks"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.active().await, Some(SlotColor::Blue));

    expect(Some(204), None).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    assert!(d.message.unwrap_or_default().contains("expected 204"));
    assert_eq!(h.users_see().await, v1);

    expect(Some(200), Some("\"status\":\"ok\"")).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    // Written down and read back the same way.
    let config = h.engine.environment_config(&system, ENV).await.unwrap();
    assert_eq!(config.health_status, Some(200));
    assert_eq!(config.health_body.as_deref(), Some("\"status\":\"ok\""));

    // Bad expectations are refused naming the field, and change nothing.
    for (status, body, field) in [
        (Some(99), None, "health_status"),
        (Some(600), None, "health_status"),
        (None, Some("a\nb"), "health_body"),
    ] {
        let mut config = h.engine.environment_config(&system, ENV).await.unwrap();
        config.health_status = status;
        config.health_body = body.map(String::from);
        let e = h
            .engine
            .edit_environment(&system, &config)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { field: f, .. } if f == field),
            "{e:?}"
        );
    }
    let config = h.engine.environment_config(&system, ENV).await.unwrap();
    assert_eq!(config.health_status, Some(200));
}
