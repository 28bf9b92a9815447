//! Links to places people configured (an environment's address). A link's
//! target runs script when it is a `javascript:` (or `data:`, `vbscript:`)
//! URL, and escaping does not change that: only web addresses become links.

/// `url` when it is an `http(s)://` address, otherwise `None` (the element
/// then has no `href` and the text stays plain).
pub fn web_link(url: &str) -> Option<String> {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::web_link;

    #[test]
    fn only_web_addresses_are_links() {
        assert_eq!(
            web_link("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert!(web_link("HTTPS://shop.example").is_some());
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "data:text/html,x",
            "vbscript:x",
            "/relative",
            "",
        ] {
            assert_eq!(web_link(bad), None, "{bad}");
        }
    }
}
