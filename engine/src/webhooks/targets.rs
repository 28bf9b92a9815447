//! Where a webhook may be sent: `http`/`https` URLs whose host resolves to
//! public addresses only, unless the subscription allows private ones. The
//! check runs when a subscription is made and again before every attempt
//! (DNS may change), and the attempt connects to the addresses checked, so a
//! name cannot resolve to a public address for the check and a private one
//! for the request.

use crate::error::{Error, Result};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest URL accepted.
const MAX_URL: usize = 2000;

/// A URL checked for its form (not yet for where it points).
pub(crate) fn parse(url: &str) -> Result<Url> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::invalid("url", "a webhook needs a URL"));
    }
    if url.len() > MAX_URL {
        return Err(Error::invalid(
            "url",
            format!("a webhook URL has at most {MAX_URL} characters"),
        ));
    }
    let parsed =
        Url::parse(url).map_err(|e| Error::invalid("url", format!("not a URL ({e}): {url}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid(
            "url",
            format!(
                "a webhook URL must be http or https, not {}",
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("url", "a webhook URL needs a host"));
    }
    // Credentials in a URL would be shown in every list of subscriptions;
    // receivers authenticate by the signature instead.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid(
            "url",
            "a webhook URL may not carry a user name or password; receivers check the signature",
        ));
    }
    Ok(parsed)
}

/// `url` as the audit log keeps it: scheme, host and port only. A webhook
/// URL's path is often its credential (a Slack incoming webhook's is), and
/// every signed-in person reads the audit log; admins see the whole URL on
/// the Webhooks page.
pub(crate) fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let rest = if u.path() == "/" && u.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!("{}{rest}", u.origin().ascii_serialization())
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// The addresses `url` resolves to, each allowed for this subscription.
pub(crate) async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid("url", "a webhook URL needs a host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::invalid("url", format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::invalid("url", format!("{host} resolves to nothing")));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(Error::invalid(
                "url",
                format!(
                    "{host} resolves to {}, a loopback, private or link-local address; \
                     an admin must allow private targets for this webhook",
                    bad.ip()
                ),
            ));
        }
    }
    Ok(addrs)
}

/// Whether `ip` is an address on the public internet (not loopback,
/// private, link-local, unique-local, shared, documentation, multicast or
/// unspecified).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, inside someone's network.
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15: benchmarking; 240.0.0.0/4: reserved.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // ::ffff:0:0/96 is handled as IPv4; 64:ff9b::/96 (NAT64) may reach anything.
        || first == 0x0064)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials() {
        assert!(parse("https://hooks.example.com/x").is_ok());
        assert!(parse("http://hooks.example.com:8080/x?y=1").is_ok());
        for bad in [
            "",
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { field: "url", .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_audit_log_keeps_only_the_origin() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T0/B0/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redacted("http://10.0.0.1:8080/"), "http://10.0.0.1:8080/");
        assert_eq!(redacted("http://h.example/?token=x"), "http://h.example/…");
    }

    #[test]
    fn private_and_loopback_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let url = parse("http://127.0.0.1:9/hook").unwrap();
        let e = resolve(&url, false).await.unwrap_err();
        assert!(e.to_string().contains("private"), "{e}");
        assert_eq!(resolve(&url, true).await.unwrap().len(), 1);
        let v6 = parse("http://[::1]:9/hook").unwrap();
        assert!(resolve(&v6, false).await.is_err());
        let name = parse("http://localhost:9/hook").unwrap();
        assert!(resolve(&name, false).await.is_err());
    }
}
