//! Register declarations of the 8254x (e1000) MAC, apart from any logic.
//!
//! Offsets and bits follow the Intel 8254x Family of Gigabit Ethernet
//! Controllers Software Developer's Manual (SDM), section 13 ("Register
//! Descriptions"). The block is declared with `register_block!`, which checks
//! alignment, overlaps, bounds and field widths at compile time and gives each
//! register exactly the methods its access allows (STATUS has no `write`, IMC no
//! `read`, ICR only `read_and_clear`). The multicast table and the receive
//! address table are arrays, reached by offset through [`mta_offset`] and
//! [`ra_offsets`].

use paranoid::register_block;

register_block! {
    /// The 8254x MAC registers in BAR0 (SDM 13.4, 13.5).
    pub struct E1000Regs, size = 0x20000;

    /// Device Control.
    CTRL @ 0x0000: u32, rw {
        /// Full duplex.
        FD: 0,
        /// Link reset.
        LRST: 3,
        /// Auto-speed detection enable.
        ASDE: 5,
        /// Set link up.
        SLU: 6,
        /// Invert loss-of-signal.
        ILOS: 7,
        /// Force speed.
        FRCSPD: 11,
        /// Force duplex.
        FRCDPLX: 12,
        /// Device reset, self-clearing.
        RST: 26,
        /// VLAN mode enable.
        VME: 30,
        /// PHY reset.
        PHY_RST: 31,
    }
    /// Device Status.
    STATUS @ 0x0008: u32, ro {
        /// Full duplex.
        FD: 0,
        /// Link up.
        LU: 1,
        /// Link speed: 00 10 Mb/s, 01 100 Mb/s, 1x 1000 Mb/s.
        SPEED: 6..=7,
    }
    /// EEPROM/Flash Control.
    EECD @ 0x0010: u32, rw {
        /// Microwire clock (SK), driven by software.
        SK: 0,
        /// Microwire chip select (CS).
        CS: 1,
        /// Microwire data in (DI: from us to the EEPROM).
        DI: 2,
        /// Microwire data out (DO: from the EEPROM to us).
        DO: 3,
        /// EEPROM present.
        PRES: 8,
    }
    /// EEPROM Read (82540/82545/82546 layout).
    EERD @ 0x0014: u32, rw {
        /// Start read.
        START: 0,
        /// Read done.
        DONE: 4,
        /// Word address.
        ADDR: 8..=15,
        /// Data read.
        DATA: 16..=31,
    }
    /// MDI Control: one PHY register read or write (SDM 13.4.7).
    MDIC @ 0x0020: u32, rw {
        /// Data written, or read back.
        DATA: 0..=15,
        /// PHY register address.
        REGADD: 16..=20,
        /// PHY address (the internal PHY is 1).
        PHYADD: 21..=25,
        /// Opcode: 01 write, 10 read.
        OP: 26..=27,
        /// Ready: the operation completed.
        R: 28,
        /// Interrupt on completion.
        I: 29,
        /// Error: the PHY did not answer.
        E: 30,
    }
    /// Interrupt Cause Read: reading clears it.
    ICR @ 0x00c0: u32, rc;
    /// Interrupt Throttling.
    ITR @ 0x00c4: u32, rw;
    /// Interrupt Cause Set.
    ICS @ 0x00c8: u32, wo;
    /// Interrupt Mask Set/Read.
    IMS @ 0x00d0: u32, rw;
    /// Interrupt Mask Clear.
    IMC @ 0x00d8: u32, wo;
    /// Receive Control.
    RCTL @ 0x0100: u32, rw {
        /// Receiver enable.
        EN: 1,
        /// Store bad packets.
        SBP: 2,
        /// Unicast promiscuous.
        UPE: 3,
        /// Multicast promiscuous.
        MPE: 4,
        /// Long packet enable.
        LPE: 5,
        /// Loopback mode.
        LBM: 6..=7,
        /// Receive descriptor minimum threshold size.
        RDMTS: 8..=9,
        /// Multicast offset.
        MO: 12..=13,
        /// Broadcast accept mode.
        BAM: 15,
        /// Receive buffer size (with BSEX).
        BSIZE: 16..=17,
        /// Buffer size extension.
        BSEX: 25,
        /// Strip Ethernet CRC.
        SECRC: 26,
    }
    /// Transmit Control.
    TCTL @ 0x0400: u32, rw {
        /// Transmit enable.
        EN: 1,
        /// Pad short packets.
        PSP: 3,
        /// Collision threshold.
        CT: 4..=11,
        /// Collision distance.
        COLD: 12..=21,
        /// Re-transmit on late collision.
        RTLC: 24,
    }
    /// Transmit Inter-Packet Gap.
    TIPG @ 0x0410: u32, rw;
    /// Receive Descriptor Base Address Low.
    RDBAL @ 0x2800: u32, rw;
    /// Receive Descriptor Base Address High.
    RDBAH @ 0x2804: u32, rw;
    /// Receive Descriptor Length (bytes, a multiple of 128).
    RDLEN @ 0x2808: u32, rw;
    /// Receive Descriptor Head.
    RDH @ 0x2810: u32, rw;
    /// Receive Descriptor Tail.
    RDT @ 0x2818: u32, rw;
    /// Receive Delay Timer.
    RDTR @ 0x2820: u32, rw;
    /// Receive Interrupt Absolute Delay Timer.
    RADV @ 0x282c: u32, rw;
    /// Transmit Descriptor Base Address Low.
    TDBAL @ 0x3800: u32, rw;
    /// Transmit Descriptor Base Address High.
    TDBAH @ 0x3804: u32, rw;
    /// Transmit Descriptor Length (bytes, a multiple of 128).
    TDLEN @ 0x3808: u32, rw;
    /// Transmit Descriptor Head.
    TDH @ 0x3810: u32, rw;
    /// Transmit Descriptor Tail.
    TDT @ 0x3818: u32, rw;
    /// Transmit Interrupt Delay Value.
    TIDV @ 0x3820: u32, rw;
    /// Transmit Absolute Interrupt Delay Value.
    TADV @ 0x382c: u32, rw;
    /// Receive Address Low, entry 0.
    RAL0 @ 0x5400: u32, rw;
    /// Receive Address High, entry 0.
    RAH0 @ 0x5404: u32, rw {
        /// Address valid.
        AV: 31,
    }
}

