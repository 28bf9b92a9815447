//! A console for HTTP-level tests: the one `switchyard serve` runs, built by
//! `server::console::Console::build` on a temporary data directory and served
//! on a loopback port; with helpers to post forms and read answers the way
//! the browser does.
#![allow(dead_code)] // each test file uses its own part of it

// Test files that use both `support` and `child` get it twice: it holds
// no state, so the two copies agree.
#[allow(clippy::duplicate_mod)]
#[path = "../store/mod.rs"]
pub mod store;

pub use app::error::AppError;
pub use engine::environments::{self, NewEnvironment};
pub use engine::store::Pool;
pub use engine::Engine;
pub use model::{DeploymentStatus, DeploymentView, Role};
pub use reqwest::header::{HeaderMap, ACCEPT, COOKIE, ORIGIN, SET_COOKIE};
pub use reqwest::StatusCode;
pub use std::time::Duration;

pub const PASSWORD: &str = "a long enough password";
pub const ENV: &str = "production";

pub struct Console {
    pub origin: String,
    /// The engine the console serves with, for arranging what a test needs.
    pub engine: Engine,
    pub pool: Pool,
    pub http: reqwest::Client,
    pub server: tokio::task::JoinHandle<()>,
    pub _dir: tempfile::TempDir,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The server function's error, decoded as the browser decodes it.
    pub fn error(&self) -> AppError {
        assert!(
            !self.status.is_success(),
            "expected an error, got {}: {}",
            self.status,
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("error body {:?} is not an AppError: {e}", self.body))
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert!(self.status.is_success(), "{}: {}", self.status, self.body);
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} does not decode: {e}", self.body))
    }

    /// The `switchyard_session` Set-Cookie header, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("switchyard_session="))
            .map(str::to_string)
    }

    /// `switchyard_session=<id>`, ready for a Cookie header.
    pub fn session(&self) -> String {
        let set = self
            .session_cookie()
            .unwrap_or_else(|| panic!("no session cookie set ({}: {})", self.status, self.body));
        set.split(';').next().unwrap().trim().to_string()
    }
}

/// A console built by `Console::build` as `switchyard serve` builds it, on
/// a loopback port, with no proxy of its own, no demo and no first admin
/// (each test creates the people it needs).
pub async fn start() -> Console {
    start_with(None).await
}

/// [`start`], but the console runs proxies as `switchyard serve` does: its
/// own (users at `app`, admin at `admin`) and one per environment created
/// with its token, from this build's switchyard-proxy. They outlive the
/// console by design: the caller stops them (their command lines name the
/// data directory).
pub async fn start_running_proxies(app: u16, admin: u16) -> Console {
    start_with(Some((app, admin))).await
}

async fn start_with(proxies: Option<(u16, u16)>) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, admin) = proxies.unwrap_or((1, 1));
    let cfg = server::config::Config {
        database_url: store::url(dir.path()),
        data_dir: dir.path().to_path_buf(),
        listen: addr,
        app_listen: ([127, 0, 0, 1], app).into(),
        proxy_admin: ([127, 0, 0, 1], admin).into(),
        proxy_preview: None,
        proxy: match proxies {
            Some(_) => server::config::ProxyAtStart::Spawn,
            None => server::config::ProxyAtStart::Unmanaged,
        },
        proxy_tls: Vec::new(),
        demo: false,
        demo_checklist: false,
        demo_staging: None,
        bin_dir: match proxies {
            // The switchyard binary's directory: switchyard-proxy is built there.
            Some(_) => std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"))
                .parent()
                .unwrap()
                .to_path_buf(),
            None => server::config::default_bin_dir(),
        },
        site_root: dir.path().join("site"),
        health_deadline: Duration::from_secs(5),
        secure_cookies: false,
        session_idle_timeout: server::config::SESSION_IDLE_TIMEOUT,
        session_absolute_timeout: server::config::SESSION_ABSOLUTE_TIMEOUT,
        public_origins: Vec::new(),
        first_admin: false,
        admin_password: None,
        audit_checkpoint_interval: Duration::from_secs(60),
        audit_checkpoint_command: None,
    };
    let console = server::console::Console::build(&cfg).await.unwrap();
    let engine = console.engine().clone();
    let pool = engine.pool().clone();

    // An environment whose proxy is not running: a deploy that gets past every
    // check fails at the preflight, and nothing is ever started.
    let unused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token_file = dir.path().join("proxy-token");
    std::fs::write(&token_file, "http-test-token\n").unwrap();
    environments::create(
        &pool,
        &NewEnvironment::new(
            ENV,
            "http://127.0.0.1:1/",
            "/bin/true {version}",
            &format!("http://127.0.0.1:{unused_port}"),
            &token_file.display().to_string(),
        ),
    )
    .await
    .unwrap();

    let server = tokio::spawn(async move {
        console
            .serve(listener, std::future::pending())
            .await
            .unwrap();
    });
    Console {
        origin: format!("http://{addr}"),
        engine,
        pool,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        server,
        _dir: dir,
    }
}

