//! The generated init wrapper at run time, on the simulated backend: success,
//! escalation, fencing, and the budget.

#[allow(
    dead_code,
    reason = "shared with the benchmark, which uses other parts"
)]
#[path = "common/toy.rs"]
mod toy;

use std::time::Duration;

use paranoid::dma::{check_windows, Window};
use paranoid::init::Outcome;
use paranoid::lifecycle::{Cause, ResetKind};
use paranoid::mmio::RegisterIo;
use paranoid::regs::Access;
use paranoid::sim::SimClock;
use paranoid::time::Clock;
use toy::{init, init_30ms, init_with_budget, Toy, ToyError, ToyModel, ToyRegs};

#[test]
fn init_from_a_running_controller_succeeds_first_try() {
    let clock = SimClock::new();
    let ok = init(Toy::new(ToyModel::running(&clock), &clock), &clock).unwrap();
    assert_eq!(ok.trace.escalations(), 0);
    let steps: Vec<_> = ok.trace.entries().map(|e| e.step).collect();
    assert_eq!(steps, ["quiesce", "controller reset", "verify", "enable"]);
    let toy = ok.device.into_inner();
    assert_eq!(toy.resets, [ResetKind::Controller]);
    assert!(toy.model().bus_master);
    assert!(!toy.fenced);
}

#[test]
fn device_that_never_leaves_reset_ends_fenced_with_the_escalation_in_the_trace() {
    let clock = SimClock::new();
    let mut model = ToyModel::running(&clock);
    model.stuck = true;
    let err = init(Toy::new(model, &clock), &clock).err().unwrap();
    let text = format!("{err}");
    assert!(err.device.fenced, "{text}");
    assert!(!err.device.model().bus_master, "{text}");
    assert_eq!(
        err.device.resets,
        [
            ResetKind::Controller,
            ResetKind::FunctionLevel,
            ResetKind::SecondaryBus
        ]
    );
    assert_eq!(err.device.model().deep_resets, 2);
    assert!(matches!(
        err.cause,
        Cause::Device(ToyError::ResetTimeout { csts: 1 })
    ));
    assert_eq!(err.trace.escalations(), 2, "{text}");
    assert!(err.trace.any(|o| *o == Outcome::Fenced), "{text}");
    assert!(text.contains("escalate to function-level reset"), "{text}");
    assert!(text.contains("escalate to secondary bus reset"), "{text}");
    assert!(text.contains("fenced (bus master off)"), "{text}");
}

#[test]
fn init_over_budget_returns_the_trace_instead_of_hanging() {
    let clock = SimClock::new();
    let mut model = ToyModel::running(&clock);
    // Ready takes 5 s of simulated time; the budget is 30 ms.
    model.ready_delay = Duration::from_secs(5);
    let start = clock.now_ns();
    let err = init_30ms(Toy::new(model, &clock), &clock).err().unwrap();
    let spent = Duration::from_nanos(clock.now_ns() - start);
    let text = format!("{err}");
    assert!(matches!(err.cause, Cause::Budget { .. }), "{text}");
    assert!(err.device.fenced, "{text}");
    assert!(
        spent < Duration::from_millis(40),
        "stopped near the budget: {spent:?}"
    );
    assert!(err.trace.any(|o| matches!(o, Outcome::Failed(_))), "{text}");
    assert!(text.contains("fenced"), "{text}");
}

#[test]
fn a_caller_budget_is_used_and_capped_at_max_budget_ms() {
    for (asked, stops_at) in [
        (Duration::from_millis(30), Duration::from_millis(30)),
        // An hour asked, `max_budget_ms = 2000` given.
        (Duration::from_secs(3600), Duration::from_secs(2)),
    ] {
        let clock = SimClock::new();
        let mut model = ToyModel::running(&clock);
        model.ready_delay = Duration::from_secs(5);
        let start = clock.now_ns();
        let err = init_with_budget(Toy::new(model, &clock), &clock, asked)
            .err()
            .unwrap();
        let spent = Duration::from_nanos(clock.now_ns() - start);
        assert!(matches!(err.cause, Cause::Budget { .. }), "{err}");
        assert!(
            spent >= stops_at && spent < stops_at + Duration::from_millis(10),
            "asked {asked:?}: stopped after {spent:?}, expected {stops_at:?}"
        );
    }
    let clock = SimClock::new();
    let ok = init_with_budget(
        Toy::new(ToyModel::running(&clock), &clock),
        &clock,
        Duration::from_secs(1),
    );
    assert!(ok.is_ok());
}

#[test]
fn generated_windows_pass_the_run_time_check() {
    assert_eq!(
        check_windows(&toy::WINDOWS, toy::IOMMU_ADDRESS_WIDTH),
        Ok(())
    );
    assert_eq!(
        toy::Recovery::SIZE,
        paranoid::dma::DEFAULT_RECOVERY_WINDOW_SIZE
    );
    assert_eq!(toy::Recovery::BASE, 0x7f_fff0_0000);
    assert_eq!(toy::Normal::NAME, "Normal");
    assert_eq!(toy::WINDOWS[1], toy::Recovery::spec());
}

#[test]
#[cfg_attr(
    any(),
    paranoid::allow(
        device_gone_unchecked,
        dma_outside_window,
        reason = "checks the generated accessors against a simulated device: exact values, no DMA"
    )
)]
fn register_accessors_do_one_access_at_the_declared_offset() {
    let clock = SimClock::new();
    let model = std::rc::Rc::new(std::cell::RefCell::new(paranoid::sim::RegisterFile::new(
        0x1000,
    )));
    let io = paranoid::sim::SimMmio::shared(model, clock.clone());
    let mut regs = ToyRegs::new(io.clone());
    regs.cc()
        .write(toy::toy_regs::cc::EN.bits(1) | toy::toy_regs::cc::IOSQES.bits(6));
    assert_eq!(io.accesses(), 1);
    let mut raw = io.clone();
    assert!(raw.read32(0x14).is(0x0006_0001));
    let cc = regs.cc().read();
    assert!(cc.en());
    assert!(cc.iosqes().is(6));
    regs.asq().write(0x7f_fff0_0000);
    assert!(raw.read64(0x28).is(0x7f_fff0_0000));
    raw.write32(0x20, 0b110);
    regs.isr().clear(0b010);
    assert!(
        raw.read32(0x20).is(0b010),
        "w1c clear writes the bits given"
    );
    assert_eq!(toy::toy_regs::cap::RESET, 0x0a00_003f);
    assert_eq!(
        toy::toy_regs::cap::TO.extract(toy::toy_regs::cap::RESET),
        0x0a
    );
    assert_eq!(toy::toy_regs::csts::ACCESS, Access::ReadOnly);
    let names: Vec<_> = ToyRegs::<paranoid::sim::SimMmio<paranoid::sim::RegisterFile>>::REGISTERS
        .iter()
        .map(|r| (r.name, r.offset, r.width))
        .collect();
    assert_eq!(
        names,
        [
            ("CAP", 0, 8),
            ("INTMS", 0xc, 4),
            ("CC", 0x14, 4),
            ("CSTS", 0x1c, 4),
            ("ISR", 0x20, 4),
            ("ASQ", 0x28, 8)
        ]
    );
}
