//! The takeover, the window and the fault policy against the simulated unit.
#![cfg(feature = "model")]

use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::sim::{SimClock, SimMemory, SimMmio};
use paranoid::time::Deadline;
use paranoid_vtd::invalidate::Mode;
use paranoid_vtd::iommu::Quarantine;
use paranoid_vtd::model::{Harness, VtdModel};
use paranoid_vtd::policy::{Action, FaultClass, FaultPolicy, LogLine, PolicyConfig};
use paranoid_vtd::regs::{self, Levels};
use paranoid_vtd::takeover::{
    AdoptError, DeviceOverride, Outcome, OverrideAction, Policy, TakeoverConfig, TakeoverReport,
};
use paranoid_vtd::{Vtd, VtdError};

type SimVtd = Vtd<SimMmio<VtdModel>, SimClock, SimMemory>;

const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x7ff0_0000,
    size: 1 << 20,
    page_size: 4096,
};
const NVME: u16 = 0x0018; // 00:03.0, driven by the recovery kernel
const EDU: u16 = 0x0020; // 00:04.0, left DMAing by the dead kernel
const NIC: u16 = 0x0010; // 00:02.0

fn deadline(h: &Harness) -> Deadline {
    Deadline::after(&h.clock, Duration::from_secs(1))
}

fn take_over(h: &Harness, config: &TakeoverConfig<'_>) -> (SimVtd, TakeoverReport) {
    Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        config,
        deadline(h),
    )
    .unwrap()
}

fn assert_protocol_clean(h: &Harness) {
    let s = h.model.borrow().stats;
    assert_eq!(s.gcmd_multi_command_writes, 0, "one GCMD command per write");
    assert_eq!(s.translation_disables, 0, "TE is never turned off");
    assert_eq!(s.register_invalidation_while_queued, 0);
    assert_eq!(
        s.translation_enabled_without_root, 0,
        "TE turned on before a root table was latched"
    );
    assert_eq!(
        s.iotlb_invalidations_without_drain, 0,
        "an IOTLB invalidation left out the draining CAP.DRD/DWD offer"
    );
}

#[test]
fn adopt_keeps_stale_dma_landing_in_old_buffers() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(report.translation_was_enabled);
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    assert_eq!((report.old_contexts, report.contexts_adopted), (2, 2));
    assert_eq!(report.old_root, Some(old.root));
    assert!(
        ![1, 7].contains(&report.recovery_domain),
        "old ids reserved"
    );
    assert_eq!(h.model.borrow().root_table(), vtd.root_table());
    assert_ne!(vtd.root_table(), old.root, "copied, not reused");
    // The dead kernel's edu DMA still lands in its old buffer.
    let dma = h.dma();
    let edu = old.mappings[1];
    dma.write(EDU, edu.iova + 0x40, b"stale").unwrap();
    let mut got = [0u8; 5];
    h.memory.read(edu.pa + 0x40, &mut got);
    assert_eq!(&got, b"stale");
    // Recovery DMA through the window.
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), WINDOW.size, d)
        .unwrap();
    dma.write(NVME, WINDOW.base + 0x1000, b"identify").unwrap();
    let mut got = [0u8; 8];
    h.memory.read(h.window_phys() + 0x1000, &mut got);
    assert_eq!(&got, b"identify");
    assert!(
        dma.write(NVME, edu.iova, b"x").is_err(),
        "recovery device cannot reach old mappings"
    );
    assert_protocol_clean(&h);
}

#[test]
fn fence_blocks_stale_dma_and_policy_classifies_it() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert_eq!(report.outcome, Outcome::Fenced, "{report}");
    assert_eq!((report.old_contexts, report.contexts_adopted), (2, 0));
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), 0x4000, d)
        .unwrap();
    let dma = h.dma();
    let edu = old.mappings[1];
    assert!(dma.write(EDU, edu.iova, b"stale").is_err());
    let mut got = [0u8; 5];
    h.memory.read(edu.pa, &mut got);
    assert_eq!(got, [0; 5], "stale DMA did not land");
    let mut policy = FaultPolicy::new(PolicyConfig::default());
    let mut lines = Vec::new();
    let s = policy
        .service(&mut vtd, &mut |l| lines.push(*l), d)
        .unwrap();
    assert_eq!(s.records, 1);
    let LogLine::Fault(e) = lines[0] else {
        panic!("{lines:?}")
    };
    assert_eq!(e.fault.source_id, EDU);
    assert_eq!(e.fault.address, edu.iova);
    assert!(e.fault.write);
    assert_eq!(e.fault.reason, 0x2, "context entry not present");
    assert_eq!(e.class, FaultClass::Stale);
    assert_eq!(e.action, Action::Counted);
    // Unknown source: a device the dead kernel never set up, on another bus.
    assert!(dma.read(0x0300, 0x1000, &mut [0; 4]).is_err());
    lines.clear();
    policy
        .service(&mut vtd, &mut |l| lines.push(*l), d)
        .unwrap();
    let LogLine::Fault(e) = lines[0] else {
        panic!("{lines:?}")
    };
    assert_eq!(
        (e.class, e.fault.reason, e.fault.write),
        (FaultClass::UnknownSource, 0x1, false)
    );
    assert_protocol_clean(&h);
}

#[test]
fn corrupt_context_table_falls_back_to_fence() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    // Garbage in the edu context entry: reserved bits and a pointer past RAM.
    let ctx = old.context_tables[0].1;
    h.memory
        .write_u64(ctx + u64::from(EDU & 0xff) * 16, 0xdead_beef_0000_0ff1);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(
        matches!(
            report.outcome,
            Outcome::FencedAfterAdoptFailed(AdoptError::ContextEntry { source_id: EDU, .. })
        ),
        "{report}"
    );
    assert_eq!(report.contexts_adopted, 0);
    // Everything is fenced: even the NIC's old, valid mapping now faults.
    let dma = h.dma();
    assert!(dma.write(NIC, old.mappings[0].iova, b"x").is_err());
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), 0x1000, d)
        .unwrap();
    dma.write(NVME, WINDOW.base, b"ok").unwrap();
    assert_protocol_clean(&h);
}

