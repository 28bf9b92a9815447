//! Promote and abort of a deploy held at preview, over the real API: who may
//! decide (the deploy role, on the environment), the codes a pipeline
//! branches on (`not_held`, `invalid_input` naming `reason`), and that a
//! refused request changes nothing. The held deployment is seeded in the
//! store (this console's environment has no proxy to deploy through); the
//! engine's own tests (engine/tests/hold.rs) run real held deploys.

mod support;

use engine::deployments::{self, NewDeployment};
use model::{DeploymentKind, SlotColor};
use serde_json::{json, Value};
use support::*;

/// A running deploy of v2 held by this console, as the hold step leaves it.
async fn held(c: &Console, minutes: i64) -> i64 {
    let env = environments::find(&c.pool, ENV).await.unwrap();
    let id = deployments::begin(
        &c.pool,
        &NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: None,
            reason: None,
            holder: Some(c.engine.holder()),
        },
    )
    .await
    .unwrap();
    engine::holds::begin(
        &c.pool,
        id,
        "http://127.0.0.1:9/",
        chrono::Utc::now() + chrono::Duration::minutes(minutes),
    )
    .await
    .unwrap();
    id
}

async fn post(c: &Console, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c
        .http
        .post(format!("{}{path}", c.origin))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn decision(c: &Console, id: i64) -> Option<String> {
    engine::holds::get(&c.pool, id)
        .await
        .unwrap()
        .unwrap()
        .decision
        .map(|d| d.as_str().to_string())
}

async fn audited(c: &Console, action: &str) -> i64 {
    engine::store::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(&c.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn deployers_decide_a_hold_once_and_everyone_else_changes_nothing() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    let viewer = c.token_for("vera", Role::Viewer, None).await;
    let deployer = c.token_for("dora", Role::Deployer, None).await;
    environments::create(
        &c.pool,
        &NewEnvironment::new(
            "staging",
            "http://127.0.0.1:2/",
            "/bin/true {version}",
            "http://127.0.0.1:3",
            "/nonexistent",
        ),
    )
    .await
    .unwrap();
    let elsewhere = c
        .token_for("dora", Role::Deployer, Some(&["staging"]))
        .await;
    let id = held(&c, 30).await;
    let promote = format!("/api/v1/deployments/{id}/hold/promote");
    let abort = format!("/api/v1/deployments/{id}/hold/abort");

    let (s, b) = post(&c, &promote, &viewer, None).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")), "{b}");
    let (s, b) = post(&c, &abort, &viewer, Some(json!({ "reason": "x" }))).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")), "{b}");
    // A token limited to another environment does not see the deployment.
    let (s, b) = post(&c, &promote, &elsewhere, None).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    // An abort needs a reason, and nothing but one.
    let (s, b) = post(&c, &abort, &deployer, Some(json!({}))).await;
    assert_eq!((s, b["field"].as_str()), (400, Some("reason")), "{b}");
    let (s, b) = post(&c, &abort, &deployer, Some(json!({ "reason": "  " }))).await;
    assert_eq!((s, b["field"].as_str()), (400, Some("reason")), "{b}");
    let (s, b) = post(
        &c,
        &abort,
        &deployer,
        Some(json!({ "reason": "x", "force": true })),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (400, Some("force")), "{b}");
    assert_eq!(decision(&c, id).await, None, "a refusal changed the hold");
    assert_eq!(audited(&c, "deploy.promote").await, 0);

    let (s, b) = post(&c, &promote, &deployer, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["decision"], "promote");
    assert_eq!(b["decided_by"], "dora");
    assert_eq!(audited(&c, "deploy.promote").await, 1);
    // Decided once.
    let (s, b) = post(&c, &abort, &deployer, Some(json!({ "reason": "late" }))).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("not_held")), "{b}");
    assert_eq!(decision(&c, id).await.as_deref(), Some("promote"));
    assert_eq!(audited(&c, "deploy.abort").await, 0);

    // The page's view of the deployment carries the hold.
    let (s, b) = (
        200,
        c.http
            .get(format!("{}/api/v1/deployments/{id}", c.origin))
            .bearer_auth(&deployer)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!((s, b["hold"]["decision"].as_str()), (200, Some("promote")));
}

#[tokio::test]
async fn a_timed_out_or_unheld_deploy_is_refused_with_not_held() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;
    let deployer = c.token_for("dora", Role::Deployer, None).await;
    // Before the held one, which holds the environment's lock.
    let failed = c.failed_deploy().await;
    // Its timeout passed (the worker would abort it at its next look).
    let id = held(&c, -1).await;
    let (s, b) = post(
        &c,
        &format!("/api/v1/deployments/{id}/hold/promote"),
        &deployer,
        None,
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("not_held")), "{b}");
    assert!(b["detail"].as_str().unwrap().contains("timed out"), "{b}");
    assert_eq!(decision(&c, id).await, None);
    // A deployment that was never held; one that does not exist.
    let (s, b) = post(
        &c,
        &format!("/api/v1/deployments/{}/hold/promote", failed.id),
        &deployer,
        None,
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("not_held")), "{b}");
    let (s, b) = post(&c, "/api/v1/deployments/999/hold/promote", &deployer, None).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    assert_eq!(audited(&c, "deploy.promote").await, 0);
}

