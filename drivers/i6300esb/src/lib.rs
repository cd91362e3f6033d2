//! paranoid-i6300esb: the Intel 6300ESB watchdog timer, as QEMU models it
//! (`-device i6300esb`, PCI 8086:25ab).
//!
//! A cluster fences a node whose watchdog stops being petted. A crashed kernel
//! can arm the watchdog before it dies; the recovery kernel then pets it between
//! dump chunks (a heartbeat), so a long recovery is not mistaken for a hung
//! node, and a recovery kernel that does hang is reset.
//!
//! The device has two stages, each loaded from its own preload register; the
//! second stage's expiry resets the machine. Memory-mapped registers are
//! write-protected: each write to a timer or the reload register must follow
//! the unlock sequence (0x80 then 0x86 to the reload register).
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use core::time::Duration;
//! use paranoid::sim::{SimClock, SimMmio};
//! use paranoid_i6300esb::{model::Esb, Watchdog};
//!
//! let clock = SimClock::new();
//! let regs = SimMmio::new(Esb::new(clock.clone()), clock.clone());
//! let model = regs.model().clone();
//! let mut wdt = Watchdog::new(regs);
//! wdt.set_period(Duration::from_millis(500)).unwrap();
//! wdt.pet();
//! clock.advance(Duration::from_millis(400));
//! wdt.pet();
//! clock.advance(Duration::from_millis(400));
//! assert!(!model.borrow().fired());
//! clock.advance(Duration::from_millis(600));
//! assert!(model.borrow().fired(), "not petted for 600 ms: the machine is reset");
//! # }
//! ```
#![cfg_attr(not(any(test, feature = "model")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::time::Duration;

use paranoid::mmio::RegisterIo;
use paranoid::pci::{ConfigAccess, Function, PciAddress};

#[cfg(feature = "model")]
pub mod model;

/// PCI ids.
pub const IDS: (u16, u16) = (0x8086, 0x25ab);

/// Register offsets and values (Intel 6300ESB datasheet, 13.x "WDT").
pub mod regs {
    /// Configuration space: WDT configuration (16 bits).
    pub const CONFIG: u16 = 0x60;
    /// Configuration space: WDT lock (8 bits).
    pub const LOCK: u16 = 0x68;
    /// CONFIG: interrupt type "none" (bits 1:0 = 11).
    pub const CONFIG_INT_NONE: u16 = 0b11;
    /// CONFIG: 1 MHz prescaler instead of 1 kHz (we use 1 kHz: clear).
    pub const CONFIG_FREQ_1MHZ: u16 = 1 << 2;
    /// CONFIG: reboot disabled (we want the reset: clear).
    pub const CONFIG_NO_REBOOT: u16 = 1 << 5;
    /// LOCK: the watchdog is enabled.
    pub const LOCK_ENABLE: u8 = 1 << 1;
    /// LOCK: configuration locked until reset.
    pub const LOCK_LOCKED: u8 = 1 << 0;
    /// MMIO: stage-1 preload (20 bits).
    pub const TIMER1: usize = 0x00;
    /// MMIO: stage-2 preload (20 bits).
    pub const TIMER2: usize = 0x04;
    /// MMIO: reload register (16-bit writes).
    pub const RELOAD: usize = 0x0c;
    /// First unlock value.
    pub const UNLOCK1: u16 = 0x80;
    /// Second unlock value.
    pub const UNLOCK2: u16 = 0x86;
    /// RELOAD: restart the count.
    pub const RELOAD_BIT: u16 = 1 << 8;
    /// Preload units per second at the 1 kHz setting: the prescaler divides the
    /// 33 MHz clock by 2^15, so one unit is 0.993 ms (as QEMU computes it).
    pub const UNITS_PER_SECOND: u64 = 33_000_000 >> 15;
    /// Largest preload value (20 bits).
    pub const PRELOAD_MAX: u32 = (1 << 20) - 1;
}

/// Errors arming the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogError {
    /// A period too short (under 2 ms) or too long for the 20-bit preloads.
    BadPeriod {
        /// The period asked for.
        period: Duration,
    },
    /// Configuration space reads all-ones: the device is gone.
    Gone(PciAddress),
    /// The configuration is locked (by the firmware or a previous kernel) with
    /// a different setting.
    Locked {
        /// The lock register seen.
        lock: u8,
    },
}