#[test]
fn loops_and_out_of_ram_pointers_fail_adopt() {
    // Context table pointer = the root table itself.
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1)]);
    h.memory.write_u64(old.root, old.root | 1);
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(matches!(
        r.outcome,
        Outcome::FencedAfterAdoptFailed(AdoptError::ContextTable { bus: 0, .. })
    ));
    // Two buses sharing a context table.
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1)]);
    h.memory
        .write_u64(old.root + 16, old.context_tables[0].1 | 1);
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(matches!(
        r.outcome,
        Outcome::FencedAfterAdoptFailed(AdoptError::ContextTable { bus: 1, .. })
    ));
    // A context table inside the recovery reservation (not the old kernel's RAM).
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1)]);
    h.memory.write_u64(old.root, 0x0100_0000 | 1);
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(matches!(
        r.outcome,
        Outcome::FencedAfterAdoptFailed(AdoptError::ContextTable { .. })
    ));
    // RTADDR past RAM.
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(NIC, 1)]);
    let mut regs_ = h.registers();
    // paranoid:allow(dma_outside_window): the test plants a root table address past RAM on purpose
    paranoid::mmio::RegisterIo::write64(&mut regs_, regs::RTADDR, 0x40_0000_0000);
    paranoid::mmio::RegisterIo::write32(
        &mut regs_,
        regs::GCMD,
        (regs::Global::TE | regs::Global::SRTP).bits(),
    );
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(matches!(
        r.outcome,
        Outcome::FencedAfterAdoptFailed(AdoptError::RootPointer { .. })
    ));
}

#[test]
fn window_collision_with_old_mapping_or_rmrr_is_refused() {
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(NIC, 1)]);
    let colliding = WindowSpec {
        base: paranoid_vtd::model::harness::OLD_IOVA,
        ..WINDOW
    };
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, colliding));
    assert!(
        matches!(
            r.outcome,
            Outcome::FencedAfterAdoptFailed(AdoptError::WindowCollision { source_id: NIC, .. })
        ),
        "{r}"
    );
    let h = Harness::qemu_like();
    let rmrrs = [(0x7ff8_0000, 0x7ff8_ffff)];
    let config = TakeoverConfig {
        rmrrs: &rmrrs,
        ..TakeoverConfig::new(Policy::Fence, WINDOW)
    };
    let e = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &config,
        deadline(&h),
    )
    .err();
    assert_eq!(
        e,
        Some(VtdError::WindowCollidesWithRmrr {
            base: 0x7ff8_0000,
            limit: 0x7ff8_ffff
        })
    );
}

/// RMRRs that end right below the window or start right at its end (the
/// firmware's reserved ranges beside it) do not collide: the takeover goes on
/// (a unit found off comes up fresh).
#[test]
fn rmrrs_beside_the_window_are_accepted() {
    let end = WINDOW.base + WINDOW.size;
    for rmrr in [
        (WINDOW.base - 0x1_0000, WINDOW.base - 1),
        (end, end + 0xffff),
    ] {
        let h = Harness::qemu_like();
        let rmrrs = [rmrr];
        let config = TakeoverConfig {
            rmrrs: &rmrrs,
            ..TakeoverConfig::new(Policy::Fence, WINDOW)
        };
        let (_, r) = take_over(&h, &config);
        assert_eq!(r.outcome, Outcome::Fresh, "RMRR {rmrr:x?}: {r}");
    }
}

#[test]
fn overrides_block_under_adopt_and_keep_under_fence() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let o = [DeviceOverride {
        source_id: NIC,
        action: OverrideAction::Block,
    }];
    let config = TakeoverConfig {
        overrides: &o,
        ..TakeoverConfig::new(Policy::Adopt, WINDOW)
    };
    let (_, r) = take_over(&h, &config);
    assert_eq!(
        (r.outcome, r.contexts_adopted, r.contexts_blocked),
        (Outcome::Adopted, 1, 1)
    );
    let dma = h.dma();
    assert!(dma.write(NIC, old.mappings[0].iova, b"x").is_err());
    assert!(dma.write(EDU, old.mappings[1].iova, b"x").is_ok());

    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let o = [DeviceOverride {
        source_id: EDU,
        action: OverrideAction::Adopt,
    }];
    let config = TakeoverConfig {
        overrides: &o,
        ..TakeoverConfig::new(Policy::Fence, WINDOW)
    };
    let (_, r) = take_over(&h, &config);
    assert_eq!((r.outcome, r.contexts_adopted), (Outcome::Fenced, 1));
    let dma = h.dma();
    assert!(dma.write(NIC, old.mappings[0].iova, b"x").is_err());
    assert!(dma.write(EDU, old.mappings[1].iova, b"x").is_ok());
}

#[test]
fn stale_source_is_quarantined_after_threshold_and_own_faults_halt() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(EDU, 7)]);
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), 0x1000, d)
        .unwrap();
    let dma = h.dma();
    let mut policy = FaultPolicy::new(PolicyConfig {
        quarantine_after: 3,
        halt_on_window_fault: true,
        ..PolicyConfig::default()
    });
    let edu = old.mappings[0];
    let mut actions = Vec::new();
    for i in 0..3 {
        // Outside its old mapping: faults even though adopted.
        assert!(dma.write(EDU, edu.iova + 0x10_0000, b"x").is_err());
        assert!(
            dma.write(EDU, edu.iova, b"y").is_ok(),
            "still adopted ({i})"
        );
        let mut log = |l: &LogLine| {
            if let LogLine::Fault(e) = l {
                actions.push(e.action)
            }
        };
        let s = policy.service(&mut vtd, &mut log, d).unwrap();
        assert_eq!(s.quarantined, u32::from(i == 2), "round {i}");
    }
    assert_eq!(
        actions,
        [Action::Counted, Action::Counted, Action::Quarantined]
    );
    assert!(dma.write(EDU, edu.iova, b"y").is_err(), "quarantined");
    assert!(policy.source(EDU).unwrap().quarantined);
    assert_eq!(policy.totals().quarantines, 1);
    // That fault occupies QEMU's single record: drain it first.
    let s = policy.service(&mut vtd, &mut |_| {}, d).unwrap();
    assert_eq!(s.records, 1);
    // Our own bug: the recovery device outside its mapped window page.
    assert!(dma.write(NVME, WINDOW.base + 0x8000, b"z").is_err());
    let s = policy.service(&mut vtd, &mut |_| {}, d).unwrap();
    assert_eq!(s.halt.map(|f| f.source_id), Some(NVME));
    assert_eq!(policy.totals().own, 1);
    assert!(vtd.is_attached(NVME), "own devices are never quarantined");
}

