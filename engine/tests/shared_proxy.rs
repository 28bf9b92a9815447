//! Several environments on one real switchyard-proxy, told apart by host
//! name (each the named route called after it): created, deployed under
//! load, edited and archived through the engine as the console does, with
//! the proxy's answers checked from the users' side.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::router::{BuiltinRouter, RouteSpec};
use engine::{Actor, Engine, Error, ProcessRuntime};
use model::{ChecklistSource, DeploymentStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

const TOKEN: &str = "shared-proxy-test-token";
const SHOP: &str = "shop.example.test";
const BLOG: &str = "blog.example.test";

/// One proxy (with a preview listener), an engine on a SQLite file, and
/// the demo's releases; every process is killed when it is dropped.
struct Shared {
    dir: tempfile::TempDir,
    db: String,
    engine: Engine,
    proxy: std::process::Child,
    info: support::ProxyInfo,
    http: reqwest::Client,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        for pid in support::harness::slot_pids_in_db(&self.db) {
            support::harness::kill_group(pid);
        }
    }
}

impl Shared {
    async fn new() -> Shared {
        let dir = tempfile::tempdir().unwrap();
        let demo = support::sibling_bin("switchyard-demo");
        for v in ["v1", "v2"] {
            let release = dir.path().join("releases").join(v);
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&demo, release.join("switchyard-demo")).unwrap();
        }
        std::fs::write(dir.path().join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        let (proxy, info) = support::spawn_proxy_with(dir.path(), true);
        let db = support::harness::store_url(dir.path()).await;
        let pool = engine::store::open(&db).await.unwrap();
        let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))));
        Shared {
            dir,
            db,
            engine,
            proxy,
            info,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// An environment on the shared proxy, served under `hosts` (a TOML
    /// array) and `extra` lines.
    fn config(&self, name: &str, hosts: &str, extra: &str) -> model::EnvironmentConfig {
        let text = format!(
            r#"
[[environment]]
name = "{name}"
artifact = "{dir}/releases/{{version}}/switchyard-demo"
app_url = "http://{public}/"
preview_listen = "{preview}"
hosts = {hosts}
{extra}

[environment.router]
admin_url = "http://{admin}"
token_file = "{dir}/proxy-token"

[environment.pipeline]
health_interval_ms = 50
health_deadline_ms = 5000
watch_window_ms = 0
sample_requests = 10
"#,
            dir = self.dir.path().display(),
            public = self.info.public,
            preview = self.info.preview.as_deref().unwrap(),
            admin = self.info.admin,
        );
        engine::parse_environment_file(&text).unwrap().remove(0)
    }

    async fn create(&self, name: &str, hosts: &str, extra: &str) -> Result<(), Error> {
        self.engine
            .create_environment(
                &Actor::system(),
                &self.config(name, hosts, extra),
                &ChecklistSource::Empty,
            )
            .await
            .map(|_| ())
    }

    async fn deploy(&self, env: &str, version: &str) {
        let d = self
            .engine
            .deploy(&Actor::system(), env, version)
            .await
            .unwrap();
        assert_eq!(
            d.status,
            DeploymentStatus::Succeeded,
            "{env} {version}: {d:?}"
        );
    }

    /// What a user asking for `host` gets: status and body.
    async fn ask(&self, host: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{}/", self.info.public))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn admin(&self) -> BuiltinRouter {
        BuiltinRouter::new(&format!("http://{}", self.info.admin), TOKEN.into())
    }
}

/// Users asking `host` one request after another until stopped: every
/// answer, or the transport error.
fn load(
    s: &Shared,
    host: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Result<(u16, String), String>>> {
    let (http, url) = (s.http.clone(), format!("http://{}/", s.info.public));
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let answer = match http
                .get(&url)
                .header(reqwest::header::HOST, host)
                .send()
                .await
            {
                Ok(r) => Ok((r.status().as_u16(), r.text().await.unwrap_or_default())),
                Err(e) => Err(e.to_string()),
            };
            seen.push(answer);
        }
        seen
    })
}