/// First Multicast Table Array entry (SDM 13.5); 128 entries of 32 bits.
pub const MTA_BASE: usize = 0x5200;
/// Entries in the Multicast Table Array.
pub const MTA_ENTRIES: usize = 128;
/// Receive address pairs (RAL/RAH), 8 bytes apart from RAL0.
pub const RA_ENTRIES: usize = 16;

/// Offset of the `n`th Multicast Table Array entry (`None` past the table).
pub const fn mta_offset(n: usize) -> Option<usize> {
    if n < MTA_ENTRIES {
        Some(MTA_BASE + 4 * n)
    } else {
        None
    }
}

/// Offsets of the `n`th receive address pair, (RAL, RAH) (`None` past the table).
pub const fn ra_offsets(n: usize) -> Option<(usize, usize)> {
    if n < RA_ENTRIES {
        let ral = e1000_regs::ral0::OFFSET + 8 * n;
        Some((ral, ral + 4))
    } else {
        None
    }
}

/// CTRL bits as masks.
pub mod ctrl {
    use super::e1000_regs::ctrl as f;
    /// Full duplex.
    pub const FD: u32 = f::FD.mask();
    /// Link reset.
    pub const LRST: u32 = f::LRST.mask();
    /// Auto-speed detection enable.
    pub const ASDE: u32 = f::ASDE.mask();
    /// Set link up.
    pub const SLU: u32 = f::SLU.mask();
    /// Invert loss-of-signal.
    pub const ILOS: u32 = f::ILOS.mask();
    /// Force speed.
    pub const FRCSPD: u32 = f::FRCSPD.mask();
    /// Force duplex.
    pub const FRCDPLX: u32 = f::FRCDPLX.mask();
    /// Device reset, self-clearing.
    pub const RST: u32 = f::RST.mask();
    /// VLAN mode enable.
    pub const VME: u32 = f::VME.mask();
    /// PHY reset.
    pub const PHY_RST: u32 = f::PHY_RST.mask();
}

