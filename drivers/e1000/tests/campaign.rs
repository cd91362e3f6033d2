//! The any-state campaign: random crashed-kernel (and malicious-device) states,
//! init from each, a frame round trip, and the oracle of
//! [`paranoid_e1000::anystate::check`], which knows the faults each state
//! injects:
//!
//! - a state without a device fault reaches Ready within its budget and three
//!   frames of different sizes come back intact through the loopback wire;
//! - every typed error (init, link, frames) is one an injected fault explains
//!   (the table behind `Fault::allowed`), with the device fenced after a
//!   failed init;
//! - init never outlives its budget (simulated time), the data check its bound;
//! - no DMA escapes the window after the driver first turned bus mastering on
//!   (as the function's configuration space saw it, not the driver's trace),
//!   no driver action the model flags, no frame that comes back wrong, no panic.
//!
//! At the end the fault-class table is printed: for each injected fault class,
//! how many cases were ready, recovered, ended in each error kind, and fenced.
//!
//! `PARANOID_CAMPAIGN_CASES` (default 100,000 in release builds, 10,000 in
//! debug builds) and `PARANOID_CAMPAIGN_SEED` (hex) override the run. A failure
//! is shrunk by proptest to a minimal state and printed with the seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use paranoid_e1000::anystate::{any_state, check, FaultTable};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const DEFAULT_SEED: u64 = 0x00e1_0000_5eed_0001;

#[derive(Default)]
struct Tally {
    cases: u64,
    table: FaultTable,
    lies: u64,
    stale_escapes: u64,
    /// Oracle failures by kind (shrinking re-runs included).
    failures: BTreeMap<String, u64>,
    /// With `PARANOID_CAMPAIGN_SURVEY`: every oracle failure, by message.
    survey: BTreeMap<String, u64>,
}

fn env_u64(name: &str, hex: bool) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().trim_start_matches("0x");
    if hex {
        u64::from_str_radix(v, 16).ok()
    } else {
        v.replace('_', "").parse().ok()
    }
}

/// `PARANOID_CAMPAIGN_SURVEY=1`: count every oracle failure by its message
/// (numbers blanked) and go on, instead of stopping and shrinking at the
/// first; the test still fails at the end. For triage of an oracle change.
fn survey() -> bool {
    std::env::var_os("PARANOID_CAMPAIGN_SURVEY").is_some()
}

fn survey_key(why: &str) -> String {
    let head: String = why.chars().take(160).collect();
    let blanked: String = head
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    let tail = why.rsplit_once(" [faults: ").map_or("", |(_, f)| f);
    format!("{blanked} .. [faults: {tail}")
}

#[test]
fn any_state_campaign() {
    let default_cases = if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    };
    let cases = env_u64("PARANOID_CAMPAIGN_CASES", false).unwrap_or(default_cases);
    let seed = env_u64("PARANOID_CAMPAIGN_SEED", true).unwrap_or(DEFAULT_SEED);
    println!("e1000 campaign: seed {seed:#x}, {cases} cases (PARANOID_CAMPAIGN_SEED / PARANOID_CAMPAIGN_CASES)");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let tally = RefCell::new(Tally::default());
    let started = Instant::now();
    let result = runner.run(&any_state(), |state| {
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&state))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("PANIC: {msg}"))
        });
        let mut t = tally.borrow_mut();
        match outcome {
            Ok(r) => {
                t.cases += 1;
                t.lies += r.lies as u64;
                t.stale_escapes += r.stale_escapes as u64;
                r.tally(&mut t.table);
                Ok(())
            }
            Err(why) => {
                if survey() {
                    *t.survey.entry(survey_key(&why)).or_default() += 1;
                    return Ok(());
                }
                *t.failures
                    .entry(why.split(':').next().unwrap_or("").to_string())
                    .or_default() += 1;
                Err(TestCaseError::fail(why))
            }
        }
    });
    let t = tally.into_inner();
    println!(
        "e1000 campaign: {} cases held to the oracle in {:.1?}; stale DMA refused before the driver's bus-master enable: {}; device lies told: {}; oracle failures (shrinking included): {:?}",
        t.cases,
        started.elapsed(),
        t.stale_escapes,
        t.lies,
        t.failures,
    );
    println!("e1000 fault-class table (a case counts once per injected fault):");
    print!("{}", t.table);
    for (why, n) in &t.survey {
        println!("  survey {n:>7}  {why}");
    }
    assert!(t.survey.is_empty(), "oracle failures (survey above)");
    if let Err(e) = result {
        panic!("campaign failed (seed {seed:#x}): {e}");
    }
    assert!(t.cases >= cases);
}
