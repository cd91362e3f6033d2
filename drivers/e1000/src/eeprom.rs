//! The EEPROM of an 8254x: the station address in words 0..=2 and the
//! checksum over words 0..=0x3f, read through EERD or by clocking Microwire
//! through EECD, as the part does it ([`EepromAccess`]).
//!
//! Reading it starts no DMA and changes nothing the NIC does (no reset, no
//! ring, no receive or transmit enable), so a NIC can be named by its address
//! before it is brought up ([`station_address`]): a machine with several
//! NICs brings up the one configured, and only that one.

use core::time::Duration;

use paranoid::mmio::RegisterIo;
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::device::MacAddress;
use crate::error::E1000Error;
use crate::init::{EERD_TIMEOUT, MICROWIRE_HALF_PERIOD};
use crate::part::{EepromAccess, Part};
use crate::regs::{e1000_regs as r, eecd, eeprom, eerd, E1000Regs};

/// The station address of the 8254x `part` whose BAR0 is `regs`: EECD.PRES,
/// then every EEPROM word, their checksum and the address checked, as the
/// driver's verify step reads them. Only EERD and EECD are touched.
///
/// # Errors
///
/// [`E1000Error::DeviceGone`], [`E1000Error::NoEeprom`],
/// [`E1000Error::EepromTimeout`], [`E1000Error::EepromAddressMismatch`],
/// [`E1000Error::EepromChecksum`], [`E1000Error::BadMac`].
pub fn station_address<R: RegisterIo, C: Clock>(
    regs: &mut R,
    part: Part,
    clock: &C,
    deadline: Deadline,
) -> Result<MacAddress, E1000Error> {
    let mut regs = E1000Regs::new(regs);
    Eeprom {
        regs: &mut regs,
        clock,
        part,
    }
    .station_address(deadline)
}

/// The EEPROM behind a register block.
pub(crate) struct Eeprom<'a, R, C> {
    pub(crate) regs: &'a mut E1000Regs<R>,
    pub(crate) clock: &'a C,
    pub(crate) part: Part,
}

