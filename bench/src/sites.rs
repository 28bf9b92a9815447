//! `bench proxy`'s second and third throughput tables: the same three
//! proxies (switchyard-proxy, nginx, HAProxy) with **10 environments on one
//! proxy** (chosen by the Host header) and with **TLS on** (HTTPS from wrk to
//! the proxy, plain HTTP to the demo service). Each contender is started
//! fresh for its table, so its memory at rest is that configuration's; an
//! earlier switchyard-proxy build (`--baseline-proxy`) joins both tables.

use crate::haproxy;
use crate::nginx::{self, NginxGroup};
use crate::rig::{
    free_port, http_client, spawn_proxy, spawn_proxy_args, spawn_proxy_bin, start_demo,
    wait_until_answers, which, Owned, Proxy, TOKEN,
};
use crate::throughput::{compare, Contender, Settings};
use anyhow::{bail, Context};
use engine::router::{BuiltinRouter, TrafficRouter};
use model::{RoutingTable, SlotColor, Upstream};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many environments share one proxy in the second table.
const ENVIRONMENTS: usize = 10;

/// The host users of environment `n` (1-based) reach it by.
fn env_host(n: usize) -> String {
    format!("env{n}.bench.test")
}

/// wrk's script spreading requests round-robin over the environments'
/// hosts. The requests are formatted once per thread in `init`, so the
/// per-request Lua work is a table lookup (the same for every contender).
/// Consecutive requests on one kept-alive connection name different hosts,
/// as from a CDN or load balancer pooling connections in front: a proxy
/// that keeps upstream connections for one address per client connection
/// pays a reconnect at each change here.
fn spread_script() -> String {
    let hosts: Vec<String> = (1..=ENVIRONMENTS)
        .map(|n| format!("\"{}\"", env_host(n)))
        .collect();
    format!(
        "-- switchyard-bench: one request per environment in turn.\n\
         local hosts = {{ {} }}\n\
         local requests = {{}}\n\
         local i = 0\n\
         function init(args)\n  \
           for n, host in ipairs(hosts) do\n    \
             requests[n] = wrk.format(\"GET\", \"/\", {{ Host = host }})\n  \
           end\n\
         end\n\
         function request()\n  \
           i = i % #requests + 1\n  \
           return requests[i]\n\
         end\n",
        hosts.join(", ")
    )
}

/// The 10-environment table: 10 demo services, one per environment, each
/// reached through one proxy by its own host name.
pub async fn ten_environments(
    root: &Path,
    bin_dir: &Path,
    baseline: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let root = root.join("ten-environments");
    std::fs::create_dir_all(&root)?;
    let mut demos: Vec<Owned> = Vec::new();
    let mut upstreams: Vec<String> = Vec::new();
    for n in 1..=ENVIRONMENTS {
        let (demo, addr) = start_demo(bin_dir, &format!("bench-env{n}")).await?;
        demos.push(demo);
        upstreams.push(addr);
    }
    let script = root.join("spread-hosts.lua");
    std::fs::write(&script, spread_script())?;
    let wrk_args = vec!["-s".to_string(), script.display().to_string()];

    let proxy_dir = root.join("switchyard-proxy");
    std::fs::create_dir_all(&proxy_dir)?;
    let proxy = spawn_proxy(bin_dir, &proxy_dir)?;
    put_routes(&proxy, &upstreams).await?;
    every_host_answers(&proxy.public).await?;
    let mut contenders = vec![Contender {
        name: "switchyard-proxy, 10 named routes".into(),
        url: format!("http://{}/", proxy.public),
        pid: Some(proxy.child.id()),
        wrk_args: wrk_args.clone(),
    }];
    let baseline = match baseline {
        Some(bin) => {
            let dir = root.join("baseline");
            std::fs::create_dir_all(&dir)?;
            let p = spawn_proxy_bin(bin, &dir, false)?;
            put_routes(&p, &upstreams).await?;
            every_host_answers(&p.public).await?;
            contenders.push(Contender {
                name: "--baseline-proxy, 10 named routes".into(),
                url: format!("http://{}/", p.public),
                pid: Some(p.child.id()),
                wrk_args: wrk_args.clone(),
            });
            Some(p)
        }
        None => None,
    };

    let nginx = start_nginx_hosts(&root.join("nginx"), &upstreams)?;
    match &nginx {
        Some((group, addr)) => {
            every_host_answers(addr).await?;
            contenders.push(Contender {
                name: "nginx, 10 server blocks".into(),
                url: format!("http://{addr}/"),
                pid: Some(group.0.id()),
                wrk_args: wrk_args.clone(),
            });
        }
        None => println!("nginx: not installed, its 10-environment row is skipped"),
    }
    let haproxy = start_haproxy_hosts(&root.join("haproxy"), &upstreams)?;
    match &haproxy {
        Some((group, addr)) => {
            every_host_answers(addr).await?;
            contenders.push(Contender {
                name: "HAProxy, 10 use_backend by host".into(),
                url: format!("http://{addr}/"),
                pid: Some(group.0.id()),
                wrk_args: wrk_args.clone(),
            });
        }
        None => println!("haproxy: not installed, its 10-environment row is skipped"),
    }
    compare(
        "10 environments on one proxy (wrk -s: Host env1..env10 in turn)",
        &contenders,
        settings,
    )
    .await?;
    drop((proxy, baseline, nginx, haproxy, demos));
    Ok(())
}

