//! HAProxy (Debian's package) as the benchmark's third contender: one
//! frontend on a loopback port, a backend holding both slots, and a switch
//! made the way HAProxy users make one without a reload — through its
//! runtime API on the stats socket, in one command line, either way it
//! offers ([`HaproxySwitch`]): the new slot's server made ready and the old
//! one put in maintenance, or the new one's weight raised and the old one's
//! dropped to 0. Either way the new server takes requests before the old
//! one stops taking them, so there is never a moment without a server (the
//! other order would answer 503 in between), and the old one finishes
//! what it has.

use crate::nginx::NginxGroup;
use anyhow::Context;
use async_trait::async_trait;
use engine::router::{RouterError, TrafficRouter};
use model::{RoutingTable, SlotColor, Upstream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

const BINARY: &str = "/usr/sbin/haproxy";
/// The runtime API's socket, in the HAProxy's directory.
const SOCKET: &str = "haproxy.sock";

/// What switchyard-proxy adds to every exchange, for HAProxy to do the same
/// work (a frontend's lines: anonymous `defaults` take no rules): the
/// client's address, scheme and host to the slot (`option forwardfor` in
/// the shared defaults does the address), and the answering server's name
/// on the response, as the proxy's `x-switchyard-slot`.
pub const FORWARDED_RULES: &str =
    "  http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]\n  \
     http-request set-header X-Forwarded-Host %[req.hdr(host)]\n  \
     http-response set-header X-Switchyard-Slot %[srv_name]\n";
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a switch moves HAProxy's users from one server to the other.
#[derive(Clone, Copy)]
pub enum HaproxySwitch {
    /// `set server app/NEW state ready; set server app/OLD state maint`:
    /// the old server is in maintenance, out of every decision.
    State,
    /// `set weight app/NEW 1; set weight app/OLD 0`: both stay up, the old
    /// one gets no new request.
    Weight,
}

impl HaproxySwitch {
    /// For directory names.
    pub fn name(self) -> &'static str {
        match self {
            HaproxySwitch::State => "state",
            HaproxySwitch::Weight => "weight",
        }
    }

    /// What a switch sends, for the table.
    pub fn command(self) -> &'static str {
        match self {
            HaproxySwitch::State => "state ready, then maint",
            HaproxySwitch::Weight => "weight 1, then 0",
        }
    }

    /// The command line moving users from server `down` to `up`.
    fn line(self, up: &str, down: &str) -> String {
        match self {
            HaproxySwitch::State => {
                format!("set server app/{up} state ready; set server app/{down} state maint")
            }
            HaproxySwitch::Weight => format!("set weight app/{up} 1; set weight app/{down} 0"),
        }
    }
}

/// A running HAProxy whose users are on blue.
pub struct HaproxySite {
    pub group: NginxGroup,
    /// host:port users reach.
    pub public: String,
    socket: PathBuf,
    blue: String,
    green: String,
    switch: HaproxySwitch,
}

impl HaproxySite {
    /// Starts HAProxy in the foreground in `dir` on `port`, switched by
    /// `switch`; `None` when it is not installed.
    pub fn start(
        dir: &Path,
        blue: &str,
        green: &str,
        port: u16,
        switch: HaproxySwitch,
    ) -> anyhow::Result<Option<Self>> {
        // Green takes no request until the first switch.
        let green_idle = match switch {
            HaproxySwitch::State => "disabled",
            HaproxySwitch::Weight => "weight 0",
        };
        let proxies = format!(
            "frontend users\n  bind 127.0.0.1:{port}\n{FORWARDED_RULES}  default_backend app\n\
             backend app\n  server blue {blue} weight 1\n  server green {green} {green_idle}\n"
        );
        let Some(group) = start_private(dir, &proxies)? else {
            return Ok(None);
        };
        let socket = dir.join(SOCKET);
        Ok(Some(HaproxySite {
            group,
            public: format!("127.0.0.1:{port}"),
            socket,
            blue: blue.to_string(),
            green: green.to_string(),
            switch,
        }))
    }

    pub fn router(&self) -> HaproxyRouter {
        HaproxyRouter {
            socket: self.socket.clone(),
            state: Mutex::new(RoutingTable {
                generation: 0,
                active: Some(Upstream {
                    slot: SlotColor::Blue,
                    address: self.blue.clone(),
                }),
                preview: None,
                ..RoutingTable::default()
            }),
            green: self.green.clone(),
            blue: self.blue.clone(),
            switch: self.switch,
        }
    }
}

/// Switches HAProxy's backend between the two servers through the runtime
/// API. The table it reports is the last one it applied (HAProxy has no
/// generations; the benchmark only moves forward).
pub struct HaproxyRouter {
    socket: PathBuf,
    state: Mutex<RoutingTable>,
    blue: String,
    green: String,
    switch: HaproxySwitch,
}

impl HaproxyRouter {
    /// One runtime-API command line; HAProxy answers with an empty line per
    /// command that succeeded, text otherwise.
    async fn command(&self, line: &str) -> Result<(), RouterError> {
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| RouterError::Unreachable(format!("{}: {e}", self.socket.display())))?;
        stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| RouterError::Unreachable(e.to_string()))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .map_err(|e| RouterError::Unreachable(e.to_string()))?;
        match answer.trim() {
            "" => Ok(()),
            other => Err(RouterError::Rejected(other.to_string())),
        }
    }
}

#[async_trait]
impl TrafficRouter for HaproxyRouter {
    async fn current(&self) -> Result<RoutingTable, RouterError> {
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError> {
        let Some(active) = &table.active else {
            return Err(RouterError::Rejected(
                "the benchmark always has an active slot".into(),
            ));
        };
        let expected = match active.slot {
            SlotColor::Blue => &self.blue,
            SlotColor::Green => &self.green,
        };
        if &active.address != expected {
            return Err(RouterError::Rejected(format!(
                "{} is not this backend's {} server",
                active.address, active.slot
            )));
        }
        let (up, down) = match active.slot {
            SlotColor::Blue => ("blue", "green"),
            SlotColor::Green => ("green", "blue"),
        };
        // The new server takes requests before the old one stops taking
        // them: no moment without a server.
        self.command(&self.switch.line(up, down)).await?;
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = table.clone();
        Ok(table.clone())
    }
}

/// A private HAProxy in the foreground with `proxies` (its frontends and
/// backends) after the settings every contender of the benchmark shares:
/// the runtime API on `dir/haproxy.sock`, HTTP mode, kept-alive server
/// connections reused across clients, `X-Forwarded-For` to the servers.
/// `None` when it is not installed.
pub fn start_private(dir: &Path, proxies: &str) -> anyhow::Result<Option<NginxGroup>> {
    let bin = Path::new(BINARY);
    if !bin.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let conf = format!(
        "global\n  maxconn 8192\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  \
         timeout server 30s\n  http-reuse always\n  option forwardfor\n{proxies}",
        dir.join(SOCKET).display()
    );
    std::fs::write(dir.join("haproxy.cfg"), conf)?;
    let group = NginxGroup::spawn(
        Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("starting haproxy")?;
    Ok(Some(group))
}
