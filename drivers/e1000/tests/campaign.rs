//! The any-state campaign: random crashed-kernel (and malicious-device) states,
//! init from each, and an oracle on every outcome.
//!
//! Oracle for every case:
//! - init reaches Ready within its budget and then frames round-trip through the
//!   model's loopback wire (or, with a lying device or a dead link, the data
//!   path returns typed errors — never wrong data);
//! - or init returns a typed error with the device fenced (bus mastering off);
//! - never a panic, never a hang (simulated time bounded by the budget);
//! - never a DMA outside the window once the first quiesce step has ended
//!   (the IOMMU's refusals are timestamped by the model);
//! - never a driver action the model flags (tail doorbell outside the ring,
//!   bad transmit length, null receive buffer in the driver's ring).
//!
//! `PARANOID_CAMPAIGN_CASES` (default 100,000 in release builds, 10,000 in
//! debug builds) and `PARANOID_CAMPAIGN_SEED` (hex) override the run. A failure
//! is shrunk by proptest to a minimal state and printed with the seed.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::{drain, frame, quiesce_end};
use paranoid::lifecycle::Cause;
use paranoid::time::{Clock, Deadline};
use paranoid_e1000::anystate::{any_state, AnyState};
use paranoid_e1000::init::{init, INIT_BUDGET};
use paranoid_e1000::model::{Harness, LinkBehaviour, SimE1000};
use paranoid_e1000::{E1000Error, LinkPolicy};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Simulated time init may overshoot its budget by: FLR's fixed 100 ms
/// recovery and 100 ms drain are not cut short by a deadline.
const BUDGET_SLACK: Duration = Duration::from_millis(500);
const DEFAULT_SEED: u64 = 0x00e1_0000_5eed_0001;

#[derive(Default)]
struct Tally {
    cases: u64,
    ready: u64,
    ready_link_down: u64,
    ready_data_errors: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    lies: u64,
    stale_dma_refused: u64,
}

