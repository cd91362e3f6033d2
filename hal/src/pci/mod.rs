//! PCI and PCIe configuration space.
//!
//! Configuration access goes through [`ConfigAccess`], implemented by the legacy
//! CF8/CFC mechanism ([`Cf8`]), memory-mapped ECAM ([`Ecam`]) and the simulated
//! bus. On top of it: discovery of single functions ([`discover`]), the whole
//! hierarchy through bridges and switches with requester ids ([`topology`]),
//! BAR decoding and sizing ([`bar`]),
//! bounded capability walks ([`caps`]), the command register ([`command`]),
//! function-level / secondary-bus reset ([`reset`]), and [`Function`]: one
//! function as a driver holds it (saved BARs, fence, bus master, FLR within the
//! caller's deadline).
//!
//! Everything read from configuration space is device-controlled: a missing
//! function reads all-ones, a broken one can point its capability list in a circle.

use core::fmt;
use core::time::Duration;

use crate::untrusted::UntrustedError;
use crate::Untrusted;

pub mod bar;
pub mod caps;
#[cfg(target_arch = "x86_64")]
mod cf8;
pub mod command;
pub mod discover;
mod ecam;
pub mod function;
pub mod reset;
pub mod topology;

#[cfg(target_arch = "x86_64")]
pub use cf8::Cf8;
pub use ecam::Ecam;
pub use function::Function;

/// Offsets of the type-0/type-1 configuration header (PCI Local Bus 3.0, 6.1).
pub mod offset {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION: u16 = 0x08;
    /// Class code, 24 bits at 0x09..0x0b (prog-if, subclass, class).
    pub const CLASS: u16 = 0x09;
    /// Header type (8 bits); bit 7: multi-function.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// First base address register.
    pub const BAR0: u16 = 0x10;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITIES: u16 = 0x34;
    /// Type-1 header: secondary bus number.
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Type-1 header: bridge control (16 bits).
    pub const BRIDGE_CONTROL: u16 = 0x3e;
}

/// A function's address: segment, bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    segment: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// The address of `bus:device.function` in `segment`.
    ///
    /// # Errors
    ///
    /// [`PciError::BadAddress`] when `device > 31` or `function > 7`.
    pub const fn new(segment: u16, bus: u8, device: u8, function: u8) -> Result<Self, PciError> {
        if device > 31 || function > 7 {
            return Err(PciError::BadAddress { device, function });
        }
        Ok(Self {
            segment,
            bus,
            device,
            function,
        })
    }

    /// Segment (PCI domain).
    pub const fn segment(&self) -> u16 {
        self.segment
    }
    /// Bus number.
    pub const fn bus(&self) -> u8 {
        self.bus
    }
    /// Device number (0..=31).
    pub const fn device(&self) -> u8 {
        self.device
    }
    /// Function number (0..=7).
    pub const fn function(&self) -> u8 {
        self.function
    }
    /// The 16-bit requester/source id (bus << 8 | device << 3 | function) that
    /// appears in IOMMU fault records.
    pub const fn source_id(&self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.segment, self.bus, self.device, self.function
        )
    }
}

/// Errors of PCI configuration work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciError {
    /// Device or function number out of range.
    BadAddress {
        /// Device number given.
        device: u8,
        /// Function number given.
        function: u8,
    },
    /// The function reads all-ones: nothing there, or the device is gone.
    NotPresent(PciAddress),
    /// A BAR index past the header's BARs.
    BadBarIndex(u8),
    /// A BAR decoded or sized to nonsense.
    BadBar {
        /// Which BAR.
        index: u8,
        /// What is wrong with it.
        reason: BarProblem,
        /// The raw value read (sizing mask or address).
        raw: u64,
    },
    /// The capability list points back into itself.
    CapabilityLoop {
        /// The pointer seen twice.
        at: u16,
    },
    /// A capability pointer outside the capability area or misaligned.
    CapabilityOutOfRange {
        /// The pointer seen.
        pointer: u16,
    },
    /// The function has no capability the operation needs.
    MissingCapability {
        /// The capability id looked for.
        id: u16,
    },
    /// The function does not advertise function-level reset.
    FlrUnsupported(PciAddress),
    /// The function did not come back after a reset within the deadline.
    ResetTimeout {
        /// The function.
        address: PciAddress,
        /// How long we waited.
        waited: Duration,
        /// The last vendor id read (0x0001: Configuration Retry Status).
        last_vendor: u16,
    },
    /// The caller's deadline passed during the recovery time after a reset,
    /// before the function could be asked whether it is back.
    ResetDeadline {
        /// The function.
        address: PciAddress,
        /// How long we waited since the reset began.
        waited: Duration,
        /// The deadline (clock reading, ns).
        deadline_ns: u64,
    },
    /// A device value failed validation.
    Untrusted(UntrustedError),
}