#[test]
fn fault_storm_overflows_and_the_core_keeps_going() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(EDU, 7), (NIC, 1)]);
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    let d = deadline(&h);
    let dma = h.dma();
    let mut policy = FaultPolicy::new(PolicyConfig {
        log_burst: 4,
        log_interval_ns: u64::MAX,
        ..PolicyConfig::default()
    });
    let mut lines = 0;
    for round in 0..50u64 {
        for i in 0..100 {
            let _ = dma.write(EDU, old.mappings[0].iova + i * 8, b"storm");
        }
        let s = policy.service(&mut vtd, &mut |_| lines += 1, d).unwrap();
        assert_eq!(s.records, 1, "round {round}: one record like QEMU");
        assert!(s.overflow);
    }
    let lost = h.model.borrow().stats.faults_lost;
    assert_eq!(lost, 50 * 99);
    let t = policy.totals();
    assert_eq!((t.records, t.overflows), (50, 50));
    assert!(t.suppressed > 0 && lines <= 5, "rate-limited log");
    // After the storm a new fault is recorded normally.
    assert!(dma.write(NIC, 0x5000, b"x").is_err());
    let s = policy.service(&mut vtd, &mut |_| {}, d).unwrap();
    assert_eq!((s.records, s.overflow), (1, false));
    assert_eq!(h.model.borrow().fsts() & 3, 0, "PFO and PPF clear");
}

#[test]
fn batched_unmap_invalidates_once_and_really_invalidates() {
    let h = Harness::qemu_like();
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert_eq!(report.outcome, Outcome::Fresh);
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    let dma = h.dma();
    vtd.map_range(WINDOW.base, h.window_phys(), WINDOW.size, d)
        .unwrap();
    for p in 0..256 {
        dma.read(NVME, WINDOW.base + p * 4096, &mut [0; 8]).unwrap();
    }
    assert!(
        h.model.borrow().iotlb_entries() >= 256,
        "translations cached"
    );
    let before = h.model.borrow().stats.iotlb_invalidations;
    vtd.unmap_range(WINDOW.base, WINDOW.size, d).unwrap();
    assert_eq!(h.model.borrow().stats.iotlb_invalidations, before + 1);
    assert!(
        dma.read(NVME, WINDOW.base + 0x7000, &mut [0; 8]).is_err(),
        "cached translation gone"
    );
    assert!(matches!(
        vtd.map_page_now(WINDOW.base - 4096, 0x10_0000, d),
        Err(VtdError::OutsideWindow { .. })
    ));
    assert!(matches!(
        vtd.unmap_page_now(WINDOW.base, d),
        Err(VtdError::NotMapped { .. })
    ));
}

/// The recovery window as a type, for `map_window`.
enum Recovery {}
impl paranoid::dma::Window for Recovery {
    const NAME: &'static str = "recovery";
    const BASE: u64 = WINDOW.base;
    const SIZE: u64 = WINDOW.size;
}

/// A window this unit was not taken over with.
enum Elsewhere {}
impl paranoid::dma::Window for Elsewhere {
    const NAME: &'static str = "elsewhere";
    const BASE: u64 = 0x4000_0000;
    const SIZE: u64 = 1 << 20;
}

#[test]
fn a_window_mapping_carries_its_window_and_pins_its_pages() {
    let h = Harness::qemu_like();
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    assert!(matches!(
        vtd.map_window::<Elsewhere>(h.window_phys(), d),
        Err(VtdError::OutsideWindow {
            iova: 0x4000_0000,
            ..
        })
    ));
    assert!(matches!(
        vtd.map_window::<Recovery>(h.window_phys() + 0x800, d),
        Err(VtdError::Window(_))
    ));
    let mapping = vtd.map_window::<Recovery>(h.window_phys(), d).unwrap();
    assert_eq!(
        (mapping.phys(), mapping.len()),
        (h.window_phys(), WINDOW.size)
    );
    // The device reaches the mapping's memory at the window's addresses.
    let dma = h.dma();
    dma.write(NVME, WINDOW.base + 0x3000, b"pinned").unwrap();
    let mut got = [0u8; 6];
    h.memory.read(mapping.phys() + 0x3000, &mut got);
    assert_eq!(&got, b"pinned");
    // And the pages stay: no unmap, no second mapping over them.
    assert!(matches!(
        vtd.unmap_page_now(WINDOW.base + 0x3000, d),
        Err(VtdError::Pinned { .. })
    ));
    assert!(matches!(
        vtd.unmap_range(WINDOW.base, WINDOW.size, d),
        Err(VtdError::Pinned { .. })
    ));
    assert!(matches!(
        vtd.map_page_now(WINDOW.base, 0x10_0000, d),
        Err(VtdError::AlreadyMapped { .. })
    ));
    assert_eq!(
        vtd.translate_window(WINDOW.base + 0x3000),
        Some(h.window_phys() + 0x3000)
    );
}

#[test]
fn register_invalidation_and_old_queue_takeover() {
    for mode in [Mode::Register, Mode::Queued, Mode::Auto] {
        let h = Harness::qemu_like();
        h.old_kernel_tables(&[(EDU, 7)]);
        h.old_kernel_queue(0);
        let config = TakeoverConfig {
            invalidation: mode,
            ..TakeoverConfig::new(Policy::Adopt, WINDOW)
        };
        let (mut vtd, r) = take_over(&h, &config);
        assert!(r.invalidation.old_queue_was_enabled);
        assert!(!r.invalidation.old_queue_stuck);
        assert_eq!(r.invalidation.queued, mode != Mode::Register);
        let d = deadline(&h);
        vtd.attach(NVME, d).unwrap();
        vtd.map_range(WINDOW.base, h.window_phys(), 0x2000, d)
            .unwrap();
        vtd.unmap_range(WINDOW.base, 0x2000, d).unwrap();
        assert_protocol_clean(&h);
    }
    // A wedged old queue is switched off after its deadline.
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(EDU, 7)]);
    h.old_kernel_queue(3);
    h.model.borrow_mut().quirks.invalidation_stuck = false;
    let start = paranoid::time::Clock::now_ns(&h.clock);
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert!(r.invalidation.old_queue_stuck);
    let waited = paranoid::time::Clock::now_ns(&h.clock) - start;
    assert!(
        waited < 50_000_000,
        "bounded by the drain budget: {waited} ns"
    );
    assert!(r.invalidation.old_queue_was_enabled);
}

