//! Webhooks on the engine, against a real HTTP receiver in this process:
//! deliveries are signed per Standard Webhooks (checked here with HMAC
//! computed independently), failures are retried with back-off and given up
//! after the window, a hanging receiver times out, a redirect is not
//! followed, loopback targets need an admin's allowance, and only admins
//! (never a limited token) manage subscriptions — refused before any lookup.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use engine::audit::{AuditActor, Event, Outcome};
use engine::environments::{self, NewEnvironment};
use engine::runtime::ProcessRuntime;
use engine::{Actor, Engine, Error, SecretBox, WebhookTiming};
use hmac::{Hmac, Mac};
use model::{
    AuditFilter, DeliveryStatus, NewToken, NewWebhook, ReleaseRequest, Role, TokenKind,
    WebhookEvent, WebhookFormat,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ENV: &str = "production";

/// What the receiver answers, one per request (then 200).
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    Hang,
    Redirect,
    Garbage,
}

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    r.got.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let reply = r.replies.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(Reply::Status(s)) => (StatusCode::from_u16(s).unwrap(), "nope").into_response(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::Redirect) => {
            (StatusCode::FOUND, [("location", "/elsewhere")], "moved").into_response()
        }
        Some(Reply::Garbage) => (StatusCode::OK, vec![0xffu8, 0xfe, 0x00, 0x7b]).into_response(),
    }
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .route("/elsewhere", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn then(&self, replies: &[Reply]) {
        self.replies.lock().unwrap().extend(replies.iter().copied());
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
    admin: Actor,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = engine::store::testing::store_url(dir.path()).await;
        let pool = engine::store::open(&url).await.unwrap();
        let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))))
            .with_secrets(SecretBox::open(dir.path()).unwrap());
        for (name, port) in [("staging", 1), (ENV, 2)] {
            let new = NewEnvironment::new(
                name,
                &format!("http://127.0.0.1:{port}/"),
                "/opt/app/{version}/run",
                &format!("http://127.0.0.1:{}", port + 10),
                "/nonexistent/token",
            );
            environments::create(engine.pool(), &new).await.unwrap();
        }
        let admin = user(&engine, "root", Role::Admin).await;
        World {
            _dir: dir,
            engine,
            admin,
        }
    }

    async fn subscribe(&self, url: &str, events: &[WebhookEvent]) -> (i64, String) {
        let created = self
            .engine
            .add_webhook(&self.admin, ENV, &hook(url, events, true))
            .await
            .unwrap();
        (created.webhook.id, created.secret)
    }

    /// An entry as the pipeline writes it when a deploy ends.
    async fn deploy_finished(&self, version: &str, ok: bool) {
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        let mut ev = Event::new(AuditActor::System, "deploy.finish", outcome);
        ev.environment = Some(ENV.into());
        ev.target = Some(version.into());
        ev.details = serde_json::json!({ "deployment": 7, "message": "switched" });
        self.engine.audit(ev).await.unwrap();
    }
}

async fn user(engine: &Engine, name: &str, role: Role) -> Actor {
    let u = engine::users::create(engine.pool(), name, "a long enough password", role)
        .await
        .unwrap();
    Actor::user(u)
}

fn hook(url: &str, events: &[WebhookEvent], allow_private: bool) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        events: events.to_vec(),
        format: WebhookFormat::Standard,
        allow_private,
    }
}

fn fast() -> WebhookTiming {
    WebhookTiming {
        first_retry: Duration::from_millis(200),
        max_retry: Duration::from_secs(1),
        give_up_after: Duration::from_secs(60),
        timeout: Duration::from_secs(1),
    }
}

