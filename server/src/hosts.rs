//! The host names the console answers to. A browser tricked into resolving an
//! attacker's name to 127.0.0.1 (DNS rebinding) sends that name as `Host`;
//! refusing every name the operator did not configure keeps such pages from
//! talking to a console on loopback.

use std::collections::BTreeSet;
use std::net::SocketAddr;

#[derive(Clone, Debug)]
pub struct AllowedHosts(BTreeSet<String>);

impl AllowedHosts {
    /// What a console listening on `listen` answers to when no public origin
    /// is configured: that address, and `localhost` / loopback on its port.
    pub fn for_listen(listen: SocketAddr) -> Self {
        let port = listen.port();
        let mut hosts = BTreeSet::new();
        if !listen.ip().is_unspecified() {
            hosts.insert(host_key(&listen.to_string()));
        }
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.insert(format!("{local}:{port}"));
        }
        AllowedHosts(hosts)
    }

    /// Adds a public origin (`https://console.example.com`, with or without a
    /// port): requests name it in `Host` with the port only when it is not
    /// the scheme's default, so both spellings are accepted.
    pub fn with_origin(mut self, origin: &str) -> Result<Self, String> {
        let (scheme, rest) = origin
            .split_once("://")
            .ok_or_else(|| format!("public origin {origin:?}: expected http(s)://host[:port]"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => 443,
            "http" => 80,
            _ => {
                return Err(format!(
                    "public origin {origin:?}: scheme must be http or https"
                ))
            }
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!(
                "public origin {origin:?}: expected http(s)://host[:port] without a path"
            ));
        }
        let authority = host_key(authority);
        match split_port(&authority) {
            Some((host, port)) if port == default_port => {
                self.0.insert(host.to_string());
            }
            Some(_) => {}
            None => {
                self.0.insert(format!("{authority}:{default_port}"));
            }
        }
        self.0.insert(authority);
        Ok(self)
    }

    pub fn allows(&self, host_header: &str) -> bool {
        self.0.contains(&host_key(host_header))
    }
}

fn host_key(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host:port` → (host, port); `[v6]:port` too; a bare name → None.
fn split_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    if host.starts_with('[') && !host.ends_with(']') {
        return None; // a bare IPv6 literal
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_console_answers_to_its_own_names_only() {
        let h = AllowedHosts::for_listen("127.0.0.1:3000".parse().unwrap());
        for ok in [
            "127.0.0.1:3000",
            "localhost:3000",
            "LOCALHOST:3000",
            "[::1]:3000",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3000",
            "127.0.0.1:3001",
            "localhost",
            "",
            "127.0.0.1",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn public_origins_accept_both_spellings_of_the_default_port() {
        let h = AllowedHosts::for_listen("0.0.0.0:3000".parse().unwrap())
            .with_origin("https://Console.Example.com")
            .unwrap()
            .with_origin("http://ops.example.com:8443/")
            .unwrap();
        for ok in [
            "console.example.com",
            "console.example.com:443",
            "ops.example.com:8443",
            "localhost:3000",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        assert!(!h.allows("0.0.0.0:3000"));
        assert!(!h.allows("ops.example.com"));
        for bad in [
            "console.example.com",
            "ftp://x",
            "https://a/b",
            "https://u@h",
        ] {
            assert!(AllowedHosts::for_listen("127.0.0.1:1".parse().unwrap())
                .with_origin(bad)
                .is_err());
        }
    }
}
