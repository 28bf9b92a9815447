//! The Webhooks page's server functions over real HTTP, as the browser
//! calls them, with the console's own webhook round sending to a real
//! receiver in this test: an admin subscribes (the secret shown once, never
//! in the page), sees the delivery with the receiver's answer, sends it
//! again; others are refused before anything is read, and bad URLs are
//! refused naming the field, with nothing made.

mod support;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use model::{CreatedWebhook, DeliveryStatus, ReleaseRequest};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use support::*;

type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(g): State<Got>, h: HeaderMap, body: String| async move {
                    g.lock().unwrap().push((h, body));
                    "thanks"
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

fn form<'a>(url: &'a str, private: bool, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![("environment", ENV), ("url", url), ("format", "standard")];
    if private {
        f.push(("allow_private", "on"));
    }
    f.extend_from_slice(extra);
    f
}

async fn load(c: &Console, cookie: &str) -> serde_json::Value {
    c.post(
        "/api/load_webhooks",
        &[("environment", ENV)],
        Some(cookie),
        &[],
    )
    .await
    .json()
}

#[tokio::test]
async fn an_admin_subscribes_sees_the_delivery_and_sends_it_again() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let (got, url) = receiver().await;

    let made: CreatedWebhook = c
        .post(
            "/api/add_webhook",
            &form(&url, true, &[("release_requested", "on")]),
            Some(&ada),
            &[],
        )
        .await
        .json();
    assert!(made.secret.starts_with("whsec_"));
    assert_eq!(made.webhook.events, [model::WebhookEvent::ReleaseRequested]);

    // A release request, as the releases page makes it.
    let admin = engine::Actor::user(
        engine::users::find_by_name(&c.pool, "ada")
            .await
            .unwrap()
            .unwrap(),
    );
    c.engine
        .request_release(
            &admin,
            &ReleaseRequest {
                environment: ENV.into(),
                version: "v7".into(),
                notes: String::new(),
                migration_sql: String::new(),
            },
        )
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let delivery = loop {
        let page = load(&c, &ada).await;
        let log = &page["webhooks"][0][1];
        if log[0]["status"] == "delivered" {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "not delivered: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(delivery["event"], "release.requested");
    assert_eq!(got.lock().unwrap().len(), 1);
    let body: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[0].1).unwrap();
    assert_eq!(body["data"]["version"], "v7");

    // The page shows the subscription and its log, never the secret.
    let page = c
        .get(&format!("/environments/{ENV}/webhooks"), Some(&ada))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&url), "{}", page.body);
    assert!(page.body.contains("release.requested"));
    let b64 = made.secret.strip_prefix("whsec_").unwrap();
    assert!(!page.body.contains(b64), "the page carries the secret");
    assert!(!load(&c, &ada).await.to_string().contains(b64));

    // Redeliver: a second delivery of the same message.
    let id = delivery["id"].as_i64().unwrap().to_string();
    let again: model::DeliveryView = c
        .post(
            "/api/redeliver_webhook",
            &[("delivery", &id)],
            Some(&ada),
            &[],
        )
        .await
        .json();
    assert_eq!(again.redelivery_of, Some(delivery["id"].as_i64().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "not sent again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got[0].0["webhook-id"], got[1].0["webhook-id"]);
    assert_eq!(got[0].1, got[1].1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log: Vec<model::DeliveryView> =
            serde_json::from_value(load(&c, &ada).await["webhooks"][0][1].clone()).unwrap();
        if log.len() == 2 && log.iter().all(|d| d.status == DeliveryStatus::Delivered) {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Removed with a POST; the list is empty.
    let wid = made.webhook.id.to_string();
    let gone = c
        .post("/api/remove_webhook", &[("id", &wid)], Some(&ada), &[])
        .await;
    assert!(gone.status.is_success(), "{}", gone.body);
    assert_eq!(load(&c, &ada).await["webhooks"], serde_json::json!([]));
}

#[tokio::test]
async fn others_are_refused_and_bad_urls_name_the_field_and_make_nothing() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("dora", Role::Deployer).await;
    let ada = c.session_for("ada").await;
    let dora = c.session_for("dora").await;
    let (_got, url) = receiver().await;

    // A deployer is refused before the form is read: even a broken one.
    for (path, f) in [
        ("/api/add_webhook", form(&url, true, &[])),
        (
            "/api/add_webhook",
            vec![
                ("environment", ENV),
                ("url", "gopher://x"),
                ("format", "xml"),
            ],
        ),
        ("/api/remove_webhook", vec![("id", "1")]),
        ("/api/redeliver_webhook", vec![("delivery", "1")]),
        ("/api/load_webhooks", vec![("environment", "nowhere")]),
    ] {
        let r = c.post(path, &f, Some(&dora), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    let r = c
        .get(&format!("/environments/{ENV}/webhooks"), Some(&dora))
        .await;
    assert!(!r.body.contains("webhook-url"), "a deployer sees the form");

    for (f, field) in [
        (form(&url, false, &[]), "url"),
        (form("http://localhost/hook", false, &[]), "url"),
        (form("javascript:alert(1)", true, &[]), "url"),
        (form("", true, &[]), "url"),
    ] {
        let r = c.post("/api/add_webhook", &f, Some(&ada), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{f:?}: {}", r.body);
        match r.error() {
            AppError::InvalidInput { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    let mut bad_format = form(&url, true, &[]);
    bad_format[2] = ("format", "xml");
    let r = c
        .post("/api/add_webhook", &bad_format, Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(c.count("webhooks").await, 0);
}