/// The signature a receiver expects, computed here from the spec, not with
/// the engine's code.
fn expected_signature(secret: &str, r: &Received) -> String {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

fn assert_signed(secret: &str, r: &Received) {
    let sig = r.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(sig, expected_signature(secret, r), "{r:?}");
    let ts: i64 = r.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert!(r.headers["webhook-id"]
        .to_str()
        .unwrap()
        .starts_with("msg_"));
}

#[tokio::test]
async fn events_reach_a_real_receiver_signed_per_standard_webhooks() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let (id, secret) = w.subscribe(&url, &[]).await;
    assert!(secret.starts_with("whsec_"));

    // A real release request on a checklist with items for people.
    w.engine.reset_checklist(&w.admin, ENV).await.unwrap();
    let dora = user(&w.engine, "dora", Role::Deployer).await;
    w.engine
        .request_release(
            &dora,
            &ReleaseRequest {
                environment: ENV.into(),
                version: "v2".into(),
                notes: String::new(),
                migration_sql: String::new(),
            },
        )
        .await
        .unwrap();
    w.deploy_finished("v2", true).await;
    w.deploy_finished("v3", false).await;
    // Another environment's events are not this subscription's.
    let mut other = Event::new(AuditActor::System, "deploy.finish", Outcome::Ok);
    other.environment = Some("staging".into());
    w.engine.audit(other).await.unwrap();

    assert_eq!(w.engine.webhook_round(&fast()).await.unwrap(), 4);
    let got = rx.got();
    assert_eq!(got.len(), 4, "{got:?}");
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            assert_signed(&secret, r);
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["data"]["environment"], ENV);
            body["type"].as_str().unwrap().to_string()
        })
        .collect();
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "deploy.failed",
            "deploy.succeeded",
            "release.requested",
            "signature.needed"
        ]
    );
    let needed = got
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
        .find(|b| b["type"] == "signature.needed")
        .unwrap();
    let roles = needed["data"]["roles"].as_array().unwrap();
    assert!(roles.iter().any(|r| r == "admin"), "{needed}");
    assert!(!roles.iter().any(|r| r == "viewer"), "{needed}");

    // Each message once: a second round sends nothing new.
    assert_eq!(w.engine.webhook_round(&fast()).await.unwrap(), 0);
    assert_eq!(rx.got().len(), 4);
    let log = w.engine.webhook_deliveries(&w.admin, id).await.unwrap();
    assert_eq!(log.len(), 4);
    for d in &log {
        assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
        assert_eq!(d.last_status_code, Some(204));
        assert_eq!(d.attempts, 1);
        assert!(d.next_attempt_at.is_none());
    }

    // The secret is in no audit entry.
    let entries = w
        .engine
        .audit_search(&w.admin, &AuditFilter::default(), 100)
        .await
        .unwrap();
    let created = entries
        .entries
        .iter()
        .find(|e| e.action == "webhook.create")
        .expect("the subscription is audited");
    // Only the origin: a webhook URL's path may be its credential, and
    // everyone reads the audit log.
    let origin = url.trim_end_matches("/hook");
    assert_eq!(
        created.target.as_deref(),
        Some(format!("{origin}/…").as_str())
    );
    assert!(entries
        .entries
        .iter()
        .all(|e| !format!("{e:?}").contains(&url)));
    let b64 = secret.strip_prefix("whsec_").unwrap();
    assert!(entries
        .entries
        .iter()
        .all(|e| !e.details.contains(b64) && !format!("{e:?}").contains(b64)));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_id_until_it_answers() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let (id, secret) = w.subscribe(&url, &[WebhookEvent::DeploySucceeded]).await;
    rx.then(&[Reply::Status(500), Reply::Status(503)]);
    w.deploy_finished("v2", true).await;
    // Not subscribed: no delivery for a failed deploy.
    w.deploy_finished("v3", false).await;

    w.engine.webhook_round(&fast()).await.unwrap();
    let log = w.engine.webhook_deliveries(&w.admin, id).await.unwrap();
    assert_eq!(log.len(), 1);
    let d = &log[0];
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.last_status_code, Some(500));
    assert!(d.last_error.as_deref().unwrap().contains("500"), "{d:?}");
    assert!(d.next_attempt_at.is_some());
    // Not due yet: the round leaves it.
    w.engine.webhook_round(&fast()).await.unwrap();
    assert_eq!(rx.got().len(), 1);

    let mut rounds = 0;
    while rx.got().len() < 3 && rounds < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.engine.webhook_round(&fast()).await.unwrap();
        rounds += 1;
    }
    let got = rx.got();
    assert_eq!(got.len(), 3, "{got:?}");
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|i| i == ids[0]), "{ids:?}");
    for r in &got {
        assert_signed(&secret, r);
    }
    let d = &w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status_code, Some(204));
}

