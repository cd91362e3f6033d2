//! Base address registers: decode, size, and restore.

use super::command::{self, Command};
use super::{offset, BarProblem, ConfigAccess, PciAddress, PciError};

/// A decoded, sized BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// The BAR is not implemented (sizes to zero).
    Unused,
    /// Memory space.
    Memory {
        /// Base address.
        base: u64,
        /// Size in bytes (a power of two).
        size: u64,
        /// 64-bit BAR (occupies this slot and the next).
        is_64bit: bool,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// I/O space.
    Io {
        /// Base port.
        base: u32,
        /// Size in ports.
        size: u32,
    },
}

impl Bar {
    /// Slots this BAR occupies (2 for a 64-bit memory BAR).
    pub fn slots(&self) -> u8 {
        match self {
            Bar::Memory { is_64bit: true, .. } => 2,
            _ => 1,
        }
    }
}

/// Reads, sizes and restores BAR `index` of a type-0 function.
///
/// Decoding is turned off in the command register while the BAR holds the sizing
/// pattern, then the original BAR and command values are written back.
///
/// # Errors
///
/// [`PciError::BadBarIndex`] for index > 5, [`PciError::NotPresent`] for a function
/// reading all-ones, [`PciError::BadBar`] when the BAR decodes to nonsense.
pub fn size<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    index: u8,
) -> Result<Bar, PciError> {
    if index > 5 {
        return Err(PciError::BadBarIndex(index));
    }
    let off = offset::BAR0 + 4 * u16::from(index);
    let saved_cmd = command::read(cfg, a)?;
    let low = cfg.read32(a, off).into_raw_for_report();
    let is_io = low & 1 == 1;
    let mem_type = (low >> 1) & 0b11;
    let is_64 = !is_io && mem_type == 0b10;
    if !is_io && mem_type == 0b11 {
        return Err(PciError::BadBar {
            index,
            reason: BarProblem::ReservedType,
            raw: low.into(),
        });
    }
    if is_64 && index == 5 {
        return Err(PciError::BadBar {
            index,
            reason: BarProblem::NoUpperHalf,
            raw: low.into(),
        });
    }
    let high = if is_64 {
        cfg.read32(a, off + 4).into_raw_for_report()
    } else {
        0
    };

    // Size with decoding off, so the sizing pattern is never a live address.
    command::update(
        cfg,
        a,
        Command::empty(),
        Command::MEMORY_SPACE | Command::IO_SPACE,
    )?;
    cfg.write32(a, off, u32::MAX);
    let mask_low = cfg.read32(a, off).into_raw_for_report();
    cfg.write32(a, off, low);
    let mask_high = if is_64 {
        cfg.write32(a, off + 4, u32::MAX);
        let m = cfg.read32(a, off + 4).into_raw_for_report();
        cfg.write32(a, off + 4, high);
        m
    } else {
        0
    };
    let original = if saved_cmd.bits() == u16::MAX {
        Command::empty()
    } else {
        saved_cmd
    };
    cfg.write16(a, offset::COMMAND, original.bits());

    decode(index, low, high, mask_low, mask_high)
}

/// Decodes a BAR from its value and its sizing read-back (pure, for testing).
///
/// # Errors
///
/// [`PciError::BadBar`] when the values are nonsense.
pub fn decode(
    index: u8,
    low: u32,
    high: u32,
    mask_low: u32,
    mask_high: u32,
) -> Result<Bar, PciError> {
    let bad = |reason, raw: u64| Err(PciError::BadBar { index, reason, raw });
    if mask_low == u32::MAX {
        // No real BAR reads back all-ones (bit 1 is reserved and reads zero in
        // both I/O and memory BARs): the device vanished while we sized it.
        return bad(BarProblem::Vanished, mask_low.into());
    }
    if low & 1 == 1 {
        let mask = mask_low & !0b11;
        if mask == 0 {
            return Ok(Bar::Unused);
        }
        // I/O BARs decode at most 16 address bits on x86; upper bits may read 0.
        let mask = mask | 0xffff_0000;
        let size = (!mask).wrapping_add(1);
        if !size.is_power_of_two() || (mask | (size - 1)) != u32::MAX {
            return bad(BarProblem::NonContiguousMask, mask_low.into());
        }
        let base = low & !0b11;
        if base & (size - 1) != 0 {
            return bad(BarProblem::Misaligned, base.into());
        }
        return Ok(Bar::Io { base, size });
    }
    if (low >> 1) & 0b11 == 0b11 {
        return bad(BarProblem::ReservedType, low.into());
    }
    let is_64 = (low >> 1) & 0b11 == 0b10;
    let prefetchable = low & 0b1000 != 0;
    let mask = if is_64 {
        u64::from(mask_high) << 32 | u64::from(mask_low & !0xf)
    } else {
        0xffff_ffff_0000_0000 | u64::from(mask_low & !0xf)
    };
    let implemented = if is_64 {
        mask != 0
    } else {
        mask_low & !0xf != 0
    };
    if !implemented {
        return Ok(Bar::Unused);
    }
    let size = (!mask).wrapping_add(1);
    if size == 0 || !size.is_power_of_two() || (mask | (size - 1)) != u64::MAX {
        return bad(BarProblem::NonContiguousMask, mask);
    }
    let base = if is_64 { u64::from(high) << 32 } else { 0 } | u64::from(low & !0xf);
    if base & (size - 1) != 0 {
        return bad(BarProblem::Misaligned, base);
    }
    if base.checked_add(size).is_none() {
        return bad(BarProblem::Overflow, base);
    }
    Ok(Bar::Memory {
        base,
        size,
        is_64bit: is_64,
        prefetchable,
    })
}

