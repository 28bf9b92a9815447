//! Pages and exports over HTTP: pages need a session and a GET never
//! deploys, the audit export is for signed-in users and follows the page's
//! filter, and a deployment's data and page show its steps and why it failed.
//!
//! The real axum router from `server::http`, real server functions and a
//! real SQLite file, served on a loopback port (see `support`). No proxy or
//! slot process is involved: every request here is decided before any
//! runtime work, or fails at the pipeline's preflight against an unreachable
//! router.

mod support;

use reqwest::header::LOCATION;
use support::*;

#[tokio::test]
async fn pages_need_a_session_and_get_never_deploys() {
    let c = start().await;
    c.user("dora", Role::Deployer).await;

    let r = c.get("/", None).await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.body);
    assert_eq!(r.headers.get(LOCATION).unwrap(), "/login");
    let r = c.get("/login", None).await;
    assert_eq!(r.status, StatusCode::OK);

    let cookie = c.session_for("dora").await;
    let r = c.get("/", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    for path in [
        "/api/deploy?environment=production&version=v2",
        "/api/rollback?environment=production&reason=get",
    ] {
        let r = c.get(path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    assert_eq!(c.count("deployments").await, 0);
}

/// The audit export needs a session, follows the page's filter, and every
/// login attempt and refusal shows up in it — without the password.
#[tokio::test]
async fn audit_export_is_signed_in_only_and_follows_the_filter() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    let r = c.get("/audit/export.csv", None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);

    let wrong = c.login("vera", "guessing-the-password", None).await;
    assert_eq!(wrong.status.as_u16(), 401);
    let cookie = c.session_for("vera").await;
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);

    let jsonl = c.get("/audit/export.jsonl", Some(&cookie)).await;
    assert_eq!(jsonl.status.as_u16(), 200, "{}", jsonl.body);
    let lines: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A signed checkpoint first, then the entries it vouches for.
    assert_eq!(lines[0]["type"], "checkpoint", "{}", jsonl.body);
    let entries: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "entry").collect();
    assert_eq!(entries.len(), lines.len() - 1, "{}", jsonl.body);
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    // Newest first.
    assert_eq!(
        actions,
        [
            ("deploy.request", "denied"),
            ("auth.login", "ok"),
            ("auth.login", "failed")
        ]
    );
    // Verifiable offline with the console's public key, and complete.
    let key = engine::AuditCheckpoints::existing(c._dir.path())
        .public_key()
        .unwrap();
    let report = engine::verify_audit_export(jsonl.body.as_bytes(), &key).unwrap();
    assert_eq!((report.entries, report.links), (3, 0));
    assert!(report.complete, "{report:?}");
    assert!(entries[0]["source_ip"]
        .as_str()
        .unwrap()
        .starts_with("127."));
    assert!(!jsonl.body.contains("guessing-the-password"));
    assert!(!jsonl.body.contains(PASSWORD));

    let csv = c
        .get(
            "/audit/export.csv?action=auth.login&actor=vera",
            Some(&cookie),
        )
        .await;
    assert_eq!(csv.status.as_u16(), 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].starts_with("id,at,actor_kind,actor_name"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 3, "header + two login attempts: {}", csv.body);
    assert!(lines[1].contains(",auth.login,") && lines[1].contains(",ok,"));
    assert!(lines[2].contains(",failed,"));
}

