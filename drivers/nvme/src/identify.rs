//! Identify data structures (NVMe 1.4, 5.15.2): the few fields the driver uses,
//! each validated before it sizes anything.

use paranoid::dma::{DeviceWrites, DmaBuffer, Window};
use paranoid::Untrusted;

use crate::error::NvmeError;
use crate::queue::NVME_PAGE;

/// The largest transfer the driver issues in one command, whatever MDTS allows:
/// 512 pages (2 MiB), so one PRP list page (512 entries) always suffices, even
/// when PRP1 starts inside a page.
pub const DRIVER_MAX_TRANSFER: u32 = 512 * NVME_PAGE as u32;
/// Smallest logical block (LBAF.LBADS = 9).
pub const MIN_LBADS: u8 = 9;
/// Largest logical block the driver supports (LBAF.LBADS = 12, one page).
pub const MAX_LBADS: u8 = 12;
/// Identify Controller offset of the Serial Number (SN, bytes 23:04).
pub const SN_RANGE: core::ops::Range<usize> = 4..24;

/// The size of a namespace's logical block, `1 << LBADS` bytes, with LBADS in
/// [`MIN_LBADS`]`..=`[`MAX_LBADS`] (512 B to 4 KiB).
///
/// Every count of blocks the driver takes or returns is in the blocks of one
/// namespace; this type says how many bytes such a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockSize {
    lbads: u8,
}

impl BlockSize {
    /// 512-byte blocks (LBADS 9).
    pub const B512: Self = Self { lbads: 9 };
    /// 4096-byte blocks (LBADS 12).
    pub const B4096: Self = Self { lbads: 12 };

    /// The block size of LBA data size exponent `lbads`, when the driver
    /// supports it (9..=12).
    pub const fn from_lbads(lbads: u8) -> Option<Self> {
        if lbads >= MIN_LBADS && lbads <= MAX_LBADS {
            Some(Self { lbads })
        } else {
            None
        }
    }

    /// The block size of `bytes` bytes, when it is a supported power of two.
    pub const fn from_bytes(bytes: u32) -> Option<Self> {
        if bytes.is_power_of_two() {
            Self::from_lbads(bytes.trailing_zeros() as u8)
        } else {
            None
        }
    }

    /// LBADS: log2 of the block size.
    pub const fn lbads(self) -> u8 {
        self.lbads
    }

    /// Bytes per block.
    pub const fn bytes(self) -> u32 {
        1 << self.lbads
    }

    /// Bytes in `blocks` blocks (`None` on overflow).
    pub const fn bytes_in(self, blocks: u64) -> Option<u64> {
        blocks.checked_mul(1 << self.lbads)
    }

    /// Whole blocks in `bytes` bytes, when `bytes` is a multiple of the block
    /// size.
    pub const fn blocks_in(self, bytes: u64) -> Option<u64> {
        if bytes % (1 << self.lbads) == 0 {
            Some(bytes >> self.lbads)
        } else {
            None
        }
    }
}

impl From<BlockSize> for u32 {
    fn from(b: BlockSize) -> u32 {
        b.bytes()
    }
}

impl From<BlockSize> for u64 {
    fn from(b: BlockSize) -> u64 {
        u64::from(b.bytes())
    }
}

impl From<BlockSize> for usize {
    fn from(b: BlockSize) -> usize {
        1usize << b.lbads
    }
}

impl PartialEq<u32> for BlockSize {
    fn eq(&self, other: &u32) -> bool {
        self.bytes() == *other
    }
}

impl core::fmt::Display for BlockSize {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.bytes())
    }
}

/// What the driver keeps of Identify Controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerInfo {
    /// PCI Vendor ID (VID).
    pub vid: u16,
    /// Serial Number (SN) as the controller wrote it: untrusted bytes, space
    /// padded. Use [`serial_number`](Self::serial_number) for the checked text.
    pub serial: [u8; 20],
    /// Model Number (MN), ASCII, space padded.
    pub model: [u8; 40],
    /// Maximum Data Transfer Size as reported (0: no limit).
    pub mdts: u8,
    /// Bytes per command the driver will use: `CAP.MPSMIN page << MDTS`
    /// clamped to [`DRIVER_MAX_TRANSFER`] (MDTS 0, no limit, is the clamp).
    pub max_transfer: u32,
    /// Number of Namespaces (NN): valid namespace ids are `1..=nn`.
    pub nn: u32,
    /// RTD3 Entry Latency in microseconds (0: not reported).
    pub rtd3e_us: u32,
}

