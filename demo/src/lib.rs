//! switchyard-demo: a tiny HTTP service that blue-green tests and the
//! quickstart deploy into a slot.
//!
//! - `GET /` (and any other path but `/health`) → 200 `switchyard-demo {version}\n`
//!   with header `x-app-version: {version}`.
//! - `GET /health` → 200 `{"status":"ok","version":…}`, or 503
//!   `{"status":"failing",…}` when the build is told to fail health.
//! - `GET /config` → `{"greeting":…,"api_secret_sha256":…}`: the `GREETING`
//!   variable and the SHA-256 of the `API_SECRET` variable (never the
//!   secret itself), so tests and people can see what configuration a slot
//!   started with.
//!
//! Configuration: `PORT` (required), `HOST` (the address to listen on, default `127.0.0.1`; a container image sets `0.0.0.0`),
//! `--app-version` / `APP_VERSION` (default `dev`). How a build can be told to
//! misbehave — by env var or by the version's build metadata, e.g.
//! `2.0.0+unhealthy` — is described in [`knobs`].

pub mod app;
pub mod knobs;

pub use app::{app, DemoState};
pub use knobs::{KnobError, Knobs};

pub const DEFAULT_BIND: &str = "127.0.0.1";
pub const DEFAULT_VERSION: &str = "dev";

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub version: String,
    pub knobs: Knobs,
    /// What `/config` reports.
    pub shown: app::ShownConfig,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("PORT is not set: the port to listen on is required (e.g. PORT=8080)")]
    MissingPort,
    #[error("PORT={0:?} is not a port number (0-65535)")]
    InvalidPort(String),
    #[error(transparent)]
    Knob(#[from] KnobError),
}

impl Config {
    /// `app_version` is the `--app-version` flag (clap already falls back to
    /// `APP_VERSION`); `env` looks up the other variables.
    pub fn from_env(
        app_version: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let port = match env("PORT") {
            None => return Err(ConfigError::MissingPort),
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| ConfigError::InvalidPort(p.clone()))?,
        };
        let host = env("HOST")
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        let version = app_version
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_VERSION.to_string());
        let knobs = Knobs::from_env_and_version(&version, &env)?;
        let shown = app::ShownConfig::from_env(&env);
        Ok(Config {
            host,
            port,
            version,
            knobs,
            shown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn port_is_required_and_must_be_a_number() {
        assert_eq!(
            Config::from_env(None, env_of(&[])).unwrap_err(),
            ConfigError::MissingPort
        );
        assert_eq!(
            Config::from_env(None, env_of(&[("PORT", "http")])).unwrap_err(),
            ConfigError::InvalidPort("http".into())
        );
        assert!(Config::from_env(None, env_of(&[("PORT", "70000")])).is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_env(None, env_of(&[("PORT", "8080")])).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
        assert_eq!(c.version, "dev");

        let c = Config::from_env(
            Some("1.0.0+unhealthy".into()),
            env_of(&[("PORT", "9000"), ("HOST", "0.0.0.0")]),
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 9000));
        assert!(c.knobs.fail_health);
    }
}
