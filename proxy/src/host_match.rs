//! Host names as routes claim them (`shop.example.com`, `*.example.com`)
//! and as requests carry them (`Host: Shop.Example.com:8080`).
//!
//! Patterns are checked once, when a route comes in; a request's host is
//! folded to lowercase into a buffer on the stack, so finding its route
//! allocates nothing.

use std::fmt;

/// The longest host name DNS allows (253) plus a trailing dot; a request
/// host longer than this belongs to no named route.
pub(crate) const MAX_HOST_LEN: usize = 254;

/// One host a route claims: a name, or every name under a suffix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HostPattern {
    /// `shop.example.com`: that name only.
    Exact(Box<str>),
    /// `*.example.com`, kept as the suffix `.example.com`: any name ending
    /// in it with at least one label before (`a.example.com`,
    /// `a.b.example.com`), never `example.com` itself.
    Wildcard(Box<str>),
}

/// Why a host pattern is refused; the caller names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadHost {
    #[error("must not be empty")]
    Empty,
    #[error("must be lowercase")]
    Uppercase,
    #[error("must not carry a port (the port in a request's Host is ignored)")]
    Port,
    #[error("a wildcard is only allowed as the whole first label (`*.example.com`)")]
    Wildcard,
    #[error("is longer than 253 characters")]
    TooLong,
    #[error("labels are 1 to 63 of a-z, 0-9 and `-`, not starting or ending with `-`, separated by single dots")]
    Label,
}

impl HostPattern {
    pub(crate) fn parse(text: &str) -> Result<HostPattern, BadHost> {
        if text.is_empty() {
            return Err(BadHost::Empty);
        }
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(BadHost::Uppercase);
        }
        if let Some((_, port)) = text.rsplit_once(':') {
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !text.contains(']') {
                return Err(BadHost::Port);
            }
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.contains('*') {
            return Err(BadHost::Wildcard);
        }
        if name.len() > 253 {
            return Err(BadHost::TooLong);
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
            return Err(BadHost::Label);
        }
        Ok(if wildcard {
            HostPattern::Wildcard(format!(".{name}").into_boxed_str())
        } else {
            HostPattern::Exact(name.into())
        })
    }

    /// What the route set indexes the pattern by: the name, or the suffix
    /// with its leading dot.
    pub(crate) fn key(&self) -> &str {
        match self {
            HostPattern::Exact(name) | HostPattern::Wildcard(name) => name,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The host of a request's `Host` (or HTTP/2 authority), lowercased into
/// `buf`: port, userinfo and one trailing dot removed. `None` when there is
/// nothing a pattern could match (empty, too long, an IPv6 literal, a
/// leading dot).
pub(crate) fn normalize<'b>(raw: &[u8], buf: &'b mut [u8; MAX_HOST_LEN]) -> Option<&'b [u8]> {
    // `user@host` only appears in an absolute-form authority.
    let raw = match raw.iter().rposition(|&b| b == b'@') {
        Some(at) => &raw[at + 1..],
        None => raw,
    };
    // No pattern is an IPv6 literal (`[::1]:80`): those go to the default.
    if raw.first() == Some(&b'[') {
        return None;
    }
    let host = match raw.iter().rposition(|&b| b == b':') {
        Some(colon) => &raw[..colon],
        None => raw,
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN || host[0] == b'.' {
        return None;
    }
    let out = &mut buf[..host.len()];
    for (o, b) in out.iter_mut().zip(host) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

/// The wildcard keys a (normalized) host could match, longest suffix first:
/// `a.b.example.com` → `.b.example.com`, `.example.com`, `.com`.
pub(crate) fn wildcard_suffixes(host: &[u8]) -> impl Iterator<Item = &[u8]> {
    host.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'.')
        .map(move |(i, _)| &host[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_validated_and_round_trip() {
        for ok in [
            "shop.example.com",
            "localhost",
            "a-1.b2",
            "*.example.com",
            "*.com",
            "10.0.0.1",
        ] {
            let p = HostPattern::parse(ok).unwrap();
            assert_eq!(p.to_string(), ok);
        }
        assert_eq!(
            HostPattern::parse("*.example.com").unwrap().key(),
            ".example.com"
        );
        let bad = [
            ("", BadHost::Empty),
            ("Shop.example.com", BadHost::Uppercase),
            ("shop.example.com:8080", BadHost::Port),
            ("*", BadHost::Wildcard),
            ("a.*.com", BadHost::Wildcard),
            ("*.*.com", BadHost::Wildcard),
            ("*example.com", BadHost::Wildcard),
            ("shop..example.com", BadHost::Label),
            (".example.com", BadHost::Label),
            ("example.com.", BadHost::Label),
            ("-shop.example.com", BadHost::Label),
            ("shop_1.example.com", BadHost::Label),
            ("shöp.example.com", BadHost::Label),
            ("[::1]", BadHost::Label),
            ("[::1]:80", BadHost::Label),
        ];
        for (text, why) in bad {
            assert_eq!(HostPattern::parse(text), Err(why), "{text:?}");
        }
        let long = format!("{}.com", "a.".repeat(125));
        assert_eq!(HostPattern::parse(&long), Err(BadHost::TooLong));
        assert_eq!(
            HostPattern::parse(&format!("{}.com", "a".repeat(64))),
            Err(BadHost::Label)
        );
    }

    #[test]
    fn request_hosts_lose_port_case_and_trailing_dot() {
        let mut buf = [0u8; MAX_HOST_LEN];
        let mut norm = |raw: &str| normalize(raw.as_bytes(), &mut buf).map(|h| h.to_vec());
        assert_eq!(norm("Shop.Example.COM:8080").unwrap(), b"shop.example.com");
        assert_eq!(norm("shop.example.com.").unwrap(), b"shop.example.com");
        assert_eq!(
            norm("user@shop.example.com:1").unwrap(),
            b"shop.example.com"
        );
        assert_eq!(norm("[::1]:8080"), None);
        assert_eq!(norm(""), None);
        assert_eq!(norm(":80"), None);
        assert_eq!(norm(".example.com"), None);
        assert_eq!(norm(&"a".repeat(300)), None);
    }

    #[test]
    fn wildcard_suffixes_go_from_longest_to_shortest() {
        let all: Vec<&[u8]> = wildcard_suffixes(b"a.b.example.com").collect();
        assert_eq!(all, [&b".b.example.com"[..], b".example.com", b".com"]);
        assert_eq!(wildcard_suffixes(b"localhost").count(), 0);
    }
}
