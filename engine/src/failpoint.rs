//! Named pauses inside the pipeline, for crash tests only.
//!
//! Some steps are over in a millisecond (starting a process, the switch), too
//! short to kill the console inside them from outside. With the `failpoints`
//! feature (on in the server's test builds, never in `cargo build` or release
//! binaries) the environment variable `SWITCHYARD_FAILPOINTS`, e.g.
//! `switch.applied=3000,start.spawned=3000`, makes the worker sleep that many
//! milliseconds when it reaches the named point. Without the feature
//! [`pause`] does nothing and costs nothing.
//!
//! Points: `preflight.checked` (the router answered; nothing started yet),
//! `start.spawned` (the new slot runs and is recorded; the start step has not
//! ended), `switch.applied` (the router already sends users to the new slot;
//! the records do not say so yet), `standby.recording` (drained; the standby
//! step has begun).

#[cfg(feature = "failpoints")]
pub async fn pause(point: &str) {
    let Ok(spec) = std::env::var("SWITCHYARD_FAILPOINTS") else {
        return;
    };
    let ms = spec
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim() == point)
        .and_then(|(_, ms)| ms.trim().parse::<u64>().ok());
    if let Some(ms) = ms {
        tracing::warn!(point, ms, "failpoint: pausing");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn pause(_point: &str) {}
