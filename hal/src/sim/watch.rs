//! A configuration access watched from the device side, for oracles that must
//! not take the driver's word for when it enabled bus mastering.

use std::cell::RefCell;
use std::rc::Rc;

use super::{ConfigSpace, SimClock, SimPci};
use crate::pci::{ConfigAccess, PciAddress};
use crate::time::Clock;
use crate::Untrusted;

/// What a function's configuration space saw of the command register,
/// recorded by [`WatchedPci`] at the moment of each write.
#[derive(Debug, Clone, Default)]
pub struct BusMasterWatch {
    /// Bus mastering as the dead kernel left it (before the driver's writes).
    pub inherited: bool,
    /// Writes to the command register so far.
    pub command_writes: u32,
    /// After the driver's first command-register write, bus mastering was on.
    pub first_write_left_on: Option<bool>,
    /// Simulated time of the first write after which bus mastering was on.
    pub first_on_ns: Option<u64>,
    /// Refused DMA accesses counted when bus mastering first went on: the
    /// ones before are the dead kernel's, the ones after the driver's.
    pub escapes_before_on: Option<usize>,
}

/// The driver's configuration access, watched from the device side: every
/// write is passed on, then the function's command register is read back from
/// its configuration space (as the device holds it, not as the driver thinks).
pub struct WatchedPci {
    inner: SimPci,
    space: Rc<RefCell<ConfigSpace>>,
    clock: SimClock,
    watch: Rc<RefCell<BusMasterWatch>>,
    escapes: Rc<dyn Fn() -> usize>,
}

impl WatchedPci {
    /// Watches `space` (reached through `inner`); `escapes` counts the DMA
    /// accesses the IOMMU refused so far.
    pub fn new(
        inner: SimPci,
        space: Rc<RefCell<ConfigSpace>>,
        clock: SimClock,
        escapes: Rc<dyn Fn() -> usize>,
    ) -> (Self, Rc<RefCell<BusMasterWatch>>) {
        let watch = Rc::new(RefCell::new(BusMasterWatch {
            inherited: space.borrow().bus_master(),
            ..BusMasterWatch::default()
        }));
        let pci = Self {
            inner,
            space,
            clock,
            watch: watch.clone(),
            escapes,
        };
        (pci, watch)
    }

    fn after_write(&mut self, offset: u16, width: u16) {
        // The command register is bytes 4..6.
        if offset >= 6 || offset + width <= 4 {
            return;
        }
        let on = self.space.borrow().bus_master();
        let mut w = self.watch.borrow_mut();
        w.command_writes += 1;
        w.first_write_left_on.get_or_insert(on);
        if on && w.first_on_ns.is_none() {
            w.first_on_ns = Some(self.clock.now_ns());
            w.escapes_before_on = Some((self.escapes)());
        }
    }
}

impl ConfigAccess for WatchedPci {
    fn read8(&mut self, a: PciAddress, o: u16) -> Untrusted<u8> {
        self.inner.read8(a, o)
    }
    fn read16(&mut self, a: PciAddress, o: u16) -> Untrusted<u16> {
        self.inner.read16(a, o)
    }
    fn read32(&mut self, a: PciAddress, o: u16) -> Untrusted<u32> {
        self.inner.read32(a, o)
    }
    fn write8(&mut self, a: PciAddress, o: u16, v: u8) {
        self.inner.write8(a, o, v);
        self.after_write(o, 1);
    }
    fn write16(&mut self, a: PciAddress, o: u16, v: u16) {
        self.inner.write16(a, o, v);
        self.after_write(o, 2);
    }
    fn write32(&mut self, a: PciAddress, o: u16, v: u32) {
        self.inner.write32(a, o, v);
        self.after_write(o, 4);
    }
    fn space_size(&self) -> u16 {
        self.inner.space_size()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn records_the_first_bus_master_enable_as_the_function_saw_it() {
        let clock = SimClock::new();
        let mut pci = SimPci::new();
        let a = PciAddress::new(0, 0, 4, 0).unwrap();
        let space = pci.insert(
            a,
            ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x10, [1, 8, 2]),
        );
        pci.write16(a, 4, 0x0006);
        let escapes = Rc::new(Cell::new(3usize));
        let seen = escapes.clone();
        let (mut w, watch) =
            WatchedPci::new(pci, space, clock.clone(), Rc::new(move || seen.get()));
        assert!(watch.borrow().inherited);
        // Writes elsewhere are not command writes.
        w.write16(a, 0x3c, 0x0b);
        assert_eq!(watch.borrow().command_writes, 0);
        w.write16(a, 4, 0x0002);
        clock.advance_ns(500);
        escapes.set(7);
        w.write32(a, 4, 0x0000_0006);
        w.write16(a, 4, 0x0006);
        let got = watch.borrow().clone();
        assert_eq!(got.command_writes, 3);
        assert_eq!(got.first_write_left_on, Some(false));
        assert_eq!(got.first_on_ns, Some(500));
        assert_eq!(got.escapes_before_on, Some(7));
    }

    #[test]
    fn a_first_write_that_keeps_bus_mastering_on_is_seen() {
        let clock = SimClock::new();
        let mut pci = SimPci::new();
        let a = PciAddress::new(0, 0, 4, 0).unwrap();
        let space = pci.insert(
            a,
            ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x10, [1, 8, 2]),
        );
        pci.write16(a, 4, 0x0006);
        let (mut w, watch) = WatchedPci::new(pci, space, clock, Rc::new(|| 0));
        w.write8(a, 4, 0x06);
        assert_eq!(watch.borrow().first_write_left_on, Some(true));
        assert_eq!(watch.borrow().first_on_ns, Some(0));
    }
}
