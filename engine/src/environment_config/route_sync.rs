//! Keeping each environment's named route on its switchyard-proxy in step
//! with its host names (see `environments::RouteClaim`).
//!
//! A create, or an edit that changes an environment's host names, prefix,
//! redirect or proxy, PUTs its route *before* the environment is written:
//! the proxy is the one to refuse a host another route already claims, and
//! a refusal (or a proxy that does not answer) leaves nothing written. An
//! edit of other fields does not touch the proxy (a route it lost comes
//! back at the next console start, `Engine::reconcile_routes`). A PUT without a table keeps the
//! route's table, so changing the hosts of an environment that serves users
//! moves its users' host names, not its slot. Should the write itself fail
//! afterwards, the routes put are put back as they were ([`PutRoutes::undo`]).
//! A route an environment leaves (its hosts cleared, another proxy) is
//! removed after the write; that removal failing is only reported: the
//! environment is saved, and the stale route serves the slot it served.

use super::Write;
use crate::environments::{Environment, NewEnvironment, RouteClaim};
use crate::error::{Error, Result};
use crate::router::{BuiltinRouter, RouteSpec, RouterError};
use model::RouterKind;

/// A builtin router environment's proxy admin, from its stored or new
/// settings.
pub(crate) fn proxy_admin(admin_url: &str, token_file: &str) -> Result<BuiltinRouter> {
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| Error::Internal(format!("reading proxy admin token {token_file}: {e}")))?;
    Ok(BuiltinRouter::new(admin_url, token.trim().to_string()))
}

/// What the proxy is told for `route`.
pub(crate) fn spec_of(route: &RouteClaim) -> RouteSpec {
    RouteSpec {
        hosts: route.hosts.clone(),
        path_prefix: route.path_prefix.clone(),
        redirect_https: route.redirect_https,
    }
}

/// The route `env` is on its proxy (`None`: it has none there).
fn route_of(router: RouterKind, route: &RouteClaim) -> Option<RouteSpec> {
    (router == RouterKind::Builtin && route.is_routed()).then(|| spec_of(route))
}

/// A route refused by its proxy, told as the field at fault.
fn refused(env: &NewEnvironment, e: RouterError) -> Error {
    let (field, why) = match &e {
        RouterError::Unreachable(m) => (
            "admin_url",
            format!("{m}: the route of its host names cannot be set, nothing was saved"),
        ),
        RouterError::Rejected(m) | RouterError::StaleGeneration(m) => {
            let field = if m.contains("path_prefix") {
                "path_prefix"
            } else {
                "hosts"
            };
            (
                field,
                format!(
                    "switchyard-proxy at {} refused its route, nothing was saved: {m}",
                    env.proxy_admin_url
                ),
            )
        }
    };
    Error::invalid(field, format!("environment {}: {why}", env.name))
}

/// One route put on a proxy, with what it replaced.
struct Put {
    env: String,
    admin: BuiltinRouter,
    before: Option<RouteSpec>,
}

/// The routes an apply has put, to undo if the write fails.
#[derive(Default)]
pub(super) struct PutRoutes(Vec<Put>);

