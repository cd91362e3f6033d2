//! The remapping unit's registers (VT-d 4.1, chapter 11): offsets, bits and the
//! validated decoding of CAP and ECAP.

use paranoid::Untrusted;

use crate::VtdError;

/// VER_REG: architecture version (32).
pub const VER: usize = 0x00;
/// CAP_REG: capabilities (64).
pub const CAP: usize = 0x08;
/// ECAP_REG: extended capabilities (64).
pub const ECAP: usize = 0x10;
/// GCMD_REG: global command (32, write-only).
pub const GCMD: usize = 0x18;
/// GSTS_REG: global status (32).
pub const GSTS: usize = 0x1c;
/// RTADDR_REG: root table address (64).
pub const RTADDR: usize = 0x20;
/// CCMD_REG: context command (64).
pub const CCMD: usize = 0x28;
/// FSTS_REG: fault status (32).
pub const FSTS: usize = 0x34;
/// FECTL_REG: fault event control (32).
pub const FECTL: usize = 0x38;
/// IQH_REG: invalidation queue head (64).
pub const IQH: usize = 0x80;
/// IQT_REG: invalidation queue tail (64).
pub const IQT: usize = 0x88;
/// IQA_REG: invalidation queue address (64).
pub const IQA: usize = 0x90;
/// ICS_REG: invalidation completion status (32).
pub const ICS: usize = 0x9c;
/// The architectural registers at fixed offsets end here; IOTLB and fault
/// recording registers placed by CAP.FRO/ECAP.IRO must not overlap them.
pub const FIXED_END: usize = 0xa0;
/// Offset of IOTLB_REG inside the IOTLB register pair at ECAP.IRO × 16 (11.4.8).
pub const IOTLB_REG: usize = 8;
/// Offset of IVA_REG inside that pair.
pub const IVA_REG: usize = 0;

bitflags::bitflags! {
    /// GCMD_REG and GSTS_REG bits (same positions: 11.4.4, 11.4.5).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Global: u32 {
        /// Translation enable / status.
        const TE = 1 << 31;
        /// Set root table pointer / status.
        const SRTP = 1 << 30;
        /// Set fault log / status.
        const SFL = 1 << 29;
        /// Enable advanced fault logging / status.
        const EAFL = 1 << 28;
        /// Write buffer flush / status.
        const WBF = 1 << 27;
        /// Queued invalidation enable / status.
        const QIE = 1 << 26;
        /// Interrupt remapping enable / status.
        const IRE = 1 << 25;
        /// Set interrupt remap table pointer / status.
        const SIRTP = 1 << 24;
        /// Compatibility format interrupts / status.
        const CFI = 1 << 23;
    }
}

impl Global {
    /// Enables that stay set in GCMD and must be replayed from GSTS on every
    /// command write (the one-shot bits SRTP, SFL, WBF, SIRTP must not be).
    pub const PERSISTENT: Self = Self::TE
        .union(Self::EAFL)
        .union(Self::QIE)
        .union(Self::IRE)
        .union(Self::CFI);
}

bitflags::bitflags! {
    /// FSTS_REG bits (11.4.9.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Fsts: u32 {
        /// Primary fault overflow (RW1C).
        const PFO = 1 << 0;
        /// Primary pending fault (RO: some FRCD has F set).
        const PPF = 1 << 1;
        /// Advanced fault overflow.
        const AFO = 1 << 2;
        /// Advanced pending fault.
        const APF = 1 << 3;
        /// Invalidation queue error (RW1C).
        const IQE = 1 << 4;
        /// Invalidation completion error (RW1C).
        const ICE = 1 << 5;
        /// Invalidation time-out error (RW1C).
        const ITE = 1 << 6;
    }
}

impl Fsts {
    /// The write-one-to-clear error bits.
    pub const W1C: Self = Self::PFO
        .union(Self::AFO)
        .union(Self::IQE)
        .union(Self::ICE)
        .union(Self::ITE);
}

/// FSTS.FRI: fault record index (bits 15:8).
pub fn fsts_fri(fsts: Untrusted<u32>) -> Untrusted<u32> {
    fsts.field(8, 8)
}

/// FECTL.IM: interrupt mask.
pub const FECTL_IM: u32 = 1 << 31;

