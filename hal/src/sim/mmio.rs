//! A register backend that dispatches to a device model.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::SimClock;
use crate::mmio::{access_ok, RegisterIo};
use crate::Untrusted;

/// Access width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 8 bits.
    W8 = 1,
    /// 16 bits.
    W16 = 2,
    /// 32 bits.
    W32 = 4,
    /// 64 bits.
    W64 = 8,
}

/// A device's register block, as a model.
pub trait MmioModel {
    /// Size of the block in bytes.
    fn size(&self) -> usize;
    /// Handles a read (the model may have side effects: read-to-clear).
    fn read(&mut self, offset: usize, width: Width) -> u64;
    /// Handles a write.
    fn write(&mut self, offset: usize, width: Width, value: u64);
}

/// Plain read/write registers with no behaviour: a register block at rest.
#[derive(Debug, Clone)]
pub struct RegisterFile {
    bytes: Vec<u8>,
}

impl RegisterFile {
    /// `size` bytes of zeroed registers.
    pub fn new(size: usize) -> Self {
        Self {
            bytes: vec![0; size],
        }
    }
}

impl MmioModel for RegisterFile {
    fn size(&self) -> usize {
        self.bytes.len()
    }
    fn read(&mut self, offset: usize, width: Width) -> u64 {
        let mut b = [0u8; 8];
        if let (Some(dst), Some(src)) = (
            b.get_mut(..width as usize),
            self.bytes.get(offset..offset + width as usize),
        ) {
            dst.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }
    fn write(&mut self, offset: usize, width: Width, value: u64) {
        if let Some(dst) = self.bytes.get_mut(offset..offset + width as usize) {
            dst.copy_from_slice(value.to_le_bytes().get(..width as usize).unwrap_or(&[]));
        }
    }
}

/// A [`RegisterIo`] over a shared model, advancing the clock per access and able
/// to play a device that is gone.
pub struct SimMmio<M: MmioModel> {
    model: Rc<RefCell<M>>,
    clock: SimClock,
    access_ns: u64,
    accesses: Rc<Cell<u64>>,
    gone_after: Rc<Cell<Option<u64>>>,
}

impl<M: MmioModel> Clone for SimMmio<M> {
    fn clone(&self) -> Self {
        Self {
            model: self.model.clone(),
            clock: self.clock.clone(),
            access_ns: self.access_ns,
            accesses: self.accesses.clone(),
            gone_after: self.gone_after.clone(),
        }
    }
}

impl<M: MmioModel> SimMmio<M> {
    /// Registers backed by `model`; each access costs 100 ns of simulated time.
    pub fn new(model: M, clock: SimClock) -> Self {
        Self::shared(Rc::new(RefCell::new(model)), clock)
    }

    /// Registers backed by a model the test also holds.
    pub fn shared(model: Rc<RefCell<M>>, clock: SimClock) -> Self {
        Self {
            model,
            clock,
            access_ns: 100,
            accesses: Rc::default(),
            gone_after: Rc::default(),
        }
    }

    /// The model.
    pub fn model(&self) -> &Rc<RefCell<M>> {
        &self.model
    }

    /// Makes the device vanish after `n` more accesses (`Some(0)`: gone now;
    /// `None`: present). A gone device reads all-ones and ignores writes.
    pub fn set_gone_after(&self, n: Option<u64>) {
        self.gone_after
            .set(n.map(|n| self.accesses.get().saturating_add(n)));
    }

    /// Accesses so far.
    pub fn accesses(&self) -> u64 {
        self.accesses.get()
    }

    fn enter(&self) -> bool {
        self.clock.advance_ns(self.access_ns);
        let n = self.accesses.get();
        self.accesses.set(n + 1);
        self.gone_after.get().is_none_or(|limit| n < limit)
    }

    fn read(&mut self, offset: usize, width: Width) -> u64 {
        let size = self.model.borrow().size();
        if !self.enter() || !access_ok(offset, width as usize, size) {
            return u64::MAX;
        }
        self.model.borrow_mut().read(offset, width)
    }

    fn write(&mut self, offset: usize, width: Width, value: u64) {
        let size = self.model.borrow().size();
        if self.enter() && access_ok(offset, width as usize, size) {
            self.model.borrow_mut().write(offset, width, value);
        }
    }
}

impl<M: MmioModel> RegisterIo for SimMmio<M> {
    fn size(&self) -> usize {
        self.model.borrow().size()
    }
    fn read8(&mut self, offset: usize) -> Untrusted<u8> {
        Untrusted::new(self.read(offset, Width::W8) as u8)
    }
    fn read16(&mut self, offset: usize) -> Untrusted<u16> {
        Untrusted::new(self.read(offset, Width::W16) as u16)
    }
    fn read32(&mut self, offset: usize) -> Untrusted<u32> {
        Untrusted::new(self.read(offset, Width::W32) as u32)
    }
    fn read64(&mut self, offset: usize) -> Untrusted<u64> {
        Untrusted::new(self.read(offset, Width::W64))
    }
    fn write8(&mut self, offset: usize, value: u8) {
        self.write(offset, Width::W8, value.into())
    }
    fn write16(&mut self, offset: usize, value: u16) {
        self.write(offset, Width::W16, value.into())
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.write(offset, Width::W32, value.into())
    }
    fn write64(&mut self, offset: usize, value: u64) {
        self.write(offset, Width::W64, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_and_goes_away_mid_init() {
        let clock = SimClock::new();
        let mut m = SimMmio::new(RegisterFile::new(0x100), clock.clone());
        m.write32(0x10, 0x1234_5678);
        assert_eq!(m.read16(0x12).into_raw_for_report(), 0x1234);
        assert!(m.read32(0x100).is_all_ones(), "past the block");
        assert!(m.read32(0x11).is_all_ones(), "misaligned");
        m.set_gone_after(Some(1));
        assert!(!m.read32(0x10).is_all_ones());
        assert!(m.read32(0x10).is_all_ones());
        m.write32(0x10, 0);
        m.set_gone_after(None);
        assert_eq!(
            m.read32(0x10).into_raw_for_report(),
            0x1234_5678,
            "writes while gone are dropped"
        );
        assert!(crate::time::Clock::now_ns(&clock) >= 800);
    }
}
