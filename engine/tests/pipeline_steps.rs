//! The deploy pipeline step by step: the timeline each deploy and rollback
//! records (order, timestamps, messages, progress while running), a health
//! wait that fails and skips the rest, the gates that keep a bad release from
//! users, the drain that lets the old slot finish its requests under load,
//! the dry run that changes nothing, and the pipeline settings admins change.
//! A real `switchyard-proxy` in front of real `switchyard-demo` slot
//! processes, the engine with the process runtime and a SQLite file.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` (or
//! `cargo build --workspace`) before `cargo test`. Each test starts its own
//! proxy and slots (see `support::harness`) and kills them when it ends.

use engine::environments;
use engine::{Actor, Error};
use model::{DeploymentStatus, Role, SlotColor, SlotState, StepStatus};
use std::time::{Duration, Instant};

mod support;

use support::harness::{step_names, Harness, Load, ENV, TOKEN};

fn at(ts: &Option<String>) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(ts.as_deref().expect("a timestamp"))
        .expect("an RFC 3339 timestamp")
}

#[tokio::test]
async fn a_deploy_records_its_steps_in_order_as_they_happen() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let dora = h.user("dora", Role::Deployer).await;

    // The first deploy has no old slot to keep warm.
    let boot = h.history().await[0].id;
    let first = h.engine.deployment(&vic, boot).await.unwrap();
    assert_eq!(
        step_names(&first.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Succeeded),
            ("switch", Succeeded),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    assert!(first.steps[7]
        .message
        .as_deref()
        .unwrap()
        .contains("first deploy"));

    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    // Viewers read a deployment's steps as they read the history.
    let detail = h.engine.deployment(&vic, d.id).await.unwrap();
    assert_eq!(detail.deployment, d);
    assert_eq!(detail.elapsed_ms, d.duration_ms.unwrap());
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Succeeded),
            ("switch", Succeeded),
            ("drain", Succeeded),
            ("standby", Succeeded),
        ]
    );
    let started = at(&Some(d.started_at.clone()));
    let finished = at(&d.finished_at);
    let mut previous_end = started;
    for (i, s) in detail.steps.iter().enumerate() {
        assert_eq!(s.seq, i as i64 + 1);
        let (from, to) = (at(&s.started_at), at(&s.finished_at));
        assert!(
            from >= previous_end,
            "{} began before the step before it ended",
            s.name
        );
        assert!(to >= from, "{} ended before it began", s.name);
        assert!(to <= finished, "{} ended after the deployment", s.name);
        assert_eq!(s.duration_ms, Some((to - from).num_milliseconds()));
        assert!(s.message.as_deref().is_some_and(|m| !m.is_empty()), "{s:?}");
        previous_end = to;
    }
    let message = |name: &str| {
        detail
            .steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.message.clone())
            .unwrap()
    };
    assert!(
        message("start").contains("v2 started in green"),
        "{}",
        message("start")
    );
    assert!(
        message("switch").contains("users now reach green"),
        "{}",
        message("switch")
    );
    assert!(
        message("drain").starts_with("blue gets no new requests; "),
        "{}",
        message("drain")
    );
    assert!(
        message("standby").contains("blue (v1)"),
        "{}",
        message("standby")
    );

    // A rollback: the lock, then the switch back.
    let r = h.engine.rollback(&dora, ENV, "steps test").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let detail = h.engine.deployment(&vic, r.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [("lock", Succeeded), ("switch", Succeeded)]
    );
    assert!(detail.steps[1]
        .message
        .as_deref()
        .unwrap()
        .starts_with("switched back to blue (v1)"));

    // Nothing in any step is a secret.
    for id in [boot, d.id, r.id] {
        let detail = h.engine.deployment(&vic, id).await.unwrap();
        let text = format!("{detail:?}");
        assert!(!text.contains(TOKEN), "the proxy token leaked: {text}");
    }
    let e = h.engine.deployment(&vic, 9999).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_deploy_that_never_turns_healthy_says_why_and_skips_the_rest() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v1\n",
        "users stay on v1"
    );
    assert_eq!(h.active().await, Some(SlotColor::Blue));

    let detail = h.engine.deployment(&dora, d.id).await.unwrap();
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
    let why = health.message.as_deref().unwrap();
    assert!(why.contains("not healthy within 3.0 s"), "{why}");
    assert!(
        why.contains("503"),
        "the last probe's answer is shown: {why}"
    );
    assert!(health.finished_at.is_some());
    assert!(
        health.duration_ms.unwrap() >= 3000,
        "the health wait lasted its deadline: {health:?}"
    );
    for s in &detail.steps[4..] {
        assert_eq!(
            (&s.started_at, &s.finished_at, &s.message),
            (&None, &None, &None),
            "{s:?} was never reached"
        );
    }
}

