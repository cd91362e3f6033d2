//! The crashed kernel's memory, read in place (the boot page tables
//! identity-map the first 64 GiB, RAM above the 4 GiB hole included).

use paranoid::phys::{IdentityMap, PhysError, PhysRead};
use paranoid_boot::start_info::IDENTITY_LIMIT;
use paranoid_dump::Range;

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
    /// As [`PhysRead::read`].
    pub fn read_into(&self, phys: u64, out: &mut [u8]) -> Result<(), PhysError> {
        PhysRead::read(self, phys, out)
    }
}

impl PhysRead for CrashedMemory<'_> {
    /// Copies `out.len()` bytes at `phys` into `out` when all of them lie in
    /// one of the ranges, below [`IDENTITY_LIMIT`].
    ///
    /// # Errors
    ///
    /// [`PhysError::OutOfRange`] when the read is not inside one range (its
    /// limit is `phys`: the ranges are not one span), then the identity map's.
    fn read(&self, phys: u64, out: &mut [u8]) -> Result<(), PhysError> {
        let len = out.len() as u64;
        let inside = self.ranges.iter().any(|r| {
            phys >= r.start
                && phys
                    .checked_add(len)
                    .is_some_and(|e| e <= r.start + r.len && e <= IDENTITY_LIMIT)
        });
        if !inside {
            return Err(PhysError::OutOfRange {
                at: phys,
                len,
                limit: phys,
            });
        }
        self.ram.read(phys, out)
    }
}