impl ControllerInfo {
    /// The serial number, trimmed of the spaces (and NULs) padding it.
    ///
    /// # Errors
    ///
    /// [`NvmeError::BadIdentify`] (field `SN`, the offending byte) when a byte
    /// is not printable ASCII (0x20..=0x7e; NUL padding at the end is
    /// tolerated), or when nothing is left after trimming.
    pub fn serial_number(&self) -> Result<&str, NvmeError> {
        serial_text(&self.serial)
    }
}

/// Checks and trims a serial number (NVMe 1.4, 5.15.2.1: SN is ASCII, left
/// justified, padded with spaces).
pub fn serial_text(raw: &[u8; 20]) -> Result<&str, NvmeError> {
    let end = raw
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    let start = raw.iter().position(|&b| b != b' ').unwrap_or(end).min(end);
    let text = raw.get(start..end).unwrap_or(&[]);
    if let Some(&bad) = text.iter().find(|&&b| !(0x20..=0x7e).contains(&b)) {
        return Err(NvmeError::BadIdentify {
            field: "SN",
            value: bad.into(),
        });
    }
    if text.is_empty() {
        return Err(NvmeError::BadIdentify {
            field: "SN",
            value: 0,
        });
    }
    // Printable ASCII is valid UTF-8.
    core::str::from_utf8(text).map_err(|_| NvmeError::BadIdentify {
        field: "SN",
        value: 0,
    })
}

/// Geometry of one namespace, from Identify Namespace, validated.
///
/// `blocks` and `max_transfer_blocks` count blocks of `block_size` bytes, the
/// namespace's own LBA size (512 or 4096, or any size in between that the
/// format reports); [`bytes`](Self::bytes) gives the size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Namespace identifier.
    pub nsid: u32,
    /// Namespace Size (NSZE): addressable blocks `0..blocks`, each of
    /// `block_size` bytes.
    pub blocks: u64,
    /// Bytes per logical block (`1 << LBADS` of the format FLBAS selects).
    pub block_size: BlockSize,
    /// Blocks (of `block_size`) per command the driver issues at most: the
    /// controller's MDTS, clamped to [`DRIVER_MAX_TRANSFER`].
    pub max_transfer_blocks: u32,
    /// Index of the LBA format in use (FLBAS).
    pub format: u8,
}

impl NamespaceInfo {
    /// Bytes in the namespace (`blocks × block_size`; checked at parse time
    /// not to overflow).
    pub fn bytes(&self) -> u64 {
        self.blocks
            .saturating_mul(u64::from(self.block_size.bytes()))
    }

    /// The blocks (of this namespace's `block_size`) covering the byte extent
    /// `byte_offset..byte_offset + len`: `(first block, block count)`.
    ///
    /// # Errors
    ///
    /// [`NvmeError::Misaligned`] when the offset or the length is not a
    /// multiple of the block size, [`NvmeError::LbaOutOfRange`] when the extent
    /// is empty or leaves the namespace.
    pub fn byte_extent_to_blocks(
        &self,
        byte_offset: u64,
        len: u64,
    ) -> Result<(u64, u64), NvmeError> {
        let bs = self.block_size;
        let (Some(lba), Some(blocks)) = (bs.blocks_in(byte_offset), bs.blocks_in(len)) else {
            return Err(NvmeError::Misaligned {
                byte_offset,
                len,
                block_size: bs.bytes(),
            });
        };
        match lba.checked_add(blocks) {
            Some(end) if blocks > 0 && end <= self.blocks => Ok((lba, blocks)),
            _ => Err(NvmeError::LbaOutOfRange {
                lba,
                blocks,
                namespace_blocks: self.blocks,
            }),
        }
    }

    /// Bytes per command the driver issues at most.
    pub fn max_transfer_bytes(&self) -> u64 {
        u64::from(self.max_transfer_blocks) * u64::from(self.block_size.bytes())
    }
}

fn read_u8<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    at: usize,
) -> Result<Untrusted<u8>, NvmeError> {
    Ok(buf.read::<u8>(at)?)
}

fn read_u32<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    at: usize,
) -> Result<Untrusted<u32>, NvmeError> {
    Ok(buf.read::<u32>(at)?)
}

fn read_u64<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    at: usize,
) -> Result<Untrusted<u64>, NvmeError> {
    Ok(buf.read::<u64>(at)?)
}

