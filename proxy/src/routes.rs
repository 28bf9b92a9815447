//! Named routes: several environments behind one proxy, told apart by the
//! request's host (and optionally a path prefix). Each route has its own
//! generation-fenced [`RouteTable`], its own metrics (so its own drain
//! state) and its own canary counter; a request no route claims goes to the
//! default table (`/admin/routing`).
//!
//! Matching, most specific first:
//! 1. an exact host (`shop.example.com`) before any wildcard;
//! 2. a longer wildcard suffix (`*.eu.example.com`) before a shorter one
//!    (`*.example.com`);
//! 3. among the routes of one host pattern, the longest path prefix that
//!    matches on a segment boundary (`/api` matches `/api` and `/api/x`,
//!    not `/apix`); no prefix matches every path.
//!
//! When the routes of the most specific host pattern all have prefixes the
//! path does not match, the next less specific pattern is tried, so
//! `shop.example.com` + `/api` and `*.example.com` can share a site.
//!
//! The whole set is one immutable [`RouteSet`] swapped atomically on every
//! change (see [`crate::routing::Routing`]): a request finds its route with
//! one atomic load, a hash lookup per host pattern tried and no allocation.

use crate::host_match::{self, BadHost, HostPattern, MAX_HOST_LEN};
use crate::metrics::SlotMetrics;
use crate::route_table::{RouteTable, TableError, TableRules};
use crate::upstream_policy::UpstreamPolicy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// A route as the admin API shows it and the state file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The plain listener answers 308 to the same URL over HTTPS instead
    /// of forwarding ([`crate::redirect`]). Left out when off, so state
    /// files written before it existed read the same.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redirect_https: bool,
    pub table: RouteTable,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a route is refused. Every message names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("name {0:?}: use 1 to 63 of a-z, 0-9 and `-`")]
    Name(String),
    #[error("route {0:?} is listed twice")]
    Repeated(String),
    #[error("hosts: a route needs at least one host")]
    NoHosts,
    #[error("hosts[{index}] {host:?}: {reason}")]
    Host {
        index: usize,
        host: String,
        reason: BadHost,
    },
    #[error("hosts[{index}] {host:?} is listed twice")]
    RepeatedHost { index: usize, host: String },
    #[error("path_prefix {prefix:?}: {reason}")]
    PathPrefix {
        prefix: String,
        reason: &'static str,
    },
    #[error("table: {0}")]
    Table(#[from] TableError),
    /// Two routes may not claim the same host with the same prefix: which
    /// one a request went to would be a coin toss.
    #[error("hosts[{index}] {host:?} with {prefix} is already routed by route {other:?}")]
    Conflict {
        index: usize,
        host: String,
        prefix: String,
        other: String,
    },
}

/// `[a-z0-9-]{1,63}`: the environment's name, also a Prometheus label value
/// and a URL path segment, so nothing there needs escaping.
pub fn validate_name(name: &str) -> Result<(), RouteError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RouteError::Name(name.to_string()))
    }
}

/// A path prefix without its trailing slash; empty matches every path.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct PathPrefix(Box<str>);

impl PathPrefix {
    pub(crate) fn parse(text: Option<&str>) -> Result<PathPrefix, RouteError> {
        let Some(text) = text else {
            return Ok(PathPrefix::default());
        };
        let bad = |reason| {
            Err(RouteError::PathPrefix {
                prefix: text.to_string(),
                reason,
            })
        };
        if !text.starts_with('/') {
            return bad("must start with `/`");
        }
        if text == "/" {
            return Ok(PathPrefix::default());
        }
        if text.len() > 1024 {
            return bad("is longer than 1024 characters");
        }
        if text.ends_with('/') {
            return bad("must not end with `/` (`/api` matches `/api` and `/api/…`)");
        }
        // Compared byte for byte with the request's raw path, so only what
        // a path carries unencoded and unambiguously.
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if !text.bytes().all(allowed) {
            return bad("only letters, digits and -._~!$&'()*+,;=:@/ (no query, fragment, space or percent-encoding)");
        }
        if text[1..]
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return bad("empty, `.` and `..` segments are not allowed");
        }
        Ok(PathPrefix(text.into()))
    }

    /// On a segment boundary: `/api` matches `/api`, `/api/x`, not `/apix`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let p = &*self.0;
        match path.strip_prefix(p) {
            Some(rest) => p.is_empty() || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    fn describe(&self) -> String {
        if self.0.is_empty() {
            "no path prefix".to_string()
        } else {
            format!("path prefix {:?}", &*self.0)
        }
    }
}

