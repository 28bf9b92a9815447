//! The console's own periodic look at its slots, for the dashboard: one
//! round of health probes over every running slot (the console's timer
//! calls it; see `server`).

use crate::engine::Engine;
use crate::environments;
use crate::error::Result;

impl Engine {
    /// One round of health probes over every running slot, for the dashboard.
    pub async fn probe_slots(&self) -> Result<()> {
        for env in environments::list(self.pool()).await? {
            for slot in environments::slots(self.pool(), env.id).await? {
                if let Some(addr) = &slot.address {
                    let p = self
                        .prober()
                        .probe(addr, &env.health_path, &env.health_expect)
                        .await;
                    environments::record_health(self.pool(), env.id, slot.color, p.ok, &p.message)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
