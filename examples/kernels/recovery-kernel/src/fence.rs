//! Fencing stale DMA without an IOMMU: bus mastering off on every endpoint,
//! before this kernel touches memory it cares about.
//!
//! With no IOMMU translating (no DMAR table, or `iommu=none`), nothing stands
//! between a device the crashed kernel left running and this kernel's memory
//! but the device's own Bus Master Enable. Every endpoint function on every
//! bus gets it cleared (PCI 3.0, 6.2.2: with BME clear a function issues no
//! memory or I/O requests); the drivers of the devices this kernel does use
//! set it again after their reset. Bridges are left as the firmware set them:
//! their BME only forwards requests of the functions below them, all of which
//! are fenced one by one.

use paranoid::pci::command::{self, Command};
use paranoid::pci::discover;
use paranoid::pci::ConfigAccess;

/// What the fence did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fenced {
    /// Endpoint functions seen.
    pub functions: u32,
    /// Of them, with bus mastering on (now off).
    pub were_mastering: u32,
    /// Functions whose command register could not be updated (gone).
    pub failed: u32,
}

/// Clears Bus Master Enable on every endpoint function of segment 0.
pub fn bus_masters_off<C: ConfigAccess>(cfg: &mut C) -> Fenced {
    let mut out = Fenced::default();
    let mut found = [None; 256];
    let mut n = 0;
    // Collect first: the scan borrows the configuration access.
    for f in discover::scan(cfg, 0, 0, 255).filter(|f| f.header_type == 0) {
        if let Some(slot) = found.get_mut(n) {
            *slot = Some(f.address);
            n += 1;
        }
    }
    for a in found.iter().take(n).flatten() {
        out.functions += 1;
        match command::read(cfg, *a) {
            Ok(c) if c.contains(Command::BUS_MASTER) => {
                out.were_mastering += 1;
                if command::update(cfg, *a, Command::empty(), Command::BUS_MASTER).is_err() {
                    out.failed += 1;
                }
            }
            Ok(_) => {}
            Err(_) => out.failed += 1,
        }
    }
    out
}
