//! What a deploy runs, as a template holding `{version}`: a command line for
//! the process runtime, an image reference for Docker. Checked when an
//! environment is written down, so a typo is refused on the form rather
//! than at the first deploy.

use crate::error::{Error, Result};
use model::RuntimeKind;

/// A version that stands in for `{version}` when the filled-in template is
/// checked (a plain tag, valid wherever a real version is).
const SAMPLE_VERSION: &str = "v1";

pub(super) fn check(runtime: RuntimeKind, template: &str) -> Result<()> {
    let template = template.trim();
    if !template.contains("{version}") {
        return Err(Error::invalid(
            "artifact",
            format!(
                "{template:?} does not hold {{version}}: every release would run the same thing"
            ),
        ));
    }
    let filled = template.replace("{version}", SAMPLE_VERSION);
    match runtime {
        RuntimeKind::Process => {
            if shell_words::split(&filled).map_or(true, |w| w.is_empty()) {
                return Err(Error::invalid(
                    "artifact",
                    format!("{template:?} does not parse as a command line"),
                ));
            }
        }
        RuntimeKind::Docker => {
            if let Err(why) = image_reference(&filled) {
                return Err(Error::invalid(
                    "artifact",
                    format!("{template:?} is not a Docker image reference: {why}"),
                ));
            }
        }
    }
    Ok(())
}

/// Docker's reference grammar, `[host[:port]/]path[:tag][@sha256:hex]`,
/// with the message saying which part is wrong.
pub(crate) fn image_reference(r: &str) -> std::result::Result<(), &'static str> {
    let (rest, digest) = match r.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let hex = d
            .strip_prefix("sha256:")
            .ok_or("a digest starts with sha256:")?;
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("a sha256 digest is 64 hex digits");
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok
            || tag.len() > 128
            || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(
                "a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            );
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        {
            return Err("the registry host is letters, digits, '.' and '-'");
        }
        if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
            return Err("the registry port is a number from 1 to 65535");
        }
    }
    if parts.is_empty() || !parts.iter().all(|p| path_component(p)) {
        return Err("a repository path is lowercase letters and digits, separated by '/', '.', '_', '__' or '-'");
    }
    Ok(())
}

fn path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Separators between alphanumerics: one '.', one or two '_', any '-'.
    p.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-'))
        && p.chars().all(|c| alnum(c as u8) || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_references_teams_use() {
        for r in [
            "switchyard-demo:v1",
            "registry.local:5000/shop:v1",
            "127.0.0.1:5000/team/shop:2.0.0-rc.1",
            "localhost/shop",
            "ghcr.io/acme/web__app:v1",
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(image_reference(r), Ok(()), "{r}");
        }
    }

    #[test]
    fn refuses_what_docker_would() {
        for r in [
            "",
            "Shop:v1",
            "shop:v1 extra",
            "shop:.v1",
            "registry:0/shop:v1",
            "shop::v1",
            "/shop:v1",
            "shop/:v1",
            "shop@sha256:abc",
            "sh..op:v1",
        ] {
            assert!(image_reference(r).is_err(), "{r:?} was accepted");
        }
    }

    #[test]
    fn templates_need_their_version() {
        assert!(check(RuntimeKind::Docker, "registry.local:5000/shop:latest").is_err());
        assert!(check(RuntimeKind::Docker, "registry.local:5000/shop:{version}").is_ok());
        assert!(check(RuntimeKind::Docker, "Registry/SHOP:{version}").is_err());
        assert!(check(
            RuntimeKind::Process,
            "/srv/shop/{version}/bin/shop --port 8080"
        )
        .is_ok());
        assert!(check(RuntimeKind::Process, "/srv/shop/bin 'unclosed {version}").is_err());
    }
}
