//! Proptest strategies for the states a crashed kernel leaves an NVMe controller
//! in, and for a malicious or buggy controller.
//!
//! An [`AnyState`] is applied to a fresh [`Bench`] before the driver runs:
//! the dead kernel's register writes (through the model, as it did them), its
//! queues at addresses outside the recovery window with commands submitted and
//! not fetched, the command register as it left it, and the model's faults.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::model::{Bench, CompletionFault, Faults, IdentifyFaults, Persist, OLD_KERNEL_BASE};
use crate::regs::offset;

/// The controller state the dead kernel left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherited {
    /// Never enabled since power-on.
    PowerOn,
    /// Enabled by firmware (SeaBIOS leaves it so), admin queue in old memory.
    Firmware,
    /// Enabled with I/O queues live and commands submitted, doorbells rung.
    LiveQueues {
        /// Admin commands submitted and not fetched.
        admin_pending: u16,
        /// I/O queue pairs (1..=3).
        io_queues: u16,
        /// I/O commands submitted per queue and not fetched.
        io_pending: u16,
    },
    /// CC.EN just cleared, CSTS.RDY not yet (the reset delay fault decides how long).
    ResetInProgress,
    /// CC.EN just set, CSTS.RDY not yet.
    EnableInProgress,
    /// An enable that failed: CC.EN set, CSTS.CFS set.
    EnableFailed,
    /// A normal shutdown was notified (CC.SHN) and completed.
    ShutDown,
}

/// One crashed-kernel state plus device misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyState {
    /// PCI command register as left (bus master, memory decoding, INTx).
    pub command: u16,
    /// MSI-X left enabled.
    pub msix: bool,
    /// The controller state.
    pub inherited: Inherited,
    /// Garbage register writes by the dead kernel, in order, after `inherited`.
    pub garbage: Vec<(usize, u32)>,
    /// CAP.TO reported instead of 15.
    pub cap_to: Option<u8>,
    /// CAP.MQES reported instead of 2047.
    pub cap_mqes: Option<u16>,
    /// CAP.DSTRD reported instead of 0.
    pub cap_dstrd: Option<u8>,
    /// CAP.MPSMIN reported instead of 0.
    pub cap_mpsmin: Option<u8>,
    /// CAP.CSS reported instead of 0x41.
    pub cap_css: Option<u8>,
    /// VS reported instead of 1.4.
    pub vs: Option<u32>,
    /// Device misbehaviour.
    pub faults: Faults,
    /// The device vanishes (reads all-ones) after this many register accesses.
    pub gone_after: Option<u64>,
}

/// Registers a dead kernel may have scribbled on.
pub const WRITABLE: [usize; 8] = [
    offset::CC,
    offset::AQA,
    offset::ASQ,
    offset::ASQ + 4,
    offset::ACQ,
    offset::ACQ + 4,
    offset::INTMS,
    offset::INTMC,
];

fn persist() -> impl Strategy<Value = Persist> {
    prop_oneof![
        3 => Just(Persist::Transient),
        2 => Just(Persist::UntilFlr),
        1 => Just(Persist::Forever),
    ]
}

fn rare<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
    percent: u32,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![
        (100 - percent) => Just(None),
        percent => s.prop_map(Some),
    ]
    .boxed()
}

fn millis(range: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn completion_fault() -> impl Strategy<Value = CompletionFault> {
    prop_oneof![
        Just(CompletionFault::UnknownCid),
        Just(CompletionFault::WrongPhase),
        Just(CompletionFault::SqHeadOutOfRange),
        Just(CompletionFault::WrongSqId),
        Just(CompletionFault::ReservedStatus),
        Just(CompletionFault::Drop),
        Just(CompletionFault::Duplicate),
    ]
}

fn identify_faults() -> impl Strategy<Value = IdentifyFaults> {
    (
        (
            rare(any::<u8>(), 4),
            rare(any::<u8>(), 1),
            rare(any::<u8>(), 1),
            rare(prop_oneof![Just(0u32), any::<u32>()], 1),
        ),
        (
            rare(
                prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 1u64..4096],
                5,
            ),
            rare(any::<u64>(), 3),
            rare(any::<u8>(), 3),
            rare(any::<u8>(), 3),
            rare(prop_oneof![0u8..16, any::<u8>()], 5),
            rare(any::<u16>(), 3),
        ),
    )
        .prop_map(
            |((mdts, sqes, cqes, nn), (nsze, ncap, nlbaf, flbas, lbads, ms))| IdentifyFaults {
                mdts,
                sqes,
                cqes,
                nn,
                nsze,
                ncap,
                nlbaf,
                flbas,
                lbads,
                ms,
            },
        )
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        (
            prop_oneof![6 => Just(Duration::ZERO), 3 => millis(0..200), 1 => millis(0..12_000)],
            prop_oneof![6 => Just(Duration::ZERO), 3 => millis(0..200), 1 => millis(0..12_000)],
            rare(persist(), 4),
            rare(persist(), 4),
            rare(
                prop_oneof![Just(Duration::from_micros(500)), millis(1..50)],
                4,
            ),
            rare(persist(), 6),
        ),
        (
            prop_oneof![
                6 => Just(Vec::new()),
                4 => vec((0u64..10, completion_fault()), 1..3),
            ],
            prop::bool::weighted(0.2),
            identify_faults(),
        ),
    )
        .prop_map(
            |(
                (reset_delay, ready_delay, rdy_stuck, never_ready, rdy_flap, cfs),
                (completions, abort_ineffective, identify),
            )| Faults {
                reset_delay,
                ready_delay,
                rdy_stuck,
                never_ready,
                rdy_flap,
                cfs,
                completions,
                abort_ineffective,
                identify,
                shutdown_never_completes: false,
            },
        )
}

