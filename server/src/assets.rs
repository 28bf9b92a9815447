//! The compiled front end under `/pkg`: files served as the build left
//! them, pre-compressed when the build wrote `.br`/`.gz` beside them
//! (`scripts/setup.sh`, `build_release`), compressed on the fly otherwise;
//! cached for a year when the name carries its content's hash (cargo-leptos
//! `hash-files`), revalidated on every use when it does not.

use axum::extract::Request;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::Router;
use std::path::Path;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// For a file whose name changes whenever its content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For a file whose name stays across builds: a cheap 304 when unchanged,
/// and never an old build's file after an upgrade.
pub const REVALIDATE: &str = "no-cache";

/// Whether a `/pkg` path names a content-hashed build output:
/// `<output>.<hash>.<js|wasm|css>` (with a `.br`/`.gz` the server picks
/// itself), the hash being cargo-leptos's: an MD5 in unpadded base64url,
/// 22 characters.
pub fn is_hashed(path: &str, output_name: &str) -> bool {
    let Some(name) = path.rsplit('/').next() else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix(output_name)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    let Some((hash, ext)) = rest.split_once('.') else {
        return false;
    };
    hash.len() == 22
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && ["js", "wasm", "css"].contains(&ext)
}

/// The `/pkg` service for `site_root/pkg_dir`.
pub fn router<S: Clone + Send + Sync + 'static>(
    site_root: &Path,
    pkg_dir: &str,
    output_name: &str,
) -> Router<S> {
    let files = ServeDir::new(site_root.join(pkg_dir))
        .precompressed_br()
        .precompressed_gzip();
    let output_name: Arc<str> = output_name.into();
    Router::new()
        .nest_service(
            "/pkg",
            tower::ServiceBuilder::new()
                // Skips what ServeDir already sent compressed.
                .layer(CompressionLayer::new())
                .service(files),
        )
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let output_name = output_name.clone();
            async move {
                let hashed = is_hashed(req.uri().path(), &output_name);
                let mut res = next.run(req).await;
                if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
                    let cache = if hashed { IMMUTABLE } else { REVALIDATE };
                    res.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
                }
                res
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn only_content_hashed_build_outputs_are_immutable() {
        let h = "AbCdEfGhIjKlMnOpQr-_12";
        assert!(is_hashed(
            &format!("/pkg/switchyard.{h}.wasm"),
            "switchyard"
        ));
        assert!(is_hashed(&format!("/pkg/switchyard.{h}.js"), "switchyard"));
        assert!(is_hashed(&format!("/pkg/switchyard.{h}.css"), "switchyard"));
        assert!(!is_hashed("/pkg/switchyard.wasm", "switchyard"));
        assert!(!is_hashed("/pkg/switchyard_bg.wasm", "switchyard"));
        assert!(!is_hashed(&format!("/pkg/other.{h}.js"), "switchyard"));
        assert!(!is_hashed(
            &format!("/pkg/switchyard.{h}.json"),
            "switchyard"
        ));
        assert!(!is_hashed("/pkg/switchyard.short.js", "switchyard"));
        assert!(!is_hashed(
            "/pkg/switchyard.AbCdEfGhIjKlMnOpQr/+12.js",
            "switchyard"
        ));
    }
}
