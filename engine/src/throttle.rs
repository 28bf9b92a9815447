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

use crate::actor::Actor;
use crate::audit::{AuditActor, Event, Outcome};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::store::Pool;
use crate::users::User;
use chrono::{SecondsFormat, TimeZone, Utc};
use model::{LoginLockKind, LoginLockView};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Exponential back-off for one kind of key. Pure arithmetic, no I/O: the
/// benchmark and the tests compute with it directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The consecutive failure that first locks the key; failures before it
    /// cost nothing but themselves.
    pub lock_after: u32,
    /// The lock that failure sets; each further failure doubles it.
    pub first_lock: Duration,
    /// No lock is longer than this.
    pub max_lock: Duration,
    /// Failures are forgotten once this long has passed since the last one
    /// (and no lock runs).
    pub forget_after: Duration,
}

impl Backoff {
    /// How long the `failures`-th consecutive failure locks the key: nothing
    /// before `lock_after`, then `first_lock`, doubling per further failure,
    /// capped at `max_lock`.
    pub fn lock_for(&self, failures: u32) -> Duration {
        if failures < self.lock_after.max(1) {
            return Duration::ZERO;
        }
        let doublings = failures - self.lock_after.max(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first_lock
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_lock)
    }

    /// The most guesses at one key that fit in any `window`, for an attacker
    /// who guesses as fast as the locks allow (in parallel or not: every
    /// guess is charged before it is checked).
    ///
    /// Within one run of consecutive failures, guess `n + 1` comes at the
    /// earliest `lock_for(n)` after guess `n`, and a run starting from a
    /// clean slate is the attacker's best case (`lock_for` only grows). A run
    /// ends only after a pause of `forget_after` with no guess, so when
    /// `forget_after >= window` one window holds at most one run and the
    /// greedy count is exact; otherwise this multiplies it by the number of
    /// runs that fit, an upper bound. `u64::MAX` when the back-off never
    /// locks (unbounded).
    pub fn max_guesses_within(&self, window: Duration) -> u64 {
        let mut at = Duration::ZERO;
        let mut guesses = 0u64;
        let mut failures = 0u32;
        while at < window {
            guesses += 1;
            failures = failures.saturating_add(1);
            let lock = self.lock_for(failures);
            if lock.is_zero() && failures >= self.lock_after.max(1) {
                return u64::MAX;
            }
            at = at.saturating_add(lock);
        }
        if self.forget_after >= window {
            guesses
        } else if self.forget_after.is_zero() {
            u64::MAX
        } else {
            let runs = (window.as_nanos() / self.forget_after.as_nanos()) as u64 + 1;
            guesses.saturating_mul(runs)
        }
    }
}

/// How sign-ins are throttled. `Default` is production's; tests build one
/// with millisecond locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Per attempted username.
    pub account: Backoff,
    /// Per source address: a higher allowance (an office behind one NAT
    /// mistypes too), then the same back-off.
    pub address: Backoff,
    /// Password checks that may run at once. Each takes a core and 19 MiB.
    pub max_concurrent_verifications: usize,
    /// Sign-ins that may wait for a check; any more are refused at once.
    pub max_waiting_verifications: usize,
    /// "Too busy" refusals are audited at most this often, with a count of
    /// the ones in between.
    pub busy_audit_every: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ThrottlePolicy {
            account: Backoff {
                lock_after: 5,
                first_lock: Duration::from_secs(1),
                max_lock: Duration::from_secs(15 * 60),
                forget_after: Duration::from_secs(24 * 3600),
            },
            address: Backoff {
                lock_after: 20,
                first_lock: Duration::from_secs(1),
                max_lock: Duration::from_secs(15 * 60),
                forget_after: Duration::from_secs(3600),
            },
            max_concurrent_verifications: cores.clamp(1, 4),
            max_waiting_verifications: 32,
            busy_audit_every: Duration::from_secs(60),
        }
    }
}

impl ThrottlePolicy {
    pub fn backoff(&self, kind: LoginLockKind) -> &Backoff {
        match kind {
            LoginLockKind::Account => &self.account,
            LoginLockKind::Address => &self.address,
        }
    }
}