enum Outcome {
    Ready,
    ReadyLinkDown,
    ReadyDataError(&'static str),
    Error(&'static str),
}

fn send_and_receive(nic: &mut SimE1000, h: &Harness, f: &[u8]) -> Result<Vec<u8>, E1000Error> {
    nic.send(f, Deadline::after(&h.clock, Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 2048];
    let n = nic.receive_wait(
        &mut buf,
        Deadline::after(&h.clock, Duration::from_millis(20)),
    )?;
    buf.truncate(n);
    Ok(buf)
}

/// After Ready: traffic of the dead kernel stopped, link awaited, ring
/// drained, then three frames of different sizes must come back intact.
fn data_check(state: &AnyState, h: &Harness, nic: &mut SimE1000) -> Result<Outcome, String> {
    h.wire.set_stream(h.port, None);
    h.wire.clear_inbox(h.port);
    if let LinkBehaviour::Flapping { until_ns, .. } = state.behaviour.link {
        let now = h.clock.now_ns();
        h.clock.advance_ns(until_ns.saturating_sub(now));
    }
    let honest = state.honest();
    match nic.wait_link(Deadline::after(&h.clock, Duration::from_secs(6))) {
        Ok(_) => {}
        Err(E1000Error::LinkDown { .. })
            if state.behaviour.link == LinkBehaviour::Down
                && state.link_policy == LinkPolicy::AllowDown =>
        {
            return Ok(Outcome::ReadyLinkDown)
        }
        Err(e) if !honest || state.gone_after.is_some() => {
            return Ok(Outcome::ReadyDataError(e.class()))
        }
        Err(e) => return Err(format!("ready, honest device, but the link: {e:?}")),
    }
    drain(nic);
    let mac = nic.mac().0;
    let mut first_error = None;
    for (k, len) in [60usize, 600, 1514].into_iter().enumerate() {
        let f = frame(mac, mac, k as u64 ^ state.behaviour.malice.seed, len);
        match send_and_receive(nic, h, &f) {
            Ok(got) if got == f => {}
            Ok(got) => {
                return Err(format!(
                    "frame {k} ({len} bytes) came back wrong: {} bytes, first diff at {:?}",
                    got.len(),
                    got.iter().zip(&f).position(|(a, b)| a != b)
                ))
            }
            Err(e) if honest && state.gone_after.is_none() => {
                return Err(format!("frame {k} ({len} bytes), honest device: {e:?}"))
            }
            Err(e) => {
                first_error.get_or_insert(e.class());
                // Whatever a lie did, the ring goes on: drop what is there.
                drain(nic);
            }
        }
    }
    Ok(first_error.map_or(Outcome::Ready, Outcome::ReadyDataError))
}

fn case(state: &AnyState, tally: &RefCell<Tally>) -> Result<(), String> {
    let mut h = state.harness();
    let origin = h.clock.now_ns();
    let driver = h
        .driver(state.config())
        .map_err(|e| format!("driver: {e:?}"))?;
    let result = init(driver, &h.clock);
    let spent = Duration::from_nanos(h.clock.now_ns() - origin);
    if spent > INIT_BUDGET + BUDGET_SLACK {
        return Err(format!("init took {spent:?} of simulated time (hang)"));
    }
    let (outcome, quiesce_done) = match result {
        Ok(ok) => {
            let q = quiesce_end(&ok.trace, origin);
            let mut nic = ok.device.into_inner();
            (data_check(state, &h, &mut nic)?, q)
        }
        Err(fail) => {
            if !h.fenced() {
                return Err(format!("init failed without fencing: {fail}"));
            }
            let class = match &fail.cause {
                Cause::Device(e) => e.class(),
                Cause::Budget { .. } => "budget",
            };
            (Outcome::Error(class), quiesce_end(&fail.trace, origin))
        }
    };
    let quiesce_done = quiesce_done.ok_or("no quiesce step in the trace")?;
    let m = h.model.borrow();
    let r = m.records();
    if let Some(v) = r.violations.first() {
        return Err(format!("the model flagged the driver: {v:?}"));
    }
    if let Some(e) = r.escapes.iter().find(|e| e.at_ns >= quiesce_done) {
        return Err(format!("DMA outside the window after quiesce: {e:?}"));
    }
    let mut t = tally.borrow_mut();
    t.cases += 1;
    t.lies += r.lies.len() as u64;
    t.stale_dma_refused += r.escapes.len() as u64;
    match outcome {
        Outcome::Ready => t.ready += 1,
        Outcome::ReadyLinkDown => t.ready_link_down += 1,
        Outcome::ReadyDataError(c) => *t.ready_data_errors.entry(c).or_default() += 1,
        Outcome::Error(c) => *t.errors.entry(c).or_default() += 1,
    }
    Ok(())
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
        match catch_unwind(AssertUnwindSafe(|| case(&state, &tally))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(TestCaseError::fail(why)),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!("panic: {msg}")))
            }
        }
    });
    let t = tally.into_inner();
    let errors: u64 = t.errors.values().sum();
    let data_errors: u64 = t.ready_data_errors.values().sum();
    println!(
        "e1000 campaign: {} cases in {:.1?}: ready {} (data checked), ready with link down {}, ready with typed data-path errors {} {:?}, typed init errors {} {:?}; {} (stale DMA refused before quiesce: {}, device lies told: {})",
        t.cases,
        started.elapsed(),
        t.ready,
        t.ready_link_down,
        data_errors,
        t.ready_data_errors,
        errors,
        t.errors,
        if result.is_ok() {
            "panics 0, hangs 0, escapes 0, violations 0"
        } else {
            "FAILED (see below)"
        },
        t.stale_dma_refused,
        t.lies,
    );
    if let Err(e) = result {
        panic!("campaign failed (seed {seed:#x}): {e}");
    }
}
