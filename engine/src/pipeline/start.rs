//! Step 3, start: the new version starts in the idle slot. Whatever the idle
//! slot still ran (the previous standby) is replaced; the active slot is
//! never touched.

use super::run::{DeployRun, Done};
use crate::engine::Engine;
use crate::environments;
use crate::error::{Error, Result};
use crate::runtime::SlotSpec;
use model::{SlotState, StepName};

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let pool = engine.pool();
    let (env, idle, version) = (&run.env, run.idle, run.version.as_str());
    // Before anything changes: a secret that does not decrypt fails the
    // step with the idle slot as it was.
    let spec = engine.slot_spec(env, idle, version).await?;
    fetch(engine, run, &spec).await?;
    let previous = environments::slot(pool, env.id, idle).await?;
    if let Some(handle) = &previous.handle {
        run.runtime.stop(handle, env.stop_grace).await?;
    }
    environments::set_slot(
        pool,
        env.id,
        idle,
        Some(version),
        SlotState::Starting,
        None,
        None,
    )
    .await?;
    environments::clear_standby(pool, env.id, idle).await?;

    let running = match run.runtime.start(&spec).await {
        Ok(r) => r,
        Err(e) => {
            environments::set_slot(
                pool,
                env.id,
                idle,
                Some(version),
                SlotState::Stopped,
                None,
                None,
            )
            .await?;
            return Err(Error::DeploymentFailed(format!("start: {e}")));
        }
    };
    environments::set_slot(
        pool,
        env.id,
        idle,
        Some(version),
        SlotState::Starting,
        Some(&running.handle),
        Some(&running.address),
    )
    .await?;
    crate::failpoint::pause("start.spawned").await;
    let replaced = match (&previous.handle, &previous.version) {
        (Some(_), Some(v)) => format!(" (replacing the previous standby, {v})"),
        (Some(_), None) => " (replacing the previous standby)".to_string(),
        _ => String::new(),
    };
    let message = format!(
        "{version} started in {idle} at {}{replaced}",
        running.address
    );
    run.set_running(running);
    Ok(Done::Succeeded(message))
}

/// Makes the artifact present before the idle slot is touched (a Docker
/// pull), its progress shown on the step: a failed pull changes nothing.
async fn fetch(engine: &Engine, run: &DeployRun, spec: &SlotSpec) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let shown = {
        let engine = engine.clone();
        let dep_id = run.dep_id;
        tokio::spawn(async move {
            // At most a few writes a second, the latest line each time.
            while let Some(mut line) = rx.recv().await {
                while let Ok(newer) = rx.try_recv() {
                    line = newer;
                }
                engine.step_progress(dep_id, StepName::Start, &line).await;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
    };
    let fetched = run
        .runtime
        .fetch(spec, &move |line| {
            let _ = tx.send(line);
        })
        .await;
    let _ = shown.await;
    fetched.map_err(|e| Error::DeploymentFailed(format!("start: {e}")))
}
