//! Step 5, gates: smoke routes and a performance sample against the new
//! slot, through the router's preview address when it has one (see
//! `preview.rs`), else directly at the slot. No user reaches the slot yet. A
//! failed gate stops the slot; users never left the active one.

use super::run::{DeployRun, Done};
use crate::engine::Engine;
use crate::error::{Error, Result};
use model::SlotState;

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let router = run.router(engine)?;
    let running = run.running()?.clone();
    let routed = run.routed()?.clone();
    // A preview write moves the generation the switch must be newer than.
    let (routed, gated) = engine
        .gate_through_preview(
            router.as_ref(),
            &run.env,
            run.idle,
            &running.address,
            routed,
        )
        .await;
    run.set_routed(routed);
    match gated {
        Ok(passed) => Ok(Done::Succeeded(passed)),
        Err(why) => {
            engine
                .stop_slot(
                    &run.env,
                    run.idle,
                    &run.version,
                    &running.handle,
                    SlotState::Stopped,
                )
                .await;
            Err(Error::DeploymentFailed(format!("gates: {why}")))
        }
    }
}
