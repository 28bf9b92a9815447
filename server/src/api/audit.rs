//! `/api/v1/audit`: the audit log, searched and paged like the audit page.

use super::auth::ApiActor;
use super::problem::{ApiResult, Problem};
use crate::audit_export::{self, Format};
use app::state::AppState;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use model::{AuditFilter, AuditPage};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// Required for a token limited to some environments.
    environment: Option<String>,
    /// RFC 3339 or a prefix of it (`2026-11-22`).
    since: Option<String>,
    until: Option<String>,
    /// Words to find anywhere in the entry.
    text: Option<String>,
    /// The `next_before` of the previous page.
    before: Option<i64>,
    /// Entries per page (1 to 500; 100 when absent).
    limit: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            environment: self.environment.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            text: self.text.clone(),
            before: self.before,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (the default: a signed checkpoint and the proof that
    /// `switchyard audit verify-export` checks offline) or `csv` (for
    /// spreadsheets, formula-like cells defused).
    format: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    /// Required for a token limited to some environments.
    environment: Option<String>,
    /// RFC 3339 or a prefix of it (`2026-11-22`).
    since: Option<String>,
    until: Option<String>,
    text: Option<String>,
}

/// Every matching entry as one file, newest first, streamed: the same
/// export as the audit page's download links, for a token.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportQuery),
    responses(
        (status = 200, content_type = "application/x-ndjson",
            description = "JSON Lines: a signed checkpoint, then the entries (format=jsonl)"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)))]
pub async fn export(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        environment: q.environment,
        since: q.since,
        until: q.until,
        text: q.text,
        before: None,
    };
    let engine = st.engine.clone();
    // Access and the filter are decided before the first byte: a refusal is
    // a problem document, not a cut-off file.
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => Format::JsonLines,
        "csv" => Format::Csv,
        _ => return Err(Problem::invalid("format", "format is jsonl or csv")),
    };
    let body = match format {
        Format::JsonLines => audit_export::verifiable(engine, actor, filter).await?,
        Format::Csv => audit_export::csv(engine, actor, filter).await?,
    };
    Ok(audit_export::download(format, body))
}

/// One page of matching entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn search(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let filter = q.filter();
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit", "limit is 1 to 500"));
    }
    Ok(Json(st.engine.audit_search(&actor, &filter, limit).await?))
}