impl core::fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadPeriod { period } => write!(
                f,
                "a period of {period:?} is under 2 ms or too long for the 20-bit preloads"
            ),
            Self::Gone(at) => write!(f, "{at} reads all-ones: the watchdog is gone"),
            Self::Locked { lock } => write!(
                f,
                "the configuration is locked with another setting (lock register {lock:#04x})"
            ),
        }
    }
}

/// The watchdog's timers and reload register.
pub struct Watchdog<R: RegisterIo> {
    regs: R,
}

impl<R: RegisterIo> Watchdog<R> {
    /// Wraps the device's BAR 0.
    pub fn new(regs: R) -> Self {
        Self { regs }
    }

    fn unlock(&mut self) {
        self.regs.write16(regs::RELOAD, regs::UNLOCK1);
        self.regs.write16(regs::RELOAD, regs::UNLOCK2);
    }

    /// Sets both stages so that the machine resets `period` after the last pet
    /// (each stage gets half), and pets once.
    ///
    /// # Errors
    ///
    /// [`WatchdogError::BadPeriod`] for a period the preloads cannot express.
    pub fn set_period(&mut self, period: Duration) -> Result<(), WatchdogError> {
        let units = period
            .as_millis()
            .saturating_mul(u128::from(regs::UNITS_PER_SECOND))
            / 2000;
        let preload = u32::try_from(units)
            .ok()
            .filter(|&u| (1..=regs::PRELOAD_MAX).contains(&u));
        let preload = preload.ok_or(WatchdogError::BadPeriod { period })?;
        self.unlock();
        self.regs.write32(regs::TIMER1, preload);
        self.unlock();
        self.regs.write32(regs::TIMER2, preload);
        self.pet();
        Ok(())
    }

    /// Restarts the count: one heartbeat. Bounded: four register writes.
    pub fn pet(&mut self) {
        self.unlock();
        self.regs.write16(regs::RELOAD, regs::RELOAD_BIT);
    }
}

/// Enables the watchdog in configuration space (reset on expiry, no
/// interrupt, 1 kHz prescaler), unlocked so the next kernel may change it.
///
/// # Errors
///
/// [`WatchdogError::Gone`] or [`WatchdogError::Locked`].
pub fn enable<C: ConfigAccess>(function: &mut Function<C>) -> Result<(), WatchdogError> {
    let lock = function.read8(regs::LOCK);
    if lock.is_all_ones() {
        return Err(WatchdogError::Gone(function.address()));
    }
    if lock.bit(0) {
        return Err(WatchdogError::Locked {
            lock: lock.into_raw_for_report(),
        });
    }
    function.write16(regs::CONFIG, regs::CONFIG_INT_NONE);
    function.write8(regs::LOCK, regs::LOCK_ENABLE);
    Ok(())
}

