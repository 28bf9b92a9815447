//! `switchyard bench login`: how many wrong passwords an attacker gets judged
//! against one account, through the same `Engine::login` the sign-in form
//! calls, with the production throttle — beside the same attack on the
//! unthrottled password check, in the same run. Then one address guessing
//! across many usernames. Figures to read, not assertions.

use engine::runtime::ProcessRuntime;
use engine::throttle::ThrottlePolicy;
use engine::Actor;
use engine::Engine;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "the right password, 24 chars";

#[derive(Default)]
struct Tally {
    judged: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
}

impl Tally {
    fn count(&self, r: &engine::error::Result<engine::users::User>) {
        let counter = match r {
            Err(engine::Error::BadCredentials) => &self.judged,
            Err(engine::Error::Throttled { .. }) => &self.throttled,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64, u64) {
        (
            self.judged.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        )
    }
}

/// `attackers` tasks guessing for `secs`; `who(task, n)` is the username and
/// source address of guess `n`; `throttled` chooses the sign-in path.
async fn attack(
    engine: &Engine,
    secs: u64,
    attackers: usize,
    throttled: bool,
    who: fn(usize, u64) -> (String, String),
) -> (u64, u64, u64) {
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..attackers)
        .map(|task| {
            let (engine, tally) = (engine.clone(), tally.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let (user, ip) = who(task, n);
                    let guess = format!("guess number {n} of {task}");
                    let r = if throttled {
                        engine.login(&user, &guess, Some(ip)).await
                    } else {
                        engine::auth::login(engine.pool(), &user, &guess).await
                    };
                    tally.count(&r);
                    if matches!(r, Err(engine::Error::Throttled { .. })) {
                        // A refused guess costs the attacker nothing: ask again soon.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    tally.get()
}

pub async fn login(dir: &Path, secs: u64, attackers: usize) -> anyhow::Result<()> {
    let dir = dir.join("bench-login");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let pool = engine::store::open(&format!("sqlite:{}", dir.join("bench.db").display())).await?;
    let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.join("logs"))));
    engine
        .create_user(&Actor::system(), "target", PASSWORD, model::Role::Admin)
        .await?;
    let policy = ThrottlePolicy::default();
    let hour = Duration::from_secs(3600);
    println!(
        "policy: account locks after {} failures ({:?} doubling to {:?}); address after {}; {} password checks at once",
        policy.account.lock_after,
        policy.account.first_lock,
        policy.account.max_lock,
        policy.address.lock_after,
        policy.max_concurrent_verifications,
    );
    println!(
        "policy ceiling: {} wrong guesses per account in the first hour (any number of addresses), {} per address",
        policy.account.max_guesses_within(hour),
        policy.address.max_guesses_within(hour)
    );
    println!("\none account, {attackers} attackers from many addresses, {secs} s each:");
    println!(
        "{:<28} {:>10} {:>10} {:>12}",
        "path", "judged", "refused", "judged/min"
    );
    // A botnet: every guess from another address, so only the account's
    // lock stands in the way.
    let botnet: fn(usize, u64) -> (String, String) = |task, n| {
        (
            "target".into(),
            format!("10.{}.{}.{}", task, (n / 250) % 250, n % 250),
        )
    };
    for (name, throttled) in [
        ("unthrottled password check", false),
        ("Engine::login (throttled)", true),
    ] {
        let (judged, refused, other) = attack(&engine, secs, attackers, throttled, botnet).await;
        let per_min = judged as f64 * 60.0 / secs as f64;
        println!("{name:<28} {judged:>10} {refused:>10} {per_min:>12.0}");
        if other > 0 {
            println!("  ({other} answers were neither judged nor refused)");
        }
    }
    let right = engine
        .login("target", PASSWORD, Some("192.0.2.1".into()))
        .await;
    println!(
        "the right password right after the attack: {}",
        match right {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("refused ({e})"),
        }
    );

    println!("\none address guessing across usernames, {secs} s:");
    let one_address: fn(usize, u64) -> (String, String) =
        |task, n| (format!("user{task}-{n}"), "198.51.100.7".into());
    let (judged, refused, _) = attack(&engine, secs, attackers, true, one_address).await;
    println!("judged {judged}, refused {refused}");
    Ok(())
}
