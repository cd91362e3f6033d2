//! The driver's one error type.
//!
//! Variants carry the register (by spec name), the value seen and, for waits,
//! how long was waited and the deadline, so a trace line says what the device
//! did without a debugger.

use core::fmt;
use core::time::Duration;

use paranoid::dma::DmaError;
use paranoid::lifecycle::ResetKind;
use paranoid::pci::PciError;
use paranoid::untrusted::UntrustedError;

/// What was wrong with a descriptor the device wrote back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorProblem {
    /// The length is larger than the buffer behind the descriptor.
    LengthPastBuffer,
    /// The length is shorter than an Ethernet header.
    Runt,
    /// End-of-packet is clear: the device split a frame the buffers can hold.
    MissingEop,
    /// A status bit the spec reserves is set.
    ReservedStatus,
}

/// Errors of the e1000 driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E1000Error {
    /// The PCI ids are not one of the supported 8254x parts
    /// ([`SUPPORTED_IDS`](crate::part::SUPPORTED_IDS)); the device was left
    /// fenced and its registers untouched.
    Unsupported {
        /// The vendor id read.
        vendor: u16,
        /// The device id read.
        device: u16,
    },
    /// An MDIC (PHY register) access did not report ready by the deadline.
    MdicTimeout {
        /// The PHY register.
        register: u8,
        /// The last MDIC value read.
        mdic: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// The PHY did not answer an MDIC access (MDIC.E set).
    MdicError {
        /// The PHY register.
        register: u8,
        /// The MDIC value read.
        mdic: u32,
    },
    /// The PHY is not the one the part's device id promises.
    PhyId {
        /// The part's PHY id (revision clear).
        expected: u32,
        /// PHY_ID1 << 16 | PHY_ID2 as read.
        read: u32,
    },
    /// PCI configuration space of the function reads all-ones.
    PciGone(PciError),
    /// A register read all-ones: the device is gone (or went away mid-init).
    DeviceGone {
        /// The register read.
        register: &'static str,
    },
    /// CTRL.RST did not self-clear by the deadline.
    ResetTimeout {
        /// The last CTRL value read.
        ctrl: u32,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock reading, ns).
        deadline_ns: u64,
    },
    /// A reset this device cannot do (no FLR capability, no bridge known).
    ResetUnsupported(ResetKind),
    /// Function-level reset failed.
    Flr(PciError),
    /// EECD.PRES is clear: no EEPROM, so no Ethernet address.
    NoEeprom {
        /// The EECD value read.
        eecd: u32,
    },
    /// An EERD read did not report DONE by the deadline.
    EepromTimeout {
        /// The word being read.
        word: u8,
        /// The last EERD value read.
        eerd: u32,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock reading, ns).
        deadline_ns: u64,
    },
    /// EERD reported DONE for another word than the one asked for.
    EepromAddressMismatch {
        /// The word asked for.
        word: u8,
        /// The EERD value read.
        eerd: u32,
    },
    /// The EEPROM words 0..=0x3f do not add up to 0xBABA.
    EepromChecksum {
        /// The sum seen.
        sum: u16,
    },
    /// The Ethernet address is unusable (zero, broadcast or multicast).
    BadMac {
        /// The address seen.
        mac: [u8; 6],
    },
    /// A register did not read back what was written (device gone or broken).
    RegisterReadback {
        /// The register.
        register: &'static str,
        /// What was written.
        wrote: u32,
        /// What was read.
        read: u32,
    },
    /// The link stayed down until the deadline (only with `LinkPolicy::RequireUp`,
    /// or from `wait_link`).
    LinkDown {
        /// The last STATUS value read.
        status: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// A head register (RDH/TDH) reads outside the ring.
    HeadOutOfRange {
        /// `"RDH"` or `"TDH"`.
        register: &'static str,
        /// The value seen.
        value: u32,
        /// Descriptors in the ring.
        ring_len: u16,
    },
    /// A receive descriptor written back by the device is invalid; the frame was
    /// dropped and the descriptor given back to the device.
    RxDescriptor {
        /// The ring slot.
        slot: u16,
        /// What was wrong.
        problem: DescriptorProblem,
        /// The status byte seen.
        status: u8,
        /// The length field seen.
        length: u16,
    },
    /// A transmit descriptor written back by the device has reserved status bits.
    TxDescriptor {
        /// The ring slot.
        slot: u16,
        /// The status byte seen.
        status: u8,
    },
    /// Every transmit descriptor is in flight.
    TxRingFull,
    /// A transmitted frame was not written back (DD) by the deadline.
    TxTimeout {
        /// The slot waited for.
        slot: u16,
        /// The last TDH seen.
        tdh: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// No frame arrived by the deadline.
    RxTimeout {
        /// How long we waited.
        waited: Duration,
    },
    /// A frame to send is shorter than an Ethernet header or longer than 1514 bytes.
    FrameLength {
        /// The length given.
        len: usize,
    },
    /// The receive buffer given is smaller than the frame (the frame was dropped).
    BufferTooSmall {
        /// Bytes the frame has.
        needed: usize,
        /// Bytes the buffer has.
        given: usize,
    },
    /// The data path was used before init completed or after shutdown.
    NotRunning,
    /// A DMA buffer could not be allocated or accessed.
    Dma(DmaError),
    /// A device value failed validation.
    Untrusted(UntrustedError),
}

impl From<DmaError> for E1000Error {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}

impl From<UntrustedError> for E1000Error {
    fn from(e: UntrustedError) -> Self {
        Self::Untrusted(e)
    }
}

impl E1000Error {
    /// A short class name for reports and campaign summaries.
    pub const fn class(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "unsupported",
            Self::MdicTimeout { .. } => "mdic-timeout",
            Self::MdicError { .. } => "mdic-error",
            Self::PhyId { .. } => "phy-id",
            Self::PciGone(_) => "pci-gone",
            Self::DeviceGone { .. } => "device-gone",
            Self::ResetTimeout { .. } => "reset-timeout",
            Self::ResetUnsupported(_) => "reset-unsupported",
            Self::Flr(_) => "flr",
            Self::NoEeprom { .. } => "no-eeprom",
            Self::EepromTimeout { .. } => "eeprom-timeout",
            Self::EepromAddressMismatch { .. } => "eeprom-address",
            Self::EepromChecksum { .. } => "eeprom-checksum",
            Self::BadMac { .. } => "bad-mac",
            Self::RegisterReadback { .. } => "readback",
            Self::LinkDown { .. } => "link-down",
            Self::HeadOutOfRange { .. } => "head-out-of-range",
            Self::RxDescriptor { .. } => "rx-descriptor",
            Self::TxDescriptor { .. } => "tx-descriptor",
            Self::TxRingFull => "tx-ring-full",
            Self::TxTimeout { .. } => "tx-timeout",
            Self::RxTimeout { .. } => "rx-timeout",
            Self::FrameLength { .. } => "frame-length",
            Self::BufferTooSmall { .. } => "buffer-too-small",
            Self::NotRunning => "not-running",
            Self::Dma(_) => "dma",
            Self::Untrusted(_) => "untrusted",
        }
    }
}

impl fmt::Display for E1000Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e1000: {self:?}")
    }
}
