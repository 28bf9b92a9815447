//! The `switchyard` binary's library: configuration, wiring
//! ([`console::Console::build`]) and the HTTP router, kept out of `main` so
//! the tests build the same console on port 0.

pub mod api;
pub mod assets;
pub mod audit_export;
pub mod bootstrap;
pub mod commands;
pub mod config;
pub mod console;
pub mod events;
pub mod headers;
pub mod health;
pub mod hosts;
pub mod http;
pub mod plain_forms;
pub mod private_files;
pub mod proxy_process;
pub mod refusal_audit;
pub mod remote;
pub mod sessions;
