//! nginx for `switchyard bench proxy`: a private nginx (its own prefix, a
//! loopback port) whose upstream is the include the engine's `NginxRouter`
//! writes — the code a deploy on the nginx router uses — so the benchmark
//! switches it exactly as a deploy would.

use anyhow::{bail, Context};
use engine::router::{NginxRouter, NginxSettings};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/sbin/nginx";
const UPSTREAM: &str = "switchyard_bench";

/// An nginx master started in a process group of its own; stopped when
/// dropped (SIGQUIT: workers finish, then exit; after 5 s the whole group is
/// killed, so no worker outlives the benchmark — killing only the master
/// would leave its workers behind).
pub struct NginxGroup(pub Child);

impl NginxGroup {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<NginxGroup> {
        cmd.process_group(0).spawn().map(NginxGroup)
    }
}

impl Drop for NginxGroup {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = killpg(group, Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// nginx switched by the engine's `NginxRouter`.
pub struct NginxSite {
    nginx: NginxGroup,
    settings: NginxSettings,
    /// Where users reach it: `127.0.0.1:PORT`.
    pub public: String,
}

impl NginxSite {
    /// `None` when nginx is not installed.
    pub async fn start(dir: &Path) -> anyhow::Result<Option<NginxSite>> {
        if !Path::new(BINARY).exists() {
            return Ok(None);
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("temp"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let p = dir.display();
        let conf = dir.join("nginx.conf");
        let include = dir.join("switchyard-upstream.conf");
        // Every path nginx writes is inside the prefix; keep-alive to the
        // upstream as a production config would have.
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 2;\npid {p}/nginx.pid;\n\
                 error_log {p}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/temp/client;\n\
                 proxy_temp_path {p}/temp/proxy;\n  fastcgi_temp_path {p}/temp/fastcgi;\n\
                 uwsgi_temp_path {p}/temp/uwsgi;\n  scgi_temp_path {p}/temp/scgi;\n\
                 include {};\n  server {{\n    listen 127.0.0.1:{port};\n\
                 location / {{ proxy_pass http://{UPSTREAM}; proxy_http_version 1.1; \
                 proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
                include.display()
            ),
        )?;
        let settings = NginxSettings {
            binary: PathBuf::from(BINARY),
            conf: conf.clone(),
            prefix: Some(dir.to_path_buf()),
            include,
            pid_file: dir.join("nginx.pid"),
            upstream: UPSTREAM.into(),
            reload_timeout: Duration::from_secs(10),
        };
        NginxRouter::new(settings.clone())
            .ensure_include()
            .context("writing the nginx upstream include")?;
        let nginx = NginxGroup::spawn(
            Command::new(BINARY)
                .arg("-c")
                .arg(&conf)
                .arg("-p")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .context("starting nginx")?;
        let mut site = NginxSite {
            nginx,
            settings,
            public: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(dir.join("nginx.pid").exists()
            && std::net::TcpStream::connect(&site.public).is_ok())
        {
            if let Ok(Some(status)) = site.nginx.0.try_wait() {
                bail!(
                    "nginx exited ({status}) before it served: {}",
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("nginx not serving on {} after 10 s", site.public);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(site))
    }

    pub fn router(&self) -> NginxRouter {
        NginxRouter::new(self.settings.clone())
    }
}

/// The `upstream` block of a private nginx: kept-alive connections to
/// `address`, as a production config would have.
pub fn upstream(name: &str, address: &str) -> String {
    format!("upstream {name} {{ server {address}; keepalive 64; }}")
}

/// `location /` passing everything to the upstream `name` over kept-alive
/// HTTP/1.1 connections, doing what switchyard-proxy does to every
/// exchange: the client's host, address, scheme and host again as
/// `X-Forwarded-*` to the slot, and the slot's name on the response.
pub fn proxy_pass(name: &str) -> String {
    format!(
        "location / {{ proxy_pass http://{name}; proxy_http_version 1.1; \
         proxy_set_header Connection \"\"; proxy_set_header Host $host; \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; \
         proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $host; \
         add_header X-Switchyard-Slot blue always; }}"
    )
}

/// A private nginx in the foreground: its own prefix `dir` (every path it
/// writes is inside it), one worker per CPU, no access log, `http` inside
/// its `http {}` block. `None` when nginx is not installed.
pub fn start_private(dir: &Path, http: &str) -> anyhow::Result<Option<NginxGroup>> {
    let bin = Path::new(BINARY);
    if !bin.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let d = dir.display();
    let conf = format!(
        "worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp-body;\n  proxy_temp_path {d}/tmp-proxy;\n\
         fastcgi_temp_path {d}/tmp-fcgi;\n  uwsgi_temp_path {d}/tmp-uwsgi;\n  scgi_temp_path {d}/tmp-scgi;\n\
         {http}}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let nginx = NginxGroup::spawn(
        Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("starting nginx")?;
    Ok(Some(nginx))
}
