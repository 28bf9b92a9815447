//! The TLS listener (`--tls-listen`): certificates by SNI from files,
//! reloaded without a restart, ALPN, the HTTP → HTTPS redirect, and
//! switching under TLS load. A CA and its certificates are made in each
//! test (rcgen); the client is hyper over tokio-rustls trusting that CA
//! only, so every handshake also checks the served name.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::SlotColor;
use proxy::certs::{CertPair, CertSources};
use proxy::tls::TlsConfig;
use proxy::RunningProxy;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::in_process::start_proxy_with;
use support::{admin_get, put_routing_status, route, serve_upstream, TOKEN};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A test CA issuing leaf certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// One issued certificate: PEM files' contents and the leaf as served.
struct Issued {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `names` (DNS names, or IP addresses as IP SANs).
    fn issue(&self, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting this CA only, offering `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(proxy::tls::provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

impl Issued {
    /// Written as `dir/<stem>.crt` + `dir/<stem>.key`; the pair's paths.
    fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

fn pair(host: &str, (cert, key): (PathBuf, PathBuf)) -> CertPair {
    CertPair {
        host: host.to_string(),
        cert,
        key,
    }
}

const H1: &[&[u8]] = &[b"http/1.1"];
const H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A TLS handshake with `server_name` as SNI (an IP address sends none).
async fn connect(
    client: &TlsConnector,
    addr: SocketAddr,
    server_name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    client.connect(name, tcp).await
}

fn served_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// An HTTP/1.1 connection over `stream`, kept alive between requests.
async fn http1(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// (status, body) of `GET /` with this Host over an HTTP/1.1 connection.
async fn get1(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
) -> hyper::Result<(StatusCode, String)> {
    sender.ready().await?;
    let req = Request::get("/")
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let res = sender.send_request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One request over a fresh TLS connection; the body.
async fn get_tls(client: &TlsConnector, addr: SocketAddr, host: &str) -> String {
    let stream = connect(client, addr, host).await.expect("handshake");
    let (status, body) = get1(&mut http1(stream).await, host).await.unwrap();
    assert_eq!(status, 200, "{host}: {body}");
    body
}

/// Answers `<name> proto=<X-Forwarded-Proto>`.
async fn start_named(name: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| async move {
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        format!("{name} proto={proto}")
    });
    serve_upstream(app).await
}

async fn put_route(proxy: &RunningProxy, name: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .put(format!("http://{}/admin/routes/{name}", proxy.admin_addr))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn table(generation: u64, address: SocketAddr) -> Value {
    json!({"generation": generation, "active": {"slot": "blue", "address": address.to_string()}})
}

/// A proxy with a TLS listener on a free port reading `certs`.
async fn start_tls(dir: &Path, certs: CertSources, reload: Duration) -> RunningProxy {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    start_proxy_with(&state, |config| {
        let mut tls = TlsConfig::new("127.0.0.1:0".parse().unwrap(), certs);
        tls.reload_interval = reload;
        config.tls = Some(tls);
    })
    .await
}

#[tokio::test]
async fn sni_picks_each_hosts_certificate_and_tls_routes_like_plain() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let a = ca.issue(&["a.test"]);
    let wild = ca.issue(&["*.w.test"]);
    let a_files = a.write(dir.path(), "a");
    let certs_dir = dir.path().join("certs");
    std::fs::create_dir(&certs_dir).unwrap();
    wild.write(&certs_dir, "_wildcard.w.test");
    let certs = CertSources {
        pairs: vec![pair("a.test", a_files)],
        dirs: vec![certs_dir],
        default_host: None,
    };
    let proxy = start_tls(dir.path(), certs, Duration::from_secs(3600)).await;
    let tls_addr = proxy.tls_addr.unwrap();
    let a_up = start_named("a").await;
    let w_up = start_named("w").await;
    assert_eq!(
        put_route(
            &proxy,
            "a",
            json!({"hosts": ["a.test"], "table": table(1, a_up)})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        put_route(
            &proxy,
            "w",
            json!({"hosts": ["*.w.test"], "table": table(1, w_up)})
        )
        .await
        .0,
        201
    );

    let client = ca.client(H1);
    let stream = connect(&client, tls_addr, "a.test").await.unwrap();
    assert_eq!(
        served_leaf(&stream),
        a.der,
        "a.test gets its own certificate"
    );
    let mut a_conn = http1(stream).await;
    assert_eq!(
        get1(&mut a_conn, "a.test").await.unwrap(),
        (StatusCode::OK, "a proto=https".into())
    );

    let stream = connect(&client, tls_addr, "x.w.test").await.unwrap();
    assert_eq!(served_leaf(&stream), wild.der, "x.w.test gets the wildcard");
    let mut w_conn = http1(stream).await;
    assert_eq!(
        get1(&mut w_conn, "x.w.test").await.unwrap(),
        (StatusCode::OK, "w proto=https".into())
    );

    // The same routes on the plain listener, told apart only by the proto.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/", proxy.listen_addr))
        .header("host", "a.test")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.text().await.unwrap(), "a proto=http");
    proxy.shutdown().await;
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let a = ca.issue(&["a.test"]);
    let certs = CertSources {
        pairs: vec![pair("a.test", a.write(dir.path(), "a"))],
        ..CertSources::default()
    };
    let proxy = start_tls(dir.path(), certs, Duration::from_secs(3600)).await;
    let tls_addr = proxy.tls_addr.unwrap();
    let up = start_named("a").await;
    assert_eq!(
        put_route(
            &proxy,
            "a",
            json!({"hosts": ["a.test"], "table": table(1, up)})
        )
        .await
        .0,
        201
    );

    let stream = connect(&ca.client(H2_H1), tls_addr, "a.test")
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = Request::get("https://a.test/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.version(), Version::HTTP_2);
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"a proto=https");
    }

    let stream = connect(&ca.client(H1), tls_addr, "a.test").await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    proxy.shutdown().await;
}

#[tokio::test]
async fn unknown_host_fails_its_handshake_only_and_the_default_serves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    // Also valid for 127.0.0.1: a client connecting by IP sends no SNI.
    let a = ca.issue(&["a.test", "127.0.0.1"]);
    let files = a.write(dir.path(), "a");
    let client = ca.client(H1);
    let up = start_named("a").await;

    let without_default = CertSources {
        pairs: vec![pair("a.test", files.clone())],
        ..CertSources::default()
    };
    let proxy = start_tls(
        &dir.path().join("one"),
        without_default,
        Duration::from_secs(3600),
    )
    .await;
    let tls_addr = proxy.tls_addr.unwrap();
    assert_eq!(
        put_route(
            &proxy,
            "a",
            json!({"hosts": ["a.test"], "table": table(1, up)})
        )
        .await
        .0,
        201
    );
    let kept = connect(&client, tls_addr, "a.test").await.unwrap();
    let mut kept = http1(kept).await;
    for name in ["nobody.test", "127.0.0.1"] {
        assert!(
            connect(&client, tls_addr, name).await.is_err(),
            "{name}: no certificate, no handshake"
        );
    }
    // The proxy is unharmed: an open connection and new ones still work.
    assert_eq!(get1(&mut kept, "a.test").await.unwrap().0, 200);
    assert_eq!(get_tls(&client, tls_addr, "a.test").await, "a proto=https");
    proxy.shutdown().await;

    let with_default = CertSources {
        pairs: vec![pair("a.test", files)],
        default_host: Some("a.test".into()),
        ..CertSources::default()
    };
    let proxy = start_tls(
        &dir.path().join("two"),
        with_default,
        Duration::from_secs(3600),
    )
    .await;
    let stream = connect(&client, proxy.tls_addr.unwrap(), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(
        served_leaf(&stream),
        a.der,
        "no SNI: the default certificate"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_restart_and_open_connections_live_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let old = ca.issue(&["a.test"]);
    let files = old.write(dir.path(), "a");
    let certs = CertSources {
        pairs: vec![pair("a.test", files)],
        ..CertSources::default()
    };
    let interval = Duration::from_millis(200);
    let proxy = start_tls(dir.path(), certs, interval).await;
    let tls_addr = proxy.tls_addr.unwrap();
    let up = start_named("a").await;
    assert_eq!(
        put_route(
            &proxy,
            "a",
            json!({"hosts": ["a.test"], "table": table(1, up)})
        )
        .await
        .0,
        201
    );
    let client = ca.client(H1);

    let stream = connect(&client, tls_addr, "a.test").await.unwrap();
    assert_eq!(served_leaf(&stream), old.der);
    let mut kept = http1(stream).await;
    assert_eq!(get1(&mut kept, "a.test").await.unwrap().0, 200);

    // Renewed in place, certificate first, as a renewal tool would: for a
    // moment the key does not fit, which must not matter.
    let new = ca.issue(&["a.test"]);
    new.write(dir.path(), "a");
    let deadline = Instant::now() + interval * 10;
    loop {
        let stream = connect(&client, tls_addr, "a.test").await.unwrap();
        if served_leaf(&stream) == new.der {
            break;
        }
        assert_eq!(served_leaf(&stream), old.der);
        assert!(
            Instant::now() < deadline,
            "new certificate not served in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        assert_eq!(
            get1(&mut kept, "a.test").await.unwrap(),
            (StatusCode::OK, "a proto=https".into()),
            "the connection opened before the reload keeps working"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_broken_replacement_keeps_the_previous_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let good = ca.issue(&["a.test"]);
    let (cert_path, key_path) = good.write(dir.path(), "a");
    let certs = CertSources {
        pairs: vec![pair("a.test", (cert_path.clone(), key_path.clone()))],
        ..CertSources::default()
    };
    // No timer during the test: each reload is the SIGHUP one.
    let proxy = start_tls(dir.path(), certs, Duration::from_secs(3600)).await;
    let tls_addr = proxy.tls_addr.unwrap();
    let client = ca.client(H1);

    let other = ca.issue(&["a.test"]);
    for (what, cert, key) in [
        (
            "garbage",
            "not a certificate".to_string(),
            good.key_pem.clone(),
        ),
        ("empty", String::new(), good.key_pem.clone()),
        (
            "key of another certificate",
            other.cert_pem.clone(),
            good.key_pem.clone(),
        ),
        (
            "truncated key",
            good.cert_pem.clone(),
            good.key_pem[..40].to_string(),
        ),
    ] {
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let report = proxy.reload_certs().await;
        assert_eq!(report.refused, ["a.test"], "{what}");
        assert!(report.loaded.is_empty(), "{what}");
        let stream = connect(&client, tls_addr, "a.test").await.unwrap();
        assert_eq!(served_leaf(&stream), good.der, "{what}: the old one serves");
    }
    // A vanished file is no certificate either.
    std::fs::remove_file(&key_path).unwrap();
    assert!(proxy.reload_certs().await.loaded.is_empty());
    let stream = connect(&client, tls_addr, "a.test").await.unwrap();
    assert_eq!(served_leaf(&stream), good.der);

    // Fixed: served at the next reload.
    other.write(dir.path(), "a");
    assert_eq!(proxy.reload_certs().await.loaded, ["a.test"]);
    let stream = connect(&client, tls_addr, "a.test").await.unwrap();
    assert_eq!(served_leaf(&stream), other.der);
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_bad_certificate_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.crt"), "nope").unwrap();
    std::fs::write(dir.path().join("a.key"), "nope").unwrap();
    let certs = CertSources {
        pairs: vec![pair(
            "a.test",
            (dir.path().join("a.crt"), dir.path().join("a.key")),
        )],
        ..CertSources::default()
    };
    let mut config = support::in_process::config(dir.path().join("routing.json"));
    config.tls = Some(TlsConfig::new("127.0.0.1:0".parse().unwrap(), certs));
    let err = proxy::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("a.test"), "{err}");
}

#[tokio::test]
async fn plain_requests_of_a_redirecting_route_get_308_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let r = ca.issue(&["r.test"]);
    let certs = CertSources {
        pairs: vec![pair("r.test", r.write(dir.path(), "r"))],
        ..CertSources::default()
    };
    let proxy = start_tls(dir.path(), certs, Duration::from_secs(3600)).await;
    let tls_port = proxy.tls_addr.unwrap().port();
    let up = start_named("r").await;
    let (status, spec) = put_route(
        &proxy,
        "r",
        json!({"hosts": ["r.test"], "redirect_https": true, "table": table(1, up)}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(spec["redirect_https"], true);
    let (status, spec) = put_route(
        &proxy,
        "p",
        json!({"hosts": ["p.test"], "table": table(1, up)}),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        spec.get("redirect_https").is_none(),
        "off by default: {spec}"
    );
    let shown: Value = admin_get(&reqwest::Client::new(), proxy.admin_addr, "/admin/routes/r")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["redirect_https"], true);

    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = c
        .post(format!("http://{}/cart/add?item=7&q=2", proxy.listen_addr))
        .header("host", "R.test:8080")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://r.test:{tls_port}/cart/add?item=7&q=2").as_str()
    );
    let res = c
        .get(format!("http://{}/", proxy.listen_addr))
        .header("host", "p.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "r proto=http",
        "no redirect unless asked"
    );
    // Over TLS the same route is forwarded.
    assert_eq!(
        get_tls(&ca.client(H1), proxy.tls_addr.unwrap(), "r.test").await,
        "r proto=https"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_during_switches_under_tls_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let a = ca.issue(&["a.test"]);
    let certs = CertSources {
        pairs: vec![pair("a.test", a.write(dir.path(), "a"))],
        ..CertSources::default()
    };
    let proxy = Arc::new(start_tls(dir.path(), certs, Duration::from_millis(200)).await);
    let tls_addr = proxy.tls_addr.unwrap();
    let blue = start_named("blue").await.to_string();
    let green = start_named("green").await.to_string();
    let c = reqwest::Client::new();
    assert_eq!(
        put_routing_status(&c, proxy.admin_addr, &route(1, SlotColor::Blue, &blue)).await,
        200
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let seen_blue = Arc::new(AtomicU64::new(0));
    let seen_green = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let client = ca.client(H1);
        let (stop, failures) = (Arc::clone(&stop), Arc::clone(&failures));
        let (seen_blue, seen_green) = (Arc::clone(&seen_blue), Arc::clone(&seen_green));
        workers.push(tokio::spawn(async move {
            // Kept-alive connections, a new one every 50 requests.
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = connect(&client, tls_addr, "a.test").await else {
                    failures.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut conn = http1(stream).await;
                for _ in 0..50 {
                    match get1(&mut conn, "a.test").await {
                        Ok((status, body)) if status == 200 => {
                            if body.starts_with("blue") {
                                seen_blue.fetch_add(1, Ordering::Relaxed);
                            } else {
                                seen_green.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }));
    }
    for generation in 2..=11u64 {
        let (slot, address) = if generation % 2 == 0 {
            (SlotColor::Green, &green)
        } else {
            (SlotColor::Blue, &blue)
        };
        assert_eq!(
            put_routing_status(&c, proxy.admin_addr, &route(generation, slot, address)).await,
            200
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests during switches"
    );
    assert!(seen_blue.load(Ordering::Relaxed) > 0);
    assert!(seen_green.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn the_binary_serves_a_certbot_style_dir_and_reloads_on_sighup() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    // certbot's layout: live/<host>/fullchain.pem + privkey.pem.
    let live = dir.path().join("live");
    let host_dir = live.join("a.test");
    std::fs::create_dir_all(&host_dir).unwrap();
    let write = |issued: &Issued| {
        std::fs::write(host_dir.join("fullchain.pem"), &issued.cert_pem).unwrap();
        std::fs::write(host_dir.join("privkey.pem"), &issued.key_pem).unwrap();
    };
    let old = ca.issue(&["a.test"]);
    write(&old);
    let live_arg = live.to_str().unwrap();
    // A timer that never fires during the test: only SIGHUP reloads.
    let proxy = support::spawned::start_proxy_with(
        dir.path(),
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-dir",
            live_arg,
            "--tls-reload-secs",
            "3600",
        ],
    );
    let tls_addr = proxy
        .info
        .tls
        .expect("the ready file names the TLS listener");
    let client = ca.client(H1);
    let stream = connect(&client, tls_addr, "a.test").await.unwrap();
    assert_eq!(served_leaf(&stream), old.der);

    let new = ca.issue(&["a.test"]);
    write(&new);
    kill(Pid::from_raw(proxy.info.pid as i32), Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stream = connect(&client, tls_addr, "a.test").await.unwrap();
        if served_leaf(&stream) == new.der {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

#[test]
fn the_binary_refuses_tls_flags_without_a_listener_or_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let run = |extra: &[&str]| {
        let out = support::spawned::proxy_command(dir.path(), &dir.path().join("token"))
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--tls-dir", "/nonexistent"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-listen"), "{err}");
    let (code, err) = run(&["--tls-listen", "127.0.0.1:0", "--tls-cert", "a.test"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("HOST=CERT.pem:KEY.pem"), "{err}");
    let (code, err) = run(&["--tls-listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no certificate"), "{err}");
}