/// Whether the watchdog is enabled (a recovery kernel checks before petting).
///
/// # Errors
///
/// [`WatchdogError::Gone`].
pub fn is_enabled<C: ConfigAccess>(function: &mut Function<C>) -> Result<bool, WatchdogError> {
    let lock = function.read8(regs::LOCK);
    if lock.is_all_ones() {
        return Err(WatchdogError::Gone(function.address()));
    }
    Ok(lock.bit(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paranoid::Untrusted;

    #[test]
    fn errors_read_as_words_with_their_values() {
        let period = Duration::from_millis(1);
        assert_eq!(
            WatchdogError::BadPeriod { period }.to_string(),
            "a period of 1ms is under 2 ms or too long for the 20-bit preloads"
        );
        assert_eq!(
            WatchdogError::Locked { lock: 0x02 }.to_string(),
            "the configuration is locked with another setting (lock register 0x02)"
        );
        let at = PciAddress::new(0, 0, 0x1d, 4).unwrap();
        assert_eq!(
            WatchdogError::Gone(at).to_string(),
            "0000:00:1d.4 reads all-ones: the watchdog is gone"
        );
    }

    /// One function's 256-byte configuration space (every byte writable), or
    /// none: a missing function reads all-ones and drops writes.
    struct Space {
        bytes: Option<[u8; 256]>,
        writes: u32,
    }

    impl Space {
        fn new(lock: u8) -> Self {
            let mut bytes = [0; 256];
            bytes[usize::from(regs::LOCK)] = lock;
            Self {
                bytes: Some(bytes),
                writes: 0,
            }
        }

        fn byte(&self, offset: u16) -> u8 {
            self.bytes.map_or(0xff, |b| b[usize::from(offset)])
        }
    }

    impl ConfigAccess for Space {
        fn read8(&mut self, _: PciAddress, o: u16) -> Untrusted<u8> {
            Untrusted::new(self.byte(o))
        }
        fn read16(&mut self, _: PciAddress, o: u16) -> Untrusted<u16> {
            Untrusted::new(u16::from_le_bytes([self.byte(o), self.byte(o + 1)]))
        }
        fn read32(&mut self, a: PciAddress, o: u16) -> Untrusted<u32> {
            let lo = u32::from(self.read16(a, o).into_raw_for_report());
            let hi = u32::from(self.read16(a, o + 2).into_raw_for_report());
            Untrusted::new(lo | hi << 16)
        }
        fn write8(&mut self, _: PciAddress, o: u16, v: u8) {
            self.writes += 1;
            if let Some(b) = self.bytes.as_mut() {
                b[usize::from(o)] = v;
            }
        }
        fn write16(&mut self, a: PciAddress, o: u16, v: u16) {
            let [lo, hi] = v.to_le_bytes();
            self.write8(a, o, lo);
            self.write8(a, o + 1, hi);
        }
        fn write32(&mut self, a: PciAddress, o: u16, v: u32) {
            self.write16(a, o, v as u16);
            self.write16(a, o + 2, (v >> 16) as u16);
        }
        fn space_size(&self) -> u16 {
            256
        }
    }

    fn address() -> PciAddress {
        PciAddress::new(0, 0, 4, 0).unwrap()
    }

    #[test]
    fn enable_sets_config_and_lock_and_reads_back_enabled() {
        let mut space = Space::new(0);
        {
            let mut f = Function::new(&mut space, address());
            assert_eq!(is_enabled(&mut f), Ok(false));
            enable(&mut f).unwrap();
            assert_eq!(is_enabled(&mut f), Ok(true));
        }
        assert_eq!(space.byte(regs::CONFIG), regs::CONFIG_INT_NONE as u8);
        assert_eq!(space.byte(regs::CONFIG + 1), 0, "1 kHz, reboot enabled");
        assert_eq!(
            space.byte(regs::LOCK),
            regs::LOCK_ENABLE,
            "enabled, not locked"
        );
    }

    #[test]
    fn a_locked_watchdog_is_refused_untouched() {
        let mut space = Space::new(regs::LOCK_LOCKED | regs::LOCK_ENABLE);
        {
            let mut f = Function::new(&mut space, address());
            assert_eq!(enable(&mut f), Err(WatchdogError::Locked { lock: 0b11 }));
            assert_eq!(is_enabled(&mut f), Ok(true));
        }
        assert_eq!(space.writes, 0);
    }

    #[test]
    fn a_missing_watchdog_is_gone() {
        let mut space = Space {
            bytes: None,
            writes: 0,
        };
        {
            let mut f = Function::new(&mut space, address());
            assert_eq!(enable(&mut f), Err(WatchdogError::Gone(address())));
            assert_eq!(is_enabled(&mut f), Err(WatchdogError::Gone(address())));
        }
        assert_eq!(space.writes, 0);
    }

    #[test]
    fn periods_outside_the_preload_range_are_refused() {
        let clock = paranoid::sim::SimClock::new();
        let mut w = Watchdog::new(paranoid::sim::SimMmio::new(
            paranoid::sim::RegisterFile::new(16),
            clock,
        ));
        assert!(matches!(
            w.set_period(Duration::from_millis(1)),
            Err(WatchdogError::BadPeriod { .. })
        ));
        assert!(matches!(
            w.set_period(Duration::from_secs(3000)),
            Err(WatchdogError::BadPeriod { .. })
        ));
        assert!(w.set_period(Duration::from_secs(1)).is_ok());
    }
}
