//! The persisted steps of a deployment: what the pipeline did, in order, when,
//! and why a step failed. The worker writes each step as it happens so the
//! deployment's page can show progress while it runs.
//!
//! All of a run's steps are written `pending` when the deployment row is
//! created ([`plan`]); [`close`] ends a run: a step still running fails with
//! the run's error, steps never reached become `skipped`.
//!
//! Messages are shown to every signed-in role: callers pass only what a person
//! needs (versions, slots, addresses, probe results), never tokens or
//! passwords.

use crate::error::{parse_stored as parse, Result};
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{StepName, StepStatus, StepView};

/// What a step left running by a console that died says.
pub const INTERRUPTED: &str = "console stopped during this step";

/// Writes every step of a new deployment as `pending`.
pub async fn plan(pool: &Pool, deployment_id: i64, names: &[StepName]) -> Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    for (i, name) in names.iter().enumerate() {
        crate::store::query(
            "INSERT INTO deployment_steps (deployment_id, seq, name, status) VALUES (?, ?, ?, 'pending')",
        )
        .bind(deployment_id)
        .bind(i as i64 + 1)
        .bind(name.as_str())
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks a step running from now.
pub async fn start(pool: &Pool, deployment_id: i64, name: StepName) -> Result<()> {
    crate::store::query(
        "UPDATE deployment_steps SET status = 'running', started_at = ?, finished_at = NULL, message = NULL \
         WHERE deployment_id = ? AND name = ?",
    )
    .bind(crate::now())
    .bind(deployment_id)
    .bind(name.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Updates a running step's message (e.g. the in-flight count while the old
/// slot drains), so the deployment's page shows where it is.
pub async fn progress(
    pool: &Pool,
    deployment_id: i64,
    name: StepName,
    message: &str,
) -> Result<()> {
    crate::store::query(
        "UPDATE deployment_steps SET message = ? WHERE deployment_id = ? AND name = ? AND status = 'running'",
    )
    .bind(message)
    .bind(deployment_id)
    .bind(name.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a step with `status` and `message`. A step that never started gets
/// the same start and end time (a step decided at once, e.g. a skipped one).
pub async fn finish(
    pool: &Pool,
    deployment_id: i64,
    name: StepName,
    status: StepStatus,
    message: &str,
) -> Result<()> {
    let now = crate::now();
    crate::store::query(
        "UPDATE deployment_steps SET status = ?, message = ?, finished_at = ?, \
         started_at = COALESCE(started_at, ?) WHERE deployment_id = ? AND name = ?",
    )
    .bind(status.as_str())
    .bind(message)
    .bind(now)
    .bind(now)
    .bind(deployment_id)
    .bind(name.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a run: a step still running becomes `failed` with `failure` (or
/// `succeeded` when the run succeeded), steps never reached become `skipped`.
pub async fn close(pool: &Pool, deployment_id: i64, failure: Option<&str>) -> Result<()> {
    let now = crate::now();
    let mut tx = crate::store::begin_write(pool).await?;
    let (status, message) = match failure {
        Some(m) => ("failed", Some(m)),
        None => ("succeeded", None),
    };
    crate::store::query(
        "UPDATE deployment_steps SET status = ?, message = COALESCE(?, message), finished_at = ? \
         WHERE deployment_id = ? AND status = 'running'",
    )
    .bind(status)
    .bind(message)
    .bind(now)
    .bind(deployment_id)
    .execute(&mut tx)
    .await?;
    crate::store::query(
        "UPDATE deployment_steps SET status = 'skipped' WHERE deployment_id = ? AND status = 'pending'",
    )
    .bind(deployment_id)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    name: String,
    status: String,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    message: Option<String>,
}

/// A deployment's steps in order; running steps carry their elapsed time.
pub async fn list(pool: &Pool, deployment_id: i64) -> Result<Vec<StepView>> {
    let now = crate::now();
    crate::store::query_as::<Row>(
        "SELECT seq, name, status, started_at, finished_at, message FROM deployment_steps \
         WHERE deployment_id = ? ORDER BY seq",
    )
    .bind(deployment_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        let status: StepStatus = parse(&r.status)?;
        let duration_ms = match (r.started_at, r.finished_at) {
            (Some(s), Some(f)) => Some((f - s).num_milliseconds()),
            (Some(s), None) if status == StepStatus::Running => {
                Some((now - s).num_milliseconds().max(0))
            }
            _ => None,
        };
        Ok(StepView {
            seq: r.seq,
            name: r.name,
            status,
            started_at: r.started_at.map(|t| t.to_rfc3339()),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()),
            duration_ms,
            message: r.message,
        })
    })
    .collect()
}

/// When traffic last switched slots in environment `env_id`: the end of the
/// newest succeeded switch step (deploys and rollbacks alike).
pub async fn last_switch(pool: &Pool, env_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(crate::store::query_scalar::<Option<DateTime<Utc>>>(
        "SELECT MAX(s.finished_at) FROM deployment_steps s \
         JOIN deployments d ON d.id = s.deployment_id \
         WHERE d.environment_id = ? AND s.name = 'switch' AND s.status = 'succeeded'",
    )
    .bind(env_id)
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool_with_deployment() -> (Pool, i64) {
        let pool = crate::store::open("sqlite::memory:").await.unwrap();
        let env = crate::environments::create(
            &pool,
            &crate::environments::NewEnvironment::new(
                "staging",
                "http://127.0.0.1:1/",
                "/bin/true {version}",
                "http://127.0.0.1:2",
                "/nonexistent/token",
            ),
        )
        .await
        .unwrap();
        let dep = crate::deployments::begin(
            &pool,
            &crate::deployments::NewDeployment {
                environment_id: env.id,
                kind: model::DeploymentKind::Deploy,
                from_version: None,
                to_version: Some("v1"),
                from_slot: None,
                to_slot: Some(model::SlotColor::Blue),
                requested_by: None,
                reason: None,
                holder: None,
            },
        )
        .await
        .unwrap();
        (pool, dep)
    }

    #[tokio::test]
    async fn a_failure_fails_the_running_step_and_skips_the_rest() {
        let (pool, dep) = pool_with_deployment().await;
        // Every step a deploy has, in its order.
        let all = StepName::ALL;
        plan(&pool, dep, &all).await.unwrap();
        let steps = list(&pool, dep).await.unwrap();
        assert_eq!(
            steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            all.map(StepName::as_str)
        );
        assert!(steps.iter().all(|s| s.status == StepStatus::Pending
            && s.started_at.is_none()
            && s.duration_ms.is_none()));

        finish(&pool, dep, StepName::Lock, StepStatus::Succeeded, "locked")
            .await
            .unwrap();
        start(&pool, dep, StepName::Preflight).await.unwrap();
        let running = &list(&pool, dep).await.unwrap()[1];
        assert_eq!(running.status, StepStatus::Running);
        assert!(running.started_at.is_some() && running.finished_at.is_none());
        assert!(
            running.duration_ms.is_some(),
            "a running step has an elapsed time"
        );

        close(&pool, dep, Some("router unreachable")).await.unwrap();
        let steps = list(&pool, dep).await.unwrap();
        let got: Vec<_> = steps
            .iter()
            .map(|s| (s.name.as_str(), s.status, s.message.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("lock", StepStatus::Succeeded, Some("locked")),
                ("preflight", StepStatus::Failed, Some("router unreachable")),
                ("start", StepStatus::Skipped, None),
                ("health", StepStatus::Skipped, None),
                ("gates", StepStatus::Skipped, None),
                ("hold", StepStatus::Skipped, None),
                ("switch", StepStatus::Skipped, None),
                ("drain", StepStatus::Skipped, None),
                ("standby", StepStatus::Skipped, None),
            ]
        );
        assert!(steps[..2].iter().all(|s| s.finished_at.is_some()));
    }

    #[tokio::test]
    async fn the_last_switch_is_the_newest_succeeded_switch_step() {
        let (pool, dep) = pool_with_deployment().await;
        let env_id: i64 = crate::store::query_scalar("SELECT environment_id FROM deployments WHERE id = ?")
            .bind(dep)
            .fetch_one(&pool)
            .await
            .unwrap();
        plan(&pool, dep, &StepName::ALL).await.unwrap();
        assert_eq!(last_switch(&pool, env_id).await.unwrap(), None);
        // A skipped or failed switch moved nobody.
        close(&pool, dep, Some("gates failed")).await.unwrap();
        assert_eq!(last_switch(&pool, env_id).await.unwrap(), None);
        crate::store::query("UPDATE deployment_steps SET status = 'succeeded', finished_at = ? WHERE deployment_id = ? AND name = 'switch'")
            .bind(crate::now() - chrono::Duration::seconds(42))
            .bind(dep)
            .execute(&pool)
            .await
            .unwrap();
        let at = last_switch(&pool, env_id).await.unwrap().expect("a switch");
        let ago = (crate::now() - at).num_seconds();
        assert!((42..=44).contains(&ago), "{ago}");
    }
}

