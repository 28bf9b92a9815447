//! The remote CLI's exit codes: what a pipeline branches on. Documented in
//! the README ("Drive it from CI"); keep both in step.

/// The deploy succeeded (and its watch window, if any, passed).
pub const OK: i32 = 0;
/// The deploy failed before users were moved (start, health, preflight…, or
/// aborted at its hold at preview, by a deployer or its timeout):
/// users stay on the old slot.
pub const FAILED: i32 = 1;
// 2 is clap's: the command line itself was wrong.
/// The console refused: bad or missing token, role, scope, not approved,
/// a deploy already running, an invalid value.
pub const REFUSED: i32 = 3;
/// The smoke or performance gates failed: users stay on the old slot.
pub const GATES_FAILED: i32 = 4;
/// The watch window saw a breach and rolled users back.
pub const ROLLED_BACK: i32 = 5;
/// `--timeout` passed before the deploy (or its watch window) ended; it
/// goes on in the console.
pub const TIMED_OUT: i32 = 6;
/// The console could not be reached or answered something unexpected.
pub const UNREACHABLE: i32 = 7;
