//! The events webhooks announce, produced by the real pipeline and approvals
//! rather than written by hand: a deploy that starts, succeeds and is rolled
//! back by its watch window (with the evidence), and an item signed. A real
//! `switchyard-proxy` and `switchyard-demo` slots (see `support::harness`),
//! and a real HTTP receiver in this test.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy`.

mod support;

use axum::extract::State;
use axum::routing::post;
use engine::{environments, SecretBox, WebhookTiming};
use model::{DeploymentStatus, NewWebhook, ReleaseRequest, Role, WebhookFormat};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::harness::{Harness, Load, ENV};

type Got = Arc<Mutex<Vec<Value>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(|State(g): State<Got>, body: String| async move {
                g.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                "ok"
            }),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

fn of_type(got: &Got, t: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == t)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_deploy_its_automatic_rollback_and_a_signature_are_announced() {
    let h = Harness::with_v1_live().await;
    let engine = h
        .engine
        .clone()
        .with_secrets(SecretBox::open(h.dir.path()).unwrap());
    let admin = h.user("ada", Role::Admin).await;
    let dora = h.user("dora", Role::Deployer).await;
    let abe = h.user("abe", Role::Approver).await;
    let (got, url) = receiver().await;
    engine
        .add_webhook(
            &admin,
            ENV,
            &NewWebhook {
                url,
                events: vec![],
                format: WebhookFormat::Standard,
                allow_private: true,
            },
        )
        .await
        .unwrap();
    // The console's round, as `switchyard serve` runs it.
    let rounds = tokio::spawn({
        let engine = engine.clone();
        async move {
            loop {
                engine
                    .webhook_round(&WebhookTiming::default())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // A bad build the gates let through; the watch rolls it back.
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let lax = engine::gates::GateSettings {
        smoke_paths: vec![],
        sample_requests: 0,
        ..env.gates.clone()
    };
    environments::set_gates(h.engine.pool(), env.id, &lax)
        .await
        .unwrap();
    let timings = environments::Timings {
        watch_window: Duration::from_secs(60),
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
    let load = Load::start(&h, 4);
    let d = engine.deploy(&dora, ENV, "v2+errors").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let deadline = Instant::now() + Duration::from_secs(40);
    while of_type(&got, "rollback.automatic").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no rollback announced: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load.finish().await;

    let started = of_type(&got, "deploy.started");
    assert!(
        started.iter().any(|b| b["data"]["version"] == "v2+errors"
            && b["data"]["deployment"] == d.id
            && b["data"]["actor"] == "dora"),
        "{started:?}"
    );
    let succeeded = of_type(&got, "deploy.succeeded");
    assert!(
        succeeded.iter().any(|b| b["data"]["deployment"] == d.id),
        "{succeeded:?}"
    );
    let rollback = &of_type(&got, "rollback.automatic")[0];
    let evidence = rollback["data"]["evidence"].as_str().unwrap();
    assert!(
        evidence.starts_with(&format!(
            "automatic rollback of deployment #{}: error rate ",
            d.id
        )),
        "{rollback}"
    );
    assert_eq!(rollback["data"]["to_version"], "v1");

    // A signature on a release's checklist.
    engine.reset_checklist(&admin, ENV).await.unwrap();
    let release = engine
        .request_release(
            &dora,
            &ReleaseRequest {
                environment: ENV.into(),
                version: "v3".into(),
                notes: String::new(),
                migration_sql: String::new(),
            },
        )
        .await
        .unwrap();
    let item = release
        .items
        .iter()
        .find(|i| i.auto_check.is_none() && Role::Approver.covers(i.required_role))
        .expect("an item an approver signs");
    engine
        .sign_item(&abe, release.id, item.id, release.revision, "looks fine")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while of_type(&got, "item.signed").is_empty() {
        assert!(Instant::now() < deadline, "{:?}", got.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signed = &of_type(&got, "item.signed")[0];
    assert_eq!(signed["data"]["actor"], "abe");
    assert_eq!(signed["data"]["title"], item.title.as_str());
    let needed = &of_type(&got, "signature.needed")[0];
    assert_eq!(needed["data"]["release"], release.id);
    rounds.abort();
}

#[tokio::test]
async fn a_standby_stopped_at_the_end_of_its_window_is_announced() {
    let h = Harness::with_v1_live().await;
    let engine = h
        .engine
        .clone()
        .with_secrets(SecretBox::open(h.dir.path()).unwrap());
    let admin = h.user("ada", Role::Admin).await;
    let (got, url) = receiver().await;
    engine
        .add_webhook(
            &admin,
            ENV,
            &NewWebhook {
                url,
                events: vec![model::WebhookEvent::StandbyExpired],
                format: WebhookFormat::Slack,
                allow_private: true,
            },
        )
        .await
        .unwrap();
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let timings = environments::Timings {
        standby_window: Duration::from_secs(1),
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
    let d = engine.deploy(&admin, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.expire_standbys().await.unwrap();
    engine
        .webhook_round(&WebhookTiming::default())
        .await
        .unwrap();
    let got = got.lock().unwrap().clone();
    // Only the subscribed event, in Slack's format.
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0]["text"].as_str().unwrap();
    assert!(
        text.contains("standby (v1)") && text.contains(ENV),
        "{text}"
    );
}
