//! Where things live in the demo machine's memory (256 MiB guest).
//!
//! ```text
//! 0x0010_0000  kernel A image, then its frames (page tables, IOMMU tables)
//! 0x0200_0000  pattern region: 32 MiB of `pattern_word(seed, addr)`
//! 0x0400_0000  reserved for the recovery kernel (64 MiB, "crashkernel=64M@64M"):
//!   0x0400_0000  recovery image (linked here), then its frames
//!   0x0600_0000  recovery canary region (16 MiB)
//!   0x0700_0000  recovery DMA arena (1 MiB), mapped at the recovery window
//!   0x07ff_e000  the recovery kernel's PVH start info
//!   0x07ff_f000  the crash note
//! 0x0800_0000  kernel A's frames
//! 0x0c00_0000  kernel A's DMA arena (4 MiB), identity-mapped in its IOMMU domain
//! ```

/// The pattern region.
pub const PATTERN_BASE: u64 = 0x0200_0000;
/// Its size.
pub const PATTERN_LEN: u64 = 32 << 20;
/// The reserved recovery region.
pub const RECOVERY_BASE: u64 = 0x0400_0000;
/// Its size.
pub const RECOVERY_LEN: u64 = 64 << 20;
/// The recovery kernel's start info.
pub const RECOVERY_START_INFO: u64 = 0x07ff_e000;
/// The crash note.
pub const CRASH_NOTE: u64 = 0x07ff_f000;
/// Kernel A's DMA arena.
pub const ARENA_BASE: u64 = 0x0c00_0000;
/// Its size.
pub const ARENA_LEN: u64 = 4 << 20;

/// Kernel A's own bytes on its NVMe namespace (its in-flight writes land
/// here, never in the dump extent): 16 MiB at 448 MiB, in bytes so it means
/// the same on a 512-byte and a 4 KiB format.
pub const SCRATCH_OFFSET: u64 = 448 << 20;
/// Bytes of the scratch area.
pub const SCRATCH_LEN: u64 = 16 << 20;