/// Two environments share one proxy by host name: a deploy of one under
/// load on both never fails or changes a request of the other, an unknown
/// host is answered 404, and gates ran through the shared preview listener
/// (the environment's host picks its route there).
#[tokio::test]
async fn a_switch_of_one_environment_never_touches_the_others_traffic() {
    let s = Shared::new().await;
    s.create("shop", &format!("[\"{SHOP}\"]"), "")
        .await
        .unwrap();
    s.create(
        "blog",
        &format!("[\"{BLOG}\", \"*.blog.example.test\"]"),
        "",
    )
    .await
    .unwrap();
    let routes = s.admin();
    assert_eq!(
        routes.get_route("blog").await.unwrap(),
        Some(RouteSpec {
            hosts: vec![BLOG.into(), "*.blog.example.test".into()],
            path_prefix: None,
            redirect_https: false,
        })
    );
    s.deploy("shop", "v1").await;
    s.deploy("blog", "v1").await;
    // People reach a shared preview by the environment's host.
    let view = s
        .engine
        .environment(&Actor::system(), "blog")
        .await
        .unwrap();
    let port = s
        .info
        .preview
        .as_deref()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1;
    assert_eq!(view.preview_url, Some(format!("http://{BLOG}:{port}/")));
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v1\n".into()));
    assert_eq!(
        s.ask("www.blog.example.test").await,
        (200, "switchyard-demo v1\n".into())
    );
    let (status, body) = s.ask("nobody.example.test").await;
    assert_eq!(status, 404, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let shop_load: Vec<_> = (0..3).map(|_| load(&s, SHOP, stop.clone())).collect();
    let blog_load: Vec<_> = (0..3).map(|_| load(&s, BLOG, stop.clone())).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.deploy("shop", "v2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut shop_seen, mut blog_seen) = (Vec::new(), Vec::new());
    for c in shop_load {
        shop_seen.extend(c.await.unwrap());
    }
    for c in blog_load {
        blog_seen.extend(c.await.unwrap());
    }
    let blog_other: Vec<_> = blog_seen
        .iter()
        .filter(|a| **a != Ok((200, "switchyard-demo v1\n".to_string())))
        .collect();
    assert!(blog_other.is_empty(), "blog saw {blog_other:?}");
    let shop_failed: Vec<_> = shop_seen
        .iter()
        .filter(|a| !matches!(a, Ok((200, b)) if b.starts_with("switchyard-demo v")))
        .collect();
    assert!(shop_failed.is_empty(), "shop saw {shop_failed:?}");
    assert!(
        blog_seen.len() > 20,
        "too little load on blog: {}",
        blog_seen.len()
    );
    assert!(
        shop_seen
            .iter()
            .any(|a| a == &Ok((200, "switchyard-demo v2\n".into()))),
        "shop never reached v2 under load"
    );
    eprintln!(
        "under the switch: shop {} requests, blog {} requests, 0 failed",
        shop_seen.len(),
        blog_seen.len()
    );
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v2\n".into()));
    assert_eq!(s.ask(BLOG).await, (200, "switchyard-demo v1\n".into()));

    // A route the proxy lost comes back at console start serving the slot
    // the console records as live.
    s.admin().delete_route("shop").await.unwrap();
    assert_eq!(s.ask(SHOP).await.0, 404);
    s.engine.reconcile_routes().await.unwrap();
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v2\n".into()));
    assert_eq!(s.ask(BLOG).await, (200, "switchyard-demo v1\n".into()));
    s.deploy("shop", "v1").await;
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v1\n".into()));
}

/// Editing an environment's hosts moves its users' host names (its slot
/// stays); archiving it takes its route off the proxy (404 afterwards).
#[tokio::test]
async fn edit_moves_the_route_and_archive_removes_it() {
    let s = Shared::new().await;
    s.create("shop", &format!("[\"{SHOP}\"]"), "")
        .await
        .unwrap();
    s.create("blog", &format!("[\"{BLOG}\"]"), "")
        .await
        .unwrap();
    s.deploy("blog", "v1").await;
    assert_eq!(s.ask(BLOG).await, (200, "switchyard-demo v1\n".into()));

    let system = Actor::system();
    let mut edited = s.engine.environment_config(&system, "blog").await.unwrap();
    edited.hosts = vec!["news.example.test".into()];
    let changes = s.engine.edit_environment(&system, &edited).await.unwrap();
    assert!(changes.iter().any(|c| c.field == "hosts"), "{changes:?}");
    assert_eq!(
        s.ask("news.example.test").await,
        (200, "switchyard-demo v1\n".into())
    );
    assert_eq!(s.ask(BLOG).await.0, 404);

    // Serving users: archiving needs the confirmation, then the host is gone.
    let err = s
        .engine
        .archive_environment(&system, "blog", false)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("confirm"), "{err:?}");
    s.engine
        .archive_environment(&system, "blog", true)
        .await
        .unwrap();
    assert_eq!(s.ask("news.example.test").await.0, 404);
    assert_eq!(s.admin().get_route("blog").await.unwrap(), None);
    // The other environment's route stays.
    assert!(s.admin().get_route("shop").await.unwrap().is_some());
}

/// A host another environment (or another route on the proxy) claims, a
/// malformed host, a bad prefix: refused naming the field, and neither an
/// environment nor a route is left behind.
#[tokio::test]
async fn bad_routes_are_refused_and_change_nothing() {
    let mut s = Shared::new().await;
    s.create("shop", &format!("[\"{SHOP}\"]"), "")
        .await
        .unwrap();
    // Put on the proxy by someone else: only the proxy knows of it.
    s.admin()
        .put_route(
            "legacy",
            &RouteSpec {
                hosts: vec!["legacy.example.test".into()],
                path_prefix: None,
                redirect_https: false,
            },
        )
        .await
        .unwrap();
    let cases = [
        (format!("[\"{SHOP}\"]"), "", "hosts"),
        ("[\"legacy.example.test\"]".into(), "", "hosts"),
        ("[\"Blog.Example.test\"]".into(), "", "hosts"),
        ("[\"blog.example.test:8080\"]".into(), "", "hosts"),
        ("[\"*.*.example.test\"]".into(), "", "hosts"),
        (
            "[\"blog.example.test\"]".into(),
            "path_prefix = \"api\"",
            "path_prefix",
        ),
        (
            "[\"blog.example.test\"]".into(),
            "path_prefix = \"/a/../b\"",
            "path_prefix",
        ),
        ("[]".into(), "redirect_https = true", "redirect_https"),
    ];
    for (hosts, extra, field) in cases {
        let err = s.create("blog", &hosts, extra).await.unwrap_err();
        assert_eq!(err.field(), Some(field), "{hosts} {extra}: {err:?}");
        let missing = s
            .engine
            .environment_config(&Actor::system(), "blog")
            .await
            .unwrap_err();
        assert!(
            matches!(missing, Error::NotFound(_)),
            "{hosts}: {missing:?}"
        );
        assert_eq!(s.admin().get_route("blog").await.unwrap(), None, "{hosts}");
    }
    // An edit the proxy refuses leaves the environment as it was.
    let system = Actor::system();
    let mut edited = s.engine.environment_config(&system, "shop").await.unwrap();
    edited.hosts = vec!["legacy.example.test".into()];
    let err = s
        .engine
        .edit_environment(&system, &edited)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("hosts"), "{err:?}");
    let kept = s.engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(kept.hosts, vec![SHOP.to_string()]);
    assert_eq!(
        s.admin().get_route("shop").await.unwrap().map(|r| r.hosts),
        Some(vec![SHOP.to_string()])
    );
    // An environment without hosts cannot take the shared proxy's default
    // table beside named routes.
    let plain = model::EnvironmentConfig {
        app_url: "http://127.0.0.1:1/".into(),
        preview_listen: None,
        ..s.config("plain", "[]", "")
    };
    let err = s
        .engine
        .create_environment(&system, &plain, &ChecklistSource::Empty)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("admin_url"), "{err:?}");

    // With the proxy down, an edit of other fields is saved; one of the
    // hosts cannot set the route and is refused, and archiving cannot take
    // the route off: the environment stays live.
    let _ = s.proxy.kill();
    let _ = s.proxy.wait();
    let mut edited = s.engine.environment_config(&system, "shop").await.unwrap();
    edited.health_path = "/ready".into();
    s.engine.edit_environment(&system, &edited).await.unwrap();
    edited.hosts = vec!["store.example.test".into()];
    let err = s
        .engine
        .edit_environment(&system, &edited)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("admin_url"), "{err:?}");
    let kept = s.engine.environment_config(&system, "shop").await.unwrap();
    assert_eq!(
        (kept.hosts, kept.health_path),
        (vec![SHOP.to_string()], "/ready".into())
    );
    let err = s
        .engine
        .archive_environment(&system, "shop", false)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("admin_url"), "{err:?}");
    assert!(s.engine.environment_config(&system, "shop").await.is_ok());
}

