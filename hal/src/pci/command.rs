//! The command register: memory/I/O decoding, bus mastering, INTx.

use super::{offset, ConfigAccess, PciAddress, PciError};

bitflags::bitflags! {
    /// Bits of the command register (PCI Local Bus 3.0, 6.2.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Command: u16 {
        /// Respond to I/O space accesses.
        const IO_SPACE = 1 << 0;
        /// Respond to memory space accesses.
        const MEMORY_SPACE = 1 << 1;
        /// May master the bus (do DMA).
        const BUS_MASTER = 1 << 2;
        /// Report parity errors.
        const PARITY_ERROR_RESPONSE = 1 << 6;
        /// SERR# enable.
        const SERR = 1 << 8;
        /// Disable legacy INTx interrupts.
        const INTX_DISABLE = 1 << 10;
    }
}

/// Reads the command register.
///
/// # Errors
///
/// [`PciError::NotPresent`] when the register reads all-ones.
pub fn read<C: ConfigAccess + ?Sized>(cfg: &mut C, a: PciAddress) -> Result<Command, PciError> {
    let raw = cfg.read16(a, offset::COMMAND);
    if raw.is_all_ones() {
        return Err(PciError::NotPresent(a));
    }
    Ok(raw.flags())
}

/// Sets and clears command bits with one read and one 16-bit write, keeping the
/// bits it is not asked to change.
///
/// # Errors
///
/// [`PciError::NotPresent`] when the register reads all-ones (nothing is written).
pub fn update<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    set: Command,
    clear: Command,
) -> Result<Command, PciError> {
    let raw = cfg.read16(a, offset::COMMAND);
    if raw.is_all_ones() {
        return Err(PciError::NotPresent(a));
    }
    // Keep unknown bits as the device reported them (it owns their meaning).
    let value = (raw.into_raw_for_report() & !clear.bits()) | set.bits();
    cfg.write16(a, offset::COMMAND, value);
    Ok(Command::from_bits_retain(value))
}

/// Turns bus mastering off and INTx off: the first step of quiescing a device, and
/// the fence of last resort. Never fails: a missing device needs no fence.
pub fn fence<C: ConfigAccess + ?Sized>(cfg: &mut C, a: PciAddress) -> bool {
    update(cfg, a, Command::INTX_DISABLE, Command::BUS_MASTER).is_ok()
}
