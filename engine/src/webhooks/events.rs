//! Which audit entries are webhook events, and what each says. The audit
//! log already records everything a subscriber is told, so events are read
//! from it rather than raised beside it: nothing can be announced that was
//! not recorded, nor recorded and not announced.

use crate::audit::Entry;
use crate::error::Result;
use crate::store::Pool;
use model::{Role, WebhookEvent};
use serde_json::{json, Value};

/// One event as subscribers get it.
#[derive(Clone, Debug)]
pub(crate) struct Announcement {
    pub(crate) event: WebhookEvent,
    pub(crate) environment: String,
    pub(crate) at: String,
    pub(crate) data: Value,
    /// One line for people (the Slack format's `text`).
    pub(crate) text: String,
}

/// The events an audit entry announces (a release request announces two:
/// the request and the signatures it needs).
pub(crate) async fn announcements(pool: &Pool, e: &Entry) -> Result<Vec<Announcement>> {
    let Some(environment) = e.environment.clone() else {
        return Ok(vec![]);
    };
    if e.result == "denied" {
        return Ok(vec![]);
    }
    let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
    let base = json!({
        "environment": environment,
        "actor": e.actor_name,
        "target": e.target,
        "audit_id": e.id,
    });
    let with = |extra: Value| {
        let mut data = base.clone();
        if let (Some(d), Some(x)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(x.clone());
        }
        data
    };
    let target = e.target.clone().unwrap_or_default();
    let one = |event, data, text: String| Announcement {
        event,
        environment: environment.clone(),
        at: e.at.clone(),
        data,
        text,
    };
    let ok = e.result == "ok";
    Ok(match e.action.as_str() {
        "release.request" if ok => {
            let release = details["release"].as_i64();
            let roles = match release {
                Some(id) => signing_roles(pool, id).await?,
                None => vec![],
            };
            let version = details["version"].clone();
            let mut out = vec![one(
                WebhookEvent::ReleaseRequested,
                with(json!({ "release": release, "version": version })),
                format!(
                    "{} requested {target} ({}) for {environment}",
                    e.actor_name,
                    version.as_str().unwrap_or("?")
                ),
            )];
            if !roles.is_empty() {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                out.push(one(
                    WebhookEvent::SignatureNeeded,
                    with(json!({ "release": release, "version": version, "roles": names })),
                    format!(
                        "{target} for {environment} needs signatures from: {}",
                        names.join(", ")
                    ),
                ));
            }
            out
        }
        "release.sign" if ok => vec![one(
            WebhookEvent::ItemSigned,
            with(json!({ "item": details["item"], "title": details["title"] })),
            format!(
                "{} signed \"{}\" on {target} in {environment}",
                e.actor_name,
                details["title"].as_str().unwrap_or("?")
            ),
        )],
        "deploy.start" if ok => vec![one(
            WebhookEvent::DeployStarted,
            with(json!({ "deployment": details["deployment"], "version": e.target })),
            format!(
                "{} started deploying {target} to {environment}",
                e.actor_name
            ),
        )],
        "deploy.finish" => {
            let (event, word) = if ok {
                (WebhookEvent::DeploySucceeded, "succeeded")
            } else {
                (WebhookEvent::DeployFailed, "FAILED")
            };
            vec![one(
                event,
                with(json!({
                    "deployment": details["deployment"],
                    "version": e.target,
                    "message": details["message"],
                })),
                format!(
                    "Deploy of {target} to {environment} {word}: {}",
                    details["message"].as_str().unwrap_or("")
                ),
            )]
        }
        // The watch rolls back as the system, with the breach as its reason.
        "rollback.start"
            if ok
                && e.actor_kind == "system"
                && e.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("automatic rollback")) =>
        {
            vec![one(
                WebhookEvent::RollbackAutomatic,
                with(json!({
                    "deployment": details["deployment"],
                    "to_version": e.target,
                    "evidence": e.reason,
                })),
                format!(
                    "Automatic rollback of {environment} to {target}: {}",
                    e.reason.as_deref().unwrap_or("")
                ),
            )]
        }
        "lock.break" if ok => vec![one(
            WebhookEvent::LockBroken,
            with(json!({ "reason": e.reason, "details": details })),
            format!(
                "{} broke the deployment lock of {environment}: {}",
                e.actor_name,
                e.reason.as_deref().unwrap_or("")
            ),
        )],
        "standby.expire" if ok => vec![one(
            WebhookEvent::StandbyExpired,
            with(json!({ "slot": details["slot"], "version": e.target })),
            format!("The standby ({target}) of {environment} was stopped: its window ended"),
        )],
        _ => vec![],
    })
}

/// The roles that may sign a release's items that people sign (automatic
/// checks sign themselves): each item's role and every role above it.
async fn signing_roles(pool: &Pool, release_id: i64) -> Result<Vec<Role>> {
    let required: Vec<String> = crate::store::query_scalar(
        "SELECT DISTINCT required_role FROM release_items WHERE release_id = ? AND auto_check IS NULL",
    )
    .bind(release_id)
    .fetch_all(pool)
    .await?;
    let required: Vec<Role> = required.iter().filter_map(|r| r.parse().ok()).collect();
    Ok(Role::ALL
        .into_iter()
        .filter(|role| required.iter().any(|r| role.covers(*r)))
        .collect())
}
