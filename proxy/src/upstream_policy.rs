//! Which upstream addresses the admin API may route users to.
//!
//! Whoever holds the admin token can point user traffic anywhere the proxy
//! can connect: at a cloud metadata service, at an internal network, or back
//! at the proxy itself (a forwarding loop). So an upstream must be an IP
//! literal with a port, on loopback or inside a network the operator allowed
//! at start (`--allow-upstream`), and a few classes are refused whatever the
//! allow-list says.
//!
//! Host names are refused because the check and the connect must agree on the
//! address: a name can resolve to one address when checked and another when
//! connected to. For the same reason the address must be written the one way
//! Rust prints it, so nothing downstream can read it differently.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A network of allowed upstreams, e.g. `172.17.0.0/16` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a network: {why} (expected e.g. 172.17.0.0/16 or fd00::/8)")]
pub struct BadNetwork {
    input: String,
    why: String,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, canonical_ip(ip)) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(base)
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(base)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Network {
    type Err = BadNetwork;

    fn from_str(input: &str) -> Result<Self, BadNetwork> {
        let bad = |why: String| BadNetwork {
            input: input.to_string(),
            why,
        };
        let (base, prefix) = input
            .split_once('/')
            .ok_or_else(|| bad("the /prefix length is missing".into()))?;
        let base: IpAddr = base
            .parse()
            .map_err(|_| bad(format!("{base:?} is not an IP address")))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            bad(format!(
                "the prefix length must be a number from 0 to {max}"
            ))
        })?;
        // A base with host bits set usually means a typo in the prefix; taking
        // it silently could allow a far larger network than intended.
        let masked = match base {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask_v4(prefix))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & mask_v6(prefix))),
        };
        if masked != base {
            return Err(bad(format!(
                "host bits are set after /{prefix} (did you mean {masked}/{prefix}?)"
            )));
        }
        Ok(Network { base, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Why an upstream address is refused; the text completes
/// `active upstream "…": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("host names are not allowed, only IP addresses (ip:port, IPv6 as [::1]:port)")]
    HostName,
    #[error("expected ip:port (IPv6 as [::1]:port)")]
    NotIpPort,
    #[error("write it as {canonical:?}")]
    NotCanonical { canonical: String },
    #[error("IPv6 zone ids are not allowed")]
    ZoneId,
    #[error("port 0 is never allowed")]
    PortZero,
    #[error("unspecified addresses (0.0.0.0, ::) are never allowed")]
    Unspecified,
    #[error("link-local/metadata addresses are never allowed")]
    LinkLocal,
    #[error("multicast/broadcast addresses are never allowed")]
    Multicast,
    #[error("that is this proxy's own {listener} listener ({bound})")]
    OwnListener {
        listener: &'static str,
        bound: SocketAddr,
    },
    #[error("not on loopback and not inside any --allow-upstream network ({allowed})")]
    NotAllowed { allowed: String },
}

/// The rules an upstream address is checked against, fixed at start.
#[derive(Clone, Debug, Default)]
pub struct UpstreamPolicy {
    allowed: Vec<Network>,
    /// (name, bound address) of each listener of this proxy.
    own: Vec<(&'static str, SocketAddr)>,
}

impl UpstreamPolicy {
    /// Loopback only, and no listeners of its own to avoid: what a proxy
    /// without `--allow-upstream` allows, minus the loop check, which needs
    /// the bound listeners ([`UpstreamPolicy::with_own_listener`]).
    pub fn loopback_only() -> Self {
        UpstreamPolicy::default()
    }

    pub fn new(allowed: Vec<Network>) -> Self {
        UpstreamPolicy {
            allowed,
            own: Vec::new(),
        }
    }

    /// Refuse upstreams that would reach this listener: the proxy forwarding
    /// to itself loops until it runs out of connections, and forwarding to
    /// its admin listener puts the admin API on the public side.
    pub fn with_own_listener(mut self, name: &'static str, bound: SocketAddr) -> Self {
        self.own.push((name, bound));
        self
    }

    pub fn allowed(&self) -> &[Network] {
        &self.allowed
    }

    /// The address to connect to, or why `address` must not be an upstream.
    pub fn check(&self, address: &str) -> Result<SocketAddr, Refusal> {
        let addr = parse_ip_port(address)?;
        if addr.port() == 0 {
            return Err(Refusal::PortZero);
        }
        let ip = canonical_ip(addr.ip());
        never_allowed(ip)?;
        if let Some((listener, bound)) = self.own_listener_at(ip, addr.port()) {
            return Err(Refusal::OwnListener { listener, bound });
        }
        if ip.is_loopback() || self.allowed.iter().any(|n| n.contains(ip)) {
            return Ok(addr);
        }
        Err(Refusal::NotAllowed {
            allowed: if self.allowed.is_empty() {
                "none given".to_string()
            } else {
                let list: Vec<String> = self.allowed.iter().map(Network::to_string).collect();
                format!("allowed: {}", list.join(", "))
            },
        })
    }

    fn own_listener_at(&self, ip: IpAddr, port: u16) -> Option<(&'static str, SocketAddr)> {
        self.own.iter().copied().find(|(_, bound)| {
            if bound.port() != port {
                return false;
            }
            let bound_ip = canonical_ip(bound.ip());
            if bound_ip == ip {
                return true;
            }
            // A listener on loopback or on every address answers on loopback
            // (127.0.0.1 and [::1] are treated alike: a dual-stack listener
            // takes both).
            if ip.is_loopback() && (bound_ip.is_loopback() || bound_ip.is_unspecified()) {
                return true;
            }
            // On every address, it also answers on each of this host's own
            // addresses, which an allowed network may include.
            bound_ip.is_unspecified() && is_this_hosts_address(ip)
        })
    }
}

/// Only `ip:port` / `[ipv6]:port`, in the form Rust prints it.
fn parse_ip_port(address: &str) -> Result<SocketAddr, Refusal> {
    let Ok(addr) = address.parse::<SocketAddr>() else {
        return Err(if looks_like_host_name(address) {
            Refusal::HostName
        } else {
            Refusal::NotIpPort
        });
    };
    if let SocketAddr::V6(v6) = addr {
        if v6.scope_id() != 0 {
            return Err(Refusal::ZoneId);
        }
    }
    let canonical = addr.to_string();
    if canonical != address {
        return Err(Refusal::NotCanonical { canonical });
    }
    Ok(addr)
}

fn looks_like_host_name(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.starts_with(|c: char| c.is_ascii_alphabetic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// IPv4-mapped IPv6 (`::ffff:169.254.169.254`) connects to the IPv4 address,
/// so it is judged as that address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn never_allowed(ip: IpAddr) -> Result<(), Refusal> {
    if ip.is_unspecified() {
        return Err(Refusal::Unspecified);
    }
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                return Err(Refusal::LinkLocal);
            }
            if v4.is_multicast() || v4.is_broadcast() {
                return Err(Refusal::Multicast);
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unicast_link_local() {
                return Err(Refusal::LinkLocal);
            }
            if v6.is_multicast() {
                return Err(Refusal::Multicast);
            }
        }
    }
    Ok(())
}

/// Binding port 0 on an address succeeds only where the address is one of
/// this host's; nothing is sent, and the socket is closed at once.
fn is_this_hosts_address(ip: IpAddr) -> bool {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn refusal(policy: &UpstreamPolicy, address: &str) -> Refusal {
        policy.check(address).expect_err(address)
    }

    #[test]
    fn loopback_is_allowed_without_an_allow_list() {
        let p = UpstreamPolicy::loopback_only();
        for ok in ["127.0.0.1:8080", "127.1.2.3:1", "[::1]:65535"] {
            assert_eq!(p.check(ok).unwrap().to_string(), ok);
        }
    }

    #[test]
    fn outside_loopback_needs_an_allowed_network() {
        let p = UpstreamPolicy::loopback_only();
        for address in ["172.17.0.2:80", "10.0.0.1:80", "8.8.8.8:53", "[fd00::1]:80"] {
            assert_eq!(
                refusal(&p, address),
                Refusal::NotAllowed {
                    allowed: "none given".into()
                },
                "{address}"
            );
        }
        let p = UpstreamPolicy::new(vec![net("172.17.0.0/16"), net("fd00::/8")]);
        assert!(p.check("172.17.0.2:80").is_ok());
        assert!(p.check("172.17.255.255:80").is_ok());
        assert!(p.check("[fd12::1]:80").is_ok());
        assert!(p.check("[::ffff:172.17.0.9]:80").is_ok());
        let outside = refusal(&p, "172.18.0.1:80");
        assert_eq!(
            outside.to_string(),
            "not on loopback and not inside any --allow-upstream network (allowed: 172.17.0.0/16, fd00::/8)"
        );
        assert!(matches!(
            refusal(&p, "10.0.0.1:80"),
            Refusal::NotAllowed { .. }
        ));
    }

    #[test]
    fn never_allowed_classes_are_refused_even_when_allow_listed() {
        let everything = UpstreamPolicy::new(vec![net("0.0.0.0/0"), net("::/0")]);
        for (address, expected) in [
            ("0.0.0.0:80", Refusal::Unspecified),
            ("[::]:80", Refusal::Unspecified),
            ("169.254.169.254:80", Refusal::LinkLocal),
            ("169.254.0.1:8080", Refusal::LinkLocal),
            ("[fe80::1]:80", Refusal::LinkLocal),
            ("[febf::1]:80", Refusal::LinkLocal),
            ("[::ffff:169.254.169.254]:80", Refusal::LinkLocal),
            ("224.0.0.1:80", Refusal::Multicast),
            ("239.255.255.250:1900", Refusal::Multicast),
            ("255.255.255.255:80", Refusal::Multicast),
            ("[ff02::1]:80", Refusal::Multicast),
            ("127.0.0.1:0", Refusal::PortZero),
            ("172.17.0.2:0", Refusal::PortZero),
        ] {
            assert_eq!(refusal(&everything, address), expected, "{address}");
        }
        assert!(everything.check("172.17.0.2:80").is_ok());
        assert_eq!(
            Refusal::LinkLocal.to_string(),
            "link-local/metadata addresses are never allowed"
        );
    }

    #[test]
    fn only_canonical_ip_and_port_literals() {
        let p = UpstreamPolicy::loopback_only();
        for name in ["localhost:8080", "metadata.google.internal:80", "app:80"] {
            assert_eq!(refusal(&p, name), Refusal::HostName, "{name}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":80",
            "::1:80",
            "http://127.0.0.1:80",
            "user@127.0.0.1:80",
            "127.0.0.1:80/x",
            " 127.0.0.1:80",
            "127.0.0.1:65536",
            "0x7f.0.0.1:80",
            "0177.0.0.1:80",
            "127.1:80",
            "2130706433:80",
        ] {
            assert!(
                matches!(refusal(&p, bad), Refusal::NotIpPort | Refusal::HostName),
                "{bad:?}"
            );
        }
        assert_eq!(
            refusal(&p, "127.0.0.1:080"),
            Refusal::NotCanonical {
                canonical: "127.0.0.1:80".into()
            }
        );
        assert!(matches!(
            refusal(&p, "[0:0:0:0:0:0:0:1]:80"),
            Refusal::NotCanonical { .. }
        ));
        assert_eq!(refusal(&p, "[::1%1]:80"), Refusal::ZoneId);
    }

    #[test]
    fn the_proxys_own_listeners_are_refused() {
        let allowed = vec![net("172.17.0.0/16")];
        let p = UpstreamPolicy::new(allowed.clone())
            .with_own_listener("public", "127.0.0.1:8080".parse().unwrap())
            .with_own_listener("admin", "127.0.0.1:8081".parse().unwrap())
            .with_own_listener("preview", "172.17.0.1:8082".parse().unwrap());
        assert_eq!(
            refusal(&p, "127.0.0.1:8081"),
            Refusal::OwnListener {
                listener: "admin",
                bound: "127.0.0.1:8081".parse().unwrap()
            }
        );
        assert_eq!(
            refusal(&p, "127.0.0.1:8081").to_string(),
            "that is this proxy's own admin listener (127.0.0.1:8081)"
        );
        // Same port, other loopback spellings.
        for address in ["127.0.0.2:8080", "[::1]:8080", "[::ffff:127.0.0.1]:8080"] {
            assert!(
                matches!(
                    refusal(&p, address),
                    Refusal::OwnListener {
                        listener: "public",
                        ..
                    }
                ),
                "{address}"
            );
        }
        assert!(matches!(
            refusal(&p, "172.17.0.1:8082"),
            Refusal::OwnListener {
                listener: "preview",
                ..
            }
        ));
        // Other ports, and the same port on another host, are not the proxy.
        assert!(p.check("127.0.0.1:8083").is_ok());
        assert!(p.check("172.17.0.2:8082").is_ok());
        assert!(p.check("172.17.0.2:8080").is_ok());

        // Listening on every address: every loopback address on that port.
        let p = UpstreamPolicy::new(allowed)
            .with_own_listener("public", "0.0.0.0:8080".parse().unwrap())
            .with_own_listener("admin", "[::]:8081".parse().unwrap());
        for address in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "127.0.0.1:8081",
            "[::1]:8081",
        ] {
            assert!(
                matches!(refusal(&p, address), Refusal::OwnListener { .. }),
                "{address}"
            );
        }
        assert!(p.check("127.0.0.1:9000").is_ok());
    }

    #[test]
    fn networks_parse_strictly_and_match_by_prefix() {
        assert_eq!(net("172.17.0.0/16").to_string(), "172.17.0.0/16");
        assert_eq!(net("10.1.2.3/32").to_string(), "10.1.2.3/32");
        assert_eq!(net("fd00::/8").to_string(), "fd00::/8");
        assert!(net("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
        assert!(net("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(!net("::/0").contains("203.0.113.1".parse().unwrap()));
        let n = net("192.168.8.0/22");
        assert!(n.contains("192.168.11.255".parse().unwrap()));
        assert!(!n.contains("192.168.12.0".parse().unwrap()));
        assert!(!n.contains("192.168.7.255".parse().unwrap()));

        for (input, why) in [
            ("172.17.0.0", "the /prefix length is missing"),
            (
                "172.17.0.0/",
                "the prefix length must be a number from 0 to 32",
            ),
            (
                "172.17.0.0/33",
                "the prefix length must be a number from 0 to 32",
            ),
            (
                "fd00::/129",
                "the prefix length must be a number from 0 to 128",
            ),
            (
                "172.17.0.0/-1",
                "the prefix length must be a number from 0 to 32",
            ),
            ("docker0/16", "\"docker0\" is not an IP address"),
            (
                "172.17.0.1/16",
                "host bits are set after /16 (did you mean 172.17.0.0/16?)",
            ),
            (
                "fd00::1/8",
                "host bits are set after /8 (did you mean fd00::/8?)",
            ),
        ] {
            let err = input.parse::<Network>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{input:?} is not a network: {why} (expected e.g. 172.17.0.0/16 or fd00::/8)"
                )
            );
        }
    }
}
