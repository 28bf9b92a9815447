//! HTTPS for users from the console's own switchyard-proxy (`serve
//! --proxy-tls-*`): a real console starts its proxy with a TLS listener and
//! a directory of certificates issued here by a test CA; users reach the
//! demo over HTTPS (certificate chosen by SNI) as over plain HTTP; the flags
//! are recorded so whoever starts the proxy again gives it the same
//! listener; and a TLS address another program holds stops the console
//! with the proxy's reason.

mod child;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery-staple";

/// A CA (its PEM) and a leaf for `host` signed by it (PEM chain, PEM key).
fn issue(host: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "switchyard test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![host.to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// `dir/certs` with `host`'s certificate and key as the proxy's `--tls-dir`
/// reads them, and the CA that signed it (`ca.pem`, which the proxy
/// ignores).
fn certificates_for(dir: &Path, host: &str) -> std::path::PathBuf {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (ca, chain, key) = issue(host);
    std::fs::write(certs.join(format!("{host}.crt")), chain).unwrap();
    std::fs::write(certs.join(format!("{host}.key")), key).unwrap();
    std::fs::write(certs.join("ca.pem"), ca).unwrap();
    certs
}

/// SIGKILLs the console and what it started (the proxy and the demo's
/// slots outlive it by design) when the test ends, however it ends.
struct Cleanup<'a>(&'a Path, Option<Child>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(c) = &mut self.1 {
            let _ = c.kill();
            let _ = c.wait();
        }
        child::kill_everything_under(self.0);
    }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("console.log")).unwrap_or_default()
}

#[tokio::test]
async fn users_reach_the_demo_over_https_from_the_consoles_own_proxy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    let certs = certificates_for(dir.path(), "shop.test");
    let ca = std::fs::read_to_string(certs.join("ca.pem")).unwrap();
    let [console, app, admin, tls] = child::free_ports();
    let tls_addr: std::net::SocketAddr = ([127, 0, 0, 1], tls).into();
    let mut stop = Cleanup(dir.path(), None);
    stop.1 = Some(
        child::serve(
            dir.path(),
            &format!("127.0.0.1:{console}"),
            &format!("127.0.0.1:{app}"),
            &format!("127.0.0.1:{admin}"),
            PASSWORD,
        )
        .args(["--proxy-preview", "off", "--health-deadline-secs", "20"])
        .args([
            "--proxy-tls-listen",
            &tls_addr.to_string(),
            "--proxy-tls-dir",
        ])
        .arg(&certs)
        .spawn()
        .unwrap(),
    );

    let https = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve("shop.test", tls_addr)
        .build()
        .unwrap();
    let url = format!("https://shop.test:{tls}/");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Ok(r) = https.get(&url).send().await {
            if r.status().is_success() {
                break r.text().await.unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer over HTTPS: {}",
            log_of(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body, "switchyard-demo v1\n");
    // The same users' routes over plain HTTP.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = plain
        .get(format!("http://127.0.0.1:{app}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "switchyard-demo v1\n");
    // A client that does not trust the test CA is refused: it is TLS.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .resolve("shop.test", tls_addr)
        .build()
        .unwrap();
    assert!(untrusting.get(&url).send().await.is_err());

    // Whoever starts the proxy again (the CLI reads the data directory)
    // gives it the same flags.
    let recorded = std::fs::read_to_string(dir.path().join("proxy-args.txt")).unwrap();
    let recorded: Vec<&str> = recorded.lines().collect();
    assert_eq!(
        recorded,
        [
            "--tls-listen",
            &tls_addr.to_string(),
            "--tls-dir",
            &certs.display().to_string()
        ]
    );
}

#[tokio::test]
async fn a_tls_address_in_use_stops_the_console_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    let certs = certificates_for(dir.path(), "shop.test");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap();
    let [console, app, admin] = child::free_ports();
    let mut stop = Cleanup(dir.path(), None);
    let mut c = child::serve(
        dir.path(),
        &format!("127.0.0.1:{console}"),
        &format!("127.0.0.1:{app}"),
        &format!("127.0.0.1:{admin}"),
        PASSWORD,
    )
    .args(["--proxy-preview", "off", "--no-demo"])
    .args(["--proxy-tls-listen", &in_use.to_string(), "--proxy-tls-dir"])
    .arg(&certs)
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = c.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {}",
            log_of(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.1 = Some(c);
    assert!(!status.success());
    let log = log_of(dir.path());
    assert!(log.contains("switchyard-proxy exited"), "{log}");
    assert!(log.contains(&in_use.to_string()), "{log}");
    // Nothing listens for users: the console did not leave a proxy behind.
    assert!(std::net::TcpStream::connect(("127.0.0.1", app)).is_err());
}
