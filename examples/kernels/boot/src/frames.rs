//! A bump allocator for physical page frames, fed by the memory map.
//!
//! Frames come from [`MemoryKind::Ram`] regions of the memory map, below the
//! identity-map limit, skipping the first MiB (firmware, the start info), the
//! kernel image and the modules. Nothing is ever freed: a recovery kernel
//! allocates its rings and buffers once.

use core::fmt;

use paranoid::phys::RamRegion;

use crate::start_info::{
    MemoryKind, StartInfo, ADDRESSABLE_LIMIT, MAX_MEMORY_REGIONS, MAX_MODULES,
};

/// Size of a frame.
pub const FRAME_SIZE: u64 = 4096;
/// Frames below this address are never handed out (BIOS data, option ROMs, the
/// PVH start info).
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Ranges the allocator avoids besides the memory map's holes.
pub const MAX_RESERVED: usize = MAX_MODULES + 4;

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No RAM region has `bytes` free with this alignment.
    Exhausted {
        /// Bytes asked for.
        bytes: u64,
        /// Alignment asked for.
        align: u64,
    },
    /// Zero bytes, or an alignment that is not a power of two multiple of 4 KiB.
    BadRequest {
        /// Bytes asked for.
        bytes: u64,
        /// Alignment asked for.
        align: u64,
    },
    /// More reserved ranges than [`MAX_RESERVED`].
    TooManyReserved,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted { bytes, align } => {
                write!(f, "no free RAM for {bytes:#x} bytes aligned to {align:#x}")
            }
            Self::BadRequest { bytes, align } => {
                write!(
                    f,
                    "bad frame request: {bytes:#x} bytes aligned to {align:#x}"
                )
            }
            Self::TooManyReserved => write!(f, "more than {MAX_RESERVED} reserved ranges"),
        }
    }
}

/// A half-open physical range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// True when the ranges share a byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Hands out page-aligned physical memory, never twice.
#[derive(Debug, Clone)]
pub struct FrameAllocator {
    ram: [PhysRange; MAX_MEMORY_REGIONS],
    ram_count: usize,
    reserved: [PhysRange; MAX_RESERVED],
    reserved_count: usize,
    /// Index into `ram` of the region being carved.
    region: usize,
    /// Next free byte in that region.
    next: u64,
    allocated: u64,
}

const fn align_up(v: u64, align: u64) -> Option<u64> {
    match v.checked_add(align - 1) {
        Some(x) => Some(x & !(align - 1)),
        None => None,
    }
}

impl FrameAllocator {
    /// An allocator over the RAM of `info`, avoiding `kernel` and the modules.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooManyReserved`] when the modules and `kernel` do not fit
    /// the reserved list (cannot happen with [`MAX_MODULES`] modules).
    pub fn new(info: &StartInfo, kernel: PhysRange) -> Result<Self, FrameError> {
        let mut a = FrameAllocator {
            ram: [PhysRange::default(); MAX_MEMORY_REGIONS],
            ram_count: 0,
            reserved: [PhysRange::default(); MAX_RESERVED],
            reserved_count: 0,
            region: 0,
            next: 0,
            allocated: 0,
        };
        for r in info
            .memory_map()
            .iter()
            .filter(|r| r.kind == MemoryKind::Ram)
        {
            let start = r.start.max(LOW_MEMORY_END);
            let end = r.end().min(ADDRESSABLE_LIMIT);
            if let (Some(start), Some(slot)) =
                (align_up(start, FRAME_SIZE), a.ram.get_mut(a.ram_count))
            {
                let end = end & !(FRAME_SIZE - 1);
                if start < end {
                    *slot = PhysRange { start, end };
                    a.ram_count += 1;
                }
            }
        }
        // Carve in address order, whatever order the loader listed regions in.
        a.ram[..a.ram_count].sort_unstable_by_key(|r| r.start);
        a.reserve(kernel)?;
        for m in info.modules() {
            a.reserve(PhysRange {
                start: m.start,
                end: m.end(),
            })?;
        }
        a.next = a.ram.first().map_or(0, |r| r.start);
        Ok(a)
    }

    /// Excludes `range` from future allocations.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooManyReserved`] when the list is full.
    pub fn reserve(&mut self, range: PhysRange) -> Result<(), FrameError> {
        let slot = self
            .reserved
            .get_mut(self.reserved_count)
            .ok_or(FrameError::TooManyReserved)?;
        *slot = range;
        self.reserved_count += 1;
        Ok(())
    }

    /// Allocates `bytes` (rounded up to frames), aligned to `align` (a power of
    /// two, at least [`FRAME_SIZE`]); returns the physical (= virtual) address.
    /// The memory is not zeroed.
    ///
    /// # Errors
    ///
    /// [`FrameError::BadRequest`] for a zero size or a bad alignment,
    /// [`FrameError::Exhausted`] when no region has room.
    pub fn alloc(&mut self, bytes: u64, align: u64) -> Result<u64, FrameError> {
        let bad = FrameError::BadRequest { bytes, align };
        if bytes == 0 || !align.is_power_of_two() || align < FRAME_SIZE {
            return Err(bad);
        }
        let len = align_up(bytes, FRAME_SIZE).ok_or(bad)?;
        // Each iteration either succeeds, skips past a reserved range (at most
        // MAX_RESERVED times per region) or moves to the next region.
        let bound = (self.ram_count + 1) * (MAX_RESERVED + 2);
        for _ in 0..bound {
            let Some(region) = self.ram.get(self.region).copied() else {
                break;
            };
            let start = align_up(self.next.max(region.start), align);
            let end = start.and_then(|s| s.checked_add(len));
            let (Some(start), Some(end)) = (start, end) else {
                break;
            };
            if end > region.end {
                self.region += 1;
                self.next = self.ram.get(self.region).map_or(0, |r| r.start);
                continue;
            }
            let candidate = PhysRange { start, end };
            if let Some(r) = self.reserved[..self.reserved_count]
                .iter()
                .find(|r| r.overlaps(&candidate))
            {
                self.next = r.end;
                continue;
            }
            self.next = end;
            self.allocated += len;
            return Ok(start);
        }
        Err(FrameError::Exhausted { bytes, align })
    }

