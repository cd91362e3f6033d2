//! The driver against the model: named scenarios from the any-state list, each
//! checking the outcome, the fence, the trace, and that the model flagged
//! nothing and the IOMMU refused nothing.
#![expect(
    clippy::result_large_err,
    clippy::type_complexity,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

use std::time::Duration;

use paranoid::dma::{FromDevice, ToDevice};
use paranoid::init::{InitFailure, Outcome};
use paranoid::lifecycle::Cause;
use paranoid::time::Clock;
use paranoid_nvme::anystate::{AnyState, Inherited};
use paranoid_nvme::model::{Bench, CompletionFault, Faults, Persist, SimNvme};
use paranoid_nvme::{CompletionProblem, Config, NvmeError, State, DEFAULT_INIT_BUDGET};

fn healthy() -> AnyState {
    AnyState {
        command: 0x0006,
        msix: false,
        inherited: Inherited::PowerOn,
        garbage: vec![],
        cap_to: None,
        cap_mqes: None,
        cap_dstrd: None,
        cap_mpsmin: None,
        cap_css: None,
        vs: None,
        faults: Faults::default(),
        gone_after: None,
    }
}

fn bench(state: &AnyState) -> Bench {
    let b = Bench::qemu_like();
    state.apply(&b);
    b
}

fn init(b: &mut Bench) -> Result<SimNvme, InitFailure<SimNvme>> {
    init_with(b, Config::default())
}

fn init_with(b: &mut Bench, config: Config) -> Result<SimNvme, InitFailure<SimNvme>> {
    let nvme = b.driver(config).unwrap();
    nvme.init(DEFAULT_INIT_BUDGET).map(|ok| {
        println!("{}", ok.trace);
        ok.device.into_inner()
    })
}

fn clean(b: &Bench) {
    assert_eq!(
        b.escapes(),
        0,
        "DMA outside the window: {:?}",
        b.dma.refused()
    );
    let m = b.model.borrow();
    assert!(
        m.violations().is_empty(),
        "model flags: {:?}",
        m.violations()
    );
}

fn round_trip(b: &mut Bench, nvme: &mut SimNvme, lba: u64, blocks: u64, offset: usize, seed: u8) {
    let bytes = blocks as usize * 512;
    let mut out = b.arena.alloc::<ToDevice>(bytes + offset, 4096).unwrap();
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    out.write_bytes(offset, &data).unwrap();
    nvme.write_blocks(lba, blocks, &out, offset).unwrap();
    let mut back = b.arena.alloc::<FromDevice>(bytes + offset, 4096).unwrap();
    nvme.read_blocks(lba, blocks, &mut back, offset).unwrap();
    let mut got = vec![0u8; bytes];
    back.read_bytes(offset, &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(b.model.borrow().block(lba)[..], data[..512]);
    b.arena.free(out).unwrap();
    b.arena.free(back).unwrap();
}

fn failure_class(f: &InitFailure<SimNvme>) -> &'static str {
    match &f.cause {
        Cause::Device(e) => e.class(),
        Cause::Budget { .. } => "budget",
    }
}

#[test]
fn power_on_controller_comes_up_and_round_trips_blocks() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    assert_eq!(nvme.state(), State::Ready);
    let ns = nvme.namespace_info().unwrap();
    assert_eq!((ns.blocks, ns.block_size.bytes()), (2048, 512));
    assert_eq!(nvme.controller_info().unwrap().mdts, 7);
    let (driver_before, model_before) = (nvme.stats().commands, b.model.borrow().commands);
    round_trip(&mut b, &mut nvme, 0, 1, 0, 1);
    round_trip(&mut b, &mut nvme, 7, 8, 0, 2);
    // Three pages at an offset: PRP1 mid-page plus a PRP list.
    round_trip(&mut b, &mut nvme, 100, 24, 512, 3);
    // Larger than one command: split at the transfer limit.
    round_trip(&mut b, &mut nvme, 1000, 700, 0, 4);
    nvme.flush().unwrap();
    // Every command the controller executed succeeded, and the driver counted each once.
    let executed = b.model.borrow().commands - model_before;
    assert!(executed >= 9, "{executed} commands");
    assert_eq!(nvme.stats().commands - driver_before, executed);
    assert_eq!(nvme.stats().bad_completions, 0);
    clean(&b);
}

#[test]
fn blocks_outside_the_namespace_are_refused_before_submission() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    let buf = b.arena.alloc::<ToDevice>(8192, 4096).unwrap();
    let before = b.model.borrow().commands;
    for (lba, blocks) in [(2048, 1), (2047, 2), (u64::MAX, 1), (0, 0)] {
        assert!(matches!(
            nvme.write_blocks(lba, blocks, &buf, 0),
            Err(NvmeError::LbaOutOfRange { .. })
        ));
    }
    assert!(matches!(
        nvme.write_blocks(0, 17, &buf, 0),
        Err(NvmeError::BadBuffer { .. })
    ));
    assert_eq!(b.model.borrow().commands, before, "nothing was submitted");
    nvme.write_blocks(2047, 1, &buf, 0).unwrap();
    clean(&b);
}

