//! The `switchyard` binary's library: configuration, wiring and the HTTP
//! router, kept out of `main` so tests can build the same app on port 0.

pub mod audit_export;
pub mod bootstrap;
pub mod config;
pub mod events;
pub mod headers;
pub mod hosts;
pub mod http;
pub mod private_files;
pub mod proxy_process;
pub mod refusal_audit;
