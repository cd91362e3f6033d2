//! The any-state campaign: random crashed-kernel states (and malicious device
//! behaviour), each followed by init and a block round trip, held to the
//! oracle of [`paranoid_nvme::anystate::check`], which knows the faults each
//! state injects:
//!
//! - a state without a device fault reaches Ready within its budget and its
//!   blocks round-trip at the first attempt;
//! - every typed error is one an injected fault explains (the table behind
//!   `Fault::allowed`), with the device fenced after a failed init;
//! - init never outlives its budget (simulated time), the data check its bound;
//! - no DMA escapes the window after the driver first turned bus mastering on
//!   (as the device's configuration space saw it), no value the model flags,
//!   no wrong data, no panic (caught per case).
//!
//! At the end the fault-class table is printed: for each injected fault class,
//! how many cases were ready, recovered, ended in each error kind, and fenced.
//!
//! `PARANOID_CAMPAIGN_CASES` sets the number of cases (default 100 000 in
//! release builds, 5 000 in debug ones), `PARANOID_CAMPAIGN_SEED` the seed
//! (printed; a fixed default keeps runs reproducible). A failing case is shrunk
//! by proptest to a minimal state and printed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use paranoid::sim::SimMemory;
use paranoid_nvme::anystate::{any_state, check, AnyState, CaseReport, FaultTable};
use paranoid_nvme::model::{Bench, MEMORY_LEN, WINDOW_PHYS};
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

const DEFAULT_SEED: u64 = 0x6e76_6d65_5eed_0001;

thread_local! {
    /// One simulated memory for all cases (allocating a megabyte per case
    /// would dominate the campaign's time).
    static MEMORY: SimMemory = SimMemory::new(WINDOW_PHYS, MEMORY_LEN as usize);
}

#[derive(Default)]
struct Tally {
    cases: u64,
    table: FaultTable,
    stale_escapes: u64,
    /// Oracle failures by kind (shrinking re-runs included).
    failures: BTreeMap<String, u64>,
    /// With `PARANOID_CAMPAIGN_SURVEY`: every oracle failure, by message.
    survey: BTreeMap<String, u64>,
}

fn seed() -> u64 {
    std::env::var("PARANOID_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(DEFAULT_SEED)
}

fn cases() -> u32 {
    let default = if cfg!(debug_assertions) {
        5_000
    } else {
        100_000
    };
    std::env::var("PARANOID_CAMPAIGN_CASES")
        .ok()
        .and_then(|s| s.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One case: the state applied to a fresh bench, then the oracle.
fn run_case(state: &AnyState, salt: u64) -> Result<CaseReport, String> {
    let b = MEMORY.with(|m| Bench::with_memory(m.clone()));
    check(state, b, salt)
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
    let seed = seed();
    let cases = cases();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..RunnerConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let tally = RefCell::new(Tally::default());
    let started = Instant::now();
    println!("nvme any-state campaign: seed {seed:#x}, {cases} cases");
    let result = runner.run(&any_state(), |state| {
        let salt = tally.borrow().cases;
        let outcome = catch_unwind(AssertUnwindSafe(|| run_case(&state, salt)))
            .unwrap_or_else(|_| Err("PANIC".to_string()));
        let mut t = tally.borrow_mut();
        match outcome {
            Ok(r) => {
                t.cases += 1;
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
    let t = tally.borrow();
    println!(
        "nvme campaign summary: seed {seed:#x}, {} cases held to the oracle in {:.1} s; stale DMA refused before the driver's bus-master enable: {}; oracle failures (shrinking included): {:?}",
        t.cases,
        started.elapsed().as_secs_f64(),
        t.stale_escapes,
        t.failures,
    );
    println!("nvme fault-class table (a case counts once per injected fault):");
    print!("{}", t.table);
    for (why, n) in &t.survey {
        println!("  survey {n:>7}  {why}");
    }
    assert!(t.survey.is_empty(), "oracle failures (survey above)");
    if let Err(e) = result {
        panic!("campaign failed (seed {seed:#x}); minimal state:\n{e}");
    }
    assert!(t.cases >= u64::from(cases));
}
