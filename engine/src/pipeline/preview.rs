//! The preview address: where a deploy's gates reach the idle slot
//! (docs/ARCHITECTURE.md, deploy step 5) without any user reaching it.
//!
//! When the environment's router has a preview listener
//! ([`TrafficRouter::preview_url`], configured as the environment's
//! `preview_listen`), the gates step
//!
//! 1. **publishes** the idle slot as the routing table's `preview`, keeping
//!    the `active` slot exactly as the router has it, at the next routing
//!    generation (recorded, so the engine and the router agree on it);
//! 2. checks that the preview address **answers from the idle slot** (both
//!    routers name the slot that answered in `X-Switchyard-Slot`), so gates
//!    never pass by measuring something else;
//! 3. runs the **gates** against the preview address;
//! 4. on a failure, **withdraws** the preview (a new generation without it)
//!    before the pipeline stops the slot: the preview address answers "no
//!    preview slot" rather than pointing at a stopped process, and users,
//!    who never left the active slot, see nothing.
//!
//! The switch then installs the new active slot **with no preview**, in the
//! same atomic write. The preview serves the release under test; after the
//! switch there is none. Pointing it at the new standby instead would keep
//! sending new requests to the slot the drain step waits to go quiet (the
//! proxy's drain status lists it as still routed), turn the preview address
//! into "the previous version" without anyone asking, and leave it pointing
//! at a stopped process once the standby window ends.
//!
//! Without a preview listener the gates call the idle slot's own address, as
//! before; the step's message says which ("through the preview address …"
//! or "directly at …").

use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::Result;
use crate::gates;
use crate::router::{TrafficRouter, SLOT_HEADER};
use model::{RoutingTable, SlotColor, Upstream};

impl Engine {
    /// Writes `preview` into the router's table at the next generation,
    /// leaving its active slot as it is, and records that generation.
    /// Returns the table now in force.
    pub(crate) async fn set_preview(
        &self,
        router: &dyn TrafficRouter,
        env: &Environment,
        preview: Option<Upstream>,
    ) -> Result<RoutingTable> {
        let routed = router.current().await?;
        let recorded = environments::get(self.pool(), env.id)
            .await?
            .routing_generation;
        let table = RoutingTable {
            generation: recorded.max(routed.generation) + 1,
            active: routed.active,
            preview,
            // Publishing or withdrawing a preview is never a canary: a held
            // deploy's canary ends with its hold (the abort withdraws it).
            canary: None,
            testers: None,
        };
        if let Err(e) = router.apply(&table).await {
            // As at the switch: the write may have landed with its answer lost.
            let landed = matches!(router.current().await, Ok(t) if t == table);
            if !landed {
                return Err(e.into());
            }
        }
        environments::record_generation(self.pool(), env.id, table.generation).await?;
        Ok(table)
    }

    /// The gates step's work: gates through the preview address when the router
    /// has one, else directly at `address`. Returns the routing table in
    /// force afterwards (the switch fences on its generation) and the
    /// step's message: what passed, or why it failed. A failure has already
    /// withdrawn the preview.
    pub(super) async fn gate_through_preview(
        &self,
        router: &dyn TrafficRouter,
        env: &Environment,
        idle: SlotColor,
        address: &str,
        routed: RoutingTable,
    ) -> (RoutingTable, std::result::Result<String, String>) {
        let Some(url) = router.preview_url() else {
            let http = self.prober().http();
            let checked = gates::check(http, &format!("http://{address}"), &env.gates).await;
            return (
                routed,
                checked
                    .map(|m| format!("directly at {address} (no preview address configured): {m}"))
                    .map_err(|m| format!("directly at {address}: {m}")),
            );
        };
        let upstream = Upstream {
            slot: idle,
            address: address.to_string(),
        };
        let published = match self.set_preview(router, env, Some(upstream)).await {
            Ok(t) => t,
            Err(e) => {
                return (
                    routed,
                    Err(format!(
                        "could not publish {idle} on the preview address {url}: {e}"
                    )),
                )
            }
        };
        // New connections only: see Prober::unpooled. On a proxy several
        // environments share, with this route's host, so the preview
        // listener serves this environment's preview slot.
        let http = match router.preview_host() {
            Some(host) => match preview_client(&host) {
                Ok(c) => std::borrow::Cow::Owned(c),
                Err(why) => return (published, Err(why)),
            },
            None => std::borrow::Cow::Borrowed(self.prober().unpooled()),
        };
        let checked = match self
            .preview_serves(&http, &url, idle, &env.health_path)
            .await
        {
            Ok(()) => gates::check(&http, &url, &env.gates).await,
            Err(why) => Err(why),
        };
        match checked {
            Ok(m) => (
                published,
                Ok(format!("through the preview address {url} ({idle}): {m}")),
            ),
            Err(why) => {
                let (table, withdrawn) = self.withdraw_preview(router, env, published).await;
                (
                    table,
                    Err(format!(
                        "through the preview address {url}: {why}{withdrawn}"
                    )),
                )
            }
        }
    }

    /// Takes the preview off the router after a failed gate or switch, when
    /// the router has a preview listener. Never fails the caller: it says in
    /// its text whether the preview was withdrawn, and returns the table in
    /// force (`in_force` when nothing was written).
    pub(crate) async fn withdraw_preview(
        &self,
        router: &dyn TrafficRouter,
        env: &Environment,
        in_force: RoutingTable,
    ) -> (RoutingTable, String) {
        if router.preview_url().is_none() {
            return (in_force, String::new());
        }
        match self.set_preview(router, env, None).await {
            Ok(t) => (t, "; the preview was withdrawn".to_string()),
            Err(e) => {
                tracing::error!(env = %env.name, error = %e, "could not withdraw the preview");
                (
                    in_force,
                    format!("; the preview could not be withdrawn ({e})"),
                )
            }
        }
    }

    /// Whether the preview address answers from `idle`: a listener that is
    /// not running, or serves something else, must not pass the gates.
    async fn preview_serves(
        &self,
        http: &reqwest::Client,
        url: &str,
        idle: SlotColor,
        health_path: &str,
    ) -> std::result::Result<(), String> {
        let resp = http
            .get(format!("{url}{health_path}"))
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_connect() {
                    "connection refused"
                } else if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                };
                format!("the preview address did not answer ({why}): is the router's preview listener running?")
            })?;
        match resp.headers().get(SLOT_HEADER).map(|v| v.to_str()) {
            Some(Ok(slot)) if slot == idle.as_str() => Ok(()),
            Some(Ok(slot)) => Err(format!(
                "the preview address answered from {slot}, not from {idle}"
            )),
            _ => Err(format!(
                "the preview address answered {} without naming its slot: it is not this router's preview listener",
                resp.status()
            )),
        }
    }
}

/// The prober's unpooled client (see `Prober::unpooled`) sending `host` as
/// every request's `Host`: a shared switchyard-proxy's preview listener
/// picks the route by it, as its public listener does.
fn preview_client(host: &str) -> std::result::Result<reqwest::Client, String> {
    let value = reqwest::header::HeaderValue::from_str(host)
        .map_err(|_| format!("the route's host {host:?} is not a header value"))?;
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .no_proxy()
        .pool_max_idle_per_host(0)
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HOST,
            value,
        )]))
        .build()
        .map_err(|e| format!("building the preview client: {e}"))
}