/// The throttle key of an attempted username: trimmed, lowercased, at most
/// 64 characters (no valid username is longer).
pub fn account_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(64).collect()
}

/// The throttle key of a source address: an IPv4 address as is (also when
/// IPv4-mapped), an IPv6 address as its /64. Anything else (already a key,
/// or not an address) is kept, trimmed, at most 64 characters.
pub fn address_key(address: &str) -> String {
    let address = address.trim();
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        Err(_) => address.chars().take(64).collect(),
    }
}

fn key_of(kind: LoginLockKind, raw: &str) -> String {
    match kind {
        LoginLockKind::Account => account_key(raw),
        LoginLockKind::Address => address_key(raw),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    kind: LoginLockKind,
    key: String,
}

/// The keys an attempt is charged to: its address (when known) first, then
/// its username.
fn keys_of(username: &str, source_ip: Option<&str>) -> Vec<Key> {
    let mut keys = Vec::with_capacity(2);
    if let Some(ip) = source_ip.filter(|ip| !ip.trim().is_empty()) {
        keys.push(Key {
            kind: LoginLockKind::Address,
            key: address_key(ip),
        });
    }
    keys.push(Key {
        kind: LoginLockKind::Account,
        key: account_key(username),
    });
    keys
}

/// A stored row, times in Unix milliseconds. The first three columns are
/// what a charge compares and sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
struct Row {
    failures: i64,
    locked_until: Option<i64>,
    last_failure_at: Option<i64>,
    refusal_audited_until: Option<i64>,
}

/// A row as the admin list reads it.
#[derive(sqlx::FromRow)]
struct ListedRow {
    kind: String,
    key: String,
    failures: i64,
    locked_until: Option<i64>,
    last_failure_at: Option<i64>,
}

/// A key found locked.
#[derive(Clone, Debug)]
struct Locked {
    key: Key,
    until_ms: i64,
    failures: i64,
    /// A refusal of this very lock is in the audit log already.
    audited: bool,
}

impl Locked {
    fn of(key: &Key, row: &Row, now: i64) -> Option<Locked> {
        let until = row.locked_until.filter(|&u| u > now)?;
        Some(Locked {
            key: key.clone(),
            until_ms: until,
            failures: row.failures,
            audited: row.refusal_audited_until == Some(until),
        })
    }
}

/// An attempt charged to a key: what the row was, and what we wrote.
#[derive(Clone, Debug)]
struct Charge {
    key: Key,
    before: Row,
    written: Row,
}

fn now_ms() -> i64 {
    crate::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn rfc3339(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Whole seconds until `until_ms`, at least 1: what `Retry-After` says.
fn secs_until(until_ms: i64, now: i64) -> u64 {
    let ms = until_ms.saturating_sub(now).max(0) as u64;
    ms.div_ceil(1000).max(1)
}

async fn read(pool: &Pool, key: &Key) -> Result<Option<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT failures, locked_until, last_failure_at, refusal_audited_until \
         FROM login_throttle WHERE kind = ? AND key = ?",
    )
    .bind(key.kind.as_str())
    .bind(&key.key)
    .fetch_optional(pool)
    .await?)
}