#[test]
fn stuck_hardware_times_out_with_typed_errors() {
    let h = Harness::qemu_like();
    h.model.borrow_mut().quirks.gcmd_stuck = true;
    let e = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &TakeoverConfig::new(Policy::Fence, WINDOW),
        deadline(&h),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            e,
            VtdError::Timeout {
                register: "GSTS",
                waiting_for: "GSTS.QIES set",
                ..
            }
        ),
        "{e:?}"
    );
    let h = Harness::qemu_like();
    h.model.borrow_mut().quirks.invalidation_stuck = true;
    let config = TakeoverConfig {
        invalidation: Mode::Register,
        ..TakeoverConfig::new(Policy::Fence, WINDOW)
    };
    let e = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &config,
        deadline(&h),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            e,
            VtdError::Timeout {
                register: "CCMD",
                ..
            }
        ),
        "{e:?}"
    );
    // A unit that reads all-ones.
    let h = Harness::qemu_like();
    let regs_ = h.registers();
    regs_.set_gone_after(Some(0));
    let e = Vtd::take_over(
        regs_,
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &config,
        deadline(&h),
    )
    .err();
    assert_eq!(e, Some(VtdError::RegisterGone { register: "VER" }));
}

#[test]
fn gcmd_latency_is_waited_for() {
    let h = Harness::qemu_like();
    h.model.borrow_mut().quirks.gcmd_latency_ns = 50_000;
    let (_, r) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert_eq!(r.outcome, Outcome::Fresh);
    assert!(h.model.borrow_mut().gsts().contains(regs::Global::TE));
    assert_protocol_clean(&h);
}

#[test]
fn four_level_unit_maps_a_high_window() {
    let cap = regs::QEMU_CAP & !(0x1f << 8 | 0x3f << 16) | 0x4 << 8 | 47 << 16;
    let h = Harness::with_caps(cap, regs::QEMU_ECAP);
    let high = WindowSpec {
        base: 0x80_0000_0000,
        ..WINDOW
    };
    let (mut vtd, r) = take_over(&h, &TakeoverConfig::new(Policy::Fence, high));
    assert_eq!(r.levels, Levels::Four);
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(high.base, h.window_phys(), 0x2000, d)
        .unwrap();
    h.dma().write(NVME, high.base + 0x1004, b"four").unwrap();
    let mut got = [0u8; 4];
    h.memory.read(h.window_phys() + 0x1004, &mut got);
    assert_eq!(&got, b"four");
    assert_eq!(
        vtd.translate_window(high.base + 0x1000),
        Some(h.window_phys() + 0x1000)
    );
}

#[test]
fn qemu_style_fault_collapsing_overflows_only_on_another_source() {
    let h = Harness::qemu_like();
    h.model.borrow_mut().quirks.collapse_same_source = true;
    let old = h.old_kernel_tables(&[(EDU, 7), (NIC, 1)]);
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    let dma = h.dma();
    for i in 0..255 {
        let _ = dma.read(NIC, 0x0c00_0000 + i * 16, &mut [0; 16]);
    }
    assert_eq!(
        h.model.borrow().fsts() & 1,
        0,
        "same source: collapsed, no PFO"
    );
    let _ = dma.write(EDU, old.mappings[0].iova, b"x");
    assert_eq!(h.model.borrow().fsts() & 1, 1, "another source: PFO");
    let mut policy = FaultPolicy::new(PolicyConfig::default());
    let s = policy.service(&mut vtd, &mut |_| {}, deadline(&h)).unwrap();
    assert_eq!((s.records, s.overflow), (1, true));
    let st = h.model.borrow().stats;
    assert_eq!((st.faults_collapsed, st.faults_lost), (254, 1));
}

/// Blocking an adopted device invalidates its cached context under the domain
/// id its entry holds (read from the entry's high word): a request naming
/// another domain would leave the cached translation usable.
#[test]
fn blocking_an_adopted_device_drops_its_cached_context() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    let dma = h.dma();
    let (nic, edu) = (old.mappings[0], old.mappings[1]);
    // Both devices translate, so the unit caches their contexts.
    dma.write(EDU, edu.iova, b"warm").unwrap();
    dma.write(NIC, nic.iova, b"warm").unwrap();
    assert_eq!(vtd.block(EDU, deadline(&h)).unwrap(), Quarantine::Blocked);
    assert!(
        dma.write(EDU, edu.iova + 0x40, b"late").is_err(),
        "a blocked device still translated through its cached context"
    );
    dma.write(NIC, nic.iova, b"still").unwrap();
    assert_protocol_clean(&h);
}

