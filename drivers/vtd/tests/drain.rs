//! `drain_then_fence` against the simulated unit: devices that go idle, never
//! go idle, fault, stay quiet; an overall deadline shorter than the windows;
//! stuck or vanished hardware; and a property test over random windows.
#![cfg(feature = "model")]

use core::time::Duration;
use std::cell::Cell;
use std::rc::Rc;

use paranoid::dma::WindowSpec;
use paranoid::sim::{SimClock, SimMemory, SimMmio};
use paranoid::time::{Clock, Deadline};
use paranoid_vtd::drain::{
    drain_then_fence, Activity, DeviceClass, DrainConfig, DrainDevice, DrainOutcome, DrainReport,
    Evidence, Fence, Limit,
};
use paranoid_vtd::model::harness::OLD_PAGES;
use paranoid_vtd::model::{Harness, OldState, VtdModel};
use paranoid_vtd::policy::{FaultPolicy, LogLine, PolicyConfig};
use paranoid_vtd::takeover::{Policy, TakeoverConfig, TakeoverReport};
use paranoid_vtd::{Vtd, VtdError};
use proptest::prelude::*;

type SimVtd = Vtd<SimMmio<VtdModel>, SimClock, SimMemory>;

const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x7ff0_0000,
    size: 1 << 20,
    page_size: 4096,
};
const NIC: u16 = 0x0010; // 00:02.0
const NVME: u16 = 0x0018; // 00:03.0
const EDU: u16 = 0x0020; // 00:04.0
const DRIVEN: u16 = 0x0028; // 00:05.0, attached to the recovery domain
const NEVER_SET_UP: u16 = 0x0030; // 00:06.0, no entry in the old tables

const MS: Duration = Duration::from_millis(1);
/// What a pass costs beyond the poll interval on the simulated unit (register
/// accesses are 100 ns each): the slack allowed around expected times.
const SLACK: Duration = Duration::from_micros(10);

fn adopt(h: &Harness, devices: &[(u16, u16)]) -> (SimVtd, OldState, TakeoverReport) {
    let old = h.old_kernel_tables(devices);
    let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
    let (vtd, report) = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &TakeoverConfig::new(Policy::Adopt, WINDOW),
        deadline,
    )
    .unwrap();
    assert!(report.adopted(), "{report}");
    (vtd, old, report)
}

fn far(h: &Harness) -> Deadline {
    Deadline::after(&h.clock, Duration::from_secs(10))
}

/// A probe that says busy until `after` from now, then idle.
fn idle_after(clock: &SimClock, after: Duration) -> impl FnMut() -> Activity {
    let clock = clock.clone();
    let at = clock.now_ns() + after.as_nanos() as u64;
    move || {
        if clock.now_ns() >= at {
            Activity::Idle
        } else {
            Activity::Busy
        }
    }
}

