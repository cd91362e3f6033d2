//! The crashed kernel's memory, read in place (the boot page tables
//! identity-map the first 64 GiB, RAM above the 4 GiB hole included).

use paranoid::phys::{IdentityMap, PhysRead as _};
use paranoid_boot::start_info::IDENTITY_LIMIT;
use paranoid_dump::Range;
use paranoid_recovery::dump::{PhysMemory, Unreadable};

/// Reads the ranges the crash note lists, and nothing else.
pub struct CrashedMemory<'n> {
    ranges: &'n [Range],
    ram: &'n IdentityMap,
}

impl<'n> CrashedMemory<'n> {
    /// Memory limited to `ranges` (below [`IDENTITY_LIMIT`], where the boot map
    /// reaches).
    /// `ram` is the boot identity map's RAM reader ([`paranoid_boot::BootInfo::ram`]).
    pub fn new(ranges: &'n [Range], ram: &'n IdentityMap) -> Self {
        Self { ranges, ram }
    }
}

impl CrashedMemory<'_> {
    /// Copies `out.len()` bytes at `phys` (inside the ranges) into `out`.
    ///
    /// # Errors
    ///
    /// [`Unreadable`] outside the ranges.
    pub fn read_into(&self, phys: u64, out: &mut [u8]) -> Result<(), Unreadable> {
        PhysMemory::read(self, phys, out)
    }
}

impl PhysMemory for CrashedMemory<'_> {
    fn read(&self, phys: u64, out: &mut [u8]) -> Result<(), Unreadable> {
        let len = out.len() as u64;
        let inside = self.ranges.iter().any(|r| {
            phys >= r.start
                && phys
                    .checked_add(len)
                    .is_some_and(|e| e <= r.start + r.len && e <= IDENTITY_LIMIT)
        });
        if !inside {
            return Err(Unreadable { phys });
        }
        self.ram.read(phys, out).map_err(|_| Unreadable { phys })?;
        Ok(())
    }
}