/// CCMD fields (11.4.4.1).
pub mod ccmd {
    /// Invalidate context cache: set by software, cleared by hardware when done.
    pub const ICC: u64 = 1 << 63;
    /// CIRG: global.
    pub const GLOBAL: u64 = 1 << 61;
    /// CIRG: domain-selective.
    pub const DOMAIN: u64 = 2 << 61;
    /// CIRG: device-selective.
    pub const DEVICE: u64 = 3 << 61;
    /// CAIG field (actual granularity, 0: request rejected).
    pub const CAIG_SHIFT: u32 = 59;
    /// SID field.
    pub const SID_SHIFT: u32 = 16;
}

/// IOTLB_REG fields (11.4.8.1).
pub mod iotlb {
    /// Invalidate IOTLB: set by software, cleared by hardware when done.
    pub const IVT: u64 = 1 << 63;
    /// IIRG: global.
    pub const GLOBAL: u64 = 1 << 60;
    /// IIRG: domain-selective.
    pub const DOMAIN: u64 = 2 << 60;
    /// IIRG: page-selective-within-domain.
    pub const PAGE: u64 = 3 << 60;
    /// IAIG field (actual granularity, 0: request rejected).
    pub const IAIG_SHIFT: u32 = 57;
    /// Drain reads.
    pub const DR: u64 = 1 << 49;
    /// Drain writes.
    pub const DW: u64 = 1 << 48;
    /// DID field.
    pub const DID_SHIFT: u32 = 32;
}

/// RTADDR.TTM (bits 11:10): translation table mode; 00 is the legacy mode this
/// crate builds and adopts.
pub const RTADDR_TTM_MASK: u64 = 3 << 10;

/// Second-level paging depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Levels {
    /// 3 levels, 39-bit guest addresses (context AW = 1).
    Three,
    /// 4 levels, 48-bit guest addresses (context AW = 2).
    Four,
}

impl Levels {
    /// Number of table levels.
    pub const fn count(self) -> u32 {
        match self {
            Self::Three => 3,
            Self::Four => 4,
        }
    }
    /// Address bits translated.
    pub const fn width(self) -> u8 {
        match self {
            Self::Three => 39,
            Self::Four => 48,
        }
    }
    /// The context entry AW encoding.
    pub const fn aw(self) -> u64 {
        match self {
            Self::Three => 1,
            Self::Four => 2,
        }
    }
    /// Decodes a context entry AW value.
    pub const fn from_aw(aw: u64) -> Option<Self> {
        match aw {
            1 => Some(Self::Three),
            2 => Some(Self::Four),
            _ => None,
        }
    }
}

/// Decoded and validated CAP and ECAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// CAP as read (for reports).
    pub cap: u64,
    /// ECAP as read (for reports).
    pub ecap: u64,
    /// Number of domain ids (CAP.ND: 2^(4 + 2·ND)).
    pub domains: u32,
    /// CAP.RWBF: table updates need a write-buffer flush.
    pub rwbf: bool,
    /// CAP.CM: caching mode (not-present entries may be cached, so making an
    /// entry present needs an invalidation too).
    pub caching_mode: bool,
    /// CAP.SAGAW bit 1: 3-level tables.
    pub three_level: bool,
    /// CAP.SAGAW bit 2: 4-level tables.
    pub four_level: bool,
    /// CAP.MGAW + 1: largest guest address width.
    pub mgaw: u8,
    /// Byte offset of the first fault recording register (CAP.FRO × 16).
    pub fault_offset: usize,
    /// Number of fault recording registers (CAP.NFR + 1).
    pub fault_records: usize,
    /// CAP.PSI: page-selective IOTLB invalidation.
    pub psi: bool,
    /// CAP.MAMV: largest page-selective invalidation, 2^MAMV pages.
    pub mamv: u8,
    /// ECAP.C: page walks snoop the CPU caches.
    pub coherent: bool,
    /// ECAP.QI: queued invalidation.
    pub queued_invalidation: bool,
    /// ECAP.PT: pass-through context entries.
    pub pass_through: bool,
    /// Byte offset of the IOTLB register pair (ECAP.IRO × 16).
    pub iotlb_offset: usize,
}