fn run(
    vtd: &mut SimVtd,
    devices: &mut [DrainDevice<'_>],
    deadline: Deadline,
) -> (DrainReport<VtdError>, FaultPolicy, Vec<LogLine>) {
    let mut policy = FaultPolicy::new(PolicyConfig::default());
    let mut lines = Vec::new();
    let report = drain_then_fence(
        vtd,
        devices,
        &DrainConfig::default(),
        &mut policy,
        &mut |l| lines.push(*l),
        deadline,
    );
    println!("{report}");
    (report, policy, lines)
}

fn assert_near(got: Duration, want: Duration, slack: Duration) {
    assert!(
        got >= want && got <= want + slack,
        "{got:?} not in [{want:?}, {:?}]",
        want + slack
    );
}

fn old_bytes(h: &Harness, pa: u64) -> [u8; 8] {
    let mut got = [0u8; 8];
    h.memory.read(pa, &mut got);
    got
}

#[test]
fn device_going_idle_is_drained_at_the_right_time_and_its_dma_lands_in_old_memory() {
    let h = Harness::qemu_like();
    let (mut vtd, old, _) = adopt(&h, &[(NIC, 1)]);
    let nic = old.mappings[0];
    // While busy the NIC completes TX descriptors into the old kernel's ring.
    let dma = h.dma();
    let mut idle = idle_after(&h.clock, 7 * MS);
    let mut written = 0u64;
    let mut probe = || {
        let a = idle();
        if a == Activity::Busy && written < 8 {
            dma.write(NIC, nic.iova + written * 8, &[0xd0 | written as u8; 8])
                .unwrap();
            written += 1;
        }
        a
    };
    let mut devices = [DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut probe)];
    let (report, _, _) = run(&mut vtd, &mut devices, far(&h));
    let d = report.device(NIC).unwrap();
    let DrainOutcome::Drained { after, evidence } = d.outcome else {
        panic!("{report}")
    };
    assert_eq!(evidence, Evidence::Probe);
    assert_near(after, 7 * MS, DrainConfig::DEFAULT.poll_interval + SLACK);
    assert_eq!(d.fence, Fence::Blocked);
    assert_eq!(d.window, 20 * MS);
    assert!(report.all_fenced());
    assert!(
        (70..=72).contains(&d.probes),
        "one probe per 100 µs: {}",
        d.probes
    );
    assert!(report.total < 7 * MS + 2 * DrainConfig::DEFAULT.poll_interval);
    // The in-flight completions landed in the dead kernel's buffer...
    for i in 0..8u64 {
        assert_eq!(old_bytes(&h, nic.pa + i * 8), [0xd0 | i as u8; 8]);
    }
    // ...and from now on its DMA faults.
    assert!(dma.write(NIC, nic.iova, b"late").is_err());
    assert!(!vtd.translates(NIC));
}

#[test]
fn device_never_idle_is_busy_exactly_at_its_window_then_blocked() {
    let h = Harness::qemu_like();
    let (mut vtd, old, _) = adopt(&h, &[(EDU, 7)]);
    let edu = old.mappings[0];
    let dma = h.dma();
    let mut busy = || Activity::Busy;
    let mut devices = [DrainDevice::new(EDU, DeviceClass::Other).with_probe(&mut busy)];
    // Before the fence the old translation holds.
    dma.write(EDU, edu.iova, b"inflight").unwrap();
    let (report, _, _) = run(&mut vtd, &mut devices, far(&h));
    let d = report.device(EDU).unwrap();
    let DrainOutcome::BusyAtDeadline { waited, limit } = d.outcome else {
        panic!("{report}")
    };
    assert_eq!(limit, Limit::Window);
    // The last pass sleeps to the deadline exactly, then reads FSTS once.
    assert_near(waited, 150 * MS, Duration::from_nanos(200));
    assert_eq!(d.fence, Fence::Blocked);
    assert!(
        d.probes <= 1502 && d.probes >= 1500,
        "bounded probe calls: {}",
        d.probes
    );
    assert_near(report.total, 150 * MS, SLACK);
    assert_eq!(&old_bytes(&h, edu.pa), b"inflight");
    let late = dma.write(EDU, edu.iova, b"tooolate");
    assert!(late.is_err(), "blocked after the drain");
    assert_eq!(&old_bytes(&h, edu.pa), b"inflight");
}

