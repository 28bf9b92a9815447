//! Sign-in throttling (issue #12) against a real store (SQLite, and
//! PostgreSQL in the test command's second pass): locks per
//! attempted username and per address, refusals without a password check,
//! resets, persistence across engines, bounded audit, the admin's view and
//! the cap on concurrent password checks.
//!
//! Most tests use their own `LoginThrottle` with second-scale locks (the
//! production policy locks for minutes); `Engine::login` is the same code
//! with the process's shared throttle and the default policy.

use engine::audit::{self, Entry};
use engine::runtime::ProcessRuntime;
use engine::throttle::{Backoff, LoginThrottle, ThrottlePolicy};
use engine::Actor;
use engine::{Engine, Error};
use model::{LoginLockKind, Role};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "the right password";
const WRONG: &str = "not the password";

struct World {
    dir: tempfile::TempDir,
    /// The database (SQLite in `dir`, or PostgreSQL: see `store_url`).
    url: String,
    engine: Engine,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = engine::store::testing::store_url(dir.path()).await;
        let engine = open(&dir, &url).await;
        World { dir, url, engine }
    }

    /// Another engine (and pool) on the same database, as after a restart.
    async fn reopen(&self) -> Engine {
        open(&self.dir, &self.url).await
    }

    async fn user(&self, name: &str, role: Role) -> Actor {
        let u = engine::users::create(self.engine.pool(), name, PASSWORD, role)
            .await
            .unwrap();
        Actor::user(u)
    }

    async fn audit(&self, action: &str) -> Vec<Entry> {
        let mut entries: Vec<Entry> = audit::recent(self.engine.pool(), 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action)
            .collect();
        entries.reverse();
        entries
    }
}

async fn open(dir: &tempfile::TempDir, url: &str) -> Engine {
    let pool = engine::store::open(url).await.unwrap();
    Engine::new(pool, Arc::new(ProcessRuntime::new(dir.path().join("logs"))))
}

/// Locks after 3 failures per username (2 s, doubling) and 6 per address
/// (30 s: no test waits for one to pass). Two checks at once, four waiting.
fn policy() -> ThrottlePolicy {
    ThrottlePolicy {
        account: Backoff {
            lock_after: 3,
            first_lock: Duration::from_secs(2),
            max_lock: Duration::from_secs(30),
            forget_after: Duration::from_secs(3600),
        },
        address: Backoff {
            lock_after: 6,
            first_lock: Duration::from_secs(30),
            max_lock: Duration::from_secs(60),
            forget_after: Duration::from_secs(3600),
        },
        max_concurrent_verifications: 2,
        max_waiting_verifications: 4,
        busy_audit_every: Duration::from_secs(3600),
    }
}

