//! DMA: IOVA windows, a window-confined allocator, and buffers typed by direction
//! and branded by their window.
//!
//! The recovery kernel does all its DMA inside one reserved window of IOVA space
//! that the normal kernel never maps, so valid recovery DMA is recognisable by
//! address alone. A [`Window`] is a type (declared with the `dma_windows!` macro
//! or by hand); an [`Iova<W>`] or a [`DmaBuffer<W, D>`] carries that type, so a
//! buffer from one window cannot be handed to code that expects another:
//!
//! ```compile_fail
//! use paranoid::dma::{DmaBuffer, ToDevice, Window};
//! struct Normal;
//! impl Window for Normal { const NAME: &'static str = "normal"; const BASE: u64 = 0x1000_0000; const SIZE: u64 = 0x1000_0000; }
//! struct Recovery;
//! impl Window for Recovery { const NAME: &'static str = "recovery"; const BASE: u64 = 0xff00_0000; const SIZE: u64 = 0x10_0000; }
//! fn submit(_b: &DmaBuffer<Recovery, ToDevice>) {}
//! fn wrong(b: &DmaBuffer<Normal, ToDevice>) { submit(b) }
//! ```

use core::fmt;

mod alloc;
mod buffer;
mod mapping;
mod window;

pub use alloc::IovaAllocator;
pub use buffer::{
    Bidirectional, CpuWrites, DeviceWrites, Direction, DmaArena, DmaBuffer, FromDevice, ToDevice,
};
pub use mapping::{MapError, MapWindow, WindowMapping};
pub use window::{
    check_windows, Iova, Window, WindowSpec, DEFAULT_RECOVERY_WINDOW_SIZE, PAGE_SIZE,
};

/// Errors of DMA windows, allocation and buffer access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// A window's base or size is not a multiple of its page size.
    Misaligned {
        /// The window.
        window: &'static str,
        /// The offending value.
        value: u64,
        /// The page size it must be a multiple of.
        page_size: u64,
    },
    /// A window of zero size, or a page size that is not a power of two ≥ 4 KiB.
    BadSize {
        /// The window.
        window: &'static str,
    },
    /// Two windows overlap.
    Overlap {
        /// The first window.
        first: &'static str,
        /// The second window.
        second: &'static str,
    },
    /// A window ends past the IOMMU's address width.
    PastAddressWidth {
        /// The window.
        window: &'static str,
        /// Its end address (exclusive).
        end: u64,
        /// Address width in bits.
        width: u8,
    },
    /// No free range of the requested size and alignment is left in the window.
    Exhausted {
        /// Bytes asked for.
        requested: u64,
    },
    /// The allocator's table of live allocations is full.
    TooManyAllocations,
    /// A size of zero, or an alignment that is not a power of two.
    BadRequest {
        /// Bytes asked for.
        size: u64,
        /// Alignment asked for.
        align: u64,
    },
    /// A free of a range that is not currently allocated: a double free, or a
    /// range that never came from this allocator.
    NotAllocated {
        /// Start of the range.
        iova: u64,
        /// Its length.
        len: u64,
    },
    /// A buffer access past the end of the buffer.
    OutOfBounds {
        /// Byte offset asked for.
        offset: usize,
        /// Bytes accessed.
        len: usize,
        /// Buffer length.
        size: usize,
    },
    /// A buffer access at an offset misaligned for the element type.
    MisalignedAccess {
        /// Byte offset asked for.
        offset: usize,
    },
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned {
                window,
                value,
                page_size,
            } => {
                write!(f, "window `{window}`: {value:#x} is not a multiple of the page size {page_size:#x}")
            }
            Self::BadSize { window } => {
                write!(f, "window `{window}` has zero size or a bad page size")
            }
            Self::Overlap { first, second } => {
                write!(f, "windows `{first}` and `{second}` overlap")
            }
            Self::PastAddressWidth { window, end, width } => {
                write!(
                    f,
                    "window `{window}` ends at {end:#x}, past the {width}-bit IOMMU address width"
                )
            }
            Self::Exhausted { requested } => {
                write!(f, "DMA window exhausted ({requested:#x} bytes requested)")
            }
            Self::TooManyAllocations => write!(f, "too many live DMA allocations"),
            Self::BadRequest { size, align } => {
                write!(f, "bad DMA request: size {size:#x}, align {align:#x}")
            }
            Self::NotAllocated { iova, len } => {
                write!(
                    f,
                    "free of {iova:#x}+{len:#x}, which is not allocated (double free?)"
                )
            }
            Self::OutOfBounds { offset, len, size } => {
                write!(
                    f,
                    "DMA buffer access {offset:#x}+{len:#x} past its size {size:#x}"
                )
            }
            Self::MisalignedAccess { offset } => {
                write!(f, "misaligned DMA buffer access at {offset:#x}")
            }
        }
    }
}
