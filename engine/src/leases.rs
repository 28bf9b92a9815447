//! Leases: which console runs a background round for all of them.
//!
//! Consoles that share one PostgreSQL database (issue 18's replicas) each run
//! the same rounds — lock recovery, standby expiry and health probes, the
//! webhook outbox — but each round must run once for the cluster: two
//! consoles would stop the same expired standby, or recover the same lock,
//! at the same moment. Before a round a console asks for
//! the round's lease ([`Engine::hold_lease`]); it gets it when nobody holds
//! it, when it holds it already (and so renews it), when the holder let it
//! run out (it hung, or died on another host), or at once when the holder
//! is a process of this host that stopped (a console restarted on the same
//! data: [`crate::lock::Holder::is_gone`]). A console alone on its SQLite file
//! always gets it.
//!
//! A lease only decides who *starts* a round. What a round writes stays
//! safe on its own when two ever overlap (a holder paused past its lease):
//! lock take-overs compare and swap on the holder, deliveries are claimed
//! row by row, the audit chain appends under the write lock.
//!
//! Audit checkpoints take no lease: each console signs the chain with its
//! own key into its own data directory, a witness of its own.

use crate::engine::Engine;
use crate::error::Result;
use crate::lock::Holder;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The rounds that run once per cluster, each under a lease of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// Lock recovery, standby expiry and the slots' health probes.
    Monitor,
    /// The webhook outbox: queueing and sending deliveries.
    Webhooks,
}

impl Round {
    pub fn as_str(self) -> &'static str {
        match self {
            Round::Monitor => "monitor",
            Round::Webhooks => "webhooks",
        }
    }
}

/// Who holds a lease, and until when.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

impl Engine {
    /// Takes or renews the lease of `round` for this console for `ttl`:
    /// `true` when this console is to run the round now. The time to live
    /// should span a few rounds, so that a console busy for a moment keeps
    /// its lease, and a dead one's passes move on within that time.
    pub async fn hold_lease(&self, round: Round, ttl: Duration) -> Result<bool> {
        take(
            self.pool(),
            round.as_str(),
            self.holder(),
            ttl,
            crate::now(),
        )
        .await
    }

    /// Every lease, for the console's cluster view and the tests.
    pub async fn leases(&self) -> Result<Vec<Lease>> {
        Ok(crate::store::query_as::<Lease>(
            "SELECT name, holder, expires_at FROM leases ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?)
    }
}

/// The lease `name` for `me` until `now + ttl`, if nobody else holds it at
/// `now`. Read and write happen in one writing transaction (one at a time
/// on every store), so two consoles asking at once cannot both get it.
pub(crate) async fn take(
    pool: &crate::store::Pool,
    name: &str,
    me: &Holder,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<bool> {
    let holder = me.to_string();
    let mut tx = crate::store::begin_write(pool).await?;
    let current = crate::store::query_as::<Lease>(
        "SELECT name, holder, expires_at FROM leases WHERE name = ?",
    )
    .bind(name)
    .fetch_optional(&mut tx)
    .await?;
    if let Some(lease) = current.filter(|l| l.holder != holder) {
        let gone = Holder::parse(&lease.holder).and_then(|h| h.is_gone(me)) == Some(true);
        if lease.expires_at > now && !gone {
            return Ok(false);
        }
        tracing::info!(
            round = name,
            from = %lease.holder,
            to = %holder,
            "taking over a background round from a console that stopped running it"
        );
    }
    let until = now + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::zero());
    crate::store::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
    )
    .bind(name)
    .bind(&holder)
    .bind(until)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Pool;

    /// A console of another host: only its lease's time says it stopped.
    fn elsewhere(name: &str) -> Holder {
        Holder {
            host: format!("{name}.elsewhere"),
            ..Holder::this_process()
        }
    }

    async fn a_lease_passes_to_another_console_only_once_it_ran_out(pool: Pool) {
        let (a, b) = (elsewhere("a"), elsewhere("b"));
        let t0 = crate::now();
        let ttl = Duration::from_secs(10);
        let s = chrono::Duration::seconds;
        assert!(take(&pool, "monitor", &a, ttl, t0).await.unwrap());
        // Held by a: b is refused, a renews, another round is free.
        assert!(!take(&pool, "monitor", &b, ttl, t0 + s(5)).await.unwrap());
        assert!(take(&pool, "monitor", &a, ttl, t0 + s(8)).await.unwrap());
        assert!(take(&pool, "webhooks", &b, ttl, t0 + s(8)).await.unwrap());
        // The renewal counts from its own time: still a's at t0 + 15 s.
        assert!(!take(&pool, "monitor", &b, ttl, t0 + s(15)).await.unwrap());
        // a stopped renewing: once its lease ran out, b takes it, and a,
        // back from a pause, is refused.
        assert!(take(&pool, "monitor", &b, ttl, t0 + s(19)).await.unwrap());
        assert!(!take(&pool, "monitor", &a, ttl, t0 + s(20)).await.unwrap());
        let rows = crate::store::query_as::<Lease>(
            "SELECT name, holder, expires_at FROM leases ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let holders: Vec<_> = rows
            .iter()
            .map(|l| (l.name.clone(), l.holder.clone()))
            .collect();
        let b = b.to_string();
        assert_eq!(
            holders,
            [("monitor".into(), b.clone()), ("webhooks".into(), b)]
        );
        // Stored times keep microseconds on both stores.
        let expected = t0 + s(29);
        let drift = (rows[0].expires_at - expected)
            .num_microseconds()
            .unwrap()
            .abs();
        assert!(drift <= 1, "{} vs {expected}", rows[0].expires_at);
    }

    /// A console restarted on this host takes its predecessor's lease at
    /// once: that process (here, an earlier engine of this one) is gone.
    async fn a_stopped_console_of_this_host_hands_its_lease_on_at_once(pool: Pool) {
        let before = Holder::this_process();
        let after = Holder::this_process();
        let ttl = Duration::from_secs(3600);
        let now = crate::now();
        assert!(take(&pool, "monitor", &before, ttl, now).await.unwrap());
        assert!(take(&pool, "monitor", &after, ttl, now).await.unwrap());
        // A live console elsewhere is not judged gone: its lease holds.
        let other = elsewhere("c");
        assert!(!take(&pool, "monitor", &other, ttl, now).await.unwrap());
    }

    /// Many consoles asking at the same moment: exactly one gets the lease.
    async fn consoles_asking_at_once_get_one_lease(pool: Pool) {
        let now = crate::now();
        let asks: Vec<_> = (0..8)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let holder = elsewhere(&format!("console-{i}"));
                    take(&pool, "webhooks", &holder, Duration::from_secs(30), now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for ask in asks {
            won += usize::from(ask.await.unwrap());
        }
        assert_eq!(won, 1);
    }

    crate::store::testing::on_both_stores!(
        a_lease_passes_to_another_console_only_once_it_ran_out,
        a_stopped_console_of_this_host_hands_its_lease_on_at_once,
        consoles_asking_at_once_get_one_lease,
    );
}