/// A route that passed every check, ready for requests.
#[derive(Debug)]
pub struct NamedRoute {
    name: Box<str>,
    hosts: Vec<HostPattern>,
    prefix: PathPrefix,
    /// As given (`/` stays `/`), so an answer shows what was PUT.
    prefix_text: Option<String>,
    redirect_https: bool,
    table: Arc<RouteTable>,
    metrics: Arc<SlotMetrics>,
    /// New clients seen while a canary split is on; spreads them exactly.
    new_clients: Arc<AtomicU64>,
}

/// The parts of a route that outlive a change of its table or hosts: its
/// counters, so a switch keeps the route's drain state and totals.
#[derive(Clone, Default)]
pub(crate) struct RouteLive {
    pub(crate) metrics: Arc<SlotMetrics>,
    pub(crate) new_clients: Arc<AtomicU64>,
}

/// Name, hosts and prefix checked; the table is checked apart (it may be
/// kept from the route's current one).
pub(crate) struct CheckedClaim {
    name: Box<str>,
    hosts: Vec<HostPattern>,
    prefix: PathPrefix,
    prefix_text: Option<String>,
    redirect_https: bool,
}

impl CheckedClaim {
    pub(crate) fn check(
        name: &str,
        hosts: &[String],
        path_prefix: Option<&str>,
    ) -> Result<CheckedClaim, RouteError> {
        validate_name(name)?;
        if hosts.is_empty() {
            return Err(RouteError::NoHosts);
        }
        let mut patterns: Vec<HostPattern> = Vec::with_capacity(hosts.len());
        for (index, host) in hosts.iter().enumerate() {
            let pattern = HostPattern::parse(host).map_err(|reason| RouteError::Host {
                index,
                host: host.clone(),
                reason,
            })?;
            if patterns.contains(&pattern) {
                return Err(RouteError::RepeatedHost {
                    index,
                    host: host.clone(),
                });
            }
            patterns.push(pattern);
        }
        Ok(CheckedClaim {
            name: name.into(),
            hosts: patterns,
            prefix: PathPrefix::parse(path_prefix)?,
            prefix_text: path_prefix.map(str::to_string),
            redirect_https: false,
        })
    }

    /// Plain-listener requests of this route are redirected to HTTPS.
    pub(crate) fn redirect_https(mut self, on: bool) -> CheckedClaim {
        self.redirect_https = on;
        self
    }

    pub(crate) fn into_route(self, table: Arc<RouteTable>, live: RouteLive) -> NamedRoute {
        NamedRoute {
            name: self.name,
            hosts: self.hosts,
            prefix: self.prefix,
            prefix_text: self.prefix_text,
            redirect_https: self.redirect_https,
            table,
            metrics: live.metrics,
            new_clients: live.new_clients,
        }
    }
}

impl NamedRoute {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }

    /// This route's traffic only: the default table's and other routes'
    /// requests are counted elsewhere.
    pub fn metrics(&self) -> &Arc<SlotMetrics> {
        &self.metrics
    }

    /// Whether the plain listener answers 308 to HTTPS instead of forwarding.
    pub fn redirects_to_https(&self) -> bool {
        self.redirect_https
    }

    pub(crate) fn new_clients(&self) -> &AtomicU64 {
        &self.new_clients
    }

    pub(crate) fn live(&self) -> RouteLive {
        RouteLive {
            metrics: Arc::clone(&self.metrics),
            new_clients: Arc::clone(&self.new_clients),
        }
    }

    /// The same route (claim and counters) with another table.
    pub(crate) fn with_table(&self, table: Arc<RouteTable>) -> NamedRoute {
        NamedRoute {
            name: self.name.clone(),
            hosts: self.hosts.clone(),
            prefix: self.prefix.clone(),
            prefix_text: self.prefix_text.clone(),
            redirect_https: self.redirect_https,
            table,
            metrics: Arc::clone(&self.metrics),
            new_clients: Arc::clone(&self.new_clients),
        }
    }

    pub fn spec(&self) -> RouteSpec {
        RouteSpec {
            name: self.name.to_string(),
            hosts: self.hosts.iter().map(ToString::to_string).collect(),
            path_prefix: self.prefix_text.clone(),
            redirect_https: self.redirect_https,
            table: RouteTable::clone(&self.table),
        }
    }
}

/// Routes of one host pattern, longest prefix first.
type Candidates = Vec<Arc<NamedRoute>>;