impl From<UntrustedError> for PciError {
    fn from(e: UntrustedError) -> Self {
        Self::Untrusted(e)
    }
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadAddress { device, function } => write!(
                f,
                "no such PCI address: device {device} (0..=31), function {function} (0..=7)"
            ),
            Self::NotPresent(a) => write!(f, "{a} reads all-ones: nothing there, or gone"),
            Self::BadBarIndex(i) => write!(f, "BAR {i} is past the header's BARs"),
            Self::BadBar { index, reason, raw } => {
                write!(f, "BAR {index} is nonsense ({reason}, read {raw:#x})")
            }
            Self::CapabilityLoop { at } => {
                write!(f, "the capability list loops (pointer {at:#x} seen twice)")
            }
            Self::CapabilityOutOfRange { pointer } => write!(
                f,
                "capability pointer {pointer:#x} is outside the capability area or misaligned"
            ),
            Self::MissingCapability { id } => write!(f, "no capability {id:#x}"),
            Self::FlrUnsupported(a) => write!(f, "{a} does not offer function-level reset"),
            Self::ResetTimeout {
                address,
                waited,
                last_vendor,
            } => write!(
                f,
                "{address} not back {waited:?} after a reset (vendor id read {last_vendor:#06x})"
            ),
            Self::ResetDeadline {
                address,
                waited,
                deadline_ns,
            } => write!(
                f,
                "the deadline ({deadline_ns} ns) passed {waited:?} into {address}'s reset recovery time"
            ),
            Self::Untrusted(e) => write!(f, "{e}"),
        }
    }
}

/// Ways a BAR can be nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarProblem {
    /// Memory type 0b11 is reserved.
    ReservedType,
    /// A 64-bit BAR in the last slot has no upper half.
    NoUpperHalf,
    /// The size mask has holes (writable bits below read-only bits).
    NonContiguousMask,
    /// Base plus size overflows the address space.
    Overflow,
    /// The base is not aligned to the size.
    Misaligned,
    /// The sizing read all-ones: the device vanished while we sized it.
    Vanished,
}

impl fmt::Display for BarProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReservedType => "reserved memory type 0b11",
            Self::NoUpperHalf => "a 64-bit BAR in the last slot",
            Self::NonContiguousMask => "size mask with holes",
            Self::Overflow => "base plus size overflows",
            Self::Misaligned => "base not aligned to the size",
            Self::Vanished => "sizing read all-ones",
        })
    }
}

/// Configuration-space access at 8, 16 and 32 bits.
///
/// Each width is a native access: emulating a 16-bit write with a 32-bit
/// read-modify-write would write back, and so clear, write-one-to-clear status
/// bits. Reads of a missing function, or at an offset the mechanism cannot reach
/// (past 0xff for CF8, past 0xfff for ECAM), return all-ones; such writes are
/// dropped.
pub trait ConfigAccess {
    /// Reads 8 bits at `offset`.
    fn read8(&mut self, address: PciAddress, offset: u16) -> Untrusted<u8>;
    /// Reads 16 bits at `offset` (2-aligned).
    fn read16(&mut self, address: PciAddress, offset: u16) -> Untrusted<u16>;
    /// Reads 32 bits at `offset` (4-aligned).
    fn read32(&mut self, address: PciAddress, offset: u16) -> Untrusted<u32>;
    /// Writes 8 bits at `offset`.
    fn write8(&mut self, address: PciAddress, offset: u16, value: u8);
    /// Writes 16 bits at `offset` (2-aligned).
    fn write16(&mut self, address: PciAddress, offset: u16, value: u16);
    /// Writes 32 bits at `offset` (4-aligned).
    fn write32(&mut self, address: PciAddress, offset: u16, value: u32);
    /// Size of configuration space this mechanism reaches (256 or 4096).
    fn space_size(&self) -> u16;
}

impl<C: ConfigAccess + ?Sized> ConfigAccess for &mut C {
    fn read8(&mut self, a: PciAddress, o: u16) -> Untrusted<u8> {
        (**self).read8(a, o)
    }
    fn read16(&mut self, a: PciAddress, o: u16) -> Untrusted<u16> {
        (**self).read16(a, o)
    }
    fn read32(&mut self, a: PciAddress, o: u16) -> Untrusted<u32> {
        (**self).read32(a, o)
    }
    fn write8(&mut self, a: PciAddress, o: u16, v: u8) {
        (**self).write8(a, o, v)
    }
    fn write16(&mut self, a: PciAddress, o: u16, v: u16) {
        (**self).write16(a, o, v)
    }
    fn write32(&mut self, a: PciAddress, o: u16, v: u32) {
        (**self).write32(a, o, v)
    }
    fn space_size(&self) -> u16 {
        (**self).space_size()
    }
}

/// True when an access of `width` bytes at `offset` is aligned and inside `size`.
#[inline]
pub(crate) const fn config_access_ok(offset: u16, width: u16, size: u16) -> bool {
    offset % width == 0 && (offset as u32 + width as u32) <= size as u32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn errors_read_as_words_with_their_values() {
        let a = PciAddress::new(0, 1, 2, 3).unwrap();
        assert_eq!(
            PciError::NotPresent(a).to_string(),
            "0000:01:02.3 reads all-ones: nothing there, or gone"
        );
        assert_eq!(
            PciError::BadBar {
                index: 5,
                reason: BarProblem::NoUpperHalf,
                raw: 0xfff0_000c,
            }
            .to_string(),
            "BAR 5 is nonsense (a 64-bit BAR in the last slot, read 0xfff0000c)"
        );
        assert_eq!(
            PciError::ResetTimeout {
                address: a,
                waited: Duration::from_millis(1000),
                last_vendor: 0x0001,
            }
            .to_string(),
            "0000:01:02.3 not back 1s after a reset (vendor id read 0x0001)"
        );
        assert_eq!(
            PciAddress::new(0, 0, 32, 0).unwrap_err().to_string(),
            "no such PCI address: device 32 (0..=31), function 0 (0..=7)"
        );
    }
}
