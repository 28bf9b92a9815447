//! The audit log page: newest first, filtered by actor, action, environment,
//! time range and free text, paged by keyset, exportable as JSON Lines or CSV.
//! Filters live in the query string, so a filtered view is a link to share.

use crate::components::page_shell;
use crate::error::AppError;
use crate::format::short_time;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use model::{
    audit_href, query_value, AuditEntryView, AuditFilter, AuditPage, AuditSealView, DetailField,
    SessionUser,
};

pub const PAGE_SIZE: i64 = 50;

/// The fields of each entry's details, in the order of the page's entries:
/// read from the stored JSON on the server, so the browser's code carries no
/// JSON reader for them.
pub type DetailFields = Vec<Vec<DetailField>>;

#[server(name = LoadAuditPage, endpoint = "audit_page")]
pub async fn load_audit_page(
    // An empty filter encodes to nothing at all: default it rather than fail.
    #[server(default)] filter: AuditFilter,
) -> Result<(SessionUser, AuditPage, AuditSealView, DetailFields), AppError> {
    use crate::auth::ssr::{signed_in, state};
    crate::error::respond(
        async move {
            let engine = &state()?.engine;
            let (actor, user) = signed_in().await?;
            let page = engine.audit_search(&actor, &filter, PAGE_SIZE).await?;
            let seal = engine.audit_seal(&actor).await?;
            let fields = page
                .entries
                .iter()
                .map(|e| model::detail_fields(&e.details))
                .collect();
            Ok((user, page, seal, fields))
        }
        .await,
    )
}

/// Query-string keys, shared by the filter form, paging and export links.
pub const KEYS: [&str; 6] = ["actor", "action", "environment", "since", "until", "q"];

pub fn filter_from(get: impl Fn(&str) -> Option<String>) -> AuditFilter {
    let field = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    AuditFilter {
        actor: field("actor"),
        action: field("action"),
        environment: field("environment"),
        since: field("since"),
        until: field("until"),
        text: field("q"),
        before: get("before").and_then(|b| b.parse().ok()),
    }
}

fn query_string(f: &AuditFilter, before: Option<i64>) -> String {
    let values = [
        &f.actor,
        &f.action,
        &f.environment,
        &f.since,
        &f.until,
        &f.text,
    ];
    let mut parts: Vec<String> = KEYS
        .iter()
        .zip(values)
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", query_value(v))))
        .collect();
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    parts.join("&")
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(|q| filter_from(|k| q.get(k))));
    let page = Resource::new(move || filter.get(), load_audit_page);
    page_shell(page, None, move |(user, page, seal, fields)| {
        let f = filter.get_untracked();
        let contents = view! {
            <h1>"Audit log"</h1>
            <Seal seal/>
            <FilterForm filter=f.clone()/>
            <AuditTable page fields filter=f/>
        };
        (user, contents)
    })
}

/// The newest signed checkpoint and the last verification; for admins, a
/// banner saying what failed.
#[component]
fn Seal(seal: AuditSealView) -> impl IntoView {
    let status = match (seal.intact, &seal.checked_at) {
        (Some(true), Some(at)) => format!("verified {}", short_time(at)),
        (Some(false), Some(at)) => format!("verification FAILED {}", short_time(at)),
        _ => "not verified yet".to_string(),
    };
    let newest = match &seal.newest {
        Some(c) => format!(
            "Newest signed checkpoint: #{} of {} vouches for {} entries",
            c.seq,
            short_time(&c.at),
            c.entries
        ),
        None => "No signed checkpoint yet".to_string(),
    };
    view! {
        {seal.problem.map(|p| view! {
            <p class="banner seal-broken" role="alert" data-testid="audit-seal-broken">
                "The audit log failed verification: " {p}
                " Run `switchyard audit verify` on the console's machine, and compare a copy of the checkpoints kept elsewhere."
            </p>
        })}
        <p class="seal" data-testid="audit-seal">{newest} " · " {status}</p>
    }
    .into_any()
}