/// Every named route, indexed for matching. Immutable: a change builds a
/// new set (a handful of routes, on an admin request) and swaps it in.
#[derive(Debug, Default)]
pub struct RouteSet {
    by_name: BTreeMap<Box<str>, Arc<NamedRoute>>,
    exact: HashMap<Box<[u8]>, Candidates>,
    /// Keyed by the suffix with its leading dot (`.example.com`).
    wildcard: HashMap<Box<[u8]>, Candidates>,
}

impl RouteSet {
    /// The routes the state file keeps, each checked as a PUT of it would be.
    /// On error, the name of the route at fault (or of the second of two
    /// that conflict) comes with it.
    pub(crate) fn from_specs(
        specs: Vec<RouteSpec>,
        policy: &UpstreamPolicy,
    ) -> Result<RouteSet, (String, RouteError)> {
        let mut set = RouteSet::default();
        for spec in specs {
            let fail = |e: RouteError| (spec.name.clone(), e);
            let claim = CheckedClaim::check(&spec.name, &spec.hosts, spec.path_prefix.as_deref())
                .map_err(fail)?
                .redirect_https(spec.redirect_https);
            if set.by_name.contains_key(&*claim.name) {
                return Err(fail(RouteError::Repeated(spec.name.clone())));
            }
            spec.table
                .validate(policy)
                .map_err(|e| fail(RouteError::Table(e)))?;
            let route = claim.into_route(Arc::new(spec.table.clone()), RouteLive::default());
            set.insert(Arc::new(route)).map_err(fail)?;
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NamedRoute>> {
        self.by_name.get(name)
    }

    /// By name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<NamedRoute>> {
        self.by_name.values()
    }

    /// This set with `route` added, or in place of the route of its name.
    /// A conflict names the route already holding the claim.
    pub(crate) fn with(&self, route: NamedRoute) -> Result<RouteSet, RouteError> {
        let mut next = RouteSet::default();
        for kept in self.iter().filter(|r| r.name != route.name) {
            next.insert(Arc::clone(kept))?;
        }
        next.insert(Arc::new(route))?;
        Ok(next)
    }

    /// This set without the route `name` (`None`: there is no such route).
    pub(crate) fn without(&self, name: &str) -> Option<RouteSet> {
        self.by_name.get(name)?;
        let mut next = RouteSet::default();
        for kept in self.iter().filter(|r| &*r.name != name) {
            // They coexisted already: no conflict can appear.
            let _ = next.insert(Arc::clone(kept));
        }
        Some(next)
    }

    fn insert(&mut self, route: Arc<NamedRoute>) -> Result<(), RouteError> {
        for (index, pattern) in route.hosts.iter().enumerate() {
            let map = match pattern {
                HostPattern::Exact(_) => &mut self.exact,
                HostPattern::Wildcard(_) => &mut self.wildcard,
            };
            let candidates = map.entry(pattern.key().as_bytes().into()).or_default();
            if let Some(other) = candidates.iter().find(|c| c.prefix == route.prefix) {
                return Err(RouteError::Conflict {
                    index,
                    host: pattern.to_string(),
                    prefix: route.prefix.describe(),
                    other: other.name.to_string(),
                });
            }
            candidates.push(Arc::clone(&route));
            candidates.sort_by_key(|c| std::cmp::Reverse(c.prefix.0.len()));
        }
        self.by_name.insert(route.name.clone(), route);
        Ok(())
    }

    /// The route for a request with this `Host` (raw, any case, port and all)
    /// and path, if any claims it. Allocation-free: the host is lowercased
    /// into a stack buffer.
    pub fn find(&self, host: &[u8], path: &str) -> Option<&Arc<NamedRoute>> {
        let mut buf = [0u8; MAX_HOST_LEN];
        let host = host_match::normalize(host, &mut buf)?;
        let longest_prefix = |candidates: &'_ Candidates| -> Option<usize> {
            candidates.iter().position(|c| c.prefix.matches(path))
        };
        if let Some(candidates) = self.exact.get(host) {
            if let Some(i) = longest_prefix(candidates) {
                return candidates.get(i);
            }
        }
        if self.wildcard.is_empty() {
            return None;
        }
        for suffix in host_match::wildcard_suffixes(host) {
            if let Some(candidates) = self.wildcard.get(suffix) {
                if let Some(i) = longest_prefix(candidates) {
                    return candidates.get(i);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, hosts: &[&str], prefix: Option<&str>) -> NamedRoute {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        CheckedClaim::check(name, &hosts, prefix)
            .unwrap()
            .into_route(Arc::new(RouteTable::default()), RouteLive::default())
    }

    fn set(routes: Vec<NamedRoute>) -> RouteSet {
        let mut set = RouteSet::default();
        for r in routes {
            set = set.with(r).unwrap();
        }
        set
    }

    fn found<'s>(set: &'s RouteSet, host: &str, path: &str) -> Option<&'s str> {
        set.find(host.as_bytes(), path).map(|r| r.name())
    }

    #[test]
    fn exact_beats_wildcard_and_longer_suffix_beats_shorter() {
        let s = set(vec![
            route("any", &["*.example.com"], None),
            route("eu", &["*.eu.example.com"], None),
            route("shop", &["shop.eu.example.com"], None),
        ]);
        assert_eq!(found(&s, "shop.eu.example.com", "/"), Some("shop"));
        assert_eq!(found(&s, "SHOP.EU.Example.com:8443", "/"), Some("shop"));
        assert_eq!(found(&s, "cart.eu.example.com", "/"), Some("eu"));
        assert_eq!(found(&s, "a.b.eu.example.com", "/"), Some("eu"));
        assert_eq!(found(&s, "eu.example.com", "/"), Some("any"));
        assert_eq!(
            found(&s, "example.com", "/"),
            None,
            "a wildcard needs a label"
        );
        assert_eq!(found(&s, "example.org", "/"), None);
        assert_eq!(found(&s, "", "/"), None);
    }

    #[test]
    fn longest_prefix_on_a_segment_boundary_wins_then_less_specific_hosts() {
        let s = set(vec![
            route("site", &["shop.example.com"], None),
            route("api", &["shop.example.com"], Some("/api")),
            route("v2", &["shop.example.com"], Some("/api/v2")),
            route("docs", &["docs.example.com"], Some("/docs")),
            route("rest", &["*.example.com"], None),
        ]);
        assert_eq!(found(&s, "shop.example.com", "/api"), Some("api"));
        assert_eq!(found(&s, "shop.example.com", "/api/x"), Some("api"));
        assert_eq!(found(&s, "shop.example.com", "/apix"), Some("site"));
        assert_eq!(found(&s, "shop.example.com", "/api/v2"), Some("v2"));
        assert_eq!(found(&s, "shop.example.com", "/api/v2/orders"), Some("v2"));
        assert_eq!(found(&s, "shop.example.com", "/api/v20"), Some("api"));
        assert_eq!(found(&s, "shop.example.com", "/"), Some("site"));
        assert_eq!(found(&s, "docs.example.com", "/docs/a"), Some("docs"));
        assert_eq!(
            found(&s, "docs.example.com", "/other"),
            Some("rest"),
            "no prefix of the exact host matches: the wildcard does"
        );
    }

    #[test]
    fn the_same_host_and_prefix_twice_is_a_conflict_naming_the_other_route() {
        let s = set(vec![route(
            "a",
            &["x.example.com", "*.example.com"],
            Some("/api"),
        )]);
        let err = s
            .with(route(
                "b",
                &["y.example.com", "*.example.com"],
                Some("/api"),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"hosts[1] "*.example.com" with path prefix "/api" is already routed by route "a""#
        );
        // Another prefix, or the same route replaced, is fine.
        let s2 = s
            .with(route("b", &["*.example.com"], Some("/web")))
            .unwrap();
        assert_eq!(s2.len(), 2);
        let s3 = s.with(route("a", &["x.example.com"], None)).unwrap();
        assert_eq!(found(&s3, "z.example.com", "/api"), None);
        assert_eq!(found(&s3, "x.example.com", "/"), Some("a"));
        // `/` is no prefix at all.
        let s4 = set(vec![route("a", &["x.example.com"], Some("/"))]);
        assert!(s4.with(route("b", &["x.example.com"], None)).is_err());
        assert!(s4.without("a").unwrap().is_empty());
        assert!(s4.without("zz").is_none());
    }

    #[test]
    fn claims_are_validated_naming_the_field() {
        let check = |name: &str, hosts: &[&str], prefix: Option<&str>| {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            CheckedClaim::check(name, &hosts, prefix)
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(check("shop-1", &["a.b"], Some("/api")), None);
        assert_eq!(
            check("Shop", &["a.b"], None).unwrap(),
            "name \"Shop\": use 1 to 63 of a-z, 0-9 and `-`"
        );
        assert!(check("", &["a.b"], None).unwrap().starts_with("name"));
        assert!(check(&"a".repeat(64), &["a.b"], None)
            .unwrap()
            .starts_with("name"));
        assert_eq!(
            check("a", &[], None).unwrap(),
            "hosts: a route needs at least one host"
        );
        assert_eq!(
            check("a", &["a.b", "A.b"], None).unwrap(),
            "hosts[1] \"A.b\": must be lowercase"
        );
        assert_eq!(
            check("a", &["a.b", "a.b"], None).unwrap(),
            "hosts[1] \"a.b\" is listed twice"
        );
        for bad in [
            "api", "/api/", "/a//b", "/a/../b", "/a?b", "/a b", "/%41", "/ü",
        ] {
            let err = check("a", &["a.b"], Some(bad)).unwrap();
            assert!(err.starts_with(&format!("path_prefix {bad:?}: ")), "{err}");
        }
    }

    mod by_the_rules {
        //! [`RouteSet::find`] against a brute-force reading of the rules:
        //! of every (pattern, prefix) that matches, the most specific
        //! pattern (exact, then the longest wildcard suffix), then the
        //! longest prefix.
        use super::*;
        use proptest::prelude::*;

        fn label() -> impl Strategy<Value = String> {
            prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string)
        }

        fn name_of(labels: &[String]) -> String {
            labels.join(".")
        }

        fn pattern() -> impl Strategy<Value = String> {
            (any::<bool>(), prop::collection::vec(label(), 1..=3)).prop_map(|(wild, labels)| {
                if wild {
                    format!("*.{}", name_of(&labels))
                } else {
                    name_of(&labels)
                }
            })
        }

        fn prefix() -> impl Strategy<Value = Option<String>> {
            prop::sample::select(vec![None, Some("/"), Some("/x"), Some("/x/y"), Some("/y")])
                .prop_map(|p| p.map(str::to_string))
        }

        fn request() -> impl Strategy<Value = (String, String)> {
            let host = (
                prop::collection::vec(label(), 1..=4),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(labels, upper, port, dot)| {
                    let mut h = name_of(&labels);
                    if upper {
                        h = h.to_uppercase();
                    }
                    if dot {
                        h.push('.');
                    }
                    if port {
                        h.push_str(":8080");
                    }
                    h
                });
            let path = prop::sample::select(vec!["/", "/x", "/x/", "/x/y", "/x/yz", "/xy", "/y/z"])
                .prop_map(str::to_string);
            (host, path)
        }

        /// How specifically `pattern` claims `host` (bigger wins), if at all.
        fn specificity(pattern: &str, host: &str) -> Option<(u8, usize)> {
            match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    let under = host.strip_suffix(suffix)?.strip_suffix('.')?;
                    (!under.is_empty()).then_some((1, suffix.len()))
                }
                None => (pattern == host).then_some((2, 0)),
            }
        }

        fn prefix_len(prefix: Option<&str>, path: &str) -> Option<usize> {
            let p = match prefix {
                None | Some("/") => return Some(0),
                Some(p) => p,
            };
            (path == p || path.starts_with(&format!("{p}/"))).then_some(p.len())
        }

        proptest! {
            #[test]
            fn find_agrees_with_the_rules(
                routes in prop::collection::vec((prop::collection::vec(pattern(), 1..=3), prefix()), 1..=6),
                requests in prop::collection::vec(request(), 1..=20),
            ) {
                let mut set = RouteSet::default();
                let mut accepted = Vec::new();
                for (i, (hosts, prefix)) in routes.into_iter().enumerate() {
                    let name = format!("r{i}");
                    let Ok(claim) = CheckedClaim::check(&name, &hosts, prefix.as_deref()) else {
                        continue; // a pattern listed twice
                    };
                    let route = claim.into_route(Arc::new(RouteTable::default()), RouteLive::default());
                    if let Ok(next) = set.with(route) {
                        set = next;
                        accepted.push((name, hosts, prefix));
                    }
                }
                for (raw_host, path) in requests {
                    let host = raw_host.split(':').next().unwrap().trim_end_matches('.').to_lowercase();
                    let (host, path) = (host.as_str(), path.as_str());
                    let expected = accepted
                        .iter()
                        .flat_map(|(name, hosts, prefix)| {
                            hosts.iter().filter_map(move |p| {
                                Some(((specificity(p, host)?, prefix_len(prefix.as_deref(), path)?), name))
                            })
                        })
                        .max_by_key(|(rank, _)| *rank)
                        .map(|(_, name)| name.as_str());
                    let got = set.find(raw_host.as_bytes(), path).map(|r| r.name());
                    prop_assert_eq!(got, expected, "{} {}", raw_host, path);
                }
            }
        }
    }
}