fn ip(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn retry_after(r: Result<engine::users::User, Error>) -> u64 {
    match r {
        Err(Error::Throttled { retry_after_secs }) => retry_after_secs,
        other => panic!("expected Throttled, got {other:?}"),
    }
}

fn bad_credentials(r: Result<engine::users::User, Error>) {
    match r {
        Err(Error::BadCredentials) => {}
        other => panic!("expected BadCredentials, got {other:?}"),
    }
}

/// The production path: `Engine::login` with the default policy locks an
/// account after its fifth consecutive failure, the right password
/// included, and says so in a message a person can act on.
#[tokio::test]
async fn engine_login_locks_after_five_failures() {
    let w = World::new().await;
    w.user("alice", Role::Deployer).await;
    let from = ip("192.0.2.10");
    for _ in 0..5 {
        bad_credentials(w.engine.login("alice", WRONG, from.clone()).await);
    }
    let refused = w.engine.login("alice", PASSWORD, from.clone()).await;
    let Err(err) = refused else {
        panic!("the right password got in during the lock")
    };
    assert!(
        matches!(
            err,
            Error::Throttled {
                retry_after_secs: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "too many sign-in attempts; try again in 1 s"
    );
    assert_eq!(
        err.kind(),
        engine::ErrorKind::Throttled {
            retry_after_secs: 1
        }
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let u = w.engine.login("alice", PASSWORD, from).await.unwrap();
    assert_eq!(u.username, "alice");
}

#[tokio::test]
async fn a_locked_account_refuses_the_right_password_until_the_lock_passes() {
    let w = World::new().await;
    w.user("bob", Role::Viewer).await;
    let t = LoginThrottle::new(policy());
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "bob", WRONG, ip("192.0.2.1")).await);
    }
    let checked_before = t.peak_verifications();
    let started = Instant::now();
    let secs = retry_after(t.login(&w.engine, "bob", PASSWORD, ip("192.0.2.1")).await);
    assert_eq!(secs, 2);
    // Another address makes no difference: the account is locked.
    retry_after(
        t.login(&w.engine, "bob", PASSWORD, ip("198.51.100.7"))
            .await,
    );
    // Nor does the spelling of the name.
    retry_after(
        t.login(&w.engine, "  BOB ", PASSWORD, ip("192.0.2.1"))
            .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusals must not wait for a password check: {:?}",
        started.elapsed()
    );
    assert_eq!(t.verifications_running(), 0);
    assert_eq!(t.peak_verifications(), checked_before);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let u = t
        .login(&w.engine, "bob", PASSWORD, ip("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(u.username, "bob");
}

/// Failure n ≥ 3 locks for 2 s · 2^(n-3): a failure after a lock has
/// passed locks for twice as long.
#[tokio::test]
async fn each_further_failure_doubles_the_lock() {
    let w = World::new().await;
    let t = LoginThrottle::new(policy());
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "carol", WRONG, None).await);
    }
    assert_eq!(
        retry_after(t.login(&w.engine, "carol", WRONG, None).await),
        2
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    bad_credentials(t.login(&w.engine, "carol", WRONG, None).await);
    assert_eq!(
        retry_after(t.login(&w.engine, "carol", WRONG, None).await),
        4
    );
    let admin = w.user("root", Role::Admin).await;
    let view = t.list_locks(&w.engine, &admin).await.unwrap();
    assert_eq!(view.len(), 1, "{view:?}");
    assert_eq!(view[0].kind, LoginLockKind::Account);
    assert_eq!(view[0].key, "carol");
    assert_eq!(view[0].failures, 4);
    assert!((1..=4).contains(&view[0].locked_secs_left), "{view:?}");
}

/// A refusal is the same for a name that has no account: the same
/// sequence of answers, the same retry time, keyed by the same rules.
#[tokio::test]
async fn unknown_usernames_are_throttled_the_same_way() {
    let w = World::new().await;
    w.user("dana", Role::Deployer).await;
    let t = LoginThrottle::new(policy());
    let mut answers = vec![];
    for name in ["dana", "ghost"] {
        let mut seq = vec![];
        for _ in 0..4 {
            seq.push(match t.login(&w.engine, name, WRONG, None).await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{name} got in"),
            });
        }
        answers.push(seq);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][3], "too many sign-in attempts; try again in 2 s");
    // Spelling variants of the unknown name share its lock.
    retry_after(t.login(&w.engine, " GHOST", WRONG, None).await);
    let admin = w.user("root", Role::Admin).await;
    let mut keys: Vec<String> = t
        .list_locks(&w.engine, &admin)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["dana", "ghost"]);
}

/// One address trying many usernames is locked after 6 failures whatever
/// the names, the right password of a real account included; the same
/// account from elsewhere is not. An IPv6 host's whole /64 counts as one.
#[tokio::test]
async fn an_address_is_locked_across_usernames() {
    let w = World::new().await;
    w.user("erin", Role::Viewer).await;
    let t = LoginThrottle::new(policy());
    for i in 0..6 {
        bad_credentials(
            t.login(&w.engine, &format!("guess{i}"), WRONG, ip("203.0.113.5"))
                .await,
        );
    }
    retry_after(
        t.login(&w.engine, "erin", PASSWORD, ip("203.0.113.5"))
            .await,
    );
    retry_after(
        t.login(&w.engine, "someone-new", WRONG, ip("203.0.113.5"))
            .await,
    );
    t.login(&w.engine, "erin", PASSWORD, ip("203.0.113.6"))
        .await
        .unwrap();

    for i in 0..6 {
        let from = format!("2001:db8:aa:bb::{:x}", i + 1);
        bad_credentials(
            t.login(&w.engine, &format!("v6-{i}"), WRONG, Some(from))
                .await,
        );
    }
    retry_after(
        t.login(&w.engine, "erin", PASSWORD, ip("2001:db8:aa:bb:ffff::1"))
            .await,
    );
    t.login(&w.engine, "erin", PASSWORD, ip("2001:db8:aa:cc::1"))
        .await
        .unwrap();

    let admin = w.user("root", Role::Admin).await;
    let view = t.list_locks(&w.engine, &admin).await.unwrap();
    let locked: Vec<(LoginLockKind, &str)> = view
        .iter()
        .filter(|v| v.locked_secs_left > 0)
        .map(|v| (v.kind, v.key.as_str()))
        .collect();
    assert_eq!(locked.len(), 2, "{view:?}");
    assert!(locked.contains(&(LoginLockKind::Address, "203.0.113.5")));
    assert!(locked.contains(&(LoginLockKind::Address, "2001:db8:aa:bb::/64")));
}

