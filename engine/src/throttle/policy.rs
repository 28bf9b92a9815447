//! The throttle's policy: exponential back-off per kind of key, and how
//! attempts are keyed (a username, or an address's /64). Pure arithmetic, no
//! I/O.

use model::LoginLockKind;
use std::net::IpAddr;
use std::time::Duration;

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

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
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