/// The processes whose command line mentions `dir`: the proxies a
/// launcher started with their files there.
fn processes_under(dir: &std::path::Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

/// Environments with host names on one address set get one proxy, started
/// by the first (files named after its admin address); a sharer naming
/// another users' address is refused, as is a port the proxy holds used
/// by an environment with a proxy of its own; a route the proxy lost is
/// put back by the console's start-up reconcile.
#[tokio::test]
async fn the_console_starts_a_shared_proxy_once_and_puts_routes_back() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("proxy.token");
    std::fs::write(&token, TOKEN).unwrap();
    let pool = engine::store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))))
        .with_proxy_launcher(engine::ProxyLauncher::new(
            support::sibling_bin("switchyard-proxy"),
            token.clone(),
            dir.path().to_path_buf(),
            dir.path().join("logs"),
        ));
    // Kills, by pid, the proxies this test starts, however it ends.
    struct StopProxies(std::path::PathBuf);
    impl Drop for StopProxies {
        fn drop(&mut self) {
            for pid in processes_under(&self.0) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    let _stop = StopProxies(dir.path().to_path_buf());
    let [app, admin, preview, other_app, other_admin]: [u16; 5] = {
        let held: Vec<_> = (0..5)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        std::array::from_fn(|i| held[i].local_addr().unwrap().port())
    };
    let config = |name: &str, hosts: &str, app: u16, admin: u16| {
        engine::parse_environment_file(&format!(
            r#"
[[environment]]
name = "{name}"
artifact = "/opt/shop/{{version}}/shop"
app_url = "http://127.0.0.1:{app}/"
preview_listen = "127.0.0.1:{preview}"
hosts = {hosts}

[environment.router]
admin_url = "http://127.0.0.1:{admin}"
token_file = "{token}"
"#,
            token = token.display()
        ))
        .unwrap()
        .remove(0)
    };
    let system = Actor::system();
    for (name, host) in [("shop", SHOP), ("blog", BLOG)] {
        engine
            .create_environment(
                &system,
                &config(name, &format!("[\"{host}\"]"), app, admin),
                &ChecklistSource::Empty,
            )
            .await
            .unwrap();
    }
    assert_eq!(processes_under(dir.path()).len(), 1, "one shared proxy");
    assert!(dir
        .path()
        .join(format!("proxy-127.0.0.1-{admin}-routing.json"))
        .exists());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ask = |host: &'static str| {
        http.get(format!("http://127.0.0.1:{app}/"))
            .header(reqwest::header::HOST, host)
            .send()
    };
    // Routed, nothing live yet: 503 for both hosts, 404 for any other.
    assert_eq!(ask(SHOP).await.unwrap().status(), 503);
    assert_eq!(ask(BLOG).await.unwrap().status(), 503);
    assert_eq!(ask("nobody.example.test").await.unwrap().status(), 404);

    // A sharer must listen where the proxy does.
    let err = engine
        .create_environment(
            &system,
            &config("news", "[\"news.example.test\"]", other_app, admin),
            &ChecklistSource::Empty,
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("app_url"), "{err:?}");
    // An environment with a proxy of its own cannot take a port the shared
    // one holds (its preview listener).
    let plain = model::EnvironmentConfig {
        preview_listen: None,
        ..config("plain", "[]", preview, other_admin)
    };
    let err = engine
        .create_environment(&system, &plain, &ChecklistSource::Empty)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("app_url"), "{err:?}");
    assert_eq!(
        engine.environment_names(&system).await.unwrap(),
        ["blog", "shop"]
    );

    let routes = BuiltinRouter::new(&format!("http://127.0.0.1:{admin}"), TOKEN.into());
    routes.delete_route("shop").await.unwrap();
    assert_eq!(ask(SHOP).await.unwrap().status(), 404);
    engine.reconcile_routes().await.unwrap();
    assert_eq!(
        routes.get_route("shop").await.unwrap().map(|r| r.hosts),
        Some(vec![SHOP.to_string()])
    );
    assert_eq!(ask(SHOP).await.unwrap().status(), 503);
}