/// An entry size byte (SQES/CQES): required (minimum) size in bits 3:0, maximum
/// in bits 7:4, both log2; `ours` must lie between them.
fn check_entry_size(field: &'static str, raw: Untrusted<u8>, ours: u8) -> Result<(), NvmeError> {
    raw.validate(|v| {
        if v & 0xf <= ours && ours <= v >> 4 {
            Ok(())
        } else {
            Err(NvmeError::BadIdentify {
                field,
                value: v.into(),
            })
        }
    })
}

/// Parses Identify Controller from `buf` (4096 bytes the controller wrote).
///
/// # Errors
///
/// [`NvmeError::BadIdentify`] when SQES/CQES exclude our 64/16-byte entries;
/// [`NvmeError::NamespaceAbsent`] when `nsid` is 0 or above NN.
pub fn parse_controller<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    nsid: u32,
) -> Result<ControllerInfo, NvmeError> {
    let vid = buf.read::<u16>(0)?.into_raw_for_report();
    let mut serial = [0u8; 20];
    buf.read_bytes(4, &mut serial)?;
    let mut model = [0u8; 40];
    buf.read_bytes(24, &mut model)?;
    let mdts = read_u8(buf, 77)?;
    // MDTS is a power of two in units of the minimum page (CAP.MPSMIN = 0 is
    // checked, so 4 KiB); 0 means no limit. Any value is legal: clamp it.
    let max_transfer = mdts.validate(|m| -> Result<u32, NvmeError> {
        Ok(match m {
            0 => DRIVER_MAX_TRANSFER,
            m if u32::from(m) < 20 => (NVME_PAGE as u32) << m,
            _ => DRIVER_MAX_TRANSFER,
        }
        .min(DRIVER_MAX_TRANSFER))
    })?;
    let rtd3e_us = read_u32(buf, 88)?.into_raw_for_report();
    check_entry_size(
        "SQES",
        read_u8(buf, 512)?,
        crate::command::SQE_SIZE_LOG2 as u8,
    )?;
    check_entry_size(
        "CQES",
        read_u8(buf, 513)?,
        crate::command::CQE_SIZE_LOG2 as u8,
    )?;
    let nn = read_u32(buf, 516)?.validate(|n| {
        if nsid != 0 && n >= nsid {
            Ok(n)
        } else {
            Err(NvmeError::NamespaceAbsent { nsid, nn: n })
        }
    })?;
    Ok(ControllerInfo {
        vid,
        serial,
        model,
        mdts: mdts.into_raw_for_report(),
        max_transfer,
        nn,
        rtd3e_us,
    })
}

/// Parses Identify Namespace `nsid` from `buf`.
///
/// # Errors
///
/// [`NvmeError::NamespaceInactive`] for an inactive namespace (NSZE 0: the
/// controller returns zeros); [`NvmeError::BadIdentify`] for NCAP above NSZE,
/// a format index above NLBAF, LBADS below 9, or a size that overflows;
/// [`NvmeError::UnsupportedFormat`] for a format the driver cannot write:
/// metadata (interleaved or separate), protection information, blocks above
/// 4 KiB.
pub fn parse_namespace<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    nsid: u32,
    max_transfer: u32,
) -> Result<NamespaceInfo, NvmeError> {
    let bad = |field, value: u64| NvmeError::BadIdentify { field, value };
    let nsze = read_u64(buf, 0)?.validate(|n| {
        if n == 0 {
            Err(NvmeError::NamespaceInactive { nsid })
        } else {
            Ok(n)
        }
    })?;
    read_u64(buf, 8)?.validate(|c| {
        if c > nsze {
            Err(bad("NCAP", c))
        } else {
            Ok(())
        }
    })?;
    let nlbaf = read_u8(buf, 25)?.validate(|n| {
        if n <= 63 {
            Ok(n)
        } else {
            Err(bad("NLBAF", n.into()))
        }
    })?;
    // FLBAS bits 3:0 select the format; bits 6:5 are its high bits (NVMe 2.0,
    // reserved as zero in 1.4); bit 4 set means metadata is transferred at the
    // end of each block (extended LBA).
    let flbas = read_u8(buf, 26)?;
    let (index, extended) = flbas.validate(|f| {
        let i = (f & 0xf) | ((f >> 5) & 0x3) << 4;
        if i <= nlbaf {
            Ok((i, f & 0x10 != 0))
        } else {
            Err(bad("FLBAS", f.into()))
        }
    })?;
    // DPS bits 2:0: protection information type (0: disabled).
    let pi = read_u8(buf, 29)?.validate(|d| Ok::<u8, NvmeError>(d & 0x7))?;
    let lbaf = read_u32(buf, 128 + 4 * usize::from(index))?;
    let ms = lbaf.field(0, 16).validate(Ok::<u32, NvmeError>)?;
    let lbads = lbaf.field(16, 8).validate(Ok::<u32, NvmeError>)?;
    let refuse = |problem| NvmeError::UnsupportedFormat {
        nsid,
        format: index,
        lbads: lbads as u8,
        ms: ms as u16,
        problem,
    };
    if lbads < u32::from(MIN_LBADS) {
        return Err(bad("LBAF.LBADS", lbads.into()));
    }
    let block_size = match u8::try_from(lbads).ok().and_then(BlockSize::from_lbads) {
        Some(b) => b,
        None => return Err(refuse(FormatProblem::BlockTooLarge)),
    };
    if pi != 0 {
        return Err(refuse(FormatProblem::ProtectionInformation { pit: pi }));
    }
    if ms != 0 {
        return Err(refuse(if extended {
            FormatProblem::MetadataInterleaved
        } else {
            FormatProblem::MetadataSeparate
        }));
    }
    if block_size.bytes_in(nsze).is_none() {
        return Err(bad("NSZE", nsze));
    }
    Ok(NamespaceInfo {
        nsid,
        blocks: nsze,
        block_size,
        max_transfer_blocks: (max_transfer / block_size.bytes()).max(1),
        format: index,
    })
}

