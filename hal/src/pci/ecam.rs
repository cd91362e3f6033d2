//! PCIe enhanced configuration access (ECAM): configuration space as memory.

use core::ptr::NonNull;

use super::{config_access_ok, ConfigAccess, PciAddress};
use crate::Untrusted;

/// Memory-mapped configuration space for one segment and a range of buses.
///
/// # Invariants
///
/// `base` maps 1 MiB of ECAM per bus for buses `start_bus..=end_bus`, owned by
/// this value and never referenced by a Rust reference.
#[derive(Debug)]
pub struct Ecam {
    base: NonNull<u8>,
    segment: u16,
    start_bus: u8,
    end_bus: u8,
}

// SAFETY: `Ecam` owns its mapping; access needs `&mut`.
unsafe impl Send for Ecam {}

impl Ecam {
    /// Takes the ECAM window at `base` (the address of `start_bus`'s space).
    ///
    /// # Safety
    ///
    /// `base` must map `(end_bus - start_bus + 1)` MiB of ECAM, uncached, owned
    /// exclusively by the returned value for its lifetime; its writes must be used
    /// soundly (bus mastering lets a device write memory).
    pub const unsafe fn new(base: NonNull<u8>, segment: u16, start_bus: u8, end_bus: u8) -> Self {
        Self {
            base,
            segment,
            start_bus,
            end_bus,
        }
    }

    /// The segment this window serves.
    pub const fn segment(&self) -> u16 {
        self.segment
    }

    /// First bus decoded.
    pub const fn start_bus(&self) -> u8 {
        self.start_bus
    }

    /// Last bus decoded.
    pub const fn end_bus(&self) -> u8 {
        self.end_bus
    }

    /// True when this window decodes `bus` of `segment`.
    pub const fn decodes(&self, segment: u16, bus: u8) -> bool {
        self.segment == segment && self.start_bus <= bus && bus <= self.end_bus
    }

    fn at(&self, a: PciAddress, offset: u16, width: u16) -> Option<*mut u8> {
        if a.segment() != self.segment
            || a.bus() < self.start_bus
            || a.bus() > self.end_bus
            || !config_access_ok(offset, width, 4096)
        {
            return None;
        }
        let index = (usize::from(a.bus() - self.start_bus) << 20)
            | usize::from(a.device()) << 15
            | usize::from(a.function()) << 12
            | usize::from(offset);
        // The offset is inside the mapping by the checks above (type invariant).
        Some(self.base.as_ptr().wrapping_add(index))
    }
}

macro_rules! ecam_access {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&mut self, a: PciAddress, o: u16) -> Untrusted<$t> {
            match self.at(a, o, size_of::<$t>() as u16) {
                // SAFETY: `at` returned an aligned pointer inside the mapping (invariant).
                Some(p) => Untrusted::new(unsafe { crate::arch::$read(p.cast()) }),
                None => Untrusted::new(<$t>::MAX),
            }
        }
        fn $write(&mut self, a: PciAddress, o: u16, v: $t) {
            if let Some(p) = self.at(a, o, size_of::<$t>() as u16) {
                // SAFETY: `at` returned an aligned pointer inside the mapping (invariant).
                unsafe { crate::arch::$write(p.cast(), v) }
            }
        }
    };
}

impl ConfigAccess for Ecam {
    ecam_access!(read8, write8, u8);
    ecam_access!(read16, write16, u16);
    ecam_access!(read32, write32, u32);
    fn space_size(&self) -> u16 {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_serves_its_segment_and_buses_at_their_offsets() {
        // Two buses of ECAM in ordinary memory (4-byte aligned).
        let mut mem = std::vec![0u32; (2 << 20) / 4];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` holds the 2 MiB two buses take, lives until the end
        // of the test, and is reached only through `ecam` while it exists.
        let mut ecam = unsafe { Ecam::new(base, 3, 0x10, 0x11) };
        assert_eq!(
            (ecam.segment(), ecam.start_bus(), ecam.end_bus()),
            (3, 0x10, 0x11)
        );
        assert!(ecam.decodes(3, 0x11) && !ecam.decodes(0, 0x11) && !ecam.decodes(3, 0x12));
        let a = PciAddress::new(3, 0x11, 1, 2).unwrap();
        ecam.write32(a, 0x10, 0xfeed_f00d);
        assert_eq!(ecam.read32(a, 0x10).into_raw_for_report(), 0xfeed_f00d);
        let first = PciAddress::new(3, 0x10, 0, 0).unwrap();
        ecam.write16(first, 0, 0x8086);
        assert_eq!(ecam.read16(first, 0).into_raw_for_report(), 0x8086);
        // Another segment, the buses either side, and past the 4 KiB space
        // read all-ones and write nothing.
        for (seg, bus) in [(0, 0x11), (3, 0x0f), (3, 0x12)] {
            let other = PciAddress::new(seg, bus, 1, 2).unwrap();
            ecam.write32(other, 0x10, 0);
            assert_eq!(ecam.read32(other, 0x10).into_raw_for_report(), u32::MAX);
        }
        assert_eq!(ecam.read32(a, 4096).into_raw_for_report(), u32::MAX);
        // `ecam` is not used past here: the memory is read directly.
        // Bus 0x11 is the second MiB; device 1 function 2 at 1 << 15 | 2 << 12.
        assert_eq!(mem[((1 << 20) | 1 << 15 | 2 << 12 | 0x10) / 4], 0xfeed_f00d);
        assert_eq!(mem[0], 0x8086);
        assert_eq!(mem.iter().filter(|&&w| w != 0).count(), 2);
    }
}
