//! `/api/v1/audit`: the audit log, searched and paged like the audit page.

use super::auth::ApiActor;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Query, State};
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

/// One page of matching entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn search(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        environment: q.environment,
        since: q.since,
        until: q.until,
        text: q.text,
        before: q.before,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit", "limit is 1 to 500"));
    }
    Ok(Json(st.engine.audit_search(&actor, &filter, limit).await?))
}