#[tokio::test]
async fn hangs_redirects_and_garbage_are_told_apart() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let (id, _) = w.subscribe(&url, &[]).await;
    let timing = WebhookTiming {
        first_retry: Duration::from_secs(3600),
        ..fast()
    };

    // A receiver that never answers: the attempt stops at the timeout.
    rx.then(&[Reply::Hang]);
    w.deploy_finished("v1", true).await;
    let t = std::time::Instant::now();
    w.engine.webhook_round(&timing).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let d = w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0].clone();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.last_status_code, None);
    assert!(
        d.last_error
            .as_deref()
            .unwrap()
            .contains("no answer within"),
        "{d:?}"
    );

    // A redirect is a failed attempt, and its target is never asked.
    rx.then(&[Reply::Redirect]);
    w.deploy_finished("v2", true).await;
    w.engine.webhook_round(&timing).await.unwrap();
    let d = w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0].clone();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.last_status_code, Some(302));
    assert!(
        d.last_error.as_deref().unwrap().contains("not followed"),
        "{d:?}"
    );
    assert!(rx.got().iter().all(|r| r.path == "/hook"));

    // A 2xx with a body that is not even text is still delivered.
    rx.then(&[Reply::Garbage]);
    w.deploy_finished("v3", true).await;
    w.engine.webhook_round(&timing).await.unwrap();
    let d = w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0].clone();
    assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
    assert_eq!(d.last_status_code, Some(200));
    assert_eq!(rx.got().len(), 3);
}

