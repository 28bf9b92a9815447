//! The real `switchyard-proxy` binary in front of two real `switchyard-demo`
//! processes: switching, fencing, surviving SIGKILL, and no failed request
//! while switching back and forth.
//!
//! Needs the demo binary: `cargo build -p demo` (or `--workspace`) first.

mod support;

use model::{RoutingTable, SlotColor};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::spawned::{proxy_command, start_demo, start_proxy, start_proxy_with, SpawnedProxy};
use support::{admin_get, admin_json, put_routing_status, route, start_cookie_echo, TOKEN};

/// (status, body, slot header) of `GET /` through the proxy.
async fn get(c: &reqwest::Client, proxy: &SpawnedProxy) -> (u16, String, String) {
    let res = c
        .get(format!("http://{}/", proxy.info.listen))
        .send()
        .await
        .expect("proxy answers");
    let status = res.status().as_u16();
    let slot = res
        .headers()
        .get("x-switchyard-slot")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, res.text().await.unwrap_or_default(), slot)
}

#[tokio::test]
async fn switches_between_real_demo_slots_and_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (_blue, blue_addr) = start_demo("1.0.0");
    let (_green, green_addr) = start_demo("2.0.0");
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let proxy = start_proxy(dir.path());
    assert_eq!(get(&c, &proxy).await.0, 503, "no route yet");

    let v1 = route(1, SlotColor::Blue, &blue_addr);
    assert_eq!(put_routing_status(&c, proxy.info.admin, &v1).await, 200);
    for _ in 0..3 {
        assert_eq!(
            get(&c, &proxy).await,
            (200, "switchyard-demo 1.0.0\n".into(), "blue".into())
        );
    }

    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(2, SlotColor::Green, &green_addr)
        )
        .await,
        200
    );
    for _ in 0..3 {
        assert_eq!(
            get(&c, &proxy).await,
            (200, "switchyard-demo 2.0.0\n".into(), "green".into())
        );
    }

    assert_eq!(
        put_routing_status(&c, proxy.info.admin, &route(3, SlotColor::Blue, &blue_addr)).await,
        200
    );
    assert_eq!(get(&c, &proxy).await.1, "switchyard-demo 1.0.0\n");

    // A worker that lost the race replays its generation-2 switch: refused.
    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(2, SlotColor::Green, &green_addr)
        )
        .await,
        409
    );
    assert_eq!(get(&c, &proxy).await.1, "switchyard-demo 1.0.0\n");

    proxy.kill();
    let proxy = start_proxy(dir.path());
    assert_eq!(
        get(&c, &proxy).await,
        (200, "switchyard-demo 1.0.0\n".into(), "blue".into()),
        "restored route without any PUT"
    );
    let routing: RoutingTable = admin_get(&c, proxy.info.admin, "/admin/routing")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(routing, route(3, SlotColor::Blue, &blue_addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_during_twenty_switches() {
    let dir = tempfile::tempdir().unwrap();
    let (_blue, blue_addr) = start_demo("1.0.0");
    let (_green, green_addr) = start_demo("2.0.0");
    let proxy = Arc::new(start_proxy(dir.path()));
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(
        put_routing_status(&c, proxy.info.admin, &route(1, SlotColor::Blue, &blue_addr)).await,
        200
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let seen_v1 = Arc::new(AtomicU64::new(0));
    let seen_v2 = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (c, proxy, stop) = (c.clone(), Arc::clone(&proxy), Arc::clone(&stop));
        let (failures, seen_v1, seen_v2) = (
            Arc::clone(&failures),
            Arc::clone(&seen_v1),
            Arc::clone(&seen_v2),
        );
        workers.push(tokio::spawn(async move {
            // Bounded so a hung switch cannot turn this into a load test.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (status, body, _) = get(&c, &proxy).await;
                if !(200..300).contains(&status) {
                    failures.fetch_add(1, Ordering::Relaxed);
                } else if body.contains("1.0.0") {
                    seen_v1.fetch_add(1, Ordering::Relaxed);
                } else if body.contains("2.0.0") {
                    seen_v2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    for generation in 2..=21u64 {
        let table = if generation.is_multiple_of(2) {
            route(generation, SlotColor::Green, &green_addr)
        } else {
            route(generation, SlotColor::Blue, &blue_addr)
        };
        assert_eq!(put_routing_status(&c, proxy.info.admin, &table).await, 200);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker finished");
    }

    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "non-2xx during switches"
    );
    assert!(seen_v1.load(Ordering::Relaxed) > 0);
    assert!(seen_v2.load(Ordering::Relaxed) > 0);

    let status = admin_json(&c, proxy.info.admin, "/admin/status").await;
    assert_eq!(status["routing"]["generation"], 21);
    assert_eq!(status["errors"], serde_json::json!({"blue": 0, "green": 0}));
}

#[tokio::test]
async fn preview_flag_serves_the_idle_demo_slot_and_metrics_tell_them_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (_blue, blue_addr) = start_demo("1.0.0");
    let (_green, green_addr) = start_demo("2.0.0");
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let proxy = start_proxy_with(dir.path(), &["--preview", "127.0.0.1:0"]);
    let preview = proxy
        .info
        .preview
        .expect("ready file names the preview listener");

    let table = serde_json::json!({
        "generation": 1,
        "active": {"slot": "blue", "address": blue_addr},
        "preview": {"slot": "green", "address": green_addr},
    });
    let status = put_routing_status(&c, proxy.info.admin, &table).await;
    assert_eq!(status, 200);
    for _ in 0..3 {
        let res = c.get(format!("http://{preview}/")).send().await.unwrap();
        assert_eq!(res.headers()["x-switchyard-slot"], "green");
        assert_eq!(res.text().await.unwrap(), "switchyard-demo 2.0.0\n");
    }
    assert_eq!(get(&c, &proxy).await.1, "switchyard-demo 1.0.0\n");

    let metrics: serde_json::Value =
        admin_get(&c, proxy.info.admin, "/admin/metrics?window_secs=60")
            .await
            .json()
            .await
            .unwrap();
    let green = &metrics["slots"]["green"];
    assert_eq!(green["listeners"]["preview"]["responses"]["2xx"], 3);
    assert_eq!(green["listeners"]["public"]["requests"], 0);
    assert_eq!(
        metrics["slots"]["blue"]["listeners"]["public"]["requests"],
        1
    );

    // The state file keeps the preview slot across a SIGKILL.
    proxy.kill();
    let proxy = start_proxy_with(dir.path(), &["--preview", "127.0.0.1:0"]);
    let preview = proxy.info.preview.unwrap();
    let res = c.get(format!("http://{preview}/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "switchyard-demo 2.0.0\n");
}

#[test]
fn refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let run = |token_file: &Path| proxy_command(dir.path(), token_file).output().unwrap();
    let out = run(&dir.path().join("missing"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read admin token file"));

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "  \n").unwrap();
    let out = run(&empty);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
}

#[test]
fn refuses_to_start_with_a_corrupt_state_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("routing.json"), "garbage").unwrap();
    let out = proxy_command(dir.path(), &dir.path().join("token"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is corrupt"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token never reaches logs");
}

#[test]
fn sigterm_stops_the_proxy_with_exit_code_0() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let dir = tempfile::tempdir().unwrap();
    let mut proxy = start_proxy(dir.path());
    kill(Pid::from_raw(proxy.info.pid as i32), Signal::SIGTERM).unwrap();
    let status = proxy.process.0.wait().expect("proxy exits");
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap();
    assert!(!log.contains(TOKEN), "the token never reaches logs");
}

/// Runs the binary with `extra` flags until it exits (it must refuse to
/// start); (exit code, stderr).
fn refused_start(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let out = proxy_command(dir, &dir.join("token"))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refuses_to_start_with_a_bad_allow_upstream_or_strip_cookie() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, why) in [
        (
            "--allow-upstream",
            "172.17.0.1/16",
            "host bits are set after /16 (did you mean 172.17.0.0/16?)",
        ),
        (
            "--allow-upstream",
            "172.17.0.0",
            "the /prefix length is missing",
        ),
        (
            "--allow-upstream",
            "docker0/16",
            "\"docker0\" is not an IP address",
        ),
        (
            "--allow-upstream",
            "fd00::/200",
            "the prefix length must be a number from 0 to 128",
        ),
        ("--strip-cookie", "a=b", "is not a cookie name"),
        ("--strip-cookie", "", "is not a cookie name: it is empty"),
    ] {
        let (code, stderr) = refused_start(dir.path(), &[flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(stderr.contains(why), "{flag} {value}: {stderr}");
    }
}

#[test]
fn refuses_to_start_with_a_state_file_routing_where_it_must_not() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("routing.json");
    std::fs::write(
        &state_file,
        r#"{"generation": 9, "active": {"slot": "blue", "address": "127.0.0.1:9001"},
            "preview": {"slot": "green", "address": "169.254.169.254:80"}}"#,
    )
    .unwrap();
    let (code, stderr) = refused_start(dir.path(), &["--allow-upstream", "169.254.0.0/16"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "state file {} holds a routing table this proxy refuses: preview upstream \"169.254.169.254:80\": link-local/metadata addresses are never allowed",
            state_file.display()
        )),
        "{stderr}"
    );
}

/// The flags end to end on the real binary: `--allow-upstream` lets a table
/// name that network (nothing is sent there: a PUT does not connect), and
/// `--strip-cookie` replaces the default names.
#[tokio::test]
async fn allow_upstream_and_strip_cookie_flags_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy_with(
        dir.path(),
        &[
            "--allow-upstream",
            "172.17.0.0/16",
            "--allow-upstream",
            "fd00::/8",
            "--strip-cookie",
            "console_sid",
        ],
    );
    let c = reqwest::Client::new();
    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(1, SlotColor::Blue, "172.17.0.2:8080")
        )
        .await,
        200
    );
    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(2, SlotColor::Blue, "[fd00::2]:8080")
        )
        .await,
        200
    );
    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(3, SlotColor::Blue, "10.0.0.2:8080")
        )
        .await,
        400
    );
    let own_admin = proxy.info.admin.to_string();
    assert_eq!(
        put_routing_status(&c, proxy.info.admin, &route(3, SlotColor::Blue, &own_admin)).await,
        400
    );

    let app_addr = start_cookie_echo().await;
    assert_eq!(
        put_routing_status(
            &c,
            proxy.info.admin,
            &route(3, SlotColor::Green, &app_addr.to_string())
        )
        .await,
        200
    );
    let seen = c
        .get(format!("http://{}/", proxy.info.listen))
        .header("cookie", "console_sid=1; switchyard_session=2; theme=dark")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(seen, "switchyard_session=2; theme=dark");
}
