//! Failure knobs: how a demo build misbehaves on purpose.
//!
//! Knobs come from two places. The version's semver build metadata lets a "bad
//! build" be deployed from the console by version string alone:
//!
//! | build metadata | effect                                   |
//! |----------------|------------------------------------------|
//! | `+unhealthy`   | `GET /health` answers 503                |
//! | `+slow`        | sleeps 3000 ms before binding the port   |
//! | `+crash`       | exits with code 1 at start               |
//! | `+errors`      | error rate 0.5 (every 2nd request → 500) |
//! | `+laggy`       | adds 300 ms to every non-health response |
//!
//! Identifiers combine with dots, as semver allows: `2.0.0+slow.unhealthy`.
//!
//! Environment variables override the version's knobs when they are set:
//! `DEMO_STARTUP_DELAY_MS`, `DEMO_FAIL_HEALTH` (`1`/`0`), `DEMO_ERROR_RATE`
//! (0.0–1.0), `DEMO_LATENCY_MS`, `DEMO_EXIT_AT_START` (`1`/`0`).

use std::time::Duration;

const SLOW_STARTUP: Duration = Duration::from_millis(3000);
const LAGGY_LATENCY: Duration = Duration::from_millis(300);
const ERRORS_RATE: f64 = 0.5;

#[derive(Clone, Debug, PartialEq)]
pub struct Knobs {
    pub startup_delay: Duration,
    pub fail_health: bool,
    /// Fraction of non-health requests answered 500, in 0.0..=1.0.
    pub error_rate: f64,
    pub latency: Duration,
    pub exit_at_start: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            startup_delay: Duration::ZERO,
            fail_health: false,
            error_rate: 0.0,
            latency: Duration::ZERO,
            exit_at_start: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KnobError {
    #[error("{name}={value:?} is not a number of milliseconds")]
    NotMillis { name: &'static str, value: String },
    #[error("{name}={value:?} is not a fraction between 0.0 and 1.0")]
    NotFraction { name: &'static str, value: String },
    #[error("{name}={value:?} is not a flag (use 1 or 0)")]
    NotFlag { name: &'static str, value: String },
}

impl Knobs {
    /// Knobs for `version`, with `env` (a variable lookup, so tests need not
    /// touch the process environment) overriding the build-metadata ones.
    pub fn from_env_and_version(
        version: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Knobs, KnobError> {
        let mut knobs = Knobs::default();
        for tag in build_metadata(version) {
            match tag {
                "unhealthy" => knobs.fail_health = true,
                "slow" => knobs.startup_delay = SLOW_STARTUP,
                "crash" => knobs.exit_at_start = true,
                "errors" => knobs.error_rate = ERRORS_RATE,
                "laggy" => knobs.latency = LAGGY_LATENCY,
                // Other metadata (commit hashes, build numbers) is legitimate.
                _ => {}
            }
        }

        if let Some(v) = env("DEMO_STARTUP_DELAY_MS") {
            knobs.startup_delay = millis("DEMO_STARTUP_DELAY_MS", &v)?;
        }
        if let Some(v) = env("DEMO_FAIL_HEALTH") {
            knobs.fail_health = flag("DEMO_FAIL_HEALTH", &v)?;
        }
        if let Some(v) = env("DEMO_ERROR_RATE") {
            knobs.error_rate = fraction("DEMO_ERROR_RATE", &v)?;
        }
        if let Some(v) = env("DEMO_LATENCY_MS") {
            knobs.latency = millis("DEMO_LATENCY_MS", &v)?;
        }
        if let Some(v) = env("DEMO_EXIT_AT_START") {
            knobs.exit_at_start = flag("DEMO_EXIT_AT_START", &v)?;
        }
        Ok(knobs)
    }

    /// Every how many non-health requests one fails: ⌈1/rate⌉, `None` for a
    /// zero rate. A counter rather than randomness keeps tests repeatable.
    pub fn fail_every(&self) -> Option<u64> {
        if self.error_rate <= 0.0 {
            None
        } else {
            Some((1.0 / self.error_rate).ceil() as u64)
        }
    }

    /// Whether the `n`-th (1-based) non-health request is answered 500.
    pub fn fails_request(&self, n: u64) -> bool {
        self.fail_every()
            .is_some_and(|every| n.is_multiple_of(every))
    }
}

/// The identifiers after the first `+` of a semver version.
fn build_metadata(version: &str) -> impl Iterator<Item = &str> {
    version
        .split_once('+')
        .map(|(_, meta)| meta)
        .unwrap_or("")
        .split(['.', '+'])
        .filter(|s| !s.is_empty())
}

fn millis(name: &'static str, value: &str) -> Result<Duration, KnobError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| KnobError::NotMillis {
            name,
            value: value.to_string(),
        })
}

fn fraction(name: &'static str, value: &str) -> Result<f64, KnobError> {
    match value.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(KnobError::NotFraction {
            name,
            value: value.to_string(),
        }),
    }
}

fn flag(name: &'static str, value: &str) -> Result<bool, KnobError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(KnobError::NotFlag {
            name,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn plain_version_has_no_knobs() {
        let knobs = Knobs::from_env_and_version("1.2.3", no_env).unwrap();
        assert_eq!(knobs, Knobs::default());
        assert_eq!(knobs.fail_every(), None);
        assert!(!knobs.fails_request(1));
    }

    #[test]
    fn build_metadata_selects_knobs() {
        let k = Knobs::from_env_and_version("2.0.0+unhealthy", no_env).unwrap();
        assert!(k.fail_health);
        let k = Knobs::from_env_and_version("2.0.0+slow", no_env).unwrap();
        assert_eq!(k.startup_delay, Duration::from_millis(3000));
        let k = Knobs::from_env_and_version("2.0.0+crash", no_env).unwrap();
        assert!(k.exit_at_start);
        let k = Knobs::from_env_and_version("2.0.0+errors", no_env).unwrap();
        assert_eq!(k.error_rate, 0.5);
        let k = Knobs::from_env_and_version("2.0.0+laggy", no_env).unwrap();
        assert_eq!(k.latency, Duration::from_millis(300));
    }

    #[test]
    fn build_metadata_identifiers_combine_and_unknown_ones_are_ignored() {
        let k = Knobs::from_env_and_version("2.0.0-rc.1+abc123.slow.unhealthy", no_env).unwrap();
        assert!(k.fail_health);
        assert_eq!(k.startup_delay, Duration::from_millis(3000));
        assert!(!k.exit_at_start);
        // A pre-release named like a knob is not build metadata.
        let k = Knobs::from_env_and_version("2.0.0-unhealthy", no_env).unwrap();
        assert!(!k.fail_health);
    }

    #[test]
    fn env_overrides_version() {
        let env = env_of(&[
            ("DEMO_FAIL_HEALTH", "0"),
            ("DEMO_STARTUP_DELAY_MS", "10"),
            ("DEMO_ERROR_RATE", "0.25"),
            ("DEMO_LATENCY_MS", "7"),
            ("DEMO_EXIT_AT_START", "1"),
        ]);
        let k = Knobs::from_env_and_version("1.0.0+unhealthy.slow.errors", env).unwrap();
        assert!(!k.fail_health);
        assert_eq!(k.startup_delay, Duration::from_millis(10));
        assert_eq!(k.error_rate, 0.25);
        assert_eq!(k.latency, Duration::from_millis(7));
        assert!(k.exit_at_start);
    }

    #[test]
    fn error_rate_is_deterministic() {
        let k = |rate: &str| {
            Knobs::from_env_and_version("dev", env_of(&[("DEMO_ERROR_RATE", rate)])).unwrap()
        };
        assert_eq!(k("0.5").fail_every(), Some(2));
        assert_eq!(k("0.3").fail_every(), Some(4));
        assert_eq!(k("1").fail_every(), Some(1));
        assert_eq!(k("0").fail_every(), None);
        let half = k("0.5");
        let failed: Vec<u64> = (1..=6).filter(|&n| half.fails_request(n)).collect();
        assert_eq!(failed, vec![2, 4, 6]);
        assert!((1..=5).all(|n| k("1.0").fails_request(n)));
    }

    #[test]
    fn invalid_values_are_rejected_with_the_variable_name() {
        let err =
            Knobs::from_env_and_version("dev", env_of(&[("DEMO_ERROR_RATE", "1.5")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DEMO_ERROR_RATE=\"1.5\" is not a fraction between 0.0 and 1.0"
        );
        assert!(Knobs::from_env_and_version("dev", env_of(&[("DEMO_LATENCY_MS", "-3")])).is_err());
        assert!(
            Knobs::from_env_and_version("dev", env_of(&[("DEMO_FAIL_HEALTH", "maybe")])).is_err()
        );
        assert!(Knobs::from_env_and_version("dev", env_of(&[("DEMO_ERROR_RATE", "NaN")])).is_err());
    }
}
