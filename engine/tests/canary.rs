//! A held deploy's canary, end to end: real `switchyard-demo` slot processes,
//! a real `switchyard-proxy` with its preview listener, the process runtime
//! and a SQLite file. While v2 is held at preview, a deployer sends a share
//! of new users (sticky by cookie) and testers (by header or cookie) to it;
//! promote moves everyone to v2, abort everyone back to v1, and neither
//! leaves a canary in the proxy's table.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::environments;
use engine::router::{BuiltinRouter, TrafficRouter};
use engine::{Actor, Engine, Error};
use model::{
    CanarySetting, DeploymentStatus, DeploymentView, NameValue, Role, RoutingTable, SlotColor,
    StepStatus,
};
use std::time::{Duration, Instant};

mod support;

use support::harness::{Harness, ENV, TOKEN};

const V1: &str = "switchyard-demo v1\n";
const V2: &str = "switchyard-demo v2\n";

/// v1 live behind a proxy with a preview listener, deploys held at preview.
async fn held_environment() -> Harness {
    let h = Harness::with_preview(Duration::from_secs(3)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let admin = h.user("ada", Role::Admin).await;
    let mut s = h.engine.pipeline_settings(&admin, ENV).await.unwrap();
    s.hold_at_preview = true;
    s.hold_timeout_ms = 10 * 60_000;
    h.engine
        .set_pipeline_settings(&admin, ENV, &s)
        .await
        .unwrap();
    h
}

/// Starts a deploy of `version` and waits until it is held.
async fn deploy_until_held(
    h: &Harness,
    actor: &Actor,
    version: &str,
) -> (
    i64,
    tokio::task::JoinHandle<engine::error::Result<DeploymentView>>,
) {
    let (engine, actor2, v) = (h.engine.clone(), actor.clone(), version.to_string());
    let task = tokio::spawn(async move { engine.deploy(&actor2, ENV, &v).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the deploy was never held");
        if let Some(d) = h.history().await.first() {
            if d.to_version.as_deref() == Some(version) {
                let detail = h.engine.deployment(actor, d.id).await.unwrap();
                let holding = detail.steps.iter().any(|s| {
                    s.name == "hold" && s.status == StepStatus::Running && s.message.is_some()
                });
                if holding && detail.hold.is_some() {
                    return (d.id, task);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The proxy's table, read over its admin API.
async fn proxy_table(h: &Harness) -> RoutingTable {
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    BuiltinRouter::new(&env.proxy_admin_url, TOKEN.to_string())
        .current()
        .await
        .unwrap()
}

/// What one request through the public address gets: its body and the
/// `switchyard_slot=…` pair the proxy pinned the client with, if any.
async fn visit(h: &Harness, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let mut req = h.http.get(format!("http://{}/", h.public));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let pinned = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    (res.text().await.unwrap(), pinned)
}

fn tester(header: Option<(&str, &str)>, cookie: Option<(&str, &str)>) -> CanarySetting {
    let nv = |(name, value): (&str, &str)| NameValue {
        name: name.into(),
        value: value.into(),
    };
    CanarySetting {
        percent: 0,
        header: header.map(nv),
        cookie: cookie.map(nv),
    }
}

async fn canary_audit(engine: &Engine) -> Vec<(String, String)> {
    engine::store::query_as(
        "SELECT actor_name, details FROM audit_log WHERE action = 'deploy.canary' ORDER BY id",
    )
    .fetch_all(engine.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_canary_shares_new_users_sticky_and_testers_reach_the_held_slot_until_promoted() {
    let h = held_environment().await;
    let dana = h.user("dana", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;
    let v1_id = h.history().await[0].id;
    let (id, task) = deploy_until_held(&h, &dana, "v2").await;
    let half = CanarySetting {
        percent: 50,
        ..tester(Some(("X-Tester", "me")), Some(("tester", "yes")))
    };

    // A viewer is refused before anything is looked up, even for an id
    // that does not exist; a deploy that is not held is refused.
    for dep in [id, 999_999] {
        let e = h.engine.set_canary(&vic, dep, &half).await.unwrap_err();
        assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    }
    let e = h.engine.set_canary(&dana, v1_id, &half).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
    // Bad input names its field and changes nothing.
    let e = h
        .engine
        .set_canary(
            &dana,
            id,
            &CanarySetting {
                percent: 101,
                ..half.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("percent"), "{e}");
    let bad = tester(Some(("X Tester", "me")), None);
    let e = h.engine.set_canary(&dana, id, &bad).await.unwrap_err();
    assert_eq!(e.field(), Some("tester_header"), "{e}");
    let table = proxy_table(&h).await;
    assert_eq!((table.canary, table.testers), (None, None));
    assert!(canary_audit(&h.engine).await.is_empty());
    for _ in 0..4 {
        assert_eq!(visit(&h, &[]).await, (V1.to_string(), None));
    }

    // 50 %: of 20 new clients exactly 10 reach v2, and each keeps its slot.
    let view = h.engine.set_canary(&dana, id, &half).await.unwrap();
    assert_eq!(view.canary.as_ref(), Some(&half));
    let table = proxy_table(&h).await;
    assert_eq!(
        table.canary.map(|c| (c.slot, c.percent)),
        Some((SlotColor::Green, 50))
    );
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (body, pinned) = visit(&h, &[]).await;
        clients.push((pinned.expect("a new client is pinned"), body));
    }
    let on_v2 = clients.iter().filter(|(_, body)| body == V2).count();
    assert_eq!(on_v2, 10, "{clients:?}");
    for (cookie, body) in &clients {
        for _ in 0..3 {
            assert_eq!(visit(&h, &[("cookie", cookie)]).await, (body.clone(), None));
        }
    }
    // Testers reach v2 whatever their slot cookie says.
    assert_eq!(
        visit(
            &h,
            &[("x-tester", "me"), ("cookie", "switchyard_slot=blue")]
        )
        .await,
        (V2.to_string(), None)
    );
    assert_eq!(
        visit(&h, &[("cookie", "switchyard_slot=blue; tester=yes")]).await,
        (V2.to_string(), None)
    );

    // Share off, testers by header only: everyone else is on v1.
    let testers_only = tester(Some(("X-Tester", "me")), None);
    h.engine.set_canary(&dana, id, &testers_only).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            visit(&h, &[("x-tester", "me")]).await,
            (V2.to_string(), None)
        );
        assert_eq!(visit(&h, &[]).await, (V1.to_string(), None));
        assert_eq!(
            visit(&h, &[("x-tester", "you")]).await,
            (V1.to_string(), None)
        );
        assert_eq!(visit(&h, &[("cookie", "tester=yes")]).await.0, V1);
    }
    let table = proxy_table(&h).await;
    assert_eq!(table.canary, None);
    assert_eq!(table.testers.unwrap().header.unwrap().name, "X-Tester");

    // Recorded on the hold, audited with the actor and the values.
    let detail = h.engine.deployment(&vic, id).await.unwrap();
    assert_eq!(detail.hold.unwrap().canary, Some(testers_only));
    let audit = canary_audit(&h.engine).await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().all(|(actor, _)| actor == "dana"), "{audit:?}");
    assert!(audit[0].1.contains(r#""percent":50"#), "{audit:?}");
    assert!(audit[1].1.contains(r#""percent":0"#) && audit[1].1.contains("X-Tester"));

    // Promote: every user on v2, new or pinned to blue, and no canary left.
    h.engine.promote_hold(&dana, id).await.unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    let table = proxy_table(&h).await;
    assert_eq!(
        (table.canary, table.testers, table.preview),
        (None, None, None)
    );
    assert_eq!(table.active.unwrap().slot, SlotColor::Green);
    for (cookie, _) in &clients {
        assert_eq!(
            visit(&h, &[("cookie", cookie)]).await,
            (V2.to_string(), None)
        );
    }
    assert_eq!(visit(&h, &[]).await, (V2.to_string(), None));
    // Over: a late change is refused.
    let e = h.engine.set_canary(&dana, id, &half).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld(_)), "{e}");
}

#[tokio::test]
async fn an_abort_ends_the_canary_and_every_user_is_back_on_v1() {
    let h = held_environment().await;
    let dana = h.user("dana", Role::Deployer).await;
    let (id, task) = deploy_until_held(&h, &dana, "v2").await;
    let all = CanarySetting {
        percent: 100,
        ..tester(None, Some(("tester", "yes")))
    };
    h.engine.set_canary(&dana, id, &all).await.unwrap();
    let (body, pinned) = visit(&h, &[]).await;
    assert_eq!(body, V2);
    let green = pinned.unwrap();
    assert_eq!(green, "switchyard_slot=green");

    h.engine
        .abort_hold(&dana, id, "canary errors")
        .await
        .unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Failed, "{done:?}");
    let table = proxy_table(&h).await;
    assert_eq!(
        (table.canary, table.testers, table.preview),
        (None, None, None)
    );
    assert_eq!(table.active.unwrap().slot, SlotColor::Blue);
    for headers in [
        vec![],
        vec![("cookie", green.as_str())],
        vec![("cookie", "tester=yes")],
    ] {
        assert_eq!(visit(&h, &headers).await, (V1.to_string(), None));
    }
}