impl<R: RegisterIo, C: Clock> Eeprom<'_, R, C> {
    /// EECD.PRES, then the address ([`station_address`]).
    pub(crate) fn station_address(&mut self, deadline: Deadline) -> Result<MacAddress, E1000Error> {
        self.check_present()?;
        self.read_mac(deadline)
    }

    /// EECD.PRES: without an EEPROM there is no Ethernet address to trust.
    fn check_present(&mut self) -> Result<(), E1000Error> {
        let value = self.regs.eecd().read();
        if value.untrusted().is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: r::eecd::SPEC.name,
            });
        }
        if !value.pres() {
            return Err(E1000Error::NoEeprom {
                eecd: value.untrusted().into_raw_for_report(),
            });
        }
        Ok(())
    }

    /// Reads EEPROM words 0..=0x3f, checks they sum to 0xBABA, and returns the
    /// address in words 0..=2 if it is a usable station address.
    fn read_mac(&mut self, deadline: Deadline) -> Result<MacAddress, E1000Error> {
        let mut sum = 0u16;
        let mut mac = [0u8; 6];
        for word in 0..eeprom::WORDS {
            let value = self.read_word(word, deadline)?;
            sum = sum.wrapping_add(value);
            let [lo, hi] = value.to_le_bytes();
            if let Some(pair) = mac.get_mut(usize::from(word) * 2..usize::from(word) * 2 + 2) {
                pair.copy_from_slice(&[lo, hi]);
            }
        }
        if sum != eeprom::SUM && !mutant!("e1000_skip_eeprom_checksum") {
            return Err(E1000Error::EepromChecksum { sum });
        }
        let mac = MacAddress(mac);
        if !mac.is_valid_station() {
            return Err(E1000Error::BadMac { mac: mac.0 });
        }
        Ok(mac)
    }

    /// One EEPROM word, the way this part reads it ([`EepromAccess`]).
    fn read_word(&mut self, word: u8, deadline: Deadline) -> Result<u16, E1000Error> {
        if mutant!("e1000_eerd_on_every_part") {
            return self.read_word_eerd(word, deadline);
        }
        match self.part.eeprom_access() {
            EepromAccess::Eerd => self.read_word_eerd(word, deadline),
            EepromAccess::Microwire => self.read_word_microwire(word, deadline),
        }
    }

    /// One EERD read: START with the address, a bounded wait for DONE, and the
    /// address echoed back must be the one asked for.
    fn read_word_eerd(&mut self, word: u8, deadline: Deadline) -> Result<u16, E1000Error> {
        self.regs
            .eerd()
            .write(eerd::START | r::eerd::ADDR.bits(u32::from(word)));
        let own = Deadline::after(self.clock, EERD_TIMEOUT).min(deadline);
        let regs = &mut self.regs;
        let seen = poll(
            self.clock,
            own,
            || regs.eerd().read().untrusted(),
            |v| v.is_all_ones() || r::eerd::DONE.is_set(*v),
        );
        let value = match seen {
            Ok(v) => v.not_all_ones().map_err(|_| E1000Error::DeviceGone {
                register: r::eerd::SPEC.name,
            })?,
            Err(t) => {
                return Err(E1000Error::EepromTimeout {
                    word,
                    eerd: t.last.into_raw_for_report(),
                    waited: t.waited,
                    deadline_ns: own.as_ns(),
                })
            }
        };
        if !r::eerd::ADDR.get(value).is(u32::from(word)) {
            return Err(E1000Error::EepromAddressMismatch {
                word,
                eerd: value.into_raw_for_report(),
            });
        }
        let data = r::eerd::DATA.get(value).in_range(0..=0xffff)?;
        Ok(data as u16)
    }

    /// One Microwire READ through EECD (SDM 5.4; the 82544GC has no EERD): CS
    /// up, the opcode and the 6-bit address clocked out MSB first, 16 data bits
    /// clocked in MSB first, CS down. Every step is a fixed number of clock
    /// edges; the step's deadline bounds the whole read.
    fn read_word_microwire(&mut self, word: u8, deadline: Deadline) -> Result<u16, E1000Error> {
        if deadline.expired(self.clock) {
            return Err(E1000Error::EepromTimeout {
                word,
                eerd: 0,
                waited: Duration::ZERO,
                deadline_ns: deadline.as_ns(),
            });
        }
        let idle = self.eecd_idle()?;
        // Deselect first: a dead kernel stopped mid-read leaves CS high and
        // the EEPROM mid-command; only a CS rising edge starts a new one.
        self.eecd_write(idle);
        self.eecd_write(idle | eecd::CS);
        let command = eecd::READ_OPCODE << eecd::ADDRESS_BITS | u32::from(word) & 0x3f;
        let bits = eecd::OPCODE_BITS + eecd::ADDRESS_BITS;
        for bit in (0..bits).rev() {
            let di = if command >> bit & 1 == 1 { eecd::DI } else { 0 };
            self.eecd_clock(idle | eecd::CS | di)?;
        }
        let mut data = 0u16;
        for _ in 0..eecd::DATA_BITS {
            let out = self.eecd_clock(idle | eecd::CS)?;
            data = data << 1 | u16::from(out & eecd::DO != 0);
        }
        self.eecd_write(idle);
        Ok(data)
    }

    /// EECD with the Microwire lines low, the other software bits as found.
    fn eecd_idle(&mut self) -> Result<u32, E1000Error> {
        let value = self.regs.eecd().read().untrusted();
        if value.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: r::eecd::SPEC.name,
            });
        }
        Ok(value.into_raw_for_report() & !(eecd::SK | eecd::CS | eecd::DI | eecd::DO))
    }

    /// Writes EECD and holds it for half a Microwire clock period.
    fn eecd_write(&mut self, value: u32) {
        self.regs.eecd().write(value);
        self.clock.delay(MICROWIRE_HALF_PERIOD);
    }

    /// One Microwire clock: SK up (the EEPROM samples DI), EECD read (DO),
    /// SK down. Returns the EECD read while SK was high.
    fn eecd_clock(&mut self, value: u32) -> Result<u32, E1000Error> {
        self.eecd_write(value | eecd::SK);
        let seen = self.regs.eecd().read().untrusted();
        self.eecd_write(value);
        seen.not_all_ones()
            .map(Untrusted::into_raw_for_report)
            .map_err(|_| E1000Error::DeviceGone {
                register: r::eecd::SPEC.name,
            })
    }
}
