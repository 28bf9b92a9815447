//! Forms posted by a browser without JavaScript (before the WASM arrives, or
//! with it turned off): post, redirect, get.
//!
//! Such a post asks for HTML (`Accept: text/html`, as a browser does for a
//! navigation), where the front end's own calls ask for JSON. Its answer, a
//! value or a refusal, is kept in the session as an [`app::flash::Flash`] and
//! the browser is sent back (303) to the page it posted from; that page's
//! next render takes the flash out of the session, and the page shows the
//! answer where the action shows it (`app/src/flash.rs`). A reload then
//! reloads the page; it does not post again. A live region's own fetch of
//! the page (`app::live::REFRESH_HEADER`) never takes the flash: it could
//! land between the post and the page load the flash is for.
//!
//! Functions whose answer is a secret shown once are refused before they run:
//! their answer is never written to the session store.

use app::error::AppError;
use app::flash::Flash;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// The session key of the flash.
const FLASH_KEY: &str = "switchyard.flash";

/// Largest answer kept: a server function's answer is a page's worth of
/// data at most; anything longer is replaced by a note rather than stored.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Whether `req` asks for a page (not a server function, the REST API or a
/// static file): the requests that render a flash.
pub(crate) fn is_page(method: &Method, path: &str) -> bool {
    method == Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/pkg/")
        && !path.contains('.')
}

/// The middleware: inside the session layer, outside the body check, so a
/// malformed field's 400 comes back as a flash too.
pub(crate) async fn middleware(session: Session, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_page(req.method(), &path) && !req.headers().contains_key(app::live::REFRESH_HEADER) {
        match session.remove::<Flash>(FLASH_KEY).await {
            Ok(Some(flash)) => {
                req.extensions_mut().insert(flash);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading a form's answer from the session"),
        }
        return next.run(req).await;
    }
    if !is_plain_form_post(&req) {
        return next.run(req).await;
    }
    let back = referer_path(req.headers()).unwrap_or_else(|| "/".to_string());
    let own_host = host(req.headers()).map(str::to_owned);
    if app::flash::SHOWN_ONCE.contains(&path.as_str()) {
        let refusal = AppError::Conflict(app::flash::NEEDS_JAVASCRIPT.to_string());
        let body = serde_json::to_string(&refusal).unwrap_or_default();
        let flash = Flash {
            path,
            environment: None,
            ok: false,
            body,
            fields: vec![],
        };
        return keep_and_redirect(&session, flash, &back).await;
    }
    let (req, environment, typed) = match read_fields(req).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    let ok = parts.status.as_u16() < 400;
    let body = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => serde_json::to_string(&AppError::Transport(
            "the answer was too long to show without JavaScript; reload the page".into(),
        ))
        .unwrap_or_default(),
    };
    // The function's own redirect (signing in goes to the dashboard) wins
    // over going back, unless it is Leptos's redirect back with the error
    // in the address (the flash carries it instead).
    let to = parts
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .filter(|_| ok)
        .and_then(|l| local_path(l, own_host.as_deref()))
        .unwrap_or(back);
    keep_and_redirect(
        &session,
        Flash {
            path,
            environment,
            ok,
            body,
            fields: if ok { vec![] } else { typed },
        },
        &to,
    )
    .await
}

async fn keep_and_redirect(session: &Session, flash: Flash, to: &str) -> Response {
    if let Err(e) = session.insert(FLASH_KEY, flash).await {
        // The action happened (or was refused) all the same; only its
        // message is lost.
        tracing::warn!(error = %e, "keeping a form's answer in the session");
    }
    Redirect::to(to).into_response()
}

/// A browser's own form post to a server function: POST, a form body, and
/// HTML accepted. The front end's calls accept JSON only, and the REST API
/// takes JSON bodies.
fn is_plain_form_post(req: &Request) -> bool {
    let path = req.uri().path();
    let headers = req.headers();
    req.method() == Method::POST
        && path.starts_with("/api/")
        && !path.starts_with(crate::api::PREFIX)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(app::form::is_form)
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The request, put back together; its form's `environment` field (an
/// environment's name: lower-case letters, digits and `-`, so never
/// percent-encoded; anything else is not a name and is left out); and the
/// fields a refusal keeps for the page to put back (`flash::keeps_field`).
async fn read_fields(
    req: Request,
) -> Result<(Request, Option<String>, Vec<(String, String)>), Response> {
    let (parts, body) = req.into_parts();
    // Bounded already: the console's body limit layer sits outside this one
    // (`http::MAX_BODY_BYTES`), and a longer body fails the read.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    let environment = bytes
        .split(|b| *b == b'&')
        .find_map(|pair| pair.strip_prefix(b"environment="))
        .filter(|v| {
            !v.is_empty()
                && v.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let typed = form_urlencoded::parse(&bytes)
        .filter(|(name, _)| app::flash::keeps_field(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    Ok((
        Request::from_parts(parts, Body::from(bytes)),
        environment,
        typed,
    ))
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// The page the form was on, as a path on this console (never another
/// site: the `Referer` of a same-origin post names this host).
fn referer_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    local_path(referer, host(headers))
}

/// `url` as a path on this console: a path (`/releases?x=1`), or an
/// absolute URL whose host is `host`. Leptos's error parameters
/// (`__path`, `__err`) are dropped. Anything else (another host, `//evil`,
/// a scheme we do not serve) is `None`.
fn local_path(url: &str, host: Option<&str>) -> Option<String> {
    let rest = if url.starts_with('/') && !url.starts_with("//") {
        url
    } else {
        let after_scheme = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))?;
        let (authority, rest) = match after_scheme.find('/') {
            Some(i) => after_scheme.split_at(i),
            None => (after_scheme, "/"),
        };
        if Some(authority) != host {
            return None;
        }
        rest
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            !pair.is_empty() && key != "__path" && key != "__err"
        })
        .collect();
    Some(if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    })
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_this_consoles_pages_are_gone_back_to() {
        let host = Some("127.0.0.1:3000");
        assert_eq!(local_path("/releases", host).as_deref(), Some("/releases"));
        assert_eq!(
            local_path("http://127.0.0.1:3000/audit?actor=dana#x", host).as_deref(),
            Some("/audit?actor=dana")
        );
        assert_eq!(
            local_path("http://127.0.0.1:3000", host).as_deref(),
            Some("/")
        );
        assert_eq!(local_path("http://evil.example/x", host), None);
        assert_eq!(local_path("//evil.example/x", host), None);
        assert_eq!(local_path("javascript:alert(1)", host), None);
        assert_eq!(local_path("https://127.0.0.1:3000/", None), None);
    }

    #[test]
    fn leptos_error_parameters_are_dropped() {
        assert_eq!(
            local_path("/?__path=%2Fapi%2Fdeploy&__err=eyJ9&env=prod", None).as_deref(),
            Some("/?env=prod")
        );
        assert_eq!(
            local_path("/releases?__err=x", None).as_deref(),
            Some("/releases")
        );
    }
}