    /// Allocates and zeroes `bytes`.
    ///
    /// # Errors
    ///
    /// As [`FrameAllocator::alloc`].
    pub fn alloc_zeroed(&mut self, bytes: u64, align: u64) -> Result<u64, FrameError> {
        let at = self.alloc(bytes, align)?;
        // Handed out once: the region is its only user while it zeroes it.
        Self::owned(at, bytes).zero(0, bytes);
        Ok(at)
    }

    /// Allocates `bytes` of zeroed RAM as a [`RamRegion`] the caller owns
    /// (volatile, bounds-checked access without `unsafe` of its own).
    ///
    /// # Errors
    ///
    /// As [`FrameAllocator::alloc`].
    pub fn alloc_ram(&mut self, bytes: u64, align: u64) -> Result<RamRegion, FrameError> {
        let at = self.alloc_zeroed(bytes, align)?;
        Ok(Self::owned(at, bytes))
    }

    /// Allocates `bytes` as a byte slice the caller owns for the kernel's
    /// life (staging and bounce buffers). The memory is not zeroed: it holds
    /// whatever the RAM held.
    ///
    /// # Errors
    ///
    /// As [`FrameAllocator::alloc`].
    pub fn alloc_bytes(
        &mut self,
        bytes: usize,
        align: u64,
    ) -> Result<&'static mut [u8], FrameError> {
        let at = self.alloc(bytes as u64, align)?;
        // SAFETY:
        // - `at..at + bytes` is RAM from the memory map below the identity-map
        //   limit, so mapped 1:1; RAM holds initialized bytes, and any bits
        //   are a valid `u8`;
        // - the bump allocator never hands it out again and the slice is the
        //   only reference to it, for `'static`.
        Ok(unsafe { core::slice::from_raw_parts_mut(at as usize as *mut u8, bytes) })
    }

    /// Claims the fixed range `start..start + bytes` (a DMA arena or a canary
    /// region a kernel places by address) as a [`RamRegion`]: it must be RAM
    /// this allocator covers, never handed out and not reserved; it is
    /// reserved from then on. Not zeroed.
    ///
    /// # Errors
    ///
    /// [`FrameError::BadRequest`] for an empty or misaligned range,
    /// [`FrameError::Exhausted`] when it is not free RAM of this allocator,
    /// [`FrameError::TooManyReserved`].
    pub fn claim_ram(&mut self, start: u64, bytes: u64) -> Result<RamRegion, FrameError> {
        let bad = FrameError::BadRequest {
            bytes,
            align: FRAME_SIZE,
        };
        if bytes == 0 || start % FRAME_SIZE != 0 || bytes % FRAME_SIZE != 0 {
            return Err(bad);
        }
        let end = start.checked_add(bytes).ok_or(bad)?;
        let range = PhysRange { start, end };
        let taken = FrameError::Exhausted {
            bytes,
            align: FRAME_SIZE,
        };
        let regions = self.ram.get(..self.ram_count).unwrap_or(&[]);
        let region = regions
            .iter()
            .position(|r| r.start <= start && end <= r.end)
            .ok_or(taken)?;
        // Regions before the one being carved are used up (or skipped), and
        // in that one everything below the bump pointer was handed out.
        let untouched = region > self.region || (region == self.region && start >= self.next);
        let reserved = self.reserved[..self.reserved_count]
            .iter()
            .any(|r| r.overlaps(&range));
        if !untouched || reserved {
            return Err(taken);
        }
        self.reserve(range)?;
        Ok(Self::owned(start, bytes))
    }

    /// The region of `at..at + bytes`, handed out by this allocator once.
    fn owned(at: u64, bytes: u64) -> RamRegion {
        // SAFETY:
        // - `at..at + bytes` is RAM from the memory map below the identity-map
        //   limit (the callers took it from `ram`), so mapped 1:1, no side
        //   effects;
        // - it was handed out (or claimed and reserved) once and is never
        //   handed out again: the region's owner is its only user.
        unsafe { RamRegion::new(at, bytes) }
    }

    /// RAM never handed out nor skipped yet (the bump pointer onward, below
    /// [`ADDRESSABLE_LIMIT`]), into `out`; returns how many ranges. Ranges the
    /// caller reserved are not subtracted.
    pub fn untouched(&self, out: &mut [PhysRange]) -> usize {
        let mut n = 0;
        let regions = self.ram.get(self.region..self.ram_count).unwrap_or(&[]);
        for (i, r) in regions.iter().enumerate() {
            let start = if i == 0 {
                self.next.max(r.start)
            } else {
                r.start
            };
            if start < r.end {
                if let Some(slot) = out.get_mut(n) {
                    *slot = PhysRange { start, end: r.end };
                    n += 1;
                }
            }
        }
        n
    }

    /// Bytes handed out so far.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Bytes of RAM the allocator manages, handed out or not.
    pub fn managed(&self) -> u64 {
        self.ram[..self.ram_count]
            .iter()
            .fold(0, |acc, r| acc + (r.end - r.start))
    }
}
