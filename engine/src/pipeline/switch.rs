//! Step 6, switch: one atomic write of the router's table sends users to the
//! new slot (and ends the preview). The worker must still hold the lock in
//! the database (the fence). A write whose answer was lost is checked with
//! the router before it counts as failed: stopping the new slot while users
//! are on it is the outage this product exists to prevent.

use super::run::{DeployRun, Done};
use crate::engine::Engine;
use crate::environments;
use crate::error::{Error, Result};
use model::{RoutingTable, SlotState, Upstream};

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    engine.fence(run.dep_id).await?;
    let router = run.router(engine)?;
    let running = run.running()?.clone();
    let routed = run.routed()?.clone();
    let (env, idle) = (&run.env, run.idle);

    let generation = env.routing_generation.max(routed.generation) + 1;
    let table = RoutingTable {
        generation,
        active: Some(Upstream {
            slot: idle,
            address: running.address.clone(),
        }),
        // The switch ends the preview (see preview.rs for why), and with
        // it a held deploy's canary and tester rule: everyone is on `idle`.
        preview: None,
        canary: None,
        testers: None,
    };
    let mut lost_answer = "";
    if let Err(e) = router.apply(&table).await {
        // The write may have landed even though its answer was lost: ask
        // the router before declaring the switch failed, or the slot users
        // are now on would be stopped under them.
        let landed = matches!(router.current().await, Ok(t) if t == table);
        if !landed {
            // Users are still on the old slot: the switch did not happen.
            let (_, withdrawn) = engine.withdraw_preview(router.as_ref(), env, routed).await;
            engine
                .stop_slot(env, idle, &run.version, &running.handle, SlotState::Stopped)
                .await;
            return Err(Error::DeploymentFailed(format!("switch: {e}{withdrawn}")));
        }
        tracing::warn!(env = %env.name, error = %e, "switch answer lost but the router shows it applied");
        lost_answer = " (the router's answer was lost; asked again, it shows the switch)";
    }
    crate::failpoint::pause("switch.applied").await;
    environments::set_active(engine.pool(), env.id, idle, generation).await?;
    run.standby_until = engine.mark_standby(env, idle).await?;
    Ok(Done::Succeeded(format!(
        "users now reach {idle} (routing generation {generation}){lost_answer}"
    )))
}
