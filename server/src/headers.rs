//! Security headers on every console response, and cache rules.
//!
//! The Content-Security-Policy allows scripts only from the console itself
//! and inline scripts carrying this response's nonce (the hydration script and
//! Leptos's streamed resource chunks carry it), so markup that slipped into a
//! page still could not run. Pages and API answers are `no-store`: they show
//! signed-in data that must not stay in a shared or back-button cache.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use leptos::nonce::Nonce;

/// The policy for a response whose inline scripts carry `nonce`.
/// `'wasm-unsafe-eval'` lets the browser compile the console's WebAssembly;
/// it does not allow `eval` of JavaScript.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

pub async fn security_headers(mut req: Request, next: Next) -> Response {
    // A fresh nonce per response; the page shell reads it from here.
    let nonce = Nonce::new();
    req.extensions_mut().insert(nonce.clone());
    let is_asset = req.uri().path().starts_with("/pkg/") || req.uri().path() == "/favicon.png";
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let csp = content_security_policy(&nonce.to_string());
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Front-end files say for themselves how long they keep
    // (`assets.rs`); everything else is a page or an answer about people's
    // data: never stored.
    if !(is_asset && h.contains_key(CACHE_CONTROL)) {
        let cache = if is_asset {
            crate::assets::REVALIDATE
        } else {
            "no-store"
        };
        h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::content_security_policy;

    #[test]
    fn the_policy_allows_no_inline_script_without_the_nonce() {
        let p = content_security_policy("abc");
        assert!(p.contains("script-src 'self' 'nonce-abc'"));
        assert!(!p.contains("unsafe-inline"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(p.contains("object-src 'none'"));
    }
}