/// A kernel handing over in order leaves the unit off: translation, then queued
/// invalidation (the unit is consumed, so nothing maps through it afterwards).
#[test]
fn turn_off_leaves_translation_and_queued_invalidation_off() {
    let h = Harness::qemu_like();
    let (vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    let on = h.model.borrow_mut().gsts();
    assert!(on.contains(regs::Global::TE) && on.contains(regs::Global::QIE));
    vtd.turn_off(deadline(&h)).unwrap();
    let off = h.model.borrow_mut().gsts();
    assert!(!off.contains(regs::Global::TE), "{off:?}");
    assert!(!off.contains(regs::Global::QIE), "{off:?}");
}

/// Attaching a device whose entry was not present costs no invalidation when
/// the unit does not cache not-present entries (CAP.CM clear, as on QEMU's
/// default unit); replacing a present entry invalidates the old domain.
#[test]
fn attach_invalidates_only_what_the_unit_may_have_cached() {
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(EDU, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    let before = vtd.invalidations();
    vtd.attach(NVME, deadline(&h)).unwrap();
    let fresh = vtd.invalidations();
    assert_eq!(
        (fresh.context, fresh.iotlb),
        (before.context, before.iotlb),
        "a not-present entry needs no invalidation without caching mode"
    );
    vtd.attach(EDU, deadline(&h)).unwrap();
    let replaced = vtd.invalidations();
    assert_eq!(replaced.context - fresh.context, 1, "the old context entry");
    assert_eq!(replaced.iotlb - fresh.iotlb, 1, "the old domain's IOTLB");
}

/// Blocking an attached device detaches it: it is no longer reported
/// attached, its slot is free again (all `MAX_ATTACHED` can be used after
/// it), and attaching it again translates its DMA once more.
#[test]
fn blocking_an_attached_device_detaches_it() {
    let h = Harness::qemu_like();
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    vtd.attach(NVME, deadline(&h)).unwrap();
    assert!(vtd.is_attached(NVME) && vtd.translates(NVME));
    assert_eq!(vtd.block(NVME, deadline(&h)).unwrap(), Quarantine::Blocked);
    assert!(!vtd.is_attached(NVME), "still listed as attached");
    assert!(!vtd.translates(NVME));
    // The freed slot is usable: MAX_ATTACHED other devices fit.
    for n in 0..paranoid_vtd::MAX_ATTACHED as u16 {
        vtd.attach(0x0100 + n, deadline(&h)).unwrap();
    }
    assert!(
        vtd.attach(NVME, deadline(&h)).is_err(),
        "one past MAX_ATTACHED"
    );
    vtd.block(0x0100, deadline(&h)).unwrap();
    vtd.attach(NVME, deadline(&h)).unwrap();
    assert!(vtd.is_attached(NVME) && vtd.translates(NVME));
    assert_protocol_clean(&h);
}

/// A source with no present entry is skipped without any invalidation round
/// trip: blocking it again, or blocking a source that never had an entry,
/// leaves the invalidation counters as they were.
#[test]
fn blocking_what_is_already_blocked_costs_no_invalidation() {
    let h = Harness::qemu_like();
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    vtd.attach(NVME, deadline(&h)).unwrap();
    assert_eq!(vtd.block(NVME, deadline(&h)).unwrap(), Quarantine::Blocked);
    let before = vtd.invalidations();
    assert_eq!(
        vtd.block(NVME, deadline(&h)).unwrap(),
        Quarantine::AlreadyBlocked
    );
    assert_eq!(vtd.block_many(&[EDU, NIC], deadline(&h)).unwrap(), 0);
    assert_eq!(vtd.invalidations(), before);
}

/// The recovery domain reported is the domain id the unit finds in an
/// attached device's context entry.
#[test]
fn the_recovery_domain_is_the_one_attached_devices_use() {
    let h = Harness::qemu_like();
    // The dead kernel used domains 1 and 7: the recovery domain is another.
    h.old_kernel_tables(&[(EDU, 7), (NIC, 1)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    vtd.attach(NVME, deadline(&h)).unwrap();
    let did = h.model.borrow().context_did(NVME);
    assert_eq!(did, Some(vtd.recovery_domain()));
    assert!(
        ![1, 7].contains(&vtd.recovery_domain()),
        "not one of the dead kernel's domains"
    );
}

/// The dead kernel's sources are remembered until the caller forgets them.
#[test]
fn inherited_sources_are_remembered_until_forgotten() {
    let h = Harness::qemu_like();
    h.old_kernel_tables(&[(NIC, 1), (EDU, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert_eq!(report.outcome, Outcome::Fenced, "{report}");
    assert!(vtd.was_inherited(NIC) && vtd.was_inherited(EDU));
    assert!(!vtd.was_inherited(NVME));
    vtd.forget_inherited();
    assert!(!vtd.was_inherited(NIC) && !vtd.was_inherited(EDU));
}

/// The policy's totals count each fault once by class; a source past the
/// table's `MAX_SOURCES` is counted as untracked; a line the rate limit held
/// back is reported as suppressed before the next line that gets through.
#[test]
fn the_policy_counts_by_class_and_reports_what_it_suppressed() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(EDU, 7)]);
    let (mut vtd, _) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    let d = deadline(&h);
    let dma = h.dma();
    let mut policy = FaultPolicy::new(PolicyConfig {
        quarantine_after: 1_000,
        log_burst: 1,
        log_interval_ns: 1_000_000,
        ..PolicyConfig::default()
    });
    let mut lines = Vec::new();
    let round = |policy: &mut FaultPolicy, vtd: &mut SimVtd, sid: u16, lines: &mut Vec<LogLine>| {
        let _ = dma.write(sid, old.mappings[0].iova, b"x");
        policy
            .service(vtd, &mut |l: &LogLine| lines.push(*l), d)
            .unwrap();
    };
    // Stale: the dead kernel set EDU up. Unknown: nobody set 02:00.0 up.
    for _ in 0..3 {
        round(&mut policy, &mut vtd, EDU, &mut lines);
    }
    h.clock.advance(Duration::from_millis(2));
    round(&mut policy, &mut vtd, 0x0200, &mut lines);
    round(&mut policy, &mut vtd, 0x0200, &mut lines);
    let t = policy.totals();
    assert_eq!((t.stale, t.unknown, t.untracked), (3, 2, 0));
    // One line per interval: the first EDU fault; then, after the interval,
    // the two held back, then the first unknown fault.
    let kinds: Vec<_> = lines
        .iter()
        .map(|l| match l {
            LogLine::Fault(_) => "fault".to_string(),
            LogLine::Suppressed(n) => format!("suppressed {n}"),
            LogLine::Overflow { .. } => "overflow".to_string(),
        })
        .collect();
    assert_eq!(kinds, ["fault", "suppressed 2", "fault"]);
    // Sources beyond the table: 63 more distinct ones fill it (EDU and 02:00.0
    // hold two slots), the next is untracked.
    for n in 0..(paranoid_vtd::policy::MAX_SOURCES as u16 - 1) {
        round(&mut policy, &mut vtd, 0x0300 + n, &mut lines);
    }
    assert_eq!(policy.totals().untracked, 1);
}

/// A root entry whose high word has reserved bits set is not adopted: the
/// takeover falls back to the fence.
#[test]
fn a_root_entry_with_reserved_high_bits_fails_adopt() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1)]);
    h.memory.write_u64(old.root + 8, 1 << 40);
    let (_, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(
        matches!(
            report.outcome,
            Outcome::FencedAfterAdoptFailed(AdoptError::RootEntry { bus: 0, .. })
        ),
        "{report}"
    );
}

/// A device on another bus than 0 is adopted under its own source id (bus in
/// the high byte): it keeps translating, and it alone is inherited.
#[test]
fn a_device_on_bus_one_is_adopted_under_its_own_source_id() {
    let h = Harness::qemu_like();
    let sid = 0x0110; // 01:02.0
    let old = h.old_kernel_tables(&[(sid, 3)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    assert!(vtd.was_inherited(sid) && !vtd.was_inherited(sid & 0xff));
    assert!(vtd.translates(sid));
    h.dma().write(sid, old.mappings[0].iova, b"still").unwrap();
}

/// The takeover report and an adopt error print what they are about.
#[test]
fn the_report_and_adopt_errors_print_their_contents() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(NIC, 1)]);
    h.memory.write_u64(old.root + 8, 1 << 40);
    let (_, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    let shown = report.to_string();
    assert!(shown.starts_with("vtd takeover: outcome="), "{shown}");
    assert!(shown.contains("requested=Adopt"), "{shown}");
    let Outcome::FencedAfterAdoptFailed(e) = report.outcome else {
        panic!("{shown}");
    };
    assert!(!e.to_string().is_empty());
    assert!(
        e.to_string().contains("bus 0") || e.to_string().contains("bus=0"),
        "{e}"
    );
}

/// Adopt copies bus by bus; when a later bus's entry is garbage, every bus
/// already copied is discarded too: after the fall-back to the fence, the
/// device on the bus copied first no longer translates.
#[test]
fn a_failed_adopt_discards_every_bus_it_had_copied() {
    let h = Harness::qemu_like();
    let (first, second) = (0x0110, 0x0210); // 01:02.0 and 02:02.0
    let old = h.old_kernel_tables(&[(first, 3), (second, 4)]);
    let ctx = old
        .context_tables
        .iter()
        .find(|(bus, _)| *bus == 2)
        .map(|(_, at)| *at)
        .unwrap();
    h.memory
        .write_u64(ctx + u64::from(second & 0xff) * 16, 0xdead_beef_0000_0ff1);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert!(
        matches!(
            report.outcome,
            Outcome::FencedAfterAdoptFailed(AdoptError::ContextEntry { source_id, .. }) if source_id == second
        ),
        "{report}"
    );
    assert!(
        !vtd.translates(first),
        "bus 1's copied entry survived the discard"
    );
    assert!(h.dma().write(first, old.mappings[0].iova, b"x").is_err());
    assert_protocol_clean(&h);
}

/// One batch blocks up to `BLOCK_BATCH` sources: a device-selective context
/// invalidation per source and one domain-selective IOTLB invalidation per
/// old domain, all in one round trip; a full batch of sources, each in its
/// own domain, needs twice `BLOCK_BATCH` requests and gets them all.
#[test]
fn a_full_block_batch_invalidates_every_source_and_domain() {
    let h = Harness::qemu_like();
    // Three devices in two domains first.
    h.old_kernel_tables(&[(NIC, 1), (EDU, 7), (NVME, 7)]);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    let before = vtd.invalidations();
    assert_eq!(vtd.block_many(&[NIC, EDU, NVME], deadline(&h)).unwrap(), 3);
    let after = vtd.invalidations();
    assert_eq!(after.context - before.context, 3, "one per source");
    assert_eq!(after.iotlb - before.iotlb, 2, "one per old domain");

    let h = Harness::qemu_like();
    let batch = paranoid_vtd::BLOCK_BATCH as u16;
    let devices: Vec<(u16, u16)> = (0..batch).map(|n| (0x0100 + n * 8, 10 + n)).collect();
    let old = h.old_kernel_tables(&devices);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    let dma = h.dma();
    for (i, &(sid, _)) in devices.iter().enumerate() {
        dma.write(sid, old.mappings[i].iova, b"warm").unwrap();
    }
    let sources: Vec<u16> = devices.iter().map(|&(s, _)| s).collect();
    let before = vtd.invalidations();
    assert_eq!(
        vtd.block_many(&sources, deadline(&h)).unwrap(),
        u32::from(batch)
    );
    let after = vtd.invalidations();
    assert_eq!(after.context - before.context, u64::from(batch));
    assert_eq!(after.iotlb - before.iotlb, u64::from(batch));
    for (i, &(sid, _)) in devices.iter().enumerate() {
        assert!(
            dma.write(sid, old.mappings[i].iova + 0x40, b"late")
                .is_err(),
            "{sid:#06x} still translates"
        );
    }
    assert_protocol_clean(&h);
}

/// Under caching mode (CAP.CM, as QEMU's `caching-mode=on`) the unit may
/// cache a not-present context entry: a device that faulted before it was
/// attached translates after `attach` only because attach invalidates the
/// context cache.
#[test]
fn under_caching_mode_attach_drops_a_cached_not_present_entry() {
    let h = Harness::with_caps(regs::QEMU_CAP | 1 << 7, regs::QEMU_ECAP);
    let (mut vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Fence, WINDOW));
    assert!(report.to_string().contains("qi="), "{report}");
    let d = deadline(&h);
    vtd.map_range(WINDOW.base, h.window_phys(), 0x1000, d)
        .unwrap();
    let dma = h.dma();
    // Before attach: not present, and now cached as such.
    assert!(dma.write(NVME, WINDOW.base, b"early").is_err());
    vtd.attach(NVME, d).unwrap();
    dma.write(NVME, WINDOW.base, b"ok").unwrap();
    assert_protocol_clean(&h);
}

