//! The environment file: `[[environment]]` tables in TOML, as
//! `switchyard apply -f` reads it and `switchyard export` writes it.

use crate::error::{Error, Result};
use model::EnvironmentConfig;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    environment: Vec<EnvironmentConfig>,
}

/// The environments a file declares. A syntax error, an unknown key or a
/// wrong type is refused with its line and column.
pub fn parse(text: &str) -> Result<Vec<EnvironmentConfig>> {
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let (line, column) = line_column(text, s.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        Error::invalid("file", format!("{at}{}", e.message().trim()))
    })?;
    Ok(file.environment)
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The file that declares `envs`, as `parse` reads it back.
pub fn render(envs: &[EnvironmentConfig]) -> Result<String> {
    let body = toml::to_string(&File {
        environment: envs.to_vec(),
    })
    .map_err(|e| Error::Internal(format!("writing the environment file: {e}")))?;
    Ok(format!(
        "# Switchyard environments (`switchyard export`). Apply changes with\n\
         # `switchyard apply -f FILE`; secrets are listed by name, their values\n\
         # never leave the console (`switchyard env secret ENV NAME`).\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[environment]]
name = "shop"
runtime = "docker"
artifact = "127.0.0.1:5000/shop:{version}"
app_url = "http://127.0.0.1:8300/"
secrets = ["API_KEY"]

[environment.variables]
GREETING = "hello"

[environment.router]
admin_url = "http://127.0.0.1:9100"
token_file = "/var/lib/switchyard/proxy.token"

[environment.pipeline]
watch_window_ms = 0
"#;

    #[test]
    fn a_minimal_file_fills_in_the_defaults_and_round_trips() {
        let envs = parse(MINIMAL).unwrap();
        assert_eq!(envs.len(), 1);
        let shop = &envs[0];
        assert_eq!(shop.runtime, model::RuntimeKind::Docker);
        assert_eq!(shop.health_path, "/health");
        assert_eq!(shop.pipeline.watch_window_ms, 0);
        assert_eq!(shop.pipeline.p95_ms, 200);
        assert_eq!(shop.variables["GREETING"], "hello");
        let again = parse(&render(&envs).unwrap()).unwrap();
        assert_eq!(again, envs);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line_and_column() {
        let text = MINIMAL.replace(
            "watch_window_ms = 0",
            "watch_window_ms = 0\nwatch_windw = 3",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("line 18, column 1"), "{err}");
        assert!(err.contains("watch_windw"), "{err}");
        let err = parse("[[environment]]\nname = \"a\"\nartifcat = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("artifcat"), "{err}");
    }

    #[test]
    fn malformed_toml_and_wrong_types_name_where() {
        let err = parse("[[environment]\nname = \"a\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let text = MINIMAL.replace("watch_window_ms = 0", "watch_window_ms = \"soon\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("line 17"), "{err}");
    }
}