#[test]
fn probeless_device_faulting_during_the_drain_is_faulted_and_quiet_one_is_drained() {
    let h = Harness::qemu_like();
    let (mut vtd, old, _) = adopt(&h, &[(NIC, 1), (EDU, 7), (NVME, 3)]);
    let edu = old.mappings[1];
    let dma = h.dma();
    // The world: at 5 ms the edu device DMAs past its old mapping (once).
    let clock = h.clock.clone();
    let start = clock.now_ns();
    let mut fired = false;
    let mut idle = idle_after(&h.clock, 10 * MS);
    let mut nic_probe = || {
        if !fired && clock.now_ns() - start >= 5_000_000 {
            fired = true;
            assert!(dma
                .write(EDU, edu.iova + OLD_PAGES * 4096, b"unmapped")
                .is_err());
        }
        idle()
    };
    let mut devices = [
        DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut nic_probe),
        DrainDevice::new(EDU, DeviceClass::Other),
        DrainDevice::new(NVME, DeviceClass::Storage).with_window(30 * MS),
    ];
    let (report, policy, lines) = run(&mut vtd, &mut devices, far(&h));
    let e = report.device(EDU).unwrap();
    let DrainOutcome::Faulted { faults, after } = e.outcome else {
        panic!("{report}")
    };
    assert_eq!((faults, e.faults), (1, 1));
    assert_near(after, 5 * MS, DrainConfig::DEFAULT.poll_interval + SLACK);
    assert_eq!(e.fence, Fence::Blocked, "one fault is below the threshold");
    let n = report.device(NVME).unwrap();
    assert_eq!(n.window, 30 * MS, "override");
    let DrainOutcome::Drained { after, evidence } = n.outcome else {
        panic!("{report}")
    };
    assert_eq!(evidence, Evidence::NoFaults);
    assert_near(after, 30 * MS, SLACK);
    assert!(matches!(
        report.device(NIC).unwrap().outcome,
        DrainOutcome::Drained {
            evidence: Evidence::Probe,
            ..
        }
    ));
    assert_eq!((report.faults, report.unattributed), (1, 0));
    assert!(report.all_fenced());
    // The policy saw and classified the fault as usual.
    assert_eq!(policy.source(EDU).unwrap().stale, 1);
    assert!(matches!(lines.as_slice(), [LogLine::Fault(f)] if f.fault.source_id == EDU));
    // Waiting ended with the longest window, not the 150 ms edu default.
    assert_near(report.total, 30 * MS, SLACK);
}

#[test]
fn device_quarantined_by_the_policy_during_the_drain_is_already_blocked() {
    let h = Harness::qemu_like();
    let (mut vtd, old, _) = adopt(&h, &[(NIC, 1), (EDU, 7)]);
    let edu = old.mappings[1];
    let dma = h.dma();
    // The NIC's probe also plays the edu device faulting on every pass for
    // 1 ms (one record per pass: the unit has one fault record).
    let clock = h.clock.clone();
    let start = clock.now_ns();
    let mut busy = || {
        if clock.now_ns() - start < 1_000_000 {
            let _ = dma.write(EDU, edu.iova + OLD_PAGES * 4096, b"x");
        }
        Activity::Busy
    };
    let mut devices = [
        DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut busy),
        DrainDevice::new(EDU, DeviceClass::Other),
    ];
    let (report, policy, _) = run(&mut vtd, &mut devices, far(&h));
    let e = report.device(EDU).unwrap();
    assert!(
        matches!(e.outcome, DrainOutcome::Faulted { faults, .. } if faults >= 5),
        "{report}"
    );
    assert_eq!(e.fence, Fence::AlreadyBlocked);
    assert!(policy.source(EDU).unwrap().quarantined);
    assert_eq!(report.device(NIC).unwrap().fence, Fence::Blocked);
    assert!(report.all_fenced());
    assert!(report.to_string().contains("already blocked"));
}

