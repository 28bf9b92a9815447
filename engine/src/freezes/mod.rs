//! Freeze windows: times when an environment takes no deploys — a holiday,
//! every weekend — with the reason people are shown. Rollbacks always go
//! through (they are the way out); an admin may deploy anyway with a reason,
//! which the audit log keeps (`freeze.override`).

mod schedule;

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{parse_stored, Error, Result};
use crate::rbac::Action;
use crate::store::Pool;
use model::{FreezeKind, FreezeView, NewFreeze};
use schedule::Schedule;

const MAX_REASON: usize = 500;

#[derive(sqlx::FromRow)]
struct FreezeRow {
    id: i64,
    reason: String,
    kind: String,
    starts_local: Option<String>,
    ends_local: Option<String>,
    days: Option<String>,
    start_time: Option<String>,
    duration_minutes: Option<i64>,
    time_zone: String,
    created_by: String,
    created_at: String,
}

impl FreezeRow {
    fn written(&self) -> Result<NewFreeze> {
        Ok(NewFreeze {
            reason: self.reason.clone(),
            kind: parse_stored(&self.kind)?,
            starts: self.starts_local.clone(),
            ends: self.ends_local.clone(),
            days: self.days.clone(),
            start_time: self.start_time.clone(),
            duration_minutes: self.duration_minutes.map(|m| m as u32),
            time_zone: Some(self.time_zone.clone()),
        })
    }

    fn view(&self, environment: &str, now: chrono::DateTime<chrono::Utc>) -> Result<FreezeView> {
        let written = self.written()?;
        let schedule = Schedule::parse(&written)
            .map_err(|e| Error::Internal(format!("stored freeze window {}: {e}", self.id)))?;
        Ok(FreezeView {
            id: self.id,
            environment: environment.to_string(),
            reason: self.reason.clone(),
            kind: written.kind,
            schedule: schedule.describe(),
            active_until: schedule.holds_until(now).map(crate::audit::timestamp),
            next_start: schedule.next_start(now).map(crate::audit::timestamp),
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
        })
    }
}

async fn rows(pool: &Pool, env_id: i64) -> Result<Vec<FreezeRow>> {
    Ok(crate::store::query_as::<FreezeRow>(
        "SELECT id, reason, kind, starts_local, ends_local, days, start_time, duration_minutes, \
         time_zone, created_by, created_at FROM freeze_windows WHERE environment_id = ? ORDER BY id",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?)
}

impl Engine {
    /// An environment's freeze windows, and which holds now.
    pub async fn freezes(&self, actor: &Actor, env_name: &str) -> Result<Vec<FreezeView>> {
        self.authorize(actor, Action::ViewEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let now = crate::now();
        rows(self.pool(), env.id)
            .await?
            .iter()
            .map(|r| r.view(&env.name, now))
            .collect()
    }

    /// Adds a freeze window (admins), checked field by field and audited.
    pub async fn add_freeze(
        &self,
        actor: &Actor,
        env_name: &str,
        new: &NewFreeze,
    ) -> Result<FreezeView> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let reason = new.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(Error::invalid(
                "reason",
                format!("say why deploys stop (1 to {MAX_REASON} characters)"),
            ));
        }
        let schedule = Schedule::parse(new)?;
        let (once, weekly) = (new.kind == FreezeKind::Once, new.kind == FreezeKind::Weekly);
        let trimmed = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_string);
        let id = crate::store::query(
            "INSERT INTO freeze_windows (environment_id, reason, kind, starts_local, ends_local, \
             days, start_time, duration_minutes, time_zone, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(env.id)
        .bind(reason)
        .bind(new.kind.as_str())
        .bind(once.then(|| trimmed(&new.starts)).flatten())
        .bind(once.then(|| trimmed(&new.ends)).flatten())
        .bind(
            weekly
                .then(|| trimmed(&new.days).map(|d| d.to_ascii_lowercase()))
                .flatten(),
        )
        .bind(weekly.then(|| trimmed(&new.start_time)).flatten())
        .bind(
            weekly
                .then_some(new.duration_minutes)
                .flatten()
                .map(i64::from),
        )
        .bind(schedule.zone.name())
        .bind(actor.name())
        .bind(crate::audit::timestamp(crate::now()))
        .returning_id(self.pool())
        .await?;
        let view = rows(self.pool(), env.id)
            .await?
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::Internal("the freeze window just added is gone".into()))?
            .view(&env.name, crate::now())?;
        let mut ev = actor.event("freeze.add", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.reason = Some(reason.to_string());
        ev.details = serde_json::json!({ "freeze_id": id, "schedule": view.schedule });
        self.audit(ev).await?;
        Ok(view)
    }

    /// Removes a freeze window (admins), audited.
    pub async fn remove_freeze(&self, actor: &Actor, env_name: &str, id: i64) -> Result<()> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let gone =
            crate::store::query("DELETE FROM freeze_windows WHERE id = ? AND environment_id = ?")
                .bind(id)
                .bind(env.id)
                .execute(self.pool())
                .await?
                .rows_affected();
        if gone == 0 {
            return Err(Error::NotFound(format!("freeze window {id} of {env_name}")));
        }
        let mut ev = actor.event("freeze.remove", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.details = serde_json::json!({ "freeze_id": id });
        self.audit(ev).await
    }

    /// The freeze holding `env` now, as the refusal a deploy gets.
    pub(crate) async fn freeze_refusal(&self, env: &Environment) -> Result<Option<Error>> {
        let now = crate::now();
        let mut holding = Vec::new();
        for r in rows(self.pool(), env.id).await? {
            let view = r.view(&env.name, now)?;
            if let Some(until) = view.active_until {
                holding.push((until, view.reason));
            }
        }
        // The one that ends last is the one that matters.
        Ok(holding
            .into_iter()
            .max()
            .map(|(until, reason)| Error::Frozen {
                environment: env.name.clone(),
                until,
                reason,
            }))
    }
}