/// Charges one attempt to `key` as a failure, unless it is locked: one
/// compare-and-set on the values read, retried if another attempt wrote in
/// between. The lock a failure earns starts now, at the attempt.
async fn charge(
    pool: &Pool,
    key: &Key,
    backoff: &Backoff,
    now: i64,
) -> Result<Result<Charge, Locked>> {
    for _ in 0..64 {
        sqlx::query(
            "INSERT INTO login_throttle (kind, key, failures) VALUES (?, ?, 0) ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
        let Some(before) = read(pool, key).await? else {
            continue; // pruned in between
        };
        if let Some(locked) = Locked::of(key, &before, now) {
            return Ok(Err(locked));
        }
        let forgotten = before
            .last_failure_at
            .is_none_or(|at| now.saturating_sub(at) >= millis(backoff.forget_after));
        let failures = if forgotten { 1 } else { before.failures + 1 };
        let lock = backoff.lock_for(u32::try_from(failures).unwrap_or(u32::MAX));
        let written = Row {
            failures,
            locked_until: (!lock.is_zero()).then(|| now.saturating_add(millis(lock))),
            last_failure_at: Some(now),
            refusal_audited_until: before.refusal_audited_until,
        };
        if swap_row(pool, key, &before, &written).await? {
            return Ok(Ok(Charge {
                key: key.clone(),
                before,
                written,
            }));
        }
    }
    Err(Error::Internal(format!(
        "sign-in throttle: {} {:?} kept changing under 64 attempts to charge it",
        key.kind, key.key
    )))
}

/// Compare-and-swap of a key's counters: writes `to` only if the row still
/// holds `from` (another request or console may have written in between).
async fn swap_row(pool: &Pool, key: &Key, from: &Row, to: &Row) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE login_throttle SET failures = ?, locked_until = ?, last_failure_at = ? \
         WHERE kind = ? AND key = ? AND failures = ? AND locked_until IS ? AND last_failure_at IS ?",
    )
    .bind(to.failures)
    .bind(to.locked_until)
    .bind(to.last_failure_at)
    .bind(key.kind.as_str())
    .bind(&key.key)
    .bind(from.failures)
    .bind(from.locked_until)
    .bind(from.last_failure_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a charge back (the attempt was not a failure): the row as it was
/// if nobody wrote since, else one failure less.
async fn refund(pool: &Pool, charge: &Charge) -> Result<()> {
    let Charge {
        key,
        before,
        written,
    } = charge;
    if !swap_row(pool, key, written, before).await? {
        sqlx::query(
            "UPDATE login_throttle SET failures = MAX(failures - 1, 0) WHERE kind = ? AND key = ?",
        )
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Moves the lock a charge set to start at `failed_at` (when the check
/// failed), if the row is still as the charge left it. Locks only get
/// later, so this never lets a guess in sooner than the charge did. A
/// refusal already audited during the check keeps counting for the lock.
async fn restart_lock(
    pool: &Pool,
    charge: &Charge,
    policy: &ThrottlePolicy,
    failed_at: i64,
) -> Result<()> {
    let Some(charged_until) = charge.written.locked_until else {
        return Ok(());
    };
    let lock = policy
        .backoff(charge.key.kind)
        .lock_for(u32::try_from(charge.written.failures).unwrap_or(u32::MAX));
    let until = failed_at.saturating_add(millis(lock)).max(charged_until);
    sqlx::query(
        "UPDATE login_throttle SET locked_until = ?1, \
         refusal_audited_until = CASE WHEN refusal_audited_until = ?5 THEN ?1 ELSE refusal_audited_until END \
         WHERE kind = ?2 AND key = ?3 AND failures = ?4 AND locked_until = ?5 AND last_failure_at IS ?6",
    )
    .bind(until)
    .bind(charge.key.kind.as_str())
    .bind(&charge.key.key)
    .bind(charge.written.failures)
    .bind(charged_until)
    .bind(charge.written.last_failure_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the account's failures after a success.
async fn reset(pool: &Pool, key: &Key) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE kind = ? AND key = ?")
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims the audit entry of `locked`'s lock: true for the first refusal of
/// that lock only, however many consoles and requests race for it.
async fn claim_refusal_audit(pool: &Pool, locked: &Locked) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE login_throttle SET refusal_audited_until = locked_until \
         WHERE kind = ? AND key = ? AND locked_until = ? AND refusal_audited_until IS NOT locked_until",
    )
    .bind(locked.key.kind.as_str())
    .bind(&locked.key.key)
    .bind(locked.until_ms)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

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

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.inner.policy
    }

    /// Password checks running right now.
    pub fn verifications_running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

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
            sqlx::query(
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
        let rows: Vec<ListedRow> = sqlx::query_as(
            "SELECT kind, key, failures, locked_until, last_failure_at FROM login_throttle \
             WHERE locked_until > ?1 \
                OR (failures > 0 AND last_failure_at > CASE kind WHEN 'account' THEN ?2 ELSE ?3 END) \
             ORDER BY COALESCE(locked_until > ?1, 0) DESC, locked_until DESC, last_failure_at DESC, kind, key \
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn locks_start_at_the_fifth_failure_and_double_up_to_the_cap() {
        let b = ThrottlePolicy::default().account;
        for n in 0..5 {
            assert_eq!(b.lock_for(n), Duration::ZERO, "failure {n}");
        }
        let secs: Vec<u64> = (5..=17).map(|n| b.lock_for(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(b.lock_for(u32::MAX), Duration::from_secs(900));
        assert_eq!(b.lock_for(200), Duration::from_secs(900));
        let a = ThrottlePolicy::default().address;
        assert_eq!(a.lock_for(19), Duration::ZERO);
        assert_eq!(a.lock_for(20), Duration::from_secs(1));
        assert_eq!(a.lock_for(21), Duration::from_secs(2));
    }

    /// An attacker guessing as fast as the default policy lets them, for an
    /// hour of virtual time, guess by guess: at most 100 guesses per account
    /// (issue #12's design target). They get 17.
    #[test]
    fn an_hour_of_guessing_as_fast_as_allowed_stays_under_100() {
        let b = ThrottlePolicy::default().account;
        // Simulated directly, independent of max_guesses_within.
        let mut clock = Duration::ZERO;
        let mut locked_until = Duration::ZERO;
        let mut failures = 0u32;
        let mut guesses = 0u32;
        let mut last_failure: Option<Duration> = None;
        while clock < HOUR {
            if clock >= locked_until {
                if last_failure.is_some_and(|at| clock - at >= b.forget_after) {
                    failures = 0;
                }
                guesses += 1;
                failures += 1;
                last_failure = Some(clock);
                locked_until = clock + b.lock_for(failures);
            }
            // The attacker retries every 10 ms (far faster than argon2).
            clock += Duration::from_millis(10);
        }
        assert!(guesses <= 100, "{guesses} guesses in an hour");
        assert_eq!(guesses, 17);
        // The forget window is longer than the hour, so a pause cannot give
        // the attacker a fresh allowance inside one hour.
        assert!(b.forget_after >= HOUR);
        assert_eq!(b.max_guesses_within(HOUR), 17);
        // Past the first hour: one guess per 15 minutes.
        assert_eq!(b.max_guesses_within(HOUR * 24), 17 + 23 * 4);
        // Per address (any number of usernames): 32 in the first hour.
        assert_eq!(
            ThrottlePolicy::default().address.max_guesses_within(HOUR),
            32
        );
    }

    #[test]
    fn guesses_within_a_window_are_bounded_even_with_a_short_forget_window() {
        let b = Backoff {
            lock_after: 3,
            first_lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
        };
        // One run: 3 at once, then one a minute (at 1, 2 … 59 min): 62 in
        // the hour; up to 7 runs fit between forgetting pauses: a bound.
        assert_eq!(b.max_guesses_within(HOUR), 62 * 7);
        let never = Backoff {
            first_lock: Duration::ZERO,
            ..b
        };
        assert_eq!(never.max_guesses_within(HOUR), u64::MAX);
    }

    #[test]
    fn keys_are_normalised() {
        assert_eq!(account_key("  Alice \n"), "alice");
        assert_eq!(account_key("ALICE"), account_key("alice"));
        assert_eq!(account_key(&"x".repeat(500)).len(), 64);
        assert_eq!(address_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_key("2001:db8:1:2::7"), "2001:db8:1:2::/64");
        // A listed key normalises to itself.
        assert_eq!(address_key("2001:db8:1:2::/64"), "2001:db8:1:2::/64");
        assert_eq!(
            keys_of("Bob", Some("10.0.0.1")),
            [
                Key {
                    kind: LoginLockKind::Address,
                    key: "10.0.0.1".into()
                },
                Key {
                    kind: LoginLockKind::Account,
                    key: "bob".into()
                }
            ]
        );
        assert_eq!(keys_of("bob", None).len(), 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(secs_until(1_000, 0), 1);
        assert_eq!(secs_until(1_001, 0), 2);
        assert_eq!(secs_until(10, 0), 1);
        assert_eq!(secs_until(0, 10), 1);
    }
}