/// A deploy held at preview on a shared proxy names its preview by the
/// environment's host at the preview listener's port: that listener picks
/// the route by `Host`, so the bare address would answer 404. Asked that
/// way, it answers with the held release while users keep the live one.
#[tokio::test]
async fn a_held_deploy_on_a_shared_proxy_names_its_preview_by_host() {
    let s = Shared::new().await;
    let system = Actor::system();
    s.create("shop", &format!("[\"{SHOP}\"]"), "")
        .await
        .unwrap();
    s.deploy("shop", "v1").await;
    let mut settings = s.engine.pipeline_settings(&system, "shop").await.unwrap();
    settings.hold_at_preview = true;
    s.engine
        .set_pipeline_settings(&system, "shop", &settings)
        .await
        .unwrap();
    let engine = s.engine.clone();
    let task = tokio::spawn(async move { engine.deploy(&Actor::system(), "shop", "v2").await });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (id, hold) = loop {
        assert!(std::time::Instant::now() < deadline, "never held");
        let newest = s.engine.history(&system, "shop", 1).await.unwrap();
        if let Some(d) = newest
            .first()
            .filter(|d| d.to_version.as_deref() == Some("v2"))
        {
            let detail = s.engine.deployment(&system, d.id).await.unwrap();
            if let Some(hold) = detail.hold {
                break (d.id, hold);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let preview = s.info.preview.clone().unwrap();
    let port = preview.rsplit_once(':').unwrap().1;
    assert_eq!(hold.preview_url, format!("http://{SHOP}:{port}"));
    // The named host at the listener's address reaches the held release;
    // the bare address reaches nothing; users are still on v1.
    let at_preview = |host: Option<&'static str>| {
        let mut req = s.http.get(format!("http://{preview}/"));
        if let Some(h) = host {
            req = req.header(reqwest::header::HOST, h);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        at_preview(Some(SHOP)).await,
        (200, "switchyard-demo v2\n".to_string())
    );
    assert_eq!(at_preview(None).await.0, 404);
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v1\n".to_string()));
    s.engine.promote_hold(&system, id).await.unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    assert_eq!(s.ask(SHOP).await, (200, "switchyard-demo v2\n".to_string()));
}
