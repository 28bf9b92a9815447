//! Step 7, drain: the slot users left gets no new requests; its in-flight
//! ones may finish, up to the environment's drain timeout. Never fails the
//! deploy: users are already on the new slot, and the old one stays up as
//! the standby, so requests still running after the deadline go on. The
//! count is shown on the running step while it drains.

use super::run::{DeployRun, Done};
use crate::engine::Engine;
use crate::error::Result;
use crate::router::RouterError;
use model::StepName;
use std::time::{Duration, Instant};

/// How often the drain asks the router how many requests are still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// A first deploy has no previous slot.
pub(super) fn skip(run: &DeployRun) -> Option<String> {
    run.env
        .active
        .is_none()
        .then(|| "first deploy: no previous slot to drain".to_string())
}

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let Some(old) = run.env.active else {
        return Ok(Done::Skipped(skip(run).unwrap_or_default()));
    };
    let router = run.router(engine)?;
    let (env, dep_id) = (&run.env, run.dep_id);
    let started = Instant::now();
    let count = |r: std::result::Result<Option<u64>, RouterError>| {
        match r {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(format!(
            "{old} gets no new requests; the {} router lets its in-flight requests finish by itself",
            env.router
        )),
        Err(e) => Err(format!(
            "{old} gets no new requests; its in-flight count is unavailable ({e})"
        )),
    }
    };
    let at_switch = match count(router.in_flight(old).await) {
        Ok(n) => n,
        Err(why) => return Ok(Done::Succeeded(why)),
    };
    let mut now = at_switch;
    while now > 0 {
        if engine.ensure_lock(dep_id).is_err() {
            return Ok(Done::Succeeded(format!(
                "{old} gets no new requests; the drain stopped with {now} in flight: the lock was taken away"
            )));
        }
        if started.elapsed() >= env.drain_timeout {
            return Ok(Done::Succeeded(format!(
                "drain deadline of {:.1} s passed with {now} request(s) still in flight on {old}; \
                 they go on: {old} stays up as the standby",
                env.drain_timeout.as_secs_f64()
            )));
        }
        engine
            .step_progress(
                dep_id,
                StepName::Drain,
                &format!("{now} request(s) in flight on {old}"),
            )
            .await;
        tokio::time::sleep(DRAIN_POLL).await;
        now = match count(router.in_flight(old).await) {
            Ok(n) => n,
            Err(why) => return Ok(Done::Succeeded(why)),
        };
    }
    Ok(Done::Succeeded(format!(
        "{old} gets no new requests; {at_switch} in flight at the switch, 0 after {} ms",
        started.elapsed().as_millis()
    )))
}
