//! The console's own cookies, which the apps behind the proxy never see.
//!
//! Cookies are scoped by host, not by port, so a browser that is logged in to
//! the console sends the console's session cookie with every request to an
//! app on the same host. An app that logs, echoes or leaks its request
//! headers would then hand out an operator's session, so the proxy removes
//! those cookies before forwarding.

use axum::http::header::{self, HeaderMap, HeaderValue};
use std::sync::Arc;

/// What the console names its session cookie, plain and with secure cookies on.
pub const DEFAULT_NAMES: [&str; 2] = ["switchyard_session", "__Host-switchyard_session"];

#[derive(Clone, Debug)]
pub struct ConsoleCookies {
    names: Arc<[Box<[u8]>]>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a cookie name: {why}")]
pub struct BadCookieName {
    name: String,
    why: &'static str,
}

impl Default for ConsoleCookies {
    fn default() -> Self {
        ConsoleCookies::new(DEFAULT_NAMES).expect("the default names are valid")
    }
}

impl ConsoleCookies {
    pub fn new<I, S>(names: I) -> Result<Self, BadCookieName>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = names
            .into_iter()
            .map(|name| {
                let name = name.as_ref();
                check_name(name)?;
                Ok(name.as_bytes().into())
            })
            .collect::<Result<Vec<Box<[u8]>>, BadCookieName>>()?;
        Ok(ConsoleCookies {
            names: names.into(),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(|n| std::str::from_utf8(n).expect("checked to be ASCII"))
    }

    /// Removes the console's cookies from every `Cookie` header, keeping the
    /// other cookies as they were and dropping a header left with none.
    ///
    /// Every forwarded request comes through here, so the common case (no
    /// header mentions a console cookie) only reads and never allocates.
    pub fn strip(&self, headers: &mut HeaderMap) {
        let mentioned = headers
            .get_all(header::COOKIE)
            .iter()
            .any(|v| self.mentioned_in(v.as_bytes()));
        if !mentioned {
            return;
        }
        let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
        headers.remove(header::COOKIE);
        for value in values {
            if !self.mentioned_in(value.as_bytes()) {
                headers.append(header::COOKIE, value);
            } else if let Some(kept) = self.without_console_cookies(value.as_bytes()) {
                headers.append(header::COOKIE, kept);
            }
        }
    }

    /// Removes the `Set-Cookie` headers an app sent for the console's cookies:
    /// on the same host an app could otherwise overwrite or delete an
    /// operator's session (or plant one of its choosing). Cheap when no
    /// header mentions a console cookie.
    pub fn strip_set_cookie(&self, headers: &mut HeaderMap) {
        let mentioned = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| self.mentioned_in(v.as_bytes()));
        if !mentioned {
            return;
        }
        let values: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for value in values {
            let pair = value.as_bytes().split(|b| *b == b';').next().unwrap_or(&[]);
            if !self.is_console_cookie(pair) {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }

    /// A cheap over-approximation: the name appearing anywhere, even inside
    /// another cookie's value, only sends the header down the exact path.
    fn mentioned_in(&self, value: &[u8]) -> bool {
        self.names
            .iter()
            .any(|name| value.windows(name.len()).any(|w| w == &name[..]))
    }

    /// The pairs of `value` that are not console cookies, joined by the
    /// separators they had; `None` when none is left.
    fn without_console_cookies(&self, value: &[u8]) -> Option<HeaderValue> {
        let mut kept: Vec<u8> = Vec::with_capacity(value.len());
        for pair in value.split(|b| *b == b';') {
            if self.is_console_cookie(pair) || trim_ows(pair).is_empty() {
                continue;
            }
            if !kept.is_empty() {
                kept.push(b';');
            }
            kept.extend_from_slice(pair);
        }
        let kept = trim_ows(&kept);
        if kept.is_empty() {
            return None;
        }
        // A part of a valid header value is one too; were it not, dropping
        // the header is the safe way to fail.
        HeaderValue::from_bytes(kept).ok()
    }

    /// Lenient like the parsers apps use: `name = value` with spaces around
    /// the name still counts as `name`.
    fn is_console_cookie(&self, pair: &[u8]) -> bool {
        let name = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => &pair[..eq],
            None => pair,
        };
        let name = trim_ows(name);
        self.names.iter().any(|n| &n[..] == name)
    }
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// For flag parsers: `name` if it can be a cookie's name.
pub fn cookie_name(name: &str) -> Result<String, BadCookieName> {
    check_name(name).map(|()| name.to_string())
}

/// RFC 6265's cookie-name: an RFC 9110 token.
fn check_name(name: &str) -> Result<(), BadCookieName> {
    let bad = |why| {
        Err(BadCookieName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token_char) {
        return bad("only letters, digits and !#$%&'*+-.^_`|~ are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(values: &[&str]) -> Vec<String> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        ConsoleCookies::default().strip(&mut h);
        assert_eq!(h[header::ACCEPT], "*/*", "other headers are left alone");
        h.get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn apps_cannot_set_the_console_cookies() {
        let mut h = HeaderMap::new();
        for v in [
            "switchyard_session=planted; Path=/",
            "cart=1; Path=/",
            "__Host-switchyard_session=x; Secure; Path=/",
            " switchyard_session =y",
            "other=switchyard_session",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(v));
        }
        ConsoleCookies::default().strip_set_cookie(&mut h);
        let left: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["cart=1; Path=/", "other=switchyard_session"]);
    }

    #[test]
    fn console_cookies_are_removed_and_the_others_kept_as_they_were() {
        assert_eq!(
            strip(&["a=1; switchyard_session=s3cret; b=\"x y\""]),
            ["a=1; b=\"x y\""]
        );
        assert_eq!(strip(&["switchyard_session=s3cret; a=1"]), ["a=1"]);
        assert_eq!(strip(&["a=1;switchyard_session=s3cret"]), ["a=1"]);
        assert_eq!(
            strip(&["__Host-switchyard_session=x; theme=dark;lang=en"]),
            ["theme=dark;lang=en"]
        );
        assert_eq!(
            strip(&[
                "a=1",
                "switchyard_session=x",
                "b=2; __Host-switchyard_session=y"
            ]),
            ["a=1", "b=2"]
        );
        assert_eq!(strip(&["switchyard_session = x ; a=1"]), ["a=1"]);
        assert!(strip(&["switchyard_session=x"]).is_empty());
        assert!(strip(&["switchyard_session=x; __Host-switchyard_session=y;"]).is_empty());
    }

    #[test]
    fn look_alikes_are_not_console_cookies() {
        for untouched in [
            "my_switchyard_session=1",
            "switchyard_session_x=1",
            "Switchyard_Session=1",
            "a=switchyard_session",
            "switchyard_slot=green",
        ] {
            assert_eq!(strip(&[untouched]), [untouched]);
        }
        assert_eq!(
            strip(&["note=switchyard_session; switchyard_session=x"]),
            ["note=switchyard_session"]
        );
    }

    #[test]
    fn names_are_configurable_and_checked() {
        let cookies = ConsoleCookies::new(["sid"]).unwrap();
        assert_eq!(cookies.names().collect::<Vec<_>>(), ["sid"]);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("sid=1; switchyard_session=2"),
        );
        cookies.strip(&mut h);
        assert_eq!(h[header::COOKIE], "switchyard_session=2");
        assert_eq!(
            ConsoleCookies::default().names().collect::<Vec<_>>(),
            DEFAULT_NAMES
        );
        for (bad, why) in [
            ("", "it is empty"),
            (
                "a=b",
                "only letters, digits and !#$%&'*+-.^_`|~ are allowed",
            ),
            (
                "a b",
                "only letters, digits and !#$%&'*+-.^_`|~ are allowed",
            ),
            (
                "a;b",
                "only letters, digits and !#$%&'*+-.^_`|~ are allowed",
            ),
        ] {
            assert_eq!(
                ConsoleCookies::new([bad]).unwrap_err().to_string(),
                format!("{bad:?} is not a cookie name: {why}")
            );
        }
    }
}