/// Why a namespace's LBA format is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatProblem {
    /// Metadata is interleaved with the data (LBAF.MS ≠ 0 with FLBAS bit 4,
    /// extended LBA): blocks are not `1 << LBADS` bytes on the wire.
    MetadataInterleaved,
    /// Metadata travels in a separate buffer (LBAF.MS ≠ 0, FLBAS bit 4
    /// clear) that the driver would have to supply (MPTR).
    MetadataSeparate,
    /// Protection information is enabled (DPS.PIT ≠ 0): the driver would
    /// have to generate and check guard tags.
    ProtectionInformation {
        /// DPS bits 2:0 as reported.
        pit: u8,
    },
    /// LBADS above 12: blocks larger than the 4 KiB page the driver's buffers
    /// are built from.
    BlockTooLarge,
}

impl FormatProblem {
    /// Short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MetadataInterleaved => "metadata interleaved (extended LBA)",
            Self::MetadataSeparate => "separate metadata",
            Self::ProtectionInformation { .. } => "protection information",
            Self::BlockTooLarge => "block larger than 4 KiB",
        }
    }
}

/// The active namespace ids (Identify CNS 02h), ascending, at most 1024 (one
/// page); ids the controller listed out of order, zero-terminated early, or
/// above NN are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveNamespaces {
    ids: [u32; 1024],
    len: usize,
}

impl ActiveNamespaces {
    /// The ids, ascending.
    pub fn ids(&self) -> &[u32] {
        self.ids.get(..self.len).unwrap_or(&[])
    }

    /// True when `nsid` is listed.
    pub fn contains(&self, nsid: u32) -> bool {
        self.ids().binary_search(&nsid).is_ok()
    }
}

/// Parses an Active Namespace ID list (CNS 02h) from `buf`.
///
/// # Errors
///
/// [`NvmeError::BadIdentify`] (field `NSID list`) for an id above `nn`, or ids
/// not strictly ascending.
pub fn parse_active_namespaces<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    nn: u32,
) -> Result<ActiveNamespaces, NvmeError> {
    let mut out = ActiveNamespaces {
        ids: [0; 1024],
        len: 0,
    };
    let mut last = 0u32;
    for (i, slot) in out.ids.iter_mut().enumerate() {
        let id = read_u32(buf, 4 * i)?.validate(|id| {
            if id == 0 || (id > last && id <= nn) {
                Ok(id)
            } else {
                Err(NvmeError::BadIdentify {
                    field: "NSID list",
                    value: id.into(),
                })
            }
        })?;
        if id == 0 {
            break;
        }
        *slot = id;
        last = id;
        out.len = i + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::BlockSize;

    #[test]
    fn block_sizes_convert_to_their_bytes() {
        for (b, bytes) in [(BlockSize::B512, 512u32), (BlockSize::B4096, 4096)] {
            assert_eq!(u32::from(b), bytes);
            assert_eq!(u64::from(b), u64::from(bytes));
        }
        assert_eq!(BlockSize::from_lbads(10).map(u32::from), Some(1024));
    }
}