#[test]
fn a_mix_of_devices_ends_with_the_longest_window_and_one_fence_batch() {
    let h = Harness::qemu_like();
    let (mut vtd, old, takeover) = adopt(&h, &[(NIC, 1), (NVME, 3), (EDU, 7), (DRIVEN, 9)]);
    let d = far(&h);
    vtd.attach(DRIVEN, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), 0x4000, d)
        .unwrap();
    let mut nic = idle_after(&h.clock, 3 * MS);
    let mut nvme = || Activity::Busy;
    let mut devices = [
        DrainDevice::new(NIC, DeviceClass::from_base_class(0x02)).with_probe(&mut nic),
        DrainDevice::new(NVME, DeviceClass::from_base_class(0x01)).with_probe(&mut nvme),
        DrainDevice::new(EDU, DeviceClass::from_base_class(0x00)),
        DrainDevice::new(DRIVEN, DeviceClass::Other),
        DrainDevice::new(NEVER_SET_UP, DeviceClass::Other),
    ];
    let waits_before = vtd.invalidations().waits;
    let (report, _, _) = run(&mut vtd, &mut devices, far(&h));
    let outcome = |sid| report.device(sid).unwrap().outcome;
    assert!(matches!(
        outcome(NIC),
        DrainOutcome::Drained {
            evidence: Evidence::Probe,
            ..
        }
    ));
    assert!(matches!(
        outcome(NVME),
        DrainOutcome::BusyAtDeadline {
            limit: Limit::Window,
            ..
        }
    ));
    assert!(matches!(
        outcome(EDU),
        DrainOutcome::Drained { after, evidence: Evidence::NoFaults } if after >= 150 * MS
    ));
    assert_eq!(outcome(DRIVEN), DrainOutcome::Driven);
    assert_eq!(outcome(NEVER_SET_UP), DrainOutcome::AlreadyBlocked);
    assert_eq!(report.device(DRIVEN).unwrap().fence, Fence::Kept);
    assert_eq!(
        report.device(NEVER_SET_UP).unwrap().fence,
        Fence::AlreadyBlocked
    );
    assert!(report.all_fenced());
    assert_near(report.total, 200 * MS, SLACK);
    if takeover.invalidation.queued {
        assert_eq!(
            vtd.invalidations().waits - waits_before,
            1,
            "three devices fenced with one queue wait"
        );
    }
    // Old DMA faults for all three; the driven device still works.
    let dma = h.dma();
    for (i, sid) in [NIC, NVME, EDU].into_iter().enumerate() {
        assert!(dma.write(sid, old.mappings[i].iova, b"late").is_err());
    }
    dma.write(DRIVEN, WINDOW.base, b"recovery").unwrap();
    let text = report.to_string();
    assert!(text.contains("5 devices"), "{text}");
    assert!(text.contains("00:02.0 network"), "{text}");
    assert!(text.contains("busy at deadline after 200"), "{text}");
    assert!(
        text.contains("driven by the recovery kernel; fence: kept"),
        "{text}"
    );
}

#[test]
fn overall_deadline_shorter_than_the_windows_ends_the_wait() {
    let h = Harness::qemu_like();
    let (mut vtd, old, _) = adopt(&h, &[(NIC, 1), (NVME, 3), (EDU, 7)]);
    let mut nic = idle_after(&h.clock, 3 * MS);
    let mut nvme = || Activity::Busy;
    let mut devices = [
        DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut nic),
        DrainDevice::new(NVME, DeviceClass::Storage).with_probe(&mut nvme),
        DrainDevice::new(EDU, DeviceClass::Other),
    ];
    let overall = Deadline::after(&h.clock, 10 * MS);
    let (report, _, _) = run(&mut vtd, &mut devices, overall);
    assert!(matches!(
        report.device(NIC).unwrap().outcome,
        DrainOutcome::Drained { .. }
    ));
    for sid in [NVME, EDU] {
        let DrainOutcome::BusyAtDeadline { waited, limit } = report.device(sid).unwrap().outcome
        else {
            panic!("{report}")
        };
        assert_eq!(
            limit,
            Limit::Overall,
            "a probe-less device is not presumed drained early"
        );
        assert_near(waited, 10 * MS, SLACK);
    }
    assert_near(report.total, 10 * MS, SLACK);
    assert!(report.all_fenced());
    let dma = h.dma();
    for (i, sid) in [NIC, NVME, EDU].into_iter().enumerate() {
        assert!(dma.write(sid, old.mappings[i].iova, b"late").is_err());
    }
    // An overall deadline already past: one look at each device, then fence.
    let h = Harness::qemu_like();
    let (mut vtd, _, _) = adopt(&h, &[(NIC, 1)]);
    let mut busy = || Activity::Busy;
    let mut devices = [DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut busy)];
    let (report, _, _) = run(&mut vtd, &mut devices, Deadline::at_ns(0));
    let d = report.device(NIC).unwrap();
    assert_eq!(d.probes, 1);
    assert!(matches!(
        d.outcome,
        DrainOutcome::BusyAtDeadline {
            limit: Limit::Overall,
            ..
        }
    ));
    assert!(report.all_fenced());
}

