//! Property tests of the server's unit tests, seeded: a failure prints the seed that repeats it.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestRunner};

/// Runs `test` over `cases` values of `strategy` (`PROPTEST_CASES` overrides) from the seed in
/// `TIDEMARK_PROPTEST_SEED` or a fresh one; panics with the seed and the smallest failing input.
pub(crate) fn assert_property<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) {
    let seed = std::env::var("TIDEMARK_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("property `{name}` failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}
