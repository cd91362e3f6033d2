//! A small NVMe-like device and its driver, declared with all three macros, for
//! the runtime tests and the overhead benchmark.
//!
//! The model starts as a dead kernel left it: enabled, ready, bus mastering.
//! It can be told to take long to come ready, or never to leave reset (CSTS.RDY
//! stuck at 1 whatever the driver does, FLR and bus reset included).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use paranoid::dma::Window;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::poll::poll;
use paranoid::sim::{MmioModel, SimClock, SimMmio, Width};
use paranoid::time::{Clock, Deadline};
use paranoid::{dma_windows, paranoid_init, register_block};

dma_windows! {
    address_width = 39;
    /// What the crashed kernel used.
    pub Normal = 0 .. 0x4000_0000;
    /// Reserved for the recovery kernel (1 MiB by default).
    pub Recovery = 0x7f_fff0_0000;
}

register_block! {
    /// The toy controller's registers.
    pub struct ToyRegs, size = 0x1000;

    /// Capabilities.
    CAP @ 0x00: u64, ro, reset = 0x0a00_003f {
        /// Ready timeout, 500 ms units.
        TO: 24..=31,
        /// Largest queue, 0's based.
        MQES: 0..=15,
    }
    /// Interrupt mask set.
    INTMS @ 0x0c: u32, wo;
    /// Configuration.
    CC @ 0x14: u32, rw, reset = 0 {
        /// Enable.
        EN: 0,
        /// Submission queue entry size (log2).
        IOSQES: 16..=19,
    }
    /// Status.
    CSTS @ 0x1c: u32, ro {
        /// Ready.
        RDY: 0,
        /// Fatal status.
        CFS: 1,
    }
    /// Interrupt status.
    ISR @ 0x20: u32, w1c;
    /// Admin submission queue base (an IOVA in the recovery window).
    ASQ @ 0x28: u64, rw;
}

/// The device model.
pub struct ToyModel {
    clock: SimClock,
    /// How long RDY takes to follow CC.EN.
    pub ready_delay: Duration,
    /// RDY never clears: the device never leaves reset.
    pub stuck: bool,
    cc: u32,
    rdy: bool,
    rdy_target: bool,
    rdy_at_ns: u64,
    /// Bus mastering (DMA) allowed.
    pub bus_master: bool,
    /// Function-level or bus resets seen.
    pub deep_resets: u32,
    asq: u64,
    isr: u32,
}

impl ToyModel {
    /// A controller left running by the previous kernel.
    pub fn running(clock: &SimClock) -> Self {
        Self {
            clock: clock.clone(),
            ready_delay: Duration::from_micros(20),
            stuck: false,
            cc: 1,
            rdy: true,
            rdy_target: true,
            rdy_at_ns: 0,
            bus_master: true,
            deep_resets: 0,
            asq: 0x1234_5000,
            isr: 0x3,
        }
    }

    fn settle(&mut self) {
        if self.clock.now_ns() >= self.rdy_at_ns {
            self.rdy = self.rdy_target;
        }
    }

    fn follow_enable(&mut self, en: bool) {
        if self.stuck && !en {
            return;
        }
        self.rdy_target = en;
        self.rdy_at_ns = self
            .clock
            .now_ns()
            .saturating_add(u64::try_from(self.ready_delay.as_nanos()).unwrap_or(u64::MAX));
    }

    /// A function-level or secondary bus reset.
    pub fn deep_reset(&mut self) {
        self.deep_resets += 1;
        if self.stuck {
            return;
        }
        self.cc = 0;
        self.rdy = false;
        self.rdy_target = false;
        self.bus_master = false;
    }
}

impl MmioModel for ToyModel {
    fn size(&self) -> usize {
        0x1000
    }
    fn read(&mut self, offset: usize, _: Width) -> u64 {
        self.settle();
        match offset {
            0x00 => 0x0a00_003f,
            0x14 => u64::from(self.cc),
            0x1c => u64::from(self.rdy),
            0x20 => u64::from(self.isr),
            0x28 => self.asq,
            _ => 0,
        }
    }
    fn write(&mut self, offset: usize, _: Width, value: u64) {
        self.settle();
        match offset {
            0x14 => {
                let old = self.cc & 1;
                self.cc = value as u32;
                if old != self.cc & 1 {
                    self.follow_enable(self.cc & 1 == 1);
                }
            }
            0x20 => self.isr &= !(value as u32),
            0x28 => self.asq = value,
            _ => {}
        }
    }
}

/// What went wrong, with the register and value seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToyError {
    /// CSTS.RDY did not clear.
    ResetTimeout {
        /// Last CSTS.
        csts: u32,
    },
    /// CSTS.RDY did not set.
    ReadyTimeout {
        /// Last CSTS.
        csts: u32,
    },
    /// CAP read all-ones or CAP.TO out of range.
    BadCap {
        /// CAP as read.
        cap: u64,
    },
    /// CSTS.CFS set.
    Fatal,
}

