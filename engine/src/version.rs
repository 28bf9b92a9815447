//! What a version string may be: versions name directories and appear in
//! commands (runtimes, artifact templates), so they keep to a safe alphabet.

use crate::error::{Error, Result};

/// Refuses a version that is empty, too long or outside `[A-Za-z0-9.+_-]`.
pub fn validate_version(version: &str) -> Result<()> {
    if version.is_empty() {
        return Err(Error::invalid("version", "version is required"));
    }
    let ok = version.len() <= 64
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        && !version.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "version",
            format!("version {version:?} may only use letters, digits and . - _ + (at most 64)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_they_reach_a_command_line() {
        for ok in ["v1", "2.0.0", "2.0.0-rc.1+build.7", "release_42"] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "v1; rm -rf /",
            "v 2",
            ".hidden",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(
                    validate_version(bad),
                    Err(Error::InvalidInput {
                        field: "version",
                        ..
                    })
                ),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            validate_version("").unwrap_err().to_string(),
            "version is required"
        );
    }
}