async fn put(c: &Console, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = c
        .http
        .put(format!("{}{path}", c.origin))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// What the hold's row says of its canary: the setting and the write mark.
async fn canary_row(c: &Console, id: i64) -> (Option<String>, Option<String>) {
    engine::store::query_as(
        "SELECT canary, canary_writing_since FROM deployment_holds WHERE deployment_id = ?",
    )
    .bind(id)
    .fetch_one(&c.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn only_deployers_set_a_held_deploys_canary_and_bad_input_names_its_field() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    let viewer = c.token_for("vera", Role::Viewer, None).await;
    let deployer = c.token_for("dora", Role::Deployer, None).await;
    environments::create(
        &c.pool,
        &NewEnvironment::new(
            "staging",
            "http://127.0.0.1:2/",
            "/bin/true {version}",
            "http://127.0.0.1:3",
            "/nonexistent",
        ),
    )
    .await
    .unwrap();
    let elsewhere = c
        .token_for("dora", Role::Deployer, Some(&["staging"]))
        .await;
    let failed = c.failed_deploy().await;
    let id = held(&c, 30).await;
    let canary = format!("/api/v1/deployments/{id}/canary");
    let good = json!({
        "percent": 20,
        "header": {"name": "X-Tester", "value": "me"},
        "cookie": {"name": "tester", "value": "yes"}
    });

    // A viewer is refused, for this id and for one that does not exist.
    for path in [canary.as_str(), "/api/v1/deployments/999/canary"] {
        let (s, b) = put(&c, path, &viewer, good.clone()).await;
        assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")), "{b}");
    }
    let (s, b) = put(&c, &canary, &elsewhere, good.clone()).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    for (body, field) in [
        (json!({"percent": 101}), "percent"),
        (
            json!({"percent": 5, "header": {"name": "X Tester", "value": "me"}}),
            "tester_header",
        ),
        (
            json!({"percent": 5, "header": {"name": "X-Tester", "value": "caf\u{e9}"}}),
            "tester_header",
        ),
        (
            json!({"percent": 5, "cookie": {"name": "tester", "value": "a;b"}}),
            "tester_cookie",
        ),
        (json!({"percent": 5, "weight": 3}), "weight"),
    ] {
        let (s, b) = put(&c, &canary, &deployer, body.clone()).await;
        assert_eq!((s, b["field"].as_str()), (400, Some(field)), "{body}: {b}");
    }
    // Not held: never held, or no such deployment.
    let (s, b) = put(
        &c,
        &format!("/api/v1/deployments/{}/canary", failed.id),
        &deployer,
        good.clone(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("not_held")), "{b}");
    let (s, b) = put(
        &c,
        "/api/v1/deployments/999/canary",
        &deployer,
        good.clone(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    assert_eq!(canary_row(&c, id).await, (None, None));

    // Held, but this console's environment has no proxy answering: the
    // write fails, and nothing is recorded or audited.
    let (s, b) = put(&c, &canary, &deployer, good.clone()).await;
    assert_eq!((s, b["code"].as_str()), (503, Some("unavailable")), "{b}");
    assert_eq!(canary_row(&c, id).await, (None, None));
    assert_eq!(audited(&c, "deploy.canary").await, 0);
    assert_eq!(decision(&c, id).await, None);
}

#[tokio::test]
async fn the_hold_panel_offers_the_canary_form_to_deployers_and_shows_the_setting() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    let (vera, dora) = (c.session_for("vera").await, c.session_for("dora").await);
    let id = held(&c, 30).await;
    let page = format!("/deployments/{id}");
    let form = |percent: &'static str, header: &'static str, cookie: &'static str| {
        vec![
            ("deployment", id.to_string()),
            ("percent", percent.to_string()),
            ("tester_header", header.to_string()),
            ("tester_cookie", cookie.to_string()),
        ]
    };
    let send = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };

    let r = c.get(&page, Some(&dora)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("data-testid=\"hold-canary-form\""),
        "{}",
        r.body
    );
    assert!(!r.body.contains("data-testid=\"hold-canary\""));
    let r = c.get(&page, Some(&vera)).await;
    assert!(
        !r.body.contains("hold-canary-form"),
        "a viewer gets no form"
    );

    // A viewer's post is refused; bad fields are named; nothing changes.
    let post = |f: Vec<(&'static str, String)>, who: String| {
        let c = &c;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.post("/api/set_canary", &f, Some(&who), &[]).await
        }
    };
    let r = post(send(&form("20", "X-Tester: me", "")), vera.clone()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    for (f, field) in [
        (form("200", "", ""), "percent"),
        (form("x", "", ""), "percent"),
        (form("5", "X-Tester", ""), "tester_header"),
        (form("5", "X Tester: me", ""), "tester_header"),
        (form("5", "", "tester"), "tester_cookie"),
        (form("5", "", "t=a b"), "tester_cookie"),
    ] {
        let r = post(f, dora.clone()).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            matches!(r.error(), AppError::InvalidInput { field: got, .. } if got == field),
            "{field}: {}",
            r.body
        );
    }
    // A good one reaches the router (none answers here): refused, unrecorded.
    let r = post(send(&form("20", "X-Tester: me", "")), dora.clone()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(canary_row(&c, id).await, (None, None));
    assert_eq!(audited(&c, "deploy.canary").await, 0);

    // The setting in force is shown, escaped, and fills the form.
    engine::store::query("UPDATE deployment_holds SET canary = ? WHERE deployment_id = ?")
        .bind(r#"{"percent":20,"header":{"name":"X-Tester","value":"<b>me</b>"}}"#)
        .bind(id)
        .execute(&c.pool)
        .await
        .unwrap();
    let r = c.get(&page, Some(&vera)).await;
    assert!(
        r.body.contains(
            "Canary: 20 % of new users, testers with header X-Tester: &lt;b&gt;me&lt;/b&gt;"
        ),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<b>me"));
    let r = c.get(&page, Some(&dora)).await;
    assert!(r.body.contains("value=\"20\""), "{}", r.body);
    assert!(r.body.contains("X-Tester: &lt;b&gt;me&lt;/b&gt;"));
}