/// A success forgets the account's failures, but not the address's: one
/// valid account must not let an attacker reset an address. The successful
/// attempt itself is not counted against the address.
#[tokio::test]
async fn a_success_resets_the_account_but_not_the_address() {
    let w = World::new().await;
    w.user("fred", Role::Viewer).await;
    let admin = w.user("root", Role::Admin).await;
    let t = LoginThrottle::new(policy());
    let from = ip("192.0.2.77");
    for _ in 0..2 {
        bad_credentials(t.login(&w.engine, "fred", WRONG, from.clone()).await);
    }
    t.login(&w.engine, "fred", PASSWORD, from.clone())
        .await
        .unwrap();
    // Two more failures: without the reset the third in a row would lock.
    for _ in 0..2 {
        bad_credentials(t.login(&w.engine, "fred", WRONG, from.clone()).await);
    }
    let view = t.list_locks(&w.engine, &admin).await.unwrap();
    let failures = |kind| {
        view.iter()
            .find(|v| v.kind == kind)
            .map(|v| v.failures)
            .unwrap_or(0)
    };
    assert_eq!(failures(LoginLockKind::Account), 2, "{view:?}");
    assert_eq!(failures(LoginLockKind::Address), 4, "{view:?}");
    // Two more failures from the address (another name) lock it: 6.
    for _ in 0..2 {
        bad_credentials(t.login(&w.engine, "other", WRONG, from.clone()).await);
    }
    retry_after(t.login(&w.engine, "fred", PASSWORD, from.clone()).await);
    // ...and fred's own success from elsewhere does not unlock it.
    t.login(&w.engine, "fred", PASSWORD, ip("192.0.2.78"))
        .await
        .unwrap();
    retry_after(t.login(&w.engine, "fred", PASSWORD, from).await);
}

#[tokio::test]
async fn a_lock_survives_a_new_engine_on_the_same_database() {
    let w = World::new().await;
    w.user("gina", Role::Deployer).await;
    let t = LoginThrottle::new(policy());
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "gina", WRONG, None).await);
    }
    let restarted = w.reopen().await;
    let fresh = LoginThrottle::new(policy());
    retry_after(fresh.login(&restarted, "gina", PASSWORD, None).await);
    assert_eq!(fresh.peak_verifications(), 0, "no password was checked");
}

/// 200 attempts at a locked account write one `auth.throttled` entry per
/// lock, not one per attempt; every failure that was judged is still an
/// `auth.login` failure.
#[tokio::test]
async fn refusals_are_audited_once_per_lock_under_a_flood() {
    let w = World::new().await;
    w.user("hank", Role::Viewer).await;
    let mut p = policy();
    p.account.first_lock = Duration::from_secs(5);
    let t = LoginThrottle::new(p);
    let from = ip("198.51.100.20");
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "hank", WRONG, from.clone()).await);
    }
    let mut refused = 0;
    for i in 0..200 {
        let password = if i % 2 == 0 { WRONG } else { PASSWORD };
        if let Err(Error::Throttled { .. }) =
            t.login(&w.engine, "hank", password, from.clone()).await
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 200);
    let throttled = w.audit("auth.throttled").await;
    assert_eq!(throttled.len(), 1, "{throttled:#?}");
    let e = &throttled[0];
    assert_eq!(e.actor_kind, "anonymous");
    assert_eq!(e.actor_name, "hank");
    assert_eq!(e.source_ip.as_deref(), Some("198.51.100.20"));
    assert_eq!(e.result, "denied");
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["kind"], "account");
    assert_eq!(details["key"], "hank");
    assert_eq!(details["failures"], 3);
    assert!(
        details["retry_after_secs"].as_u64().unwrap() >= 1,
        "{details}"
    );
    assert!(details["locked_until"].is_string(), "{details}");
    assert!(!e.details.contains(PASSWORD) && !e.details.contains(WRONG));

    // The next lock (after one more failure) gets its own entry, once.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    bad_credentials(t.login(&w.engine, "hank", WRONG, from.clone()).await);
    for _ in 0..50 {
        retry_after(t.login(&w.engine, "hank", WRONG, from.clone()).await);
    }
    assert_eq!(w.audit("auth.throttled").await.len(), 2);
    let failed: Vec<Entry> = w
        .audit("auth.login")
        .await
        .into_iter()
        .filter(|e| e.result == "failed")
        .collect();
    assert_eq!(failed.len(), 4, "one per judged guess");
    assert_eq!(
        audit::verify(w.engine.pool()).await.unwrap(),
        audit::Verdict::Intact {
            entries: audit::recent(w.engine.pool(), 100_000).await.unwrap().len() as u64
        }
    );
}

