//! HTTP → HTTPS redirects for named routes that ask for them
//! (`"redirect_https": true`): the plain listener answers
//! `308 Location: https://host[:port]/path?query` instead of forwarding.
//! 308, not 301: the client repeats the same method with the same body.
//! The port is the TLS listener's, left out when it is 443; without a TLS
//! listener it is 443 (TLS may be terminated in front of this proxy).

use hyper::header::HeaderValue;

/// The `Location` for a request with this raw `Host` (port and all) and
/// origin-form path and query; `None` when the host is not a plain DNS
/// name, which would let a crafted `Host` send the client elsewhere.
pub(crate) fn location(
    raw_host: &[u8],
    path_and_query: &str,
    https_port: u16,
) -> Option<HeaderValue> {
    let host = match raw_host.iter().rposition(|&b| b == b':') {
        Some(colon) => &raw_host[..colon],
        None => raw_host,
    };
    let host = std::str::from_utf8(host).ok()?;
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    if host.is_empty() || !host.bytes().all(name_byte) {
        return None;
    }
    let path_and_query = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    // Lowercase, like the route matching that sent the request here.
    let host = host.to_ascii_lowercase();
    let url = if https_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{https_port}{path_and_query}")
    };
    HeaderValue::from_str(&url).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keeps_host_path_and_query_and_uses_the_tls_port() {
        let at = |host: &str, pq: &str, port| location(host.as_bytes(), pq, port);
        assert_eq!(
            at("shop.example.com:8080", "/a/b?c=d", 8443).unwrap(),
            "https://shop.example.com:8443/a/b?c=d"
        );
        assert_eq!(
            at("shop.example.com", "/", 443).unwrap(),
            "https://shop.example.com/"
        );
        assert_eq!(
            at("Shop.Example.com", "*", 443).unwrap(),
            "https://shop.example.com/"
        );
        for bad in ["", "evil.com/x.example.com", "a@b.example.com", "[::1]:80"] {
            assert!(at(bad, "/", 443).is_none(), "{bad}");
        }
    }
}