#[test]
fn firmware_enabled_controller_with_live_queues_and_outstanding_commands() {
    let mut s = healthy();
    s.inherited = Inherited::LiveQueues {
        admin_pending: 5,
        io_queues: 3,
        io_pending: 12,
    };
    s.msix = true;
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    round_trip(&mut b, &mut nvme, 10, 4, 0, 9);
    clean(&b);
}

#[test]
fn touching_bar0_before_quiesce_lets_old_dma_escape() {
    // The oracle can fail: with bus mastering on, the dead kernel's queued
    // commands run at the first register access and the IOMMU refuses them.
    let mut s = healthy();
    s.inherited = Inherited::LiveQueues {
        admin_pending: 2,
        io_queues: 1,
        io_pending: 3,
    };
    let b = bench(&s);
    use paranoid::mmio::RegisterIo;
    let mut regs = b.mmio.clone();
    let _ = regs.read32(0x1c);
    assert!(b.escapes() > 0);
}

#[test]
fn garbage_in_every_writable_register_is_overwritten() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    s.garbage = paranoid_nvme::anystate::WRITABLE
        .iter()
        .map(|&r| (r, 0xdead_beef))
        .collect();
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    round_trip(&mut b, &mut nvme, 3, 2, 0, 5);
    clean(&b);
}

#[test]
fn reset_in_progress_and_slow_ready_are_waited_for() {
    let mut s = healthy();
    s.inherited = Inherited::ResetInProgress;
    s.faults.reset_delay = Duration::from_millis(1500);
    s.faults.ready_delay = Duration::from_millis(700);
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    round_trip(&mut b, &mut nvme, 0, 1, 0, 6);
    clean(&b);
}

#[test]
fn fatal_status_cleared_by_flr_escalates_and_succeeds() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    s.faults.cfs = Some(Persist::UntilFlr);
    let mut b = bench(&s);
    let nvme = b.driver(Config::default()).unwrap();
    let ok = nvme
        .init(DEFAULT_INIT_BUDGET)
        .map_err(|f| f.to_string())
        .unwrap();
    assert_eq!(ok.trace.escalations(), 1, "{}", ok.trace);
    assert!(format!("{}", ok.trace).contains("function-level reset"));
    assert_eq!(b.config.borrow().flr_count(), 1);
    let mut nvme = ok.device.into_inner();
    round_trip(&mut b, &mut nvme, 1, 1, 0, 7);
    clean(&b);
}

#[test]
fn persistent_fatal_status_is_a_typed_error_and_the_device_is_fenced() {
    let mut s = healthy();
    s.faults.cfs = Some(Persist::Forever);
    let mut b = bench(&s);
    let f = init(&mut b).err().unwrap();
    println!("{f}");
    assert!(matches!(
        f.cause,
        Cause::Device(NvmeError::ControllerFatal { .. })
    ));
    assert!(!b.bus_master());
    assert!(f.trace.any(|o| *o == Outcome::Fenced));
    clean(&b);
}

#[test]
fn ready_that_never_clears_times_out_within_cap_to() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    s.faults.rdy_stuck = Some(Persist::Forever);
    let mut b = bench(&s);
    b.clock.set_poll_step(Duration::from_micros(100));
    let start = b.clock.now_ns();
    let f = init(&mut b).err().unwrap();
    println!("{f}");
    match f.cause {
        Cause::Device(NvmeError::ReadyTimeout {
            expected: false,
            waited,
            ..
        }) => assert!(waited >= Duration::from_millis(7500), "{waited:?}"),
        ref other => panic!("{other:?}"),
    }
    assert!(!b.bus_master());
    let spent = Duration::from_nanos(b.clock.now_ns() - start);
    assert!(spent < DEFAULT_INIT_BUDGET, "{spent:?}");
}

#[test]
fn cap_to_zero_gets_the_floor_and_all_ones_cap_to_the_ceiling() {
    for (to, min_wait) in [(0u8, 500u64), (0xff, 60_000)] {
        let mut s = healthy();
        s.inherited = Inherited::Firmware;
        s.cap_to = Some(to);
        s.faults.rdy_stuck = Some(Persist::Forever);
        let mut b = bench(&s);
        b.clock.set_poll_step(Duration::from_millis(1));
        let f = init(&mut b).err().unwrap();
        match f.cause {
            Cause::Device(NvmeError::ReadyTimeout { waited, .. }) => {
                assert!(
                    waited >= Duration::from_millis(min_wait),
                    "{to}: {waited:?}"
                );
                assert!(
                    waited < Duration::from_millis(min_wait + 50),
                    "{to}: {waited:?}"
                );
            }
            // CAP.TO = 255: the 60 s ceiling is longer than the init budget.
            Cause::Budget { .. } => assert_eq!(to, 0xff),
            ref other => panic!("{other:?}"),
        }
        assert!(!b.bus_master());
    }
}

#[test]
fn flapping_ready_is_caught_after_disable() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    s.faults.rdy_flap = Some(Duration::from_micros(300));
    let mut b = bench(&s);
    let nvme = b.driver(Config::default()).unwrap();
    let ok = nvme
        .init(DEFAULT_INIT_BUDGET)
        .map_err(|f| f.to_string())
        .unwrap();
    // FLR ends the flapping in this model; the first attempt's reset step saw
    // it while confirming the controller disabled (not verify, later, by luck
    // of the flap's phase).
    let trace = ok.trace.to_string();
    assert!(
        trace
            .lines()
            .any(|l| l.contains("controller reset") && l.contains("ReadyFlapping")),
        "{trace}"
    );
    clean(&b);
}

