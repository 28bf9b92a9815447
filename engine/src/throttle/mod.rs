//! Sign-in throttling (issue #12): how many passwords anyone may try.
//!
//! Failures are counted per *attempted username* (trimmed and lowercased,
//! counted the same whether or not the account exists, so a refusal tells
//! nothing about existence) and per *source address* (an IPv4 address, or
//! the /64 of an IPv6 one — a single host usually owns a whole /64). Once a
//! key has [`Backoff::lock_after`] consecutive failures, every further
//! failure locks it for a time that doubles each time, up to a cap. While a
//! key is locked every attempt on it — even with the right password — is
//! refused with [`Error::Throttled`] before any password is checked.
//!
//! Each attempt is *charged* as a failure before its password is checked,
//! in one compare-and-set write per key: parallel requests, or a second
//! console on the same database, cannot slip more guesses past a lock than
//! the policy allows. A success then resets the account's count and takes
//! back the address's charge (a success never resets an address: an attacker
//! with one valid account could otherwise reset it at will). The counts live
//! in the database (`login_throttle`), so they survive a restart.
//!
//! Separately, password checks (argon2id, 19 MiB and a core each) run at
//! most [`ThrottlePolicy::max_concurrent_verifications`] at a time; a bounded
//! number of sign-ins wait for one and any more are refused at once with
//! `Throttled { retry_after_secs: 1 }`, so a flood cannot exhaust CPU or
//! memory. A started check always runs to its end (in its own task, holding
//! its slot), even if the request that asked for it goes away.
//!
//! Refusals are audited (`auth.throttled`), once per key per lock however
//! many attempts the lock refuses, and "too busy" refusals at most once per
//! [`ThrottlePolicy::busy_audit_every`] with a count: a flood cannot grow the
//! audit log without bound.
//!
//! With the default policy an attacker guessing one account as fast as the
//! locks allow, from any number of addresses, gets 17 guesses in the first
//! hour (5 at once, then after 1, 2, 4 … 512 s, then one per 15 minutes:
//! [`Backoff::max_guesses_within`]) and 4 an hour after that. A success of
//! the real user resets the account's count and so hands out that first
//! hour again; an account that signs in many times an hour (a script) gives
//! an attacker more than the design target of 100 guesses an hour.

//!
//! Files: `policy.rs` (the back-off and the keys), `counts.rs` (the stored
//! counts and their compare-and-set writes), this file (the sign-in flow and
//! the admin's view), `tests.rs`.

mod counts;
mod policy;
#[cfg(test)]
mod tests;

use counts::{
    charge, claim_refusal_audit, key_of, keys_of, millis, now_ms, read, refund, reset,
    restart_lock, rfc3339, secs_until, Charge, Key, ListedRow, Locked,
};
#[cfg_attr(not(feature = "internals"), allow(unused_imports))] // tests
pub use policy::Backoff;
pub use policy::ThrottlePolicy;

use crate::actor::Actor;
use crate::audit::{AuditActor, Event, Outcome};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::store::Pool;
use crate::users::User;
use model::{LoginLockKind, LoginLockView};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Default)]
struct BusyLog {
    last_entry: Option<Instant>,
    refused_since: u64,
}

struct ThrottleInner {
    policy: ThrottlePolicy,
    verifications: Arc<Semaphore>,
    waiting: AtomicUsize,
    running: AtomicUsize,
    peak_running: AtomicUsize,
    busy: Mutex<BusyLog>,
    last_prune: Mutex<Option<Instant>>,
    /// Held for every write this throttle makes, its audit entries
    /// included. An audit append reads the chain's last entry and then
    /// writes after it; a write from another connection in between makes
    /// SQLite refuse the append (SQLITE_BUSY_SNAPSHOT), and a sign-in that
    /// cannot be audited fails. So the throttle's own writes never land
    /// inside one of its appends.
    writes: tokio::sync::Mutex<()>,
}

/// A sign-in throttle: the policy, and this process's limit on password
/// checks. Cheap to clone (one shared state). [`Engine::login`] uses
/// [`LoginThrottle::shared`]; tests make their own with short locks.
#[derive(Clone)]
pub struct LoginThrottle {
    inner: Arc<ThrottleInner>,
}

/// Rows are pruned at most this often per throttle.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The admin list shows at most this many keys (locked ones first).
const LIST_LIMIT: i64 = 500;

