//! Freeze windows on the engine: a deploy during one is refused with its
//! reason and changes nothing, the dry run shows it, a rollback goes
//! through, only an admin may override (with a reason, audited), and
//! windows are checked and audited when added and removed.

mod support;

use engine::pipeline::DeployOptions;
use engine::{Actor, Error};
use model::{AuditFilter, DeploymentStatus, FreezeKind, NewFreeze, Role};
use support::harness::{Harness, ENV};

/// A weekly window holding now: every day, from an hour ago, for two hours.
fn holding_now(reason: &str) -> NewFreeze {
    let start = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    NewFreeze {
        reason: reason.into(),
        kind: FreezeKind::Weekly,
        starts: None,
        ends: None,
        days: Some("mon,tue,wed,thu,fri,sat,sun".into()),
        start_time: Some(start),
        duration_minutes: Some(120),
        time_zone: Some("UTC".into()),
    }
}

#[tokio::test]
async fn a_freeze_stops_deploys_but_never_rollbacks_and_only_admins_override_it() {
    let h = Harness::with_v1_live().await;
    let admin = h.user("ada", Role::Admin).await;
    let dora = h.user("dora", Role::Deployer).await;
    h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // Only admins set freezes.
    let refused = h.engine.add_freeze(&dora, ENV, &holding_now("x")).await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );
    let freeze = h
        .engine
        .add_freeze(&admin, ENV, &holding_now("end-of-year freeze"))
        .await
        .unwrap();
    assert!(freeze.active_until.is_some(), "{freeze:?}");
    assert!(
        freeze
            .schedule
            .starts_with("every mon,tue,wed,thu,fri,sat,sun"),
        "{}",
        freeze.schedule
    );

    let before = h.history().await.len();
    let refused = h.engine.deploy(&dora, ENV, "v3").await;
    match &refused {
        Err(e @ Error::Frozen { reason, .. }) => {
            assert_eq!(reason, "end-of-year freeze");
            assert!(
                e.to_string()
                    .starts_with("deploys to production are frozen until "),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.history().await.len(), before, "nothing was started");
    let plan = h.engine.plan_deploy(&dora, ENV, "v3").await.unwrap();
    assert!(!plan.ready);
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.contains("end-of-year freeze")),
        "{:?}",
        plan.blockers
    );

    // A deployer cannot override; an admin can, with a reason.
    let options = DeployOptions {
        override_freeze: Some("security fix CVE-1".into()),
    };
    let refused = h.engine.prepare_deploy(&dora, ENV, "v3", &options).await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{:?}",
        refused.err()
    );
    let blank = DeployOptions {
        override_freeze: Some("  ".into()),
    };
    assert!(matches!(
        h.engine.prepare_deploy(&admin, ENV, "v3", &blank).await,
        Err(Error::Frozen { .. })
    ));
    let prepared = h
        .engine
        .prepare_deploy(&admin, ENV, "v3", &options)
        .await
        .unwrap();
    let d = h.engine.execute(prepared).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v3\n");
    let overrides = h
        .engine
        .audit_search(
            &Actor::system(),
            &AuditFilter {
                action: Some("freeze.override".into()),
                ..AuditFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(overrides.entries.len(), 1);
    assert_eq!(overrides.entries[0].actor_name, "ada");
    assert_eq!(
        overrides.entries[0].reason.as_deref(),
        Some("security fix CVE-1")
    );

    // Rollbacks are the way out: never frozen.
    let rb = h
        .engine
        .rollback(&dora, ENV, "v3 misbehaves")
        .await
        .unwrap();
    assert_eq!(rb.status, DeploymentStatus::Succeeded);
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // Removed: deploys go again.
    h.engine
        .remove_freeze(&admin, ENV, freeze.id)
        .await
        .unwrap();
    assert!(h.engine.freezes(&dora, ENV).await.unwrap().is_empty());
    let d = h.engine.deploy(&dora, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    let again = h.engine.remove_freeze(&admin, ENV, freeze.id).await;
    assert!(matches!(again, Err(Error::NotFound(_))), "{again:?}");
}

#[tokio::test]
async fn a_window_not_holding_now_lets_deploys_through_and_bad_windows_are_refused() {
    let h = Harness::with_v1_live().await;
    let admin = h.user("ada", Role::Admin).await;
    let later = NewFreeze {
        reason: "next year's freeze".into(),
        kind: FreezeKind::Once,
        starts: Some("2099-12-24 00:00".into()),
        ends: Some("2099-12-27 00:00".into()),
        days: None,
        start_time: None,
        duration_minutes: None,
        time_zone: Some("Europe/Berlin".into()),
    };
    let f = h.engine.add_freeze(&admin, ENV, &later).await.unwrap();
    assert_eq!(f.active_until, None);
    assert_eq!(
        f.schedule,
        "2099-12-24 00:00 → 2099-12-27 00:00 (Europe/Berlin)"
    );
    let d = h.engine.deploy(&admin, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded);

    for (bad, field) in [
        (
            NewFreeze {
                reason: " ".into(),
                ..later.clone()
            },
            "reason",
        ),
        (
            NewFreeze {
                time_zone: Some("Nowhere/Land".into()),
                ..later.clone()
            },
            "time_zone",
        ),
        (
            NewFreeze {
                ends: Some("2099-12-23 00:00".into()),
                ..later.clone()
            },
            "ends",
        ),
    ] {
        match h.engine.add_freeze(&admin, ENV, &bad).await {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(
        h.engine.freezes(&admin, ENV).await.unwrap().len(),
        1,
        "refusals added nothing"
    );
}