#[test]
fn gone_controller_and_gone_mid_init_are_typed_errors() {
    for after in [0u64, 3, 9, 20, 60] {
        let mut s = healthy();
        s.inherited = Inherited::Firmware;
        s.gone_after = Some(after);
        let mut b = bench(&s);
        let f = init(&mut b).err().unwrap();
        assert!(
            matches!(
                failure_class(&f),
                "device gone" | "command timeout" | "ready timeout"
            ),
            "{after}: {f}"
        );
        assert!(!b.bus_master(), "{after}");
        clean(&b);
    }
}

#[test]
fn nonsense_capabilities_are_rejected() {
    let cases: [(fn(&mut AnyState), &str); 4] = [
        (|s| s.cap_mqes = Some(0), "bad capability"),
        (|s| s.cap_mpsmin = Some(3), "unsupported"),
        (|s| s.cap_css = Some(0x40), "unsupported"),
        (|s| s.cap_dstrd = Some(12), "bad capability"),
    ];
    for (set, class) in cases {
        let mut s = healthy();
        set(&mut s);
        let mut b = bench(&s);
        let f = init(&mut b).err().unwrap();
        assert_eq!(failure_class(&f), class, "{f}");
        assert!(!b.bus_master());
    }
}

/// CAP.DSTRD against the 16 KiB BAR: with a stride of 4 << 9 bytes the
/// doorbells the driver rings (up to CQ 1 head) end inside the BAR, with
/// 4 << 10 they would not, and the controller is refused.
#[test]
fn the_doorbell_stride_must_keep_the_doorbells_inside_the_bar() {
    let mut s = healthy();
    s.cap_dstrd = Some(9);
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    round_trip(&mut b, &mut nvme, 0, 1, 0, 9);
    clean(&b);
    let mut s = healthy();
    s.cap_dstrd = Some(10);
    let mut b = bench(&s);
    let f = init(&mut b).err().unwrap();
    assert_eq!(failure_class(&f), "bad capability", "{f}");
    assert!(!b.bus_master());
}

#[test]
fn nonsense_identify_data_is_rejected() {
    let cases: [(fn(&mut Faults), &str); 6] = [
        (|f| f.identify.nsze = Some(0), "namespace inactive"),
        (|f| f.identify.nsze = Some(u64::MAX), "bad identify"),
        (|f| f.identify.lbads = Some(0), "bad identify"),
        (|f| f.identify.lbads = Some(40), "unsupported format"),
        (|f| f.identify.flbas = Some(9), "bad identify"),
        (|f| f.identify.sqes = Some(0x55), "bad identify"),
    ];
    for (set, class) in cases {
        let mut s = healthy();
        set(&mut s.faults);
        let mut b = bench(&s);
        let f = init(&mut b).err().unwrap();
        assert_eq!(failure_class(&f), class, "{f}");
        assert!(!b.bus_master());
        clean(&b);
    }
}

#[test]
fn huge_mdts_is_clamped_and_a_small_one_splits_transfers() {
    for mdts in [0u8, 1, 200] {
        let mut s = healthy();
        s.faults.identify.mdts = Some(mdts);
        let mut b = bench(&s);
        let mut nvme = init(&mut b).unwrap();
        round_trip(&mut b, &mut nvme, 64, 40, 0, mdts);
        clean(&b);
    }
}

#[test]
fn malicious_completions_during_init_escalate_and_recover() {
    for fault in [
        CompletionFault::UnknownCid,
        CompletionFault::WrongSqId,
        CompletionFault::SqHeadOutOfRange,
        CompletionFault::ReservedStatus,
        CompletionFault::WrongPhase,
        CompletionFault::Drop,
        CompletionFault::Duplicate,
    ] {
        let mut s = healthy();
        s.faults.completions = vec![(1, fault)];
        let mut b = bench(&s);
        b.clock.set_poll_step(Duration::from_micros(100));
        let nvme = b.driver(Config::default()).unwrap();
        let ok = nvme
            .init(DEFAULT_INIT_BUDGET)
            .map_err(|f| f.to_string())
            .unwrap();
        let mut nvme = ok.device.into_inner();
        round_trip(&mut b, &mut nvme, 5, 3, 0, 11);
        clean(&b);
    }
}

#[test]
fn malicious_completion_during_io_is_an_error_then_the_driver_recovers() {
    for (fault, problem) in [
        (CompletionFault::UnknownCid, CompletionProblem::UnknownCid),
        (CompletionFault::WrongSqId, CompletionProblem::WrongSqId),
        (
            CompletionFault::SqHeadOutOfRange,
            CompletionProblem::SqHeadOutOfRange,
        ),
        // The first value outside the queue (the driver's head is 0 here).
        (
            CompletionFault::SqHeadAtQueueSize,
            CompletionProblem::SqHeadOutOfRange,
        ),
        // Inside the queue, but ahead of the one entry the driver submitted.
        (
            CompletionFault::SqHeadPastTail,
            CompletionProblem::SqHeadOutOfRange,
        ),
        (
            CompletionFault::ReservedStatus,
            CompletionProblem::ReservedStatus,
        ),
    ] {
        let mut b = bench(&healthy());
        let mut nvme = init(&mut b).unwrap();
        let next = b.model.borrow().completions_posted();
        b.model.borrow_mut().faults.completions = vec![(next, fault)];
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        match nvme.write_blocks(0, 1, &buf, 0) {
            Err(NvmeError::BadCompletion { problem: p, .. }) => assert_eq!(p, problem),
            other => panic!("{fault:?}: {other:?}"),
        }
        assert!(nvme.is_ready(), "recovered by a controller reset");
        assert_eq!(nvme.stats().bad_completions, 1);
        nvme.write_blocks(0, 1, &buf, 0).unwrap();
        clean(&b);
    }
}

