//! Kernel A's disk: the NVMe namespace named by controller serial number and
//! namespace id (`dump_serial=`, `dump_nsid=`), found among every NVMe
//! controller of the machine, whatever its slot or bus.
//!
//! Kernel A is the machine's normal kernel: at boot it may bring every
//! controller up to read its serial number. It writes only the one named
//! (its scratch area and the I/O it leaves in flight), and tells the recovery
//! kernel where it saw it (`dump_seen_at=`), so the recovery kernel need not
//! touch any other controller to find it.

use core::ptr::NonNull;

use paranoid::dma::{DmaArena, WindowMapping};
use paranoid::pci::command::{self, Command};
use paranoid::pci::topology::Node;
use paranoid::pci::PciAddress;
use paranoid_boot::platform;
use paranoid_boot::{println, BootInfo};
use paranoid_nvme::{Config, Nvme};
use paranoid_recovery::target::Serial;

use crate::layout::{ARENA_BASE, ARENA_LEN};
use crate::live::KernelAWindow;

/// Where the named disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No `dump_serial=` given: kernel A has no disk of its own.
    NotNamed,
    /// No controller has the serial number (or the namespace is missing).
    Nowhere,
    /// The controller with the serial number, as the topology found it.
    At(Node),
}

/// Finds the controller with `serial` whose namespace `nsid` is active: each
/// controller in turn is brought up, identified and shut down again (bus
/// mastering off), writing nothing.
pub fn find(boot: &'static BootInfo, serial: Option<Serial>, nsid: u32) -> Found {
    let Some(serial) = serial else {
        return Found::NotNamed;
    };
    let mut probe_cfg = platform::config(boot);
    let list = platform::find_nvme(&mut probe_cfg);

    for f in list.iter() {
        match identify(boot, f.address(), nsid) {
            Some(sn) if Serial::new(&sn) == Some(serial) => {
                println!(
                    "kernel-a: disk {serial} (namespace {nsid}) at {}",
                    f.address()
                );
                return Found::At(*f);
            }
            Some(sn) => println!(
                "kernel-a: NVMe {} has serial {:?}: not ours, shut down again",
                f.address(),
                Serial::new(&sn)
            ),
            None => println!("kernel-a: NVMe {} did not identify", f.address()),
        }
    }
    Found::Nowhere
}

/// Brings the controller at `address` up with namespace `nsid`, reads its
/// serial number, shuts it down and turns bus mastering off.
fn identify(boot: &'static BootInfo, address: PciAddress, nsid: u32) -> Option<[u8; 20]> {
    let mut cfg = platform::config(boot);
    let (regs, _) = platform::map_bar0(&mut cfg, address).ok()?;
    let cpu = NonNull::new(ARENA_BASE as *mut u8)?;
    // Translation is not on yet: the window sits on the memory.
    let mapping = WindowMapping::<KernelAWindow>::identity(ARENA_BASE, ARENA_LEN).ok()?;
    // SAFETY: the arena's RAM is identity-mapped (so `cpu` is its CPU view),
    // claimed from the frame allocator by main.rs and not used by it until
    // `live::start`, after this function: this arena is its only user until
    // it is dropped at the end of this function, and the controller is shut
    // down (no DMA) before that.
    let mut arena = unsafe { DmaArena::<KernelAWindow>::from_raw(cpu, mapping) };
    let config = Config {
        nsid,
        ..Config::default()
    };
    let nvme = Nvme::new(regs, cfg, address, boot.clock(), &mut arena, config).ok()?;
    let mut nvme = nvme
        .init(paranoid_nvme::DEFAULT_INIT_BUDGET)
        .ok()?
        .device
        .into_inner();
    let serial = nvme.controller_info().map(|i| i.serial);
    let _ = nvme.shutdown();

    let mut cf8 = platform::cf8();
    let _ = command::update(&mut cf8, address, Command::empty(), Command::BUS_MASTER);
    serial
}