fn inherited() -> impl Strategy<Value = Inherited> {
    prop_oneof![
        2 => Just(Inherited::PowerOn),
        3 => Just(Inherited::Firmware),
        5 => (0u16..8, 1u16..=3, 0u16..16).prop_map(|(admin_pending, io_queues, io_pending)| {
            Inherited::LiveQueues { admin_pending, io_queues, io_pending }
        }),
        2 => Just(Inherited::ResetInProgress),
        2 => Just(Inherited::EnableInProgress),
        2 => Just(Inherited::EnableFailed),
        1 => Just(Inherited::ShutDown),
    ]
}

fn garbage() -> impl Strategy<Value = Vec<(usize, u32)>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => vec((prop::sample::select(WRITABLE.to_vec()), any::<u32>()), 1..6),
    ]
}

/// Any crashed-kernel state, with device misbehaviour mixed in.
pub fn any_state() -> impl Strategy<Value = AnyState> {
    (
        (
            prop_oneof![
                Just(0x0006u16),
                Just(0x0002),
                Just(0x0000),
                Just(0x0406),
                any::<u16>()
            ],
            any::<bool>(),
            inherited(),
            garbage(),
        ),
        (
            rare(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 6),
            rare(prop_oneof![Just(0u16), Just(1), any::<u16>()], 3),
            rare(0u8..16, 3),
            rare(0u8..16, 2),
            rare(any::<u8>(), 2),
            rare(prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()], 2),
        ),
        faults(),
        rare(0u64..400, 4),
    )
        .prop_map(
            |(
                (command, msix, inherited, garbage),
                (cap_to, cap_mqes, cap_dstrd, cap_mpsmin, cap_css, vs),
                faults,
                gone_after,
            )| AnyState {
                command,
                msix,
                inherited,
                garbage,
                cap_to,
                cap_mqes,
                cap_dstrd,
                cap_mpsmin,
                cap_css,
                vs,
                faults,
                gone_after,
            },
        )
}

/// Old-kernel enable: admin queues in the dead kernel's memory, CC.EN.
fn old_enable(model: &mut crate::model::NvmeModel) {
    model.old_kernel_write(offset::AQA, 0x001f_001f);
    model.old_kernel_write(offset::ASQ, OLD_KERNEL_BASE as u32);
    model.old_kernel_write(offset::ASQ + 4, (OLD_KERNEL_BASE >> 32) as u32);
    model.old_kernel_write(offset::ACQ, (OLD_KERNEL_BASE + 0x1000) as u32);
    model.old_kernel_write(offset::ACQ + 4, ((OLD_KERNEL_BASE + 0x1000) >> 32) as u32);
    model.old_kernel_write(offset::CC, 0x0046_0001);
}

impl AnyState {
    /// Puts `bench` into this state (bus mastering stays off until the end, so
    /// setting up makes no DMA).
    pub fn apply(&self, bench: &Bench) {
        bench.set_command(0);
        {
            let mut m = bench.model.borrow_mut();
            let p = &mut m.params;
            if let Some(v) = self.cap_to {
                p.to = v;
            }
            if let Some(v) = self.cap_mqes {
                p.mqes = v;
            }
            if let Some(v) = self.cap_dstrd {
                p.dstrd = v;
            }
            if let Some(v) = self.cap_mpsmin {
                p.mpsmin = v;
            }
            if let Some(v) = self.cap_css {
                p.css = v;
            }
            if let Some(v) = self.vs {
                p.vs = v;
            }
            // The dead kernel's history runs on a healthy device; the faults
            // that shape the inherited state apply where they belong.
            let faults = self.faults.clone();
            m.faults = Faults {
                reset_delay: faults.reset_delay,
                ready_delay: faults.ready_delay,
                ..Faults::default()
            };
            match self.inherited {
                Inherited::PowerOn => {}
                Inherited::Firmware => old_enable(&mut m),
                Inherited::LiveQueues {
                    admin_pending,
                    io_queues,
                    io_pending,
                } => {
                    old_enable(&mut m);
                    for q in 1..=io_queues {
                        let base = OLD_KERNEL_BASE + 0x2000 * u64::from(q);
                        m.inherit_io_queue(q, base, base + 0x1000, 32, io_pending);
                    }
                    m.inherit_admin_pending(admin_pending);
                }
                Inherited::ResetInProgress => {
                    old_enable(&mut m);
                    m.old_kernel_write(offset::CC, 0);
                }
                Inherited::EnableInProgress => old_enable(&mut m),
                Inherited::EnableFailed => {
                    m.old_kernel_write(offset::AQA, 0);
                    m.old_kernel_write(offset::CC, 1);
                }
                Inherited::ShutDown => {
                    old_enable(&mut m);
                    m.old_kernel_write(offset::CC, 0x0046_4001);
                }
            }
            for &(reg, v) in &self.garbage {
                m.old_kernel_write(reg, v);
            }
            m.faults = faults;
            // The dead kernel's own mistakes are not the driver's.
            m.violations.clear();
            if m.faults.cfs.is_some() {
                m.csts |= 2;
            }
            if m.faults.rdy_stuck.is_some() && m.cc & 1 == 0 && self.inherited != Inherited::PowerOn
            {
                m.csts |= 1;
            }
        }
        // A live MSI-X capability (Message Control at cap + 2, bit 15).
        if self.msix {
            let mut pci = bench.pci.clone();
            if let Ok(Some(at)) = paranoid::pci::caps::find(&mut pci, bench.address, 0x11) {
                bench.config.borrow_mut().poke8(at + 3, 0x80);
            }
        }
        bench.set_command(self.command);
        bench.mmio.set_gone_after(self.gone_after);
    }
}