#[test]
fn hung_io_command_is_aborted_or_the_controller_reset() {
    for ineffective in [false, true] {
        let mut b = bench(&healthy());
        b.clock.set_poll_step(Duration::from_micros(100));
        let mut nvme = init(&mut b).unwrap();
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        // A few commands first, so the hung one's identifier is not 0 (an
        // Abort that loses the identifier's position would still name 0).
        for _ in 0..3 {
            nvme.write_blocks(0, 1, &buf, 0).unwrap();
        }
        let next = b.model.borrow().completions_posted();
        {
            let mut m = b.model.borrow_mut();
            m.faults.completions = vec![(next, CompletionFault::Drop)];
            m.faults.abort_ineffective = ineffective;
        }
        let start = b.clock.now_ns();
        match nvme.write_blocks(0, 1, &buf, 0) {
            Err(NvmeError::CommandTimeout {
                recovered, waited, ..
            }) => {
                assert!(recovered);
                assert!(waited >= Duration::from_secs(5));
            }
            other => panic!("{other:?}"),
        }
        let spent = Duration::from_nanos(b.clock.now_ns() - start);
        assert!(spent < Duration::from_secs(20), "{spent:?}");
        assert_eq!(nvme.stats().recoveries, u64::from(ineffective));
        assert_eq!(nvme.stats().timeouts, 1);
        nvme.write_blocks(0, 1, &buf, 0).unwrap();
        clean(&b);
    }
}

#[test]
fn unrecoverable_io_failure_fences_the_device() {
    let mut b = bench(&healthy());
    b.clock.set_poll_step(Duration::from_micros(100));
    let mut nvme = init(&mut b).unwrap();
    let next = b.model.borrow().completions_posted();
    {
        let mut m = b.model.borrow_mut();
        m.faults.completions = vec![(next, CompletionFault::UnknownCid)];
        m.faults.cfs = Some(Persist::Forever);
    }
    let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    assert!(nvme.write_blocks(0, 1, &buf, 0).is_err());
    assert_eq!(nvme.state(), State::Fenced);
    assert!(!b.bus_master());
    assert_eq!(nvme.write_blocks(0, 1, &buf, 0), Err(NvmeError::NotReady));
}

#[test]
fn shutdown_reports_completion_then_disables_and_fences() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    nvme.shutdown().unwrap();
    assert_eq!(nvme.state(), State::Fenced);
    assert!(!b.bus_master());
    assert_eq!(b.model.borrow().cc() & 1, 0);
    clean(&b);
}

#[test]
fn shutdown_that_never_completes_is_a_typed_error_and_fenced() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    b.model.borrow_mut().faults.shutdown_never_completes = true;
    b.clock.set_poll_step(Duration::from_micros(100));
    let start = b.clock.now_ns();
    match nvme.shutdown() {
        Err(NvmeError::ShutdownTimeout { waited, csts, .. }) => {
            assert!(waited >= Duration::from_secs(1));
            assert_eq!((csts >> 2) & 3, 1, "SHST in progress");
        }
        other => panic!("{other:?}"),
    }
    assert!(Duration::from_nanos(b.clock.now_ns() - start) < Duration::from_secs(12));
    assert_eq!(nvme.state(), State::Fenced);
    assert!(!b.bus_master());
    assert_eq!(b.model.borrow().cc() & 1, 0, "disabled anyway");
}

#[test]
fn release_after_shutdown_gives_every_buffer_back() {
    let mut b = bench(&healthy());
    let before = b.arena.live();
    let mut nvme = init(&mut b).unwrap();
    assert!(b.arena.live() > before);
    nvme.shutdown().unwrap();
    nvme.release(&mut b.arena).unwrap();
    assert_eq!(b.arena.live(), before, "a buffer of the driver was kept");
    clean(&b);
}

#[test]
fn release_of_a_ready_controller_fences_it_and_takes_the_writes_in_flight_back() {
    let mut b = bench(&healthy());
    let before = b.arena.live();
    let mut nvme = init(&mut b).unwrap();
    for i in 0..3u64 {
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        nvme.submit_write(200 + 8 * i, 8, buf, 0).unwrap();
    }
    nvme.release(&mut b.arena).unwrap();
    assert!(!b.bus_master(), "released without the fence");
    assert_eq!(b.model.borrow().cc() & 1, 0, "released while enabled");
    assert_eq!(b.arena.live(), before, "a buffer of the driver was kept");
}

#[test]
fn release_into_another_arena_is_refused_and_frees_nothing_of_it() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    nvme.shutdown().unwrap();
    let mut other = bench(&healthy());
    let held = other.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    let live = other.arena.live();
    assert!(matches!(
        nvme.release(&mut other.arena),
        Err(NvmeError::Dma(paranoid::dma::DmaError::NotAllocated { .. }))
    ));
    assert_eq!(other.arena.live(), live);
    other.arena.free(held).unwrap();
}

