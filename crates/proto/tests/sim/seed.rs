//! Seeds: which ones a scenario runs, how a failure names its seed, and the check
//! that a seed replays exactly.
//!
//! - `SIM_SEED=1234`: run each selected scenario with that seed only.
//! - `SIM_SEEDS=500`: sweep seeds `0..500` instead of the CI's [`SWEEP`].
//! - `SIM_TRACE=1`: print every entry the world processes (use with `SIM_SEED`).
//!
//! Every sweep also runs its first seed twice and compares a digest of everything
//! the world processed: a machine that iterates a `HashMap` to decide what to send,
//! or reads a real clock, makes the two runs differ and the scenario fail.

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// Seeds per scenario when `SIM_SEED` is not set (what CI runs).
pub const SWEEP: u64 = 20;

thread_local! {
    static DIGEST: RefCell<Option<DefaultHasher>> = const { RefCell::new(None) };
}

/// Whether the world should feed [`digest`].
pub fn tracing_digest() -> bool {
    DIGEST.with(|d| d.borrow().is_some())
}

/// Adds one processed entry to the digest of this run.
pub fn digest(line: &str) {
    DIGEST.with(|d| {
        if let Some(h) = d.borrow_mut().as_mut() {
            h.write(line.as_bytes());
        }
    });
}

/// Runs `scenario` for the seeds chosen by the environment (see the module docs),
/// naming the seed of a failure and how to replay it.
pub fn sweep(name: &str, scenario: impl Fn(u64)) {
    sweep_n(name, SWEEP, scenario);
}

/// [`sweep`] with `seeds` seeds by default, for a scenario whose one run is long (a
/// month of virtual time: tens of thousands of retries). `SIM_SEEDS` still wins.
pub fn sweep_n(name: &str, seeds: u64, scenario: impl Fn(u64)) {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.trim().parse().ok()) {
        run_one(name, seed, &scenario);
        return;
    }
    let seeds =
        std::env::var("SIM_SEEDS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(seeds);
    for seed in 0..seeds {
        run_one(name, seed, &scenario);
    }
    let first = digest_of(name, 0, &scenario);
    let again = digest_of(name, 0, &scenario);
    assert_eq!(
        first, again,
        "scenario {name} is not deterministic: seed 0 ran differently twice (a HashMap \
         iterated, a real clock read?); compare SIM_TRACE=1 SIM_SEED=0 runs"
    );
}

fn digest_of(name: &str, seed: u64, scenario: &impl Fn(u64)) -> u64 {
    DIGEST.with(|d| *d.borrow_mut() = Some(DefaultHasher::new()));
    run_one(name, seed, scenario);
    DIGEST.with(|d| d.borrow_mut().take()).map_or(0, |h| h.finish())
}

fn run_one(name: &str, seed: u64, scenario: &impl Fn(u64)) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
        DIGEST.with(|d| d.borrow_mut().take());
        eprintln!(
            "\nscenario `{name}` failed with seed {seed}; replay it with\n  \
             SIM_SEED={seed} cargo test -p communitas-proto --test sim {name}\n\
             (add SIM_TRACE=1 to see every step)\n"
        );
        resume_unwind(panic);
    }
}