/// A register-based invalidation the unit completes without performing it
/// (actual granularity 0) is an error, for the context cache and the IOTLB.
#[test]
fn register_invalidations_the_unit_did_not_perform_are_errors() {
    for (context, register) in [(true, "CCMD"), (false, "IOTLB")] {
        let h = Harness::qemu_like();
        h.old_kernel_tables(&[(EDU, 7)]);
        let config = TakeoverConfig {
            invalidation: Mode::Register,
            ..TakeoverConfig::new(Policy::Adopt, WINDOW)
        };
        let (mut vtd, _) = take_over(&h, &config);
        {
            let mut m = h.model.borrow_mut();
            m.quirks.context_invalidation_rejected = context;
            m.quirks.iotlb_invalidation_rejected = !context;
        }
        // Replacing the adopted entry invalidates its context, then its
        // domain's IOTLB.
        let e = vtd.attach(EDU, deadline(&h)).unwrap_err();
        assert!(
            matches!(e, VtdError::InvalidationRejected { register: r, .. } if r == register),
            "{register}: {e:?}"
        );
    }
}

/// After a queue error (a bad descriptor, a device-TLB completion error or
/// time-out) the driver clears it and goes on from where the unit stopped:
/// the next batch completes.
#[test]
fn the_queue_works_again_after_each_kind_of_queue_error() {
    let errors = regs::Fsts::IQE | regs::Fsts::ICE | regs::Fsts::ITE;
    for error in [regs::Fsts::IQE, regs::Fsts::ICE, regs::Fsts::ITE] {
        let h = Harness::qemu_like();
        let config = TakeoverConfig {
            invalidation: Mode::Queued,
            ..TakeoverConfig::new(Policy::Fence, WINDOW)
        };
        let (mut vtd, _) = take_over(&h, &config);
        let d = deadline(&h);
        vtd.attach(NVME, d).unwrap();
        vtd.map_range(WINDOW.base, h.window_phys(), 0x2000, d)
            .unwrap();
        h.model.borrow_mut().raise_queue_error(error);
        let e = vtd.unmap_range(WINDOW.base, 0x1000, d).unwrap_err();
        assert!(matches!(e, VtdError::QueueError { .. }), "{error:?}: {e:?}");
        assert_eq!(h.model.borrow().fsts() & errors.bits(), 0, "{error:?}");
        vtd.unmap_range(WINDOW.base + 0x1000, 0x1000, d)
            .unwrap_or_else(|e| panic!("{error:?}: {e:?}"));
        assert_protocol_clean(&h);
    }
}