#[test]
fn inherited_controller_gets_no_shutdown_notification() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    let b = bench(&s);
    let mut b = b;
    let mut nvme = b.driver(Config::default()).unwrap();
    assert_eq!(nvme.shutdown(), Err(NvmeError::NotReady));
    assert_eq!(b.model.borrow().cc() & 0xc000, 0, "CC.SHN never written");
}

#[test]
fn paranoid_init_wrapper_runs_the_same_sequence() {
    let mut b = bench(&healthy());
    let nvme = b.driver(Config::default()).unwrap();
    let clock = b.clock.clone();
    let ok = paranoid_nvme::init(nvme, &clock, paranoid_nvme::DEFAULT_INIT_BUDGET)
        .map_err(|f| f.to_string())
        .unwrap();
    assert!(format!("{}", ok.trace).contains("create I/O queues"));
    let mut nvme = ok.device.into_inner();
    round_trip(&mut b, &mut nvme, 9, 2, 0, 12);
    clean(&b);
}

#[test]
fn pipelined_writes_complete_and_are_reaped() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    for i in 0..4u8 {
        let mut buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        buf.write_bytes(0, &[0x40 | i; 4096]).unwrap();
        nvme.submit_write(200 + 8 * u64::from(i), 8, buf, 0)
            .unwrap();
    }
    assert_eq!(nvme.in_flight(), 4);
    // A transfer that would leave the buffer is refused, the buffer handed back.
    let big = b.arena.alloc::<ToDevice>(16384, 4096).unwrap();
    let refused = nvme.submit_write(300, 40, big, 0).unwrap_err();
    assert!(matches!(refused.error, NvmeError::BadBuffer { .. }));
    b.arena.free(refused.buffer).unwrap();
    // Synchronous I/O would drop their completions: refused while in flight.
    let probe = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    assert!(matches!(
        nvme.write_blocks(0, 8, &probe, 0),
        Err(NvmeError::Busy { in_flight: 4 })
    ));
    assert_eq!(nvme.in_flight(), 4);
    let mut reaped = 0;
    for _ in 0..1000 {
        if let Some(w) = nvme.reap_write().unwrap() {
            w.result.unwrap();
            b.arena.free(w.buffer).unwrap();
            reaped += 1;
        }
        if reaped == 4 {
            break;
        }
    }
    assert_eq!(reaped, 4);
    assert_eq!(nvme.in_flight(), 0);
    // A handed-back write prints what it was.
    let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    nvme.submit_write(240, 8, buf, 0).unwrap();
    let w = nvme.wait_write().unwrap();
    let shown = format!("{w:?}");
    assert!(
        shown.starts_with("Written { cid: ")
            && shown.contains("lba: 240, blocks: 8, result: Ok(())"),
        "{shown}"
    );
    b.arena.free(w.buffer).unwrap();
    for i in 0..4u8 {
        assert!(b
            .model
            .borrow()
            .block(200 + 8 * u64::from(i))
            .iter()
            .all(|&x| x == 0x40 | i));
    }
    clean(&b);
}

/// The pipeline holds at most `pipeline_depth()` writes (one PRP list page
/// each): one more is refused as `QueueFull`, buffer handed back, even where
/// the queue itself has room. (cargo-mutants' `slot < depth` turned into
/// `slot <= depth` survives this too: the command builder refuses a slot
/// without a PRP list page the same way, a second guard.)
#[test]
fn the_pipeline_refuses_one_write_past_its_depth() {
    let mut b = bench(&healthy());
    let config = Config {
        max_in_flight: 2,
        ..Config::default()
    };
    let nvme = b.driver(config).unwrap();
    let clock = b.clock.clone();
    let mut nvme = paranoid_nvme::init(nvme, &clock, paranoid_nvme::DEFAULT_INIT_BUDGET)
        .map_err(|f| f.to_string())
        .unwrap()
        .device
        .into_inner();
    let depth = nvme.pipeline_depth();
    assert_eq!(depth, 2);
    for i in 0..depth as u64 {
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        nvme.submit_write(400 + 8 * i, 8, buf, 0).unwrap();
    }
    let one_more = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    let refused = nvme.submit_write(600, 8, one_more, 0).unwrap_err();
    assert!(
        matches!(refused.error, NvmeError::QueueFull { .. }),
        "{:?}",
        refused.error
    );
    assert_eq!(nvme.in_flight(), depth);
}

/// A controller that reports more namespaces (NN) than it has and then answers
/// Identify Namespace for a listed NSID with Invalid Namespace: the driver
/// reports the namespace absent (a typed error naming NSID and NN), not a
/// generic command failure.
#[test]
fn invalid_namespace_for_a_listed_nsid_is_namespace_absent() {
    let mut s = healthy();
    // The model has 256 NSIDs (as QEMU) and claims 1024.
    s.faults.identify.nn = Some(1024);
    let mut b = bench(&s);
    let config = Config {
        nsid: 300,
        ..Config::default()
    };
    let failure = b
        .driver(config)
        .unwrap()
        .init(DEFAULT_INIT_BUDGET)
        .map(|_| ())
        .unwrap_err();
    match &failure.cause {
        Cause::Device(NvmeError::NamespaceAbsent {
            nsid: 300,
            nn: 1024,
        }) => {}
        other => panic!("expected NamespaceAbsent {{ nsid: 300, nn: 1024 }}, got {other:?}"),
    }
    assert_eq!(b.escapes(), 0);
}