impl Capabilities {
    /// Decodes CAP and ECAP of a unit whose register block is `block_size`
    /// bytes, rejecting values no real unit has.
    ///
    /// # Errors
    ///
    /// [`VtdError::RegisterGone`] when either reads all-ones;
    /// [`VtdError::CannotTranslate`] when SAGAW is 0 (no second-level
    /// translation at all);
    /// [`VtdError::BadCapability`] for ND = 7, no 3- or 4-level support in SAGAW,
    /// MGAW below 39 bits, fault recording or IOTLB registers overlapping the
    /// fixed registers or leaving the block, MAMV past 63.
    pub fn decode(
        cap: Untrusted<u64>,
        ecap: Untrusted<u64>,
        block_size: usize,
    ) -> Result<Self, VtdError> {
        let cap = cap
            .not_all_ones()
            .map_err(|_| VtdError::RegisterGone { register: "CAP" })?;
        let ecap = ecap
            .not_all_ones()
            .map_err(|_| VtdError::RegisterGone { register: "ECAP" })?;
        let bad = |field: &'static str, value: Untrusted<u64>| VtdError::BadCapability {
            field,
            value: value.into_raw_for_report(),
        };
        let nd = cap.field(0, 3);
        let nd = nd.in_range(0..=6).map_err(|_| bad("CAP.ND", nd))?;
        let sagaw = cap.field(8, 5);
        if sagaw.is(0) {
            return Err(VtdError::CannotTranslate {
                cap: cap.into_raw_for_report(),
            });
        }
        let three_level = sagaw.bit(1);
        let four_level = sagaw.bit(2);
        if !three_level && !four_level {
            return Err(bad("CAP.SAGAW", sagaw));
        }
        let mgaw = cap.field(16, 6);
        let mgaw = mgaw.in_range(38..=63).map_err(|_| bad("CAP.MGAW", mgaw))? as u8 + 1;
        let fro = cap.field(24, 10);
        let nfr = cap.field(40, 8);
        let fault_records = nfr.in_range(0..=255).map_err(|_| bad("CAP.NFR", nfr))? as usize + 1;
        // Each fault record is 16 bytes; all must lie after the fixed registers
        // and inside the block.
        let fault_offset =
            fro.validate(|f| frcd_offset(f, fault_records, block_size).ok_or(bad("CAP.FRO", fro)))?;
        let iro = ecap.field(8, 10);
        let iotlb_offset = iro.validate(|i| {
            iotlb_offset(i, fault_offset, fault_records, block_size).ok_or(bad("ECAP.IRO", iro))
        })?;
        let mamv = cap.field(48, 6);
        let mamv = mamv.in_range(0..=63).map_err(|_| bad("CAP.MAMV", mamv))? as u8;
        Ok(Self {
            cap: cap.into_raw_for_report(),
            ecap: ecap.into_raw_for_report(),
            domains: 1u32 << (4 + 2 * nd),
            rwbf: cap.bit(4),
            caching_mode: cap.bit(7),
            three_level,
            four_level,
            mgaw,
            fault_offset,
            fault_records,
            psi: cap.bit(39),
            mamv,
            coherent: ecap.bit(0),
            queued_invalidation: ecap.bit(1),
            pass_through: ecap.bit(6),
            iotlb_offset,
        })
    }

    /// True when context entries may use `levels`.
    pub fn supports(&self, levels: Levels) -> bool {
        match levels {
            Levels::Three => self.three_level,
            Levels::Four => self.four_level,
        }
    }

    /// The shallowest supported paging depth that translates addresses below
    /// `end` (exclusive), within MGAW.
    pub fn levels_for(&self, end: u64) -> Option<Levels> {
        [Levels::Three, Levels::Four].into_iter().find(|&l| {
            let width = l.width().min(self.mgaw);
            self.supports(l) && (width >= 64 || end <= 1u64 << width)
        })
    }
}

/// Byte offset of the fault records, if they lie after the fixed registers and
/// inside the block.
fn frcd_offset(fro: u64, records: usize, block_size: usize) -> Option<usize> {
    let off = usize::try_from(fro).ok()?.checked_mul(16)?;
    let end = off.checked_add(records.checked_mul(16)?)?;
    (off >= FIXED_END && end <= block_size).then_some(off)
}

