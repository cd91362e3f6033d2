//! Identify data structures (NVMe 1.4, 5.15.2): the few fields the driver uses,
//! each validated before it sizes anything.

use paranoid::dma::{DeviceWrites, DmaBuffer, Window};
use paranoid::Untrusted;

use crate::error::NvmeError;
use crate::queue::NVME_PAGE;

/// The largest transfer the driver issues in one command, whatever MDTS allows:
/// 64 pages, so one PRP list page always suffices.
pub const DRIVER_MAX_TRANSFER: u32 = 64 * NVME_PAGE as u32;
/// Smallest logical block (LBAF.LBADS = 9).
pub const MIN_LBADS: u8 = 9;
/// Largest logical block the driver supports (LBAF.LBADS = 12, one page).
pub const MAX_LBADS: u8 = 12;

/// What the driver keeps of Identify Controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerInfo {
    /// PCI Vendor ID (VID).
    pub vid: u16,
    /// Serial Number (SN), ASCII, space padded.
    pub serial: [u8; 20],
    /// Model Number (MN), ASCII, space padded.
    pub model: [u8; 40],
    /// Maximum Data Transfer Size as reported (0: no limit).
    pub mdts: u8,
    /// Bytes per command the driver will use: MDTS clamped to
    /// [`DRIVER_MAX_TRANSFER`].
    pub max_transfer: u32,
    /// Number of Namespaces (NN).
    pub nn: u32,
    /// RTD3 Entry Latency in microseconds (0: not reported).
    pub rtd3e_us: u32,
}

/// What the driver keeps of Identify Namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Namespace identifier.
    pub nsid: u32,
    /// Namespace Size (NSZE): addressable blocks `0..blocks`.
    pub blocks: u64,
    /// Bytes per logical block (`1 << LBADS`).
    pub block_size: u32,
    /// Blocks per command the driver issues at most.
    pub max_transfer_blocks: u32,
}

impl NamespaceInfo {
    /// Bytes in the namespace.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
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
/// [`NvmeError::BadIdentify`] when SQES/CQES exclude our 64/16-byte entries or
/// NN is smaller than `nsid`.
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
        if n >= nsid {
            Ok(n)
        } else {
            Err(NvmeError::BadIdentify {
                field: "NN",
                value: n.into(),
            })
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
/// [`NvmeError::BadIdentify`] for an inactive namespace (NSZE 0), NCAP above
/// NSZE, a format index above NLBAF, LBADS below 9, or a size that overflows;
/// [`NvmeError::Unsupported`] for metadata or blocks above 4 KiB.
pub fn parse_namespace<W: Window, D: DeviceWrites>(
    buf: &mut DmaBuffer<W, D>,
    nsid: u32,
    max_transfer: u32,
) -> Result<NamespaceInfo, NvmeError> {
    let bad = |field, value: u64| NvmeError::BadIdentify { field, value };
    let nsze = read_u64(buf, 0)?.validate(|n| if n == 0 { Err(bad("NSZE", n)) } else { Ok(n) })?;
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
    // reserved as zero in 1.4).
    let flbas = read_u8(buf, 26)?;
    let index = flbas.validate(|f| {
        let i = (f & 0xf) | ((f >> 5) & 0x3) << 4;
        if i <= nlbaf {
            Ok(usize::from(i))
        } else {
            Err(bad("FLBAS", f.into()))
        }
    })?;
    let lbaf = read_u32(buf, 128 + 4 * index)?;
    lbaf.field(0, 16).validate(|ms| {
        if ms == 0 {
            Ok(())
        } else {
            Err(NvmeError::Unsupported {
                field: "LBAF.MS",
                value: ms.into(),
            })
        }
    })?;
    let lbads = lbaf.field(16, 8).validate(|d| match d {
        d if d < u32::from(MIN_LBADS) => Err(bad("LBAF.LBADS", d.into())),
        d if d > u32::from(MAX_LBADS) => Err(NvmeError::Unsupported {
            field: "LBAF.LBADS",
            value: d.into(),
        }),
        d => Ok(d),
    })?;
    let block_size = 1u32 << lbads;
    if nsze.checked_mul(u64::from(block_size)).is_none() {
        return Err(bad("NSZE", nsze));
    }
    Ok(NamespaceInfo {
        nsid,
        blocks: nsze,
        block_size,
        max_transfer_blocks: (max_transfer / block_size).max(1),
    })
}
