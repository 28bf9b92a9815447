use super::policy::{account_key, address_key};
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
