//! An environment whose proxy the console runs cannot be created on an
//! address another program holds: from the Environments page, from
//! `switchyard env create` and from `switchyard apply`, each refusal names
//! the field (app_url, admin_url, preview_listen) and the address, and
//! nothing is written — no environment, no audit entry, no proxy started.
//! Once created, an environment's own proxy holds its ports, and editing
//! the environment is not refused for that.
//!
//! A real console running proxies as `switchyard serve` does (see
//! `support::start_running_proxies`), the real `switchyard` binary on the
//! same data directory, and real switchyard-proxy processes.

mod child;
mod support;

use std::net::TcpListener;
use std::path::Path;

use support::*;

/// Stops every process started under the data directory (the console's
/// proxies outlive it by design), however the test ends.
struct StopUnder(std::path::PathBuf);

impl Drop for StopUnder {
    fn drop(&mut self) {
        child::kill_everything_under(&self.0);
    }
}

/// A port another program listens on, held until dropped.
fn held() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Whether a switchyard-proxy runs for environment `name` under `dir`.
fn proxy_of(dir: &Path, name: &str) -> bool {
    let state = dir.join(format!("proxy-{name}-routing.json"));
    !child::pids_mentioning(&state).is_empty()
}

fn page_form(name: &str, app: u16, admin: u16, preview: u16) -> Vec<(&'static str, String)> {
    vec![
        ("name", name.to_string()),
        ("runtime", "docker".into()),
        ("artifact", "127.0.0.1:5000/shop:{version}".into()),
        ("app_url", format!("http://127.0.0.1:{app}/")),
        ("preview_listen", format!("127.0.0.1:{preview}")),
        ("health_path", "/health".into()),
        ("admin_url", format!("http://127.0.0.1:{admin}")),
        ("upstream", String::new()),
        ("signoff_ttl_hours", "24".into()),
        ("checklist", "empty".into()),
        ("port", "8080".into()),
        ("memory_mb", String::new()),
        ("cpus", String::new()),
        ("restart", "no".into()),
        ("network", String::new()),
    ]
}

#[tokio::test]
async fn a_port_in_use_is_refused_on_every_path_and_changes_nothing() {
    let [console_app, console_admin, app, admin, preview] = child::free_ports::<5>();
    let c = start_running_proxies(console_app, console_admin).await;
    let dir = c._dir.path().to_path_buf();
    let _stop = StopUnder(dir.clone());
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let (_taken, in_use) = held();
    let audit_before = c.count("audit_log").await;
    let nothing_written = |what: String| {
        let c = &c;
        let dir = dir.clone();
        async move {
            assert_eq!(c.count("environments").await, 1, "{what}: only ENV");
            assert_eq!(c.count("audit_log").await, audit_before, "{what}");
            assert!(!proxy_of(&dir, "shop"), "{what}: no proxy started");
        }
    };

    // The page: each address in turn.
    for (field, form) in [
        ("app_url", page_form("shop", in_use, admin, preview)),
        ("admin_url", page_form("shop", app, in_use, preview)),
        ("preview_listen", page_form("shop", app, admin, in_use)),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c
            .post("/api/create_environment", &form, Some(&ada), &[])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        match r.error() {
            AppError::InvalidInput { field: f, message } => {
                assert_eq!(f, field, "{message}");
                assert!(
                    message.contains(&format!(
                        "127.0.0.1:{in_use} is already in use by another program"
                    )),
                    "{message}"
                );
            }
            e => panic!("{field}: {e:?}"),
        }
        nothing_written(format!("page, {field}")).await;
    }

    // The CLI.
    let (ok, out) = store::cli(
        &dir,
        &[
            "env",
            "create",
            "shop",
            "--runtime",
            "docker",
            "--artifact",
            "127.0.0.1:5000/shop:{version}",
            "--app-url",
            &format!("http://127.0.0.1:{app}/"),
            "--admin-url",
            &format!("http://127.0.0.1:{in_use}"),
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "admin_url: the switchyard-proxy's admin address 127.0.0.1:{in_use} is already in use"
        )),
        "{out}"
    );
    nothing_written("switchyard env create".into()).await;

    // An applied file: refused already when it only shows the plan.
    let file = dir.join("shop.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[environment]]
name = "shop"
runtime = "docker"
artifact = "127.0.0.1:5000/shop:{{version}}"
app_url = "http://127.0.0.1:{app}/"
preview_listen = "127.0.0.1:{in_use}"

[environment.router]
admin_url = "http://127.0.0.1:{admin}"
token_file = "{token}"
"#,
            token = dir.join("proxy.token").display()
        ),
    )
    .unwrap();
    for args in [vec!["apply", "-f"], vec!["apply", "--yes", "-f"]] {
        let mut args = args;
        let path = file.display().to_string();
        args.push(&path);
        let (ok, out) = store::cli(&dir, &args).await;
        assert!(!ok, "{args:?}: {out}");
        assert!(
            out.contains(&format!(
                "preview_listen: the preview address 127.0.0.1:{in_use} is already in use"
            )),
            "{args:?}: {out}"
        );
        nothing_written(format!("switchyard {args:?}")).await;
    }

    // Free addresses: the page creates it and its proxy serves at once
    // (nothing deployed yet: 503), which shows the refusals above came from
    // the same path that starts proxies.
    let form = page_form("shop", app, admin, preview);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c
        .post("/api/create_environment", &form, Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(proxy_of(&dir, "shop"));
    let users = c
        .http
        .get(format!("http://127.0.0.1:{app}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Its own proxy holds those ports: an edit is not refused for that.
    let edit: Vec<(&str, String)> = vec![
        ("environment", "shop".into()),
        ("artifact", "127.0.0.1:5000/shop:{version}".into()),
        ("app_url", format!("http://127.0.0.1:{app}/")),
        ("preview_listen", format!("127.0.0.1:{preview}")),
        ("health_path", "/ready".into()),
        ("stop_grace_ms", "10000".into()),
        ("admin_url", format!("http://127.0.0.1:{admin}")),
        ("upstream", String::new()),
        ("signoff_ttl_hours", "24".into()),
        ("port", "8080".into()),
        ("memory_mb", String::new()),
        ("cpus", String::new()),
        ("restart", "no".into()),
        ("network", String::new()),
    ];
    let form: Vec<(&str, &str)> = edit.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c
        .post("/api/edit_environment", &form, Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (ok, out) = store::cli(&dir, &["env", "edit", "shop", "health_path=/live"]).await;
    assert!(ok, "{out}");
    // Another environment at the same address written another way
    // (localhost) gets past the store's comparison of addresses, not the
    // probe.
    let (ok, out) = store::cli(
        &dir,
        &[
            "env",
            "create",
            "other",
            "--runtime",
            "docker",
            "--artifact",
            "127.0.0.1:5000/other:{version}",
            "--app-url",
            &format!("http://localhost:{app}/"),
            "--admin-url",
            &format!("http://127.0.0.1:{}", child::free_ports::<1>()[0]),
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("app_url"), "{out}");
    assert!(out.contains("in use"), "{out}");

    // Archived from the CLI, it leaves the list.
    let (ok, out) = store::cli(&dir, &["env", "list"]).await;
    assert!(ok && out.lines().any(|l| l == "shop"), "{out}");
    let (ok, out) = store::cli(&dir, &["env", "archive", "shop"]).await;
    assert!(ok, "{out}");
    let (ok, out) = store::cli(&dir, &["env", "list"]).await;
    assert!(ok && !out.lines().any(|l| l == "shop"), "{out}");
}
