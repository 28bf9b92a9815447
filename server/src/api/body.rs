//! JSON request bodies: `application/json` only (415 otherwise), unknown
//! fields refused, and a body that does not decode answered 400 naming the
//! field at fault, so no malformed value reaches the engine.

use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            let mut p = Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON (Content-Type: application/json)",
            );
            p.field = Some("content-type".into());
            return Err(p);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            let mut p = Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is too large",
            );
            p.field = Some("body".into());
            p
        })?;
        // Every body is an object: serde would also take a struct's fields
        // as an array, which no client means.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(Problem::invalid("body", "the body must be a JSON object"));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // A missing or unknown field has no path of its own: its
                // name is in the message.
                let named = inner
                    .to_string()
                    .split('`')
                    .nth(1)
                    .map(str::to_string)
                    .filter(|_| path == ".");
                let field = named.unwrap_or(if path == "." { "body".into() } else { path });
                Problem::invalid(field, format!("the body does not decode: {inner}"))
            })
    }
}
