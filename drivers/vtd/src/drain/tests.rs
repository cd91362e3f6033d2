//! Unit tests of the drain: device classes, windows, probes and faults.

use core::time::Duration;

use paranoid::time::duration_ns;

use super::wait::{step, Slot};
use super::*;

#[test]
fn class_from_pci_base_class() {
    assert_eq!(DeviceClass::from_base_class(0x02), DeviceClass::Network);
    assert_eq!(DeviceClass::from_base_class(0x01), DeviceClass::Storage);
    assert_eq!(DeviceClass::from_base_class(0x00), DeviceClass::Other);
    assert_eq!(DeviceClass::from_base_class(0xff), DeviceClass::Other);
}

#[test]
fn default_windows_per_class() {
    let c = DrainConfig::default();
    assert_eq!(c.window(DeviceClass::Network), Duration::from_millis(20));
    assert_eq!(c.window(DeviceClass::Storage), Duration::from_millis(200));
    assert_eq!(c.window(DeviceClass::Other), Duration::from_millis(150));
    let tiny = DrainConfig {
        poll_interval: Duration::ZERO,
        ..c
    };
    assert_eq!(tiny.interval_ns(), duration_ns(MIN_POLL_INTERVAL));
}

#[test]
fn a_probe_that_never_says_busy_is_judged_by_faults() {
    let mut slot = Slot {
        deadline_ns: 1_000,
        ..Slot::EMPTY
    };
    let mut unknown = || Activity::Unknown;
    step(&mut slot, Some(&mut unknown), 500, 0);
    assert!(!slot.settled);
    step(&mut slot, Some(&mut unknown), 1_000, 0);
    assert_eq!(
        slot.report.outcome,
        DrainOutcome::Drained {
            after: Duration::from_nanos(1_000),
            evidence: Evidence::NoFaults
        }
    );
    let mut slot = Slot {
        deadline_ns: 1_000,
        ..Slot::EMPTY
    };
    let mut busy_then_unknown = {
        let mut calls = 0;
        move || {
            calls += 1;
            if calls == 1 {
                Activity::Busy
            } else {
                Activity::Unknown
            }
        }
    };
    step(&mut slot, Some(&mut busy_then_unknown), 0, 0);
    step(&mut slot, Some(&mut busy_then_unknown), 2_000, 0);
    assert_eq!(
        slot.report.outcome,
        DrainOutcome::BusyAtDeadline {
            waited: Duration::from_nanos(2_000),
            limit: Limit::Window
        }
    );
}

#[test]
fn faults_settle_before_the_probe_is_asked() {
    let mut slot = Slot {
        deadline_ns: 1_000,
        ..Slot::EMPTY
    };
    slot.report.faults = 2;
    let mut asked = false;
    let mut probe = || {
        asked = true;
        Activity::Idle
    };
    assert!(!step(&mut slot, Some(&mut probe), 10, 0));
    assert!(!asked);
    assert!(matches!(
        slot.report.outcome,
        DrainOutcome::Faulted { faults: 2, .. }
    ));
}
