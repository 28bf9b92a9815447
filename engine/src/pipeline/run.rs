//! One deploy as its steps see it ([`DeployRun`]) and how a step ends
//! ([`Done`]): the types every step file shares. The walk over the steps is
//! `step.rs`.

use crate::engine::Engine;
use crate::environments::Environment;
use crate::error::{Error, Result};
use crate::router::TrafficRouter;
use crate::runtime::{RunningSlot, Runtime};
use chrono::{DateTime, Utc};
use model::{RoutingTable, SlotColor, StepName};
use std::sync::Arc;

/// The release a deploy carries out, at the revision its deployer saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReleaseAtRevision {
    pub(crate) release_id: i64,
    pub(crate) revision: i64,
}

/// How a step ended, with the message its timeline shows.
pub(super) enum Done {
    Succeeded(String),
    /// Nothing to do here (e.g. no previous slot to drain on a first deploy).
    Skipped(String),
}

/// One deploy as its steps see it: what it deploys where, and what earlier
/// steps found (the router's table, the started slot).
pub(super) struct DeployRun {
    pub(super) dep_id: i64,
    /// The environment as the request saw it; the preflight re-reads it
    /// under the lock.
    pub(super) env: Environment,
    pub(super) idle: SlotColor,
    pub(super) version: String,
    /// The release this deploy carries out, at the revision its deployer
    /// saw: the preflight checks its approvals once more.
    pub(super) release: Option<ReleaseAtRevision>,
    pub(super) runtime: Arc<dyn Runtime>,
    router: Option<Arc<dyn TrafficRouter>>,
    routed: Option<RoutingTable>,
    running: Option<RunningSlot>,
    /// Until when the slot users left stays warm (set by the switch).
    pub(super) standby_until: Option<DateTime<Utc>>,
}

impl DeployRun {
    pub(super) fn new(
        dep_id: i64,
        env: Environment,
        idle: SlotColor,
        version: String,
        release: Option<ReleaseAtRevision>,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        DeployRun {
            dep_id,
            env,
            idle,
            version,
            release,
            runtime,
            router: None,
            routed: None,
            running: None,
            standby_until: None,
        }
    }

    /// The environment's router, built when a step first asks (the
    /// preflight), so a router that cannot be built fails that step.
    pub(super) fn router(&mut self, engine: &Engine) -> Result<Arc<dyn TrafficRouter>> {
        if let Some(r) = &self.router {
            return Ok(r.clone());
        }
        let r = engine.router_for(&self.env)?;
        self.router = Some(r.clone());
        Ok(r)
    }

    /// The routing table in force, as the last step that read or wrote it
    /// left it (the switch must be newer).
    pub(super) fn routed(&self) -> Result<&RoutingTable> {
        self.routed
            .as_ref()
            .ok_or_else(|| out_of_order("the router's table", StepName::Preflight))
    }

    pub(super) fn set_routed(&mut self, table: RoutingTable) {
        self.routed = Some(table);
    }

    /// The slot the start step started.
    pub(super) fn running(&self) -> Result<&RunningSlot> {
        self.running
            .as_ref()
            .ok_or_else(|| out_of_order("the started slot", StepName::Start))
    }

    pub(super) fn set_running(&mut self, slot: RunningSlot) {
        self.running = Some(slot);
    }
}

/// A step asked for what an earlier step provides before it ran: a bug in
/// the step list, not something a user did.
pub(super) fn out_of_order(what: &str, step: StepName) -> Error {
    Error::Internal(format!("{what} is asked for before the {step} step ran"))
}
