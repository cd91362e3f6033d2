//! The 8254x parts this driver supports, told apart by their PCI ids.
//!
//! One programming model, three parts (the ones QEMU models in
//! `hw/net/e1000.c`): the 82540EM (`-device e1000`), the 82544GC copper
//! (`-device e1000-82544gc`) and the 82545EM copper (`-device e1000-82545em`).
//! What differs and what the driver does about it:
//!
//! - **EEPROM access.** The 82540EM and 82545EM have the EERD register (SDM
//!   13.4.4); on the 82544GC that offset is reserved, so the driver reads the
//!   EEPROM by clocking the Microwire interface through EECD (SDM 5.4,
//!   [`EepromAccess::Microwire`]). QEMU implements EERD for all three parts;
//!   the device model does not, so a driver that used EERD on an 82544GC fails
//!   on the host.
//! - **PHY.** The 82544GC's internal PHY is an M88E1000 (PHY id 0x0141_0C30);
//!   the 82540EM's and 82545EM's an M88E1011 (0x0141_0C20). Verify reads the
//!   id through MDIC and refuses a part whose PHY is not the one its device id
//!   promises.
//! - **EEPROM image.** Words 11 and 13 hold the part's device id (QEMU patches
//!   them into its template per part); the checksum covers them.
//!
//! Any other id, including the 82574L (8086:10d3, QEMU's `e1000e`, a different
//! programming model), is refused by [`Part::from_ids`] with
//! [`E1000Error::Unsupported`] before a register of the device is touched.

use crate::error::E1000Error;
use crate::regs::id;

/// How the EEPROM is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EepromAccess {
    /// The EERD register: the MAC clocks the EEPROM and reports DONE.
    Eerd,
    /// Software clocks the Microwire interface (SK, CS, DI, DO in EECD).
    Microwire,
}

/// A supported 8254x part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// 82540EM desktop (8086:100e; QEMU `e1000`).
    I82540Em,
    /// 82544GC copper (8086:100c; QEMU `e1000-82544gc`).
    I82544Gc,
    /// 82545EM copper (8086:100f; QEMU `e1000-82545em`).
    I82545Em,
}

/// Every supported (vendor, device) pair, in [`Part::ALL`] order.
pub const SUPPORTED_IDS: [(u16, u16); 3] = [
    (id::VENDOR_INTEL, id::DEVICE_82540EM),
    (id::VENDOR_INTEL, id::DEVICE_82544GC),
    (id::VENDOR_INTEL, id::DEVICE_82545EM),
];

/// PHY identifier bits compared (PHY_ID1 << 16 | PHY_ID2); the low nibble is
/// the PHY revision, which varies between steppings (Linux `PHY_REVISION_MASK`).
pub const PHY_ID_MASK: u32 = 0xffff_fff0;

impl Part {
    /// Every supported part.
    pub const ALL: [Part; 3] = [Part::I82540Em, Part::I82544Gc, Part::I82545Em];

    /// The part with PCI ids `vendor`:`device`.
    ///
    /// # Errors
    ///
    /// [`E1000Error::Unsupported`] for any id not in [`SUPPORTED_IDS`]
    /// (another vendor, an 8254x part QEMU does not model, an 82574L).
    pub const fn from_ids(vendor: u16, device: u16) -> Result<Part, E1000Error> {
        match (vendor, device) {
            (id::VENDOR_INTEL, id::DEVICE_82540EM) => Ok(Part::I82540Em),
            (id::VENDOR_INTEL, id::DEVICE_82544GC) => Ok(Part::I82544Gc),
            (id::VENDOR_INTEL, id::DEVICE_82545EM) => Ok(Part::I82545Em),
            _ => Err(E1000Error::Unsupported { vendor, device }),
        }
    }

    /// True when `vendor`:`device` is a supported part.
    pub const fn is_supported(vendor: u16, device: u16) -> bool {
        Self::from_ids(vendor, device).is_ok()
    }

    /// The PCI device id.
    pub const fn device_id(self) -> u16 {
        match self {
            Part::I82540Em => id::DEVICE_82540EM,
            Part::I82544Gc => id::DEVICE_82544GC,
            Part::I82545Em => id::DEVICE_82545EM,
        }
    }

    /// The part's name, as Intel writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Part::I82540Em => "82540EM",
            Part::I82544Gc => "82544GC",
            Part::I82545Em => "82545EM",
        }
    }

    /// The QEMU device that models this part (`-device NAME`).
    pub const fn qemu_device(self) -> &'static str {
        match self {
            Part::I82540Em => "e1000",
            Part::I82544Gc => "e1000-82544gc",
            Part::I82545Em => "e1000-82545em",
        }
    }

    /// How this part's EEPROM is read.
    pub const fn eeprom_access(self) -> EepromAccess {
        match self {
            Part::I82544Gc => EepromAccess::Microwire,
            Part::I82540Em | Part::I82545Em => EepromAccess::Eerd,
        }
    }

    /// The internal PHY's identifier, PHY_ID1 << 16 | PHY_ID2, revision clear.
    pub const fn phy_id(self) -> u32 {
        match self {
            // Marvell M88E1000.
            Part::I82544Gc => 0x0141_0c30,
            // Marvell M88E1011.
            Part::I82540Em | Part::I82545Em => 0x0141_0c20,
        }
    }
}

impl core::fmt::Display for Part {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_supported_id_names_its_part() {
        for (part, (vendor, device)) in Part::ALL.into_iter().zip(SUPPORTED_IDS) {
            assert_eq!(Part::from_ids(vendor, device), Ok(part));
            assert_eq!(part.device_id(), device);
        }
    }

    #[test]
    fn other_ids_are_refused_by_id() {
        for (vendor, device) in [
            (0x8086, 0x10d3), // 82574L (e1000e)
            (0x8086, 0x1008), // 82544EI copper: not modelled
            (0x8086, 0x100d), // 82544GC LOM
            (0x1af4, 0x1000), // virtio-net
            (0xffff, 0xffff), // nothing there
        ] {
            assert_eq!(
                Part::from_ids(vendor, device),
                Err(E1000Error::Unsupported { vendor, device })
            );
        }
    }

    #[test]
    fn the_82544gc_differs_where_qemu_says() {
        assert_eq!(Part::I82544Gc.eeprom_access(), EepromAccess::Microwire);
        assert_eq!(Part::I82544Gc.phy_id() & 0xffff, 0x0c30);
        assert_eq!(Part::I82540Em.phy_id(), Part::I82545Em.phy_id());
        assert_eq!(Part::I82545Em.qemu_device(), "e1000-82545em");
    }
}
