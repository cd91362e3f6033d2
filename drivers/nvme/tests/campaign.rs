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
use std::time::{Duration, Instant};

use paranoid::dma::{FromDevice, ToDevice};
use paranoid::lifecycle::Cause;
use paranoid::sim::SimMemory;
use paranoid::time::Clock;
use paranoid_nvme::anystate::{any_state, AnyState};
use paranoid_nvme::model::{Bench, SimNvme, MEMORY_LEN, WINDOW_PHYS};
use paranoid_nvme::{Config, DEFAULT_INIT_BUDGET};
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

/// Simulated time one case may take at most: the init budget, then the data
/// check (each I/O bounded by its timeout, abort and recovery budget).
const CASE_TIME_LIMIT: Duration = Duration::from_secs(300);
const DEFAULT_SEED: u64 = 0x6e76_6d65_5eed_0001;

thread_local! {
    /// One simulated memory for all cases (allocating a megabyte per case
    /// would dominate the campaign's time).
    static MEMORY: SimMemory = SimMemory::new(WINDOW_PHYS, MEMORY_LEN as usize);
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ready,
    ReadyAfterIoRecovery,
    InitError(&'static str),
    IoError(&'static str),
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

/// Writes a pattern, reads it back, compares; then a flush.
fn data_check(b: &mut Bench, nvme: &mut SimNvme, salt: u64) -> Result<(), String> {
    let ns = nvme.namespace_info().ok_or("ready without a namespace")?;
    let blocks = 12u64.min(ns.blocks);
    let lba = salt % (ns.blocks - blocks + 1);
    let bytes = (blocks * u64::from(ns.block_size)) as usize;
    let offset = 512;
    let mut out = b
        .arena
        .alloc::<ToDevice>(bytes + offset, 4096)
        .map_err(|e| format!("bench: {e}"))?;
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i as u64 ^ salt).wrapping_mul(0x9e37_79b9) as u8)
        .collect();
    out.write_bytes(offset, &data)
        .map_err(|e| format!("bench: {e}"))?;
    let mut back = b
        .arena
        .alloc::<FromDevice>(bytes + offset, 4096)
        .map_err(|e| format!("bench: {e}"))?;
    let result = (|| {
        nvme.write_blocks(lba, blocks, &out, offset)
            .map_err(|e| e.class())?;
        nvme.read_blocks(lba, blocks, &mut back, offset)
            .map_err(|e| e.class())?;
        nvme.flush().map_err(|e| e.class())
    })();
    let mut got = vec![0u8; bytes];
    back.read_bytes(offset, &mut got)
        .map_err(|e| format!("bench: {e}"))?;
    let _ = b.arena.free(out);
    let _ = b.arena.free(back);
    match result {
        Ok(()) if got == data => Ok(()),
        Ok(()) => Err("DATA MISMATCH: read back differs from what was written".into()),
        Err(class) => Err(class.to_string()),
    }
}

/// One case: returns the outcome, or why the oracle failed.
fn run_case(state: &AnyState, salt: u64) -> Result<Outcome, String> {
    let mut b = MEMORY.with(|m| Bench::with_memory(m.clone()));
    state.apply(&b);
    b.clock.set_poll_step(Duration::from_micros(500));
    let start = b.clock.now_ns();
    let nvme = b
        .driver(Config::default())
        .map_err(|e| format!("new: {e}"))?;
    let outcome = match nvme.init(DEFAULT_INIT_BUDGET) {
        Err(f) => {
            if b.bus_master() {
                return Err(format!("init failed but bus mastering is on: {f}"));
            }
            Outcome::InitError(match f.cause {
                Cause::Device(e) => e.class(),
                Cause::Budget { .. } => "init budget",
            })
        }
        Ok(ok) => {
            let mut nvme = ok.device.into_inner();
            let mut outcome = Outcome::Ready;
            for attempt in 0..3 {
                match data_check(&mut b, &mut nvme, salt.wrapping_add(attempt)) {
                    Ok(()) => break,
                    Err(e) if e.starts_with("DATA MISMATCH") || e.starts_with("bench") => {
                        return Err(e)
                    }
                    Err(class) => {
                        if !nvme.is_ready() && b.bus_master() {
                            return Err(format!(
                                "I/O error `{class}` left the driver neither ready nor fenced"
                            ));
                        }
                        outcome = if nvme.is_ready() && attempt < 2 {
                            Outcome::ReadyAfterIoRecovery
                        } else {
                            Outcome::IoError(match class.as_str() {
                                "bad completion" => "bad completion",
                                "command timeout" => "command timeout",
                                "command failed" => "command failed",
                                "not ready" => "not ready",
                                "queue full" => "queue full",
                                _ => "other",
                            })
                        };
                        if !nvme.is_ready() {
                            break;
                        }
                    }
                }
            }
            outcome
        }
    };
    let spent = Duration::from_nanos(b.clock.now_ns().saturating_sub(start));
    if spent > CASE_TIME_LIMIT {
        return Err(format!("HANG: {spent:?} of simulated time"));
    }
    if b.escapes() > 0 {
        return Err(format!("DMA ESCAPE: {:?}", b.dma.refused()));
    }
    let flags = b.model.borrow().violations().to_vec();
    if !flags.is_empty() {
        return Err(format!("UNCHECKED VALUE: model flagged {flags:?}"));
    }
    Ok(outcome)
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
                let key = match o {
                    Outcome::Ready => "ready".to_string(),
                    Outcome::ReadyAfterIoRecovery => "ready (after I/O recovery)".to_string(),
                    Outcome::InitError(c) => format!("typed error at init: {c}"),
                    Outcome::IoError(c) => format!("typed error at I/O: {c}"),
                };
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