/// MSI-X left enabled by the dead kernel is turned off during quiesce, so no
/// message write can follow our enable to an address that kernel programmed.
#[test]
fn a_live_msix_capability_is_turned_off() {
    let mut s = healthy();
    s.inherited = Inherited::Firmware;
    s.msix = true;
    let mut b = bench(&s);
    let mut pci = b.pci.clone();
    let at = paranoid::pci::caps::find(&mut pci, b.address, 0x11)
        .unwrap()
        .expect("the model has an MSI-X capability");
    let enable = |b: &Bench| b.config.borrow().peek16(at + 2) & 0x8000 != 0;
    assert!(enable(&b), "the state enables MSI-X");
    let nvme = init(&mut b).unwrap();
    assert_eq!(nvme.state(), State::Ready);
    assert!(!enable(&b), "MSI-X is still enabled after init");
    clean(&b);
}

/// VS without a major version (0.x) is not an NVMe controller the driver
/// knows; VS reading all-ones is a device gone. Both are typed errors, and
/// the device ends with bus mastering off.
#[test]
fn a_version_without_a_major_number_or_all_ones_is_refused() {
    for (vs, class) in [(0x0000_0300, "bad capability"), (u32::MAX, "device gone")] {
        let mut s = healthy();
        s.vs = Some(vs);
        let mut b = bench(&s);
        let failure = init(&mut b).map(|_| ()).unwrap_err();
        assert_eq!(failure_class(&failure), class, "VS {vs:#x}: {failure}");
        assert_eq!(b.escapes(), 0);
    }
}

/// Admin and I/O queues wrap around: more commands than either queue has
/// entries, each answered and counted once. The controller sizes its queues
/// from what the driver programmed (AQA, Create I/O SQ/CQ), so a size the
/// driver announces but does not have shows up at the first wrap.
#[test]
fn admin_and_io_queues_wrap_around() {
    let mut b = bench(&healthy());
    let config = Config {
        io_queue_depth: 4,
        ..Config::default()
    };
    let mut nvme = init_with(&mut b, config).unwrap();
    let first = nvme.namespace(1).unwrap();
    // The admin queue has 16 entries, the I/O queue 4.
    for _ in 0..48 {
        assert_eq!(nvme.namespace(1).unwrap(), first);
    }
    for i in 0..13u64 {
        round_trip(&mut b, &mut nvme, 10 * i, 1, 0, i as u8);
    }
    assert_eq!(nvme.stats().bad_completions, 0);
    assert_eq!(nvme.stats().commands, b.model.borrow().commands);
    clean(&b);
}

/// Set Features, Number of Queues carries the configured count, 0's based,
/// in both halves of CDW11 (NSQR and NCQR).
#[test]
fn the_number_of_queues_requested_is_the_configured_one() {
    for (asked, cdw11) in [(1, 0x0000_0000), (8, 0x0007_0007)] {
        let mut b = bench(&healthy());
        let config = Config {
            io_queues_requested: asked,
            ..Config::default()
        };
        init_with(&mut b, config).unwrap();
        assert_eq!(
            b.model.borrow().queues_requested,
            Some(cdw11),
            "{asked} asked"
        );
    }
}

/// After a bad completion resets the controller, the writes that were in
/// flight come back `Abandoned`, each with its buffer. Until they are reaped
/// their pipeline slots stay taken: a new write is refused (buffer handed
/// back), never put in an abandoned write's place, whose buffer would be lost.
#[test]
fn abandoned_writes_keep_their_slots_until_reaped() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    let next = b.model.borrow().completions_posted();
    b.model.borrow_mut().faults.completions = vec![(next, CompletionFault::UnknownCid)];
    for i in 0..2u64 {
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        nvme.submit_write(8 * i, 8, buf, 0).unwrap();
    }
    assert!(matches!(
        nvme.reap_write(),
        Err(NvmeError::BadCompletion { .. })
    ));
    assert!(nvme.is_ready(), "recovered by a controller reset");
    assert_eq!(nvme.in_flight(), 2);
    let late = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    let refused = nvme.submit_write(64, 8, late, 0).unwrap_err();
    assert!(
        matches!(refused.error, NvmeError::QueueFull { .. }),
        "{:?}",
        refused.error
    );
    b.arena.free(refused.buffer).unwrap();
    for _ in 0..2 {
        let w = nvme.reap_write().unwrap().expect("an abandoned write");
        assert!(matches!(w.result, Err(NvmeError::Abandoned)));
        b.arena.free(w.buffer).unwrap();
    }
    assert_eq!(nvme.in_flight(), 0);
    assert_eq!(nvme.stats().bad_completions, 1);
    clean(&b);
}

