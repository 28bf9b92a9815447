//! `GET /audit/export.{jsonl,csv}`: the audit log under the page's filter,
//! streamed page by page so a million entries never sit in memory at once.
//! The JSON Lines export carries the proof an auditor verifies offline
//! (`switchyard audit verify-export`); the CSV is for reading.

use app::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::Actor;
use model::{AuditEntryView, AuditFilter};
use std::collections::HashMap;
use tower_sessions::Session;

const CHUNK: i64 = 1000;

#[derive(Clone, Copy)]
pub enum Format {
    JsonLines,
    Csv,
}

const CSV_HEADER: &str =
    "id,at,actor_kind,actor_name,source_ip,action,environment,target,reason,result,details,hash\n";

/// Quotes a CSV field when needed, and defuses cells a spreadsheet would run
/// as a formula (`=`, `+`, `-`, `@`, also behind leading spaces, tabs or
/// line breaks, which spreadsheets skip), since actors choose some of this
/// text.
fn csv_field(v: &str) -> String {
    let formula = v
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with(['=', '+', '-', '@']);
    let v = if formula || v.starts_with(['\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv_line(e: &AuditEntryView) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        e.id.to_string(),
        e.at.clone(),
        e.actor_kind.clone(),
        e.actor_name.clone(),
        o(&e.source_ip),
        e.action.clone(),
        o(&e.environment),
        o(&e.target),
        o(&e.reason),
        e.result.clone(),
        e.details.clone(),
        e.hash.clone(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn render_csv(entries: &[AuditEntryView]) -> String {
    entries.iter().map(csv_line).collect()
}

pub async fn export(
    format: Format,
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let user = match app::auth::ssr::user_of(&state, &session).await {
        Ok(Some(u)) => u,
        Ok(None) => return (StatusCode::UNAUTHORIZED, "please sign in").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let actor = Actor::user(user);
    let filter = app::audit::filter_from(|k| params.get(k).cloned());
    let engine = state.engine.clone();
    // Access (and the filter) are checked before the response starts
    // streaming: a refusal is a status, not a cut-off file.
    let body = match format {
        Format::JsonLines => verifiable(engine, actor, filter).await,
        Format::Csv => csv(engine, actor, filter).await,
    };
    let body = match body {
        Ok(b) => b,
        Err(e @ engine::Error::Forbidden { .. }) => {
            return (StatusCode::FORBIDDEN, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "audit export");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    download(format, body)
}

/// The streamed file as a download.
pub(crate) fn download(format: Format, body: Body) -> Response {
    let (content_type, name) = match format {
        Format::JsonLines => ("application/x-ndjson", "switchyard-audit.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "switchyard-audit.csv"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A stream's failure past the first byte: logged, and the download breaks
/// off (the client sees an incomplete transfer, never a silently short file).
fn stopped(e: engine::Error) -> std::io::Error {
    tracing::error!(error = %e, "audit export stopped");
    std::io::Error::other("audit export failed")
}

/// JSON Lines an auditor can verify offline: a freshly signed checkpoint,
/// then the entries under the filter, newest first, with links standing for
/// the ones left out (the format is `engine::audit::export`'s).
pub(crate) async fn verifiable(
    engine: engine::Engine,
    actor: Actor,
    filter: AuditFilter,
) -> Result<Body, engine::Error> {
    let (head, cursor) = engine.audit_export_start(&actor, &filter).await?;
    let stream =
        futures_util::stream::unfold((Some(head), Some(cursor)), move |(pending, cursor)| {
            let (engine, actor, filter) = (engine.clone(), actor.clone(), filter.clone());
            async move {
                if let Some(head) = pending {
                    return Some((Ok(Bytes::from(head)), (None, cursor)));
                }
                let mut cursor = cursor?;
                match engine
                    .audit_export_block(&actor, &filter, &mut cursor)
                    .await
                {
                    Ok(Some(block)) => Some((Ok(Bytes::from(block)), (None, Some(cursor)))),
                    Ok(None) => None,
                    Err(e) => Some((Err(stopped(e)), (None, None))),
                }
            }
        });
    Ok(Body::from_stream(stream))
}

/// CSV for spreadsheets, page by page under the filter, newest first.
pub(crate) async fn csv(
    engine: engine::Engine,
    actor: Actor,
    filter: AuditFilter,
) -> Result<Body, engine::Error> {
    let first = engine.audit_search(&actor, &filter, CHUNK).await?;
    let first_chunk = CSV_HEADER.to_string() + &render_csv(&first.entries);
    let stream = futures_util::stream::unfold(
        (Some(first_chunk), first.next_before),
        move |(pending, next)| {
            let (engine, actor, filter) = (engine.clone(), actor.clone(), filter.clone());
            async move {
                if let Some(chunk) = pending {
                    return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (None, next)));
                }
                let f = AuditFilter {
                    before: Some(next?),
                    ..filter
                };
                match engine.audit_search(&actor, &f, CHUNK).await {
                    Ok(p) => Some((
                        Ok(Bytes::from(render_csv(&p.entries))),
                        (None, p.next_before),
                    )),
                    Err(e) => Some((Err(stopped(e)), (None, None))),
                }
            }
        },
    );
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("\t=1+1"), "'\t=1+1");
        assert_eq!(csv_field(" @SUM(A1)"), "' @SUM(A1)");
        assert_eq!(csv_field("\r=cmd"), "\"'\r=cmd\"");
        assert_eq!(csv_field("\n+1"), "\"'\n+1\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
