//! Webhook deliveries survive a crash: the real console (`switchyard serve`)
//! sends a delivery to a real receiver in this test, which answers 500; the
//! console is SIGKILLed while the retry waits, and the console started again
//! sends it — signed, with the same `webhook-id` — from the outbox in its
//! database.
//!
//! Needs the sibling binaries (`cargo build --workspace --exclude frontend`).

mod child;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use engine::{Actor, Engine, SecretBox};
use model::{DeliveryStatus, NewWebhook, ReleaseRequest, WebhookEvent, WebhookFormat};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "webhook-crash admin password";
const ENV: &str = "production";

type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// Answers 500 to the first request and 204 after.
async fn receive(State(got): State<Got>, headers: HeaderMap, body: String) -> StatusCode {
    let mut got = got.lock().unwrap();
    got.push((headers, body));
    if got.len() == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

struct Site {
    dir: tempfile::TempDir,
    ports: [u16; 3],
    child: Option<Child>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill_console();
        child::kill_everything_under(self.dir.path());
    }
}

impl Site {
    fn start_console(&mut self) {
        let [console, app, admin] = self.ports;
        let child = child::serve(
            self.dir.path(),
            &format!("127.0.0.1:{console}"),
            &format!("127.0.0.1:{app}"),
            &format!("127.0.0.1:{admin}"),
            PASSWORD,
        )
        // The first retry 4 s after the failure: time to kill the console
        // while it waits.
        .env("SWITCHYARD_WEBHOOK_RETRY_MS", "4000")
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
        self.child = Some(child);
    }

    fn kill_console(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL: no shutdown code runs.
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    async fn wait_up(&self) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://127.0.0.1:{}/login", self.ports[0]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(&url).send().await.is_err() {
            assert!(Instant::now() < deadline, "no console: {}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The console's database and key, as the offline commands open them.
    async fn engine(&self) -> Engine {
        let pool = child::store::pool(self.dir.path()).await;
        Engine::new(
            pool,
            Arc::new(engine::ProcessRuntime::new(self.dir.path().join("logs"))),
        )
        .with_secrets(SecretBox::open(self.dir.path()).unwrap())
    }
}

async fn wait_for(got: &Got, n: usize, within: Duration, site: &Site) {
    let deadline = Instant::now() + within;
    while got.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "the receiver got {} of {n}: {}",
            got.lock().unwrap().len(),
            site.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_waiting_for_its_retry_survives_a_kill_9_of_the_console() {
    let got: Got = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    let mut site = Site {
        dir,
        ports: child::free_ports(),
        child: None,
    };
    site.start_console();
    site.wait_up().await;

    let engine = site.engine().await;
    let admin = Actor::user(
        engine::users::find_by_name(engine.pool(), "admin")
            .await
            .unwrap()
            .unwrap(),
    );
    let created = engine
        .add_webhook(
            &admin,
            ENV,
            &NewWebhook {
                url,
                events: vec![WebhookEvent::ReleaseRequested],
                format: WebhookFormat::Standard,
                allow_private: true,
            },
        )
        .await
        .unwrap();
    engine
        .request_release(
            &admin,
            &ReleaseRequest {
                environment: ENV.into(),
                version: "v2".into(),
                notes: "for the webhook".into(),
                migration_sql: String::new(),
            },
        )
        .await
        .unwrap();

    // The first attempt fails; the retry is due 4 s later.
    wait_for(&got, 1, Duration::from_secs(15), &site).await;
    // The receiver holds the request before the console has read the 500
    // and written it down: wait for the outbox row to say so.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = engine
            .webhook_deliveries(&admin, created.webhook.id)
            .await
            .unwrap();
        if log.first().is_some_and(|d| d.last_status_code.is_some()) {
            break log;
        }
        assert!(Instant::now() < deadline, "no attempt recorded: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Pending, "{log:?}");
    assert_eq!(log[0].last_status_code, Some(500));
    assert_eq!(got.lock().unwrap().len(), 1, "the retry waits 4 s");
    site.kill_console();

    // Nobody sends while the console is down.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(got.lock().unwrap().len(), 1);

    site.start_console();
    wait_for(&got, 2, Duration::from_secs(60), &site).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "delivered once after the restart");
    let id = |h: &HeaderMap| h["webhook-id"].to_str().unwrap().to_string();
    assert_eq!(id(&got[0].0), id(&got[1].0), "the same message");
    for (headers, body) in &got {
        let ts: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let expected = engine::sign_webhook(&created.secret, &id(headers), ts, body).unwrap();
        assert_eq!(headers["webhook-signature"].to_str().unwrap(), expected);
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["type"], "release.requested");
        assert_eq!(payload["data"]["version"], "v2");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = engine
            .webhook_deliveries(&admin, created.webhook.id)
            .await
            .unwrap();
        if d[0].status == DeliveryStatus::Delivered {
            assert_eq!(d[0].attempts, 2);
            assert_eq!(d.len(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