impl PutRoutes {
    /// Puts the route of every written environment that has host names,
    /// unless its proxy has it already. On the first refusal, undoes the
    /// ones put and returns the refusal.
    pub(super) async fn put(writes: &[Write]) -> Result<PutRoutes> {
        let mut done = PutRoutes::default();
        for w in writes.iter().filter(|w| !w.changes.is_empty()) {
            let new = &w.checked.new;
            let Some(spec) = route_of(new.router, &new.route) else {
                continue;
            };
            // An edit that leaves the route as it was does not need the
            // proxy (it may be down while someone fixes a health path).
            let unchanged = w.existing.as_ref().is_some_and(|(old, _)| {
                route_of(old.router, &old.route).as_ref() == Some(&spec)
                    && same_admin(&old.proxy_admin_url, &new.proxy_admin_url)
            });
            if unchanged {
                continue;
            }
            let result = async {
                let admin = proxy_admin(&new.proxy_admin_url, &new.proxy_token_file)?;
                let before = admin
                    .get_route(&new.name)
                    .await
                    .map_err(|e| refused(new, e))?;
                if before.as_ref() == Some(&spec) {
                    return Ok(None);
                }
                admin
                    .put_route(&new.name, &spec)
                    .await
                    .map_err(|e| refused(new, e))?;
                tracing::info!(environment = %new.name, hosts = ?spec.hosts, "route set on its proxy");
                Ok(Some(Put {
                    env: new.name.clone(),
                    admin,
                    before,
                }))
            }
            .await;
            match result {
                Ok(Some(put)) => done.0.push(put),
                Ok(None) => {}
                Err(e) => {
                    done.undo().await;
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Puts back what the proxies had before [`Self::put`].
    pub(super) async fn undo(self) {
        for put in self.0.into_iter().rev() {
            let undone = match &put.before {
                Some(before) => put.admin.put_route(&put.env, before).await,
                None => put.admin.delete_route(&put.env).await,
            };
            if let Err(e) = undone {
                tracing::error!(environment = %put.env, error = %e, "could not undo its route after a failed write");
            }
        }
    }
}

/// Removes the routes written environments left behind: host names
/// cleared, or moved to another proxy. Reported, never failed: the
/// environments are saved.
pub(super) async fn remove_left(writes: &[Write]) {
    for w in writes.iter().filter(|w| !w.changes.is_empty()) {
        let Some((old, _)) = &w.existing else {
            continue;
        };
        if !left_its_route(old, &w.checked.new) {
            continue;
        }
        let removed = match proxy_admin(&old.proxy_admin_url, &old.proxy_token_file) {
            Ok(admin) => admin.delete_route(&old.name).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            tracing::warn!(environment = %old.name, error = %e, "could not remove the route it left");
        }
    }
}

/// Whether `old`'s route is no longer `new`'s: its hosts cleared, another
/// router, or another proxy.
fn left_its_route(old: &Environment, new: &NewEnvironment) -> bool {
    route_of(old.router, &old.route).is_some()
        && (route_of(new.router, &new.route).is_none()
            || !same_admin(&old.proxy_admin_url, &new.proxy_admin_url))
}

fn same_admin(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl crate::engine::Engine {
    /// Puts every live environment's named route back on its proxy where
    /// it is missing or differs (at console start: a proxy started afresh,
    /// or its state file lost). A route that differs keeps its table; one
    /// that is missing comes back serving the slot the console records as
    /// live, at the generation it records (users of a proxy that lost its
    /// state get their environment back, not a 404). A proxy that does not
    /// answer is reported and left.
    pub async fn reconcile_routes(&self) -> Result<()> {
        for env in crate::environments::list(self.pool()).await? {
            let Some(spec) = route_of(env.router, &env.route) else {
                continue;
            };
            let live = self.live_table(&env).await?;
            let synced = async {
                let admin = proxy_admin(&env.proxy_admin_url, &env.proxy_token_file)?;
                let had = admin.get_route(&env.name).await?;
                match (&had, &live) {
                    (Some(had), _) if *had == spec => return Ok(()),
                    (None, Some(table)) => {
                        admin.put_route_with_table(&env.name, &spec, table).await?
                    }
                    _ => admin.put_route(&env.name, &spec).await?,
                }
                tracing::info!(
                    environment = %env.name,
                    hosts = ?spec.hosts,
                    was_missing = had.is_none(),
                    "route put back on its proxy"
                );
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = synced {
                tracing::warn!(environment = %env.name, error = %e, "could not put its route on its proxy");
            }
        }
        Ok(())
    }

    /// The table the console records as in force for `env`: its active
    /// slot at its routing generation (`None`: nothing live).
    async fn live_table(&self, env: &Environment) -> Result<Option<model::RoutingTable>> {
        let Some(color) = env.active else {
            return Ok(None);
        };
        let slot = crate::environments::slot(self.pool(), env.id, color).await?;
        Ok(slot.address.map(|address| model::RoutingTable {
            generation: env.routing_generation.max(1),
            active: Some(model::Upstream {
                slot: color,
                address,
            }),
            // Other fields (a canary split) start off, as after a switch.
            ..Default::default()
        }))
    }
}