#[tokio::test]
async fn a_delivery_is_given_up_after_the_window_and_can_be_sent_again() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let (id, secret) = w.subscribe(&url, &[]).await;
    let timing = WebhookTiming {
        give_up_after: Duration::from_millis(300),
        first_retry: Duration::from_millis(100),
        ..fast()
    };
    rx.then(&[Reply::Status(500); 20]);
    w.deploy_finished("v2", true).await;
    let mut rounds = 0;
    loop {
        w.engine.webhook_round(&timing).await.unwrap();
        let d = w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0].clone();
        if d.status == DeliveryStatus::GaveUp {
            assert!(d.next_attempt_at.is_none());
            assert!(d.attempts >= 2, "{d:?}");
            break;
        }
        rounds += 1;
        assert!(rounds < 40, "never given up: {d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tries = rx.got().len();

    // Redeliver: a second row with the same message, sent at the next round.
    rx.replies.lock().unwrap().clear();
    let first = w.engine.webhook_deliveries(&w.admin, id).await.unwrap()[0].clone();
    let again = w
        .engine
        .redeliver_webhook(&w.admin, first.id)
        .await
        .unwrap();
    assert_eq!(again.redelivery_of, Some(first.id));
    assert_eq!(again.message_id, first.message_id);
    w.engine.webhook_round(&timing).await.unwrap();
    let got = rx.got();
    assert_eq!(got.len(), tries + 1);
    assert_signed(&secret, got.last().unwrap());
    assert_eq!(got.last().unwrap().body, got[0].body);
    let log = w.engine.webhook_deliveries(&w.admin, id).await.unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    let audit = w
        .engine
        .audit_search(&w.admin, &AuditFilter::default(), 50)
        .await
        .unwrap();
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "webhook.redeliver"));

    // Removed: gone from the list, nothing more sent, redelivery refused.
    w.engine.remove_webhook(&w.admin, id).await.unwrap();
    assert!(w.engine.webhooks(&w.admin, ENV).await.unwrap().is_empty());
    w.deploy_finished("v4", true).await;
    w.engine.webhook_round(&timing).await.unwrap();
    assert_eq!(rx.got().len(), tries + 1);
    assert!(matches!(
        w.engine.redeliver_webhook(&w.admin, first.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn loopback_and_bad_urls_are_refused_and_change_nothing() {
    let w = World::new().await;
    let (_rx, url) = Receiver::start().await;
    for (bad, words) in [
        (hook(&url, &[], false), "private"),
        (hook("http://localhost:9/x", &[], false), "private"),
        (hook("http://[::1]:9/x", &[], false), "private"),
        (hook("http://10.0.0.1/x", &[], false), "private"),
        (hook("ftp://example.com/x", &[], true), "http or https"),
        (hook("https://u:p@example.com/x", &[], true), "password"),
        (hook("not a url", &[], true), "not a URL"),
        (hook("", &[], true), "needs a URL"),
    ] {
        match w.engine.add_webhook(&w.admin, ENV, &bad).await {
            Err(e @ Error::InvalidInput { field: "url", .. }) => {
                assert!(e.to_string().contains(words), "{}: {e}", bad.url)
            }
            other => panic!("{}: {other:?}", bad.url),
        }
    }
    assert!(w.engine.webhooks(&w.admin, ENV).await.unwrap().is_empty());
    let audit = w
        .engine
        .audit_search(&w.admin, &AuditFilter::default(), 50)
        .await
        .unwrap();
    assert!(!audit.entries.iter().any(|e| e.action == "webhook.create"));
    // Allowed by the admin, the same URL is taken.
    w.engine
        .add_webhook(&w.admin, ENV, &hook(&url, &[], true))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_never_with_a_limited_token() {
    let w = World::new().await;
    let (_rx, url) = Receiver::start().await;
    let (id, _) = w.subscribe(&url, &[]).await;
    for role in [Role::Viewer, Role::Deployer, Role::Approver] {
        let who = user(&w.engine, &format!("u-{role}"), role).await;
        // Refused before the lookup: an unknown environment or id is the
        // same refusal, so names cannot be probed.
        for refused in [
            w.engine.webhooks(&who, "no-such-env").await.map(|_| ()),
            w.engine.webhooks(&who, ENV).await.map(|_| ()),
            w.engine
                .add_webhook(&who, ENV, &hook(&url, &[], true))
                .await
                .map(|_| ()),
            w.engine.remove_webhook(&who, id).await.map(|_| ()),
            w.engine.remove_webhook(&who, 999).await.map(|_| ()),
            w.engine.webhook_deliveries(&who, id).await.map(|_| ()),
            w.engine.redeliver_webhook(&who, 999).await.map(|_| ()),
        ] {
            assert!(
                matches!(refused, Err(Error::Forbidden { .. })),
                "{role}: {refused:?}"
            );
        }
    }
    let issued = w
        .engine
        .create_token(
            &w.admin,
            None,
            &NewToken {
                name: "ci".into(),
                kind: TokenKind::Service,
                role: Role::Admin,
                environments: Some(vec![ENV.into()]),
                expires_in_days: 30,
            },
        )
        .await
        .unwrap();
    let ci = w.engine.token_actor(&issued.secret, None).await.unwrap();
    assert!(matches!(
        w.engine.add_webhook(&ci, ENV, &hook(&url, &[], true)).await,
        Err(Error::RuleForbids(_))
    ));
    assert!(matches!(
        w.engine.webhooks(&ci, ENV).await,
        Err(Error::RuleForbids(_))
    ));
    assert_eq!(w.engine.webhooks(&w.admin, ENV).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_slack_format_is_a_message_with_text() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let mut new = hook(&url, &[WebhookEvent::DeployFailed], true);
    new.format = WebhookFormat::Slack;
    let created = w.engine.add_webhook(&w.admin, ENV, &new).await.unwrap();
    assert_eq!(created.webhook.format, WebhookFormat::Slack);
    w.deploy_finished("v9", false).await;
    w.engine.webhook_round(&fast()).await.unwrap();
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_signed(&created.secret, &got[0]);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("v9") && text.contains("FAILED"), "{text}");
}

/// Entries shaped as `recovery.rs` and `pipeline/rollback.rs` write them: a
/// broken lock is announced; a rollback a person asked for is not an
/// automatic one; refused actions announce nothing.
#[tokio::test]
async fn a_broken_lock_is_announced_and_a_manual_rollback_is_not_automatic() {
    let w = World::new().await;
    let (rx, url) = Receiver::start().await;
    let (_, secret) = w.subscribe(&url, &[]).await;
    let mut manual = w.admin.event("rollback.start", Outcome::Ok);
    manual.environment = Some(ENV.into());
    manual.reason = Some("automatic rollback, said a person".into());
    w.engine.audit(manual).await.unwrap();
    let mut refused = w.admin.event("lock.break", Outcome::Denied);
    refused.environment = Some(ENV.into());
    w.engine.audit(refused).await.unwrap();
    let mut broken = w.admin.event("lock.break", Outcome::Ok);
    broken.environment = Some(ENV.into());
    broken.target = Some("v2".into());
    broken.reason = Some("the worker hangs".into());
    w.engine.audit(broken).await.unwrap();
    w.engine.webhook_round(&fast()).await.unwrap();
    let got = rx.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_signed(&secret, &got[0]);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "lock.broken");
    assert_eq!(body["data"]["reason"], "the worker hangs");
    assert_eq!(body["data"]["actor"], "root");
}
