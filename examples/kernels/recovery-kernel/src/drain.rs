//! `iommu=drain`: keep the crashed kernel's translation for a bounded, per
//! device-class window so in-flight DMA completes where it was aimed, watch the
//! devices go idle where their registers can tell, then fence them all.

use core::fmt::Write as _;
use core::time::Duration;

use paranoid::mmio::Mmio;
use paranoid::pci::command;
use paranoid::pci::topology::Node;
use paranoid::time::{Clock, Deadline};
use paranoid_boot::{edu, platform, println};
use paranoid_e1000::TxActivity;
use paranoid_vtd::drain::{
    drain_then_fence, Activity, DeviceClass, DrainConfig, DrainDevice, DrainOutcome, IdleProbe,
};
use paranoid_vtd::policy::FaultPolicy;

use crate::{fail, iommu, Failed, Line, Recovery};

/// Functions drained at most.
const MAX_FUNCTIONS: usize = 8;
/// PCI base class of bridges (host, ISA, PCI-to-PCI; PCI 3.0 appendix D):
/// their bus-master bit forwards the DMA of the functions behind them, which
/// are drained themselves.
const BRIDGE_CLASS: u8 = 0x06;
/// How a device's registers tell whether it is still moving data (each
/// reading is its driver's, or for edu its platform module's).
enum Probe {
    /// An 8254x NIC: transmit head reached tail.
    TxRing(Mmio),
    /// edu: the DMA command's run bit cleared.
    EduDma(Mmio),
}

impl IdleProbe for Probe {
    fn activity(&mut self) -> Activity {
        match self {
            Probe::TxRing(r) => match TxActivity::read(r) {
                TxActivity::Idle => Activity::Idle,
                TxActivity::Busy => Activity::Busy,
                TxActivity::Unknown => Activity::Unknown,
            },
            Probe::EduDma(r) => match edu::dma_running(r) {
                None => Activity::Unknown,
                Some(true) => Activity::Busy,
                Some(false) => Activity::Idle,
            },
        }
    }
}

/// Outcome counts for the result line.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrainCounts {
    /// Went idle (or stayed quiet) in their window.
    pub drained: u32,
    /// Still busy at the deadline: fenced anyway.
    pub busy: u32,
    /// Faulted during the drain.
    pub faulted: u32,
}

/// Drains every function that has bus mastering on, then fences them all.
pub fn run(
    r: &mut Recovery<'_>,
    unit: &mut iommu::Unit,
    faults: &mut FaultPolicy,
) -> Result<DrainCounts, Failed> {
    let t = r.clock.now_ns();
    let mut cf8 = platform::cf8();
    let mut found: [Option<Node>; MAX_FUNCTIONS] = [None; MAX_FUNCTIONS];
    let mut n = 0;
    let topology = platform::topology(&mut cf8);
    for f in topology.nodes() {
        let masters = command::read(&mut cf8, f.address())
            .is_ok_and(|c| c.contains(command::Command::BUS_MASTER));
        if masters && f.info.class[0] != BRIDGE_CLASS {
            if let Some(slot) = found.get_mut(n) {
                *slot = Some(*f);
                n += 1;
            }
        }
    }
    let mut probes: [Option<Probe>; MAX_FUNCTIONS] = [const { None }; MAX_FUNCTIONS];
    for (f, p) in found.iter().zip(probes.iter_mut()) {
        let Some(f) = f else { continue };
        let ids = (f.info.vendor, f.info.device);
        // Every 8254x part the driver knows has the same TX ring registers.
        if paranoid_e1000::SUPPORTED_IDS.contains(&ids) || ids == edu::IDS {
            if let Ok((regs, _)) = platform::map_bar0(&mut cf8, f.address()) {
                *p = Some(if ids == edu::IDS {
                    Probe::EduDma(regs)
                } else {
                    Probe::TxRing(regs)
                });
            }
        }
    }
    let mut devices: [Option<DrainDevice<'_>>; MAX_FUNCTIONS] = [const { None }; MAX_FUNCTIONS];
    for ((f, p), d) in found.iter().zip(probes.iter_mut()).zip(devices.iter_mut()) {
        let Some(f) = f else { continue };
        let dev = DrainDevice::new(
            f.requester_id(),
            DeviceClass::from_base_class(f.info.class[0]),
        );
        *d = Some(match p {
            Some(p) => dev.with_probe(p),
            None => dev,
        });
    }
    let mut list: [DrainDevice<'_>; MAX_FUNCTIONS] =
        devices.map(|d| d.unwrap_or(DrainDevice::new(0, DeviceClass::Other)));
    let list = list.get_mut(..n).unwrap_or(&mut []);
    let config = DrainConfig {
        network: r.config.drain_nic,
        storage: r.config.drain_storage,
        other: r.config.drain_other,
        ..DrainConfig::DEFAULT
    };
    let longest = config.network.max(config.storage).max(config.other);
    let deadline = Deadline::after(&r.clock, longest + Duration::from_millis(50));
    let mut log = |line: &paranoid_vtd::policy::LogLine| println!("recovery: iommu {line:?}");
    let report = drain_then_fence(unit, list, &config, faults, &mut log, deadline);
    println!("recovery: {report}");
    let mut counts = DrainCounts::default();
    for d in report.devices() {
        let name = found
            .iter()
            .flatten()
            .find(|f| f.requester_id() == d.source_id);
        let mut what = Line::new();
        let _ = match d.outcome {
            DrainOutcome::Drained { after, .. } => {
                counts.drained += 1;
                write!(what, "drained after {after:?}, then fenced ({:?})", d.fence)
            }
            DrainOutcome::BusyAtDeadline { waited, .. } => {
                counts.busy += 1;
                write!(
                    what,
                    "still busy at its {waited:?} deadline: fenced anyway ({:?})",
                    d.fence
                )
            }
            DrainOutcome::Faulted { faults, after } => {
                counts.faulted += 1;
                write!(
                    what,
                    "faulted ({faults}) after {after:?}: fenced ({:?})",
                    d.fence
                )
            }
            other => write!(what, "{other:?} ({:?})", d.fence),
        };
        match name {
            Some(f) => r.report.device(
                format_args!(
                    "drain {} {:04x}:{:04x}",
                    f.address(),
                    f.info.vendor,
                    f.info.device
                ),
                format_args!("bus master on, {:?}, window {:?}", d.class, d.window),
                format_args!("{}", what.as_str()),
            ),
            None => r.report.device(
                format_args!("drain sid {:#06x}", d.source_id),
                format_args!("-"),
                format_args!("{}", what.as_str()),
            ),
        }
    }
    r.report.step(
        "drain then fence",
        t,
        r.clock.now_ns(),
        format_args!(
            "{} drained, {} busy at deadline, {} faulted",
            counts.drained, counts.busy, counts.faulted
        ),
    );
    if !report.all_fenced() {
        return Err(fail(
            "drain: a device could not be fenced",
            report.fence_error,
        ));
    }
    Ok(counts)
}