/// One named route per environment through the admin API — what the
/// console does when an environment is created.
async fn put_routes(proxy: &Proxy, upstreams: &[String]) -> anyhow::Result<()> {
    let http = http_client()?;
    for (i, address) in upstreams.iter().enumerate() {
        let n = i + 1;
        let body = serde_json::json!({
            "hosts": [env_host(n)],
            "table": {"generation": 1, "active": {"slot": "blue", "address": address}},
        });
        let r = http
            .put(format!("http://{}/admin/routes/env{n}", proxy.admin))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("creating route env{n}"))?;
        if !r.status().is_success() {
            let status = r.status();
            bail!(
                "route env{n}: {status} {}",
                r.text().await.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Waits until each host reaches its own environment's demo service (not
/// just any): a proxy that routed every host to one upstream, or answered
/// unknown hosts from a default, would otherwise pass unnoticed.
async fn every_host_answers(addr: &str) -> anyhow::Result<()> {
    let http = http_client()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in 1..=ENVIRONMENTS {
        let expected = format!("switchyard-demo bench-env{n}");
        loop {
            let body = match http
                .get(format!("http://{addr}/"))
                .header(reqwest::header::HOST, env_host(n))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                _ => String::new(),
            };
            if body.trim_end() == expected {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{addr} with Host {} did not answer {expected:?}",
                    env_host(n)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let unknown = http
        .get(format!("http://{addr}/"))
        .header(reqwest::header::HOST, "nobody.bench.test")
        .send()
        .await?;
    if unknown.status().is_success() {
        bail!("{addr} served a host no environment has");
    }
    Ok(())
}

/// nginx with one `server` block and one kept-alive upstream per
/// environment; a default server answers unknown hosts 404 (nginx would
/// otherwise give them the first environment).
fn start_nginx_hosts(
    dir: &Path,
    upstreams: &[String],
) -> anyhow::Result<Option<(NginxGroup, String)>> {
    let port = free_port()?;
    let mut http = format!("  server {{ listen 127.0.0.1:{port} default_server; return 404; }}\n");
    for (i, address) in upstreams.iter().enumerate() {
        let n = i + 1;
        http.push_str(&format!(
            "  {}\n  server {{\n    listen 127.0.0.1:{port};\n    server_name {};\n    {}\n  }}\n",
            nginx::upstream(&format!("app{n}"), address),
            env_host(n),
            nginx::proxy_pass(&format!("app{n}"))
        ));
    }
    Ok(nginx::start_private(dir, &http)?.map(|g| (g, format!("127.0.0.1:{port}"))))
}

/// HAProxy with one `acl` + `use_backend` by Host and one backend per
/// environment; unknown hosts get its 503 (no default backend).
fn start_haproxy_hosts(
    dir: &Path,
    upstreams: &[String],
) -> anyhow::Result<Option<(NginxGroup, String)>> {
    let port = free_port()?;
    let mut frontend = format!(
        "frontend users\n  bind 127.0.0.1:{port}\n{}",
        haproxy::FORWARDED_RULES
    );
    let mut backends = String::new();
    for (i, address) in upstreams.iter().enumerate() {
        let n = i + 1;
        frontend.push_str(&format!(
            "  acl env{n} hdr(host) -i {}\n  use_backend app{n} if env{n}\n",
            env_host(n)
        ));
        backends.push_str(&format!("backend app{n}\n  server s{n} {address}\n"));
    }
    let group = haproxy::start_private(dir, &format!("{frontend}{backends}"))?;
    Ok(group.map(|g| (g, format!("127.0.0.1:{port}"))))
}

/// The host name of the benchmark's self-signed certificate.
const TLS_HOST: &str = "bench.test";

/// The TLS table: one environment, HTTPS from wrk to each proxy with the
/// same self-signed ECDSA P-256 certificate, plain HTTP to `upstream`.
pub async fn tls_on(
    root: &Path,
    bin_dir: &Path,
    baseline: Option<&Path>,
    upstream: &str,
    settings: &Settings,
) -> anyhow::Result<()> {
    if !which("openssl") {
        println!("openssl: not installed (apt-get install openssl); the TLS table is skipped");
        return Ok(());
    }
    let root = root.join("tls");
    let certs = root.join("certs");
    std::fs::create_dir_all(&certs)?;
    let (crt, key) = self_signed(&certs)?;
    // HAProxy wants the chain and key in one file; kept out of the proxy's
    // --tls-dir, which holds only <host>.crt + <host>.key.
    let pem = root.join(format!("{TLS_HOST}.pem"));
    std::fs::write(&pem, [std::fs::read(&crt)?, std::fs::read(&key)?].concat())?;

    let (proxy, tls) = start_proxy_tls(
        &bin_dir.join("switchyard-proxy"),
        &root.join("switchyard-proxy"),
        &certs,
        upstream,
    )
    .await?;
    let mut contenders = vec![Contender {
        name: "switchyard-proxy, rustls".into(),
        url: format!("https://{tls}/"),
        pid: Some(proxy.child.id()),
        wrk_args: Vec::new(),
    }];
    let baseline = match baseline {
        Some(bin) => {
            let (p, tls) = start_proxy_tls(bin, &root.join("baseline"), &certs, upstream).await?;
            contenders.push(Contender {
                name: "--baseline-proxy, rustls".into(),
                url: format!("https://{tls}/"),
                pid: Some(p.child.id()),
                wrk_args: Vec::new(),
            });
            Some(p)
        }
        None => None,
    };

    let nginx = start_nginx_tls(&root.join("nginx"), upstream, &crt, &key)?;
    match &nginx {
        Some((group, addr)) => contenders.push(Contender {
            name: "nginx, listen ssl".into(),
            url: format!("https://{addr}/"),
            pid: Some(group.0.id()),
            wrk_args: Vec::new(),
        }),
        None => println!("nginx: not installed, its TLS row is skipped"),
    }
    let haproxy = start_haproxy_tls(&root.join("haproxy"), upstream, &pem)?;
    match &haproxy {
        Some((group, addr)) => contenders.push(Contender {
            name: "HAProxy, bind ssl".into(),
            url: format!("https://{addr}/"),
            pid: Some(group.0.id()),
            wrk_args: Vec::new(),
        }),
        None => println!("haproxy: not installed, its TLS row is skipped"),
    }
    for c in &contenders {
        let addr = c.url.trim_start_matches("https://").trim_end_matches('/');
        let session = https_answers(addr).await?;
        println!("  TLS {:<32} {session}", c.name);
    }
    compare(
        "TLS on (HTTPS to the proxy, HTTP to the demo; no SNI, kept alive)",
        &contenders,
        settings,
    )
    .await?;
    drop((proxy, baseline, nginx, haproxy));
    Ok(())
}

/// The switchyard-proxy at `bin` in `dir` with a TLS listener serving the
/// benchmark's certificate from `certs`, users on `upstream`; with the
/// address of its TLS listener.
async fn start_proxy_tls(
    bin: &Path,
    dir: &Path,
    certs: &Path,
    upstream: &str,
) -> anyhow::Result<(Proxy, String)> {
    std::fs::create_dir_all(dir)?;
    // wrk sends no SNI to an IP address: the one certificate is the default.
    let proxy = spawn_proxy_args(
        bin,
        dir,
        false,
        &[
            OsStr::new("--tls-listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--tls-dir"),
            certs.as_os_str(),
            OsStr::new("--tls-default"),
            OsStr::new(TLS_HOST),
        ],
    )?;
    let Some(tls) = proxy.tls.clone() else {
        bail!("switchyard-proxy's ready file has no TLS address");
    };
    let router = BuiltinRouter::new(&format!("http://{}", proxy.admin), TOKEN.to_string());
    let generation = router.current().await?.generation + 1;
    router
        .apply(&RoutingTable {
            generation,
            active: Some(Upstream {
                slot: SlotColor::Blue,
                address: upstream.to_string(),
            }),
            ..RoutingTable::default()
        })
        .await?;
    wait_until_answers(&http_client()?, &format!("http://{}/", proxy.public)).await?;
    Ok((proxy, tls))
}

/// `dir/bench.test.crt` + `dir/bench.test.key`: a self-signed ECDSA P-256
/// certificate for [`TLS_HOST`], valid two days.
fn self_signed(dir: &Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let crt = dir.join(format!("{TLS_HOST}.crt"));
    let key = dir.join(format!("{TLS_HOST}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN={TLS_HOST}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{TLS_HOST}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdin(Stdio::null())
        .output()
        .context("running openssl req")?;
    if !out.status.success() {
        bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((crt, key))
}

/// Waits until `addr` answers a request over TLS (as wrk will: no SNI) with
/// the demo's page; returns the protocol and cipher suite it negotiated,
/// so the table's reader can see every contender used the same.
async fn https_answers(addr: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut child = tokio::process::Command::new("openssl")
            .args(["s_client", "-brief", "-ign_eof", "-connect", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("running openssl s_client")?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
                .await?;
        }
        let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output()).await;
        if let Ok(Ok(out)) = out {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stdout.contains("switchyard-demo ") {
                let field = |prefix: &str| {
                    stderr
                        .lines()
                        .find_map(|l| l.strip_prefix(prefix))
                        .map(str::trim)
                        .unwrap_or("?")
                        .to_string()
                };
                return Ok(format!(
                    "{} {}",
                    field("Protocol version:"),
                    field("Ciphersuite:")
                ));
            }
        }
        if Instant::now() > deadline {
            bail!("https://{addr}/ did not answer within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// nginx terminating TLS 1.3 with the benchmark's certificate, kept-alive
/// HTTP/1.1 to `upstream` (the plain contender's settings otherwise).
fn start_nginx_tls(
    dir: &Path,
    upstream: &str,
    crt: &Path,
    key: &Path,
) -> anyhow::Result<Option<(NginxGroup, String)>> {
    let port = free_port()?;
    let http = format!(
        "  {}\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    \
         ssl_certificate_key {};\n    ssl_protocols TLSv1.3;\n    {}\n  }}\n",
        nginx::upstream("app", upstream),
        crt.display(),
        key.display(),
        nginx::proxy_pass("app")
    );
    Ok(nginx::start_private(dir, &http)?.map(|g| (g, format!("127.0.0.1:{port}"))))
}

/// HAProxy terminating TLS 1.3 with the benchmark's certificate and key
/// (`pem`), the plain contender's settings otherwise.
fn start_haproxy_tls(
    dir: &Path,
    upstream: &str,
    pem: &Path,
) -> anyhow::Result<Option<(NginxGroup, String)>> {
    let port = free_port()?;
    let proxies = format!(
        "frontend users\n  bind 127.0.0.1:{port} ssl crt {} ssl-min-ver TLSv1.3\n{}  \
         default_backend app\nbackend app\n  server blue {upstream}\n",
        pem.display(),
        haproxy::FORWARDED_RULES
    );
    let group = haproxy::start_private(dir, &proxies)?;
    Ok(group.map(|g| (g, format!("127.0.0.1:{port}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_every_environment_once() {
        let script = spread_script();
        for n in 1..=ENVIRONMENTS {
            assert_eq!(script.matches(&format!("\"{}\"", env_host(n))).count(), 1);
        }
        assert!(script.contains("function request()"));
    }
}