impl Console {
    /// Gives ENV the default checklist and has `requester` (a deployer)
    /// request v2 there. Returns the release id, the ids of its "Code
    /// reviewed" and "Rollback plan confirmed" items, and a template item id.
    pub async fn protected_release(&self, requester: &str) -> (i64, i64, i64, i64) {
        let engine = &self.engine;
        let system = engine::Actor::system();
        engine
            .set_checklist_template(
                &system,
                ENV,
                &engine::checklists::default_template(false, false),
            )
            .await
            .unwrap();
        let user = engine::users::create(&self.pool, requester, PASSWORD, Role::Deployer)
            .await
            .unwrap();
        let release = engine
            .request_release(
                &engine::Actor::user(user),
                &model::ReleaseRequest {
                    environment: ENV.into(),
                    version: "v2".into(),
                    notes: String::new(),
                    migration_sql: String::new(),
                },
            )
            .await
            .unwrap();
        let id_of = |title: &str| release.items.iter().find(|i| i.title == title).unwrap().id;
        let template = engine.checklist_template(&system, ENV).await.unwrap();
        (
            release.id,
            id_of("Code reviewed"),
            id_of("Rollback plan confirmed"),
            template[0].id,
        )
    }

    /// A deploy of v1 by the system, which fails at the preflight (the
    /// environment's proxy is not running). Returns its deployment.
    pub async fn failed_deploy(&self) -> DeploymentView {
        let engine = &self.engine;
        let d = engine
            .deploy(&engine::Actor::system(), ENV, "v1")
            .await
            .unwrap();
        assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
        d
    }

    pub async fn user(&self, name: &str, role: Role) {
        engine::users::create(&self.pool, name, PASSWORD, role)
            .await
            .unwrap();
    }

    /// A personal API token of `user` (who must exist) with `role`, limited
    /// to `envs` when given; named `<user>-<role>-<envs or all>`. Its secret.
    pub async fn token_for(&self, user: &str, role: Role, envs: Option<&[&str]>) -> String {
        let owner = engine::users::find_by_name(&self.pool, user)
            .await
            .unwrap()
            .unwrap();
        let scope = envs.map_or("all".into(), |e| e.join("-"));
        self.engine
            .create_token(
                &engine::Actor::user(owner),
                None,
                &model::NewToken {
                    name: format!("{user}-{role}-{scope}"),
                    kind: model::TokenKind::Personal,
                    role,
                    environments: envs.map(|e| e.iter().map(|s| s.to_string()).collect()),
                    expires_in_days: 7,
                },
            )
            .await
            .unwrap()
            .secret
    }

    /// POSTs a form the way the console's own page does (same origin, JSON
    /// answer), with `headers` added or overriding (`accept`, `origin`).
    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.post(format!("{}{path}", self.origin)).form(form);
        let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !given("accept") {
            req = req.header(ACCEPT, "application/json");
        }
        if !given("origin") {
            req = req.header(ORIGIN, &self.origin);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        Self::read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Resp {
        let mut req = self
            .http
            .get(format!("{}{path}", self.origin))
            .header(ACCEPT, "text/html");
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        Self::read(req.send().await.unwrap()).await
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        Resp {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn login(&self, name: &str, password: &str, cookie: Option<&str>) -> Resp {
        self.post(
            "/api/login",
            &[("username", name), ("password", password)],
            cookie,
            &[],
        )
        .await
    }

    /// Signs in and returns the session cookie.
    pub async fn session_for(&self, name: &str) -> String {
        let r = self.login(name, PASSWORD, None).await;
        assert!(
            r.status.is_success(),
            "login {name}: {}: {}",
            r.status,
            r.body
        );
        r.session()
    }

    /// Rows in `table`; `tower_sessions` is the session store's table,
    /// whichever its name on the store.
    pub async fn count(&self, table: &str) -> i64 {
        let table = match (table, self.pool.dialect()) {
            ("tower_sessions", engine::store::Dialect::Postgres) => "tower_sessions.session",
            (t, _) => t,
        };
        engine::store::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn overview_user(&self, cookie: &str) -> Result<String, AppError> {
        let r = self
            .post("/api/load_overview", &[], Some(cookie), &[])
            .await;
        if r.status.is_success() {
            let v: serde_json::Value = r.json();
            Ok(v["user"]["username"].as_str().unwrap().to_string())
        } else {
            Err(r.error())
        }
    }
}