/// `wait_write` counts what it sees: one timeout for a write the controller
/// never completes, one bad completion for a lying entry.
#[test]
fn wait_write_counts_timeouts_and_bad_completions() {
    for fault in [CompletionFault::Drop, CompletionFault::WrongSqId] {
        let mut b = bench(&healthy());
        let mut nvme = init(&mut b).unwrap();
        let next = b.model.borrow().completions_posted();
        b.model.borrow_mut().faults.completions = vec![(next, fault)];
        let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
        nvme.submit_write(0, 8, buf, 0).unwrap();
        let outcome = nvme.wait_write();
        let stats = nvme.stats();
        match fault {
            CompletionFault::Drop => {
                let w = outcome.unwrap();
                assert!(matches!(w.result, Err(NvmeError::Abandoned)));
                assert_eq!((stats.timeouts, stats.bad_completions), (1, 0));
            }
            _ => {
                assert!(matches!(outcome, Err(NvmeError::BadCompletion { .. })));
                assert_eq!((stats.timeouts, stats.bad_completions), (0, 1));
            }
        }
    }
}

/// Nothing in flight and the controller not ready (shut down): reaping is
/// `NotReady`, not an endless "nothing yet".
#[test]
fn reaping_a_stopped_controller_with_nothing_in_flight_is_not_ready() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    // Ready, nothing in flight: nothing to wait for, answered at once (no
    // timeout, no controller reset).
    let now = b.clock.now_ns();
    assert!(matches!(nvme.wait_write(), Err(NvmeError::NotReady)));
    assert_eq!(b.clock.now_ns(), now, "waited");
    assert_eq!(nvme.stats().timeouts, 0);
    nvme.shutdown().unwrap();
    assert!(matches!(nvme.reap_write(), Err(NvmeError::NotReady)));
    assert!(matches!(nvme.wait_write(), Err(NvmeError::NotReady)));
}

/// A controller with exactly one namespace (NN = 1) has NSID 1: the highest
/// NSID is a namespace, one past it is not.
#[test]
fn the_highest_nsid_the_controller_reports_is_a_namespace() {
    let mut s = healthy();
    s.faults.identify.nn = Some(1);
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    assert_eq!(nvme.state(), State::Ready);
    assert!(matches!(
        nvme.namespace(2),
        Err(NvmeError::NamespaceAbsent { nsid: 2, nn: 1 })
    ));
}

/// The driver names itself in its init trace, and a refused submission shows
/// its error and where its buffer is when printed.
#[test]
fn the_trace_names_the_driver_and_a_refusal_prints_its_error() {
    use paranoid::lifecycle::Lifecycle;
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    assert_eq!(nvme.name(), "nvme");
    let big = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    let at = big.iova().get();
    let refused = nvme.submit_write(0, 40, big, 0).unwrap_err();
    let shown = format!("{refused:?}");
    assert!(shown.starts_with("Refused { error: BadBuffer"), "{shown}");
    assert!(
        shown.contains(&format!("{at:#x}")) || shown.contains(&format!("{at}")),
        "{shown}"
    );
}

/// The dead kernel set CC.EN and the controller is still coming up: the
/// driver lets the enable finish (bounded by CAP.TO) before clearing CC.EN,
/// never interrupting it (undefined behaviour, NVMe 1.4, 3.1.5).
#[test]
fn an_enable_in_progress_is_let_finish_before_the_reset() {
    let mut s = healthy();
    s.inherited = Inherited::EnableInProgress;
    s.faults.ready_delay = Duration::from_millis(300);
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    assert_eq!(b.model.borrow().enables_interrupted, 0);
    round_trip(&mut b, &mut nvme, 0, 1, 0, 8);
    clean(&b);
}

/// NSID 0 and NSIDs above NN are refused before any command is sent.
#[test]
fn nsids_outside_one_to_nn_are_refused_without_a_command() {
    let mut s = healthy();
    s.faults.identify.nn = Some(4);
    let mut b = bench(&s);
    let mut nvme = init(&mut b).unwrap();
    let before = b.model.borrow().commands;
    for nsid in [0, 5, u32::MAX] {
        assert!(
            matches!(
                nvme.namespace(nsid),
                Err(NvmeError::NamespaceAbsent { nsid: n, nn: 4 }) if n == nsid
            ),
            "NSID {nsid}"
        );
    }
    assert_eq!(b.model.borrow().commands, before);
}

/// Identify Namespace failing for another reason than Invalid Namespace (a
/// data transfer error; a command-specific status that happens to share
/// Invalid Namespace's code) is a command failure, not an absent namespace.
#[test]
fn other_identify_failures_are_command_failures() {
    let data_transfer_error = 0x04;
    let specific_0b = 1 << 8 | 0x0b;
    for status in [data_transfer_error, specific_0b] {
        let mut b = bench(&healthy());
        let mut nvme = init(&mut b).unwrap();
        let next = b.model.borrow().completions_posted();
        b.model.borrow_mut().faults.completions = vec![(next, CompletionFault::Status(status))];
        match nvme.namespace(1) {
            Err(NvmeError::CommandFailed { .. }) => {}
            other => panic!("status {status:#x}: {other:?}"),
        }
    }
}

