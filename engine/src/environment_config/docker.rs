//! A Docker environment's container settings, checked as written down:
//! the port, mounts, limits, restart policy and network.

use crate::error::{Error, Result};
use crate::runtime::DockerOptions;
use model::DockerConfig;

/// Docker refuses less than 6 MB; more than 1 TB is a typo.
const MEMORY_MB: std::ops::RangeInclusive<u64> = 6..=1024 * 1024;

/// `secrets`: the environment's secret names (the registry password must be
/// one of them).
pub(super) fn check(c: &DockerConfig, secrets: &[String]) -> Result<DockerOptions> {
    if c.port == 0 {
        return Err(Error::invalid("port", "the container port is 1 to 65535"));
    }
    for (i, v) in c.volumes.iter().enumerate() {
        check_volume(v).map_err(|why| {
            Error::invalid("volumes", format!("volumes, mount {}: {v:?} {why}", i + 1))
        })?;
    }
    if let Some(m) = c.memory_mb {
        if !MEMORY_MB.contains(&m) {
            return Err(Error::invalid(
                "memory_mb",
                "a memory limit is 6 MB to 1 TB (in MB)",
            ));
        }
    }
    if let Some(cpus) = c.cpus {
        if !(0.01..=512.0).contains(&cpus) {
            return Err(Error::invalid("cpus", "a CPU limit is 0.01 to 512 CPUs"));
        }
    }
    check_restart(&c.restart)?;
    let network = c
        .network
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if let Some(n) = network {
        if matches!(n, "host" | "none") || n.starts_with("container:") {
            return Err(Error::invalid(
                "network",
                format!(
                    "network {n:?} takes the container off its own published port: blue and green \
                     could not run side by side"
                ),
            ));
        }
        if !name_like(n) {
            return Err(Error::invalid(
                "network",
                format!("{n:?} is not a Docker network name"),
            ));
        }
    }
    let registry_user = c
        .registry_user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let registry_secret = c
        .registry_password_secret
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match (registry_user, registry_secret) {
        (None, None) => {}
        (Some(u), Some(s)) => {
            if u.len() > 256 || u.chars().any(|c| c.is_control() || c == ':') {
                return Err(Error::invalid(
                    "registry_user",
                    "a registry user name has no ':' or control characters",
                ));
            }
            if !secrets.iter().any(|n| n == s) {
                return Err(Error::invalid(
                    "registry_password_secret",
                    format!(
                        "{s} is not one of the environment's secrets (declare it in `secrets`)"
                    ),
                ));
            }
        }
        _ => {
            return Err(Error::invalid(
                "registry_password_secret",
                "a registry login needs both registry_user and registry_password_secret",
            ))
        }
    }
    Ok(DockerOptions {
        registry_user: registry_user.map(String::from),
        registry_secret: registry_secret.map(String::from),
        port: c.port,
        volumes: c.volumes.iter().map(|v| v.trim().to_string()).collect(),
        memory_mb: c.memory_mb,
        cpus: c.cpus,
        restart: c.restart.trim().to_string(),
        network: network.map(String::from),
    })
}