/// A bound as a date-time picker shows it: a whole day (`2026-11-22`, as
/// links and older bookmarks say it) becomes its first or last minute,
/// which the picker can show and which means the same; anything else is
/// kept as it was typed.
fn picker(bound: &Option<String>, day_edge: &str) -> String {
    match bound.as_deref().map(str::trim) {
        Some(day) if day.len() == 10 && day.as_bytes()[4] == b'-' => format!("{day}T{day_edge}"),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[component]
fn FilterForm(filter: AuditFilter) -> impl IntoView {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    view! {
        // GET: filtering changes nothing, and the result is a shareable URL.
        <form method="get" action="/audit" class="audit-filter" data-testid="audit-filter">
            <label>"Actor" <input type="text" name="actor" value=v(&filter.actor)/></label>
            <label>"Action" <input type="text" name="action" placeholder="deploy, auth.login…" value=v(&filter.action)/></label>
            <label>"Environment" <input type="text" name="environment" value=v(&filter.environment)/></label>
            <label>"From (UTC)" <input type="datetime-local" name="since" value=picker(&filter.since, "00:00") data-testid="audit-since"/></label>
            <label>"To (UTC)" <input type="datetime-local" name="until" value=picker(&filter.until, "23:59") data-testid="audit-until"/></label>
            <label>"Text" <input type="text" name="q" placeholder="words anywhere" value=v(&filter.text)/></label>
            <button type="submit">"Filter"</button>
            <a href="/audit">"Clear"</a>
        </form>
    }
    .into_any()
}

#[component]
fn AuditTable(page: AuditPage, fields: DetailFields, filter: AuditFilter) -> impl IntoView {
    let export = query_string(
        &AuditFilter {
            before: None,
            ..filter.clone()
        },
        None,
    );
    let next = page
        .next_before
        .map(|b| format!("/audit?{}", query_string(&filter, Some(b))));
    let empty = page.entries.is_empty();
    view! {
        <p class="export">
            "Export this view: "
            <a href=format!("/audit/export.jsonl?{export}") download="" data-testid="export-jsonl">"JSON Lines"</a>
            " · "
            <a href=format!("/audit/export.csv?{export}") download="" data-testid="export-csv">"CSV"</a>
        </p>
        {empty.then(|| view! { <p class="notice">"No entries match."</p> })}
        <table class="audit" data-testid="audit-table">
            <thead>
                <tr>
                    <th>"#"</th><th>"When (UTC)"</th><th>"Actor"</th><th>"From"</th><th>"Action"</th>
                    <th>"Environment"</th><th>"Target"</th><th>"Result"</th><th>"Reason / details"</th>
                </tr>
            </thead>
            <tbody>
                {page
                    .entries
                    .into_iter()
                    .zip(fields.into_iter().chain(std::iter::repeat_with(Vec::new)))
                    .map(|(e, fields)| view! { <AuditRow e fields/> })
                    .collect_view()}
            </tbody>
        </table>
        {next.map(|href| view! { <a class="older" href=href data-testid="audit-older">"Older entries →"</a> })}
    }
    .into_any()
}

#[component]
fn AuditRow(e: AuditEntryView, fields: Vec<DetailField>) -> impl IntoView {
    let when = e.at.replace('T', " ").trim_end_matches('Z').to_string();
    let actor_href = audit_href("actor", &e.actor_name);
    let environment = e.environment.clone().map(|name| {
        let href = audit_href("environment", &name);
        view! { <a href=href title="Entries of this environment">{name}</a> }
    });
    view! {
        <tr class=format!("result-{}", e.result) data-audit-id=e.id>
            <td>{e.id}</td>
            <td>{when}</td>
            <td>
                <a href=actor_href title="Entries of this actor">{e.actor_name.clone()}</a>
                <span class="muted">{format!(" ({})", e.actor_kind)}</span>
            </td>
            <td>{e.source_ip.clone().unwrap_or_default()}</td>
            <td>{e.action.clone()}</td>
            <td>{environment}</td>
            <td>{e.target.clone().unwrap_or_default()}</td>
            <td>{e.result.clone()}</td>
            <td>
                <details data-testid="audit-entry">
                    <summary>{e.reason.clone().unwrap_or_else(|| "details".into())}</summary>
                    <DetailList fields/>
                    <p class="hash">"hash " <code>{e.hash.clone()}</code></p>
                </details>
            </td>
        </tr>
    }
    // Erased: the row's nested type is too deep for the browser build's
    // layout queries otherwise.
    .into_any()
}

/// An entry's details as a list of fields; a value that names a deployment,
/// a release, a person or an environment links to it.
#[component]
fn DetailList(fields: Vec<DetailField>) -> impl IntoView {
    let empty = fields.is_empty();
    view! {
        {empty.then(|| view! { <p class="muted">"No details."</p> })}
        <dl class="audit-details" data-testid="audit-details">
            {fields
                .into_iter()
                .map(|f| {
                    let value = match f.href {
                        Some(href) => view! { <a href=href>{f.value}</a> }.into_any(),
                        None => view! { <span>{f.value}</span> }.into_any(),
                    };
                    view! { <dt>{f.key}</dt> <dd>{value}</dd> }
                })
                .collect_view()}
        </dl>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_day_shows_in_the_picker_as_its_first_or_last_minute() {
        let day = Some("2026-11-22".to_string());
        assert_eq!(picker(&day, "00:00"), "2026-11-22T00:00");
        assert_eq!(picker(&day, "23:59"), "2026-11-22T23:59");
        let minute = Some("2026-11-22T18:05".to_string());
        assert_eq!(picker(&minute, "00:00"), "2026-11-22T18:05");
        assert_eq!(picker(&None, "00:00"), "");
    }

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let f = AuditFilter {
            actor: Some("dana".into()),
            action: Some("deploy".into()),
            environment: None,
            since: Some("2026-11-22T10:00".into()),
            until: None,
            text: Some("checkout & 500s".into()),
            before: None,
        };
        let qs = query_string(&f, Some(42));
        assert_eq!(
            qs,
            "actor=dana&action=deploy&since=2026-11-22T10%3A00&q=checkout%20%26%20500s&before=42"
        );
        let pairs: Vec<(String, String)> = qs
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), decode(v))
            })
            .collect();
        let back = filter_from(|k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone()));
        assert_eq!(
            back,
            AuditFilter {
                before: Some(42),
                ..f
            }
        );
    }

    fn decode(v: &str) -> String {
        let bytes = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