/// EERD fields.
pub mod eerd {
    use super::e1000_regs::eerd as f;
    /// Start read.
    pub const START: u32 = f::START.mask();
    /// Read done (bit number).
    pub const DONE_BIT: u32 = f::DONE.shift();
    /// Word address shift.
    pub const ADDR_SHIFT: u32 = f::ADDR.shift();
    /// Data shift.
    pub const DATA_SHIFT: u32 = f::DATA.shift();
}

/// EECD Microwire bits as masks (SDM 13.4.3).
pub mod eecd {
    use super::e1000_regs::eecd as f;
    /// Clock.
    pub const SK: u32 = f::SK.mask();
    /// Chip select.
    pub const CS: u32 = f::CS.mask();
    /// Data to the EEPROM.
    pub const DI: u32 = f::DI.mask();
    /// Data from the EEPROM.
    pub const DO: u32 = f::DO.mask();
    /// Microwire READ opcode (110b, sent MSB first after the start bit 1).
    pub const READ_OPCODE: u32 = 0b110;
    /// Opcode bits sent.
    pub const OPCODE_BITS: u32 = 3;
    /// Address bits of a 64-word (93C46-class) EEPROM.
    pub const ADDRESS_BITS: u32 = 6;
    /// Data bits per word.
    pub const DATA_BITS: u32 = 16;
}

/// MDIC fields (SDM 13.4.7).
pub mod mdic {
    use super::e1000_regs::mdic as f;
    /// The internal PHY's address.
    pub const PHY_INTERNAL: u32 = 1;
    /// Read opcode, in place.
    pub const OP_READ: u32 = f::OP.bits(0b10);
    /// Ready.
    pub const READY: u32 = f::R.mask();
    /// Error.
    pub const ERROR: u32 = f::E.mask();
    /// PHY_ID1 (PHY register 2): OUI bits 3..=18.
    pub const PHY_ID1: u8 = 2;
    /// PHY_ID2 (PHY register 3): OUI bits 19..=24, model, revision.
    pub const PHY_ID2: u8 = 3;
    /// A read of PHY register `reg` of the internal PHY.
    pub const fn read(reg: u8) -> u32 {
        OP_READ | f::PHYADD.bits(PHY_INTERNAL) | f::REGADD.bits(reg as u32 & 0x1f)
    }
}

/// EEPROM map (SDM 5.6).
pub mod eeprom {
    /// Words 0..=2: the Ethernet address, little-endian byte pairs.
    pub const MAC_WORDS: u8 = 3;
    /// The checksum word; words 0..=0x3f sum to [`SUM`].
    pub const CHECKSUM_WORD: u8 = 0x3f;
    /// Words covered by the checksum.
    pub const WORDS: u8 = 0x40;
    /// What the words 0..=0x3f add up to.
    pub const SUM: u16 = 0xbaba;
}

/// Interrupt cause bits, shared by ICR, ICS, IMS, IMC (SDM 13.4).
pub mod icr {
    /// Transmit descriptor written back.
    pub const TXDW: u32 = 1 << 0;
    /// Transmit queue empty.
    pub const TXQE: u32 = 1 << 1;
    /// Link status change.
    pub const LSC: u32 = 1 << 2;
    /// Receive overrun.
    pub const RXO: u32 = 1 << 6;
    /// Receiver timer interrupt (frame received).
    pub const RXT0: u32 = 1 << 7;
    /// Every cause: what IMC is written with to mask them all.
    pub const ALL: u32 = 0xffff_ffff;
}