/// Sizes every BAR of a type-0 function, skipping upper halves of 64-bit BARs.
///
/// # Errors
///
/// The first error of [`size`].
pub fn all<C: ConfigAccess + ?Sized>(cfg: &mut C, a: PciAddress) -> Result<[Bar; 6], PciError> {
    let mut bars = [Bar::Unused; 6];
    let mut i = 0u8;
    while i < 6 {
        let bar = size(cfg, a, i)?;
        if let Some(slot) = bars.get_mut(usize::from(i)) {
            *slot = bar;
        }
        i += bar.slots();
    }
    Ok(bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_32_and_64_bit_memory_and_io() {
        assert_eq!(
            decode(0, 0xfebc_0000, 0, 0xfffe_0000, 0),
            Ok(Bar::Memory {
                base: 0xfebc_0000,
                size: 0x2_0000,
                is_64bit: false,
                prefetchable: false
            })
        );
        assert_eq!(
            decode(0, 0xfe00_000c, 0x1, 0xffff_c00c, 0xffff_ffff),
            Ok(Bar::Memory {
                base: 0x1_fe00_0000,
                size: 0x4000,
                is_64bit: true,
                prefetchable: true
            })
        );
        assert_eq!(
            decode(1, 0xc001, 0, 0xffff_ffc1, 0),
            Ok(Bar::Io {
                base: 0xc000,
                size: 0x40
            })
        );
        assert_eq!(decode(2, 0, 0, 0, 0), Ok(Bar::Unused));
        // An I/O BAR may read its upper 16 bits back as ones or as zeros.
        for mask in [0xffff_ff01, 0x0000_ff01] {
            assert_eq!(
                decode(1, 0xc001, 0, mask, 0),
                Ok(Bar::Io {
                    base: 0xc000,
                    size: 0x100
                }),
                "{mask:#x}"
            );
        }
    }

    #[test]
    fn refuses_nonsense() {
        let reason = |r: Result<Bar, PciError>| match r {
            Err(PciError::BadBar { reason, .. }) => Some(reason),
            _ => None,
        };
        assert_eq!(
            reason(decode(0, 0, 0, 0xff0f_f000, 0)),
            Some(BarProblem::NonContiguousMask)
        );
        assert_eq!(
            reason(decode(0, 0x1000, 0, 0xffff_e000, 0)),
            Some(BarProblem::Misaligned)
        );
        assert_eq!(
            reason(decode(0, 0, 0, u32::MAX, 0)),
            Some(BarProblem::Vanished)
        );
        assert_eq!(
            reason(decode(0, 0xffff_f004, u32::MAX, 0xffff_f004, u32::MAX)),
            Some(BarProblem::Overflow)
        );
        assert_eq!(
            reason(decode(0, 0b110, 0, 0xffff_f006, 0)),
            Some(BarProblem::ReservedType)
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_sizes_are_sane(index in 0u8..6, low: u32, high: u32, ml: u32, mh: u32) {
            if let Ok(Bar::Memory { base, size, .. }) = decode(index, low, high, ml, mh) {
                prop_assert!(size.is_power_of_two());
                prop_assert_eq!(base % size, 0);
                prop_assert!(base.checked_add(size).is_some());
            }
            if let Ok(Bar::Io { base, size }) = decode(index, low, high, ml, mh) {
                prop_assert!(size.is_power_of_two());
                prop_assert_eq!(base % size, 0);
            }
        }
    }
}
