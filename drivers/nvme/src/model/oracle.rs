//! The oracle every any-state case and every fuzz input is held to.
//!
//! Init from the state; then either the driver is ready and a block round trip
//! (write, read back, compare, flush) passes, possibly after the driver
//! recovered from a typed I/O error, or init returned a typed error with bus
//! mastering off. Never: data that reads back different, an I/O error leaving
//! the driver neither ready nor fenced, more simulated time than
//! [`CASE_TIME_LIMIT`], a DMA the IOMMU refused, or a value the model flagged.

use std::time::Duration;

use paranoid::lifecycle::Cause;
use paranoid::time::Clock;

use super::Bench;
use crate::anystate::round_trip;
use crate::{Config, DEFAULT_INIT_BUDGET};

/// Simulated time one case may take at most: the init budget, then the data
/// check (each I/O bounded by its timeout, abort and recovery budget).
pub const CASE_TIME_LIMIT: Duration = Duration::from_secs(300);

/// How a case ended, when the oracle held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready, and the data check passed at once.
    Ready,
    /// Ready; the data check hit a typed error, the driver recovered, and a
    /// retry passed.
    ReadyAfterIoRecovery,
    /// Init returned this typed error class, bus mastering off.
    InitError(&'static str),
    /// Ready, but I/O kept failing with this typed error class (driver
    /// recovered or fenced each time).
    IoError(&'static str),
}

impl Outcome {
    /// A label for summaries.
    pub fn label(&self) -> String {
        match self {
            Outcome::Ready => "ready".to_string(),
            Outcome::ReadyAfterIoRecovery => "ready (after I/O recovery)".to_string(),
            Outcome::InitError(c) => format!("typed error at init: {c}"),
            Outcome::IoError(c) => format!("typed error at I/O: {c}"),
        }
    }
}

/// Runs init and the data check on a bench already put in its state, and
/// holds the result to the oracle.
///
/// # Errors
///
/// Why the oracle failed, starting with `HANG`, `DMA ESCAPE`, `UNCHECKED
/// VALUE`, `DATA MISMATCH` or (for an unfenced device) anything else.
pub fn check_case(mut b: Bench, salt: u64) -> Result<Outcome, String> {
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
                match round_trip(&mut b, &mut nvme, salt.wrapping_add(attempt)) {
                    Ok(()) => break,
                    Err(e) if e.starts_with("DATA MISMATCH") || e.starts_with("BENCH") => {
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
