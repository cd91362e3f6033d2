//! Bounded walks of the capability lists.
//!
//! A capability list is a linked list the device controls. A broken or hostile
//! device can make it circular or point outside configuration space; the walk
//! detects both and never visits more entries than fit in the space.

use super::{offset, ConfigAccess, PciAddress, PciError};

/// Capability ids used by paranoid.
pub mod id {
    /// Power management.
    pub const POWER_MANAGEMENT: u8 = 0x01;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// PCI Express.
    pub const PCI_EXPRESS: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
    /// Advanced features (conventional-PCI FLR).
    pub const ADVANCED_FEATURES: u8 = 0x13;
}

/// A capability found in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Capability id.
    pub id: u16,
    /// Offset of the capability header in configuration space.
    pub offset: u16,
    /// Capability version (extended capabilities only; 0 otherwise).
    pub version: u8,
}

/// Status register bit: the function has a capability list.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Standard capabilities live in 0x40..=0xfc, dword aligned: at most 48 of them.
const MAX_STANDARD: usize = (0x100 - 0x40) / 4;
/// Extended capabilities live in 0x100..=0xffc: at most 960 of them.
const MAX_EXTENDED: usize = (0x1000 - 0x100) / 4;

/// Visits the standard capability list, calling `visit` for each entry until it
/// returns `false`.
///
/// # Errors
///
/// [`PciError::NotPresent`] when the function reads all-ones,
/// [`PciError::CapabilityLoop`] and [`PciError::CapabilityOutOfRange`] for a
/// broken list.
pub fn walk<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    mut visit: impl FnMut(Capability) -> bool,
) -> Result<(), PciError> {
    let status = cfg.read16(a, offset::STATUS);
    if status.is_all_ones() {
        return Err(PciError::NotPresent(a));
    }
    if !status.bit(STATUS_CAP_LIST.trailing_zeros()) {
        return Ok(());
    }
    let mut seen = [false; MAX_STANDARD];
    let mut ptr = u16::from(cfg.read8(a, offset::CAPABILITIES).into_raw_for_report());
    for _ in 0..=MAX_STANDARD {
        // The low two bits are reserved (PCI 3.0 6.7): mask them, as hardware does.
        ptr &= 0xfc;
        if ptr == 0 {
            return Ok(());
        }
        if ptr < 0x40 {
            return Err(PciError::CapabilityOutOfRange { pointer: ptr });
        }
        let slot = usize::from((ptr - 0x40) / 4);
        match seen.get_mut(slot) {
            Some(s) if !*s => *s = true,
            Some(_) => return Err(PciError::CapabilityLoop { at: ptr }),
            None => return Err(PciError::CapabilityOutOfRange { pointer: ptr }),
        }
        let header = cfg.read16(a, ptr);
        if header.is_all_ones() {
            return Err(PciError::NotPresent(a));
        }
        let header = header.into_raw_for_report();
        let cap = Capability {
            id: header & 0xff,
            offset: ptr,
            version: 0,
        };
        if !visit(cap) {
            return Ok(());
        }
        ptr = header >> 8;
    }
    // Unreachable with the `seen` set in place, but keep the bound explicit.
    Err(PciError::CapabilityLoop { at: ptr })
}

/// Finds the first standard capability with `id`.
///
/// # Errors
///
/// As [`walk`]; `Ok(None)` when the list is well formed and lacks `id`.
pub fn find<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    id: u8,
) -> Result<Option<u16>, PciError> {
    let mut found = None;
    walk(cfg, a, |c| {
        if c.id == u16::from(id) {
            found = Some(c.offset);
            false
        } else {
            true
        }
    })?;
    Ok(found)
}

/// Visits the PCIe extended capability list (needs ECAM-sized config space).
///
/// A function whose offset 0x100 reads all-ones while its header still
/// answers has no extended configuration space (a conventional PCI function
/// behind a PCIe-to-PCI bridge, which forwards only offsets 0..=0xff): it has
/// no extended capabilities, and the walk visits none.
///
/// # Errors
///
/// As [`walk`]; [`PciError::NotPresent`] only when the header reads
/// all-ones too (the function is gone).
pub fn walk_extended<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    mut visit: impl FnMut(Capability) -> bool,
) -> Result<(), PciError> {
    if cfg.space_size() < 0x1000 {
        return Ok(());
    }
    let mut seen = [false; MAX_EXTENDED];
    let mut ptr = 0x100u16;
    for _ in 0..=MAX_EXTENDED {
        let header = cfg.read32(a, ptr);
        if header.is_all_ones() {
            if ptr == 0x100 && !cfg.read16(a, offset::VENDOR_ID).is_all_ones() {
                return Ok(());
            }
            return Err(PciError::NotPresent(a));
        }
        let header = header.into_raw_for_report();
        if header == 0 {
            return Ok(());
        }
        let slot = usize::from((ptr - 0x100) / 4);
        match seen.get_mut(slot) {
            Some(s) if !*s => *s = true,
            Some(_) => return Err(PciError::CapabilityLoop { at: ptr }),
            None => return Err(PciError::CapabilityOutOfRange { pointer: ptr }),
        }
        let cap = Capability {
            id: (header & 0xffff) as u16,
            offset: ptr,
            version: ((header >> 16) & 0xf) as u8,
        };
        if !visit(cap) {
            return Ok(());
        }
        let next = (header >> 20) as u16 & 0xffc;
        if next == 0 {
            return Ok(());
        }
        if next < 0x100 {
            return Err(PciError::CapabilityOutOfRange { pointer: next });
        }
        ptr = next;
    }
    Err(PciError::CapabilityLoop { at: ptr })
}