/// Replacing an adopted device's entry drops what the unit cached for its old
/// domain (a domain-selective IOTLB invalidation naming that domain, by
/// register or descriptor), nothing of other domains.
#[test]
fn replacing_an_entry_drops_the_old_domains_iotlb() {
    for mode in [Mode::Register, Mode::Queued] {
        let h = Harness::qemu_like();
        let old = h.old_kernel_tables(&[(EDU, 7), (NIC, 9)]);
        let config = TakeoverConfig {
            invalidation: mode,
            ..TakeoverConfig::new(Policy::Adopt, WINDOW)
        };
        let (mut vtd, _) = take_over(&h, &config);
        let dma = h.dma();
        dma.write(EDU, old.mappings[0].iova, b"warm").unwrap();
        dma.write(NIC, old.mappings[1].iova, b"warm").unwrap();
        assert_eq!(h.model.borrow().iotlb_entries(), 2);
        let before = vtd.invalidations();
        vtd.attach(EDU, deadline(&h)).unwrap();
        assert_eq!(
            h.model.borrow().iotlb_entries(),
            1,
            "{mode:?}: domain 7's entry dropped, domain 9's kept"
        );
        // Context and IOTLB: two register handshakes, or one queue batch.
        let after = vtd.invalidations();
        let trips = if mode == Mode::Register { 2 } else { 1 };
        assert_eq!(after.waits - before.waits, trips, "{mode:?}");
        assert_protocol_clean(&h);
    }
}

/// On a unit that does not snoop the processor's caches (QEMU's: ECAP.C = 0)
/// every table entry and descriptor the driver writes is flushed before the
/// unit needs it: through a cache the unit does not see, the takeover, a
/// mapping, DMA through it, an unmap and a block behave as with coherent
/// memory.
#[test]
fn a_unit_that_does_not_snoop_sees_every_entry_and_descriptor() {
    use paranoid_vtd::model::CpuCache;
    assert_eq!(regs::QEMU_ECAP & 1, 0, "QEMU's unit is not coherent");
    for (policy, mode) in [
        (Policy::Fence, Mode::Queued),
        (Policy::Adopt, Mode::Queued),
        (Policy::Adopt, Mode::Register),
    ] {
        let h = Harness::qemu_like();
        let old = h.old_kernel_tables(&[(EDU, 7)]);
        let cpu = CpuCache::new(h.memory());
        let config = TakeoverConfig {
            invalidation: mode,
            ..TakeoverConfig::new(policy, WINDOW)
        };
        let (mut vtd, report) = Vtd::take_over(
            h.registers(),
            h.clock.clone(),
            cpu.clone(),
            h.pool(),
            h.memory_map(),
            &config,
            deadline(&h),
        )
        .unwrap_or_else(|e| panic!("{policy:?} {mode:?}: {e:?}"));
        let d = deadline(&h);
        let dma = h.dma();
        if policy == Policy::Adopt {
            assert_eq!(report.outcome, Outcome::Adopted, "{report}");
            dma.write(EDU, old.mappings[0].iova, b"old").unwrap();
        }
        vtd.attach(NVME, d).unwrap();
        vtd.map_range(WINDOW.base, h.window_phys(), 0x2000, d)
            .unwrap();
        dma.write(NVME, WINDOW.base + 0x10, b"data")
            .unwrap_or_else(|e| panic!("{policy:?} {mode:?}: {e:?}"));
        vtd.unmap_range(WINDOW.base, 0x1000, d)
            .unwrap_or_else(|e| panic!("{policy:?} {mode:?}: {e:?}"));
        assert!(
            dma.write(NVME, WINDOW.base + 0x10, b"late").is_err(),
            "{policy:?} {mode:?}: the unit still sees the unmapped page"
        );
        dma.write(NVME, WINDOW.base + 0x1010, b"still").unwrap();
        vtd.block(EDU, d).unwrap();
        assert!(
            dma.write(EDU, old.mappings[0].iova, b"late").is_err(),
            "{policy:?} {mode:?}: the unit still sees the blocked device's entry"
        );
        assert_protocol_clean(&h);
    }
}

