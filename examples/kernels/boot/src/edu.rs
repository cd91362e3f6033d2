//! QEMU's `edu` device (PCI 1234:11e8): the controllable DMA source the
//! scenarios arm across a crash. Its registers live here, once, for every
//! kernel that drives or watches it (QEMU `docs/specs/edu.rst`).

use paranoid::mmio::RegisterIo;

/// edu's PCI ids (vendor, device).
pub const IDS: (u16, u16) = (0x1234, 0x11e8);
/// The device-side address of edu's 4 KiB buffer.
pub const BUFFER: u64 = 0x4_0000;

/// DMA register offsets in BAR 0 (64-bit registers).
pub mod dma {
    /// Source address.
    pub const SRC: usize = 0x80;
    /// Destination address.
    pub const DST: usize = 0x88;
    /// Byte count.
    pub const COUNT: usize = 0x90;
    /// Command: bit 0 run, bit 1 direction (1: buffer to RAM), bit 2 interrupt.
    pub const CMD: usize = 0x98;
    /// CMD bit 0: a transfer is armed or running.
    pub const RUN: u64 = 1 << 0;
    /// CMD bit 1: copy the device buffer into RAM.
    pub const TO_RAM: u64 = 1 << 1;
}

/// Whether edu's DMA engine is still moving data, as its command register
/// says: `Some(true)` while the run bit is set, `None` when the register
/// reads all-ones (the device is gone).
pub fn dma_running(regs: &mut impl RegisterIo) -> Option<bool> {
    let cmd = regs.read64(dma::CMD);
    if cmd.is_all_ones() {
        None
    } else {
        Some(cmd.bit(0))
    }
}