/// However many guesses arrive at once, no more than the policy allows are
/// judged: every attempt is charged before its password is checked.
#[tokio::test]
async fn parallel_guesses_cannot_slip_past_a_lock() {
    let w = World::new().await;
    w.user("iris", Role::Viewer).await;
    let mut p = policy();
    p.max_waiting_verifications = 64;
    let t = LoginThrottle::new(p);
    let attempts: Vec<_> = (0..24)
        .map(|i| {
            let (t, e) = (t.clone(), w.engine.clone());
            tokio::spawn(async move {
                t.login(&e, "iris", WRONG, Some(format!("10.9.0.{i}")))
                    .await
            })
        })
        .collect();
    let mut judged = 0;
    let mut throttled = 0;
    for a in attempts {
        match a.await.unwrap() {
            Err(Error::BadCredentials) => judged += 1,
            Err(Error::Throttled { .. }) => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(judged, 3, "only lock_after guesses are judged");
    assert_eq!(throttled, 21);
    assert_eq!(
        w.audit("auth.login")
            .await
            .iter()
            .filter(|e| e.result == "failed")
            .count(),
        3
    );
}

/// 50 sign-ins at once: never more than 2 password checks run at the same
/// time, at most 4 wait, and the rest are refused at once (retry in 1 s),
/// with one audit entry for the lot.
#[tokio::test]
async fn concurrent_password_checks_are_capped_and_the_excess_refused_quickly() {
    let w = World::new().await;
    w.user("jack", Role::Viewer).await;
    let t = LoginThrottle::new(policy());
    let start = Instant::now();
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let (t, e) = (t.clone(), w.engine.clone());
            tokio::spawn(async move {
                let r = t
                    .login(&e, &format!("user{i}"), WRONG, Some(format!("10.8.{i}.1")))
                    .await;
                (r, start.elapsed())
            })
        })
        .collect();
    let mut judged = vec![];
    let mut busy = vec![];
    for a in attempts {
        match a.await.unwrap() {
            (Err(Error::BadCredentials), done) => judged.push(done),
            (Err(Error::Throttled { retry_after_secs }), done) => {
                assert_eq!(retry_after_secs, 1);
                busy.push(done);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        t.peak_verifications() <= 2,
        "{} checks ran at once",
        t.peak_verifications()
    );
    assert!(t.peak_verifications() >= 1);
    assert_eq!(judged.len() + busy.len(), 50);
    assert!(
        busy.len() >= 30,
        "only {} of 50 refused: the queue is not bounded",
        busy.len()
    );
    // Refused at once: every refusal was answered before the queue of
    // checks (at least three rounds of two) had drained.
    let last_refusal = busy.iter().max().unwrap();
    let last_check = judged.iter().max().unwrap();
    assert!(
        last_refusal < last_check,
        "a refusal took {last_refusal:?}, the last check ended at {last_check:?}"
    );
    assert!(*last_refusal < Duration::from_secs(5), "{last_refusal:?}");
    let entries = w.audit("auth.throttled").await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let details: serde_json::Value = serde_json::from_str(&entries[0].details).unwrap();
    assert_eq!(details["kind"], "busy");
    assert_eq!(t.verifications_running(), 0);
}

/// Admins see and clear locks; anyone else is refused before any lookup
/// (a non-admin learns nothing, not even whether a key exists), and the
/// refusal and the clearing are audited.
#[tokio::test]
async fn admins_list_and_clear_locks_and_others_are_refused_first() {
    let w = World::new().await;
    let admin = w.user("root", Role::Admin).await;
    let deployer = w.user("kim", Role::Deployer).await;
    let mut p = policy();
    p.account.first_lock = Duration::from_secs(30);
    let t = LoginThrottle::new(p);
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "kim", WRONG, ip("192.0.2.200")).await);
    }
    retry_after(t.login(&w.engine, "kim", PASSWORD, ip("192.0.2.200")).await);

    for result in [
        t.list_locks(&w.engine, &deployer).await.map(|_| ()),
        t.clear_lock(&w.engine, &deployer, LoginLockKind::Account, "kim")
            .await,
        t.clear_lock(&w.engine, &deployer, LoginLockKind::Account, "no-such-key")
            .await,
    ] {
        assert!(matches!(result, Err(Error::Forbidden { .. })), "{result:?}");
    }
    assert_eq!(w.audit("user.manage").await.len(), 3);
    // The engine's own entry points are the shared throttle's: the same rule.
    assert!(matches!(
        w.engine.list_login_locks(&deployer).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        w.engine
            .clear_login_lock(&deployer, LoginLockKind::Account, "kim")
            .await,
        Err(Error::Forbidden { .. })
    ));

    let view = t.list_locks(&w.engine, &admin).await.unwrap();
    let kim = view
        .iter()
        .find(|v| v.kind == LoginLockKind::Account && v.key == "kim")
        .expect("kim's lock is listed");
    assert_eq!(kim.failures, 3);
    assert!(kim.locked_secs_left >= 1);
    assert!(kim.locked_until.is_some() && kim.last_failure_at.is_some());
    // Serializable as the browser gets it.
    let json = serde_json::to_value(kim).unwrap();
    assert_eq!(json["kind"], "account");

    assert!(matches!(
        t.clear_lock(&w.engine, &admin, LoginLockKind::Account, "nobody")
            .await,
        Err(Error::NotFound(_))
    ));
    // The key as a person would type it.
    t.clear_lock(&w.engine, &admin, LoginLockKind::Account, " Kim ")
        .await
        .unwrap();
    let unlocks = w.audit("auth.unlock").await;
    assert_eq!(unlocks.len(), 1);
    assert_eq!(unlocks[0].actor_name, "root");
    assert_eq!(unlocks[0].target.as_deref(), Some("kim"));
    assert!(
        unlocks[0].details.contains("\"failures\":3"),
        "{}",
        unlocks[0].details
    );
    t.login(&w.engine, "kim", PASSWORD, ip("192.0.2.200"))
        .await
        .unwrap();
    // The address's failures are its own: listed, not cleared with the account.
    let view = t.list_locks(&w.engine, &admin).await.unwrap();
    assert!(view
        .iter()
        .all(|v| v.kind == LoginLockKind::Address && v.key == "192.0.2.200"));
    t.clear_lock(&w.engine, &admin, LoginLockKind::Address, "192.0.2.200")
        .await
        .unwrap();
    assert!(t.list_locks(&w.engine, &admin).await.unwrap().is_empty());
}

