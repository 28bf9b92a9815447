//! Runs the real `switchyard-demo` binary on a free port.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard-demo");

/// A running demo, killed when dropped so a failing test leaves no orphans.
struct Demo {
    child: Child,
    base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(version: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--app-version")
        .arg(version)
        .env_remove("APP_VERSION")
        .env_remove("HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for key in [
        "DEMO_STARTUP_DELAY_MS",
        "DEMO_FAIL_HEALTH",
        "DEMO_ERROR_RATE",
        "DEMO_LATENCY_MS",
        "DEMO_EXIT_AT_START",
    ] {
        cmd.env_remove(key);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts the demo with `PORT=0` and learns the port from its "listening on" line.
fn start(version: &str, env: &[(&str, &str)]) -> Demo {
    let mut cmd = command(version, env);
    cmd.env("PORT", "0");
    let mut child = cmd.spawn().expect("spawn switchyard-demo");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("demo exited before listening")
            .expect("read stderr");
        if let Some((_, addr)) = line.split_once(" listening on ") {
            break addr.trim().to_string();
        }
    };
    // Keep draining stderr so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Demo {
        child,
        base: format!("http://{addr}"),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_root_and_health() {
    let demo = start("1.4.0", &[]);
    let c = client();

    let res = c.get(format!("{}/", demo.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-app-version"], "1.4.0");
    assert_eq!(res.text().await.unwrap(), "switchyard-demo 1.4.0\n");

    // Smoke routes configured in the console hit arbitrary paths.
    let res = c
        .get(format!("{}/smoke/ping?x=1", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "switchyard-demo 1.4.0\n");

    let res = c.get(format!("{}/health", demo.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "version": "1.4.0"})
    );
}

#[tokio::test]
async fn unhealthy_build_metadata_fails_health_but_serves() {
    let demo = start("2.0.0+unhealthy", &[]);
    let c = client();
    let res = c.get(format!("{}/health", demo.base)).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "failing", "version": "2.0.0+unhealthy"})
    );
    let res = c.get(format!("{}/", demo.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn env_var_overrides_build_metadata() {
    let demo = start("2.0.0+unhealthy", &[("DEMO_FAIL_HEALTH", "0")]);
    let res = client()
        .get(format!("{}/health", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn error_rate_is_deterministic_and_spares_health() {
    let demo = start("3.0.0", &[("DEMO_ERROR_RATE", "0.34")]);
    let c = client();
    let mut statuses = Vec::new();
    for i in 0..9 {
        // Health probes in between must neither fail nor shift the pattern.
        if i % 2 == 0 {
            let h = c.get(format!("{}/health", demo.base)).send().await.unwrap();
            assert_eq!(h.status(), 200);
        }
        let res = c.get(format!("{}/", demo.base)).send().await.unwrap();
        statuses.push(res.status().as_u16());
    }
    // ⌈1/0.34⌉ = 3: every third request fails.
    assert_eq!(statuses, vec![200, 200, 500, 200, 200, 500, 200, 200, 500]);
}

#[tokio::test]
async fn errors_build_metadata_fails_every_second_request() {
    let demo = start("3.1.0+errors", &[]);
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = c.get(format!("{}/", demo.base)).send().await.unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 500, 200, 500]);
}

#[test]
fn port_in_use_exits_1_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = command("1.0.0", &[("PORT", &port)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "stderr: {stderr}"
    );
}

#[test]
fn missing_or_invalid_port_exits_2() {
    let out = command("1.0.0", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT is not set"));

    let out = command("1.0.0", &[("PORT", "eighty")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT=\"eighty\""));
}

#[test]
fn crash_build_exits_1_at_start() {
    let out = command("4.0.0+crash", &[("PORT", "0")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = command("4.0.0", &[("PORT", "0"), ("DEMO_EXIT_AT_START", "1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn startup_delay_postpones_listening() {
    let started = std::time::Instant::now();
    let demo = start("5.0.0", &[("DEMO_STARTUP_DELAY_MS", "400")]);
    assert!(started.elapsed() >= Duration::from_millis(400));
    drop(demo);
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_0() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let mut demo = start("6.0.0", &[("DEMO_LATENCY_MS", "600")]);
    let url = format!("{}/", demo.base);
    let in_flight = tokio::spawn(async move { client().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill(Pid::from_raw(demo.child.id() as i32), Signal::SIGTERM).unwrap();

    let res = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "switchyard-demo 6.0.0\n");

    let status = tokio::task::spawn_blocking(move || {
        let status = demo.child.wait();
        (status, demo)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn latency_knob_delays_responses() {
    let demo = start("7.0.0+laggy", &[]);
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(demo.base.trim_start_matches("http://")).unwrap();
    use std::io::Write;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn sleep_answers_like_root_after_the_given_time() {
    let demo = start("1.4.0", &[]);
    let c = client();
    let t = std::time::Instant::now();
    let res = c
        .get(format!("{}/sleep/400", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "switchyard-demo 1.4.0\n");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    let res = c
        .get(format!("{}/sleep/not-a-number", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
