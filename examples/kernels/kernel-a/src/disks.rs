//! Kernel A's disk: the NVMe namespace named by controller serial number and
//! namespace id (`dump_serial=`, `dump_nsid=`), found among every NVMe
//! controller of the machine, whatever its slot or bus.
//!
//! Kernel A is the machine's normal kernel: at boot it may bring every
//! controller up to read its serial number. It writes only the one named
//! (its scratch area and the I/O it leaves in flight), and tells the recovery
//! kernel where it saw it (`dump_seen_at=`), so the recovery kernel need not
//! touch any other controller to find it.

use paranoid::dma::{DmaArena, WindowMapping};
use paranoid::pci::command::{self, Command};
use paranoid::pci::topology::Node;
use paranoid::pci::PciAddress;
use paranoid::phys::RamRegion;
use paranoid_boot::platform;
use paranoid_boot::{println, BootInfo};
use paranoid_nvme::{Config, Nvme};
use paranoid_recovery::target::Serial;

use crate::error::KernelAError;
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
/// mastering off), writing nothing. `arena_ram` (the DMA arena's RAM) is lent
/// to each probe and comes back with the answer, for [`crate::live::start`].
///
/// # Errors
///
/// The arena could not be built over `arena_ram`, or a probe kept buffers
/// in it (its RAM is then not given back).
pub fn find(
    boot: &'static BootInfo,
    serial: Option<Serial>,
    nsid: u32,
    mut arena_ram: RamRegion,
) -> Result<(Found, RamRegion), KernelAError> {
    let Some(serial) = serial else {
        return Ok((Found::NotNamed, arena_ram));
    };
    let mut probe_cfg = platform::config(boot);
    let list = platform::find_nvme(&mut probe_cfg);

    for f in list.iter() {
        let (sn, ram) = identify(boot, f.address(), nsid, arena_ram)?;
        arena_ram = ram;
        match sn {
            Some(sn) if Serial::new(&sn) == Some(serial) => {
                println!(
                    "kernel-a: disk {serial} (namespace {nsid}) at {}",
                    f.address()
                );
                return Ok((Found::At(*f), arena_ram));
            }
            Some(sn) => println!(
                "kernel-a: NVMe {} has serial {:?}: not ours, shut down again",
                f.address(),
                Serial::new(&sn)
            ),
            None => println!("kernel-a: NVMe {} did not identify", f.address()),
        }
    }
    Ok((Found::Nowhere, arena_ram))
}

/// Brings the controller at `address` up with namespace `nsid` in an arena
/// over `ram`, reads its serial number, shuts it down, turns bus mastering
/// off and gives every buffer back: the serial number (`None`: it did not
/// identify) and `ram`.
fn identify(
    boot: &'static BootInfo,
    address: PciAddress,
    nsid: u32,
    ram: RamRegion,
) -> Result<(Option<[u8; 20]>, RamRegion), KernelAError> {
    // Translation is not on yet: the window sits on the memory.
    let mapping = WindowMapping::<KernelAWindow>::identity(ARENA_BASE, ARENA_LEN)
        .map_err(KernelAError::ArenaMapping)?;
    let mut arena = DmaArena::<KernelAWindow>::new(mapping, ram).map_err(KernelAError::Arena)?;
    let serial = probe(boot, address, nsid, &mut arena);
    let mut cf8 = platform::cf8();
    let _ = command::update(&mut cf8, address, Command::empty(), Command::BUS_MASTER);
    let ram = arena
        .into_ram()
        .map_err(|arena| KernelAError::ArenaBusy { live: arena.live() })?;
    Ok((serial, ram))
}

/// The serial number of the controller at `address`, its driver given back
/// to `arena` (shut down, or fenced by a failed init) whatever happened.
fn probe(
    boot: &'static BootInfo,
    address: PciAddress,
    nsid: u32,
    arena: &mut DmaArena<KernelAWindow>,
) -> Option<[u8; 20]> {
    let mut cfg = platform::config(boot);
    let (regs, _) = platform::map_bar0(&mut cfg, address).ok()?;
    let config = Config {
        nsid,
        ..Config::default()
    };
    let nvme = Nvme::new(regs, cfg, address, boot.clock(), arena, config).ok()?;
    let mut nvme = match nvme.init(paranoid_nvme::DEFAULT_INIT_BUDGET) {
        Ok(ready) => ready.device.into_inner(),
        Err(failed) => {
            // Fenced by the init; its buffers come back all the same.
            let _ = failed.device.release(arena);
            return None;
        }
    };
    let serial = nvme.controller_info().map(|i| i.serial);
    let _ = nvme.shutdown();
    let _ = nvme.release(arena);
    serial
}