/// RCTL bits as masks.
pub mod rctl {
    use super::e1000_regs::rctl as f;
    /// Receiver enable.
    pub const EN: u32 = f::EN.mask();
    /// Unicast promiscuous.
    pub const UPE: u32 = f::UPE.mask();
    /// Multicast promiscuous.
    pub const MPE: u32 = f::MPE.mask();
    /// Multicast offset field shift.
    pub const MO_SHIFT: u32 = f::MO.shift();
    /// Broadcast accept mode.
    pub const BAM: u32 = f::BAM.mask();
    /// Buffer size field.
    pub const BSIZE_MASK: u32 = f::BSIZE.mask();
    /// Buffer size 2048 bytes (BSIZE 00, BSEX 0).
    pub const BSIZE_2048: u32 = f::BSIZE.bits(0);
    /// Receive descriptor minimum threshold: one half of RDLEN.
    pub const RDMTS_HALF: u32 = f::RDMTS.bits(0);
    /// Buffer size extension (×16).
    pub const BSEX: u32 = f::BSEX.mask();
    /// Strip Ethernet CRC from incoming packets.
    pub const SECRC: u32 = f::SECRC.mask();
}

/// TCTL bits as masks.
pub mod tctl {
    use super::e1000_regs::tctl as f;
    /// Transmit enable.
    pub const EN: u32 = f::EN.mask();
    /// Pad short packets.
    pub const PSP: u32 = f::PSP.mask();
    /// Re-transmit on late collision.
    pub const RTLC: u32 = f::RTLC.mask();
    /// Collision threshold 15 and collision distance 63 (full duplex), the
    /// values Linux uses.
    pub const CT_COLD: u32 = f::CT.bits(0x0f) | f::COLD.bits(0x3f);
}

/// RAH.AV as a mask.
pub const RAH_AV: u32 = e1000_regs::rah0::AV.mask();

/// TIPG for the 82540/82545 copper PHY: IPGT 10, IPGR1 8, IPGR2 6 (SDM 13.4, TIPG).
pub const TIPG_COPPER: u32 = 10 | (8 << 10) | (6 << 20);

/// PCI identity of the parts this driver knows (see [`crate::part`]).
pub mod id {
    /// Intel.
    pub const VENDOR_INTEL: u16 = 0x8086;
    /// 82540EM desktop (QEMU `-device e1000`).
    pub const DEVICE_82540EM: u16 = 0x100e;
    /// 82544GC copper (QEMU `-device e1000-82544gc`).
    pub const DEVICE_82544GC: u16 = 0x100c;
    /// 82545EM copper (QEMU `-device e1000-82545em`).
    pub const DEVICE_82545EM: u16 = 0x100f;
    /// EEPROM words holding the device id (SDM 5.6, table 5-2).
    pub const EEPROM_DEVICE_WORDS: [usize; 2] = [11, 13];
    /// EEPROM words holding the vendor id.
    pub const EEPROM_VENDOR_WORDS: [usize; 2] = [12, 14];
    /// Size of BAR0, the memory-mapped register block.
    pub const BAR0_SIZE: usize = 128 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_fields_where_the_spec_puts_them() {
        assert_eq!(mta_offset(127), Some(0x53fc));
        assert!(mta_offset(128).is_none());
        assert_eq!(ra_offsets(15), Some((0x5478, 0x547c)));
        assert!(ra_offsets(16).is_none());
        assert_eq!(TIPG_COPPER, 0x0060_200a);
        assert_eq!(ctrl::RST, 1 << 26);
        assert_eq!(eerd::DATA_SHIFT, 16);
        assert_eq!(tctl::CT_COLD, 0x0003_f0f0);
        assert_eq!(RAH_AV, 1 << 31);
        assert_eq!(E1000Regs::<paranoid::mmio::Mmio>::SIZE, id::BAR0_SIZE);
    }
}
