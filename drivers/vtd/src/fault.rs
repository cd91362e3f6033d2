//! Primary fault recording (VT-d 4.1, 7.2.1, 11.4.9, 11.4.14).
//!
//! The unit has CAP.NFR + 1 fault recording registers at CAP.FRO × 16, used as
//! a ring starting at FSTS.FRI. A fault that finds the next record still
//! pending (F set) is lost and sets FSTS.PFO. Draining reads records from FRI
//! while F is set, clears each by writing 1 to F, then clears PFO: lost faults
//! are counted, never waited for.

use paranoid::mmio::RegisterIo;
use paranoid::time::Clock;

use crate::regs::{self, Fsts};
use crate::unit::Unit;
use crate::VtdError;

/// FRCD high half: F (bit 127 of the record).
const F: u64 = 1 << 63;

/// One primary fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// Requester id of the faulting request.
    pub source_id: u16,
    /// Page address of the request (FRCD.FI, bits 63:12).
    pub address: u64,
    /// Fault reason (FRCD.FR, appendix A).
    pub reason: u8,
    /// True for a write request (FRCD.T = 0).
    pub write: bool,
    /// The record index it came from.
    pub index: u16,
}

/// What a drain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainStats {
    /// Records read and cleared.
    pub records: u32,
    /// FSTS.PFO was set: at least one fault was lost since the last drain.
    pub overflow: bool,
}

/// Human name of a fault reason (appendix A, legacy-mode reasons).
pub fn reason_name(reason: u8) -> &'static str {
    match reason {
        0x1 => "root entry not present",
        0x2 => "context entry not present",
        0x3 => "context entry invalid",
        0x4 => "address beyond MGAW",
        0x5 => "write not permitted",
        0x6 => "read not permitted",
        0x7 => "paging entry unreadable",
        0x8 => "root table unreadable",
        0x9 => "context table unreadable",
        0xa => "root entry reserved bits",
        0xb => "context entry reserved bits",
        0xc => "paging entry reserved bits",
        0xd => "translation type not permitted",
        _ => "other",
    }
}

/// Reads and clears every pending fault record, then clears overflow.
///
/// At most CAP.NFR + 1 records are read, so a unit that keeps F set (or a
/// storm that refills records as we clear them) cannot keep us here.
///
/// # Errors
///
/// [`VtdError::RegisterGone`] when FSTS reads all-ones.
pub fn drain<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    sink: &mut dyn FnMut(FaultRecord),
) -> Result<DrainStats, VtdError> {
    let caps = *unit.caps();
    let regs = unit.regs();
    let fsts = regs
        .read32(regs::FSTS)
        .not_all_ones()
        .map_err(|_| VtdError::RegisterGone { register: "FSTS" })?;
    let mut stats = DrainStats {
        records: 0,
        overflow: fsts.flags::<Fsts>().contains(Fsts::PFO),
    };
    let count = caps.fault_records;
    // FRI names where the oldest pending record is; a value past the records
    // is nonsense and we start at 0 (the scan covers every record anyway).
    let mut index = regs::fsts_fri(fsts).index_below(count).unwrap_or(0);
    if fsts.flags::<Fsts>().contains(Fsts::PPF) || stats.overflow {
        for _ in 0..count {
            let at = caps.fault_offset + index * 16;
            let hi = regs.read64(at + 8);
            if hi.is_all_ones() || !hi.bit(63) {
                break;
            }
            let lo = regs.read64(at);
            let record = FaultRecord {
                source_id: hi.field(0, 16).into_raw_for_report() as u16,
                address: lo.into_raw_for_report() & !0xfff,
                reason: hi.field(32, 8).into_raw_for_report() as u8,
                write: !hi.bit(62),
                index: index as u16,
            };
            // W1C on F only: write the high dword with bit 31 (bit 127 of the
            // record) and nothing else.
            regs.write32(at + 12, (F >> 32) as u32);
            stats.records += 1;
            sink(record);
            index = (index + 1) % count;
        }
    }
    if stats.overflow {
        regs.write32(regs::FSTS, Fsts::PFO.bits());
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::reason_name;

    #[test]
    fn every_legacy_reason_has_its_own_name() {
        let names: Vec<_> = (0x1..=0xd).map(reason_name).collect();
        for (i, n) in names.iter().enumerate() {
            assert_ne!(*n, "other", "reason {:#x}", i + 1);
            assert!(
                !names[..i].contains(n),
                "reason {:#x} shares its name {n:?}",
                i + 1
            );
        }
        assert_eq!(reason_name(0x8), "root table unreadable");
        for other in [0, 0xe, 0x20, 0xff] {
            assert_eq!(reason_name(other), "other");
        }
    }
}
