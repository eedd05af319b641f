//! The seeded runner of the crate's property tests (tests only: the unit tests' module, and
//! included by path in the integration tests that run properties): the seed comes from
//! `TIDEMARK_PROPTEST_SEED` or is fresh, and the test prints it; `PROPTEST_CASES` changes the
//! number of cases.

use proptest::test_runner::{Config, RngSeed, TestRunner};

/// A runner of `cases` cases (unless `PROPTEST_CASES` says otherwise), and its seed.
pub(crate) fn seeded_runner(cases: u32) -> (TestRunner, u64) {
    let seed = std::env::var("TIDEMARK_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    (TestRunner::new(config), seed)
}
