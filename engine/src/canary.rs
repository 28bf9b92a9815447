//! A held deploy's canary (docs/ARCHITECTURE.md, "Hold at preview"): while a
//! deploy waits at preview, a deployer may send a share of new users (sticky
//! by the proxy's slot cookie) and testers chosen by a header or a cookie to
//! the held slot, on the public address. The setting is a routing table
//! written through the router at the next generation (fenced like every
//! write), recorded on the hold's row and audited as `deploy.canary`. It ends
//! with the hold: promote, abort and timeout all write tables without it.
//!
//! Ordering with the decision: the change is marked on the hold's row (in
//! the same transaction that checks the hold is open) before the router is
//! written, and the worker, once the hold is decided, waits for that mark
//! to clear before it reads the table its switch must be newer than.

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::holds;
use crate::rbac::Action;
use crate::router::TrafficRouter;
use model::{Canary, CanarySetting, HoldView, RouterKind, RoutingTable};

impl Engine {
    /// Sets the canary share (0–100 %, 0 = off) and tester rule of a deploy
    /// held at preview. Deployers and admins, as for a promote. Refused with
    /// [`Error::NotHeld`] (nothing changed) unless `dep_id` is held and
    /// undecided; with [`Error::InvalidInput`] naming the field for a bad
    /// share or rule. Returns the hold with the setting now in force.
    pub async fn set_canary(
        &self,
        actor: &Actor,
        dep_id: i64,
        change: &CanarySetting,
    ) -> Result<HoldView> {
        // The role first: who may not deploy learns nothing of which ids exist.
        self.authorize(actor, Action::Deploy, None).await?;
        let change = checked(change)?;
        let dep = deployments::get(self.pool(), dep_id).await?;
        if !actor.reaches(&dep.environment) {
            return Err(Error::NotFound(format!("deployment #{dep_id}")));
        }
        self.authorize(actor, Action::Deploy, Some(&dep.environment))
            .await?;
        let env = environments::find(self.pool(), &dep.environment).await?;
        if env.router != RouterKind::Builtin {
            return Err(Error::Conflict(format!(
                "environment {} routes through nginx, which cannot split traffic: \
                 a canary needs switchyard-proxy",
                env.name
            )));
        }
        holds::begin_canary_write(self.pool(), dep_id).await?;
        let written = self.write_canary(&env, dep.to_slot, &change).await;
        let applied = written.as_ref().ok().map(|_| (&change, actor.name()));
        let recorded = holds::end_canary_write(
            self.pool(),
            dep_id,
            applied.as_ref().map(|(c, by)| (*c, by.as_str())),
        )
        .await;
        let generation = written?;
        recorded?;

        let mut ev = actor.event("deploy.canary", Outcome::Ok);
        ev.environment = Some(dep.environment.clone());
        ev.target = dep.to_version.clone();
        ev.details = serde_json::json!({
            "deployment": dep_id,
            "percent": change.percent,
            "header": change.header,
            "cookie": change.cookie,
            "generation": generation,
        });
        self.audit(ev).await?;
        holds::get(self.pool(), dep_id)
            .await?
            .map(|h| h.view())
            .ok_or_else(|| Error::Internal(format!("hold of #{dep_id} vanished")))
    }

    /// Writes the table in force with `change` at the next generation.
    /// Returns that generation.
    async fn write_canary(
        &self,
        env: &Environment,
        held_slot: Option<model::SlotColor>,
        change: &CanarySetting,
    ) -> Result<u64> {
        let router = self.router_for(env)?;
        let routed = router.current().await?;
        let preview = routed.preview.as_ref().map(|p| p.slot);
        let Some(preview) = preview.filter(|slot| Some(*slot) == held_slot) else {
            // Without a preview listener the held slot is in no table, and
            // an abort or a recovery would not withdraw it from one.
            return Err(Error::Conflict(format!(
                "a canary needs the held slot on the router's preview address, and {} \
                 shows none (is its preview listener set?)",
                env.name
            )));
        };
        if routed.active.is_none() {
            return Err(Error::Conflict(format!(
                "{} has no active slot: no users to share with the held slot",
                env.name
            )));
        }
        let recorded = environments::get(self.pool(), env.id)
            .await?
            .routing_generation;
        let table = RoutingTable {
            generation: recorded.max(routed.generation) + 1,
            canary: (change.percent > 0).then_some(Canary {
                slot: preview,
                percent: change.percent,
            }),
            testers: change.testers(),
            ..routed
        };
        apply(router.as_ref(), &table).await?;
        environments::record_generation(self.pool(), env.id, table.generation).await?;
        Ok(table.generation)
    }
}

/// As at the switch: a write whose answer was lost counts when the router
/// shows it.
async fn apply(router: &dyn TrafficRouter, table: &RoutingTable) -> Result<()> {
    if let Err(e) = router.apply(table).await {
        let landed = matches!(router.current().await, Ok(t) if t == *table);
        if !landed {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The change with its text trimmed, or why it is refused (naming the
/// console's field: `percent`, `tester_header`, `tester_cookie`).
fn checked(change: &CanarySetting) -> Result<CanarySetting> {
    if change.percent > 100 {
        return Err(Error::invalid(
            "percent",
            format!("canary share {} % is over 100", change.percent),
        ));
    }
    let trim = |nv: &Option<model::NameValue>| {
        nv.as_ref().map(|nv| model::NameValue {
            name: nv.name.trim().to_string(),
            value: nv.value.trim().to_string(),
        })
    };
    let change = CanarySetting {
        percent: change.percent,
        header: trim(&change.header),
        cookie: trim(&change.cookie),
    };
    if let Some(rule) = change.testers() {
        rule.check()
            .map_err(|(field, why)| Error::invalid(field, why))?;
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::NameValue;

    #[test]
    fn a_bad_change_names_its_field() {
        let field = |c: CanarySetting| match checked(&c) {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(CanarySetting {
                percent: 101,
                ..Default::default()
            }),
            "percent"
        );
        assert_eq!(
            field(CanarySetting {
                percent: 5,
                header: Some(NameValue {
                    name: "X Tester".into(),
                    value: "me".into()
                }),
                cookie: None,
            }),
            "tester_header"
        );
        assert_eq!(
            field(CanarySetting {
                percent: 5,
                header: None,
                cookie: Some(NameValue {
                    name: "t".into(),
                    value: "a;b".into()
                }),
            }),
            "tester_cookie"
        );
        let ok = checked(&CanarySetting {
            percent: 100,
            header: Some(NameValue {
                name: " X-Tester ".into(),
                value: " me ".into(),
            }),
            cookie: None,
        })
        .unwrap();
        assert_eq!(ok.header.unwrap().value, "me");
    }
}