#[test]
fn stuck_invalidation_fails_the_fence_within_its_timeout() {
    let h = Harness::qemu_like();
    let (mut vtd, _, _) = adopt(&h, &[(NIC, 1)]);
    h.model.borrow_mut().quirks.invalidation_stuck = true;
    let mut devices = [DrainDevice::new(NIC, DeviceClass::Network)];
    let (report, _, _) = run(&mut vtd, &mut devices, far(&h));
    assert_eq!(report.device(NIC).unwrap().fence, Fence::Failed);
    assert!(matches!(report.fence_error, Some(VtdError::Timeout { .. })));
    assert!(!report.all_fenced());
    assert!(report.total <= 20 * MS + DrainConfig::DEFAULT.fence_timeout + SLACK);
    assert!(report.to_string().contains("FENCE FAILED"));
}

#[test]
fn vanished_unit_aborts_the_wait_and_reports_it() {
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let regs = h.registers();
    let d = far(&h);
    let (mut vtd, _) = Vtd::take_over(
        regs.clone(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &TakeoverConfig::new(Policy::Adopt, WINDOW),
        d,
    )
    .unwrap();
    let gone = Rc::new(Cell::new(false));
    let mut busy = {
        let (regs, gone, clock) = (regs.clone(), gone.clone(), h.clock.clone());
        let start = clock.now_ns();
        move || {
            if clock.now_ns() - start >= 2_000_000 && !gone.get() {
                regs.set_gone_after(Some(0));
                gone.set(true);
            }
            Activity::Busy
        }
    };
    let mut devices = [
        DrainDevice::new(NIC, DeviceClass::Network).with_probe(&mut busy),
        DrainDevice::new(EDU, DeviceClass::Other),
    ];
    let (report, _, _) = run(&mut vtd, &mut devices, d);
    assert!(matches!(
        report.service_error,
        Some(VtdError::RegisterGone { register: "FSTS" })
    ));
    for sid in [NIC, EDU] {
        assert!(matches!(
            report.device(sid).unwrap().outcome,
            DrainOutcome::BusyAtDeadline {
                limit: Limit::Aborted,
                ..
            }
        ));
    }
    assert!(report.total < 2 * MS + DrainConfig::DEFAULT.fence_timeout + SLACK);
    assert!(report.to_string().contains("wait aborted"));
}

#[test]
fn devices_past_the_report_are_fenced_without_a_drain() {
    let h = Harness::qemu_like();
    let sids: Vec<u16> = (0..34u16).map(|i| 0x0100 + i * 8).collect();
    let tables: Vec<(u16, u16)> = sids.iter().map(|&s| (s, 1 + (s & 0xff))).collect();
    let (mut vtd, _, _) = adopt(&h, &tables);
    let mut devices: Vec<DrainDevice<'_>> = sids
        .iter()
        .map(|&s| DrainDevice::new(s, DeviceClass::Network).with_window(MS))
        .collect();
    let (report, _, _) = run(&mut vtd, &mut devices, far(&h));
    assert_eq!((report.devices().len(), report.excess), (32, 2));
    assert!(report.all_fenced());
    for &s in &sids {
        assert!(!vtd.translates(s), "{s:#x} fenced");
    }
    assert!(report
        .to_string()
        .contains("2 more devices fenced without a drain"));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone)]
struct Dev {
    window_ms: u64,
    probe: Option<Option<u64>>,
    override_window: bool,
}