/// Decrements a counter when dropped (also when the future holding it is).
struct CountGuard<'a>(&'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        let permits = policy.max_concurrent_verifications.max(1);
        LoginThrottle {
            inner: Arc::new(ThrottleInner {
                policy,
                verifications: Arc::new(Semaphore::new(permits)),
                waiting: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak_running: AtomicUsize::new(0),
                busy: Mutex::new(BusyLog::default()),
                last_prune: Mutex::new(None),
                writes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The process's throttle, with the default policy: password checks use
    /// the cores of the machine, whichever engine asks.
    pub fn shared() -> &'static LoginThrottle {
        static SHARED: OnceLock<LoginThrottle> = OnceLock::new();
        SHARED.get_or_init(|| LoginThrottle::new(ThrottlePolicy::default()))
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
    /// Password checks running right now.
    pub fn verifications_running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
    /// The most password checks that ever ran at once under this throttle.
    pub fn peak_verifications(&self) -> usize {
        self.inner.peak_running.load(Ordering::SeqCst)
    }

    /// Checks a password through the throttle and records the attempt:
    /// `auth.login` ok/failed as before, `auth.throttled` for refusals.
    /// Every failure is the same `BadCredentials`; a login that cannot be
    /// audited does not happen.
    pub async fn login(
        &self,
        engine: &Engine,
        username: &str,
        password: &str,
        source_ip: Option<String>,
    ) -> Result<User> {
        let pool = engine.pool();
        self.prune_now_and_then(pool).await;
        let keys = keys_of(username, source_ip.as_deref());

        // Locked keys are refused first: no queue, no password check.
        let now = now_ms();
        let mut locked = Vec::new();
        for key in &keys {
            if let Some(row) = read(pool, key).await? {
                locked.extend(Locked::of(key, &row, now));
            }
        }
        if !locked.is_empty() {
            return Err(self
                .refuse(engine, username, &source_ip, &locked, now)
                .await);
        }

        // A slot to check the password in, or an immediate refusal.
        let Some(permit) = self.acquire().await? else {
            return Err(self.refuse_busy(engine, username, &source_ip).await);
        };

        // Charge the attempt to every key before the password is checked.
        let now = now_ms();
        let (charges, refused) = {
            let _writes = self.inner.writes.lock().await;
            let mut charges = Vec::with_capacity(keys.len());
            let mut refused = None;
            for key in &keys {
                let backoff = self.inner.policy.backoff(key.kind);
                match charge(pool, key, backoff, now).await {
                    Ok(Ok(c)) => charges.push(c),
                    Ok(Err(locked)) => {
                        refused = Some(Ok(locked));
                        break;
                    }
                    Err(e) => {
                        refused = Some(Err(e));
                        break;
                    }
                }
            }
            if refused.is_some() {
                // Locked since the first look (or the store failed): the
                // attempt did not happen, so no key keeps its charge.
                self.refund_all(pool, &charges).await;
            }
            (charges, refused)
        };
        if let Some(refused) = refused {
            drop(permit);
            let locked = refused?;
            return Err(self
                .refuse(engine, username, &source_ip, &[locked], now)
                .await);
        }

        // The check, its settlement and its audit run in their own task:
        // the slot stays taken until argon2 is done, even if the request
        // that asked goes away.
        let task = tokio::spawn(self.clone().check_and_settle(
            engine.clone(),
            permit,
            charges,
            username.to_string(),
            password.to_string(),
            source_ip,
        ));
        task.await
            .map_err(|e| Error::Internal(format!("sign-in task: {e}")))?
    }

    async fn check_and_settle(
        self,
        engine: Engine,
        permit: OwnedSemaphorePermit,
        charges: Vec<Charge>,
        username: String,
        password: String,
        source_ip: Option<String>,
    ) -> Result<User> {
        let pool = engine.pool();
        let result = {
            // Counted while the slot is held (taken after it, given back
            // before it), so the count never exceeds the slots.
            let running = self.inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.inner.peak_running.fetch_max(running, Ordering::SeqCst);
            let _running = CountGuard(&self.inner.running);
            crate::auth::login(pool, &username, &password).await
        };
        drop(permit);
        let _writes = self.inner.writes.lock().await;
        match result {
            Ok(user) => {
                let actor = Actor::user(user.clone()).from_ip(source_ip);
                engine.audit(actor.event("auth.login", Outcome::Ok)).await?;
                for c in &charges {
                    let settled = match c.key.kind {
                        LoginLockKind::Account => reset(pool, &c.key).await,
                        LoginLockKind::Address => refund(pool, c).await,
                    };
                    if let Err(e) = settled {
                        tracing::warn!(error = %e, kind = %c.key.kind, "sign-in throttle not updated after a success");
                    }
                }
                Ok(user)
            }
            Err(Error::BadCredentials) => {
                // The charges stand: they were this failure. A lock it
                // earned runs from now, when the person learns of the
                // failure, not from when the check began.
                let failed_at = now_ms();
                for c in &charges {
                    if let Err(e) = restart_lock(pool, c, &self.inner.policy, failed_at).await {
                        tracing::warn!(error = %e, kind = %c.key.kind, "sign-in lock not restarted after a failure");
                    }
                }
                let attempted = AuditActor::Anonymous {
                    attempted: username,
                };
                let mut ev = Event::new(attempted, "auth.login", Outcome::Failed);
                ev.source_ip = source_ip;
                engine.audit(ev).await?;
                Err(Error::BadCredentials)
            }
            Err(e) => {
                // Not a guess that was judged: take the charges back.
                self.refund_all(pool, &charges).await;
                Err(e)
            }
        }
    }

    /// Takes charges back; the caller holds `writes`.
    async fn refund_all(&self, pool: &Pool, charges: &[Charge]) {
        for c in charges {
            if let Err(e) = refund(pool, c).await {
                tracing::warn!(error = %e, kind = %c.key.kind, "sign-in throttle charge not taken back");
            }
        }
    }

    /// A password-check slot: at once if one is free, after a wait if fewer
    /// than `max_waiting_verifications` wait, else `None`.
    async fn acquire(&self) -> Result<Option<OwnedSemaphorePermit>> {
        let sem = &self.inner.verifications;
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(Some(p));
        }
        let max = self.inner.policy.max_waiting_verifications;
        if self
            .inner
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w < max).then_some(w + 1)
            })
            .is_err()
        {
            return Ok(None);
        }
        let _waiting = CountGuard(&self.inner.waiting);
        sem.clone()
            .acquire_owned()
            .await
            .map(Some)
            .map_err(|e| Error::Internal(format!("sign-in slots: {e}")))
    }

    /// The refusal of an attempt on locked keys, audited once per lock.
    async fn refuse(
        &self,
        engine: &Engine,
        username: &str,
        source_ip: &Option<String>,
        locked: &[Locked],
        now: i64,
    ) -> Error {
        let retry_after_secs = locked
            .iter()
            .map(|l| secs_until(l.until_ms, now))
            .max()
            .unwrap_or(1);
        for l in locked.iter().filter(|l| !l.audited) {
            let _writes = self.inner.writes.lock().await;
            match claim_refusal_audit(engine.pool(), l).await {
                Ok(true) => {
                    let mut ev = throttled_event(username, source_ip);
                    ev.target = Some(l.key.key.clone());
                    ev.details = serde_json::json!({
                        "kind": l.key.kind.as_str(),
                        "key": l.key.key,
                        "failures": l.failures,
                        "locked_until": rfc3339(l.until_ms),
                        "retry_after_secs": secs_until(l.until_ms, now),
                    });
                    if let Err(e) = engine.audit(ev).await {
                        tracing::error!(error = %e, "could not audit a throttled sign-in");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "could not audit a throttled sign-in"),
            }
        }
        Error::Throttled { retry_after_secs }
    }

    /// The refusal of an attempt that found every check slot and the queue
    /// full, audited at most once per `busy_audit_every`.
    async fn refuse_busy(
        &self,
        engine: &Engine,
        username: &str,
        source_ip: &Option<String>,
    ) -> Error {
        let refused = {
            let mut busy = self.inner.busy.lock().unwrap_or_else(|e| e.into_inner());
            busy.refused_since += 1;
            let due = busy
                .last_entry
                .is_none_or(|t| t.elapsed() >= self.inner.policy.busy_audit_every);
            if due {
                busy.last_entry = Some(Instant::now());
                Some(std::mem::take(&mut busy.refused_since))
            } else {
                None
            }
        };
        if let Some(refused) = refused {
            let _writes = self.inner.writes.lock().await;
            let mut ev = throttled_event(username, source_ip);
            ev.details = serde_json::json!({
                "kind": "busy",
                "refused": refused,
                "max_concurrent_verifications": self.inner.policy.max_concurrent_verifications,
                "max_waiting_verifications": self.inner.policy.max_waiting_verifications,
                "retry_after_secs": 1,
            });
            if let Err(e) = engine.audit(ev).await {
                tracing::error!(error = %e, "could not audit a throttled sign-in");
            }
        }
        Error::Throttled {
            retry_after_secs: 1,
        }
    }

    /// Deletes rows that mean nothing any more (no lock running, failures
    /// forgotten), at most once per `PRUNE_EVERY`. Deleting them changes no
    /// decision, so it may run at any time.
    async fn prune_now_and_then(&self, pool: &Pool) {
        {
            let mut last = self
                .inner
                .last_prune
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.prune(pool).await {
            tracing::warn!(error = %e, "sign-in throttle rows not pruned");
        }
    }

    async fn prune(&self, pool: &Pool) -> Result<()> {
        let _writes = self.inner.writes.lock().await;
        let now = now_ms();
        for kind in LoginLockKind::ALL {
            let forget = millis(self.inner.policy.backoff(kind).forget_after);
            crate::store::query(
                "DELETE FROM login_throttle WHERE kind = ? \
                 AND (locked_until IS NULL OR locked_until <= ?) \
                 AND (last_failure_at IS NULL OR last_failure_at <= ?)",
            )
            .bind(kind.as_str())
            .bind(now)
            .bind(now.saturating_sub(forget))
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// Keys with failures that still count or a lock running, locked ones
    /// first (at most 500). Admins only.
    pub async fn list_locks(&self, engine: &Engine, actor: &Actor) -> Result<Vec<LoginLockView>> {
        engine.authorize(actor, Action::ManageUsers, None).await?;
        let now = now_ms();
        let cutoff =
            |kind| now.saturating_sub(millis(self.inner.policy.backoff(kind).forget_after));
        let rows: Vec<ListedRow> = crate::store::query_as(
            "SELECT kind, key, failures, locked_until, last_failure_at FROM login_throttle \
             WHERE locked_until > ?1 \
                OR (failures > 0 AND last_failure_at > CASE kind WHEN 'account' THEN ?2 ELSE ?3 END) \
             ORDER BY COALESCE(locked_until > ?1, FALSE) DESC, locked_until DESC, last_failure_at DESC, kind, key \
             LIMIT ?4",
        )
        .bind(now)
        .bind(cutoff(LoginLockKind::Account))
        .bind(cutoff(LoginLockKind::Address))
        .bind(LIST_LIMIT)
        .fetch_all(engine.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LoginLockView {
                    kind: crate::error::parse_stored(&r.kind)?,
                    key: r.key,
                    failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
                    locked_until: r.locked_until.and_then(rfc3339),
                    locked_secs_left: r
                        .locked_until
                        .filter(|&u| u > now)
                        .map_or(0, |u| secs_until(u, now)),
                    last_failure_at: r.last_failure_at.and_then(rfc3339),
                })
            })
            .collect()
    }

    /// Forgets a key's failures and lifts its lock. Admins only; audited as
    /// `auth.unlock`. `key` as listed (a username or address is normalised
    /// the same way as at sign-in).
    pub async fn clear_lock(
        &self,
        engine: &Engine,
        actor: &Actor,
        kind: LoginLockKind,
        key: &str,
    ) -> Result<()> {
        engine.authorize(actor, Action::ManageUsers, None).await?;
        let key = Key {
            kind,
            key: key_of(kind, key),
        };
        let _writes = self.inner.writes.lock().await;
        let row = read(engine.pool(), &key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("sign-in lock of {kind} {:?}", key.key)))?;
        let mut ev = actor.event("auth.unlock", Outcome::Ok);
        ev.target = Some(key.key.clone());
        ev.details = serde_json::json!({
            "kind": kind.as_str(),
            "key": key.key,
            "failures": row.failures,
            "locked_until": row.locked_until.and_then(rfc3339),
        });
        engine.audit(ev).await?;
        reset(engine.pool(), &key).await
    }
}

impl Engine {
    /// Throttled sign-in keys (see [`LoginThrottle::list_locks`]). Admins only.
    pub async fn list_login_locks(&self, actor: &Actor) -> Result<Vec<LoginLockView>> {
        LoginThrottle::shared().list_locks(self, actor).await
    }

    /// Lifts a sign-in lock (see [`LoginThrottle::clear_lock`]). Admins
    /// only; audited as `auth.unlock`.
    pub async fn clear_login_lock(
        &self,
        actor: &Actor,
        kind: LoginLockKind,
        key: &str,
    ) -> Result<()> {
        LoginThrottle::shared()
            .clear_lock(self, actor, kind, key)
            .await
    }
}

/// The audit entry of a refused sign-in: who was tried, from where.
fn throttled_event(username: &str, source_ip: &Option<String>) -> Event {
    let mut ev = Event::new(
        AuditActor::Anonymous {
            attempted: username.to_string(),
        },
        "auth.throttled",
        Outcome::Denied,
    );
    ev.source_ip = source_ip.clone();
    ev
}