/// Byte offset of the IOTLB registers, if they lie after the fixed registers,
/// inside the block and apart from the fault records.
fn iotlb_offset(iro: u64, frcd: usize, records: usize, block_size: usize) -> Option<usize> {
    let off = usize::try_from(iro).ok()?.checked_mul(16)?;
    let overlaps_faults = off < frcd + records * 16 && frcd < off + 16;
    (off >= FIXED_END && off + 16 <= block_size && !overlaps_faults).then_some(off)
}

/// The CAP value of QEMU 7.2's intel-iommu (aw-bits=39): ND = 6, SAGAW 3-level,
/// MGAW 39, FRO at 0x220, one fault record, PSI with MAMV 18, 2 MiB and 1 GiB
/// pages, read/write draining.
pub const QEMU_CAP: u64 =
    6 | 0x2 << 8 | 38 << 16 | (0x220 / 16) << 24 | 0x3 << 34 | 1 << 39 | 18 << 48 | 3 << 54;
/// The ECAP value of QEMU 7.2's intel-iommu with intremap=off: QI, device TLB,
/// pass-through, snoop control, IOTLB registers at 0xf0, MHMV 15.
pub const QEMU_ECAP: u64 = 1 << 1 | 1 << 2 | 1 << 6 | 1 << 7 | (0xf0 / 16) << 8 | 0xf << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(cap: u64, ecap: u64) -> Result<Capabilities, VtdError> {
        Capabilities::decode(Untrusted::new(cap), Untrusted::new(ecap), 0x1000)
    }

    #[test]
    fn qemu_values_decode() {
        let c = decode(QEMU_CAP, QEMU_ECAP).unwrap();
        assert_eq!(c.domains, 65536);
        assert_eq!((c.fault_offset, c.fault_records), (0x220, 1));
        assert_eq!(c.iotlb_offset, 0xf0);
        assert_eq!(c.mgaw, 39);
        assert!(c.three_level && !c.four_level);
        assert!(c.queued_invalidation && c.pass_through && c.psi);
        assert_eq!(c.mamv, 18);
        assert_eq!(c.levels_for(1 << 39), Some(Levels::Three));
        assert_eq!(c.levels_for((1 << 39) + 1), None);
    }

    #[test]
    fn nonsense_is_rejected() {
        let gone = decode(u64::MAX, QEMU_ECAP);
        assert_eq!(gone, Err(VtdError::RegisterGone { register: "CAP" }));
        let field = |r: Result<Capabilities, VtdError>| match r {
            Err(VtdError::BadCapability { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(decode(QEMU_CAP | 7, QEMU_ECAP)), "CAP.ND");
        // SAGAW 0: a unit that translates nothing (intel-iommu,
        // dma-translation=off), told apart from a nonsense value; only a
        // 5-level page walk (bit 3) is one we cannot use.
        assert!(matches!(
            decode(QEMU_CAP & !(0x1f << 8), QEMU_ECAP),
            Err(VtdError::CannotTranslate { .. })
        ));
        assert_eq!(
            field(decode(QEMU_CAP & !(0x1f << 8) | 0x8 << 8, QEMU_ECAP)),
            "CAP.SAGAW"
        );
        assert_eq!(
            field(decode(QEMU_CAP & !(0x3f << 16) | 30 << 16, QEMU_ECAP)),
            "CAP.MGAW"
        );
        assert_eq!(
            field(decode(QEMU_CAP & !(0x3ff << 24), QEMU_ECAP)),
            "CAP.FRO"
        );
        assert_eq!(
            field(decode(QEMU_CAP | 0x3ff << 24, QEMU_ECAP)),
            "CAP.FRO",
            "records past the block"
        );
        assert_eq!(
            field(decode(QEMU_CAP | 0xff << 40, QEMU_ECAP)),
            "CAP.FRO",
            "256 records do not fit after 0x220"
        );
        assert_eq!(
            field(decode(QEMU_CAP, QEMU_ECAP & !(0x3ff << 8))),
            "ECAP.IRO"
        );
        assert_eq!(
            field(decode(QEMU_CAP, QEMU_ECAP & !(0x3ff << 8) | 0x22 << 8)),
            "ECAP.IRO",
            "IOTLB registers on top of the fault records"
        );
        let four = decode(QEMU_CAP | 0x4 << 8 | 47 << 16, QEMU_ECAP).unwrap();
        assert_eq!(four.levels_for(1 << 40), Some(Levels::Four));
    }
}