fn dev() -> impl Strategy<Value = Dev> {
    (
        0u64..250,
        prop_oneof![
            Just(None),
            Just(Some(None)),
            (0u64..400).prop_map(|t| Some(Some(t)))
        ],
        any::<bool>(),
    )
        .prop_map(|(window_ms, probe, override_window)| Dev {
            window_ms,
            probe,
            override_window,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Over random windows and idle times: the call lasts no longer than the
    /// largest window plus a pass and the fence, each device's outcome matches
    /// its script, probes are bounded, and every device ends blocked.
    #[test]
    fn total_time_is_bounded_and_every_device_ends_blocked(
        devs in proptest::collection::vec(dev(), 1..6),
        overall_ms in prop_oneof![Just(None), (0u64..300).prop_map(Some)],
    ) {
        let h = Harness::qemu_like();
        let sids: Vec<u16> = (0..devs.len() as u16).map(|i| 0x0008 * (i + 1)).collect();
        let tables: Vec<(u16, u16)> = sids.iter().map(|&s| (s, s)).collect();
        let (mut vtd, old, _) = adopt(&h, &tables);
        let config = DrainConfig::default();
        let mut probes: Vec<Box<dyn FnMut() -> Activity>> = devs
            .iter()
            .map(|d| -> Box<dyn FnMut() -> Activity> {
                match d.probe {
                    Some(Some(t)) => Box::new(idle_after(&h.clock, ms(t))),
                    _ => Box::new(|| Activity::Busy),
                }
            })
            .collect();
        let windows: Vec<Duration> = devs
            .iter()
            .map(|d| if d.override_window { ms(d.window_ms) } else { config.other })
            .collect();
        let mut devices: Vec<DrainDevice<'_>> = devs
            .iter()
            .zip(&sids)
            .zip(probes.iter_mut())
            .map(|((d, &sid), p)| {
                let mut dd = DrainDevice::new(sid, DeviceClass::Other);
                if d.override_window {
                    dd = dd.with_window(ms(d.window_ms));
                }
                if d.probe.is_some() {
                    dd = dd.with_probe(p);
                }
                dd
            })
            .collect();
        let overall = match overall_ms {
            Some(n) => Deadline::after(&h.clock, ms(n)),
            None => far(&h),
        };
        let cut = overall_ms.map(ms);
        let mut policy = FaultPolicy::new(PolicyConfig::default());
        let report = drain_then_fence(
            &mut vtd, &mut devices, &config, &mut policy, &mut |_| {}, overall,
        );
        drop(devices);
        let largest = windows.iter().copied().max().unwrap();
        let bound = cut.map_or(largest, |c| c.min(largest));
        prop_assert!(report.total <= bound + SLACK, "{report}");
        prop_assert!(report.all_fenced(), "{report}");
        let dma = h.dma();
        for (i, (d, &sid)) in devs.iter().zip(&sids).enumerate() {
            let line = report.device(sid).unwrap();
            prop_assert_eq!(line.window, windows[i]);
            prop_assert_eq!(line.fence, Fence::Blocked);
            prop_assert!(!vtd.translates(sid));
            prop_assert!(dma.write(sid, old.mappings[i].iova, b"late").is_err());
            let limit = cut.map_or(windows[i], |c| c.min(windows[i]));
            let max_probes = limit.as_nanos() / config.poll_interval.as_nanos() + 2;
            prop_assert!(u128::from(line.probes) <= max_probes, "{report}");
            match (d.probe, line.outcome) {
                (Some(Some(t)), DrainOutcome::Drained { after, evidence: Evidence::Probe }) => {
                    prop_assert!(ms(t) <= limit + SLACK, "{report}");
                    prop_assert!(after >= ms(t) && after <= ms(t) + config.poll_interval + SLACK);
                }
                (Some(_), DrainOutcome::BusyAtDeadline { waited, .. }) => {
                    prop_assert!(d.probe != Some(Some(0)), "{report}");
                    prop_assert!(waited >= limit && waited <= limit + SLACK, "{report}");
                    if let Some(Some(t)) = d.probe {
                        prop_assert!(ms(t) > limit, "{report}");
                    }
                }
                (None, DrainOutcome::Drained { after, evidence: Evidence::NoFaults }) => {
                    prop_assert!(limit == windows[i], "{report}");
                    prop_assert!(after >= limit && after <= limit + SLACK);
                }
                (None, DrainOutcome::BusyAtDeadline { limit: Limit::Overall, .. }) => {
                    prop_assert!(cut.is_some_and(|c| c < windows[i]), "{report}");
                }
                (_, outcome) => prop_assert!(false, "unexpected {outcome:?}\n{report}"),
            }
        }
    }
}