/// A unit that stops fetching (the queue wedged) leaves its descriptors in
/// the queue: batch after batch times out, and once no slot is free the
/// driver waits for room (and times out there) instead of writing over
/// descriptors the unit has not fetched.
#[test]
fn a_wedged_queue_is_never_overwritten() {
    let h = Harness::qemu_like();
    let config = TakeoverConfig {
        invalidation: Mode::Queued,
        ..TakeoverConfig::new(Policy::Fence, WINDOW)
    };
    let (mut vtd, _) = take_over(&h, &config);
    let d = deadline(&h);
    vtd.attach(NVME, d).unwrap();
    vtd.map_range(WINDOW.base, h.window_phys(), 0x1000, d)
        .unwrap();
    h.model.borrow_mut().quirks.invalidation_stuck = true;
    let mut batches = 0;
    let full = loop {
        let short = Deadline::after(&h.clock, Duration::from_millis(1));
        if batches > 0 {
            vtd.map_range(WINDOW.base, h.window_phys(), 0x1000, short)
                .unwrap();
        }
        match vtd.unmap_range(WINDOW.base, 0x1000, short) {
            Err(VtdError::Timeout {
                register: "IQH", ..
            }) => break true,
            Err(VtdError::Timeout { .. }) => batches += 1,
            other => panic!("batch {batches}: {other:?}"),
        }
        if batches > 300 {
            break false;
        }
    };
    assert!(full, "{batches} batches queued on a wedged unit");
    // One request and one wait per batch: 255 slots hold 127 batches.
    assert_eq!(batches, 127);
}

/// Queue errors a dead kernel left set (a device-TLB invalidation that timed
/// out, one that failed, a bad descriptor) would keep the unit from fetching
/// ours: the takeover clears them, and our first batches complete.
#[test]
fn queue_errors_left_by_the_dead_kernel_are_cleared() {
    for error in [regs::Fsts::IQE, regs::Fsts::ICE, regs::Fsts::ITE] {
        let h = Harness::qemu_like();
        h.old_kernel_tables(&[(EDU, 7)]);
        h.old_kernel_queue(0);
        h.model.borrow_mut().raise_queue_error(error);
        let config = TakeoverConfig {
            invalidation: Mode::Queued,
            ..TakeoverConfig::new(Policy::Adopt, WINDOW)
        };
        let (mut vtd, r) = Vtd::take_over(
            h.registers(),
            h.clock.clone(),
            h.memory(),
            h.pool(),
            h.memory_map(),
            &config,
            deadline(&h),
        )
        .unwrap_or_else(|e| panic!("{error:?}: {e:?}"));
        assert!(r.invalidation.queued);
        let d = deadline(&h);
        vtd.attach(EDU, d)
            .unwrap_or_else(|e| panic!("{error:?}: {e:?}"));
        assert_protocol_clean(&h);
    }
}

/// An unmap invalidates what it unmapped page-selectively when the unit can
/// (CAP.PSI, and an order up to CAP.MAMV), else the whole domain: the pages
/// still mapped keep their cached translations only in the first case.
#[test]
fn unmaps_invalidate_page_selectively_when_the_unit_can() {
    let base_cap = regs::QEMU_CAP & !(1 << 39) & !(0x3f << 48);
    for (psi, mamv, pages, selective) in [
        (true, 18, 1, true),
        (false, 18, 1, false),
        (true, 0, 2, false),
        (true, 1, 2, true),
    ] {
        let cap = base_cap | u64::from(psi) << 39 | mamv << 48;
        for mode in [Mode::Register, Mode::Queued] {
            let h = Harness::with_caps(cap, regs::QEMU_ECAP);
            let config = TakeoverConfig {
                invalidation: mode,
                ..TakeoverConfig::new(Policy::Fence, WINDOW)
            };
            let (mut vtd, _) = take_over(&h, &config);
            let d = deadline(&h);
            vtd.attach(NVME, d).unwrap();
            vtd.map_range(WINDOW.base, h.window_phys(), 8 * 0x1000, d)
                .unwrap();
            let dma = h.dma();
            for p in 0..8 {
                dma.write(NVME, WINDOW.base + p * 0x1000, b"warm").unwrap();
            }
            assert_eq!(h.model.borrow().iotlb_entries(), 8);
            vtd.unmap_range(WINDOW.base + 4 * 0x1000, pages * 0x1000, d)
                .unwrap();
            let left = h.model.borrow().iotlb_entries() as u64;
            let want = if selective { 8 - pages } else { 0 };
            assert_eq!(left, want, "PSI {psi} MAMV {mamv} {mode:?}");
            assert!(dma.write(NVME, WINDOW.base + 4 * 0x1000, b"x").is_err());
        }
    }
}

/// Devices a dead kernel put in one domain share that domain's page tables
/// (the IOTLB is tagged by domain id): adopted, each one's stale DMA lands in
/// the domain's old buffer, whichever device warmed the IOTLB first (the
/// state the any-state property drew as devices [(8, 60), (16, 60)]).
#[test]
fn devices_of_one_adopted_domain_share_its_translations() {
    let h = Harness::qemu_like();
    let old = h.old_kernel_tables(&[(0x0008, 60), (NIC, 60), (EDU, 7)]);
    assert_eq!(old.mappings[0].pa, old.mappings[1].pa);
    assert_ne!(old.mappings[0].pa, old.mappings[2].pa);
    let (_vtd, report) = take_over(&h, &TakeoverConfig::new(Policy::Adopt, WINDOW));
    assert_eq!(report.outcome, Outcome::Adopted, "{report}");
    let dma = h.dma();
    let start = h.model.borrow().accesses().len();
    for m in &old.mappings {
        dma.write(m.source_id, m.iova, b"stale").unwrap();
    }
    let model = h.model.borrow();
    let log = model.accesses().get(start..).unwrap_or(&[]);
    for (a, m) in log.iter().zip(&old.mappings) {
        assert_eq!(a.outcome, Ok(m.pa), "{:#06x}", m.source_id);
    }
}
