//! Register declarations of the 8254x (e1000) MAC, apart from any logic.
//!
//! Offsets and bits follow the Intel 8254x Family of Gigabit Ethernet Controllers
//! Software Developer's Manual (SDM), section 13 ("Register Descriptions"). The
//! access mode is part of each register's type: a read-only register has no
//! write method, a write-only one no read method, and reading a read-to-clear
//! register needs `&mut` access to the block like any other read.

use paranoid::mmio::RegisterIo;
use paranoid::Untrusted;

/// A 32-bit register: its spec name (for errors and traces) and its offset in BAR0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    /// Spec name, e.g. `"CTRL"`.
    pub name: &'static str,
    /// Byte offset in the register block.
    pub offset: usize,
}

macro_rules! access {
    ($(#[$doc:meta])* $ty:ident, read: $r:tt, write: $w:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty(pub Reg);
        impl $ty {
            /// The register's name and offset.
            pub const fn reg(self) -> Reg {
                self.0
            }
            access!(@read $r);
            access!(@write $w);
        }
    };
    (@read yes) => {
        /// Reads the register (one 32-bit access); the value is device-controlled.
        #[inline(always)]
        pub fn read<R: RegisterIo + ?Sized>(self, io: &mut R) -> Untrusted<u32> {
            io.read32(self.0.offset)
        }
    };
    (@read no) => {};
    (@write yes) => {
        /// Writes the register (one 32-bit access).
        #[inline(always)]
        pub fn write<R: RegisterIo + ?Sized>(self, io: &mut R, value: u32) {
            io.write32(self.0.offset, value)
        }
    };
    (@write no) => {};
}

access!(
    /// A read/write register.
    Rw, read: yes, write: yes
);
access!(
    /// A read-only register.
    Ro, read: yes, write: no
);
access!(
    /// A write-only register (reads are undefined on hardware).
    Wo, read: no, write: yes
);
access!(
    /// A register that clears on read (ICR); writing ones also clears bits.
    Rc, read: yes, write: yes
);

const fn rw(name: &'static str, offset: usize) -> Rw {
    Rw(Reg { name, offset })
}

/// Device Control (SDM 13.4.1).
pub const CTRL: Rw = rw("CTRL", 0x0000);
/// Device Status (SDM 13.4.2).
pub const STATUS: Ro = Ro(Reg {
    name: "STATUS",
    offset: 0x0008,
});
/// EEPROM/Flash Control (SDM 13.4.3).
pub const EECD: Rw = rw("EECD", 0x0010);
/// EEPROM Read (SDM 13.4.4).
pub const EERD: Rw = rw("EERD", 0x0014);
/// Interrupt Cause Read (SDM 13.4.17): read-to-clear.
pub const ICR: Rc = Rc(Reg {
    name: "ICR",
    offset: 0x00c0,
});
/// Interrupt Throttling (SDM 13.4.18).
pub const ITR: Rw = rw("ITR", 0x00c4);
/// Interrupt Cause Set (SDM 13.4.19).
pub const ICS: Wo = Wo(Reg {
    name: "ICS",
    offset: 0x00c8,
});
/// Interrupt Mask Set/Read (SDM 13.4.20).
pub const IMS: Rw = rw("IMS", 0x00d0);
/// Interrupt Mask Clear (SDM 13.4.21).
pub const IMC: Wo = Wo(Reg {
    name: "IMC",
    offset: 0x00d8,
});
/// Receive Control (SDM 13.4.22).
pub const RCTL: Rw = rw("RCTL", 0x0100);
/// Transmit Control (SDM 13.4.33).
pub const TCTL: Rw = rw("TCTL", 0x0400);
/// Transmit Inter-Packet Gap (SDM 13.4.34).
pub const TIPG: Rw = rw("TIPG", 0x0410);
/// Receive Descriptor Base Address Low (SDM 13.4.27).
pub const RDBAL: Rw = rw("RDBAL", 0x2800);
/// Receive Descriptor Base Address High (SDM 13.4.28).
pub const RDBAH: Rw = rw("RDBAH", 0x2804);
/// Receive Descriptor Length (SDM 13.4.29).
pub const RDLEN: Rw = rw("RDLEN", 0x2808);
/// Receive Descriptor Head (SDM 13.4.30).
pub const RDH: Rw = rw("RDH", 0x2810);
/// Receive Descriptor Tail (SDM 13.4.31).
pub const RDT: Rw = rw("RDT", 0x2818);
/// Receive Delay Timer (SDM 13.4.32).
pub const RDTR: Rw = rw("RDTR", 0x2820);
/// Receive Interrupt Absolute Delay Timer (SDM 13.4.33).
pub const RADV: Rw = rw("RADV", 0x282c);
/// Transmit Descriptor Base Address Low (SDM 13.4.38).
pub const TDBAL: Rw = rw("TDBAL", 0x3800);
/// Transmit Descriptor Base Address High (SDM 13.4.39).
pub const TDBAH: Rw = rw("TDBAH", 0x3804);
/// Transmit Descriptor Length (SDM 13.4.40).
pub const TDLEN: Rw = rw("TDLEN", 0x3808);
/// Transmit Descriptor Head (SDM 13.4.41).
pub const TDH: Rw = rw("TDH", 0x3810);
/// Transmit Descriptor Tail (SDM 13.4.42).
pub const TDT: Rw = rw("TDT", 0x3818);
/// Transmit Interrupt Delay Value (SDM 13.4.43).
pub const TIDV: Rw = rw("TIDV", 0x3820);
/// Transmit Absolute Interrupt Delay Value (SDM 13.4.44).
pub const TADV: Rw = rw("TADV", 0x382c);
/// First Multicast Table Array entry (SDM 13.5.1); 128 entries of 32 bits.
pub const MTA_BASE: usize = 0x5200;
/// Entries in the Multicast Table Array.
pub const MTA_ENTRIES: usize = 128;
/// Receive Address Low of entry 0 (SDM 13.5.2); entries are 8 bytes apart.
pub const RAL0: Rw = rw("RAL0", 0x5400);
/// Receive Address High of entry 0 (SDM 13.5.3).
pub const RAH0: Rw = rw("RAH0", 0x5404);
/// Receive address entries (RAL/RAH pairs).
pub const RA_ENTRIES: usize = 16;

/// The `n`th Multicast Table Array entry (`None` past the table).
pub const fn mta(n: usize) -> Option<Rw> {
    if n < MTA_ENTRIES {
        Some(rw("MTA", MTA_BASE + 4 * n))
    } else {
        None
    }
}

/// The `n`th receive address pair, (RAL, RAH) (`None` past the table).
pub const fn ra(n: usize) -> Option<(Rw, Rw)> {
    if n < RA_ENTRIES {
        Some((
            rw("RAL", RAL0.0.offset + 8 * n),
            rw("RAH", RAH0.0.offset + 8 * n),
        ))
    } else {
        None
    }
}

/// CTRL bits (SDM 13.4.1, table 13-3).
pub mod ctrl {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link reset.
    pub const LRST: u32 = 1 << 3;
    /// Auto-speed detection enable.
    pub const ASDE: u32 = 1 << 5;
    /// Set link up.
    pub const SLU: u32 = 1 << 6;
    /// Invert loss-of-signal.
    pub const ILOS: u32 = 1 << 7;
    /// Force speed.
    pub const FRCSPD: u32 = 1 << 11;
    /// Force duplex.
    pub const FRCDPLX: u32 = 1 << 12;
    /// Device reset, self-clearing (bit 26).
    pub const RST: u32 = 1 << 26;
    /// VLAN mode enable.
    pub const VME: u32 = 1 << 30;
    /// PHY reset.
    pub const PHY_RST: u32 = 1 << 31;
    /// Bit number of RST, for `Untrusted::bit`.
    pub const RST_BIT: u32 = 26;
}

/// STATUS bits (SDM 13.4.2, table 13-5).
pub mod status {
    /// Full duplex (bit number).
    pub const FD_BIT: u32 = 0;
    /// Link up (bit number).
    pub const LU_BIT: u32 = 1;
    /// Link speed field shift (bits 7:6).
    pub const SPEED_SHIFT: u32 = 6;
    /// Link speed field width.
    pub const SPEED_WIDTH: u32 = 2;
}

/// EECD bits (SDM 13.4.3).
pub mod eecd {
    /// EEPROM present (bit number).
    pub const PRES_BIT: u32 = 8;
}

/// EERD fields (SDM 13.4.4; 82540/82545/82546 layout).
pub mod eerd {
    /// Start read.
    pub const START: u32 = 1 << 0;
    /// Read done (bit number).
    pub const DONE_BIT: u32 = 4;
    /// Word address shift (bits 15:8).
    pub const ADDR_SHIFT: u32 = 8;
    /// Data shift (bits 31:16).
    pub const DATA_SHIFT: u32 = 16;
}

/// EEPROM map (SDM 5.6, table 5-2).
pub mod eeprom {
    /// Words 0..=2: the Ethernet address, little-endian byte pairs.
    pub const MAC_WORDS: u8 = 3;
    /// The checksum word; words 0..=0x3f sum to [`SUM`].
    pub const CHECKSUM_WORD: u8 = 0x3f;
    /// Words covered by the checksum.
    pub const WORDS: u8 = 0x40;
    /// What the words 0..=0x3f add up to (SDM 5.6.21).
    pub const SUM: u16 = 0xbaba;
}

/// Interrupt cause bits, shared by ICR, ICS, IMS, IMC (SDM 13.4.17).
pub mod icr {
    /// Transmit descriptor written back.
    pub const TXDW: u32 = 1 << 0;
    /// Link status change.
    pub const LSC: u32 = 1 << 2;
    /// Receive overrun.
    pub const RXO: u32 = 1 << 6;
    /// Receiver timer interrupt (frame received).
    pub const RXT0: u32 = 1 << 7;
    /// Every cause: what IMC is written with to mask them all.
    pub const ALL: u32 = 0xffff_ffff;
}

/// RCTL bits (SDM 13.4.22, table 13-67).
pub mod rctl {
    /// Receiver enable.
    pub const EN: u32 = 1 << 1;
    /// Store bad packets.
    pub const SBP: u32 = 1 << 2;
    /// Unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// Multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// Long packet enable.
    pub const LPE: u32 = 1 << 5;
    /// Loopback mode field (bits 7:6).
    pub const LBM_MASK: u32 = 3 << 6;
    /// Receive descriptor minimum threshold: one half of RDLEN.
    pub const RDMTS_HALF: u32 = 0 << 8;
    /// Multicast offset field shift (bits 13:12).
    pub const MO_SHIFT: u32 = 12;
    /// Broadcast accept mode.
    pub const BAM: u32 = 1 << 15;
    /// Buffer size field (bits 17:16); 00 is 2048 bytes with BSEX clear.
    pub const BSIZE_MASK: u32 = 3 << 16;
    /// Buffer size 2048 bytes (BSEX = 0).
    pub const BSIZE_2048: u32 = 0 << 16;
    /// Buffer size extension (×16).
    pub const BSEX: u32 = 1 << 25;
    /// Strip Ethernet CRC from incoming packets.
    pub const SECRC: u32 = 1 << 26;
}

/// TCTL bits (SDM 13.4.33, table 13-76).
pub mod tctl {
    /// Transmit enable.
    pub const EN: u32 = 1 << 1;
    /// Pad short packets.
    pub const PSP: u32 = 1 << 3;
    /// Collision threshold shift (bits 11:4).
    pub const CT_SHIFT: u32 = 4;
    /// Collision distance shift (bits 21:12).
    pub const COLD_SHIFT: u32 = 12;
    /// Re-transmit on late collision.
    pub const RTLC: u32 = 1 << 24;
}

/// TIPG for the 82540/82545 copper PHY: IPGT 10, IPGR1 8, IPGR2 6 (SDM 13.4.34).
pub const TIPG_COPPER: u32 = 10 | (8 << 10) | (6 << 20);

/// PCI identity of the devices this driver knows (QEMU's e1000 is the 82540EM).
pub mod id {
    /// Intel.
    pub const VENDOR_INTEL: u16 = 0x8086;
    /// 82540EM desktop (QEMU `-device e1000`).
    pub const DEVICE_82540EM: u16 = 0x100e;
    /// Size of BAR0, the memory-mapped register block.
    pub const BAR0_SIZE: usize = 128 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_end_where_the_spec_says() {
        assert_eq!(mta(127).map(|r| r.reg().offset), Some(0x53fc));
        assert!(mta(128).is_none());
        assert_eq!(
            ra(15).map(|(l, h)| (l.reg().offset, h.reg().offset)),
            Some((0x5478, 0x547c))
        );
        assert!(ra(16).is_none());
        assert_eq!(TIPG_COPPER, 0x0060_200a);
    }
}