/// The benchmark's unchecked baseline still writes what it is given (it
/// drops the validation, not the work).
#[cfg(feature = "unchecked-bench")]
#[test]
fn the_unchecked_bench_path_writes_the_blocks() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    let mut out = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    out.write_bytes(0, &[0x5a; 4096]).unwrap();
    nvme.write_blocks_unchecked_for_bench(300, 8, &out, 0)
        .unwrap();
    assert!(b.model.borrow().block(307).iter().all(|&x| x == 0x5a));
    // A failure keeps its status type and code (command specific, 0x80).
    let next = b.model.borrow().completions_posted();
    b.model.borrow_mut().faults.completions = vec![(next, CompletionFault::Status(1 << 8 | 0x80))];
    match nvme.write_blocks_unchecked_for_bench(300, 8, &out, 0) {
        Err(NvmeError::CommandFailed { status, .. }) => {
            assert_eq!((status.sct(), status.sc()), (1, 0x80));
        }
        other => panic!("{other:?}"),
    }
}

/// A pipelined write of exactly the namespace's transfer limit (MDTS) is
/// taken; one block more is refused with the buffer handed back.
#[test]
fn a_pipelined_write_may_be_as_large_as_mdts_and_no_larger() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    let ns = nvme.namespace_info().unwrap();
    let max = u64::from(ns.max_transfer_blocks);
    let bytes = (max + 1) as usize * ns.block_size.bytes() as usize;
    let buf = b.arena.alloc::<ToDevice>(bytes, 4096).unwrap();
    let refused = nvme.submit_write(0, max + 1, buf, 0).unwrap_err();
    assert!(
        matches!(refused.error, NvmeError::BadBuffer { .. }),
        "{:?}",
        refused.error
    );
    nvme.submit_write(0, max, refused.buffer, 0).unwrap();
    let w = nvme.wait_write().unwrap();
    w.result.unwrap();
    clean(&b);
}

/// Pipelined writes each large enough for a PRP list (four pages): every
/// write in flight has its own list page, so none is overwritten by the next
/// submission, and each lands with its own data; the driver counts each.
#[test]
fn pipelined_writes_with_prp_lists_keep_their_own_lists() {
    let mut b = bench(&healthy());
    let mut nvme = init(&mut b).unwrap();
    let commands = nvme.stats().commands;
    for i in 0..3u8 {
        let mut buf = b.arena.alloc::<ToDevice>(4 * 4096, 4096).unwrap();
        buf.write_bytes(0, &[0x70 | i; 4 * 4096]).unwrap();
        nvme.submit_write(500 + 32 * u64::from(i), 32, buf, 0)
            .unwrap();
    }
    for _ in 0..3 {
        let w = nvme.wait_write().unwrap();
        w.result.unwrap();
        b.arena.free(w.buffer).unwrap();
    }
    for i in 0..3u64 {
        for lba in [500 + 32 * i, 500 + 32 * i + 31] {
            assert!(
                b.model
                    .borrow()
                    .block(lba)
                    .iter()
                    .all(|&x| x == 0x70 | i as u8),
                "LBA {lba}"
            );
        }
    }
    assert_eq!(nvme.stats().commands - commands, 3);
    clean(&b);
}

/// Gaps (simulated ns) between the calls of a `during` callback, and their
/// count, over one wait.
fn gaps_during(clock: &paranoid::sim::SimClock, wait: impl FnOnce(&mut dyn FnMut())) -> (u64, u64) {
    let start = clock.now_ns();
    let (mut last, mut calls, mut max_gap) = (start, 0u64, 0u64);
    wait(&mut || {
        let now = clock.now_ns();
        max_gap = max_gap.max(now - last);
        last = now;
        calls += 1;
    });
    (calls, max_gap.max(clock.now_ns() - last))
}

#[test]
fn a_flush_and_a_write_wait_call_the_heartbeat_all_along() {
    let mut b = bench(&healthy());
    b.clock.set_poll_step(Duration::from_micros(100));
    let mut nvme = init(&mut b).unwrap();
    let buf = b.arena.alloc::<ToDevice>(4096, 4096).unwrap();
    // The flush's completion never comes: the driver waits its whole I/O
    // timeout, and the callback runs every poll of it.
    let next = b.model.borrow().completions_posted();
    b.model.borrow_mut().faults.completions = vec![(next, CompletionFault::Drop)];
    let clock = b.clock.clone();
    let mut result = Ok(());
    let (calls, gap) = gaps_during(&clock, |during| result = nvme.flush_while(during));
    assert!(
        matches!(result, Err(NvmeError::CommandTimeout { .. })),
        "{result:?}"
    );
    assert!(calls > 1000, "{calls} calls over a 5 s timeout");
    assert!(gap <= 10_000_000, "longest silence {gap} ns");
    // A pipelined write whose completion never comes: the same.
    let next = b.model.borrow().completions_posted();
    b.model.borrow_mut().faults.completions = vec![(next, CompletionFault::Drop)];
    nvme.submit_write(0, 8, buf, 0)
        .map_err(|r| r.error)
        .unwrap();
    let mut written = None;
    let (calls, gap) = gaps_during(&clock, |during| {
        written = Some(nvme.wait_write_while(during))
    });
    let back = written.unwrap().unwrap();
    assert!(
        matches!(back.result, Err(NvmeError::Abandoned)),
        "{:?}",
        back.result
    );
    // The reset after the timeout is the one stretch without calls (1 ms
    // here).
    assert!(
        calls > 1000 && gap <= 10_000_000,
        "{calls} calls, silence {gap} ns"
    );
    // And a healthy flush still completes.
    nvme.flush_while(&mut || {}).unwrap();
}