/// Failures older than the forget window no longer count, and a new
/// throttle's first sign-in prunes their rows (locks still running stay).
#[tokio::test]
async fn forgotten_failures_do_not_count_and_are_pruned() {
    let w = World::new().await;
    let mut p = policy();
    p.account.forget_after = Duration::from_millis(1500);
    let t = LoginThrottle::new(p.clone());
    for _ in 0..2 {
        bad_credentials(t.login(&w.engine, "lena", WRONG, None).await);
    }
    for _ in 0..3 {
        bad_credentials(t.login(&w.engine, "max", WRONG, None).await);
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Two old failures forgotten: two new ones do not lock.
    for _ in 0..2 {
        bad_credentials(t.login(&w.engine, "lena", WRONG, None).await);
    }
    let rows = || async {
        let rows: Vec<(String,)> = engine::store::query_as(
            "SELECT key FROM login_throttle WHERE kind = 'account' ORDER BY key",
        )
        .fetch_all(w.engine.pool())
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    assert_eq!(rows().await, ["lena", "max"]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // max's lock (2 s from his third failure) has passed and his failures
    // are forgotten; lena's too. A new throttle prunes both at its first
    // sign-in, which is itself a failure for a third name.
    let fresh = LoginThrottle::new(p);
    bad_credentials(fresh.login(&w.engine, "nora", WRONG, None).await);
    assert_eq!(rows().await, ["nora"]);
}
