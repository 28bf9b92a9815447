//! The host names (and optional path prefix) an environment is served
//! under on a shared switchyard-proxy: its named route there, called after
//! the environment. The shapes mirror switchyard-proxy's own checks
//! (`proxy/src/host_match.rs`, `proxy/src/routes.rs`), so the console
//! refuses, naming the field, what the proxy would refuse with a 400 at the
//! first PUT — before anything is written. The engine does not link the
//! proxy crate (its data plane, axum and rustls stay out of the console).

use crate::error::{Error, Result};

/// An environment's claim on a shared proxy. Empty `hosts`: no route (the
/// proxy's default table serves it, one environment per proxy, as before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteClaim {
    /// Exact (`shop.example.com`) or wildcard (`*.example.com`), lowercase,
    /// no port, each once.
    pub hosts: Vec<String>,
    /// `/api`: only paths on that segment boundary; `None`: every path.
    pub path_prefix: Option<String>,
    /// The proxy's plain listener answers 308 to the same URL over HTTPS.
    pub redirect_https: bool,
}

impl RouteClaim {
    /// Whether the environment is a named route (it names hosts).
    pub fn is_routed(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// The first exact host: what the console sends as `Host` to reach the
    /// route (a wildcard names no one host).
    pub fn first_exact_host(&self) -> Option<&str> {
        self.hosts.iter().map(String::as_str).find(|h| !h.starts_with("*."))
    }

    /// Checks every part, trimming blanks; a redirect without hosts is
    /// refused (there is no route to redirect).
    pub fn check(hosts: &[String], path_prefix: Option<&str>, redirect_https: bool) -> Result<Self> {
        let mut checked: Vec<String> = Vec::with_capacity(hosts.len());
        for (index, host) in hosts
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .enumerate()
        {
            check_host(host).map_err(|why| {
                Error::invalid("hosts", format!("hosts[{index}] {host:?}: {why}"))
            })?;
            if checked.iter().any(|h| h == host) {
                return Err(Error::invalid(
                    "hosts",
                    format!("hosts[{index}] {host:?} is listed twice"),
                ));
            }
            checked.push(host.to_string());
        }
        if checked.len() > 32 {
            return Err(Error::invalid(
                "hosts",
                "an environment is served under at most 32 host names",
            ));
        }
        let path_prefix = path_prefix.map(str::trim).filter(|p| !p.is_empty());
        if let Some(p) = path_prefix {
            check_path_prefix(p).map_err(|why| {
                Error::invalid("path_prefix", format!("path_prefix {p:?}: {why}"))
            })?;
        }
        if checked.is_empty() && path_prefix.is_some() {
            return Err(Error::invalid(
                "path_prefix",
                "a path prefix needs host names: it narrows the environment's route",
            ));
        }
        if checked.is_empty() && redirect_https {
            return Err(Error::invalid(
                "redirect_https",
                "the HTTPS redirect is per route: name the environment's host names first",
            ));
        }
        Ok(RouteClaim {
            hosts: checked,
            path_prefix: path_prefix.map(String::from),
            redirect_https,
        })
    }

    /// The prefix as the proxy compares it (`/` and none are the same).
    pub(crate) fn prefix_key(&self) -> &str {
        match self.path_prefix.as_deref() {
            None | Some("/") => "",
            Some(p) => p,
        }
    }

    /// The host of `self` another claim on the same proxy also routes with
    /// the same prefix: requests to it would go to either, so the proxy
    /// refuses it.
    pub(crate) fn clash_with<'a>(&'a self, other: &RouteClaim) -> Option<&'a str> {
        if self.prefix_key() != other.prefix_key() {
            return None;
        }
        self.hosts
            .iter()
            .find(|h| other.hosts.contains(h))
            .map(String::as_str)
    }
}

/// switchyard-proxy's host pattern rules (`HostPattern::parse`).
fn check_host(text: &str) -> std::result::Result<(), &'static str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must be lowercase");
    }
    if text.contains(':') {
        return Err("must not carry a port or scheme (the port in a request's Host is ignored)");
    }
    let name = text.strip_prefix("*.").unwrap_or(text);
    if name.contains('*') {
        return Err("a wildcard is only allowed as the whole first label (`*.example.com`)");
    }
    if name.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err("labels are 1 to 63 of a-z, 0-9 and `-`, not starting or ending with `-`, separated by single dots");
    }
    Ok(())
}

/// switchyard-proxy's path prefix rules (`PathPrefix::parse`).
fn check_path_prefix(text: &str) -> std::result::Result<(), &'static str> {
    if !text.starts_with('/') {
        return Err("must start with `/`");
    }
    if text == "/" {
        return Ok(());
    }
    if text.len() > 1024 {
        return Err("is longer than 1024 characters");
    }
    if text.ends_with('/') {
        return Err("must not end with `/` (`/api` matches `/api` and `/api/…`)");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
    if !text.bytes().all(allowed) {
        return Err("only letters, digits and -._~!$&'()*+,;=:@/ (no query, fragment, space or percent-encoding)");
    }
    if text[1..]
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("empty, `.` and `..` segments are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn takes_exact_and_wildcard_hosts_and_a_prefix() {
        let c = RouteClaim::check(
            &hosts(&[" shop.example.com ", "*.shop.example.com", ""]),
            Some("/api"),
            true,
        )
        .unwrap();
        assert_eq!(c.hosts, hosts(&["shop.example.com", "*.shop.example.com"]));
        assert_eq!(c.path_prefix.as_deref(), Some("/api"));
        assert_eq!(c.first_exact_host(), Some("shop.example.com"));
        assert!(c.is_routed());
        assert_eq!(RouteClaim::check(&[], None, false).unwrap(), RouteClaim::default());
    }

    #[test]
    fn refuses_what_the_proxy_refuses_naming_the_field() {
        for (h, p, r, field) in [
            (vec!["Shop.example.com"], None, false, "hosts"),
            (vec!["shop.example.com:8080"], None, false, "hosts"),
            (vec!["http://shop.example.com"], None, false, "hosts"),
            (vec!["a.*.example.com"], None, false, "hosts"),
            (vec!["-a.example.com"], None, false, "hosts"),
            (vec!["a..example.com"], None, false, "hosts"),
            (vec!["<b>.example.com"], None, false, "hosts"),
            (vec!["a.example.com", "a.example.com"], None, false, "hosts"),
            (vec!["a.example.com"], Some("api"), false, "path_prefix"),
            (vec!["a.example.com"], Some("/api/"), false, "path_prefix"),
            (vec!["a.example.com"], Some("/a/../b"), false, "path_prefix"),
            (vec!["a.example.com"], Some("/a b"), false, "path_prefix"),
            (vec!["a.example.com"], Some("/a?b"), false, "path_prefix"),
            (vec![], Some("/api"), false, "path_prefix"),
            (vec![], None, true, "redirect_https"),
        ] {
            let err = RouteClaim::check(&hosts(&h), p, r).unwrap_err();
            assert_eq!(err.field(), Some(field), "{h:?} {p:?}: {err}");
        }
    }

    #[test]
    fn a_shared_host_clashes_only_under_the_same_prefix() {
        let a = RouteClaim::check(&hosts(&["a.example.com", "b.example.com"]), None, false).unwrap();
        let b = RouteClaim::check(&hosts(&["b.example.com"]), Some("/"), false).unwrap();
        let api = RouteClaim::check(&hosts(&["b.example.com"]), Some("/api"), false).unwrap();
        assert_eq!(a.clash_with(&b), Some("b.example.com"));
        assert_eq!(a.clash_with(&api), None);
    }
}