#[tokio::test]
async fn a_running_deploy_shows_its_progress() {
    // +slow binds its port after 3 s: the health step runs for a while.
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;

    let deploy = tokio::spawn({
        let engine = h.engine.clone();
        async move { engine.deploy(&dora, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let newest = h.history().await[0].clone();
        if newest.id != d.id {
            let detail = h.engine.deployment(&vic, newest.id).await.unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == StepStatus::Running)
            {
                break detail;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the health step never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.deployment.status, DeploymentStatus::Running);
    assert_eq!(seen.deployment.duration_ms, None);
    use StepStatus::*;
    assert_eq!(
        step_names(&seen.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Running),
            ("gates", Pending),
            ("switch", Pending),
            ("drain", Pending),
            ("standby", Pending),
        ]
    );
    let health = &seen.steps[3];
    assert!(health.started_at.is_some() && health.finished_at.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = h.engine.deployment(&vic, seen.deployment.id).await.unwrap();
    if later.deployment.status == DeploymentStatus::Running {
        assert!(later.elapsed_ms > seen.elapsed_ms, "{later:?}");
        assert!(later.steps[3].duration_ms > health.duration_ms, "{later:?}");
    }

    let done = deploy.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    let detail = h.engine.deployment(&vic, done.id).await.unwrap();
    assert!(
        detail.steps.iter().all(|s| s.status == Succeeded),
        "{detail:?}"
    );
}

/// The gates step of a deploy that failed it, after checking that users never
/// left v1 and the failed release is not left running.
async fn failed_gates(h: &Harness, actor: &Actor, version: &str) -> String {
    use StepStatus::*;
    let d = h.engine.deploy(actor, ENV, version).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{version}: {d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n", "{version}");
    assert_eq!(h.active().await, Some(SlotColor::Blue), "{version}");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(
        (green.state, green.handle.as_deref()),
        (SlotState::Stopped, None),
        "{version}: the release that failed its gates is stopped"
    );
    let detail = h.engine.deployment(actor, d.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Failed),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ],
        "{version}"
    );
    detail.steps[4].message.clone().unwrap()
}

#[tokio::test]
async fn a_release_that_fails_its_gates_never_reaches_users() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();

    // Defaults: smoke "/" and 50 sample requests. Every second request of
    // v2+errors answers 500: the smoke request is the first, the sample's
    // error rate is 50 %.
    let why = failed_gates(&h, &dora, "v2+errors").await;
    assert!(
        why.contains("performance: errors 50.0 % = 25/50 (limit < 1.0 %)"),
        "{why}"
    );

    // A second smoke route gets the second request: it answers 500.
    let mut gates = env.gates.clone();
    gates.smoke_paths = vec!["/".into(), "/api/orders".into()];
    environments::set_gates(h.engine.pool(), env.id, &gates)
        .await
        .unwrap();
    let why = failed_gates(&h, &dora, "v2+errors").await;
    assert!(
        why.contains("smoke: /api/orders answered 500 Internal Server Error"),
        "{why}"
    );

    // 300 ms per answer: the sample's p95 crosses 200 ms.
    gates.sample_requests = 12;
    environments::set_gates(h.engine.pool(), env.id, &gates)
        .await
        .unwrap();
    let why = failed_gates(&h, &dora, "v2+laggy").await;
    let p95: f64 = why
        .split("p95 ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no measured p95 in {why}"));
    assert!(p95 >= 300.0, "the demo sleeps 300 ms per answer: {why}");
    assert!(why.contains(" ms (limit < 200.0 ms)"), "{why}");

    // Invalid settings are refused and change nothing.
    let bad = engine::gates::GateSettings {
        smoke_paths: vec!["api".into()],
        ..gates.clone()
    };
    let e = environments::set_gates(h.engine.pool(), env.id, &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "smoke_paths",
                ..
            }
        ),
        "{e}"
    );
    let stored = environments::find(h.engine.pool(), ENV)
        .await
        .unwrap()
        .gates;
    assert_eq!(stored, gates);

    // A good release passes both gates and says what it measured.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    let detail = h.engine.deployment(&dora, d.id).await.unwrap();
    let passed = detail.steps[4].message.clone().unwrap();
    assert_eq!(detail.steps[4].name, "gates");
    assert!(passed.contains("smoke / 200, /api/orders 200"), "{passed}");
    assert!(passed.contains("12 requests to /: p95 "), "{passed}");
}