/// The driver.
pub struct Toy {
    regs: ToyRegs<SimMmio<ToyModel>>,
    clock: SimClock,
    model: Rc<RefCell<ToyModel>>,
    /// Resets performed, in order.
    pub resets: Vec<ResetKind>,
    /// Fenced by the init wrapper.
    pub fenced: bool,
}

impl Toy {
    /// A driver over `model`.
    pub fn new(model: ToyModel, clock: &SimClock) -> Self {
        let model = Rc::new(RefCell::new(model));
        Self {
            regs: ToyRegs::new(SimMmio::shared(model.clone(), clock.clone())),
            clock: clock.clone(),
            model,
            resets: Vec::with_capacity(4),
            fenced: false,
        }
    }

    /// The model, for assertions.
    pub fn model(&self) -> std::cell::Ref<'_, ToyModel> {
        self.model.borrow()
    }

    fn wait_rdy(&mut self, want: bool, deadline: Deadline) -> Result<(), u32> {
        let regs = &mut self.regs;
        poll(
            &self.clock,
            deadline,
            || regs.csts().read(),
            // A gone device reads all-ones: RDY set, but never ready.
            |v| !v.untrusted().is_all_ones() && v.rdy() == want,
        )
        .map(|_| ())
        .map_err(|t| t.last.untrusted().into_raw_for_report())
    }
}

impl Lifecycle for Toy {
    type Error = ToyError;

    fn name(&self) -> &'static str {
        "toy"
    }

    fn supported_resets(&self) -> ResetKinds {
        ResetKinds::FUNCTION_LEVEL | ResetKinds::SECONDARY_BUS
    }

    fn quiesce(&mut self, _: Deadline) -> Result<(), ToyError> {
        self.regs.intms().write(u32::MAX);
        self.model.borrow_mut().bus_master = false;
        Ok(())
    }

    fn reset(&mut self, kind: ResetKind, deadline: Deadline) -> Result<(), ToyError> {
        self.resets.push(kind);
        match kind {
            ResetKind::Controller => self.regs.cc().write(0),
            ResetKind::FunctionLevel | ResetKind::SecondaryBus => {
                self.model.borrow_mut().deep_reset()
            }
        }
        let own = Deadline::after(&self.clock, Duration::from_millis(10)).min(deadline);
        self.wait_rdy(false, own)
            .map_err(|csts| ToyError::ResetTimeout { csts })
    }

    fn verify(&mut self, _: Deadline) -> Result<(), ToyError> {
        let cap = self.regs.cap().read();
        let raw = cap.untrusted();
        if raw.is_all_ones() {
            return Err(ToyError::BadCap {
                cap: raw.into_raw_for_report(),
            });
        }
        cap.to().in_range(1..=255).map_err(|_| ToyError::BadCap {
            cap: raw.into_raw_for_report(),
        })?;
        self.regs.isr().clear(u32::MAX);
        Ok(())
    }

    #[cfg_attr(
        any(),
        paranoid::allow(
            device_gone_unchecked,
            reason = "CAP.TO was range-checked in `verify` and is clamped here; a gone device never passes `wait_rdy`"
        )
    )]
    fn enable(&mut self, deadline: Deadline) -> Result<(), ToyError> {
        // CAP.TO was checked in `verify`; re-read it rather than keep state.
        let to = self.regs.cap().read().to().clamp_max(255);
        let own = Deadline::after(&self.clock, Duration::from_millis(500 * to)).min(deadline);
        self.regs.asq().write(Recovery::BASE);
        self.regs
            .cc()
            .write(toy_regs::cc::EN.bits(1) | toy_regs::cc::IOSQES.bits(6));
        self.wait_rdy(true, own)
            .map_err(|csts| ToyError::ReadyTimeout { csts })?;
        if self.regs.csts().read().cfs() {
            return Err(ToyError::Fatal);
        }
        self.model.borrow_mut().bus_master = true;
        Ok(())
    }

    fn fence(&mut self) {
        self.model.borrow_mut().bus_master = false;
        self.fenced = true;
    }
}

/// The init sequence, checked and wrapped by the macro.
#[paranoid_init(budget_ms = 2000)]
pub fn init<C: Clock>(
    dev: Device<Toy, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<Toy, Ready>, Stalled<Toy>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

/// The same init with a short budget (and a lint expectation of the user's
/// own, which must land on the body where clippy reports it).
#[paranoid_init(budget_ms = 30)]
#[expect(
    clippy::result_large_err,
    reason = "`Stalled` hands the device back by value"
)]
pub fn init_30ms<C: Clock>(
    dev: Device<Toy, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<Toy, Ready>, Stalled<Toy>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

/// The same init with the budget chosen by the caller (a recovery kernel's
/// command line), capped at 2 s.
#[paranoid_init(max_budget_ms = 2000)]
pub fn init_with_budget<C: Clock>(
    dev: Device<Toy, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<Toy, Ready>, Stalled<Toy>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}