/// Docker's names: a letter or digit, then letters, digits, `_`, `.`, `-`.
fn name_like(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Mounts written one per line (the Environments page's field): each
/// checked as the file's are, a bad one named by its line. Blank lines are
/// not mounts.
pub(super) fn mounts_from_lines(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        check_volume(line).map_err(|why| {
            Error::invalid(
                "volumes",
                format!("volumes, line {}: {line:?} {why}", i + 1),
            )
        })?;
        out.push(line.to_string());
    }
    Ok(out)
}

/// `source:target[:ro|:rw]`, the source a host path or a named volume;
/// what is wrong otherwise.
fn check_volume(v: &str) -> std::result::Result<(), &'static str> {
    let parts: Vec<&str> = v.trim().split(':').collect();
    let ok = match parts.as_slice() {
        [source, target] | [source, target, "ro" | "rw"] => {
            let source_ok = if source.starts_with('/') {
                !source.contains("..")
            } else {
                name_like(source)
            };
            source_ok
                && target.starts_with('/')
                && !target.contains("..")
                && !v
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(
            "is not a mount: write source:target[:ro], the source an absolute host path or a \
             volume name, the target an absolute path",
        )
    }
}

fn check_restart(r: &str) -> Result<()> {
    let ok = match r.trim() {
        "no" | "unless-stopped" | "always" | "on-failure" => true,
        other => other
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n))),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "restart",
            "a restart policy is no, on-failure, on-failure:N (1-100), unless-stopped or always",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_limits_and_policies_are_checked() {
        let ok = DockerConfig {
            port: 3000,
            volumes: vec![
                "/srv/shop/uploads:/data".into(),
                "shop-cache:/cache:ro".into(),
            ],
            memory_mb: Some(256),
            cpus: Some(0.5),
            restart: "on-failure:3".into(),
            network: Some("shop_net".into()),
            registry_user: None,
            registry_password_secret: None,
        };
        let opts = check(&ok, &[]).unwrap();
        assert_eq!(opts.port, 3000);
        assert_eq!(opts.volumes.len(), 2);
        for (field, bad) in [
            (
                "port",
                DockerConfig {
                    port: 0,
                    ..ok.clone()
                },
            ),
            (
                "volumes",
                DockerConfig {
                    volumes: vec!["/srv".into()],
                    ..ok.clone()
                },
            ),
            (
                "volumes",
                DockerConfig {
                    volumes: vec!["/a:data".into()],
                    ..ok.clone()
                },
            ),
            (
                "volumes",
                DockerConfig {
                    volumes: vec!["/a:/b:rx".into()],
                    ..ok.clone()
                },
            ),
            (
                "volumes",
                DockerConfig {
                    volumes: vec!["../etc:/b".into()],
                    ..ok.clone()
                },
            ),
            (
                "memory_mb",
                DockerConfig {
                    memory_mb: Some(1),
                    ..ok.clone()
                },
            ),
            (
                "cpus",
                DockerConfig {
                    cpus: Some(f64::NAN),
                    ..ok.clone()
                },
            ),
            (
                "cpus",
                DockerConfig {
                    cpus: Some(0.0),
                    ..ok.clone()
                },
            ),
            (
                "restart",
                DockerConfig {
                    restart: "sometimes".into(),
                    ..ok.clone()
                },
            ),
            (
                "restart",
                DockerConfig {
                    restart: "on-failure:0".into(),
                    ..ok.clone()
                },
            ),
            (
                "network",
                DockerConfig {
                    network: Some("host".into()),
                    ..ok.clone()
                },
            ),
            (
                "network",
                DockerConfig {
                    network: Some("a b".into()),
                    ..ok.clone()
                },
            ),
        ] {
            let err = check(&bad, &[]).unwrap_err();
            assert_eq!(err.field(), Some(field), "{bad:?}: {err}");
        }
        let err = check(
            &DockerConfig {
                volumes: vec!["shop-data:/data".into(), "/srv".into()],
                ..ok.clone()
            },
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("mount 2"), "{err}");
    }

    #[test]
    fn mounts_one_per_line_are_checked_naming_the_line() {
        assert_eq!(
            mounts_from_lines("shop-data:/data\r\n\n  /srv/shop:/srv:ro  \n").unwrap(),
            vec![
                "shop-data:/data".to_string(),
                "/srv/shop:/srv:ro".to_string()
            ]
        );
        assert!(mounts_from_lines("\n \n").unwrap().is_empty());
        let err = mounts_from_lines("shop-data:/data\n\n../etc:/etc\n").unwrap_err();
        assert_eq!(err.field(), Some("volumes"));
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("../etc:/etc"), "{err}");
    }
}
