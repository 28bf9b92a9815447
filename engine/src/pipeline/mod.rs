//! The deploy pipeline and the rollback.
//!
//! To change what a deploy does at one step, open that step's file: each
//! is `run(engine, &mut DeployRun) -> Result<Done>` (`run.rs`), and the
//! deploy is the list [`DEPLOY`] walked in order:
//!
//! | step      | file           | what it does                                          |
//! |-----------|----------------|-------------------------------------------------------|
//! | lock      | `deploy.rs`    | the deployment row, taken before the worker starts    |
//! | preflight | `preflight.rs` | approvals again, the router answers, idle is idle     |
//! | start     | `start.rs`     | the new version in the idle slot                      |
//! | health    | `health.rs`    | 2xx from the health path before the deadline          |
//! | gates     | `gates.rs`     | smoke and performance gates (via `preview.rs`)        |
//! | hold      | `hold.rs`      | held environments: waits for promote or abort         |
//! | switch    | `switch.rs`    | one atomic router write, behind the lock fence        |
//! | drain     | `drain.rs`     | the old slot's in-flight requests finish              |
//! | standby   | `standby.rs`   | the old slot stays warm for an instant rollback       |
//!
//! `worker.rs` holds what every run shares (the detached task owning the
//! row, the heartbeat, the lock checks, the timeline); `rollback.rs` is the
//! emergency exit; `plan.rs` is the dry run, asking the same request checks
//! (`preflight.rs`) the deploy asks.

mod deploy;
mod drain;
mod gates;
mod health;
mod hold;
mod plan;
mod preflight;
mod preview;
mod rollback;
mod run;
mod standby;
mod start;
mod step;
mod switch;
mod worker;

pub use deploy::{DeployOptions, PreparedDeploy};
pub use step::{DEPLOY, DEPLOY_HELD, ROLLBACK, ROLLBACK_COLD};
pub(crate) use worker::Workers;
