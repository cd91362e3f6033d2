//! The any-state campaign: random crashed-kernel states (and malicious device
//! behaviour), each followed by init and a block round trip, against the oracle:
//!
//! - the driver reaches Ready within its budget and then passes the data check
//!   (blocks written, read back and compared; an I/O error must leave the driver
//!   recovered or fenced), or init returns a typed error with bus mastering off;
//! - no panic (caught per case), no hang (simulated time bounded), no DMA outside
//!   the window (the IOMMU's refused list), no out-of-range value acted on (the
//!   model's flags).
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
use paranoid_nvme::anystate::{any_state, AnyState};
use paranoid_nvme::model::oracle::{check_case, Outcome};
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
    outcomes: BTreeMap<String, u64>,
    /// Oracle failures by kind (shrinking re-runs included).
    failures: BTreeMap<&'static str, u64>,
}

fn failure_kind(why: &str) -> &'static str {
    for kind in [
        "PANIC",
        "HANG",
        "DMA ESCAPE",
        "UNCHECKED VALUE",
        "DATA MISMATCH",
    ] {
        if why.starts_with(kind) {
            return kind;
        }
    }
    "NOT FENCED"
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
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// One case: the state applied to a fresh bench, then the oracle.
fn run_case(state: &AnyState, salt: u64) -> Result<Outcome, String> {
    let b = MEMORY.with(|m| Bench::with_memory(m.clone()));
    state.apply(&b);
    check_case(b, salt)
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
    let panics = RefCell::new(0u64);
    let started = Instant::now();
    println!("nvme any-state campaign: seed {seed:#x}, {cases} cases");
    let result = runner.run(&any_state(), |state| {
        let salt = tally.borrow().cases;
        let outcome = catch_unwind(AssertUnwindSafe(|| run_case(&state, salt)));
        let outcome = match outcome {
            Ok(o) => o,
            Err(_) => {
                *panics.borrow_mut() += 1;
                Err("PANIC".to_string())
            }
        };
        let mut t = tally.borrow_mut();
        t.cases += 1;
        match outcome {
            Ok(o) => {
                let key = o.label();
                *t.outcomes.entry(key).or_default() += 1;
                Ok(())
            }
            Err(why) => {
                *t.failures.entry(failure_kind(&why)).or_default() += 1;
                Err(TestCaseError::fail(why))
            }
        }
    });
    let t = tally.borrow();
    let ready: u64 = t
        .outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("ready"))
        .map(|(_, v)| v)
        .sum();
    let failed = |k: &str| t.failures.get(k).copied().unwrap_or(0);
    println!(
        "nvme campaign summary: seed {seed:#x}, cases {}, ready {ready}, typed errors {}, panics {}, hangs {}, escapes {}, unchecked {}, data mismatches {}, unfenced {} ({:.1} s)",
        t.cases,
        t.outcomes.values().sum::<u64>() - ready,
        panics.borrow(),
        failed("HANG"),
        failed("DMA ESCAPE"),
        failed("UNCHECKED VALUE"),
        failed("DATA MISMATCH"),
        failed("NOT FENCED"),
        started.elapsed().as_secs_f64()
    );
    for (k, v) in &t.outcomes {
        println!("  {v:>8}  {k}");
    }
    if let Err(e) = result {
        panic!("campaign failed (seed {seed:#x}); minimal state:\n{e}");
    }
    assert!(t.cases >= u64::from(cases));
}