/// Deploys `version` while 6 users keep asking; asserts every one of their
/// requests was answered 200 and returns the drain step's message.
async fn deploy_under_load(h: &Harness, actor: &Actor, version: &str) -> String {
    let load = Load::start(h, 6);
    // Let the slow answers pile up in flight before the switch.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = h.engine.deploy(actor, ENV, version).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answers = load.finish().await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a, Ok((200, _))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while deploying {version}: {failed:?}",
        failed.len(),
        answers.len()
    );
    let new = format!("switchyard-demo {version}\n");
    assert!(
        answers.iter().any(|a| matches!(a, Ok((_, b)) if *b == new)),
        "no user reached {version}"
    );
    let detail = h.engine.deployment(actor, d.id).await.unwrap();
    let drain = detail.steps.iter().find(|s| s.name == "drain").unwrap();
    assert_eq!(drain.status, StepStatus::Succeeded, "{drain:?}");
    drain.message.clone().unwrap()
}

/// The number right before `marker` in `text`.
fn number_before(text: &str, marker: &str) -> u64 {
    text.split(marker)
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {marker:?} in {text}"))
}

#[tokio::test]
async fn the_old_slot_finishes_its_requests_after_the_switch() {
    let h = Harness::new(Duration::from_secs(3)).await;
    let dora = h.user("dora", Role::Deployer).await;
    let pool = h.engine.pool();
    let env = environments::find(pool, ENV).await.unwrap();
    // A slow release (300 ms per answer) goes live; its gates allow for that.
    let mut gates = env.gates.clone();
    gates.p95 = Duration::from_secs(2);
    gates.p99 = Duration::from_secs(3);
    gates.sample_requests = 8;
    environments::set_gates(pool, env.id, &gates).await.unwrap();
    let d = h.engine.deploy(&dora, ENV, "v2+laggy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // v3 replaces it under load: requests that reached blue before the
    // switch finish there, and the drain waited for them.
    let drained = deploy_under_load(&h, &dora, "v3").await;
    assert!(
        drained.starts_with("blue gets no new requests; "),
        "{drained}"
    );
    assert!(
        number_before(&drained, " in flight at the switch") >= 1,
        "6 users with 300 ms answers had requests in flight: {drained}"
    );
    assert!(drained.contains(", 0 after "), "{drained}");

    // Back on the slow release, with a drain deadline shorter than one of its
    // answers: the deploy goes on after the deadline, and the requests still
    // running on blue finish anyway (it stays up as the standby).
    let r = h.engine.rollback(&dora, ENV, "drain test").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let timings = environments::Timings {
        drain_timeout: Duration::from_millis(100),
        ..env.timings()
    };
    environments::set_timings(pool, env.id, timings)
        .await
        .unwrap();
    let drained = deploy_under_load(&h, &dora, "v1").await;
    assert!(
        drained.starts_with("drain deadline of 0.1 s passed with "),
        "{drained}"
    );
    assert!(
        number_before(&drained, " request(s) still in flight on blue") >= 1,
        "{drained}"
    );
}

#[tokio::test]
async fn a_dry_run_shows_the_plan_and_what_blocks_it_without_changing_anything() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;
    let before_history = h.history().await;
    let before_env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let before_green = h.slot(SlotColor::Green).await;

    let plan = h.engine.plan_deploy(&dora, ENV, " v2 ").await.unwrap();
    assert!(plan.ready, "{plan:?}");
    assert_eq!(
        (plan.environment.as_str(), plan.version.as_str()),
        (ENV, "v2")
    );
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    let mut expected: Vec<&str> = engine::pipeline::DEPLOY
        .iter()
        .map(|s| s.as_str())
        .collect();
    expected.push("watch");
    assert_eq!(names, expected);
    let detail = |n: &str| {
        plan.steps
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(detail("lock"), "take production's lock (free now)");
    assert!(
        detail("start").starts_with("start v2 in green with the process runtime"),
        "{}",
        detail("start")
    );
    assert!(
        detail("health").starts_with("GET /health every 50 ms until 2xx, for up to 3 s"),
        "{}",
        detail("health")
    );
    assert!(
        detail("gates")
            .contains("smoke routes / must answer 2xx; 50 sample requests: p95 < 200 ms"),
        "{}",
        detail("gates")
    );
    assert!(
        detail("switch").starts_with("users move from blue (v1) to green (v2)"),
        "{}",
        detail("switch")
    );
    assert!(
        detail("standby").starts_with("blue (v1) stays warm for 15 min"),
        "{}",
        detail("standby")
    );
    assert_eq!(detail("watch"), "off for this environment");

    // Everything in the way, in one answer.
    let plan = h.engine.plan_deploy(&dora, ENV, "v9").await.unwrap();
    assert!(!plan.ready);
    assert!(
        plan.blockers[0].starts_with("unknown version v9: "),
        "{plan:?}"
    );
    h.kill_proxy();
    let plan = h.engine.plan_deploy(&dora, ENV, "v2").await.unwrap();
    assert!(!plan.ready);
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.starts_with("the builtin router does not answer")),
        "{plan:?}"
    );

    // Refused the same way as a deploy.
    let e = h.engine.plan_deploy(&vic, ENV, "v2").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h
        .engine
        .plan_deploy(&dora, ENV, "../etc")
        .await
        .unwrap_err();
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

    // Nothing changed.
    assert_eq!(h.history().await, before_history);
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    assert_eq!(
        (env.active, env.routing_generation),
        (before_env.active, before_env.routing_generation)
    );
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(
        (green.handle, green.version, green.state),
        (
            before_green.handle,
            before_green.version,
            before_green.state
        )
    );
}