/// A deployment's page data over HTTP: its steps say where and why it
/// stopped, every role can read it, and an unknown id is a 404.
#[tokio::test]
async fn a_deployment_reads_with_its_steps_and_says_why_it_failed() {
    let c = start().await;
    let d = c.failed_deploy().await;
    c.user("vera", Role::Viewer).await;
    let cookie = c.session_for("vera").await;
    let r = c
        .post(
            "/api/load_deployment",
            &[("id", &d.id.to_string())],
            Some(&cookie),
            &[],
        )
        .await;
    let v: serde_json::Value = r.json();
    assert_eq!(v["me"]["username"], "vera");
    assert_eq!(v["detail"]["deployment"]["id"], d.id);
    assert_eq!(v["detail"]["deployment"]["status"], "failed");
    let steps: Vec<(String, String)> = v["detail"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("lock", "succeeded"),
        ("preflight", "failed"),
        ("start", "skipped"),
        ("health", "skipped"),
        ("gates", "skipped"),
        ("switch", "skipped"),
        ("drain", "skipped"),
        ("standby", "skipped"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, expected, "{}", r.body);
    let why = v["detail"]["steps"][1]["message"].as_str().unwrap();
    assert!(why.contains("traffic router"), "{why}");
    assert!(
        !r.body.contains("http-test-token"),
        "the proxy token leaked: {}",
        r.body
    );

    let r = c
        .post(
            "/api/load_deployment",
            &[("id", "9999")],
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    assert!(matches!(r.error(), AppError::NotFound(_)), "{}", r.body);
    let r = c.get("/api/deployments/9999/events", Some(&cookie)).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let r = c
        .get(&format!("/api/deployments/{}/events", d.id), Some(&cookie))
        .await;
    assert!(r.body.contains("traffic router"), "{}", r.body);
    assert!(
        !r.body.contains("http-test-token"),
        "the proxy token leaked: {}",
        r.body
    );

    // The page itself needs a session, like every other page, and renders
    // the timeline on the server.
    let path = format!("/deployments/{}", d.id);
    let page = c.get(&path, None).await;
    assert!(
        page.status.is_redirection(),
        "{}: {}",
        page.status,
        page.body
    );
    assert_eq!(page.headers.get(LOCATION).unwrap(), "/login");
    let page = c.get(&path, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Preflight checks"), "{}", page.body);
    assert!(page.body.contains("traffic router"), "{}", page.body);
}

/// The front end's files: the build's brotli or gzip copy when the browser
/// takes it, cached for a year when the name carries the content's hash,
/// revalidated when it does not — and never behind the sign-in redirect.
#[tokio::test]
async fn front_end_files_are_precompressed_and_cached_by_name() {
    let c = start().await;
    let pkg = c._dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let hashed = "switchyard.AbCdEfGhIjKlMnOpQr-_12.wasm";
    std::fs::write(pkg.join(hashed), b"\0asm plain").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.br")), b"brotli copy").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.gz")), b"gzip copy").unwrap();
    // Big enough for on-the-fly compression to bother.
    let css = "body { color: black; }\n".repeat(200);
    std::fs::write(pkg.join("switchyard.css"), &css).unwrap();

    let fetch = |path: String, encoding: Option<&'static str>| {
        let c = &c;
        async move {
            let mut req = c.http.get(format!("{}{path}", c.origin));
            if let Some(e) = encoding {
                req = req.header("accept-encoding", e);
            }
            let r = req.send().await.unwrap();
            let header = |name: &str| {
                r.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let (status, enc, cache) = (
                r.status(),
                header("content-encoding"),
                header("cache-control"),
            );
            (status, enc, cache, r.bytes().await.unwrap().to_vec())
        }
    };
    let wasm = format!("/pkg/{hashed}");
    let (status, enc, cache, body) = fetch(wasm.clone(), Some("br, gzip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((enc.as_str(), body.as_slice()), ("br", &b"brotli copy"[..]));
    assert_eq!(cache, "public, max-age=31536000, immutable");
    let (_, enc, _, body) = fetch(wasm.clone(), Some("gzip")).await;
    assert_eq!((enc.as_str(), body.as_slice()), ("gzip", &b"gzip copy"[..]));
    let (_, enc, cache, body) = fetch(wasm, None).await;
    assert_eq!((enc.as_str(), body.as_slice()), ("", &b"\0asm plain"[..]));
    assert_eq!(cache, "public, max-age=31536000, immutable");

    // A name without a hash: compressed on the fly, revalidated each use.
    let (status, enc, cache, body) = fetch("/pkg/switchyard.css".into(), Some("gzip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(enc, "gzip");
    assert!(body.len() < css.len() / 4, "{} bytes", body.len());
    assert_eq!(cache, "no-cache");
    // A missing file is a 404 that is asked for again, never kept.
    let (status, _, cache, _) =
        fetch("/pkg/switchyard.AbCdEfGhIjKlMnOpQr-_99.js".into(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(cache, "no-cache");
}
