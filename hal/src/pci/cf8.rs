//! The legacy configuration mechanism #1: address to port 0xCF8, data at 0xCFC.

use super::{config_access_ok, ConfigAccess, PciAddress};
use crate::port::{inb, inl, inw, outb, outl, outw};
use crate::Untrusted;

const ADDRESS_PORT: u16 = 0xcf8;
const DATA_PORT: u16 = 0xcfc;

/// Configuration access through ports 0xCF8/0xCFC (segment 0, 256 bytes).
#[derive(Debug)]
pub struct Cf8 {
    _owned: (),
}

impl Cf8 {
    /// Claims the configuration ports.
    ///
    /// # Safety
    ///
    /// The caller owns ports 0xCF8..=0xCFF exclusively, and uses the returned
    /// value's writes soundly (enabling bus mastering lets a device write memory).
    pub const unsafe fn new() -> Self {
        Self { _owned: () }
    }

    fn select(&mut self, a: PciAddress, offset: u16) -> bool {
        if a.segment() != 0 {
            return false;
        }
        let address = 0x8000_0000u32
            | u32::from(a.bus()) << 16
            | u32::from(a.device()) << 11
            | u32::from(a.function()) << 8
            | u32::from(offset & 0xfc);
        // SAFETY: `new`'s contract: we own the address port.
        unsafe { outl(ADDRESS_PORT, address) };
        true
    }
}

impl ConfigAccess for Cf8 {
    fn read8(&mut self, a: PciAddress, o: u16) -> Untrusted<u8> {
        if !config_access_ok(o, 1, 256) || !self.select(a, o) {
            return Untrusted::new(u8::MAX);
        }
        // SAFETY: we own the data ports; `o & 3` selects a byte lane inside them.
        Untrusted::new(unsafe { inb(DATA_PORT + (o & 3)) })
    }
    fn read16(&mut self, a: PciAddress, o: u16) -> Untrusted<u16> {
        if !config_access_ok(o, 2, 256) || !self.select(a, o) {
            return Untrusted::new(u16::MAX);
        }
        // SAFETY: we own the data ports; `o & 2` selects a word lane inside them.
        Untrusted::new(unsafe { inw(DATA_PORT + (o & 2)) })
    }
    fn read32(&mut self, a: PciAddress, o: u16) -> Untrusted<u32> {
        if !config_access_ok(o, 4, 256) || !self.select(a, o) {
            return Untrusted::new(u32::MAX);
        }
        // SAFETY: we own the data port.
        Untrusted::new(unsafe { inl(DATA_PORT) })
    }
    fn write8(&mut self, a: PciAddress, o: u16, v: u8) {
        if config_access_ok(o, 1, 256) && self.select(a, o) {
            // SAFETY: we own the data ports; soundness of the effect is `new`'s contract.
            unsafe { outb(DATA_PORT + (o & 3), v) }
        }
    }
    fn write16(&mut self, a: PciAddress, o: u16, v: u16) {
        if config_access_ok(o, 2, 256) && self.select(a, o) {
            // SAFETY: we own the data ports; soundness of the effect is `new`'s contract.
            unsafe { outw(DATA_PORT + (o & 2), v) }
        }
    }
    fn write32(&mut self, a: PciAddress, o: u16, v: u32) {
        if config_access_ok(o, 4, 256) && self.select(a, o) {
            // SAFETY: we own the data port; soundness of the effect is `new`'s contract.
            unsafe { outl(DATA_PORT, v) }
        }
    }
    fn space_size(&self) -> u16 {
        256
    }
}