#[tokio::test]
async fn admins_change_the_pipeline_settings_and_the_next_deploy_uses_them() {
    use engine::audit;
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let dora = h.user("dora", Role::Deployer).await;
    let ada = h.user("ada", Role::Admin).await;
    let before = h.engine.pipeline_settings(&vic, ENV).await.unwrap();
    assert_eq!(before.sample_requests, 50);
    assert_eq!(before.p95_ms, 200);

    let mut wanted = before.clone();
    wanted.smoke_paths = "/\n/health".into();
    wanted.sample_requests = 20;
    wanted.p95_ms = 150;
    wanted.drain_timeout_ms = 5_000;
    wanted.standby_window_ms = 0;

    // Only admins; refusals change nothing.
    for who in [&vic, &dora] {
        let e = h
            .engine
            .set_pipeline_settings(who, ENV, &wanted)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    }
    let mut bad = Vec::new();
    type Change = fn(&mut model::PipelineSettings);
    let changes: [(&str, Change); 8] = [
        ("p95 0", |s| s.p95_ms = 0),
        ("relative smoke route", |s| s.smoke_paths = "health".into()),
        ("deadline below interval", |s| s.health_deadline_ms = 10),
        ("drain 0", |s| s.drain_timeout_ms = 0),
        ("errors 150 %", |s| s.max_error_pct = 150.0),
        ("errors NaN", |s| s.max_error_pct = f64::NAN),
        ("huge sample", |s| s.sample_requests = 1_000_000),
        ("a year of standby", |s| {
            s.standby_window_ms = 365 * 24 * 3600 * 1000
        }),
    ];
    for (what, change) in changes {
        let mut s = wanted.clone();
        change(&mut s);
        match h.engine.set_pipeline_settings(&ada, ENV, &s).await {
            Err(Error::InvalidInput { message, .. }) => bad.push(message),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(bad.len(), 8);
    assert_eq!(h.engine.pipeline_settings(&vic, ENV).await.unwrap(), before);

    let saved = h
        .engine
        .set_pipeline_settings(&ada, ENV, &wanted)
        .await
        .unwrap();
    assert_eq!(saved, wanted);
    assert_eq!(h.engine.pipeline_settings(&vic, ENV).await.unwrap(), wanted);
    let entry = audit::recent(h.engine.pool(), 5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "environment.settings")
        .expect("audited");
    assert_eq!(entry.actor_name, "ada");
    assert!(
        entry.details.contains("\"sample_requests\":20"),
        "{}",
        entry.details
    );
    assert!(
        entry.details.contains("\"sample_requests\":50"),
        "{}",
        entry.details
    );

    // The next deploy runs with them: its gates step reports 20 requests on
    // two smoke routes.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let detail = h.engine.deployment(&vic, d.id).await.unwrap();
    let gates = detail.steps.iter().find(|s| s.name == "gates").unwrap();
    let m = gates.message.as_deref().unwrap();
    assert!(m.contains("/health") && m.contains("20 requests"), "{m}");
}
